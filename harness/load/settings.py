"""The run's load settings, given once on the command line and read by the load steps of every scenario.

``pytest --gherkin`` takes them from ``--load-workers N``, ``--baseline FILE``, ``--save-baseline`` and
``--load-profiles FILE``; behave from ``-D load_workers=N -D baseline=FILE -D save_baseline=true
-D load_profiles=FILE``. Steps receive only the World, so the runner adapters :func:`configure` them
for the process and steps read :func:`current`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path

from harness.load.profiles import ProfileBook

#: The profiles shipped with the harness (packaged with ``fixtures``).
DEFAULT_PROFILES = Path(__file__).resolve().parents[2] / "fixtures" / "load_profiles.toml"


@dataclass(frozen=True)
class LoadSettings:
    load_workers: int = 0  # > 0: a Locust master and this many worker processes
    baseline: Path | None = None  # compare each regression check with this file's entry (or record it)
    save_baseline: bool = False  # record the run in ``baseline`` instead of comparing with it
    profiles: Path = DEFAULT_PROFILES  # the TOML file of profiles and SLO tables
    reports: Path = Path("reports") / "load"  # run reports (HTML, Prometheus textfile)

    def __post_init__(self) -> None:
        if self.load_workers < 0:
            raise ValueError(f"--load-workers must be >= 0 (got {self.load_workers})")
        if self.save_baseline and self.baseline is None:
            raise ValueError("--save-baseline needs --baseline FILE (where to record the runs)")

    def book(self) -> ProfileBook:
        """The profile file, read once per run (a malformed one fails the first step that needs it)."""
        return _book(self.profiles.resolve())


@functools.cache
def _book(path: Path) -> ProfileBook:
    return ProfileBook.load(path)


_current = LoadSettings()


def configure(**values: object) -> LoadSettings:
    """Set the run's settings (``None`` values keep the defaults); the runner adapters call it once."""
    global _current
    given = {k: v for k, v in values.items() if v is not None}
    for key in ("baseline", "profiles", "reports"):
        if key in given:
            given[key] = Path(str(given[key]))
    _current = replace(LoadSettings(), **given)  # type: ignore[arg-type]
    return _current


def current() -> LoadSettings:
    return _current
