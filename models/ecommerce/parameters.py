"""Parameters of the ``ecommerce`` model: workload, patterns (each a switch), capacities,
timeouts and the failure processes. Defaults are the resilient configuration; the sources
and reasoning behind the failure figures are in docs/ecommerce.md."""

from __future__ import annotations

from pydantic import Field

from sim.distributions import Distribution, LogNormal
from sim.experiment.schema import (
    Distribution_,
    Duration,
    PositiveDuration,
    PositiveRate,
    Probability,
    Section,
)

__all__ = [
    "Burst",
    "EcommerceParameters",
    "Failure",
    "Failures",
    "Patterns",
]

DAY_S = 86_400.0


def _lognormal(median_s: float, p99_s: float) -> Distribution:
    return LogNormal.from_median_p99(median_s, p99_s)


class Patterns(Section):
    """Each resilience pattern on (True) or off (False). All off is the naive baseline."""

    circuit_breaker: bool = Field(default=True, description="breaker on payment-provider calls")
    retries: bool = Field(default=True, description="retries with exponential backoff and jitter")
    timeouts: bool = Field(default=True, description="a timeout on every service and DB call")
    bulkheads: bool = Field(
        default=True, description="separate pools: orders vs browsing, reservations vs reads"
    )
    saga: bool = Field(
        default=True,
        description="orders run as an asynchronous saga with compensations "
        "(off: one synchronous chain, nothing undone)",
    )
    event_sourcing: bool = Field(
        default=True, description="order history as events; an outbox relay publishes them"
    )
    cqrs: bool = Field(default=True, description="browsing reads a denormalized catalog view")
    gateway: bool = Field(default=True, description="clients enter through the API gateway")
    idempotency: bool = Field(
        default=True, description="idempotency keys on charges, steps and notifications"
    )
    degradation: bool = Field(
        default=True,
        description="stale catalog when its store fails; notifications retried, never dropped",
    )


class Failure(Section):
    """An alternating renewal process: up for Exp(mtbf), then down for a draw of mttr."""

    mtbf: PositiveDuration = Field(description="mean time between failures")
    mttr: Distribution_ = Field(description="time to repair (or to fail over)")


class Burst(Section):
    """Episodes that start at random (Poisson, mean gap ``every``) and last ``duration``."""

    every: PositiveDuration = Field(description="mean time between episodes")
    duration: Distribution_ = Field(description="how long an episode lasts")
    probability: Probability = Field(default=0.0, description="loss or error probability")
    factor: float = Field(default=1.0, ge=1.0, description="latency multiplier")
    extra: Duration = Field(default=0.0, description="latency added")


class Failures(Section):
    """Failure processes. The figures are defaults with sources in docs/ecommerce.md."""

    enabled: bool = Field(default=True, description="False: no random failures at all")
    service: Failure = Field(
        default=Failure(mtbf=14 * DAY_S, mttr=_lognormal(60.0, 900.0)),
        description="each application service (crash, restart by the orchestrator)",
    )
    postgresql: Failure = Field(
        default=Failure(mtbf=30 * DAY_S, mttr=_lognormal(90.0, 600.0)),
        description="each PostgreSQL-like database (Multi-AZ failover)",
    )
    mongodb: Failure = Field(
        default=Failure(mtbf=30 * DAY_S, mttr=_lognormal(12.0, 120.0)),
        description="the MongoDB-like product database (replica-set election)",
    )
    redis: Failure = Field(
        default=Failure(mtbf=30 * DAY_S, mttr=_lognormal(60.0, 600.0)),
        description="the Redis-like notification store (replica promotion)",
    )
    broker: Failure = Field(
        default=Failure(mtbf=30 * DAY_S, mttr=_lognormal(60.0, 600.0)),
        description="the event bus's broker",
    )
    nodes: dict[str, Failure] = Field(
        default_factory=dict, description="per node name: replaces the default above"
    )
    loss_bursts: Burst | None = Field(
        default=Burst(every=DAY_S, duration=_lognormal(120.0, 900.0), probability=0.02),
        description="message loss on every internal link",
    )
    latency_spikes: Burst | None = Field(
        default=Burst(every=DAY_S / 2, duration=_lognormal(300.0, 1800.0), factor=10.0, extra=0.05),
        description="latency spikes on every internal link",
    )
    provider_errors: Burst | None = Field(
        default=Burst(every=3 * DAY_S, duration=_lognormal(600.0, 3600.0), probability=0.5),
        description="payment provider answers errors",
    )
    provider_slowdowns: Burst | None = Field(
        default=Burst(every=2 * DAY_S, duration=_lognormal(900.0, 3600.0), factor=4.0, extra=1.0),
        description="payment provider slows down",
    )


class EcommerceParameters(Section):
    """The reference e-commerce platform (see models/ecommerce/__init__.py)."""

    orders: PositiveRate = Field(default=10_000 / DAY_S, description="mean order rate")
    peak_to_trough: float = Field(default=3.0, ge=1.0, description="diurnal peak / trough")
    peak_hour: Duration = Field(default=14 * 3600.0, description="time of day of the peak")
    browse_per_order: float = Field(
        default=5.0, ge=0.0, description="catalog reads per order (0: no browsing)"
    )
    products: int = Field(default=1000, ge=1, description="catalog size")
    patterns: Patterns = Field(default_factory=Patterns)
    failures: Failures = Field(default_factory=Failures)
    shared_database: bool = Field(
        default=False, description="one PostgreSQL-like database for every service"
    )
    decline_probability: Probability = Field(
        default=0.0, description="card declines (a business outcome: the order is compensated)"
    )
    order_timeout: PositiveDuration = Field(
        default=10.0, description="how long a customer waits for the order page"
    )
    browse_timeout: PositiveDuration = Field(
        default=5.0, description="how long a customer waits for a catalog page"
    )
    provider_latency: Distribution_ = Field(
        default=_lognormal(0.3, 1.5), description="the payment provider's own service time"
    )
    archive_after: PositiveDuration | None = Field(
        default=3600.0,
        description="per-order state is archived this long after the order ends "
        "(none: kept, for tests)",
    )
