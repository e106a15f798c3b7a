"""Stub-progress report for the BDD suite: ``python tools/stub_report.py --help``.

Thin entry point; the logic lives in :mod:`tools.stubreport` (static: the step modules are read, never
imported).
"""

from __future__ import annotations

import sys

from tools.stubreport.cli import main  # the installed ``tools`` package (``pip install -e .``)

if __name__ == "__main__":
    sys.exit(main())
