"""Deterministic scripts over the core: exact logs of what happened when."""

from __future__ import annotations

import types

import numpy as np
import pytest

import sim
from sim import (
    Caller,
    CallRefused,
    CallTimeout,
    Constant,
    Link,
    Outcome,
    Service,
    World,
)


def test_public_api_matches_all() -> None:
    # every public name of the package is in __all__ and vice versa; submodules are not names
    exported = {
        name
        for name in dir(sim)
        if not name.startswith("_") and not isinstance(getattr(sim, name), types.ModuleType)
    }
    assert set(sim.__all__) == exported


def chain(world: World, latency: float = 0.010) -> tuple[Caller, Service]:
    client, server = world.node("client"), world.node("server")
    world.network.set_default(Link(Constant(latency)))
    service = Service(world, "echo", server, workers=1)
    service.endpoint("get", Constant(0.100), handler=lambda ctx, payload: payload * 2)
    return Caller(world, client), service


def test_latency_is_the_sum_of_the_delays_the_request_went_through() -> None:
    world = World()
    caller, _ = chain(world)
    log: list[tuple[float, object]] = []

    def client():  # type: ignore[no-untyped-def]
        reply = yield from caller.call("echo.get", 21)
        log.append((round(world.now, 9), reply))

    world.env.process(client())
    world.run(10)
    # 10 ms there + 100 ms of service + 10 ms back
    assert log == [(0.120, 42)]


def test_a_single_worker_serves_in_fifo_order() -> None:
    world = World()
    caller, _ = chain(world)
    log: list[tuple[str, float]] = []

    def client(name: str):  # type: ignore[no-untyped-def]
        yield from caller.call("echo.get", 1)
        log.append((name, round(world.now, 9)))

    for name in "abc":
        world.env.process(client(name))
    world.run(10)
    assert log == [("a", 0.12), ("b", 0.22), ("c", 0.32)]


def test_crash_refuses_after_one_link_delay_and_recovery_serves_again() -> None:
    world = World()
    caller, service = chain(world)
    log: list[tuple[str, float]] = []

    def client():  # type: ignore[no-untyped-def]
        service.node.crash()
        try:
            yield from caller.call("echo.get", 1)
        except CallRefused:
            log.append(("refused", round(world.now, 9)))
        service.node.recover()
        yield from caller.call("echo.get", 1)
        log.append(("ok", round(world.now, 9)))

    world.env.process(client())
    world.run(10)
    assert log == [("refused", 0.01), ("ok", 0.13)]


def test_crash_loses_in_flight_work_and_the_caller_times_out() -> None:
    world = World()
    caller, service = chain(world)
    log: list[tuple[str, float]] = []

    def client():  # type: ignore[no-untyped-def]
        try:
            yield from caller.call("echo.get", 1, timeout_s=1.0)
        except CallTimeout:
            log.append(("timeout", round(world.now, 9)))

    world.env.process(client())
    world.at(0.05, lambda _: service.node.crash())  # mid-service
    world.at(0.06, lambda _: service.node.recover())
    world.run(10)
    assert log == [("timeout", 1.0)]
    assert service.pool.busy == 0


def test_hang_accepts_and_never_answers() -> None:
    world = World()
    caller, service = chain(world)
    results: list[tuple[Outcome, float]] = []
    service.node.hang()
    caller.start("echo.get", 1, lambda r: results.append((r.outcome, world.now)), timeout_s=2.0)
    caller.start("echo.get", 1, lambda r: results.append((r.outcome, world.now)))  # no timeout
    world.run(100)
    assert results == [(Outcome.TIMEOUT, 2.0)]  # the second one stays hung
    assert world.metrics.counter("service.echo.swallowed").value == 2


def test_timeout_runs_on_the_callers_clock() -> None:
    world = World()
    chain(world)
    fast = world.node("fast", drift_ppm=100_000)  # 10% fast
    caller = Caller(world, fast)
    world.services["echo"].node.hang()
    ended: list[float] = []
    caller.start("echo.get", 1, lambda r: ended.append(world.now), timeout_s=1.1)
    world.run(10)
    assert ended == [pytest.approx(1.0)]


def test_clock_offset_drift_and_jump() -> None:
    world = World()
    node = world.node("n", offset_s=5.0, drift_ppm=1000)
    readings: list[float] = []
    world.at(10.0, lambda _: readings.append(node.clock.now()))
    world.at(10.0, lambda _: node.clock.jump(-2.0))
    world.at(20.0, lambda _: readings.append(node.clock.now()))
    world.run(30)
    assert readings == [pytest.approx(5.0 + 10.0 * 1.001), pytest.approx(13.01 + 10.01)]


def test_loss_and_partition_drop_messages() -> None:
    world = World()
    caller, _ = chain(world)
    world.network.partition(["client"], ["server"], one_way=True)
    results: list[Outcome] = []
    caller.start("echo.get", 1, lambda r: results.append(r.outcome), timeout_s=1.0)
    world.run(5)
    assert results == [Outcome.TIMEOUT]
    assert world.metrics.counter("network.partitioned").value == 1
    assert world.metrics.counter("service.echo.received").value == 0


def test_one_way_partition_lets_requests_through_and_drops_replies() -> None:
    world = World()
    caller, _ = chain(world)
    world.network.partition(["server"], ["client"], one_way=True)
    results: list[Outcome] = []
    caller.start("echo.get", 1, lambda r: results.append(r.outcome), timeout_s=1.0)
    world.run(5)
    assert results == [Outcome.TIMEOUT]
    assert world.metrics.counter("service.echo.received").value == 1  # the server did the work


def test_duplicated_request_runs_twice_and_the_caller_sees_one_reply() -> None:
    world = World()
    caller, _ = chain(world)
    world.network.set_default(Link(Constant(0.010), duplicate=1.0))
    results: list[Outcome] = []
    caller.start("echo.get", 1, lambda r: results.append(r.outcome))
    world.run(5)
    assert results == [Outcome.OK]
    assert world.metrics.counter("service.echo.received").value == 2
    # each of the two executions' replies is duplicated too: 4 copies, 1 taken, 3 dropped
    assert world.metrics.counter("calls.duplicate_replies").value == 3


def test_queue_limit_zero_rejects_when_all_workers_are_busy() -> None:
    world = World()
    caller, service = chain(world)
    service.pool.queue_limit = 0
    results: list[tuple[Outcome, str | None]] = []
    for _ in range(2):
        caller.start("echo.get", 1, lambda r: results.append((r.outcome, r.reason)))
    world.run(5)
    assert results == [(Outcome.REJECTED, "queue_full"), (Outcome.OK, None)]


def run_mm1(seed: int, extra_component: bool = False) -> tuple[float, int]:
    world = World(seed=seed)
    node = world.node("server")
    if extra_component:  # an unrelated service with its own streams
        other = Service(world, "other", world.node("other"), workers=2)
        other.endpoint("x", sim.Exponential(0.5))
        sim.OpenWorkload(world, "noise", "other.x", 1.0)
    service = Service(world, "svc", node, workers=1)
    service.endpoint("work", sim.Exponential(0.1))
    load = sim.OpenWorkload(world, "load", "svc.work", 8.0)
    world.run(500)
    return load.stats.latency.mean(), load.stats.requests.value


def test_same_seed_same_numbers_and_different_seed_different_numbers() -> None:
    assert run_mm1(7) == run_mm1(7)
    assert run_mm1(7) != run_mm1(8)


def test_adding_an_unrelated_component_does_not_change_existing_draws() -> None:
    assert run_mm1(7) == run_mm1(7, extra_component=True)


def test_streams_depend_on_seed_replication_and_name_only() -> None:
    a = World(seed=1, replication=2).stream("x").random(3)
    b = World(seed=1, replication=2).stream("x").random(3)
    c = World(seed=1, replication=3).stream("x").random(3)
    d = World(seed=1, replication=2).stream("y").random(3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, d)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda w: sim.Pool(w, "p", 0), "p.capacity"),
        (lambda w: sim.Pool(w, "p", 2, queue_limit=-1), "p.queue_limit"),
        (lambda w: sim.parse_distribution({"kind": "gaussian"}, "latency"), "latency.kind"),
        (lambda w: sim.parse_duration("-5s", "timeout"), "timeout"),
        (lambda w: sim.parse_duration("10 parsecs", "timeout"), "10 parsecs"),
        (lambda w: w.run(-1), "until_s"),
    ],
)
def test_bad_input_names_the_parameter_and_value(make, fragment) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(sim.ConfigError) as error:
        make(World())
    assert fragment in str(error.value)
    assert len(str(error.value).splitlines()) == 1
