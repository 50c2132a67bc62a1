"""Property tests of the engine (hypothesis), over seeds and random fault schedules.

- conservation: every workload request ended in exactly one outcome or is still open;
- causality: no message is delivered before it was sent (Network.send wrapped here, in the
  test, not in sim);
- clocks: a node's local clock never runs backwards without a jump or a sync;
- pools: busy slots never exceed the capacity nor go negative; queued never negative.

Plus the guard of one assumption the engine's hot paths make about SimPy's internals.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Callable
from typing import Any

import pytest
import simpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import (
    Caller,
    ClockJump,
    ClosedWorkload,
    Constant,
    Crash,
    ErrorBurst,
    Exponential,
    Hang,
    LatencySpike,
    Link,
    LogNormal,
    LossBurst,
    Node,
    OpenWorkload,
    Outcome,
    Partition,
    Pool,
    PoolShrink,
    Service,
    World,
    inject,
)


def test_simpy_keeps_the_time_in_env_now_private_attribute() -> None:
    """The engine's hot paths read ``env._now`` (4 ns) instead of the ``env.now`` property
    (45 ns) and push ``(time, priority, eid, event)`` onto ``env._queue`` themselves; if a
    SimPy release changes either, this fails before any figure silently goes wrong."""
    world = World(seed=1)
    env = world.env
    readings: list[tuple[float, float, float]] = []

    def tick(_: object) -> None:
        readings.append((env._now, env.now, world.clock()))

    for delay in (0.0, 0.25, 1.5, 1.5, 7.0):
        world.schedule(delay, tick)
    process_times: list[float] = []

    def process() -> Any:
        yield env.timeout(0.75)
        process_times.append(env.now)

    env.process(process())
    assert isinstance(env._queue, list) and isinstance(env._eid, itertools.count)
    entry = env._queue[0]
    assert len(entry) == 4 and isinstance(entry[2], int)
    world.run(10)
    assert [r[1] for r in readings] == [0.0, 0.25, 1.5, 1.5, 7.0]
    assert all(private == public == clock for private, public, clock in readings)
    assert process_times == [0.75]
    assert isinstance(env, simpy.Environment) and env._now == env.now == 10.0


# -- the model under random faults ----------------------------------------------------------

NODES = ("gateway", "backend")
HORIZON_S = 20.0

fault_strategy = st.one_of(
    st.builds(Crash, st.sampled_from(NODES)),
    st.builds(Hang, st.sampled_from(NODES)),
    st.builds(
        Partition,
        st.just(("client.load",)),
        st.sampled_from([("gateway",), ("gateway", "backend")]),
        st.booleans(),
    ),
    st.builds(Partition, st.just(("gateway",)), st.just(("backend",)), st.booleans()),
    st.builds(LatencySpike, st.floats(1.0, 20.0), st.floats(0.0, 0.05)),
    st.builds(LossBurst, st.floats(0.0, 1.0)),
    st.builds(ErrorBurst, st.sampled_from(NODES), st.floats(0.0, 1.0)),
    st.builds(ClockJump, st.sampled_from(NODES), st.floats(-5.0, 5.0)),
    st.builds(PoolShrink, st.sampled_from(NODES), st.integers(1, 2)),
)
schedule_strategy = st.lists(
    st.tuples(fault_strategy, st.floats(0.0, HORIZON_S), st.none() | st.floats(0.01, 10.0)),
    max_size=6,
)


class Model:
    """client -> gateway (a generator handler calling the backend) -> backend, on lossy,
    duplicating links; an open and a closed workload; random node failures too. Every message
    is logged through a wrapper around this world's ``Network.send`` (the test's, not sim's)
    and every pool grant is checked against the pool's capacity."""

    def __init__(self, seed: int, drift_ppm: float, faults: list[tuple[Any, float, Any]]):
        self.world = world = World(seed=seed)
        world.network.set_default(
            Link(LogNormal.from_median_p99(0.002, 0.02), loss=0.02, duplicate=0.02)
        )
        gateway = Service(
            world, "gateway", world.node("gateway", drift_ppm=drift_ppm, offset_s=3.0),
            workers=4, queue_limit=8, max_wait_s=0.2,
        )  # fmt: skip
        backend = Service(world, "backend", world.node("backend", drift_ppm=-drift_ppm),
                          workers=2, queue_limit=4)  # fmt: skip

        def front(ctx: Any, payload: Any) -> Any:
            reply = yield from ctx.call("backend.get", payload, timeout_s=0.3)
            return reply

        gateway.endpoint("get", Exponential(0.002), handler=front)
        backend.endpoint("get", Exponential(0.02), error_probability=0.01)
        self.loads = [
            OpenWorkload(world, "load", "gateway.get", 60.0, timeout_s=1.0),
            ClosedWorkload(world, "users", "backend.get", 3, Exponential(0.05)),  # no timeout
        ]
        world.nodes["backend"].fail_randomly(Exponential(8.0), Exponential(0.5))
        for fault, at_s, duration_s in faults:
            inject(world, fault, at_s, duration_s)
        self.deliveries: list[tuple[str, str, int, float, float]] = []
        self.grant_violations: list[tuple[str, int, int]] = []
        self._watch_network()
        for service in (gateway, backend):
            self._watch_pool(service.pool)

    def _watch_network(self) -> None:
        world, network = self.world, self.world.network
        send = network.send
        sequence = itertools.count()

        def logged_send(src: Node, dst: Node, deliver: Callable[[Any], None], message: Any) -> None:
            sent_at, number = world.now, next(sequence)

            def logged_deliver(arrived: Any) -> None:
                self.deliveries.append((src.name, dst.name, number, sent_at, world.now))
                deliver(arrived)

            send(src, dst, logged_deliver, message)

        network.send = logged_send  # type: ignore[method-assign]

    def _watch_pool(self, pool: Pool) -> None:
        request = pool.request

        def checked_request(item: Any, grant: Callable[[Any], None], reject: Any) -> None:
            def checked_grant(granted: Any) -> None:
                if not 0 < pool.busy <= pool.capacity:
                    self.grant_violations.append((pool.name, pool.busy, pool.capacity))
                grant(granted)

            request(item, checked_grant, reject)

        pool.request = checked_request  # type: ignore[method-assign]


SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    seed=st.integers(0, 2**31),
    drift_ppm=st.floats(-200_000.0, 200_000.0),
    faults=schedule_strategy,
)
def test_invariants_under_random_faults(
    seed: int, drift_ppm: float, faults: list[tuple[Any, float, Any]]
) -> None:
    model = Model(seed, drift_ppm, faults)
    world = model.world
    levels: list[tuple[str, int, int, int, float]] = []
    nominal = {"gateway": 4, "backend": 2}

    def sample(_: object) -> None:
        for node in world.nodes.values():
            for pool in node.pools:
                busy, gauge = pool.busy, pool.busy_level.value
                levels.append((pool.name, busy, pool.queued, pool.capacity, gauge))
        world.schedule(0.05, sample)

    world.schedule(0.0, sample)
    world.run(HORIZON_S)

    # conservation: every request ended in exactly one outcome, or is still open
    for load in model.loads:
        stats = load.stats
        ended = sum(counter.value for counter in stats.outcomes.values())
        assert stats.requests.value == ended + stats.in_flight()
        assert stats.outcomes[Outcome.HUNG].value == 0  # hung is reported, never counted
    # causality: nothing arrives before it was sent; FIFO links keep each pair's order
    assert model.deliveries or world.metrics.counter("network.lost").value > 0  # not vacuous
    order: dict[tuple[str, str], int] = {}
    for src, dst, number, sent_at, arrived_at in model.deliveries:
        assert arrived_at >= sent_at
        assert number >= order.get((src, dst), -1), "overtaken on a FIFO link"
        order[(src, dst)] = number
    # pools: grants only below capacity; levels never negative; the gauge follows busy
    assert model.grant_violations == []
    for name, busy, queued, capacity, gauge in levels:
        assert busy >= 0 and queued >= 0
        # above the capacity only after a shrink (holders finish), never above the nominal
        assert busy <= max(capacity, nominal[name]), name
        assert gauge == busy


@SETTINGS
@given(
    offset_s=st.floats(-1e4, 1e4),
    drift_ppm=st.floats(-999_000.0, 1e6),
    times=st.lists(st.floats(0.0, 1e4), min_size=2, max_size=50),
)
def test_local_clocks_never_run_backwards_without_a_jump(
    offset_s: float, drift_ppm: float, times: list[float]
) -> None:
    world = World()
    node = world.node("n", offset_s=offset_s, drift_ppm=drift_ppm)
    readings: list[float] = []
    for t in sorted(times):
        world.at(t, lambda _: readings.append(node.clock.now()))
    world.run(1e4 + 1)
    assert readings == sorted(readings)
    # and timers set on the node run at its rate: local elapsed = true elapsed * rate
    if len(readings) >= 2:
        true_span = sorted(times)[-1] - sorted(times)[0]
        assert readings[-1] - readings[0] == pytest.approx(
            true_span * node.clock.rate, rel=1e-9, abs=1e-6
        )


@SETTINGS
@given(
    sends=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=60),
    hangs=st.lists(st.tuples(st.floats(0.0, 10.0), st.floats(0.01, 3.0)), max_size=4),
    drift_ppm=st.sampled_from([0.0, 50_000.0, -20_000.0]),
    timeout_s=st.sampled_from([0.05, 0.12, 0.5]),
)
def test_every_timeout_ends_exactly_its_delay_after_the_attempt_began(
    sends: list[float], hangs: list[tuple[float, float]], drift_ppm: float, timeout_s: float
) -> None:
    # Many timers of one delay share one heap entry (sim.timeout._Timers); each must still end
    # its call at exactly now + delay, and a reply due at the same instant as a timer set
    # before it must lose, as with one event per timer.
    world = World()
    world.network.set_default(Link(Constant(0.01)))
    client = world.node("client", drift_ppm=drift_ppm)
    service = Service(world, "echo", world.node("server"), workers=100)
    service.endpoint("get", Constant(0.1))
    for at_s, duration_s in hangs:
        inject(world, Hang("server"), at_s, duration_s)
    caller = Caller(world, client)
    ends: list[tuple[float, str, float]] = []

    def send(sent: float) -> None:
        caller.start(
            "echo.get", None, lambda r: ends.append((sent, r.outcome.value, world.now)),
            timeout_s=timeout_s,
        )  # fmt: skip

    for t in sends:
        world.at(t, send, t)
    world.run(20.0)
    assert len(ends) == len(sends)
    delay = timeout_s / client.clock.rate
    for sent, outcome, ended in ends:
        if outcome == "timeout":
            assert ended == sent + delay
        else:
            assert (outcome, ended) == ("ok", pytest.approx(sent + 0.12))
            assert ended - sent < delay  # a reply due with the timer loses (ties: timeout)


def _cyclic_garbage(horizon_s: float) -> int:
    """Objects left to the cyclic collector by a run of the 3-hop model (with timeouts,
    generator handlers and a closed workload) of ``horizon_s`` seconds."""
    gc.collect()
    gc.disable()
    try:
        world = World(seed=1)
        world.network.set_default(Link(LogNormal.from_median_p99(0.001, 0.005)))
        tiers = [Service(world, n, world.node(n), workers=4) for n in ("front", "back")]

        def front(ctx: Any, payload: Any) -> Any:
            reply = yield from ctx.call("back.get", payload, timeout_s=0.05)
            return reply

        tiers[0].endpoint("get", Exponential(0.001), handler=front)
        tiers[1].endpoint("get", Exponential(0.002))
        OpenWorkload(world, "load", "front.get", 200.0, timeout_s=0.1)
        ClosedWorkload(world, "users", "back.get", 2, Exponential(0.01))
        world.run(horizon_s)
        return gc.collect()
    finally:
        gc.enable()


def test_requests_leave_no_reference_cycles_behind() -> None:
    # Memory must not grow with the horizon. Objects in reference cycles are freed only by
    # the cyclic collector, so they pile up between its passes (and the passes cost time):
    # a run 10x longer (~12,000 more requests) must leave no more cyclic garbage.
    assert _cyclic_garbage(60.0) <= _cyclic_garbage(6.0) + 50
