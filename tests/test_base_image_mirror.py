"""The offline base image follows the machine's own apt configuration (no host written in the code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import build_base_image


def test_the_mirror_comes_from_deb822_sources_skipping_security(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(build_base_image.MIRROR_ENV, raising=False)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb-src\nURIs: http://src.invalid/debian\nSuites: bookworm\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm\n"
    )
    assert (
        build_base_image.machine_mirror((tmp_path / "none.list", tmp_path / "d"))
        == "http://mirror.invalid/debian"
    )


def test_the_mirror_comes_from_one_line_sources_with_options(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(build_base_image.MIRROR_ENV, raising=False)
    listing = tmp_path / "sources.list"
    listing.write_text(
        "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://one.invalid/debian bookworm main\n"
    )
    assert build_base_image.machine_mirror((listing,)) == "http://one.invalid/debian"


def test_the_environment_overrides_and_no_source_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(build_base_image.MIRROR_ENV, "http://chosen.invalid/debian")
    assert build_base_image.machine_mirror((tmp_path,)) == "http://chosen.invalid/debian"
    monkeypatch.delenv(build_base_image.MIRROR_ENV)
    with pytest.raises(build_base_image.BuildError, match="SERVINGBDD_DEBIAN_MIRROR"):
        build_base_image.machine_mirror((tmp_path / "missing",))
