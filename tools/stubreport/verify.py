"""Compare the report's runner model with the runner itself, on a suite the runner can load.

``python -m tools.stubreport.verify behave|pytest-bdd SUITE [--python PY] [--args ARGS]`` runs the real
runner in a subprocess (behave: ``--dry-run -f steps.usage``; pytest-bdd: pytest with a plugin that asks
pytest-bdd's own step lookup for every step of every collected scenario and skips the test, so no
step runs), then prints both sets of counts and every difference. ``--python`` picks an environment
that has the suite's own dependencies (the runner imports its step modules; this tool never does).
Exit 0 when the counts agree, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .report import Report, build_report


@dataclass
class Counts:
    definitions: set[str] = field(default_factory=set)  # "keyword pattern @ file:line"
    unused: set[str] = field(default_factory=set)
    undefined: set[str] = field(default_factory=set)  # "file:line text"
    ambiguous: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def row(self) -> dict[str, int]:
        return {
            "definitions": len(self.definitions),
            "unused": len(self.unused),
            "undefined": len(self.undefined),
            "ambiguous": len(self.ambiguous),
        }


# -- behave ------------------------------------------------------------------------------------------
_DEF = re.compile(r"^\s*@(\w+)\((.*)\)\s+# (.+?)\s*$")
_STEP = re.compile(r"^\s+(\S+) (.*?)\s+# (.+:\d+)\s*$")


def _unrepr(text: str) -> str:
    """behave prints ``@given('pattern')`` with the pattern as written between the quotes."""
    return text[2:-1] if text[:2] in ("u'", 'u"') else text[1:-1]


def parse_usage(output: str) -> Counts:
    counts = Counts()
    section = "used"
    for line in output.splitlines():
        if line.startswith("UNUSED STEP DEFINITIONS"):
            section = "unused"
            continue
        if line.startswith("UNDEFINED STEPS"):
            section = "undefined"
            continue
        definition = _DEF.match(line)
        if definition and section in ("used", "unused"):
            key = f"{definition.group(1)} {_pattern(_unrepr(definition.group(2)))} @ {definition.group(3)}"
            counts.definitions.add(key)
            if section == "unused":
                counts.unused.add(key)
            continue
        step = _STEP.match(line)
        if step and section == "undefined":
            counts.undefined.add(f"{step.group(3)} {step.group(2)}")
        if line.lstrip().startswith(("AmbiguousStep", "behave.step_registry.AmbiguousStep")):
            counts.ambiguous.add(line.strip())
        if line.startswith(("Traceback", "ConfigError", "ParserError")):
            counts.errors.append(line.strip())
    return counts


def run_behave(suite: Path, python: str, paths: list[str]) -> Counts:
    command = [python, "-m", "behave", "--dry-run", "-f", "steps.usage", "--no-capture", *paths]
    result = subprocess.run(command, cwd=suite, capture_output=True, text=True, timeout=600, check=False)
    counts = parse_usage(result.stdout + "\n" + result.stderr)
    if result.returncode not in (0, 1):
        counts.errors.append(f"behave exited {result.returncode}: {result.stderr.strip()[-300:]}")
    return counts


def _pattern(text: str | None) -> str:
    """behave shows ``re`` patterns with the ``^...$`` its matcher adds: compare without them."""
    text = text or ""
    return text[1:-1] if text.startswith("^") and text.endswith("$") else text


def ours_behave(report: Report) -> Counts:
    """The report's model, counted as ``steps.usage`` counts: that formatter skips the steps of a Rule's
    Background (behave runs them; the report counts them, see runners/behave.py)."""
    counts = Counts()
    used: set[tuple[int, int]] = set()
    for step in report.suite.steps:
        if step.background and step.scenario.startswith("Rule: "):
            continue
        used |= {(id(e.func), e.pattern.order) for e in report.suite.resolve(step).chosen}
    for entry in report.suite.index.entries:
        where = f"{entry.func.path}:{entry.func.first_line}"
        key = f"{entry.pattern.keyword} {_pattern(entry.pattern.text)} @ {where}"
        counts.definitions.add(key)
        if (id(entry.func), entry.pattern.order) not in used:
            counts.unused.add(key)
    counts.undefined = {
        f"{p.step.where} {p.step.text}"
        for p in report.undefined
        if not (p.step.background and p.step.scenario.startswith("Rule: "))
    }
    counts.ambiguous = {f"{p.step.where} {p.step.text}" for p in report.ambiguous}
    return counts


# -- pytest-bdd -------------------------------------------------------------------------------------
PLUGIN = """
import json, os
import pytest

_OUT = os.environ["SERVINGBDD_STUB_REPORT_LOOKUP"]
_seen = {"steps": [], "definitions": [], "errors": []}


def _where(func):
    code = func.__code__
    return os.path.relpath(code.co_filename), code.co_firstlineno


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item):
    # after setup (pytest >= 9.2 refuses getfixturevalue outside it), before the scenario's steps run
    from pytest_bdd.scenario import get_step_function, scenario_wrapper_template_registry

    template = scenario_wrapper_template_registry.get(getattr(item, "obj", None))
    if template is None:
        return
    example = item.callspec.params.get("_pytest_bdd_example", {}) if hasattr(item, "callspec") else {}
    scenario = template.render(example)
    for step in scenario.steps:
        context = get_step_function(item._request, step)
        found = None
        if context is not None:
            path, line = _where(context.step_func)
            found = [path, line]
        _seen["steps"].append({
            "module": os.path.relpath(str(item.path)), "feature": os.path.relpath(template.feature.filename),
            "line": step.line_number, "type": step.type, "text": step.name, "found": found,
        })
    pytest.skip("stub_report: step lookup only")


def pytest_collectreport(report):
    if report.failed:
        _seen["errors"].append(report.nodeid + ": " + str(report.longrepr)[-300:])


def pytest_sessionfinish(session):
    from pytest_bdd.steps import step_function_context_registry

    for context in list(step_function_context_registry.values()):
        path, line = _where(context.step_func)
        if "site-packages" in path:
            continue  # pytest-bdd's own "trace" steps
        pattern = getattr(context.parser, "name", None)
        _seen["definitions"].append([context.type or "step", str(pattern), path, line])
    with open(_OUT, "w") as fh:
        json.dump(_seen, fh)
"""


def run_pytest_bdd(suite: Path, python: str, args: list[str]) -> tuple[Counts, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "stub_report_lookup.py").write_text(PLUGIN)
        out = Path(tmp) / "lookup.json"
        env = {
            **os.environ,
            "SERVINGBDD_STUB_REPORT_LOOKUP": str(out),
            "PYTHONPATH": tmp + os.pathsep + os.environ.get("PYTHONPATH", ""),
        }
        command = [
            python,
            "-m",
            "pytest",
            "-p",
            "stub_report_lookup",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            *args,
        ]
        result = subprocess.run(
            command, cwd=suite, env=env, capture_output=True, text=True, timeout=900, check=False
        )
        if not out.is_file():
            counts = Counts(
                errors=[f"pytest exited {result.returncode}: {result.stdout[-500:]} {result.stderr[-500:]}"]
            )
            return counts, {}
        data = json.loads(out.read_text())
    counts = Counts(errors=data["errors"])
    found: set[tuple[str, int]] = set()
    for step in data["steps"]:
        if step["found"] is None:
            counts.undefined.add(f"{step['feature']}:{step['line']} {step['text']}")
        else:
            found.add((step["found"][0], step["found"][1]))
    for keyword, pattern, path, line in data["definitions"]:
        key = f"{keyword} {pattern} @ {path}:{line}"
        counts.definitions.add(key)
        if (path, line) not in found:
            counts.unused.add(key)
    return counts, data


def ours_pytest_bdd(report: Report) -> Counts:
    """The report's model; step files nothing imports are left out (pytest never loads them, so the
    runner cannot list them; the report does, as unused)."""
    counts = Counts()
    used = {id(e.func) for e in report._chosen}
    for entry in report.suite.index.entries:
        if entry.func.path in report.suite.never_imported:
            continue
        key = f"{entry.pattern.keyword} {entry.pattern.text} @ {entry.func.path}:{entry.func.first_line}"
        counts.definitions.add(key)
        if id(entry.func) not in used:
            counts.unused.add(key)
    counts.undefined = {f"{p.step.where} {p.step.text}" for p in report.undefined}
    counts.ambiguous = {f"{p.step.where} {p.step.text}" for p in report.ambiguous}
    return counts


def differences(ours: Counts, theirs: Counts) -> list[str]:
    out: list[str] = []
    for name in ("definitions", "unused", "undefined", "ambiguous"):
        a, b = getattr(ours, name), getattr(theirs, name)
        out += [f"{name}: only in the report: {x}" for x in sorted(a - b)[:20]]
        out += [f"{name}: only in the runner: {x}" for x in sorted(b - a)[:20]]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runner", choices=["behave", "pytest-bdd"])
    parser.add_argument("suite", type=Path)
    parser.add_argument("--python", default=sys.executable, help="interpreter with the suite's dependencies")
    parser.add_argument("--args", default="", help="arguments for the runner, e.g. 'features' or '-n0'")
    args = parser.parse_args(argv)
    args.runner_args = shlex.split(args.args)
    suite = args.suite.resolve()
    features = (
        [suite / a for a in args.runner_args if not a.startswith("-")] if args.runner == "behave" else None
    )
    report = build_report(suite, runner=args.runner, features=features or None)
    if args.runner == "behave":
        ours, theirs = ours_behave(report), run_behave(suite, args.python, args.runner_args)
    else:
        ours = ours_pytest_bdd(report)
        theirs, _ = run_pytest_bdd(suite, args.python, args.runner_args)
    print(json.dumps({"report": ours.row(), "runner": theirs.row()}))
    for line in differences(ours, theirs):
        print("  " + line)
    for error in theirs.errors[:10]:
        print("  runner error: " + error)
    return 0 if ours.row() == theirs.row() else 1


if __name__ == "__main__":
    sys.exit(main())
