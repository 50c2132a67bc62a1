"""Nodes: hosts with a local clock that crash, hang and recover.

A crash ends the node's in-flight work: handler processes are interrupted, pools are emptied
(queued work is lost, nothing is answered), volatile state registered with :meth:`on_crash`
is cleared, and the node's *epoch* advances so that any timer or message belonging to the
old incarnation is ignored when it fires. What callers see depends on the kind of fault:

- ``crash``: a request arriving at a down node is refused; the caller learns it one link
  delay after sending. Requests that were in flight on the node when it crashed are never
  answered: their callers wait for their timeouts (or stay hung), as after a power loss.
- ``hang``: the node accepts requests and never answers them while it is hung; work that
  completes during the hang sends no reply. When the hang ends the node answers new requests
  again.

Faults overlap safely: each crash (or hang) takes a hold and each recovery releases one; the
node is up again when no crash hold remains.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

import simpy

from sim.clock import Clock
from sim.errors import ConfigError

if TYPE_CHECKING:
    from sim.distributions import Distribution
    from sim.network import Channel
    from sim.pool import Pool
    from sim.world import World

__all__ = ["FaultKind", "Node"]

FaultKind = Literal["crash", "hang"]


class Interruptible(Protocol):
    """Work that dies with its node: a SimPy process, or a generator handler's driver
    (``sim.service``). A crash calls ``interrupt("crash")`` on each one still alive."""

    @property
    def is_alive(self) -> bool: ...

    def interrupt(self, cause: Any = None) -> None: ...


class Node:
    """A host.

    Args:
        world: the run.
        name: unique name.
        offset_s: clock offset at time zero (local minus true), seconds.
        drift_ppm: clock drift, parts per million.

    Attributes:
        clock: the node's local clock.
        up: False while crashed.
        hung: True while hung (and up).
        epoch: incarnation number; advances at every crash.
    """

    def __init__(self, world: World, name: str, *, offset_s: float = 0.0, drift_ppm: float = 0.0):
        if not name or not isinstance(name, str):
            raise ConfigError.single("node.name", name, "a non-empty string")
        if name in world.nodes:
            raise ConfigError.single("node.name", name, "a name not used by another node")
        self.world = world
        self.name = name
        self.clock = Clock(world, name, offset_s=offset_s, drift_ppm=drift_ppm)
        self.up = True
        self.hung = False
        self.epoch = 0
        self._crash_holds = 0
        self._hang_holds = 0
        self.pools: list[Pool] = []
        # work to interrupt at a crash, in the order it started (a dict: a set's order
        # would follow memory addresses)
        self.processes: dict[Interruptible, None] = {}
        self._crash_hooks: list[Callable[[], None]] = []
        self._recover_hooks: list[Callable[[], None]] = []
        self.channels: dict[Node, Channel] = {}  # outgoing network channels, by destination
        self.state = world.metrics.timeline(f"node.{name}.state", "up")
        self.crashes = world.metrics.counter(f"node.{name}.crashes")
        world.nodes[name] = self

    def __repr__(self) -> str:
        return f"Node({self.name!r}, {self.state.state})"

    @property
    def available(self) -> bool:
        """Up and not hung: will answer a request."""
        return self.up and not self.hung

    def on_crash(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` at every crash: clear caches, sessions and other volatile state."""
        self._crash_hooks.append(hook)

    def on_recover(self, hook: Callable[[], None]) -> None:
        """Call ``hook()`` each time the node comes back up after a crash: restart work
        that must resume (a saga orchestrator reading its progress, a broker redelivering)."""
        self._recover_hooks.append(hook)

    # -- faults -------------------------------------------------------------------------

    def crash(self) -> None:
        """Crash now (or take one more crash hold if already down)."""
        self._crash_holds += 1
        if not self.up:
            return
        self.up = False
        self.epoch += 1
        self.crashes.value += 1
        self.state.enter("down")
        processes, self.processes = self.processes, {}
        for process in processes:
            if process.is_alive:
                process.interrupt("crash")
        for pool in self.pools:
            pool.clear()
        for hook in self._crash_hooks:
            hook()

    def recover(self) -> None:
        """Release one crash hold; the node comes back up when none remains."""
        if self._crash_holds == 0:
            return
        self._crash_holds -= 1
        if self._crash_holds == 0:
            self.up = True
            self.state.enter("hung" if self.hung else "up")
            for hook in self._recover_hooks:
                hook()

    def hang(self) -> None:
        """Hang now: accept requests and answer none (holds stack like crashes)."""
        self._hang_holds += 1
        self.hung = True
        if self.up:
            self.state.enter("hung")

    def unhang(self) -> None:
        """Release one hang hold."""
        if self._hang_holds == 0:
            return
        self._hang_holds -= 1
        if self._hang_holds == 0:
            self.hung = False
            if self.up:
                self.state.enter("up")

    def fail(self, kind: FaultKind) -> None:
        """Start a fault of ``kind`` ("crash" or "hang")."""
        (self.crash if kind == "crash" else self.hang)()

    def repair(self, kind: FaultKind) -> None:
        """End a fault of ``kind``."""
        (self.recover if kind == "crash" else self.unhang)()

    def fail_randomly(
        self,
        time_to_failure: Distribution,
        time_to_repair: Distribution,
        *,
        kind: FaultKind = "crash",
    ) -> None:
        """An alternating renewal process: up for a draw of ``time_to_failure`` (MTBF),
        down for a draw of ``time_to_repair`` (MTTR), forever.

        Long-run availability is ``MTBF / (MTBF + MTTR)``. Draws come from the streams
        ``node.<name>.<kind>.ttf`` and ``.ttr``.
        """
        if kind not in ("crash", "hang"):
            raise ConfigError.single("kind", kind, "'crash' or 'hang'")
        up_for = self.world.sampler(f"node.{self.name}.{kind}.ttf", time_to_failure)
        down_for = self.world.sampler(f"node.{self.name}.{kind}.ttr", time_to_repair)

        def failing(_: Any) -> None:
            self.fail(kind)
            self.world.schedule(down_for(), repairing)

        def repairing(_: Any) -> None:
            self.repair(kind)
            self.world.schedule(up_for(), failing)

        self.world.schedule(up_for(), failing)

    def start_process(self, generator: Any) -> simpy.Process:
        """Run ``generator`` as a process that dies with this node."""
        process = self.world.env.process(generator)
        self.processes[process] = None
        process.callbacks.append(self._forget)
        return process

    def _forget(self, process: simpy.Process) -> None:
        self.processes.pop(process, None)
