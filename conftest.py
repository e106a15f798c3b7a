"""Registers the harness's pytest plugin for runs from this repository: ``pytest --gherkin`` runs the
features, plain ``pytest`` the project's own tests. (Same name as ``-p harness.pytest_plugin``, so an
explicit ``-p`` does not register it twice.)"""

pytest_plugins = ["harness.pytest_plugin"]
