"""Choose a cluster backend by name: ``local``, ``docker``, or ``auto``.

``auto`` picks docker when a Docker engine answers a ping and the docker backend module is present,
else local (the embedded default). The choice and its reason are logged at WARNING as one line; the
runners print it in their headers.

``SERVINGBDD_STARTUP_TIMEOUT_S`` overrides how long a backend waits for a service to answer its health
path (defaults: 60 s local, 120 s docker), for machines slower or busier than a 2-core CI runner.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

from harness.backends.base import Backend, BackendError

log = logging.getLogger(__name__)

BACKENDS = ("local", "docker", "auto")
PING_TIMEOUT_S = 3
STARTUP_TIMEOUT_ENV = "SERVINGBDD_STARTUP_TIMEOUT_S"


def docker_available() -> tuple[bool, str]:
    """Whether a Docker engine answers, and why (not)."""
    try:
        import docker
    except ImportError as exc:
        return False, f"the docker package is not installed ({exc})"
    try:
        client = docker.from_env(timeout=PING_TIMEOUT_S)
    except Exception as exc:
        return False, f"no Docker engine configured ({type(exc).__name__}: {exc})"
    try:
        client.ping()
        return True, f"a Docker engine answered at {client.api.base_url}"
    except Exception as exc:
        return False, f"the Docker engine did not answer a ping ({type(exc).__name__}: {exc})"
    finally:
        client.close()


def _docker_backend_module_present() -> bool:
    try:
        return importlib.util.find_spec("harness.backends.docker") is not None
    except (ImportError, ValueError):
        return False


_auto_choice: tuple[str, str] | None = None  # decided once per process: one ping, one notice


def choose(name: str) -> tuple[str, str]:
    """The concrete backend name for ``name`` and a one-line notice saying why."""
    global _auto_choice
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if name != "auto":
        return name, f"backend: {name} (requested)"
    if _auto_choice is None:
        _auto_choice = _choose_auto()
        log.warning(_auto_choice[1])
    return _auto_choice


def _choose_auto() -> tuple[str, str]:
    up, why = docker_available()
    if not up:
        return "local", f"backend: local (auto: {why})"
    if not _docker_backend_module_present():
        return "local", f"backend: local (auto: {why}, but harness.backends.docker is not available)"
    return "docker", f"backend: docker (auto: {why})"


def startup_timeout_override() -> float | None:
    """Seconds from ``SERVINGBDD_STARTUP_TIMEOUT_S``, or None when it is not set."""
    raw = os.environ.get(STARTUP_TIMEOUT_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise BackendError(f"{STARTUP_TIMEOUT_ENV}={raw!r}: give a positive number of seconds")
    return value


def make_backend(name: str, workdir: Path) -> Backend:
    """A fresh backend for one scenario, its scratch space under ``workdir``."""
    chosen, _ = choose(name)
    timeout = startup_timeout_override()
    if chosen == "local":
        from harness.backends.local import LocalBackend

        backend: Backend = LocalBackend(Path(workdir))
    else:
        try:
            from harness.backends.docker import DockerBackend
        except ImportError as exc:
            raise BackendError(f"the docker backend cannot be imported: {exc}") from exc
        backend = DockerBackend(Path(workdir))
    if timeout is not None:
        backend.startup_timeout = timeout
    return backend
