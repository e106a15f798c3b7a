"""Stub-progress report for the BDD suite: ``python tools/stub_report.py --help``.

Thin entry point; the logic lives in :mod:`tools.stubreport` (static: the step modules are read, never
imported).
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``tools.stubreport`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.stubreport.cli import main

if __name__ == "__main__":
    sys.exit(main())
