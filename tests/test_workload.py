"""Workloads: rate profiles, open-loop arrivals in their window, closed-loop users and the
interactive response time law, and what the entry statistics record (outcomes, latencies,
rejection reasons, requests still open and hung)."""

from __future__ import annotations

import numpy as np
import pytest

from sim import (
    BurstRate,
    ClosedWorkload,
    ConfigError,
    Constant,
    DiurnalRate,
    Exponential,
    Link,
    OpenWorkload,
    Outcome,
    Service,
    StepRate,
    World,
)
from sim.workload import DAY_S

from .validation.theory import check_against_theory


def test_diurnal_rate_averages_its_mean_over_any_whole_period() -> None:
    profile = DiurnalRate(10_000 / DAY_S, peak_to_trough=4.0, peak_s=13 * 3600.0)
    for start in (0.0, 5_000.0, 40_000.0):  # any window of one period
        t = start + (np.arange(86_400) + 0.5)  # midpoint rule, 1 s steps: exact for a cosine
        average = float(np.mean([profile.rate(x) for x in t]))
        assert average == pytest.approx(10_000 / DAY_S, rel=1e-9)
    peak, trough = profile.rate(13 * 3600.0), profile.rate(13 * 3600.0 + DAY_S / 2)
    assert peak / trough == pytest.approx(4.0)
    assert profile.max_rate == pytest.approx(peak)


def test_step_rate_holds_each_rate_from_its_start() -> None:
    profile = StepRate([(10.0, 2.0), (20.0, 5.0), (30.0, 1.0)])
    assert [profile.rate(t) for t in (0.0, 9.99, 10.0, 19.9, 20.0, 45.0)] == [
        2.0, 2.0, 2.0, 2.0, 5.0, 1.0
    ]  # fmt: skip
    assert profile.max_rate == 5.0


def test_burst_rate_repeats_its_bursts() -> None:
    profile = BurstRate(1.0, 50.0, start_s=100.0, duration_s=10.0, every_s=60.0)
    times = (99.9, 100.0, 109.9, 110.0, 160.0, 169.0, 170.0, 220.5)
    assert [profile.rate(t) for t in times] == [1.0, 50.0, 50.0, 1.0, 50.0, 50.0, 1.0, 50.0]
    once = BurstRate(1.0, 50.0, start_s=100.0, duration_s=10.0)
    assert [once.rate(t) for t in (105.0, 165.0)] == [50.0, 1.0]


@pytest.mark.parametrize(
    "make",
    [
        lambda: StepRate([]),
        lambda: StepRate([(10.0, 1.0), (5.0, 2.0)]),
        lambda: DiurnalRate(1.0, peak_to_trough=0.5),
        lambda: BurstRate(1.0, 5.0, start_s=0.0, duration_s=10.0, every_s=5.0),
    ],
)
def test_bad_profiles_are_refused(make) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        make()


def echo(world: World, service_time: float = 0.1, workers: int = 1) -> Service:
    service = Service(world, "echo", world.node("server"), workers=workers)
    service.endpoint("get", Constant(service_time))
    return service


def test_open_workload_arrives_only_between_start_and_stop() -> None:
    world = World(seed=2)
    echo(world, service_time=0.0)
    load = OpenWorkload(world, "load", "echo.get", 100.0, start_s=10.0, stop_s=20.0)
    counts: list[int] = []
    for t in (9.99, 20.0, 29.9):
        world.at(t, lambda _: counts.append(load.stats.requests.value))
    world.run(30.0)
    stats = load.stats
    assert 800 < stats.requests.value < 1200  # Poisson(1000): sd 32
    assert stats.outcomes[Outcome.OK].value == stats.requests.value
    latency = stats.latency
    assert latency.count == stats.requests.value and latency.maximum == 0.0
    assert counts[0] == 0 and counts[1] == counts[2] == stats.requests.value


def test_every_request_has_one_outcome_or_is_open_and_reasons_are_counted() -> None:
    world = World(seed=4)
    service = Service(world, "echo", world.node("server"), workers=1, queue_limit=2)
    service.endpoint("get", Exponential(0.1))
    world.network.set_default(Link(Constant(0.001), loss=0.05))
    load = OpenWorkload(world, "load", "echo.get", 15.0, timeout_s=0.5)
    world.run(200.0)
    stats = load.stats
    ended = {o: c.value for o, c in stats.outcomes.items()}
    assert stats.requests.value == sum(ended.values()) + stats.in_flight()
    assert ended[Outcome.OK] > 0 and ended[Outcome.TIMEOUT] > 0 and ended[Outcome.REJECTED] > 0
    reasons = world.metrics.counter("entry.load.rejected.queue_full").value
    assert reasons == ended[Outcome.REJECTED]
    assert stats.latency.count == ended[Outcome.OK]
    failed = ended[Outcome.TIMEOUT] + ended[Outcome.REJECTED]
    assert stats.latency_failed.count == failed
    assert stats.latency_failed.maximum == pytest.approx(0.5)  # timeouts end at 0.5 s


def test_payload_is_built_from_the_request_id() -> None:
    world = World()
    seen: list[int] = []
    service = Service(world, "echo", world.node("server"))
    service.endpoint("get", Constant(0.0), handler=lambda ctx, payload: seen.append(payload))
    load = OpenWorkload(world, "load", "echo.get", 5.0, payload=lambda rid: rid * 10)
    world.run(3.0)
    assert seen and all(p % 10 == 0 for p in seen) and len(set(seen)) == len(seen)
    assert len(seen) == load.stats.requests.value


def test_hung_requests_are_open_and_counted_once_overdue() -> None:
    world = World()
    service = echo(world)
    service.node.hang()
    load = ClosedWorkload(world, "users", "echo.get", 3, Constant(1.0))  # no timeout
    world.run(10.0)
    stats = load.stats
    # each user sent one request at 1.0 and waits forever
    assert stats.requests.value == 3 and stats.in_flight() == 3
    assert stats.hung(overdue_s=8.0) == 3  # open for 9 s
    assert stats.hung(overdue_s=9.5) == 0
    assert sum(c.value for c in stats.outcomes.values()) == 0


def test_closed_users_think_then_send_one_request_at_a_time() -> None:
    world = World()
    world.network.set_default(Link(Constant(0.010)))
    echo(world, service_time=0.1, workers=5)
    load = ClosedWorkload(world, "users", "echo.get", 2, Constant(1.0))
    world.run(3.5)
    # each user: think 1.0 s, then 10 + 100 + 10 ms: sends at 1.0, 2.12, 3.24; ends 0.12 later
    assert load.stats.requests.value == 6
    assert load.stats.outcomes[Outcome.OK].value == 6
    assert load.stats.latency.mean() == pytest.approx(0.12)


def test_closed_workload_obeys_the_interactive_response_time_law() -> None:
    # N users, think time Z, response time R: throughput X = N / (R + Z). An operational law:
    # measured X, R (entry latency mean) and the configured Z satisfy it up to the requests
    # open at the warm-up's end and at the horizon. Checked as X (R + Z) / N against 1 over
    # replications, with the tolerance rule of tests/validation/theory.py. The server
    # (M/M/1, 0.15 s) is busy ~60%, so R is well above the bare service time.
    users, think_s, horizon_s, warmup_s = 10, 2.0, 4_000.0, 100.0
    ratios = []
    for replication in range(10):
        world = World(seed=8, replication=replication)
        service = Service(world, "db", world.node("db"), workers=1)
        service.endpoint("query", Exponential(0.15))
        load = ClosedWorkload(world, "users", "db.query", users, Exponential(think_s))
        world.run(horizon_s, warmup_s=warmup_s)
        throughput = load.stats.outcomes[Outcome.OK].value / (horizon_s - warmup_s)
        response = load.stats.latency.mean()
        assert response > 0.3  # queueing, not just service
        ratios.append(throughput * (response + think_s) / users)
    check_against_theory("X (R + Z) / N", ratios, 1.0)
