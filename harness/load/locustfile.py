"""The Locust user that :mod:`harness.load.runner` starts in a subprocess.

Never import this module (or ``locust``) in the test process: importing locust monkey-patches the
interpreter with gevent, which breaks pytest and asyncio. The runner runs ``python -m locust -f
<this file>`` and passes the settings through ``SERVINGBDD_LOAD_*`` environment variables (not ``LOCUST_*``,
which Locust itself reads as options). It knows no model: what to call comes from the JSON file named
by ``SERVINGBDD_LOAD_ENDPOINTS`` (``[{name, weight, method, path, body|null}]``, see
:mod:`harness.load.endpoints`), and the user count over time from ``SERVINGBDD_LOAD_SCHEDULE`` when set (a
``LoadTestShape``; without it, Locust's ``--users``/``--run-time`` apply).

Each request becomes one JSON line in ``$SERVINGBDD_LOAD_SAMPLES_DIR/samples-<origin><pid>.jsonl`` (one file
per process, so ``--processes`` needs no locking; ``SERVINGBDD_LOAD_ORIGIN`` tells containers apart)::

    {"t": wall-clock start, "lat": seconds (perf_counter), "status": 200 | 0 on no answer,
     "ver": model_version or null, "out": {output name: data} or null, "err": error text or null,
     "id": request id, "target": "POST /v2/..."}

Lines are flushed as they are written (line-buffered file): the test process reads them while the load
runs, and no sample is lost however Locust exits.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import gevent
from locust import FastHttpUser, LoadTestShape, constant, constant_throughput, events

_ERROR_TEXT_LIMIT = 300


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(f"SERVINGBDD_LOAD_{name}", default)
    if value is None:
        raise RuntimeError(
            f"SERVINGBDD_LOAD_{name} is not set: this locustfile is started by harness.load.runner"
        )
    return value


SAMPLES_DIR = _env("SAMPLES_DIR")
ENDPOINTS: list[dict[str, Any]] = json.loads(Path(_env("ENDPOINTS")).read_text(encoding="utf-8"))
SCHEDULE: dict[str, Any] | None = json.loads(_env("SCHEDULE", "null"))
THINK_S = float(_env("THINK_S", "0"))
USER_RATE = float(_env("USER_RATE", "0"))  # requests per second per user; 0 = think_s between requests
TIMEOUT_S = float(_env("TIMEOUT_S", "10"))
RUN_ID = _env("RUN_ID", "load")
PARENT_PID = int(_env("PARENT_PID", "0"))
ORIGIN = _env("ORIGIN", "")  # a container's prefix: pids repeat across containers, names must not
HEADERS: dict[str, str] = json.loads(_env("HEADERS", "{}"))  # an external target's credentials


class SampleWriter:
    """One line-buffered JSONL file per process (reopened after a fork)."""

    def __init__(self, directory: str) -> None:
        self._directory = directory
        self._pid: int | None = None
        self._file: TextIO | None = None

    def write(self, record: dict[str, Any]) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            path = os.path.join(self._directory, f"samples-{ORIGIN}{self._pid}.jsonl")
            self._file = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives with the process
        assert self._file is not None
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")


_writer = SampleWriter(SAMPLES_DIR)
_ids = itertools.count()


def _request_id() -> str:
    return f"{RUN_ID}-{ORIGIN}{os.getpid()}-{next(_ids)}"


def _answer_fields(body: str) -> tuple[str | None, dict[str, Any] | None]:
    """The version an inference answer names and its outputs (name -> data), to judge what was computed."""
    if '"model_version"' not in body:  # cheap test first: most answers (health, metadata) have none
        return None, None
    try:
        answer = json.loads(body)
        value = answer.get("model_version")
        outputs = {str(o.get("name")): o.get("data") for o in answer.get("outputs") or []}
    except (ValueError, AttributeError):
        return None, None
    return (None if value is None else str(value)), (outputs or None)


class BaseModelUser(FastHttpUser):
    """Sends requests paced by the profile (think time, or a per-user rate), and records each one."""

    abstract = True
    wait_time = constant_throughput(USER_RATE) if USER_RATE > 0 else constant(THINK_S)
    network_timeout = TIMEOUT_S
    connection_timeout = TIMEOUT_S

    def send(self, method: str, path: str, body: str | None, request_id: str | None) -> None:
        target = f"{method} {path}"
        headers = {**HEADERS, "Content-Type": "application/json"} if body is not None else HEADERS
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
        version, outputs = _answer_fields(text) if 200 <= status < 300 else (None, None)
        _writer.write(
            {
                "t": started,
                "lat": latency,
                "status": status,
                "ver": version,
                "out": outputs,
                "prov": response.headers.get("x-provider") if status else None,
                "err": error,
                "id": request_id,
                "target": target,
            }
        )


def _task(endpoint: dict[str, Any]) -> Callable[[BaseModelUser], None]:
    """A task calling one endpoint; a JSON-object body gets a fresh request id (V2 ``"id"``) each time."""
    method, path, body = endpoint["method"], endpoint["path"], endpoint.get("body")
    if isinstance(body, dict):
        rest = json.dumps({k: v for k, v in body.items() if k != "id"}, separators=(",", ":"))
        tail = ("," + rest[1:]) if rest != "{}" else "}"

        def with_id(user: BaseModelUser) -> None:
            request_id = _request_id()
            user.send(method, path, '{"id":' + json.dumps(request_id) + tail, request_id)

        return with_id
    text = None if body is None else json.dumps(body)

    def plain(user: BaseModelUser) -> None:
        user.send(method, path, text, None)

    return plain


# The weights are given to the class body because Locust's metaclass turns a ``tasks`` dict into its
# weighted list when the class is created (assigning it later has no effect).
class ModelUser(BaseModelUser):
    """The user Locust runs: the endpoints of ``$SERVINGBDD_LOAD_ENDPOINTS`` at their weights."""

    tasks = {_task(e): int(e["weight"]) for e in ENDPOINTS if int(e["weight"]) > 0}


if SCHEDULE is not None:

    class ProfileShape(LoadTestShape):
        """The profile's user-count schedule (:mod:`harness.load.schedule`), looked up at each tick."""

        _at = [float(step[0]) for step in SCHEDULE["steps"]]

        def tick(self) -> tuple[int, float] | None:
            assert SCHEDULE is not None
            t = self.get_run_time()
            if t >= float(SCHEDULE["end_s"]):
                return None
            _, users, rate = SCHEDULE["steps"][max(0, bisect.bisect_right(self._at, t) - 1)]
            return int(users), float(rate)


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
