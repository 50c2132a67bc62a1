"""Faults: things that go wrong at a time, for a while.

Each fault is a small frozen dataclass naming what it hits, with ``start(world)`` and
``end(world)``. :func:`inject` schedules one at ``at_s`` for ``duration_s`` (None: it never
ends on its own; clock jumps are instantaneous). Faults overlap safely: each start takes
something that the matching end gives back (a crash hold, a latency factor, a loss burst).
Random failure processes are :meth:`sim.node.Node.fail_randomly`.

Names (nodes, services, pools) are resolved when the fault is injected, so a typo fails at
set-up, not halfway through a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sim import check
from sim.errors import ConfigError

if TYPE_CHECKING:
    from sim.network import Partition as PartitionHandle
    from sim.node import Node
    from sim.pool import Pool
    from sim.service import Service
    from sim.world import World

__all__ = [
    "ClockJump",
    "Crash",
    "ErrorBurst",
    "Fault",
    "Hang",
    "LatencySpike",
    "LossBurst",
    "Partition",
    "PoolShrink",
    "inject",
]


class Fault(Protocol):
    """Something that starts and (usually) ends."""

    def validate(self, world: World) -> None: ...

    def start(self, world: World) -> None: ...

    def end(self, world: World) -> None: ...


def _node(world: World, name: str) -> Node:
    node = world.nodes.get(name)
    if node is None:
        raise ConfigError.single("fault.node", name, f"a node name in {sorted(world.nodes)}")
    return node


def _service(world: World, name: str) -> Service:
    service = world.services.get(name)
    if service is None:
        raise ConfigError.single(
            "fault.service", name, f"a service name in {sorted(world.services)}"
        )
    return service


def _pool(world: World, name: str) -> Pool:
    pools = {pool.name: pool for node in world.nodes.values() for pool in node.pools}
    pool = pools.get(name)
    if pool is None:
        raise ConfigError.single("fault.pool", name, f"a pool name in {sorted(pools)}")
    return pool


@dataclass(frozen=True)
class Crash:
    """The node goes down: in-flight work lost, new requests refused."""

    node: str

    def validate(self, world: World) -> None:
        _node(world, self.node)

    def start(self, world: World) -> None:
        _node(world, self.node).crash()

    def end(self, world: World) -> None:
        _node(world, self.node).recover()


@dataclass(frozen=True)
class Hang:
    """The node accepts requests and answers none."""

    node: str

    def validate(self, world: World) -> None:
        _node(world, self.node)

    def start(self, world: World) -> None:
        _node(world, self.node).hang()

    def end(self, world: World) -> None:
        _node(world, self.node).unhang()


@dataclass(frozen=True)
class Partition:
    """Messages between ``side_a`` and ``side_b`` are dropped (only a -> b if one_way)."""

    side_a: tuple[str, ...]
    side_b: tuple[str, ...]
    one_way: bool = False
    _handles: list[PartitionHandle] = field(default_factory=list, compare=False, repr=False)

    def validate(self, world: World) -> None:
        for name in (*self.side_a, *self.side_b):
            _node(world, name)

    def start(self, world: World) -> None:
        self._handles.append(
            world.network.partition(self.side_a, self.side_b, one_way=self.one_way)
        )

    def end(self, world: World) -> None:
        self._handles.pop(0).heal()


@dataclass(frozen=True)
class LatencySpike:
    """Delays on the selected links are multiplied by ``factor`` and ``extra_s`` is added.
    ``src``/``dst`` None means every link."""

    factor: float = 1.0
    extra_s: float = 0.0
    src: str | None = None
    dst: str | None = None

    def validate(self, world: World) -> None:
        check.positive("factor", self.factor)
        check.non_negative("extra_s", self.extra_s)
        if (self.src is None) != (self.dst is None):
            raise ConfigError.single("src/dst", (self.src, self.dst), "both or neither")
        for name in (self.src, self.dst):
            if name is not None:
                _node(world, name)

    def start(self, world: World) -> None:
        for link in world.network.links(self.src, self.dst):
            link.spike(self.factor, self.extra_s)

    def end(self, world: World) -> None:
        for link in world.network.links(self.src, self.dst):
            link.unspike(self.factor, self.extra_s)


@dataclass(frozen=True)
class LossBurst:
    """Extra message loss with ``probability`` on the selected links."""

    probability: float
    src: str | None = None
    dst: str | None = None

    def validate(self, world: World) -> None:
        check.probability("probability", self.probability)
        if (self.src is None) != (self.dst is None):
            raise ConfigError.single("src/dst", (self.src, self.dst), "both or neither")

    def start(self, world: World) -> None:
        for link in world.network.links(self.src, self.dst):
            link.add_loss(self.probability)

    def end(self, world: World) -> None:
        for link in world.network.links(self.src, self.dst):
            link.remove_loss(self.probability)


@dataclass(frozen=True)
class ErrorBurst:
    """Every endpoint of ``service`` also answers ``error`` with ``probability``."""

    service: str
    probability: float

    def validate(self, world: World) -> None:
        _service(world, self.service)
        check.probability("probability", self.probability)

    def start(self, world: World) -> None:
        _service(world, self.service).start_error_burst(self.probability)

    def end(self, world: World) -> None:
        _service(world, self.service).end_error_burst(self.probability)


@dataclass(frozen=True)
class ClockJump:
    """The node's wall clock steps by ``delta_s`` (instantaneous; nothing to end)."""

    node: str
    delta_s: float

    def validate(self, world: World) -> None:
        _node(world, self.node)
        check.finite("delta_s", self.delta_s)

    def start(self, world: World) -> None:
        _node(world, self.node).clock.jump(self.delta_s)

    def end(self, world: World) -> None:
        pass


@dataclass(frozen=True)
class PoolShrink:
    """The pool's capacity drops to ``capacity`` (then returns to what it was). Overlapping
    shrinks of one pool hold the smallest capacity until each has ended."""

    pool: str
    capacity: int

    def validate(self, world: World) -> None:
        _pool(world, self.pool)
        check.positive_int("capacity", self.capacity)

    def start(self, world: World) -> None:
        _pool(world, self.pool).shrink(self.capacity)

    def end(self, world: World) -> None:
        _pool(world, self.pool).unshrink(self.capacity)


def inject(world: World, fault: Fault, at_s: float, duration_s: float | None = None) -> None:
    """Start ``fault`` at true time ``at_s`` and end it ``duration_s`` later (never if None)."""
    check.non_negative("at_s", at_s)
    if duration_s is not None:
        check.positive("duration_s", duration_s)
    fault.validate(world)
    world.at(at_s, _start, (world, fault))
    if duration_s is not None:
        world.at(at_s + duration_s, _end, (world, fault))


def inject_all(world: World, faults: Sequence[tuple[Fault, float, float | None]]) -> None:
    """Inject several (fault, at_s, duration_s) triples."""
    for fault, at_s, duration_s in faults:
        inject(world, fault, at_s, duration_s)


def _start(arg: tuple[World, Any]) -> None:
    world, fault = arg
    world.metrics.counter(f"faults.{type(fault).__name__.lower()}").value += 1
    fault.start(world)


def _end(arg: tuple[World, Any]) -> None:
    world, fault = arg
    fault.end(world)
