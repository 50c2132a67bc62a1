"""Random failures of the shop: nodes that crash and are repaired (MTBF/MTTR), and
episodes of network loss, latency spikes and payment-provider errors and slowdowns.

Each process draws from its own named streams, so two variants of one replication see the
same failures at the same times (common random numbers), whatever their patterns.
Episodes are counted in ``failures.<name>.episodes`` and timed in the gauge
``failures.<name>.active`` (its mean is the share of time the fault was on).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from models.ecommerce.parameters import Burst, Failure, Failures
from sim.distributions import Exponential
from sim.faults import ErrorBurst, Fault, LatencySpike, LossBurst
from sim.world import World

__all__ = ["start_failures"]


def start_failures(
    world: World,
    failures: Failures,
    nodes: Iterable[tuple[str, str]],
    *,
    provider: str,
    provider_link: tuple[str, str],
) -> None:
    """Start every failure process of ``failures``.

    Args:
        nodes: (node name, kind) pairs; kind is ``service``, ``postgresql``, ``mongodb``,
            ``redis`` or ``broker`` and picks the default :class:`Failure` (a node listed in
            ``failures.nodes`` uses its own).
        provider: the payment provider's service (its error bursts).
        provider_link: the (payment, provider) node pair (its slowdowns).
    """
    if not failures.enabled:
        return
    for name, kind in nodes:
        failure: Failure = failures.nodes.get(name) or getattr(failures, kind)
        world.node(name).fail_randomly(Exponential(failure.mtbf), failure.mttr)
    episodes: list[tuple[str, Burst | None, Fault]] = []
    if failures.loss_bursts is not None:
        episodes.append(("loss", failures.loss_bursts, LossBurst(failures.loss_bursts.probability)))
    if failures.latency_spikes is not None:
        spikes = failures.latency_spikes
        episodes.append(("latency", spikes, LatencySpike(spikes.factor, spikes.extra)))
    if failures.provider_errors is not None:
        errors = failures.provider_errors
        episodes.append(("provider_errors", errors, ErrorBurst(provider, errors.probability)))
    if failures.provider_slowdowns is not None:
        slow = failures.provider_slowdowns
        src, dst = provider_link
        episodes.append(
            ("provider_slowdowns", slow, LatencySpike(slow.factor, slow.extra, src, dst))
        )
    for name, burst, fault in episodes:
        assert burst is not None
        _Episodes(world, name, burst, fault)


class _Episodes:
    """Fault ``fault`` on for a draw of ``burst.duration``, off for Exp(``burst.every``)."""

    def __init__(self, world: World, name: str, burst: Burst, fault: Fault):
        self.world = world
        self.fault = fault
        prefix = f"failures.{name}"
        self.gap = world.sampler(f"{prefix}.gap", Exponential(burst.every))
        self.length = world.sampler(f"{prefix}.duration", burst.duration)
        self.count = world.metrics.counter(f"{prefix}.episodes")
        self.active = world.metrics.gauge(f"{prefix}.active")
        world.schedule(self.gap(), self._begin)

    def _begin(self, _: Any) -> None:
        self.fault.start(self.world)
        self.count.value += 1
        self.active.set(1.0)
        self.world.schedule(self.length(), self._end)

    def _end(self, _: Any) -> None:
        self.fault.end(self.world)
        self.active.set(0.0)
        self.world.schedule(self.gap(), self._begin)
