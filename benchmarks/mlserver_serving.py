"""MLServer serving the iris fixture: latency at 1 and 50 users, and requests lost while versions swap.

    python benchmarks/mlserver_serving.py [--backend local|docker] [--parallel-workers 0|1]
                                          [--seconds 10] [--swaps 6]

* start: seconds from ``mlserver start`` to the model answering ready;
* 1 user: back-to-back requests for ``--seconds``: p50 / p99 (ms, from our own samples);
* 50 users: each sends, then pauses 0.1 s (the features' load profile), for ``--seconds``;
* swaps: with the same 50 users running, ``--swaps`` loads alternating v2 / v1 (settings rewritten, then
  ``POST /v2/repository/models/iris/load``), 1.5 s apart; every non-200 answer is counted with its body.

Prints the figures; asserts nothing (the machine's load decides them). Every answer's output is checked
against the expected value of v1 or v2 computed here, so a wrong answer is counted as one too.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from fixtures.sklearn_models import build_versions, expected_outputs, infer_request, valid_rows
from harness.slo import percentile
from harness.targets.mlserver.repository import RepositoryClient, ServerSettings, make_repository
from harness.targets.mlserver.server import MLServerHandle, start_container, start_local

THINK_S = 0.1
ROWS = valid_rows(1, seed=3)


class Users:
    """``count`` threads sending unversioned infer requests; every answer recorded with its time."""

    def __init__(self, url: str, count: int, think_s: float, expected: dict[str, float]) -> None:
        self.url, self.count, self.think_s, self.expected = url, count, think_s, expected
        self.samples: list[tuple[float, float, int, str]] = []  # (sent at, seconds, status, version | body)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._user, daemon=True) for _ in range(count)]
        self._body = json.dumps(infer_request(ROWS)).encode()

    def _user(self) -> None:
        headers = {"content-type": "application/json"}
        with httpx.Client(base_url=self.url, trust_env=False, timeout=10) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    answer = client.post("/v2/models/iris/infer", content=self._body, headers=headers)
                    status, what = answer.status_code, self._judge(answer)
                except httpx.HTTPError as exc:
                    status, what = -1, f"{type(exc).__name__}: {exc}"
                self.samples.append((sent, time.monotonic() - sent, status, what))
                if self.think_s:
                    time.sleep(self.think_s)

    def _judge(self, answer: httpx.Response) -> str:
        if answer.status_code != 200:
            return answer.text[:160]
        value = answer.json()["outputs"][0]["data"][0]
        claimed = answer.json().get("model_version")
        computed = next((v for v, e in self.expected.items() if abs(value - e) < 1e-9), None)
        if computed is None or computed != claimed:
            return f"WRONG: {value} (claimed version {claimed})"
        return computed

    def __enter__(self) -> Users:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


def latency(server: MLServerHandle, users: int, think_s: float, seconds: float, expected) -> None:
    with Users(server.url, users, think_s, expected) as run:
        time.sleep(seconds)
    ok = [s[1] * 1000 for s in run.samples if s[2] == 200 and not s[3].startswith("WRONG")]
    bad = Counter(s[2] for s in run.samples if s[2] != 200 or s[3].startswith("WRONG"))
    p99 = f"{percentile(ok, 0.99):.1f}" if len(ok) >= 100 else "n/a (too few samples)"
    print(
        f"  {users:>2} user(s), think {think_s:.1f} s: {len(run.samples) / seconds:6.1f} req/s, "
        f"p50 {statistics.median(ok):.1f} ms, p99 {p99} ms, not OK: {dict(bad) or 0}"
    )


def swaps(server: MLServerHandle, repo: RepositoryClient, count: int, expected) -> None:
    marks: list[tuple[str, float, float, int]] = []
    with Users(server.url, 50, THINK_S, expected) as run:
        time.sleep(1.5)
        for index in range(count):
            version = "2" if index % 2 == 0 else "1"
            began = time.monotonic()
            answer = repo.load_version("iris", version)
            marks.append((version, began, time.monotonic(), answer.status_code))
            time.sleep(1.5)
    print(f"  {len(run.samples)} requests during {count} swaps under 50 users")
    for version, began, ended, status in marks:
        during = [s for s in run.samples if began <= s[0] <= ended or began <= s[0] + s[1] <= ended]
        lost = [s for s in during if s[2] != 200 or s[3].startswith("WRONG")]
        versions = Counter(s[3] for s in during if s[2] == 200)
        print(
            f"  load v{version}: answered {status} in {(ended - began) * 1000:.0f} ms; "
            f"{len(during)} requests overlapped it, answered by {dict(versions)}, lost {len(lost)}"
            + (f": e.g. {lost[0][2]} {lost[0][3]}" if lost else "")
        )
    total = Counter((s[2], s[3][:90]) for s in run.samples if s[2] != 200 or s[3].startswith("WRONG"))
    print(f"  all non-OK answers of the run: {dict(total) or 0}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("local", "docker"), default="local")
    parser.add_argument("--parallel-workers", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--swaps", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mlserver-bench-") as tmp:
        root = Path(tmp) / "repo"
        artifacts = build_versions(root)
        expected = {v: expected_outputs(a.path, ROWS)[0] for v, a in artifacts.items()}
        make_repository(root, ServerSettings(0, 0, 0), {"iris": "1"})
        started = time.monotonic()
        if args.backend == "docker":
            server = start_container(root, parallel_workers=args.parallel_workers)
        else:
            server = start_local(root, Path(tmp) / "work", parallel_workers=args.parallel_workers)
        with server:
            server.wait_model_ready("iris")
            print(f"mlserver ({args.backend}, parallel_workers={args.parallel_workers}): "
                  f"ready in {time.monotonic() - started:.1f} s")  # fmt: skip
            latency(server, 1, 0.0, args.seconds, expected)
            latency(server, 50, THINK_S, args.seconds, expected)
            if args.swaps:
                swaps(server, RepositoryClient(root, server.url), args.swaps, expected)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
