"""Load profiles as data: schedules of each shape, the TOML format, endpoints, and its error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.load import schedule as shapes
from harness.load.endpoints import Endpoint, v2_endpoints, write_endpoints
from harness.load.profiles import ProfileBook, ProfileError

SHIPPED = Path(__file__).resolve().parents[2] / "fixtures" / "load_profiles.toml"


def _levels(schedule: shapes.Schedule, times: list[float]) -> list[int | None]:
    return [schedule.users_at(t) for t in times]


def test_sustained_holds_its_users_then_ends() -> None:
    s = shapes.sustained(20, 10)
    assert _levels(s, [0, 5, 9.99, 10]) == [20, 20, 20, None]
    assert s.steps[0].spawn_rate >= 200, "all users at once (within JUMP_S)"
    assert shapes.sustained(20, 10, spawn_rate=4).steps[0].spawn_rate == 4


def test_stepped_ramp_climbs_in_even_levels_and_holds() -> None:
    s = shapes.ramp(5, 40, duration_s=20, steps=4, hold_s=5)
    assert [(st.at_s, st.users) for st in s.steps] == [(0, 5), (5, 17), (10, 28), (15, 40)]
    assert s.end_s == 25 and s.users_at(24) == 40 and s.users_at(25) is None


def test_linear_ramp_adds_users_every_second_at_the_slope() -> None:
    s = shapes.ramp(0, 30, duration_s=15)
    counts = [s.users_at(t) for t in range(15)]
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] == 28
    assert all(st.spawn_rate == 2 for st in s.steps[1:]), "2 users per second, spread over the second"
    assert s.steps[-1].users == 30 and s.end_s > s.steps[-1].at_s


def test_burst_repeats_over_the_base() -> None:
    s = shapes.burst(50, every_s=6, hold_s=2, repeats=3, base_users=2)
    assert _levels(s, [0, 1.9, 2, 5.9, 6, 8, 12.5, 14, 17.9, 18]) == [52, 52, 2, 2, 52, 2, 52, 2, 2, None]
    with pytest.raises(ValueError, match="hold_s < every_s"):
        shapes.burst(5, every_s=2, hold_s=2, repeats=1)


def test_spike_multiplies_then_returns() -> None:
    s = shapes.spike(10, factor=5, at_s=8, for_s=4, duration_s=20)
    assert _levels(s, [0, 7.9, 8, 11.9, 12, 19.9, 20]) == [10, 10, 50, 50, 10, 10, None]
    with pytest.raises(ValueError, match="must end before the run"):
        shapes.spike(10, factor=2, at_s=8, for_s=12, duration_s=20)


def test_schedule_round_trips_through_json() -> None:
    s = shapes.burst(3, every_s=2, hold_s=1, repeats=2)
    assert shapes.Schedule.from_json(json.loads(json.dumps(s.to_json()))) == s


def test_the_shipped_profiles_load_with_weights_and_slo_tables() -> None:
    book = ProfileBook.load(SHIPPED)
    assert {"steady", "paced", "rampup", "linear", "burst", "spike", "peak", "stress"} <= set(book.profiles)
    steady = book.profile("steady")
    assert {e.name: e.weight for e in steady.endpoints} == {
        "infer": 70,
        "infer_v1": 20,
        "metadata": 5,
        "ready": 5,
    }
    assert steady.think_s == 0.1 and steady.timeout_s == 10, "[defaults] apply"
    paced = book.profile("paced")
    assert paced.user_rate == pytest.approx(10.0) and paced.schedule.peak_users == 10
    assert book.profile("stress").schedule.peak_users == 5000
    staging = book.slo_for("staging")
    assert (staging.p99_ms, staging.error_rate, staging.minimum("p99")) == (1500, 0.01, 300)
    assert book.slo_for("production", "peak").p99_ms == 1000, "the profile's own bound wins"
    assert book.slo_for("production", "steady").p99_ms == 500


def test_a_profile_becomes_a_runner_profile_for_a_model() -> None:
    load = ProfileBook.load(SHIPPED).profile("steady").load_profile("fraud", load_workers=2)
    paths = {e.name: e.path for e in load.calls()}
    assert paths["infer_v1"] == "/v2/models/fraud/versions/1/infer" and paths["ready"] == "/v2/health/ready"
    assert load.schedule is not None and load.users == 20 and load.load_workers == 2
    body = next(e.body for e in load.calls() if e.name == "infer")
    assert body["inputs"][0]["shape"] == [1, 4], "the body comes from the file, as data"
    with pytest.raises(ProfileError, match="need a model name"):
        ProfileBook.load(SHIPPED).profile("steady").load_profile(None)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[profiles.x]\nshape = "wave"', "shape must be one of"),
        ('[profiles.x]\nshape = "spike"\nusers = 1', "missing \\['at_s', 'duration_s', 'factor', 'for_s'\\]"),
        ('[profiles.x]\nshape = "sustained"\nduration_s = 5\nuserz = 3', "unknown \\['userz'\\]"),
        ('[profiles.x]\nshape = "sustained"\nduration_s = 5', "needs users, rate, or both"),
        (
            '[endpoints.a]\npath = "/a"\n[profiles.x]\nshape = "sustained"\nusers = 1\nduration_s = 1\n'
            "endpoints = { b = 1 }",
            "unknown endpoint\\(s\\) \\['b'\\]",
        ),
        ('[endpoints.a]\nmethod = "POST"\npath = "/a"\nbody = "{nope"', "body is not valid JSON"),
        ("[slo.staging]\np99 = 5", "unknown key\\(s\\) \\['p99'\\]"),
        ("[slo.staging]\nmin_samples = { p90 = 5 }", "unknown percentile"),
        ("[slo.staging]\nerror_rate = 5", "error_rate is a fraction"),
        ("[profilez]", "unknown table"),
        ("[profiles.x", "Expected"),
    ],
)
def test_invalid_profile_files_are_refused_with_the_reason(toml: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        ProfileBook.loads(toml, source="bad.toml")


def test_unknown_names_list_what_exists() -> None:
    book = ProfileBook.load(SHIPPED)
    with pytest.raises(ProfileError, match=r"no profile 'nope'.*known: \['burst'"):
        book.profile("nope")
    with pytest.raises(ProfileError, match=r"no SLO table \[slo.qa\].*'production', 'staging'"):
        book.slo_for("qa")


def test_endpoints_file_is_what_the_locustfile_reads(tmp_path: Path) -> None:
    calls = v2_endpoints("demo", "2", {"infer": 3, "ready": 1, "live": 0}, {"inputs": []})
    path = write_endpoints(calls, tmp_path / "endpoints.json")
    assert json.loads(path.read_text()) == [
        {"name": "infer", "weight": 3, "method": "POST", "path": "/v2/models/demo/versions/2/infer",
         "body": {"inputs": []}},
        {"name": "ready", "weight": 1, "method": "GET", "path": "/v2/health/ready", "body": None},
    ]  # fmt: skip
    with pytest.raises(ValueError, match="names repeat"):
        write_endpoints([Endpoint("a", 1, "GET", "/a"), Endpoint("a", 1, "GET", "/b")], tmp_path / "x.json")
    with pytest.raises(ValueError, match="positive total"):
        write_endpoints([Endpoint("a", 0, "GET", "/a")], tmp_path / "x.json")
    with pytest.raises(ValueError, match="must start with '/'"):
        Endpoint("a", 1, "GET", "a")


def test_the_model_s_own_request_replaces_every_infer_body_and_its_inputs_are_known() -> None:
    from harness.load.runner import endpoint_inputs

    own = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [0.5, 1.5]}]}
    load = (
        ProfileBook.load(SHIPPED)
        .profile("steady")
        .load_profile("fraud", infer_body=own, headers={"Authorization": "Bearer t"})
    )
    bodies = {e.name: e.body for e in load.calls()}
    assert bodies["infer"] == own and bodies["infer_v1"] == own, "each infer endpoint sends the model request"
    assert bodies["metadata"] is None and bodies["ready"] is None, "the others are left alone"
    assert load.headers == {"Authorization": "Bearer t"}
    inputs = endpoint_inputs(load.calls())
    assert inputs == {
        "POST /v2/models/fraud/infer": {"x": [0.5, 1.5]},
        "POST /v2/models/fraud/versions/1/infer": {"x": [0.5, 1.5]},
    }, "each infer sample can be judged on what its version computes for these inputs"


def test_the_shipped_feature_profiles_are_short_and_give_the_staging_p99_its_samples() -> None:
    book = ProfileBook.load(SHIPPED)
    staging = book.slo_for("staging")
    for name in ("short_sustained", "short_ramp", "short_spike", "latency_probe"):
        profile = book.profile(name)
        assert profile.duration_s <= 10, f"{name}: a feature-sized profile runs seconds"
    sustained = book.profile("short_sustained")
    assert sustained.user_rate is not None
    planned = sustained.user_rate * sustained.schedule.peak_users * sustained.duration_s
    assert planned * 0.8 >= staging.minimum("p99"), "the sustained run's answers suffice for p99, with room"
