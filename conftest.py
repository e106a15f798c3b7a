"""The harness's pytest plugin comes in through its ``pytest11`` entry point (``pip install -e .``):
``pytest --gherkin`` runs the features, plain ``pytest`` the project's own tests."""
