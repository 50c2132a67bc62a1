"""Bulkheads: a bound on the calls in progress through one client, so that one slow
dependency cannot take every thread of its caller.

- :class:`Bulkhead` is resilience4j's semaphore bulkhead: at most ``max_concurrent`` calls
  in progress (default 25); a call that finds none free waits up to ``max_wait_s`` (default
  0: it is rejected at once) in FIFO order.
- :class:`ThreadPoolBulkhead` is resilience4j's ThreadPoolBulkhead: ``max_threads`` workers
  and a bounded queue (default 100); a call that finds the queue full is rejected. Its
  worker count has no default here: resilience4j's is the machine's processor count, which
  means nothing in a simulation.

Either way a refused call ends as ``rejected(bulkhead_full)``, unsent. The slots are a
:class:`sim.Pool` on the calling node (created at the first call), so its figures appear as
``pool.bulkhead.<name>.*`` (busy, queue, wait, granted) and a crash of the caller empties
it; waits are measured on the caller's clock. Metrics: ``policy.<name>.permitted``,
``policy.<name>.rejected.bulkhead_full``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim import check
from sim.call import Call, Done, Proceed, Result
from sim.policies.base import BULKHEAD_FULL, PolicyBase, rejection
from sim.pool import Pool

if TYPE_CHECKING:
    from sim.world import World

__all__ = ["Bulkhead", "ThreadPoolBulkhead"]

REJECTED = rejection(BULKHEAD_FULL)


class _BulkheadState:
    __slots__ = ("permitted", "pool", "rejected", "world")

    def __init__(self, world: World, prefix: str):
        self.world = world
        self.pool: Pool | None = None  # made at the first call, on the calling node
        self.permitted = world.metrics.counter(f"{prefix}.permitted")
        self.rejected = world.metrics.counter(f"{prefix}.rejected.{BULKHEAD_FULL}")


class Bulkhead(PolicyBase[_BulkheadState]):
    """At most ``max_concurrent`` calls in progress; wait up to ``max_wait_s`` for a slot.

    Args:
        max_concurrent: concurrent calls (>= 1; resilience4j's default 25).
        max_wait_s: longest wait for a slot on the caller's clock (>= 0; default 0).
        name: metric prefix (default ``bulkhead``).
    """

    kind = "bulkhead"

    def __init__(
        self, max_concurrent: int = 25, max_wait_s: float = 0.0, *, name: str | None = None
    ):
        super().__init__(name)
        self.capacity = check.positive_int("max_concurrent", max_concurrent)
        wait = check.non_negative("max_wait_s", max_wait_s)
        self.queue_limit: int | None = 0 if wait == 0.0 else None
        self.max_wait_s: float | None = wait if wait > 0.0 else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.capacity}, name={self.name!r})"

    def _new_state(self, world: World) -> _BulkheadState:
        return _BulkheadState(world, self.prefix)

    def invoke(self, call: Call, proceed: Proceed, done: Done) -> None:
        world = call.world  # the fast path of _state_for inlined: once per call
        state = self._state if world is self._world else self._state_for(world)
        pool = state.pool
        if pool is None:
            pool = state.pool = Pool(
                call.world,
                f"bulkhead.{self.name}",
                self.capacity,
                queue_limit=self.queue_limit,
                max_wait_s=self.max_wait_s,
                node=call.source,
            )
        pool.request(_Slot(state, pool, call, proceed, done), _grant, _reject)


class ThreadPoolBulkhead(Bulkhead):
    """``max_threads`` workers and a queue of ``queue_capacity`` calls; calls beyond both
    are rejected (resilience4j's queueCapacity default is 100).

    Args:
        max_threads: workers (>= 1; required).
        queue_capacity: calls that may wait (>= 0).
        name: metric prefix (default ``thread_pool_bulkhead``).
    """

    kind = "thread_pool_bulkhead"

    def __init__(self, max_threads: int, queue_capacity: int = 100, *, name: str | None = None):
        super().__init__(max_threads, name=name)
        self.queue_limit = check.at_least("queue_capacity", queue_capacity, 0)
        self.max_wait_s = None


class _Slot:
    """One call's permit. It is given back once: when the call's result comes, or when the
    Timeout around it gives the attempt up (a reply that never comes must not keep it)."""

    __slots__ = ("call", "done", "held", "pool", "proceed", "scope", "state")

    def __init__(self, state: _BulkheadState, pool: Pool, call: Call, proceed: Proceed, done: Done):
        self.state = state
        self.pool = pool
        self.call = call
        self.proceed = proceed
        self.done = done
        self.scope = call.scope
        self.held = False

    def finish(self, result: Result) -> None:
        self.give_back()
        self.done(result)

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self.pool.release()


def _grant(slot: _Slot) -> None:
    scope = slot.scope
    slot.held = True
    if scope is not None:
        if scope.over:  # given up while it waited for the permit: nothing to send
            slot.give_back()
            return
        scope.on_abandon(slot.give_back)
    slot.state.permitted.value += 1
    slot.proceed(slot.call, slot.finish)


def _reject(slot: _Slot, reason: Any) -> None:
    slot.state.rejected.value += 1
    slot.done(REJECTED)
