"""Headless Chromium (Debian's ``chromium``) for tests that look at a page the way a person would."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image


def chromium() -> str:
    """The browser's path; skip the test without it, except in CI (tools/run_tests.sh installs it)."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is missing: tools/run_tests.sh installs it (apt-get install chromium)")
    pytest.skip("chromium is not installed (apt-get install chromium)")


def screenshot(page: Path, png: Path, width: int = 1300, height: int = 2000) -> Image.Image:
    """Render ``page`` (a local file, no network) and return the screenshot."""
    profile = png.parent / "chromium-profile"
    subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-extensions",
            "--disable-background-networking",
            # nothing but the local file: no update checks, sync, pings or metrics uploads
            "--disable-component-update",
            "--disable-sync",
            "--no-pings",
            "--disable-domain-reliability",
            "--disable-default-apps",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            page.resolve().as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return Image.open(png).convert("RGB")


def ink(image: Image.Image) -> float:
    """Share of pixels that are not (near) white."""
    grey = image.convert("L")
    histogram = grey.histogram()
    return sum(histogram[:245]) / (grey.width * grey.height)


def colour_count(image: Image.Image) -> int:
    return len(image.getcolors(maxcolors=1 << 20) or [])
