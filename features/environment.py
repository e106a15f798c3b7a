"""behave hooks: everything lives in :mod:`harness.behave_env` (shared with the pytest plugin's design)."""

import sys
from pathlib import Path

# The repository root first, so that ``steps`` is the step library package (not ``features/steps``)
# and the harness imports work even when the project is not pip-installed.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

from harness.behave_env import (  # noqa: E402
    after_all,
    after_scenario,
    after_step,
    before_all,
    before_scenario,
    before_step,
)

__all__ = ["after_all", "after_scenario", "after_step", "before_all", "before_scenario", "before_step"]
