"""The Locust user that :mod:`harness.load.runner` starts in a subprocess.

Never import this module (or ``locust``) in the test process: importing locust monkey-patches the
interpreter with gevent, which breaks pytest and asyncio. The runner runs ``python -m locust -f
<this file>`` and passes the settings through ``SBDD_LOAD_*`` environment variables (not ``LOCUST_*``,
which Locust itself reads as options).

Each request becomes one JSON line in ``$SBDD_LOAD_SAMPLES_DIR/samples-<pid>.jsonl`` (one file per
process, so ``--processes`` needs no locking)::

    {"t": wall-clock start, "lat": seconds (perf_counter), "status": 200 | 0 on no answer,
     "ver": model_version or null, "err": error text or null, "id": request id, "target": "POST /v2/..."}

Lines are flushed as they are written (line-buffered file): the test process reads them while the load
runs, and no sample is lost however Locust exits.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any, TextIO

import gevent
from locust import FastHttpUser, constant, events

TASK_NAMES = ("infer", "metadata", "ready", "live")
_ERROR_TEXT_LIMIT = 300


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(f"SBDD_LOAD_{name}", default)
    if value is None:
        raise RuntimeError(f"SBDD_LOAD_{name} is not set: this locustfile is started by harness.load.runner")
    return value


SAMPLES_DIR = _env("SAMPLES_DIR")
MODEL = _env("MODEL", "demo")
VERSION = _env("VERSION", "") or None
ROWS = int(_env("ROWS", "1"))
THINK_S = float(_env("THINK_S", "0"))
TIMEOUT_S = float(_env("TIMEOUT_S", "10"))
RUN_ID = _env("RUN_ID", "load")
PARENT_PID = int(_env("PARENT_PID", "0"))
TASK_MIX: dict[str, int] = json.loads(_env("TASK_MIX", '{"infer": 1}'))

_unknown = sorted(set(TASK_MIX) - set(TASK_NAMES))
if _unknown:
    raise ValueError(f"unknown load task(s) {_unknown}; known: {list(TASK_NAMES)}")

MODEL_PATH = f"/v2/models/{MODEL}" + (f"/versions/{VERSION}" if VERSION else "")
# A fixed, valid [ROWS, 4] FP32 batch; only the request id changes between requests.
_DATA = json.dumps([round(0.1 * (i % 40) - 2.0, 3) for i in range(ROWS * 4)])
_BODY_HEAD = '{"id": '
_BODY_TAIL = f', "inputs": [{{"name": "input", "shape": [{ROWS}, 4], "datatype": "FP32", "data": {_DATA}}}]}}'


class SampleWriter:
    """One line-buffered JSONL file per process (reopened after a fork)."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._pid: int | None = None
        self._file: TextIO | None = None

    def write(self, record: dict[str, Any]) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            path = os.path.join(self._directory, f"samples-{self._pid}.jsonl")
            self._file = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives with the process
        assert self._file is not None
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")


_writer = SampleWriter(SAMPLES_DIR)
_ids = itertools.count()


def _request_id() -> str:
    return f"{RUN_ID}-{os.getpid()}-{next(_ids)}"


def _model_version(body: str) -> str | None:
    try:
        value = json.loads(body).get("model_version")
    except (ValueError, AttributeError):
        return None
    return None if value is None else str(value)


class BaseModelUser(FastHttpUser):
    """Sends requests with the profile's think time between them (0: back to back, like wrk), and
    records each one."""

    abstract = True
    wait_time = constant(THINK_S)
    network_timeout = TIMEOUT_S
    connection_timeout = TIMEOUT_S

    def send(self, method: str, path: str, body: str | None, request_id: str | None) -> None:
        target = f"{method} {path}"
        headers = {"Content-Type": "application/json"} if body is not None else None
        started = time.time()
        t0 = time.perf_counter()
        with self.client.request(
            method, path, data=body, headers=headers, name=target, catch_response=True
        ) as response:
            latency = time.perf_counter() - t0
            status = int(response.status_code or 0)
            text = (response.text or "") if status else ""
            error: str | None = None
            if status == 0:
                error = f"{type(response.error).__name__}: {response.error}"
            elif not 200 <= status < 300:
                error = text[:_ERROR_TEXT_LIMIT]
            if error is None:
                response.success()
            else:
                response.failure(error)
        _writer.write(
            {
                "t": started,
                "lat": latency,
                "status": status,
                "ver": _model_version(text) if status == 200 and method == "POST" else None,
                "prov": response.headers.get("x-provider") if status else None,
                "err": error,
                "id": request_id,
                "target": target,
            }
        )


# Task functions take the user; the mix is given to the class body because Locust's metaclass turns a
# ``tasks`` dict into its weighted list when the class is created (assigning it later has no effect).
def infer(user: BaseModelUser) -> None:
    request_id = _request_id()
    user.send("POST", f"{MODEL_PATH}/infer", _BODY_HEAD + json.dumps(request_id) + _BODY_TAIL, request_id)


def metadata(user: BaseModelUser) -> None:
    user.send("GET", MODEL_PATH, None, None)


def ready(user: BaseModelUser) -> None:
    user.send("GET", "/v2/health/ready", None, None)


def live(user: BaseModelUser) -> None:
    user.send("GET", "/v2/health/live", None, None)


_TASKS: dict[str, Callable[[BaseModelUser], None]] = {
    "infer": infer,
    "metadata": metadata,
    "ready": ready,
    "live": live,
}


class ModelUser(BaseModelUser):
    """The user Locust runs, with the task mix from ``SBDD_LOAD_TASK_MIX``."""

    tasks = {_TASKS[name]: int(weight) for name, weight in TASK_MIX.items() if int(weight) > 0}


def _watch_parent() -> None:
    """Quit (gracefully, via SIGTERM) when the test process that started us is gone."""
    while True:
        gevent.sleep(1.0)
        try:
            os.kill(PARENT_PID, 0)
        except ProcessLookupError:
            os.kill(os.getpid(), signal.SIGTERM)
            return
        except PermissionError:
            pass  # alive, owned by someone else (cannot happen for our parent, but harmless)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    # gevent timers count from the loop's cached clock, stale by the seconds spent importing and setting
    # up before the loop first ran: without this, --run-time 2 fired after 0.8 s on a loaded machine.
    gevent.get_hub().loop.update_now()
    if PARENT_PID > 0:
        gevent.spawn(_watch_parent)
