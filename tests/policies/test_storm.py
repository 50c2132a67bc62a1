"""The retry storm: a short outage tips a dependency into overload that outlives it when
every timed-out call is retried once; a retry budget, a retry throttle or a circuit
breaker lets it recover.

The dependency is one worker with exponential 1 ms service (capacity 1000/s) under 600
requests/s, a 50 ms timeout per attempt, and a 1 s outage from t = 5 s in which the link
to it gains 100 ms of delay. During the outage every attempt times out and is retried:
2 × 600 = 1200 attempts/s reach a server that serves 1000/s, so a queue builds (about
200 deep, 200 ms of waiting). After the outage, new requests find that queue, time out,
retry, and keep the attempt rate at twice the load: the queue only grows (metastable
failure). The regimes asserted, over the window 8-15 s, per replication:

- storm: attempts / requests = 2 (each request: a first attempt and one retry, both timed
  out), goodput / load near zero;
- recovered: goodput / load near 1, attempts / requests near 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from sim import Constant, Exponential, LatencySpike, Link, OpenWorkload, Service, World, inject
from sim.call import Policy
from sim.policies import CircuitBreaker, Retry, RetryBudget, RetryThrottle, Timeout
from tests.policies.helpers import assert_within, interval

LOAD = 600.0
WINDOW = (8.0, 15.0)
REPLICATIONS = 5


def run(make_policy: Callable[[], Sequence[Policy]], replication: int) -> tuple[float, float]:
    """(attempts / requests, successes / requests) over WINDOW, for one replication."""
    world = World(seed=2024, replication=replication)
    world.network.set_default(Link(Constant(0.0005)))
    client = world.node("client")
    service = Service(world, "dep", world.node("server"), workers=1)
    service.endpoint("get", Exponential(0.001))
    OpenWorkload(world, "load", "dep.get", LOAD, source=client, policy=make_policy())
    inject(world, LatencySpike(extra_s=0.1, src="client", dst="server"), at_s=5.0, duration_s=1.0)
    metrics = world.metrics
    readings: list[tuple[int, int, int]] = []

    def read(_: object) -> None:
        readings.append(
            (
                metrics.counter("service.dep.received").value,
                metrics.counter("entry.load.requests").value,
                metrics.counter("entry.load.ok").value,
            )
        )

    for at in WINDOW:
        world.at(at, read)
    world.run(WINDOW[1] + 0.001)
    (attempts0, requests0, ok0), (attempts1, requests1, ok1) = readings
    requests = requests1 - requests0
    return (attempts1 - attempts0) / requests, (ok1 - ok0) / requests


def plain() -> list[Policy]:
    return [Retry(2, base_s=0.0, retry_on=["timeout"]), Timeout(0.05)]


def with_budget() -> list[Policy]:
    budget = RetryBudget()  # Envoy's defaults: 20%, at least 3
    return [Retry(2, base_s=0.0, retry_on=["timeout"], budget=budget), Timeout(0.05)]


def with_throttle() -> list[Policy]:
    throttle = RetryThrottle(max_tokens=10, token_ratio=0.1)
    return [Retry(2, base_s=0.0, retry_on=["timeout"], budget=throttle), Timeout(0.05)]


def with_breaker() -> list[Policy]:
    breaker = CircuitBreaker(window_size=50, minimum_calls=20, wait_in_open_s=1.0)
    return [Retry(2, base_s=0.0, retry_on=["timeout"]), breaker, Timeout(0.05)]


def test_one_retry_per_timeout_keeps_the_dependency_overloaded_after_the_outage() -> None:
    results = [run(plain, r) for r in range(REPLICATIONS)]
    amplification = [a for a, _ in results]
    goodput = [g for _, g in results]
    # Every request in the window makes exactly two attempts; requests at the window's
    # edges (≈ 0.1 s of 7 s) may count one attempt on either side: slack 0.02.
    assert_within(amplification, 2.0, slack=0.02)
    mean, half = interval(goodput)
    assert mean + half < 0.02, f"goodput {mean:.4f} ± {half:.4f} of the load"


@pytest.mark.parametrize("make_policy", [with_budget, with_throttle, with_breaker])
def test_a_budget_a_throttle_or_a_breaker_lets_it_recover(
    make_policy: Callable[[], Sequence[Policy]],
) -> None:
    results = [run(make_policy, r) for r in range(REPLICATIONS)]
    goodput_mean, goodput_half = interval([g for _, g in results])
    attempts_mean, attempts_half = interval([a for a, _ in results])
    # Recovered: at ρ = 0.6 a request times out with probability e^(-400 · 0.05) ≈ 2e-9,
    # so goodput is the load and attempts are one per request.
    assert goodput_mean - goodput_half > 0.98, f"goodput {goodput_mean:.4f} ± {goodput_half:.4f}"
    assert attempts_mean + attempts_half < 1.02, f"attempts {attempts_mean:.4f}"
