"""Corpus: a conftest that star-imports a step module (its step fixtures become visible here)."""

import subprocess
import urllib.request

import pytest
from steps_shared import *  # noqa: F403


class Host:
    """What a testinfra-like host fixture is: its methods reach the machine."""

    def service(self, name):
        return subprocess.run(["true", name], check=False)


@pytest.fixture
def host():
    return Host()


@pytest.fixture
def pages():
    return {"main": urllib.request.build_opener()}
