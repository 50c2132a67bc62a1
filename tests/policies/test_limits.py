"""Bulkheads, rate limiters and adaptive concurrency as exact event logs, and the token
bucket's bound as a property."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sim import World
from sim.policies import (
    AdaptiveConcurrency,
    Bulkhead,
    RateLimiter,
    ThreadPoolBulkhead,
    Timeout,
)
from tests.policies.helpers import Script


def test_semaphore_bulkhead_rejects_at_once_by_default() -> None:
    s = Script(workers=5)
    bulkhead = Bulkhead(2)
    for label in "abc":
        s.send(0.0, label, "ok", [bulkhead])
    s.send(0.15, "d", "ok", [bulkhead])  # a and b ended at 0.1: slots are free
    assert s.run() == [
        (0.0, "c", "rejected", "bulkhead_full"),
        (0.1, "a", "ok", "ok"),
        (0.1, "b", "ok", "ok"),
        (0.25, "d", "ok", "ok"),
    ]
    assert s.counter("policy.bulkhead.rejected.bulkhead_full") == 1
    assert s.counter("pool.bulkhead.bulkhead.granted") == 3


def test_semaphore_bulkhead_waits_up_to_max_wait() -> None:
    s = Script(workers=5)
    short, long = Bulkhead(1, 0.05, name="short"), Bulkhead(1, 0.2, name="long")
    s.send(0.0, "s1", "ok", [short])
    s.send(0.0, "s2", "ok", [short])  # waits 0.05 < 0.1: rejected at 0.05
    s.send(0.0, "l1", "ok", [long])
    s.send(0.0, "l2", "ok", [long])  # gets the slot at 0.1
    assert s.run() == [
        (0.05, "s2", "rejected", "bulkhead_full"),
        (0.1, "s1", "ok", "ok"),
        (0.1, "l1", "ok", "ok"),
        (0.2, "l2", "ok", "ok"),
    ]


def test_thread_pool_bulkhead_queues_up_to_its_capacity() -> None:
    s = Script(workers=5)
    bulkhead = ThreadPoolBulkhead(1, queue_capacity=1)
    for label in "abc":
        s.send(0.0, label, "ok", [bulkhead])
    assert s.run() == [
        (0.0, "c", "rejected", "bulkhead_full"),
        (0.1, "a", "ok", "ok"),
        (0.2, "b", "ok", "ok"),
    ]


def test_token_bucket_admits_burst_then_rate() -> None:
    s = Script(service_time=0.0, workers=10)
    limiter = RateLimiter(rate=10, burst=2)
    for i, at in enumerate([0.0, 0.0, 0.0, 0.05, 0.1, 0.1, 0.35]):
        s.send(at, f"c{i}", "ok", [limiter])
    outcomes = sorted((t, label, outcome) for t, label, outcome, _ in s.run())
    # full bucket of 2; empty at 0; 0.5 token at 0.05; 1 at 0.1; 2.5 capped at 2 at 0.35
    assert outcomes == [
        (0.0, "c0", "ok"),
        (0.0, "c1", "ok"),
        (0.0, "c2", "rejected"),
        (0.05, "c3", "rejected"),
        (0.1, "c4", "ok"),
        (0.1, "c5", "rejected"),
        (0.35, "c6", "ok"),
    ]


def test_token_bucket_with_wait_reserves_the_next_token() -> None:
    s = Script(service_time=0.0, workers=10)
    limiter = RateLimiter(rate=10, burst=1, max_wait_s=0.15)
    for label in "abcd":
        s.send(0.0, label, "ok", [limiter])
    # a takes the token; b is sent at 0.1 and c at 0.2 (0.2 > 0.15: rejected); d too
    assert sorted((t, label, outcome) for t, label, outcome, _ in s.run()) == [
        (0.0, "a", "ok"),
        (0.0, "c", "rejected"),
        (0.0, "d", "rejected"),
        (0.1, "b", "ok"),
    ]
    assert s.counter("policy.rate_limiter.delayed") == 1


def test_rate_limiter_on_the_server_refills_on_the_servers_clock() -> None:
    s = Script(service_time=0.0, workers=10, server_drift_ppm=1_000_000)  # twice as fast
    limiter = RateLimiter(rate=10, burst=1)
    s.endpoint.add_policy(limiter)
    for i, at in enumerate([0.0, 0.05, 0.06]):
        s.send(at, f"c{i}", "ok")
    # 0.05 true s is 0.1 s on the fast clock: one whole token
    assert [outcome for _, _, outcome, _ in s.run()] == ["ok", "ok", "rejected"]


@settings(max_examples=60, deadline=None)
@given(
    rate=st.floats(0.5, 50),
    burst=st.floats(1, 10),
    gaps=st.lists(st.floats(0, 0.3), min_size=1, max_size=200),
    window=st.floats(0.01, 5),
)
def test_token_bucket_never_admits_more_than_burst_plus_rate_times_window(
    rate: float, burst: float, gaps: list[float], window: float
) -> None:
    world = World()
    node = world.node("n")
    limiter = RateLimiter(rate=rate, burst=burst)
    admitted: list[float] = []

    def arrive(_: object) -> None:
        if limiter.try_acquire(world, node):
            admitted.append(world.now)

    t = 0.0
    for gap in gaps:
        t += gap
        world.at(t, arrive)
    world.run(t + 1)
    # every window [start, start + window] opening at an admission (the worst case)
    for i, start in enumerate(admitted):
        inside = sum(1 for x in admitted[i:] if x <= start + window)
        assert inside <= burst + rate * window + 1e-9


def test_aimd_limit_grows_when_busy_and_backs_off_on_a_drop() -> None:
    s = Script(workers=10)
    limiter = AdaptiveConcurrency(initial_limit=2, min_limit=1, max_limit=4)
    limits: list[tuple[float, int]] = []

    def note(_: object) -> None:
        limits.append((round(s.world.now, 9), limiter.limit(s.world)))

    for label in "abc":
        s.send(0.0, label, "ok", [limiter])
    s.world.at(0.15, note)  # a (inflight 1: 1·2 >= 2, +1) and b (2·2 >= 3, +1): 4
    s.send(1.0, "slow", "ok", [limiter, Timeout(0.05)])  # a timeout is a drop
    s.world.at(1.1, note)  # 4 · 0.9 = 3.6 -> 3
    s.send(2.0, "alone", "ok", [limiter])  # inflight 1: 1·2 < 3, unchanged
    s.world.at(2.2, note)
    log = s.run()
    assert log[0] == (0.0, "c", "rejected", "concurrency_limit")
    assert limits == [(0.15, 4), (1.1, 3), (2.2, 3)]


def test_server_side_limit_counts_pool_rejections_as_drops() -> None:
    world = World()
    s = Script(workers=1, world=world)
    world.services["svc"].pool.queue_limit = 0  # reject whenever the worker is busy
    limiter = AdaptiveConcurrency(initial_limit=2, min_limit=1, max_limit=4)
    s.endpoint.add_policy(limiter)
    limits: list[int] = []
    for label in "abc":
        s.send(0.0, label, "ok")
    world.at(0.05, lambda _: limits.append(limiter.limit(world)))
    log = s.run()
    # a is admitted and served. b is admitted, then rejected by the pool: a drop, the limit
    # goes 2 -> max(1, min(1, int(1.8))) = 1. c finds a in progress at the limit of 1.
    # When a answers (it started with 1 in progress: 1·2 >= 1) the limit grows back to 2.
    assert [(label, outcome, detail) for _, label, outcome, detail in log] == [
        ("b", "rejected", "queue_full"),
        ("c", "rejected", "concurrency_limit"),
        ("a", "ok", "ok"),
    ]
    assert limits == [1]
    assert limiter.limit(world) == 2
    assert s.counter("policy.adaptive_concurrency.drops") == 1
