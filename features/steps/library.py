"""Registers every step of the shared library (``steps/``) with behave; see harness.behave_env."""

from harness.behave_env import register_steps

register_steps()
