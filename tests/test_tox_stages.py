"""tox.ini runs the stages of tools/run_tests.sh (what CI runs) with the same commands and selections: a
stage added to the script, or a feature moved between its lists, fails here until tox.ini follows."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = (ROOT / "tools" / "run_tests.sh").read_text()
FEATURE = r"features/\w+\.feature"
SETUP = ("system packages", "Python environment", "offline Docker images", "done")  # no tox env: set-up
#: The script's stages (by the start of their title) -> the tox environments that run them.
STAGES = {
    "lint": ["lint"],
    "step vocabulary doc": ["stepdocs"],
    "stub report gate": ["stubs"],
    "unit and integration tests": ["unit"],
    "acceptance features: pytest, local backend": ["features-local"],
    "behave (local), the MLServer target (local) and a project of its own | pytest, docker backend": [
        "behave-local",
        "mlserver-local",
        "example",
        "features-docker",
    ],
    "behave (local), the MLServer target (local) and a project of its own": [
        "behave-local",
        "mlserver-local",
        "example",
    ],
    "timing-sensitive, alone": ["features-timing"],
    "load from several places, alone": ["features-docker-load"],
    "run-time check": ["features-local", "features-timing"],  # each checks its own part of the trace
    "nothing left behind": ["leftovers"],
}


def _tox() -> configparser.ConfigParser:
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tox.ini")
    return config


def _section(env: str) -> str:
    names = {"unit": "unit{,-nodocker}", "unit-nodocker": "unit{,-nodocker}"}
    return f"testenv:{names.get(env, env)}"


def commands(env: str, key: str = "commands") -> list[list[str]]:
    """The env's commands as argv lists, ``{posargs:...}`` replaced by its default."""
    factor = "nodocker" if env.endswith("-nodocker") else ""
    found = []
    for line in _tox().get(_section(env), key, fallback="").strip().splitlines():
        condition, sep, rest = line.partition(": ")
        if sep and re.fullmatch(r"!?nodocker", condition):
            if (condition == "nodocker") != bool(factor):
                continue
            line = rest
        line = re.sub(r"\{posargs(?::([^}]*))?\}", lambda m: m.group(1) or "", line)
        found.append(shlex.split(line))
    return found


def _stage(title_start: str) -> str:
    """The script's lines from ``step "TITLE..."`` to the next ``step``."""
    found = re.search(
        rf'^\s*step "{re.escape(title_start)}[^"]*"\n(.*?)(?=^\s*step "|\Z)', SCRIPT, re.M | re.S
    )
    assert found, title_start
    return found.group(1)


def _lines(block: str) -> list[list[str]]:
    """The commands of a stage that runs them directly (not the shell's own ``if``, ``[`` or ``fi``)."""
    lines = [line.strip() for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith(("ruff ", "python ", "pytest "))]


def _array(name: str) -> list[str]:
    match = re.search(rf"^{name}=\(([^)]*)\)", SCRIPT, re.M)
    assert match, name
    return match.group(1).split()


def _function(name: str) -> str:
    """The body of the script's shell function ``name``."""
    found = re.search(rf"^{name}\(\) \{{(.*?)^\}}", SCRIPT, re.M | re.S)
    assert found, name
    return found.group(1)


def _features(argv: list[str]) -> list[str]:
    return [a for a in argv if re.fullmatch(FEATURE, a)]


def test_every_stage_of_the_script_has_its_tox_environments_in_the_same_order() -> None:
    titles = re.findall(r'^\s*step "([^"]+)"', SCRIPT, re.M)
    envlist = [e.strip() for e in _tox().get("tox", "envlist").split(",")]
    order: list[str] = []
    for title in titles:
        if title.startswith(SETUP):
            continue
        starts = [s for s in STAGES if title.startswith(s)]
        assert starts, f"run_tests.sh stage {title!r}: no tox environment runs it (add one, map it here)"
        for env in STAGES[max(starts, key=len)]:
            assert _tox().has_section(_section(env)), env
            if env not in order:
                order.append(env)
    assert envlist == order


@pytest.mark.parametrize(
    ("stage", "env"),
    [("lint", "lint"), ("step vocabulary doc", "stepdocs"), ("stub report gate", "stubs")],
)
def test_the_gates_are_the_same_commands(stage: str, env: str) -> None:
    assert commands(env) == _lines(_stage(stage))


def test_the_unit_stage_runs_every_test_but_the_timing_one_which_runs_alone() -> None:
    (docker,) = commands("unit")
    (nodocker,) = commands("unit-nodocker")
    assert docker[:2] == ["pytest", "-q"] and nodocker[:4] == ["pytest", "-q", "-m", "not docker"]
    for argv in (docker, nodocker):
        assert [a for a in argv if not a.startswith("--junitxml")][-2:] == [
            "tests",
            "--ignore=tests/test_load_mutants.py",
        ]
    # lane a: the mutants and tests/sut; lane b: every other test but the added-latency mutant's
    assert "tests/test_mutants.py tests/sut " in _function("unit_a")
    lane_b = re.search(r"local ignore=\(([^)]*)\)", _function("unit_b"))
    assert lane_b and lane_b.group(1).split() == [
        "--ignore=tests/test_mutants.py",
        "--ignore=tests/test_load_mutants.py",
    ]
    assert ["pytest", "-q", "tests/test_load_mutants.py"] in [
        [a for a in argv if not a.startswith("--junitxml")] for argv in commands("features-timing")
    ]
    assert "tests/test_load_mutants.py" in _stage("timing-sensitive")
    assert [c[0] for c in commands("unit", "commands_pre")] == ["python", "python"]  # the images first


def test_feature_selections_and_the_trace_check_are_the_scripts() -> None:
    timing = [f"features/{name}.feature" for name in _array("TIMING")]
    local, local_check = commands("features-local")
    assert _features(local) == [] and "features" in local
    assert sorted(a.removeprefix("--ignore=") for a in local if a.startswith("--ignore=")) == sorted(timing)
    timed, timed_check, _mutants = commands("features-timing")
    assert _features(timed) == timing
    for run, check in ((local, local_check), (timed, timed_check)):
        assert run[:4] == ["pytest", "--gherkin", "--backend", "local"]
        trace = run[run.index("--step-trace") + 1]
        assert check == ["python", "tools/stub_report.py", "--trace", trace, "--max-hollow", "0"]
    assert "--max-hollow 0" in _stage("run-time check")
    (behave,) = commands("behave-local")
    assert _features(behave) == re.findall(FEATURE, _function("behave_local"))
    assert behave[:3] == ["behave", "-D", "backend=local"]
    (docker,) = commands("features-docker")
    assert _features(docker) == re.findall(FEATURE, _function("features_docker"))
    assert docker[:4] == ["pytest", "--gherkin", "--backend", "docker"]
    (mlserver,) = commands("mlserver-local")
    (example,) = commands("example")
    flags = ["pytest", "--gherkin", "--target", "mlserver", "--backend", "local"]
    assert mlserver[:6] == example[:6] == flags
    assert _tox().get(_section("example"), "changedir") == "examples/own-server"
    assert "cd examples/own-server && " + " ".join(flags) in SCRIPT


def test_the_leftovers_check_looks_for_the_same_processes() -> None:
    (argv,) = commands("leftovers")
    pattern = re.search(r"pgrep -f -- '([^']+)'", _stage("nothing left behind"))
    assert pattern and f'pgrep -f -- "{pattern.group(1)}"' in argv[-1]
    assert "--filter label=servingbdd.run" in argv[-1]
