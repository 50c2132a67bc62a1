"""Validation against theory, with tolerances from confidence intervals across replications.

Each figure is computed once per replication (independent seeds); the assertion is that
the theoretical value lies in the 99% Student t interval of the replications' mean.
"""

from __future__ import annotations

import math

import pytest

from sim import Constant, Exponential, OpenWorkload, Outcome, Service, World
from sim.policies import Retry
from tests.policies.helpers import assert_within

REPLICATIONS = 10


@pytest.mark.parametrize(("p", "n"), [(0.3, 3), (0.5, 4), (0.1, 2)])
def test_retry_success_and_attempts_match_independent_failures(p: float, n: int) -> None:
    # Each attempt fails independently with probability p. A request succeeds unless all n
    # attempts fail: P = 1 - p^n. Attempts are 1 + p + ... + p^(n-1) = (1 - p^n)/(1 - p).
    success: list[float] = []
    attempts: list[float] = []
    for replication in range(REPLICATIONS):
        world = World(seed=7, replication=replication)
        service = Service(world, "svc", world.node("server"), workers=100)
        service.endpoint("op", Constant(0.001), error_probability=p)
        retry = Retry(n, base_s=0.0)
        OpenWorkload(world, "load", "svc.op", 1000, policy=[retry], stop_s=3.0)
        world.run(4.0)
        snapshot = world.metrics.snapshot()
        calls = snapshot["policy.retry.calls"]
        success.append(snapshot["entry.load.ok"] / calls)
        attempts.append(snapshot["policy.retry.attempts"] / calls)
    assert_within(success, 1 - p**n)
    assert_within(attempts, (1 - p**n) / (1 - p))


@pytest.mark.parametrize(
    ("drift_ppm", "timed_out"), [(0, math.exp(-2)), (100_000, math.exp(-2 / 1.1))]
)
def test_timeout_on_an_mm1_sojourn(drift_ppm: float, timed_out: float) -> None:
    # M/M/1 with λ = 8/s, μ = 10/s: the sojourn time is exponential with rate μ - λ = 2/s,
    # so a 1 s timeout ends P(T > 1) = e^-2 of the requests. The server is not told of a
    # timeout (it serves the request anyway), so the queue is the plain M/M/1 one. A client
    # clock 10% fast ends its 1 s timer after 1/1.1 true seconds: e^(-2/1.1).
    fractions: list[float] = []
    for replication in range(REPLICATIONS):
        world = World(seed=11, replication=replication)
        client = world.node("client", drift_ppm=drift_ppm)
        service = Service(world, "queue", world.node("server"), workers=1)
        service.endpoint("serve", Exponential(0.1))
        load = OpenWorkload(world, "load", "queue.serve", 8.0, source=client, timeout_s=1.0)
        # 10,000 s (80,000 requests) per replication: the 99% interval is about ±0.008,
        # a third of the gap between e^-2 and e^(-2/1.1), so a clock ignored would fail.
        world.run(10_050.0, warmup_s=50.0)
        outcomes = load.stats.outcomes
        ok = outcomes[Outcome.OK].value
        timeouts = outcomes[Outcome.TIMEOUT].value
        fractions.append(timeouts / (ok + timeouts))
    assert_within(fractions, timed_out)


def expected_sleeps(jitter: str, ceilings: list[float], base: float) -> list[float]:
    """E[sleep] per retry from the AWS formulas: none v, full v/2, equal 3v/4; decorrelated
    (uncapped) E_n = (base + 3 E_(n-1)) / 2 with E_0 = base, the mean of U(base, 3 E_(n-1))."""
    if jitter == "none":
        return ceilings
    if jitter == "full":
        return [v / 2 for v in ceilings]
    if jitter == "equal":
        return [3 * v / 4 for v in ceilings]
    means, previous = [], base
    for _ in ceilings:
        previous = (base + 3 * previous) / 2
        means.append(previous)
    return means


@pytest.mark.parametrize("jitter", ["none", "full", "equal", "decorrelated"])
def test_mean_backoff_per_jitter_mode(jitter: str) -> None:
    # Every call fails, so each makes exactly 3 retries with exponential ceilings
    # 10, 20, 40 ms: the mean sleep recorded by the policy is the mean of the three
    # expectations.
    base = 0.010
    expected = sum(expected_sleeps(jitter, [base, 2 * base, 4 * base], base)) / 3
    means: list[float] = []
    for replication in range(REPLICATIONS):
        world = World(seed=3, replication=replication)
        service = Service(world, "svc", world.node("server"), workers=1000)
        service.endpoint("op", Constant(0.0), error_probability=1.0)
        retry = Retry(4, backoff="exponential", base_s=base, jitter=jitter)
        OpenWorkload(world, "load", "svc.op", 500, policy=[retry], stop_s=2.0)
        world.run(3.0)
        backoff = world.metrics.histogram("policy.retry.backoff")
        assert backoff.count == 3 * world.metrics.counter("policy.retry.calls").value
        means.append(backoff.mean())
    assert_within(means, expected, slack=1e-12)
