"""Queueing theory and the tolerance rule shared by the validation tests.

Formulas (no scipy: the project's dependencies are numpy and the standard library):

- Erlang B, ``B(c, a)``: the probability that an arrival finds all ``c`` servers busy in an
  M/M/c/c loss system with offered load ``a = λ/μ`` erlangs; computed by the recursion
  ``B(0) = 1, B(k) = a·B(k-1) / (k + a·B(k-1))``, stable for any ``c``.
- Erlang C, ``C(c, a) = B / (1 - ρ(1 - B))`` with ``ρ = a/c < 1``: the probability that an
  arrival waits in an M/M/c queue. Mean wait ``Wq = C / (cμ - λ)``, mean sojourn
  ``W = Wq + 1/μ``; M/M/1 is ``c = 1`` (``Wq = ρ/(μ - λ)``).

The tolerance rule: a figure measured in R independent replications (``World(seed,
replication=r)``) has the 95% Student-t interval ``mean ± h`` (``sim.experiment.stats``,
checked against a table below). A test accepts the theory when
``|mean - theory| <= FACTOR · h``. With ``FACTOR = 2`` and R = 20 the threshold is
``2 · t(0.975, 19) = 4.19`` standard errors: a correct model fails with probability
~5e-4 per choice of seed (and never again for that seed: the runs are deterministic). Each
check also asserts its own power: ``FACTOR · h + |mean - theory| < 5% of theory`` means that
a model or an engine off by 5% would lie outside the tolerance with these very runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from sim.experiment.stats import Interval, interval

FACTOR = 2.0
DETECTABLE_BIAS = 0.05

# Two-sided 95% Student-t quantiles t(0.975, dof) from a printed table, to check the
# implementation the intervals use.
T_975 = {1: 12.706, 2: 4.303, 4: 2.776, 9: 2.262, 19: 2.093, 29: 2.045, 60: 2.000, 120: 1.980}


def erlang_b(servers: int, load: float) -> float:
    """Blocking probability of M/M/c/c with ``servers`` servers and ``load`` erlangs."""
    blocking = 1.0
    for k in range(1, servers + 1):
        blocking = load * blocking / (k + load * blocking)
    return blocking


def erlang_c(servers: int, load: float) -> float:
    """Probability of waiting in M/M/c (``load < servers``)."""
    rho = load / servers
    assert rho < 1.0, "M/M/c is stable only for load < servers"
    blocking = erlang_b(servers, load)
    return blocking / (1.0 - rho * (1.0 - blocking))


def mmc_wait(arrival_rate: float, mean_service_s: float, servers: int) -> float:
    """Mean time in queue of M/M/c, seconds."""
    load = arrival_rate * mean_service_s
    return erlang_c(servers, load) / (servers / mean_service_s - arrival_rate)


def mmc_sojourn(arrival_rate: float, mean_service_s: float, servers: int) -> float:
    """Mean time in the system of M/M/c (queue plus service), seconds."""
    return mmc_wait(arrival_rate, mean_service_s, servers) + mean_service_s


def check_against_theory(what: str, values: Sequence[float], theory: float) -> Interval:
    """Assert the tolerance rule (module docstring) for per-replication ``values``."""
    estimate = interval(values)
    tolerance = FACTOR * estimate.half_width
    error = abs(estimate.mean - theory)
    assert error <= tolerance, (
        f"{what}: measured {estimate.mean:.5g} ± {estimate.half_width:.3g} (95%, "
        f"n={estimate.n}), theory {theory:.5g}: off by {error:.3g} > {FACTOR} half-widths"
    )
    assert tolerance + error < DETECTABLE_BIAS * abs(theory), (
        f"{what}: too imprecise to detect a {DETECTABLE_BIAS:.0%} bias "
        f"(tolerance {tolerance:.3g}, theory {theory:.5g}): run longer"
    )
    return estimate
