"""The ``sut`` commands that drive a running cluster through its admin API (status, swap, rollback,
rotate-join-token), and how every command finds the gateway and talks to it."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import httpx

from sut import admin_client, cluster_state
from sut.admin_client import AdminApiError
from sut.cluster_state import ClusterRecord
from sut.token_source import new_token, write_token_file


class CliError(Exception):
    """An expected failure: reported as one line on stderr, exit code 1."""


# --- talking to the gateway -------------------------------------------------------------------


class AdminClient:
    """The gateway's admin API (:class:`sut.admin_client.AdminClient`, whose proxy rule keeps a local
    gateway direct); every failure becomes a one-line :class:`CliError`."""

    def __init__(self, gateway_url: str, token: str | None, timeout: float = 30.0) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self._api = admin_client.AdminClient(self.gateway_url, token, timeout=timeout)

    def close(self) -> None:
        self._api.close()

    def request(self, method: str, path: str, body: dict | None = None, *, what: str) -> Any:
        try:
            return self._api.call(method, path, json=body)
        except AdminApiError as exc:
            raise CliError(self._say(exc, what)) from exc

    def _say(self, exc: AdminApiError, what: str) -> str:
        if exc.status is None:
            if isinstance(exc.__cause__, httpx.TimeoutException):
                return f"gateway {self.gateway_url} did not answer in time"
            return f"gateway unreachable at {self.gateway_url} ({exc.__cause__})"
        if exc.status == 401:
            return f"the gateway at {self.gateway_url} rejected the admin token (401)"
        if exc.status >= 400:
            return f"{what} ({exc.status}): {exc.detail}"
        return f"{what}: the gateway answered something that is not JSON"


def _resolve_target(args: argparse.Namespace) -> tuple[str, str | None, ClusterRecord | None]:
    """Gateway URL, admin token and (when known) the cluster record, by the documented precedence."""
    url = args.gateway or os.environ.get("SUT_GATEWAY")
    cluster = cluster_state.find_by_gateway(url) if url else cluster_state.latest()
    if not url:
        if cluster is None:
            raise CliError(
                "no gateway: pass --gateway URL, set SUT_GATEWAY, or start a cluster with `sut up`"
            )
        url = cluster.gateway_url
    token = args.token or os.environ.get("SUT_ADMIN_TOKEN") or (cluster.admin_token if cluster else None)
    return url, token, cluster


def _admin(args: argparse.Namespace) -> AdminClient:
    url, token, _ = _resolve_target(args)
    if not token:
        raise CliError(f"no admin token for {url}: pass --token or set SUT_ADMIN_TOKEN")
    return AdminClient(url, token, timeout=args.timeout)


# --- sut status / swap / rollback ------------------------------------------------------------


def model_refs(models: list[Any]) -> list[dict[str, str]]:
    return [{"name": str(m.get("name")), "version": str(m.get("version"))} for m in models]


def cmd_status(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        status = admin.request("GET", "/admin/status", what="status failed")
    finally:
        admin.close()
    if args.json:
        print(json.dumps(status, indent=2, sort_keys=True))
        return 0
    print(f"gateway  {status.get('gateway', admin.gateway_url)}")
    workers = status.get("workers", [])
    print(f"workers  {len(workers)}")
    for w in workers:
        models = ", ".join(f"{m['name']}:{m['version']}" for m in model_refs(w.get("models", []))) or "-"
        health = "healthy" if w.get("healthy") else "UNHEALTHY"
        print(f"  {w.get('id')}  {w.get('url')}  {w.get('name', '')}  {health}  {models}")
    entries = status.get("models", [])
    print(f"models   {len(entries)}")
    for m in entries:
        aliases = ", ".join(f"{k}={v}" for k, v in (m.get("aliases") or {}).items()) or "no alias"
        versions = ", ".join(str(v) for v in m.get("versions", []))
        print(f"  {m.get('name')}  versions {versions}  {aliases}")
    return 0


def _print_swap(answer: dict) -> None:
    duration = answer.get("duration_s")
    took = f" in {duration:.2f} s" if isinstance(duration, int | float) else ""
    print(f"{answer.get('model')}: {answer.get('from_version')} -> {answer.get('to_version')}{took}")


def cmd_swap(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        answer = admin.request(
            "POST", f"/admin/models/{args.model}/swap", {"version": args.version}, what="swap refused"
        )
    finally:
        admin.close()
    _print_swap(answer)
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    admin = _admin(args)
    try:
        answer = admin.request("POST", f"/admin/models/{args.model}/rollback", {}, what="rollback refused")
    finally:
        admin.close()
    _print_swap(answer)
    return 0


# --- sut rotate-join-token -------------------------------------------------------------------


def cmd_rotate_join_token(args: argparse.Namespace) -> int:
    """Write a new join token into the cluster's join token file: the gateway and the workers re-read it
    (no restart); the gateway keeps accepting the previous one for its overlap (``--join-token-overlap``)."""
    url, _, cluster = _resolve_target(args)
    if cluster is None or not cluster.join_token_file:
        raise CliError(f"no join token file is recorded for {url}: only clusters `sut up` started rotate")
    admin = _admin(args)
    try:
        before = admin.request("GET", "/admin/status", what="status failed").get("join_token") or {}
        write_token_file(Path(cluster.join_token_file), args.new_token or new_token())
        deadline = time.monotonic() + args.timeout
        while True:  # the gateway takes the new token at its next look at the file (any auth, any status)
            now = admin.request("GET", "/admin/status", what="status failed").get("join_token") or {}
            if now.get("rotations", 0) > before.get("rotations", 0):
                break
            if time.monotonic() > deadline:
                raise CliError(f"the gateway at {url} did not take the new join token in {args.timeout:g} s")
            time.sleep(0.1)
    finally:
        admin.close()
    until = now.get("previous_valid_until")
    left = f"{until - time.time():.0f} s more" if isinstance(until, int | float) else "its overlap"
    print(f"join token rotated in {cluster.join_token_file}; the previous one is accepted for {left}")
    return 0
