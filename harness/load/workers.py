"""Where the Locust workers of a master/worker load run live: processes on this machine, or containers
on a scenario's Docker network.

The master always runs on this machine (:mod:`harness.load.runner` spawns it); a :class:`WorkerSite` says
which address it listens on so that its workers reach it, which URL the workers send their requests
to, and starts each worker. Every worker writes its own samples file into the run directory (bind-mounted
at the same path into a container), so the raw samples come back exactly as from one process.

On the docker backend the workers are containers on the scenario network: they reach the service by its
network alias (the traffic stays between the project's containers) and the master on the network's
gateway address. Their image holds Python and Locust only; the locustfile is mounted read-only, so
editing it needs no rebuild.
"""

from __future__ import annotations

import abc
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.docker_images import DOCKER_DIR, ImageRecipe, ensure_image
from harness.waiting import log_tail

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
LOG_TAIL_LINES = 40
#: The load workers' image: Python and Locust (pinned to the host's version), nothing of the project.
LOAD_IMAGE = ImageRecipe("load", DOCKER_DIR / "Dockerfile.load", ("locust",))
_INSIDE = "/opt/servingbdd-load"  # where the locustfile's directory is mounted in a worker container


class Worker(abc.ABC):
    """One started Locust worker."""

    @abc.abstractmethod
    def wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for it to end by itself (never raises)."""

    @abc.abstractmethod
    def kill(self) -> None:
        """End it now and release what it holds (idempotent, never raises)."""

    @abc.abstractmethod
    def log_tail(self) -> str:
        """The last lines of its log."""


class WorkerSite(abc.ABC):
    """Where the workers run, and how they and the master find each other and the target."""

    #: the address the master listens on; the workers connect to it
    master_bind_host: str = "127.0.0.1"

    def target_url(self, url: str) -> str:
        """The base URL the workers send to, for the target the test process reaches at ``url``."""
        return url

    def prepare(self) -> None:  # noqa: B027 - most sites need nothing
        """What must exist before the master starts (it waits a limited time for its workers)."""

    @abc.abstractmethod
    def start(self, index: int, master_port: int, env: Mapping[str, str], rundir: Path) -> Worker:
        """Start worker ``index`` connecting to the master's ``master_port``; it writes into ``rundir``."""

    def describe(self) -> str:
        return "processes on this machine"


# -- processes on this machine -------------------------------------------------------------------------
class ProcessWorker(Worker):
    def __init__(self, process: subprocess.Popen, log: Path) -> None:
        self.process = process
        self.log = log

    def wait(self, timeout: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)  # the worker's own group (see start)
        self.wait(5)

    def log_tail(self) -> str:
        return tail(self.log)


class ProcessSite(WorkerSite):
    """Workers as ``locust --worker`` processes next to the master, on 127.0.0.1."""

    def start(self, index: int, master_port: int, env: Mapping[str, str], rundir: Path) -> Worker:
        log_path = rundir / f"locust-worker-{index}.log"
        argv = [sys.executable, "-m", "locust", *worker_arguments(str(LOCUSTFILE), "127.0.0.1", master_port)]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                cwd=rundir,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a group of its own, so kill() ends what it forked too
            )
        return ProcessWorker(process, log_path)


# -- containers on a Docker network --------------------------------------------------------------------
class ContainerWorker(Worker):
    def __init__(self, container: Any, log: Path) -> None:
        self.container = container
        self.log = log
        self._removed = False

    def wait(self, timeout: float) -> None:
        with contextlib.suppress(Exception):  # a timeout, or the container is gone
            self.container.wait(timeout=max(1, round(timeout)))

    def kill(self) -> None:
        if self._removed:
            return
        self._removed = True
        with contextlib.suppress(Exception):
            self.log.write_bytes(self.container.logs())  # kept with the run, as a process worker's
        with contextlib.suppress(Exception):
            self.container.remove(force=True)

    def log_tail(self) -> str:
        if self._removed:
            return tail(self.log)
        try:
            return self.container.logs(tail=LOG_TAIL_LINES).decode("utf-8", "replace").rstrip()
        except Exception as exc:
            return f"(no log of container {self.container.name}: {exc})"


class ContainerSite(WorkerSite):
    """Workers as containers on ``network``, sending to ``url`` (a service's URL on that network).

    ``labels`` mark the containers as the scenario's (the backend's teardown and the leftover sweep of
    :mod:`harness.docker_cleanup` remove them even if nobody stopped the run).
    """

    def __init__(self, client: Any, network: str, url: str, labels: Mapping[str, str]) -> None:
        self.client = client
        self.network = network
        self.url = url
        self.labels = dict(labels)
        self.master_bind_host = network_gateway(client, network)
        self._image: str | None = None

    def target_url(self, url: str) -> str:
        return self.url

    def describe(self) -> str:
        return f"containers on the Docker network {self.network}"

    def prepare(self) -> None:
        if self._image is None:
            self._image = ensure_image(LOAD_IMAGE, client=self.client).tag  # built offline once, then reused

    def start(self, index: int, master_port: int, env: Mapping[str, str], rundir: Path) -> Worker:
        self.prepare()
        rundir = rundir.resolve()
        inside_env = {  # the load's settings only: this machine's PATH or venv mean nothing in there
            **{k: v for k, v in env.items() if k.startswith("SERVINGBDD_LOAD_") or k == "PYTHONUNBUFFERED"},
            "SERVINGBDD_LOAD_PARENT_PID": "0",  # no pid of this machine is visible in there
            "SERVINGBDD_LOAD_ORIGIN": f"c{index}-",  # the pids of containers repeat: files and ids must not
        }
        container = self.client.containers.run(
            self._image,
            ["locust", *worker_arguments(f"{_INSIDE}/{LOCUSTFILE.name}", self.master_bind_host, master_port)],
            detach=True,
            name=f"{self.network}-load-{index}-{master_port}",
            network=self.network,
            environment=inside_env,
            volumes={
                str(rundir): {"bind": str(rundir), "mode": "rw"},  # samples and endpoints at the same path
                str(LOCUSTFILE.parent): {"bind": _INSIDE, "mode": "ro"},
            },
            working_dir=str(rundir),
            user=f"{os.getuid()}:{os.getgid()}",  # the samples files stay the test process's own
            labels={**self.labels, "servingbdd.service": f"load-worker-{index}"},
        )
        return ContainerWorker(container, rundir / f"locust-worker-{index}.log")


def worker_arguments(locustfile: str, master_host: str, master_port: int) -> list[str]:
    return [
        "-f", locustfile, "--worker",
        "--master-host", master_host, "--master-port", str(master_port), "--loglevel", "INFO",
    ]  # fmt: skip


def network_gateway(client: Any, network: str) -> str:
    """The address of this machine on a Docker bridge network (what its containers reach it at)."""
    attrs = client.networks.get(network).attrs
    for config in (attrs.get("IPAM") or {}).get("Config") or []:
        if config.get("Gateway"):
            return str(config["Gateway"]).split("/", 1)[0]
    raise RuntimeError(f"the Docker network {network} has no gateway address: its containers cannot reach us")


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no log {path.name})"
    return log_tail(text, lines)
