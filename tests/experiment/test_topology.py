"""The topology model: calls in sequence and in parallel, failure handling, links, clocks,
workload profiles, all checked on exact, deterministic runs."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sim import World
from sim.call import Outcome
from sim.experiment.config import Scenario, experiment_from_dict
from sim.workload import BurstRate, ClosedWorkload, DiurnalRate, OpenWorkload, StepRate

ONE_USER = {"kind": "closed", "target": "api.get", "users": 1, "think_time": "1s"}


def config(services: dict[str, Any], **model: Any) -> dict[str, Any]:
    return {
        "experiment": {"name": "t", "model": "topology", "duration": "20s", "replications": 1},
        "model": {"services": services, "workloads": {"users": ONE_USER}, **model},
        "policies": {"p": {"timeout": {"seconds": "1s"}}},
    }


def scenario(data: dict[str, Any]) -> Scenario:
    return experiment_from_dict(data).scenarios[0]


def run(data: dict[str, Any], until_s: float = 20.0) -> tuple[World, Any]:
    world = World(seed=1)
    (entry,) = scenario(data).build(world)
    world.run(until_s)
    return world, entry.stats


def leaf(time: str, **extra: Any) -> dict[str, Any]:
    return {"workers": 10, "endpoints": {"x": {"service_time": time, **extra}}}


def test_parallel_calls_wait_for_the_slowest_and_steps_add_up() -> None:
    services = {
        "api": {"workers": 10, "endpoints": {"get": {"service_time": "1ms", "calls": [
            {"parallel": [{"target": "a.x"}, {"target": "b.x"}]},
            {"target": "c.x"},
        ]}}},
        "a": leaf("10ms"),
        "b": leaf("30ms"),
        "c": leaf("5ms"),
    }  # fmt: skip
    _, stats = run(config(services, network={"default": {"latency": "1ms"}}))
    # client->api 1 + api 1 + max(1+10+1, 1+30+1) + (1+5+1) + api->client 1 = 42 ms, every time
    assert stats.latency.count >= 15
    assert stats.latency.minimum == pytest.approx(0.042)
    assert stats.latency.maximum == pytest.approx(0.042)


@pytest.mark.parametrize(
    ("on_failure", "outcome"),
    [("fail", Outcome.ERROR), ("degrade", Outcome.DEGRADED), ("ignore", Outcome.OK)],
)
def test_what_a_failed_call_does_to_the_answer(on_failure: str, outcome: Outcome) -> None:
    services = {
        "api": {"endpoints": {"get": {"calls": [
            {"parallel": [{"target": "a.x", "on_failure": on_failure}, {"target": "b.x"}]},
        ]}}},
        "a": leaf("1ms", error_probability=1.0),
        "b": leaf("1ms"),
    }  # fmt: skip
    _, stats = run(config(services))
    ended = {o: stats.outcomes[o].value for o in Outcome if stats.outcomes[o].value}
    assert list(ended) == [outcome]


def test_a_degraded_reply_makes_the_callers_answer_degraded() -> None:
    services = {
        "api": {"endpoints": {"get": {"calls": [{"target": "a.x", "policy": "fb"}]}}},
        "a": leaf("1ms", error_probability=1.0),
    }
    data = config(services)
    data["policies"]["fb"] = {"fallback": {"mode": "static", "value": "cached"}}
    _, stats = run(data)
    assert stats.outcomes[Outcome.DEGRADED].value == stats.latency.count > 0


def test_a_timeout_on_a_call_ends_it() -> None:
    services = {
        "api": {"endpoints": {"get": {"calls": [{"target": "a.x", "timeout": "50ms"}]}}},
        "a": leaf("200ms"),
    }
    _, stats = run(config(services))
    assert stats.outcomes[Outcome.ERROR].value > 0
    assert stats.latency_failed.maximum == pytest.approx(0.050)


def test_links_per_pair_override_the_default() -> None:
    services = {"api": {"endpoints": {"get": {"calls": [{"target": "a.x"}]}}}, "a": leaf("0s")}
    network = {
        "default": {"latency": "1ms"},
        "links": [{"between": ["api", "a"], "latency": "20ms"}],
    }
    _, stats = run(config(services, network=network))
    assert stats.latency.maximum == pytest.approx(0.001 + 0.020 * 2 + 0.001)


def test_nodes_get_their_clocks_and_services_share_declared_nodes() -> None:
    services = {
        "api": {"node": "host", "endpoints": {"get": {}}},
        "a": {"node": "host", **leaf("1ms")},
    }
    nodes = {"host": {"offset": "-2s", "drift_ppm": 100, "sync_interval": "1m"}}
    world = World(seed=1)
    scenario(config(services, nodes=nodes)).build(world)
    host = world.nodes["host"]
    assert world.services["api"].node is world.services["a"].node is host
    assert host.clock.rate == pytest.approx(1.0001)
    assert host.clock.now() == pytest.approx(-2.0)


@pytest.mark.parametrize(
    ("profile", "kind"),
    [
        ({"kind": "diurnal", "mean": "10000/day"}, DiurnalRate),
        (
            {"kind": "step", "steps": [{"at": 0, "rate": "1/s"}, {"at": "10s", "rate": "2/s"}]},
            StepRate,
        ),
        (
            {"kind": "burst", "base": "1/s", "burst": "5/s", "start": "5s", "duration": "2s"},
            BurstRate,
        ),
    ],
)
def test_open_workloads_follow_their_profiles(profile: dict[str, Any], kind: type) -> None:
    data = config({"api": {"endpoints": {"get": {}}}})
    data["model"]["workloads"] = {
        "users": {"kind": "open", "target": "api.get", "profile": profile}
    }
    world = World(seed=1)
    (workload,) = scenario(data).build(world)
    assert isinstance(workload, OpenWorkload) and isinstance(workload.profile, kind)


def test_closed_workloads_have_their_users() -> None:
    world = World(seed=1)
    (workload,) = scenario(config({"api": {"endpoints": {"get": {}}}})).build(world)
    assert isinstance(workload, ClosedWorkload) and workload.users == 1


def test_a_workload_needs_a_rate_or_a_profile_not_both() -> None:
    from sim.errors import ConfigError

    data = config({"api": {"endpoints": {"get": {}}}})
    both = copy.deepcopy(data)
    both["model"]["workloads"] = {"users": {"kind": "open", "target": "api.get"}}
    with pytest.raises(
        ConfigError,
        match=r"workloads.users.rate: got '<rate/profile>', expected either a rate or a profile",
    ):
        experiment_from_dict(both)
