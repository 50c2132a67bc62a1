"""Load shedding on the server: turn work away early rather than serve it too late.

:class:`LoadShedder` is a server policy (attach it to an endpoint). It rejects, as
``rejected(shed)``:

- on arrival, when it would have to wait for a worker of the service behind
  ``max_queue`` requests already waiting (``max_queue=0``: never wait);
- when a worker is granted, when the request waited longer than ``max_queue_time_s``
  (measured on the server's clock): its caller has probably given up already;
- with ``codel=True``, when a worker is granted, by the controlled-delay rule of
  Facebook's "Fail at Scale" (CoDel adapted to RPC queues): if the queue has not been
  empty at any time in the last ``codel_interval_s`` (a standing queue), a request that
  waited longer than ``codel_target_s`` is shed; otherwise only one that waited longer
  than ``codel_interval_s`` (defaults 5 ms and 100 ms). The queue is seen empty when a
  request arrives or starts with nobody waiting.

Metrics (``policy.<name>.``): ``rejected.shed`` and, by cause, ``shed.queue_length``,
``shed.queue_time``, ``shed.codel``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from sim import check
from sim.call import Result
from sim.errors import ConfigError
from sim.policies.base import SHED, PolicyBase, optional_positive, rejection
from sim.service import ServerPolicy

if TYPE_CHECKING:
    from sim.service import Context
    from sim.world import World

__all__ = ["LoadShedder"]

REJECTED = rejection(SHED)


class _ShedState:
    __slots__ = ("by_codel", "by_length", "by_time", "last_empty", "rejected")

    def __init__(self, world: World, prefix: str):
        metrics = world.metrics
        self.rejected = metrics.counter(f"{prefix}.rejected.{SHED}")
        self.by_length = metrics.counter(f"{prefix}.shed.queue_length")
        self.by_time = metrics.counter(f"{prefix}.shed.queue_time")
        self.by_codel = metrics.counter(f"{prefix}.shed.codel")
        self.last_empty = -math.inf  # server-clock time the queue was last seen empty


class LoadShedder(PolicyBase[_ShedState], ServerPolicy):
    """Reject on queue length, on time spent queued, or by CoDel (see the module docstring).

    Args:
        max_queue: most requests waiting for a worker (>= 0), or None.
        max_queue_time_s: longest wait for a worker (> 0), or None.
        codel: use the CoDel rule.
        codel_target_s: CoDel's target wait (> 0).
        codel_interval_s: CoDel's interval (> target).
        name: metric prefix (default ``load_shedder``).
    """

    kind = "load_shedder"

    def __init__(
        self,
        max_queue: int | None = None,
        max_queue_time_s: float | None = None,
        *,
        codel: bool = False,
        codel_target_s: float = 0.005,
        codel_interval_s: float = 0.100,
        name: str | None = None,
    ):
        super().__init__(name)
        self.max_queue = (
            math.inf if max_queue is None else check.at_least("max_queue", max_queue, 0)
        )
        self.max_queue_time_s = optional_positive("max_queue_time_s", max_queue_time_s)
        self.codel = bool(codel)
        self.codel_target_s = check.positive("codel_target_s", codel_target_s)
        self.codel_interval_s = check.positive("codel_interval_s", codel_interval_s)
        if self.codel_interval_s <= self.codel_target_s:
            raise ConfigError.single(
                "codel_interval_s", codel_interval_s, f"more than codel_target_s ({codel_target_s})"
            )
        if max_queue is None and max_queue_time_s is None and not codel:
            raise ConfigError.single(
                "load_shedder", None, "max_queue, max_queue_time_s or codel=True"
            )

    def __repr__(self) -> str:
        return (
            f"LoadShedder(max_queue={self.max_queue}, max_queue_time_s={self.max_queue_time_s}, "
            f"codel={self.codel})"
        )

    def _new_state(self, world: World) -> _ShedState:
        return _ShedState(world, self.prefix)

    def admit(self, context: Context) -> Result | None:
        state = self._state_for(context.world)
        pool = context.service.pool
        queued = pool.queued
        if queued == 0:
            state.last_empty = context.node.clock.now()
        if queued >= self.max_queue and (queued or pool.busy >= pool.capacity):
            state.by_length.value += 1  # it would have to wait behind a full queue
            state.rejected.value += 1
            return REJECTED
        return None

    def start(self, context: Context) -> Result | None:
        state = self._state_for(context.world)
        clock = context.node.clock
        waited = clock.local_duration(context.granted_at - context.received_at)
        now = clock.now()
        standing = now - state.last_empty > self.codel_interval_s
        if context.service.pool.queued == 0:
            state.last_empty = now
        if waited > self.max_queue_time_s:
            state.by_time.value += 1
        elif self.codel and waited > (self.codel_target_s if standing else self.codel_interval_s):
            state.by_codel.value += 1
        else:
            return None
        state.rejected.value += 1
        return REJECTED
