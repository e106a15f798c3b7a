"""The end of every service's log, attached to a failed scenario's report by both runners."""

from __future__ import annotations

from typing import Any

LOG_TAIL_LINES = 40
#: Routine lines that would crowd out the interesting ones (a heartbeat every 0.3 s fills 40 lines fast).
_NOISE = ('/heartbeat "HTTP/1.1 200 OK"',)


def _tail(text: str) -> str:
    lines = [line for line in text.splitlines() if not any(n in line for n in _NOISE)]
    return "\n".join(lines[-LOG_TAIL_LINES:])


def log_tails(world: Any) -> list[tuple[str, str]]:
    """``(title, last lines)`` per service of the World's backend, plus the load generator's; never raises."""
    try:
        services = world.backend.services()
    except Exception as exc:  # a broken backend must not hide the scenario's own failure
        return [("services", f"could not list services: {exc}")]
    sections = []
    for info in services:
        try:
            text = _tail(world.backend.logs(info.name))
        except Exception as exc:
            text = f"(no log: {exc})"
        state = "running" if info.running else "stopped"
        sections.append((f"log tail: {info.name} ({state}; successful heartbeats omitted)", text))
    if getattr(world, "load", None) is not None:
        sections.append(("log tail: locust", world.load.log_tail))
    return sections
