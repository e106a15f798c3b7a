"""The run's load settings (what --load-workers, --baseline, --save-baseline, --load-profiles set) and
the scenario attachments written into the Cucumber JSON."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.load import settings
from harness.pytest_plugin.reports import ATTACHMENTS_HOOK, after_hook


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    before = settings.current()
    yield
    settings._current = before


def test_defaults_are_one_load_process_no_baseline_and_the_shipped_profiles() -> None:
    current = settings.configure()
    assert (current.load_workers, current.baseline, current.save_baseline) == (0, None, False)
    assert current.profiles == settings.DEFAULT_PROFILES and "short_spike" in current.book().profiles


def test_options_become_settings_and_a_bad_combination_is_refused(tmp_path: Path) -> None:
    current = settings.configure(load_workers=2, baseline=str(tmp_path / "b.json"), save_baseline=True)
    assert current.load_workers == 2 and current.baseline == tmp_path / "b.json" and current.save_baseline
    assert settings.current() is current
    with pytest.raises(ValueError, match="--save-baseline needs --baseline FILE"):
        settings.configure(save_baseline=True)
    with pytest.raises(ValueError, match="--load-workers must be >= 0"):
        settings.configure(load_workers=-1)


def test_a_malformed_profile_file_fails_when_a_step_first_needs_it(tmp_path: Path) -> None:
    bad = tmp_path / "profiles.toml"
    bad.write_text("[profiles.x]\nshape = 'wave'\n")
    current = settings.configure(profiles=str(bad))
    with pytest.raises(ValueError, match="shape must be one of"):
        current.book()


def test_attachments_become_the_output_of_an_after_hook() -> None:
    hook = after_hook(["load report: reports/load/a.html"])
    assert hook["output"] == ["load report: reports/load/a.html"]
    assert hook["match"] == {"location": ATTACHMENTS_HOOK} and hook["result"]["status"] == "passed"
