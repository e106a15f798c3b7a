"""MLServer's own virtual environment, for running it as a local process.

MLServer 1.7.1 pins fastapi below 0.116 and changes greenlet (which Locust's gevent uses): installed into
our ``.venv`` it would change the stack the harness runs on. So it lives in a venv of its own, cached under
``<cache>/mlserver-venv/<hash of the pins>`` and made once with ``pip install`` through the machine's own
pip configuration (index, certificates, proxy: nothing set here).

The pins: MLServer and its scikit-learn runtime, ``uvloop<0.22`` (with 0.22 its parallel inference
workers crash at start: "There is no current event loop"), and the host's scikit-learn, numpy and
joblib versions, so that a model pickled with joblib in the test process loads unchanged in the server.
When those host pins do not resolve alongside MLServer's, the venv is made without them and a warning
says so (joblib files may then load with an InconsistentVersionWarning, or not at all).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from harness.docker_images import cache_dir

MLSERVER_VERSION = "1.7.1"
MLSERVER_PINS = (f"mlserver=={MLSERVER_VERSION}", f"mlserver-sklearn=={MLSERVER_VERSION}", "uvloop<0.22")
# What a joblib-pickled scikit-learn model depends on: these must match between test process and server.
HOST_PINNED = ("scikit-learn", "numpy", "joblib")
_COMPLETE = ".complete"  # written last: a venv without it is a half-made one (interrupted install)
_PROGRESS = ("Installing collected", "ERROR", "WARNING")  # one line per stage, not one per package


class MLServerEnvError(RuntimeError):
    """The MLServer venv could not be made; the message says which step and pip's last lines."""


def host_pins() -> list[str]:
    """``name==version`` for the host's scikit-learn, numpy and joblib (those installed here)."""
    pins = []
    for dist in HOST_PINNED:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            pins.append(f"{dist}=={importlib.metadata.version(dist)}")
    return pins


def unresolvable(pip_error: str) -> bool:
    """Whether pip's error says the pins cannot be had together (not e.g. a network failure)."""
    return any(
        m in pip_error for m in ("ResolutionImpossible", "conflicting dependencies", "No matching distri")
    )


def requirements(*, with_host_pins: bool = True) -> list[str]:
    """MLServer's pins, plus (by default) the host's model-format pins."""
    return [*MLSERVER_PINS, *(host_pins() if with_host_pins else [])]


def venv_dir(reqs: list[str], *, cache: Path | None = None) -> Path:
    """Where the venv for ``reqs`` lives: keyed by the pins and the interpreter's version."""
    key = "\n".join([f"{sys.version_info.major}.{sys.version_info.minor}", *sorted(reqs)])
    return (cache or cache_dir()) / "mlserver-venv" / hashlib.sha256(key.encode()).hexdigest()[:16]


def ensure_venv(*, cache: Path | None = None, echo: Callable[[str], None] = print) -> Path:
    """The path of a complete MLServer venv, made now if missing (~530 MB, minutes the first time)."""
    reqs = requirements()
    target = venv_dir(reqs, cache=cache)
    if (target / _COMPLETE).exists():
        return target
    fallback = venv_dir(requirements(with_host_pins=False), cache=cache)
    if (fallback / _COMPLETE).exists() and (fallback / ".host-pins-unresolvable").exists():
        return fallback  # an earlier run found that the host's pins cannot be had with MLServer's
    try:
        _make(target, reqs, echo)
        return target
    except MLServerEnvError as exc:
        if not unresolvable(str(exc)):
            raise
        echo(
            "servingbdd: mlserver venv: the host's "
            f"{', '.join(host_pins())} do not resolve with {' '.join(MLSERVER_PINS)}; "
            "installing without them (joblib models may not load across versions)"
        )
    _make(fallback, requirements(with_host_pins=False), echo)
    (fallback / ".host-pins-unresolvable").write_text("\n".join(host_pins()) + "\n")
    return fallback


def mlserver_executable(*, cache: Path | None = None, echo: Callable[[str], None] = print) -> Path:
    """The ``mlserver`` command of the venv (made first if needed)."""
    return ensure_venv(cache=cache, echo=echo) / "bin" / "mlserver"


def _make(target: Path, reqs: list[str], echo: Callable[[str], None]) -> None:
    """Create the venv at ``target`` and pip-install ``reqs``; one process at a time (file lock)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f"{target.name}.lock"):
        if (target / _COMPLETE).exists():  # made by another process while we waited
            return
        shutil.rmtree(target, ignore_errors=True)  # a half-made venv: start over
        started = time.monotonic()
        echo(f"servingbdd: mlserver venv: creating {target} (once; ~530 MB)")
        # The base interpreter, not our .venv's: the new venv must not see our site-packages.
        _run([sys._base_executable, "-m", "venv", str(target)], "creating the venv", echo=None)
        pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--progress-bar", "off"]
        echo(f"servingbdd: mlserver venv: pip install {' '.join(reqs)}")
        _run([*pip, *reqs], "pip install", echo=echo)
        (target / _COMPLETE).write_text("\n".join(reqs) + "\n")
        echo(f"servingbdd: mlserver venv: ready in {time.monotonic() - started:.0f} s")


def _run(argv: list[str], what: str, *, echo: Callable[[str], None] | None) -> None:
    """Run ``argv``, echoing pip's progress lines; raise with the last lines of output on failure."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    for line in proc.stdout:
        lines.append(line.rstrip())
        if echo and line.startswith(_PROGRESS):
            echo(f"  {line.rstrip()[:160]}")
    if proc.wait() != 0:
        tail = " | ".join(line.strip() for line in lines[-6:] if line.strip())
        raise MLServerEnvError(f"mlserver venv: {what} failed (exit {proc.returncode}): {tail}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
