"""behave hooks: everything lives in :mod:`harness.behave_env` (shared with the pytest plugin's design)."""

import sys
from pathlib import Path

# Not for ``harness``, which is installed: behave puts features/ on sys.path, ahead of the installed
# packages, and there ``features/steps`` (behave's loader directory) would be imported as ``steps`` in
# place of the step library whenever behave runs from anywhere but the repository root (from the root,
# behave puts the working directory first). The repository root first keeps ``steps`` the library.
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
