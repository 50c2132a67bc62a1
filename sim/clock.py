"""Node clocks: offset, drift, periodic synchronisation with error, and jumps.

A clock maps true time ``t`` to local time ``L(t) = base_local + (t - base_true) * rate``,
with ``rate = 1 + drift_ppm / 1e6``. Two kinds of time come from it:

- ``now()``: what code on the node reads as the time of day (wall clock). Offset, drift,
  synchronisation and jumps all show in it; timestamps and TTL comparisons use it.
- durations: timers set on the node (timeouts, TTLs, breaker waits, leases) elapse at the
  clock's *rate*, like a monotonic clock: a 1 s timer on a clock running 10% fast ends after
  1/1.1 s of true time. Steps of the wall clock (jumps, sync corrections) do not stretch or
  cut short a timer that is already running, as with Linux ``CLOCK_MONOTONIC``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sim import check

if TYPE_CHECKING:
    from sim.distributions import Distribution
    from sim.world import World

__all__ = ["Clock"]


class Clock:
    """A node's local clock.

    Args:
        world: the run.
        name: the node's name; names the clock's random streams.
        offset_s: local minus true time at time zero.
        drift_ppm: rate error in parts per million (+100,000 ppm runs 10% fast).
    """

    def __init__(self, world: World, name: str, offset_s: float = 0.0, drift_ppm: float = 0.0):
        check.finite("offset_s", offset_s)
        check.finite("drift_ppm", drift_ppm)
        if drift_ppm <= -1e6:
            check.positive("drift_ppm + 1e6", drift_ppm + 1e6)
        self._env = world.env
        self._world = world
        self.name = name
        self.rate = 1.0 + drift_ppm * 1e-6
        self._base_true = 0.0
        self._base_local = float(offset_s)
        self.jumps = 0
        self.syncs = 0

    def now(self) -> float:
        """Local (wall-clock) time on this node, in seconds."""
        return self._base_local + (self._env._now - self._base_true) * self.rate

    def true_delay(self, local_s: float) -> float:
        """True seconds that a timer of ``local_s`` local seconds takes to elapse."""
        return local_s / self.rate

    def local_duration(self, true_s: float) -> float:
        """Local seconds that elapse on this clock during ``true_s`` true seconds."""
        return true_s * self.rate

    @property
    def error(self) -> float:
        """Local minus true time, now."""
        return self.now() - float(self._env.now)

    def set(self, local_s: float) -> None:
        """Step the wall clock to read ``local_s`` now (a sync correction or an operator)."""
        self._base_true = self._env.now
        self._base_local = local_s

    def jump(self, delta_s: float) -> None:
        """Step the wall clock by ``delta_s`` seconds (a clock-jump fault)."""
        check.finite("delta_s", delta_s)
        self.set(self.now() + delta_s)
        self.jumps += 1

    def synchronise(self, interval_s: float, error: Distribution, *, signed: bool = True) -> None:
        """Synchronise every ``interval_s`` true seconds (NTP-like), starting one interval in.

        After each sync the clock reads true time plus an error drawn from ``error`` on the
        stream ``clock.<node>.sync`` (with a random sign when ``signed``); drift then builds
        up again until the next sync.
        """
        check.positive("interval_s", interval_s)
        self._sync_interval = interval_s
        self._sync_signed = signed
        self._sync_draw = self._world.sampler(f"clock.{self.name}.sync", error)
        uniform = self._world.stream(f"clock.{self.name}.sync_sign")
        self._sign = lambda: float(uniform.random())
        self._world.schedule(interval_s, self._sync)

    def _sync(self, _: object) -> None:
        err = self._sync_draw()
        if self._sync_signed and self._sign() < 0.5:
            err = -err
        self.set(self._env.now + err)
        self.syncs += 1
        self._world.schedule(self._sync_interval, self._sync)

    _sync_draw: Callable[[], float]
    _sign: Callable[[], float]
