"""Corpus: the root conftest registers a step library as a plugin (its steps are visible everywhere)."""

pytest_plugins = ["steplib.common_steps"]
