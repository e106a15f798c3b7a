"""This project's own steps: registered through ``[tool.servingbdd] steps`` in pyproject.toml.

Steps are written with the harness's decorators, take the scenario's World first, act on the target only
through the World's drivers and name the capabilities they need (here only V2 inference).
"""

from __future__ import annotations

from harness.steps_registry import then
from harness.world import World


@then(
    "the server names itself and its protocol extensions in its metadata",
    example="Then the server names itself and its protocol extensions in its metadata",
    needs=("inference",),
)
def server_metadata(world: World) -> None:
    """``GET /v2`` answers with the server's name, its version and the list of extensions it supports."""
    answer = world.v2.server_metadata()
    assert answer.ok, f"GET /v2 answered {answer.status}: {answer.error}"
    body = answer.body if isinstance(answer.body, dict) else {}
    missing = [key for key in ("name", "version", "extensions") if key not in body]
    assert not missing, f"the server metadata lacks {missing}: {body}"
    assert isinstance(body["extensions"], list), f"'extensions' is not a list: {body['extensions']!r}"
