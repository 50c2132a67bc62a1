"""Open-loop arrivals come at the configured rate: constant, and diurnal over a whole day.

A Poisson process of rate r (or of a varying rate with mean r over a period) puts a
Poisson(r·T) number of arrivals in T seconds, so a count N is judged against E = r·T with
the normal approximation (E is in the millions here): ``|N - E| <= 4·√E`` (a correct
sampler fails with probability 6e-5 per seed). A peer's sampler ran 0.26% fast; the last
test shows that ours would be caught: the 99.9% interval of the pooled counts excludes a
rate 0.26% above (or below) the configured one.

The target's node is down, so every request ends at once as ``refused``: the cheapest path
through the engine that still counts every arrival at the entry point.
"""

from __future__ import annotations

import math

import pytest

from sim import Constant, DiurnalRate, OpenWorkload, Outcome, Service, World
from sim.workload import DAY_S, RateProfile

SEED = 20261127
Z_PASS = 4.0
Z_999 = 3.2905  # two-sided 99.9% normal quantile


def count_arrivals(rate: RateProfile | float, horizon_s: float) -> int:
    world = World(seed=SEED)
    service = Service(world, "server", world.node("server"))
    service.endpoint("work", Constant(0.0))
    service.node.crash()
    load = OpenWorkload(world, "load", "server.work", rate)
    world.run(horizon_s)
    stats = load.stats
    assert stats.outcomes[Outcome.REFUSED].value == stats.requests.value  # all ended
    assert stats.in_flight() == 0
    return stats.requests.value


CASES = {
    # name: (profile, horizon, expected count)
    "constant 25/s": (25.0, 40_000.0, 1_000_000.0),
    # mean 20/s over exactly one period: the daily count is mean x day, whatever the shape
    "diurnal 20/s mean": (DiurnalRate(20.0, peak_to_trough=3.0), DAY_S, 20.0 * DAY_S),
}


@pytest.fixture(scope="module")
def counts() -> dict[str, tuple[int, float]]:
    return {
        name: (count_arrivals(rate, horizon), expected)
        for name, (rate, horizon, expected) in CASES.items()
    }


@pytest.mark.parametrize("name", sorted(CASES))
def test_count_matches_the_configured_rate(counts: dict[str, tuple[int, float]], name: str) -> None:
    count, expected = counts[name]
    assert abs(count - expected) <= Z_PASS * math.sqrt(expected), (name, count, expected)


def test_a_sampler_026_percent_fast_or_slow_would_be_caught(
    counts: dict[str, tuple[int, float]],
) -> None:
    count = sum(c for c, _ in counts.values())
    expected = sum(e for _, e in counts.values())
    half_width = Z_999 * math.sqrt(count)
    low, high = (count - half_width) / expected, (count + half_width) / expected
    assert low <= 1.0 <= high
    assert high < 1.0026 and low > 1.0 - 0.0026, (low, high)
