"""The ``[faults]`` section: faults on a schedule and random failure processes, for any model.

::

    [[faults.scheduled]]
    kind = "crash"            # crash, hang, partition, latency_spike, loss_burst,
    node = "db"               # error_burst, clock_jump, pool_shrink
    at = "30m"
    duration = "5m"           # omitted: the fault never ends

    [[faults.random]]         # an alternating renewal process per node
    node = "db"
    kind = "crash"            # or "hang"
    time_to_failure = { kind = "exponential", mean = "1d" }      # MTBF
    time_to_repair = { kind = "lognormal", median = "5m", p99 = "1h" }   # MTTR

Each scheduled kind maps onto the dataclass of the same name in :mod:`sim.faults`; names of
nodes, services and pools are checked against the built system when the config is loaded.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from sim import faults
from sim.errors import ConfigError, Problem
from sim.experiment.schema import (
    Distribution_,
    Duration,
    Name,
    PositiveDuration,
    Probability,
    Section,
    SignedDuration,
)
from sim.world import World

__all__ = ["FaultsSection", "RandomFailure", "ScheduledFault", "apply_faults"]


class _Timed(Section):
    at: Duration = Field(description="when the fault starts (true time)")
    duration: PositiveDuration | None = Field(
        default=None, description="how long (omitted: forever)"
    )


class CrashFault(_Timed):
    kind: Literal["crash"]
    node: Name

    def fault(self) -> faults.Crash:
        return faults.Crash(self.node)


class HangFault(_Timed):
    kind: Literal["hang"]
    node: Name

    def fault(self) -> faults.Hang:
        return faults.Hang(self.node)


class PartitionFault(_Timed):
    kind: Literal["partition"]
    side_a: list[Name] = Field(min_length=1)
    side_b: list[Name] = Field(min_length=1)
    one_way: bool = False

    def fault(self) -> faults.Partition:
        return faults.Partition(tuple(self.side_a), tuple(self.side_b), self.one_way)


class LatencySpikeFault(_Timed):
    kind: Literal["latency_spike"]
    factor: float = Field(default=1.0, gt=0)
    extra: Duration = 0.0
    src: Name | None = None
    dst: Name | None = None

    def fault(self) -> faults.LatencySpike:
        return faults.LatencySpike(self.factor, self.extra, self.src, self.dst)


class LossBurstFault(_Timed):
    kind: Literal["loss_burst"]
    probability: Probability
    src: Name | None = None
    dst: Name | None = None

    def fault(self) -> faults.LossBurst:
        return faults.LossBurst(self.probability, self.src, self.dst)


class ErrorBurstFault(_Timed):
    kind: Literal["error_burst"]
    service: Name
    probability: Probability

    def fault(self) -> faults.ErrorBurst:
        return faults.ErrorBurst(self.service, self.probability)


class ClockJumpFault(Section):
    kind: Literal["clock_jump"]
    at: Duration
    node: Name
    delta: SignedDuration

    @property
    def duration(self) -> None:
        """Instantaneous: nothing to end."""
        return None

    def fault(self) -> faults.ClockJump:
        return faults.ClockJump(self.node, self.delta)


class PoolShrinkFault(_Timed):
    kind: Literal["pool_shrink"]
    pool: Name
    capacity: int = Field(ge=1)

    def fault(self) -> faults.PoolShrink:
        return faults.PoolShrink(self.pool, self.capacity)


ScheduledFault = Annotated[
    CrashFault
    | HangFault
    | PartitionFault
    | LatencySpikeFault
    | LossBurstFault
    | ErrorBurstFault
    | ClockJumpFault
    | PoolShrinkFault,
    Field(discriminator="kind"),
]


class RandomFailure(Section):
    """A node that fails and is repaired forever: up for a draw of ``time_to_failure``,
    down (or hung) for a draw of ``time_to_repair``."""

    node: Name
    kind: Literal["crash", "hang"] = "crash"
    time_to_failure: Distribution_
    time_to_repair: Distribution_


class FaultsSection(Section):
    scheduled: list[ScheduledFault] = Field(default_factory=list)
    random: list[RandomFailure] = Field(default_factory=list)


def apply_faults(world: World, section: FaultsSection) -> None:
    """Schedule every fault of ``section`` in ``world`` (after the model is built).

    Raises:
        ConfigError: a fault names a node, service or pool the world does not have; one
            problem per fault, under its key path.
    """
    found: list[Problem] = []
    for index, spec in enumerate(section.scheduled):
        fault = spec.fault()
        try:
            fault.validate(world)
        except ConfigError as error:
            found += _under(error, f"faults.scheduled[{index}]")
            continue
        faults.inject(world, fault, spec.at, spec.duration)
    for index, failure in enumerate(section.random):
        node = world.nodes.get(failure.node)
        if node is None:
            expected = f"a node name in {sorted(world.nodes)}"
            found.append(Problem(f"faults.random[{index}].node", failure.node, expected))
            continue
        node.fail_randomly(failure.time_to_failure, failure.time_to_repair, kind=failure.kind)
    if found:
        raise ConfigError(found)


def _under(error: ConfigError, path: str) -> list[Problem]:
    moved = []
    for p in error.problems:
        key = p.path.removeprefix("fault.")
        moved.append(Problem(f"{path}.{key}", p.value, p.expected))
    return moved
