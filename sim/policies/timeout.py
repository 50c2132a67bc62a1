"""Time limits: per attempt (:class:`Timeout`, defined in ``sim.call``) and per call across
all its attempts (:class:`Deadline`).

A pipeline such as ``[Deadline(2.0), Retry(...), Timeout(0.5)]`` gives each attempt 0.5 s
and the whole call 2 s: an attempt never waits past the deadline, Retry sends no retry
whose backoff would end past it, and the deadline's own timer ends the call when it comes.
With ``propagate=True`` (the default, as gRPC does) each attempt carries the time left, and
the server's handler's downstream calls inherit the deadline (``ctx.deadline``), counted on
the server's clock from the request's arrival.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim import check
from sim.call import Call, Done, Outcome, Proceed, Result, Timeout
from sim.policies.base import PolicyBase

if TYPE_CHECKING:
    from sim.metrics import Counter
    from sim.world import World

__all__ = ["DEADLINE_EXCEEDED", "Deadline", "Timeout"]

DEADLINE_EXCEEDED = Result(Outcome.TIMEOUT, reason="deadline")


class _DeadlineState:
    __slots__ = ("calls", "expired")

    def __init__(self, world: World, prefix: str):
        self.calls: Counter = world.metrics.counter(f"{prefix}.calls")
        self.expired: Counter = world.metrics.counter(f"{prefix}.expired")


class Deadline(PolicyBase[_DeadlineState]):
    """End the call ``seconds`` after it starts, on the caller's clock, whatever its inner
    policies are doing; the result is ``timeout`` with reason ``"deadline"``.

    A call that already has an earlier deadline (inherited from the handler's incoming
    request) keeps the earlier one; one whose deadline has passed ends at once, unsent.

    Metrics: ``policy.<name>.calls``, ``policy.<name>.expired``.

    Args:
        seconds: the time limit of the whole call (> 0).
        propagate: send the time left downstream with every attempt.
        name: metric prefix.
    """

    kind = "deadline"

    def __init__(self, seconds: float, *, propagate: bool = True, name: str | None = None):
        super().__init__(name)
        self.seconds = check.positive("seconds", seconds)
        self.propagate = bool(propagate)

    def _new_state(self, world: World) -> _DeadlineState:
        return _DeadlineState(world, self.prefix)

    def invoke(self, call: Call, proceed: Proceed, done: Done) -> None:
        world = call.world  # the fast path of _state_for inlined: once per call
        state = self._state if world is self._world else self._state_for(world)
        state.calls.value += 1
        clock = call.source.clock
        now = clock.now()
        deadline = now + self.seconds
        if call.deadline is not None and call.deadline < deadline:
            deadline = call.deadline
        call.deadline = deadline
        call.propagate = self.propagate
        race = _DeadlineRace(done, state.expired)
        if deadline <= now:
            race.expire(None)
            return
        call.world.schedule(clock.true_delay(deadline - now), race.expire)
        proceed(call, race.finish)


class _DeadlineRace:
    __slots__ = ("done", "expired", "over")

    def __init__(self, done: Done, expired: Counter):
        self.done = done
        self.expired = expired
        self.over = False

    def finish(self, result: Result) -> None:
        if not self.over:
            self.over = True
            self.done(result)

    def expire(self, _: object) -> None:
        if not self.over:
            self.over = True
            self.expired.value += 1
            self.done(DEADLINE_EXCEEDED)
