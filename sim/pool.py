"""Bounded pools: worker threads, database connections, bulkhead slots.

A pool grants a slot synchronously when one is free, queues the request otherwise (up to a
queue limit, for at most a maximum wait), and rejects the rest. It is a counter and a deque:
``simpy.Resource`` does the same job with a process wake-up and several events per grant,
which makes it the largest single cost in idiomatic SimPy models.

Two interfaces:

- callbacks (used on hot paths): ``pool.request(item, grant, reject)`` calls
  ``grant(item)`` now or later, or ``reject(item, reason)`` with reason ``"queue_full"`` or
  ``"queue_timeout"``; the holder calls ``pool.release()`` once when done.
- events (handler code): ``yield pool.acquire()`` resumes when granted or raises
  :class:`PoolRejected`; ``pool.release()`` when done.

Measured: time-weighted busy slots and queue length, waits (a histogram), grants and
rejections by reason. Queue order is FIFO. A waiter that gives up is removed lazily.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import simpy

from sim import check

if TYPE_CHECKING:
    from sim.node import Node
    from sim.world import World

__all__ = ["Pool", "PoolRejected"]

QUEUE_FULL = "queue_full"
QUEUE_TIMEOUT = "queue_timeout"


class PoolRejected(Exception):
    """A pool refused a request (``reason`` is ``"queue_full"`` or ``"queue_timeout"``)."""

    def __init__(self, pool: str, reason: str):
        # args must rebuild the exception: a process that yields a failed event gets a copy,
        # made by SimPy as type(error)(*error.args)
        super().__init__(pool, reason)
        self.pool = pool
        self.reason = reason

    def __str__(self) -> str:
        return f"{self.pool}: {self.reason}"


class _Waiter:
    __slots__ = ("alive", "enqueued_at", "grant", "item", "reject")

    def __init__(self, item: Any, grant: Callable[[Any], None], reject: Any, now: float):
        self.item = item
        self.grant = grant
        self.reject = reject
        self.enqueued_at = now
        self.alive = True


class Pool:
    """A bounded pool of identical slots.

    Args:
        world: the run.
        name: metric names start with ``pool.<name>``.
        capacity: number of slots (>= 1).
        queue_limit: most requests that may wait; 0 rejects whenever all slots are busy;
            None queues without bound.
        max_wait_s: longest a request may wait before it is rejected, measured on the
            node's clock when the pool belongs to a node; None waits without bound.
        node: the node the pool lives on: a crash of the node empties it.
    """

    def __init__(
        self,
        world: World,
        name: str,
        capacity: int,
        *,
        queue_limit: int | None = None,
        max_wait_s: float | None = None,
        node: Node | None = None,
    ):
        self.world = world
        self.name = name
        self.capacity = check.positive_int(f"{name}.capacity", capacity)
        if queue_limit is not None:
            check.at_least(f"{name}.queue_limit", queue_limit, 0)
        if max_wait_s is not None:
            check.positive(f"{name}.max_wait_s", max_wait_s)
        self.queue_limit = queue_limit
        self.max_wait_s = max_wait_s
        self.node = node
        self._env = world.env
        self.nominal_capacity = self.capacity
        self._shrinks: list[int] = []  # capacities of the active shrinks (faults)
        self._unshrunk = self.capacity  # the capacity to return to when no shrink is active
        self.busy = 0
        self.queued = 0  # live waiters (the deque may also hold dead ones)
        self._waiters: deque[_Waiter] = deque()
        metrics = world.metrics
        self.busy_level = metrics.gauge(f"pool.{name}.busy")
        self.queue_level = metrics.gauge(f"pool.{name}.queue")
        self.waits = metrics.histogram(f"pool.{name}.wait")
        self.granted = metrics.counter(f"pool.{name}.granted")
        self.rejected_full = metrics.counter(f"pool.{name}.rejected.{QUEUE_FULL}")
        self.rejected_timeout = metrics.counter(f"pool.{name}.rejected.{QUEUE_TIMEOUT}")
        if node is not None:
            node.pools.append(self)

    def __repr__(self) -> str:
        return f"Pool({self.name!r}, busy={self.busy}/{self.capacity}, queued={self.queued})"

    # -- callbacks ----------------------------------------------------------------------

    def request(
        self,
        item: Any,
        grant: Callable[[Any], None],
        reject: Callable[[Any, str], None],
    ) -> None:
        """Grant ``item`` a slot now, queue it, or reject it."""
        if self.busy < self.capacity and not self.queued:
            busy = self.busy = self.busy + 1
            # busy_level.set(busy) inlined, here and in release() (once per request each):
            # its method call and clock read cost more than its body. -0.12 µs per M/M/4
            # customer (2%), -2% on the 3-hop chain, measured.
            level = self.busy_level
            t = self._env._now
            if t >= level._watch:
                level._cross(t)
            level._area += level.value * (t - level._last)
            level._last = t
            level.value = busy
            if busy > level.maximum:
                level.maximum = busy
            self.granted.value += 1
            self.waits.record(0.0)  # not inlined: the histogram also keeps min and max
            grant(item)
            return
        limit = self.queue_limit
        if limit is not None and self.queued >= limit:
            self.rejected_full.value += 1
            reject(item, QUEUE_FULL)
            return
        waiter = _Waiter(item, grant, reject, self._env._now)
        self._waiters.append(waiter)
        self.queued += 1
        self.queue_level.set(self.queued)
        if self.max_wait_s is not None:
            delay = self.max_wait_s
            if self.node is not None:
                delay = self.node.clock.true_delay(delay)
            self.world.schedule(delay, self._expire, waiter)

    def _expire(self, waiter: _Waiter) -> None:
        if waiter.alive:
            waiter.alive = False
            self.queued -= 1
            self.queue_level.set(self.queued)
            self.rejected_timeout.value += 1
            waiter.reject(waiter.item, QUEUE_TIMEOUT)

    def release(self) -> None:
        """Give back one slot; the longest-waiting live request gets it.

        A release after :meth:`clear` (cleanup code of work that died in a crash) finds
        nothing busy and is ignored.
        """
        if self.busy == 0:
            return
        self.busy -= 1
        if self.queued:
            self._grant_waiting()
        busy = self.busy
        level = self.busy_level  # busy_level.set(busy) inlined: see request()
        t = self._env._now
        if t >= level._watch:
            level._cross(t)
        level._area += level.value * (t - level._last)
        level._last = t
        level.value = busy
        if busy > level.maximum:
            level.maximum = busy

    def _grant_waiting(self) -> None:
        waiters = self._waiters
        while self.queued and self.busy < self.capacity:
            waiter = waiters.popleft()
            if not waiter.alive:
                continue
            waiter.alive = False
            self.queued -= 1
            self.busy += 1
            self.granted.value += 1
            self.waits.record(self._env._now - waiter.enqueued_at)
            self.queue_level.set(self.queued)
            waiter.grant(waiter.item)
        if not self.queued:
            waiters.clear()  # only dead waiters can remain: drop them

    # -- events -------------------------------------------------------------------------

    def acquire(self) -> simpy.Event:
        """An event that succeeds when a slot is granted, or fails with PoolRejected."""
        event = self.world.env.event()
        self.request(event, _succeed, self._fail)
        return event

    def _fail(self, event: simpy.Event, reason: str) -> None:
        event.fail(PoolRejected(self.name, reason))

    # -- changes ------------------------------------------------------------------------

    def resize(self, capacity: int) -> None:
        """Change the number of slots (a pool-shrink fault, or autoscaling). Busy slots
        above a smaller capacity finish their work; no new grant happens until
        ``busy < capacity``."""
        self.capacity = check.positive_int(f"{self.name}.capacity", capacity)
        self._grant_waiting()
        self.busy_level.set(self.busy)  # the grants above changed the level

    def shrink(self, capacity: int) -> None:
        """Start a shrink to ``capacity`` slots (a pool-shrink fault). Shrinks overlap safely:
        while any is active the smallest capacity holds, and when the last ends the capacity
        from before the first returns."""
        check.positive_int(f"{self.name}.capacity", capacity)
        if not self._shrinks:
            self._unshrunk = self.capacity
        self._shrinks.append(capacity)
        self.resize(min(self._shrinks))

    def unshrink(self, capacity: int) -> None:
        """End a shrink started with ``capacity``."""
        self._shrinks.remove(capacity)
        self.resize(min(self._shrinks) if self._shrinks else self._unshrunk)

    def clear(self) -> None:
        """Forget all holders and waiters (their node crashed): nobody is answered."""
        for waiter in self._waiters:
            waiter.alive = False
        self._waiters.clear()
        self.queued = 0
        self.busy = 0
        self.queue_level.set(0)
        self.busy_level.set(0)

    def utilization(self) -> float:
        """Time-averaged busy slots over nominal capacity, since the last metrics reset."""
        return self.busy_level.mean() / self.nominal_capacity


def _succeed(event: simpy.Event) -> None:
    event.succeed()
