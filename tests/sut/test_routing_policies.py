"""Routing policies, lineage, rollback targets and recent statistics, on a real catalog (SQLite in tmp)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sut.demo_models import build_demo
from sut.gateway import lineage
from sut.gateway.alerts import validate_rule
from sut.gateway.catalog import Catalog
from sut.gateway.catalog_sqlite import SqliteStore
from sut.gateway.clock import GatewayClock
from sut.gateway.policies import PolicyError, PolicyTable, SmoothWeighted, validate, versions_of
from sut.gateway.recent import RecentAnswers, p99
from sut.gateway.shadow import _max_abs_diff


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    root = tmp_path / "artifacts"
    build_demo(root, ("1", "2", "3"))
    cat = Catalog(SqliteStore(tmp_path / "data" / "catalog.db"), root)
    cat.load()

    async def register() -> None:
        await cat.register_version("demo", "1", "demo/1/model.onnx", None)
        await cat.register_version("demo", "2", "demo/2/model.onnx", "1")
        await cat.register_version("demo", "3", "demo/3/model.onnx", "2")

    asyncio.run(register())
    return cat


def offset_to(target: datetime) -> float:
    """The clock offset that makes the gateway's clock read ``target`` now."""
    return (target - datetime.now(UTC)).total_seconds()


def test_smooth_weighted_split_is_exact_and_interleaved() -> None:
    split = SmoothWeighted({"1": 90, "2": 10})
    picks = [split.pick() for _ in range(1000)]
    assert Counter(picks) == {"1": 900, "2": 100}
    assert Counter(picks[:10]) == {"1": 9, "2": 1}  # every run of ten has one answer of "2"
    three = SmoothWeighted({"a": 1, "b": 0, "c": 3})
    assert Counter(three.pick() for _ in range(400)) == {"a": 100, "c": 300}


def test_weighted_policy_routes_by_weight_and_an_explicit_version_wins(catalog: Catalog) -> None:
    catalog.routing["demo"] = {
        "policy": validate({"kind": "weighted", "weights": {"1": 70, "3": 30}}, catalog, "demo")
    }
    table = PolicyTable(catalog, GatewayClock())
    assert Counter(table.choose("demo", None).version for _ in range(100)) == {"1": 70, "3": 30}
    assert {table.choose("demo", "2").version for _ in range(10)} == {"2"}
    assert table.versions_in_use("demo") == {"1", "3"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"kind": "coin"}, "unknown policy kind"),
        ({"kind": "weighted", "weights": {"1": 50, "9": 50}}, "'9' is not a version"),
        ({"kind": "weighted", "weights": {"1": -1}}, "must be a number >= 0"),
        ({"kind": "weighted", "weights": {"1": 0}}, "at least one weight must be positive"),
        ({"kind": "canary", "canary": "2", "stages": [50, 10, 100]}, "increasing percentages"),
        ({"kind": "canary", "canary": "2", "stages": [5, 50]}, "ending at 100"),
        ({"kind": "canary", "canary": "1"}, "both '1'"),
        ({"kind": "canary", "canary": "2", "max_error_rate": 2}, "between 0 and 1"),
        (
            {"kind": "canary", "canary": "2", "graduated": {"reduced_share": 5, "persist_seconds": 3}},
            "below the first stage (5 %)",
        ),
        (
            {"kind": "canary", "canary": "2", "stages": [20, 100], "graduated": {"reduced_share": 5}},
            "'persist_seconds' must be >= 0.1",
        ),
        ({"kind": "shadow", "shadow": "1"}, "also the primary"),
        ({"kind": "time", "timezone": "Mars/Olympus", "rules": []}, "unknown time zone"),
        ({"kind": "time", "timezone": "UTC", "rules": [{"from": "9:00", "version": "2"}]}, "HH:MM"),
        ({"kind": "time", "timezone": "UTC", "rules": [{"days": ["fri", "sab"], "version": "2"}]}, "'days'"),
    ],
)
def test_invalid_policies_are_refused_with_the_reason(catalog: Catalog, doc: dict, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        validate(doc, catalog, "demo")
    assert message in err.value.message


def test_canary_policy_gets_defaults_and_state(catalog: Catalog) -> None:
    policy = validate({"kind": "canary", "canary": "2"}, catalog, "demo")
    assert policy["stable"] == "1" and policy["stages"] == [5, 10, 25, 50, 100]
    assert (policy["status"], policy["stage"], policy["history"]) == ("running", 0, [])
    assert versions_of(policy, "1") == {"1", "2"}
    assert versions_of({**policy, "status": "rolled_back"}, "1") == {"1"}
    assert versions_of({**policy, "status": "promoted"}, "2") == set()


def test_canary_share_follows_its_stage(catalog: Catalog) -> None:
    policy = validate({"kind": "canary", "canary": "2", "stages": [10, 50, 100]}, catalog, "demo")
    catalog.routing["demo"] = {"policy": policy}
    table = PolicyTable(catalog, GatewayClock())
    assert Counter(table.choose("demo", None).version for _ in range(100)) == {"1": 90, "2": 10}
    compiled = table.compiled("demo")
    assert compiled is not None
    compiled.set_stage(1)
    assert Counter(table.choose("demo", None).version for _ in range(100)) == {"1": 50, "2": 50}
    compiled.status = "rolled_back"
    assert {table.choose("demo", None).version for _ in range(20)} == {"1"}


def test_a_reduced_canary_gets_its_reduced_share_and_stays_loaded(catalog: Catalog) -> None:
    graduated = {"reduced_share": 5, "persist_seconds": 2}
    policy = validate(
        {"kind": "canary", "canary": "2", "stages": [20, 100], "graduated": graduated}, catalog, "demo"
    )
    assert policy["graduated"] == {"reduced_share": 5.0, "persist_seconds": 2.0}
    catalog.routing["demo"] = {"policy": {**policy, "status": "reduced"}}  # as stored: a restart keeps it
    table = PolicyTable(catalog, GatewayClock())
    assert Counter(table.choose("demo", None).version for _ in range(100)) == {"1": 95, "2": 5}
    assert table.versions_in_use("demo") == {"1", "2"}


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        ("2025-01-08 08:59:59", "1"),  # Wednesday, before business hours
        ("2025-01-08 09:00:00", "2"),  # the boundary itself belongs to the rule
        ("2025-01-08 16:59:59", "2"),
        ("2025-01-08 17:00:00", "1"),  # 'to' is exclusive
        ("2025-01-11 10:00:00", "3"),  # Saturday: the weekend rule
        ("2025-01-12 23:59:00", "3"),  # Sunday night
        ("2025-01-13 00:00:00", "1"),  # Monday midnight
        ("2025-01-10 22:30:00", "2"),  # Friday night batch window (22:00 -> 02:00)
        ("2025-01-11 01:30:00", "2"),  # ... its part after midnight belongs to Friday
        ("2025-01-12 01:30:00", "3"),  # Sunday 01:30: the Saturday night is not in the batch rule
    ],
)
def test_time_rules_in_their_time_zone(catalog: Catalog, local: str, expected: str) -> None:
    doc = {
        "kind": "time",
        "timezone": "America/New_York",
        "rules": [
            {"days": ["mon", "tue", "wed", "thu", "fri"], "from": "09:00", "to": "17:00", "version": "2"},
            {"days": ["fri"], "from": "22:00", "to": "02:00", "version": "2"},
            {"days": ["sat", "sun"], "version": "3"},
        ],
        "default": "1",
    }
    catalog.routing["demo"] = {"policy": validate(doc, catalog, "demo")}
    from zoneinfo import ZoneInfo

    target = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo("America/New_York"))
    table = PolicyTable(catalog, GatewayClock(offset_to(target) + 0.2))  # 0.2 s into that second
    assert table.choose("demo", None).version == expected


def test_rollback_target_is_the_version_the_last_change_replaced(catalog: Catalog) -> None:
    async def flips() -> list[str | None]:
        targets = []
        await catalog.set_alias("demo", "production", "2")
        await catalog.set_alias("demo", "production", "3")
        targets.append(catalog.previous_production("demo"))  # 3 -> 2, not 1
        await catalog.set_alias("demo", "production", "2")
        targets.append(catalog.previous_production("demo"))  # the contract: undo the last change
        return targets

    assert asyncio.run(flips()) == ["2", "3"]


def test_lineage_ancestors_and_descendants(catalog: Catalog) -> None:
    entry = catalog.get_model("demo")
    assert lineage.lineage(entry, "3")["ancestors"] == ["2", "1"]
    assert lineage.lineage(entry, "1")["descendants"] == ["2", "3"]
    assert lineage.lineage(entry, "2") == {
        "model": "demo",
        "version": "2",
        "parent": "1",
        "ancestors": ["1"],
        "children": ["3"],
        "descendants": ["3"],
    }


def test_unknown_parent_is_refused(catalog: Catalog) -> None:
    with pytest.raises(Exception) as err:
        asyncio.run(catalog.register_version("demo", "4", "demo/3/model.onnx", "9"))
    assert getattr(err.value, "status", None) == 404 and "parent version '9'" in str(err.value)


def test_routing_configuration_survives_a_reopened_store(catalog: Catalog, tmp_path: Path) -> None:
    config = {"policy": validate({"kind": "weighted", "weights": {"1": 1, "2": 3}}, catalog, "demo")}
    asyncio.run(catalog.set_routing("demo", config))
    catalog.store.close()
    again = Catalog(SqliteStore(tmp_path / "data" / "catalog.db"), catalog.artifact_root)
    again.load()
    assert again.routing == {"demo": config}


def test_recent_statistics_count_server_errors_and_p99() -> None:
    recent = RecentAnswers()
    for i in range(100):
        recent.add("demo", "2", 500 if i % 10 == 0 else (400 if i == 5 else 200), 0.001 * (i + 1))
    stats = recent.stats("demo", "2", since=0.0)
    assert (stats.requests, stats.errors, round(stats.error_rate, 2)) == (100, 10, 0.1)
    assert stats.p99_s == pytest.approx(0.099)
    assert p99([]) is None and p99([3.0]) == 3.0


def test_alert_rule_validation() -> None:
    assert validate_rule({"max_error_rate": 0.2}) == {
        "max_error_rate": 0.2,
        "window_s": 5.0,
        "min_requests": 20,
    }
    with pytest.raises(PolicyError):
        validate_rule({"max_error_rate": 1.5})


def test_shadow_comparison_of_outputs() -> None:
    def body(values: list[float]) -> bytes:
        import json

        return json.dumps(
            {"outputs": [{"name": "predict", "shape": [len(values), 1], "datatype": "FP32", "data": values}]}
        ).encode()

    assert _max_abs_diff(body([1.0, 2.0]), body([1.0, 2.5])) == pytest.approx(0.5)
    assert _max_abs_diff(body([1.0]), body([1.0, 2.0])) is None  # shapes differ: a disagreement
    assert _max_abs_diff(body([1.0]), b"not json") is None
