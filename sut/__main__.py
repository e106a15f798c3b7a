"""``python -m sut`` is the ``sut`` command."""

from sut.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
