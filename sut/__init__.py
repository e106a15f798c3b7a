"""The reference model-serving cluster (system under test): gateway, workers, catalog, CLI."""

__version__ = "0.1.0"
