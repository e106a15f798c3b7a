"""Load generation: Locust in a subprocess, raw per-request samples back as Observations."""

from harness.load.runner import LoadError, LoadProfile, LoadRun

__all__ = ["LoadError", "LoadProfile", "LoadRun"]
