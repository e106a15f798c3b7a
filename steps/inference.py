"""Steps that send inference requests to the target and judge the answers: status, version AND outputs."""

from __future__ import annotations

from harness.steps_registry import then
from harness.world import World
from steps import types  # noqa: F401  (custom parse types used below)
from steps._support import wrong_outputs


@then(
    '{count:Requests} for {model:w} are all answered by version "{version}"',
    example='Then 20 inference requests for demo are all answered by version "1"',
)
def requests_answered_by(world: World, count: int, model: str, version: str) -> None:
    """Probe: send ``count`` inference requests one after the other, each with different inputs; each must
    succeed, name ``version``, and carry the outputs that version's model computes for its inputs (when
    the target knows them: the reference cluster runs the artifact itself)."""
    answers = [world.v2.infer(model, seed=i) for i in range(count)]
    wrong = [a for a in answers if not a.ok or a.model_version != version]
    seen = sorted({str(a.model_version) for a in answers if a.ok})
    problems = "; ".join(f"{a.status or 'no answer'} {a.model_version or a.error}" for a in wrong[:5])
    assert not wrong, (
        f"expected {count} answers from {model} version {version!r}; {len(wrong)} were not "
        f"(successful answers came from versions {seen}): {problems}"
    )
    computed = [w for w in (wrong_outputs(world, model, a, version) for a in answers) if w]
    assert not computed, (
        f"{len(computed)} of {count} answers were not computed by version {version!r}: {computed[0]}"
    )


@then(
    'the production version of {model:w} is "{version}"',
    example='Then the production version of demo is "2"',
    needs=("admin",),
)
def production_version(world: World, model: str, version: str) -> None:
    """The gateway's admin status names ``version`` as the model's ``production`` alias, and a request
    without a version is computed by that version's model."""
    actual = world.gateway.production(model)
    if actual is None:  # no production version: is the model listed at all?
        listed = sorted(m["name"] for m in world.gateway.status().get("models", []))
        assert model in listed, f"expected model {model!r} in the gateway's admin status, it lists {listed}"
    assert actual == version, (
        f"expected production version {version!r} of {model}, the gateway says {actual!r}"
    )
    answer = world.v2.infer(model, seed=7)
    assert answer.ok, f"expected a request for {model} to succeed, got {answer.status}: {answer.error}"
    problem = wrong_outputs(world, model, answer, version)
    assert problem is None, f"the production version is {version!r} by name only: {problem}"
