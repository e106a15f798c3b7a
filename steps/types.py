"""Custom ``parse`` types for step patterns, shared by both runners (see ``CUSTOM_TYPES``).

Import this module before any step module that uses the types: patterns compile at decoration time.
"""

from __future__ import annotations

import parse

from harness.steps_registry import parse_type

_QUOTED_LIST = r'"[^"]+"(?:(?:, | and )"[^"]+")*'


def _quoted_list(text: str) -> tuple[str, ...]:
    parts = text.replace(" and ", ",").split(",")
    return tuple(p.strip().strip('"') for p in parts if p.strip())


@parse_type("Versions")
@parse.with_pattern(_QUOTED_LIST)
def parse_versions(text: str) -> tuple[str, ...]:
    """``"1"`` / ``"1" and "2"`` / ``"1", "2" and "3"`` -> ("1", "2", "3")."""
    return _quoted_list(text)


@parse_type("Actions")
@parse.with_pattern(_QUOTED_LIST)
def parse_actions(text: str) -> tuple[str, ...]:
    """``"canary_reduced", "canary_alert" and "canary_rollback"`` -> the audit actions, in order."""
    return _quoted_list(text)


@parse_type("Workers")
@parse.with_pattern(r"\d+ workers?")
def parse_workers(text: str) -> int:
    """``1 worker`` / ``3 workers`` -> the count."""
    return int(text.split()[0])


@parse_type("Requests")
@parse.with_pattern(r"\d+ (?:inference )?requests?")
def parse_requests(text: str) -> int:
    """``1 request`` / ``20 inference requests`` -> the count."""
    return int(text.split()[0])


@parse_type("WorkersAre")
@parse.with_pattern(r"\d+ (?:worker is|workers are)")
def parse_workers_are(text: str) -> int:
    """``1 worker is`` / ``2 workers are`` -> the count."""
    return int(text.split()[0])


@parse_type("Runs")
@parse.with_pattern(r"\d+ runs?")
def parse_runs(text: str) -> int:
    """``1 run`` / ``3 runs`` -> the count."""
    return int(text.split()[0])


@parse_type("Alternatives")
@parse.with_pattern(r'"[^"]+"(?: or "[^"]+")*')
def parse_alternatives(text: str) -> tuple[str, ...]:
    """``"shape"`` / ``"shape" or "size"`` -> ("shape", "size")."""
    return tuple(part.strip().strip('"') for part in text.split(" or "))


@parse_type("Duration")
@parse.with_pattern(r"\d+(?:\.\d+)? seconds?")
def parse_duration(text: str) -> float:
    """``1 second`` / ``2.5 seconds`` -> seconds as a float."""
    return float(text.split()[0])


@parse_type("WorkerName")
@parse.with_pattern(r"worker-\d+")
def parse_worker_name(text: str) -> str:
    """``worker-2``: a worker's service name (the backend names workers in start order)."""
    return text


@parse_type("MoreWorkersStart")
@parse.with_pattern(r"\d+ more (?:worker starts|workers start)")
def parse_more_workers_start(text: str) -> int:
    """``1 more worker starts`` / ``3 more workers start`` -> the count."""
    return int(text.split()[0])
