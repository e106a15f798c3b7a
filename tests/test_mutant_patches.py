"""Every mutant still fits the code it patches (``tools/mutant_patches.py``), slow cases included."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from tools.mutant_patches import check, incompatibility, snapshot
from tools.mutation_score import ROOT


def test_every_mutant_fits_the_code_it_patches() -> None:
    # A process of its own: checking imports every mutant, and the cluster modules must stay unpatched here.
    result = subprocess.run(
        [sys.executable, "-m", "tools.mutant_patches"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


class Original:
    def register(
        self, url: str, name: str, models: list[str], token: str, pool: str | None = None
    ) -> None: ...

    @staticmethod
    def judge(doc: str, *, strict: bool = False) -> None: ...


@pytest.mark.parametrize(
    ("replacement", "fits"),
    [
        (lambda self, url, name, models: None, False),  # the decay seen: newer arguments not taken
        (lambda self, url, name, models, token, pool=None: None, True),
        (lambda self, *args, **kwargs: None, True),
        (lambda self, url, name, models, token, pool: None, True),  # callers always pass what it requires
        (lambda self, url, name, models, *args: None, False),  # pool= by name is refused
    ],
)
def test_a_replacement_must_accept_every_call_the_original_accepts(replacement: object, fits: bool) -> None:
    assert (incompatibility(Original.register, replacement) is None) is fits


def test_static_methods_are_compared_by_their_functions() -> None:
    original = vars(Original)["judge"]
    assert incompatibility(original, staticmethod(lambda doc, *, strict=False: None)) is None
    assert incompatibility(original, staticmethod(lambda doc: None)) is not None


def _mutant(tmp_path: Path, source: str) -> Path:
    directory = tmp_path / "mutant"
    directory.mkdir()
    (directory / "sitecustomize.py").write_text(source, encoding="utf-8")
    return directory


def test_a_stale_wrapper_is_reported_and_the_original_is_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "patched_target.py").write_text(
        "class Service:\n    def register(self, url, name, models, token, pool=None): ...\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    target = importlib.import_module("patched_target")
    before = snapshot([target])
    directory = _mutant(
        tmp_path,
        "from patched_target import Service\nService.register = lambda self, url, name, models: None\n",
    )
    problems = check(directory, before)
    assert len(problems) == 1 and "Service.register" in problems[0], problems
    assert vars(target.Service)["register"] is before[(target.Service, "register")]
    monkeypatch.delitem(sys.modules, "patched_target")


def test_a_one_line_edit_must_find_its_line_once(tmp_path: Path) -> None:
    directory = _mutant(
        tmp_path,
        "from mutant_patch import mutate\nmutate('tools.mutant_patches', 'no such line anywhere', 'x')\n",
    )
    problems = check(directory, {})
    assert problems and "not once" in problems[0], problems
