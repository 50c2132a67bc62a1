"""Circuit breakers: stop calling a dependency that fails, then probe it.

Two kinds share one state machine (``closed`` -> ``open`` -> ``half_open`` -> ``closed`` or
back to ``open``):

- :class:`CircuitBreaker` mirrors resilience4j's: a count-based (last N calls) or
  time-based (last N seconds, in one-second buckets of the caller's clock) sliding window;
  it opens when, with at least ``minimum_calls`` recorded, the failure rate or the rate of
  slow calls (longer than ``slow_call_duration_s``) reaches its threshold (percent, >=);
  a count-based window never waits for more calls than it holds. Defaults are
  resilience4j's: count window of 100, minimum 100 calls, failure rate 50%, slow-call rate
  100% at 60 s, 60 s open, 10 calls permitted half-open.
- :class:`ConsecutiveBreaker` is the classic pattern (Nygard's *Release It!*):
  ``failure_threshold`` consecutive failures open it (a success resets the count); after
  the open wait one probe is let through; its success closes the breaker, its failure
  opens it again.

Open: every call ends at once as ``rejected(breaker_open)``, unsent. The wait in open state
is measured on the calling node's wall clock (as resilience4j compares ``Clock.instant()``),
and may grow with ``wait_multiplier`` for each open in a row (reset on closing, as
resilience4j's ``waitIntervalFunctionInOpenState``). As resilience4j by default
(``automaticTransitionFromOpenToHalfOpenEnabled = false``), the move to ``half_open``
happens on the first call after the wait; ``automatic_transition=True`` moves at the end
of the wait instead. Half-open admits exactly the permitted calls and rejects the rest;
when enough of them have answered (resilience4j: ``min(minimum_calls, permitted)``) the
breaker closes or opens again.

A result is recorded in the state it was admitted in: a call admitted before the last
transition does not count (it measured the dependency as it was before). Failures are the
outcomes in ``record_on`` (default: every failure, as resilience4j records every exception);
a call's duration is measured on the caller's clock from admission to result.

Metrics (``policy.<name>.``): ``state`` (timeline: time in each state, transitions),
``permitted``, ``successes``, ``failures``, ``slow``, ``rejected.breaker_open``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from sim import check
from sim.call import Call, Done, Outcome, Proceed, Result
from sim.errors import ConfigError
from sim.policies.base import (
    BREAKER_OPEN,
    FAILURE_NAMES,
    PolicyBase,
    choice,
    optional_positive,
    outcome_set,
    percent,
    rejection,
)

if TYPE_CHECKING:
    from sim.clock import Clock
    from sim.metrics import StateTimeline
    from sim.world import World

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker", "ConsecutiveBreaker"]

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATES = (CLOSED, OPEN, HALF_OPEN)
WINDOWS = {"count": "count", "time": "time", "COUNT_BASED": "count", "TIME_BASED": "time"}
REJECTED = rejection(BREAKER_OPEN)


class _CountWindow:
    """The last ``size`` outcomes, aggregated with subtract-on-evict."""

    __slots__ = ("failed", "index", "ring", "slow", "total")

    def __init__(self, size: int):
        self.ring = [-1] * size  # -1 empty, else failed + 2 * slow
        self.index = 0
        self.total = 0
        self.failed = 0
        self.slow = 0

    def record(self, failed: bool, slow: bool, now_local: float) -> None:
        ring = self.ring
        old = ring[self.index]
        if old < 0:
            self.total += 1
        else:
            self.failed -= old & 1
            self.slow -= old >> 1
        ring[self.index] = failed + 2 * slow
        self.failed += failed
        self.slow += slow
        self.index = (self.index + 1) % len(ring)


class _TimeWindow:
    """Outcomes of the last ``seconds`` epoch seconds of the caller's clock, one bucket per
    second, aggregated with subtract-on-evict (resilience4j's SlidingTimeWindowMetrics)."""

    __slots__ = ("buckets", "failed", "head", "slow", "total")

    def __init__(self, seconds: int):
        self.buckets = [[0, 0, 0] for _ in range(seconds)]  # total, failed, slow
        self.head: int | None = None  # the newest epoch second
        self.total = 0
        self.failed = 0
        self.slow = 0

    def record(self, failed: bool, slow: bool, now_local: float) -> None:
        buckets = self.buckets
        size = len(buckets)
        second = math.floor(now_local)
        if self.head is None:
            self.head = second
        elif second > self.head:  # evict the buckets of seconds that left the window
            for k in range(max(self.head + 1, second - size + 1), second + 1):
                bucket = buckets[k % size]
                self.total -= bucket[0]
                self.failed -= bucket[1]
                self.slow -= bucket[2]
                bucket[0] = bucket[1] = bucket[2] = 0
            self.head = second
        bucket = buckets[self.head % size]  # a clock stepped back records in the newest
        bucket[0] += 1
        bucket[1] += failed
        bucket[2] += slow
        self.total += 1
        self.failed += failed
        self.slow += slow


class _BreakerState:
    __slots__ = (
        "consecutive",
        "failures",
        "generation",
        "half_failed",
        "half_slow",
        "half_total",
        "opens",
        "permits",
        "permitted",
        "rejected",
        "retry_at",
        "slow",
        "state",
        "successes",
        "timeline",
        "window",
    )

    def __init__(self, world: World, prefix: str, window: _CountWindow | _TimeWindow | None):
        metrics = world.metrics
        self.state = CLOSED
        self.generation = 0  # advances at every transition
        self.retry_at = -math.inf  # local time the open wait ends
        self.opens = 0  # opens in a row (the open wait grows with it)
        self.permits = 0  # calls still permitted in half_open
        self.window = window
        self.consecutive = 0  # consecutive failures (ConsecutiveBreaker)
        self.half_total = self.half_failed = self.half_slow = 0
        self.timeline: StateTimeline = metrics.timeline(f"{prefix}.state", CLOSED, states=STATES)
        self.permitted = metrics.counter(f"{prefix}.permitted")
        self.successes = metrics.counter(f"{prefix}.successes")
        self.failures = metrics.counter(f"{prefix}.failures")
        self.slow = metrics.counter(f"{prefix}.slow")
        self.rejected = metrics.counter(f"{prefix}.rejected.{BREAKER_OPEN}")


class _Breaker(PolicyBase[_BreakerState]):
    """The state machine both breakers share; subclasses decide when to open and close."""

    def __init__(
        self,
        *,
        wait_in_open_s: float,
        wait_multiplier: float,
        max_wait_in_open_s: float | None,
        permitted_in_half_open: int,
        automatic_transition: bool,
        slow_call_duration_s: float | None,
        record_on: Iterable[str | Outcome],
        name: str | None,
    ):
        super().__init__(name)
        self.wait_in_open_s = check.positive("wait_in_open_s", wait_in_open_s)
        self.wait_multiplier = check.finite("wait_multiplier", wait_multiplier)
        if self.wait_multiplier < 1.0:
            raise ConfigError.single("wait_multiplier", wait_multiplier, "a number >= 1")
        self.max_wait_in_open_s = optional_positive("max_wait_in_open_s", max_wait_in_open_s)
        self.permitted_in_half_open = check.positive_int(
            "permitted_in_half_open", permitted_in_half_open
        )
        self.automatic_transition = bool(automatic_transition)
        self.slow_call_duration_s = optional_positive("slow_call_duration_s", slow_call_duration_s)
        self.record_on = outcome_set("record_on", record_on)

    def _window(self) -> _CountWindow | _TimeWindow | None:
        return None

    def _new_state(self, world: World) -> _BreakerState:
        return _BreakerState(world, self.prefix, self._window())

    # -- what tests and reports read ----------------------------------------------------

    def current(self, world: World) -> str:
        """The state in ``world`` now: ``closed``, ``open`` or ``half_open`` (an open
        breaker whose wait is over stays ``open`` until the next call, as resilience4j's)."""
        return self._state_for(world).state

    def timeline(self, world: World) -> StateTimeline:
        """The state timeline in ``world``."""
        return self._state_for(world).timeline

    # -- the call path ------------------------------------------------------------------

    def invoke(self, call: Call, proceed: Proceed, done: Done) -> None:
        world = call.world  # the fast path of _state_for inlined: once per call
        state = self._state if world is self._world else self._state_for(world)
        if state.state is not CLOSED:
            if state.state is OPEN:
                if call.source.clock.now() < state.retry_at:
                    state.rejected.value += 1
                    done(REJECTED)
                    return
                self._enter(state, HALF_OPEN)
            if state.permits <= 0:
                state.rejected.value += 1
                done(REJECTED)
                return
            state.permits -= 1
        state.permitted.value += 1
        proceed(call, _Admitted(self, state, call, done).finish)

    def _result(
        self, state: _BreakerState, generation: int, call: Call, started: float, result: Result
    ) -> None:
        failed = result.outcome in self.record_on
        clock = call.source.clock
        slow = clock.local_duration(call.world.env.now - started) > self.slow_call_duration_s
        if failed:
            state.failures.value += 1
        else:
            state.successes.value += 1
        if slow:
            state.slow.value += 1
        if generation != state.generation:
            return  # admitted before the last transition
        if state.state is CLOSED:
            if self._closed_trips(state, failed, slow, clock.now()):
                self._open(state, call.world, clock)
        elif state.state is HALF_OPEN:
            verdict = self._half_open_verdict(state, failed, slow)
            if verdict is OPEN:
                self._open(state, call.world, clock)
            elif verdict is CLOSED:
                self._enter(state, CLOSED)

    def _closed_trips(self, state: _BreakerState, failed: bool, slow: bool, now: float) -> bool:
        raise NotImplementedError

    def _half_open_verdict(self, state: _BreakerState, failed: bool, slow: bool) -> str | None:
        raise NotImplementedError

    # -- transitions --------------------------------------------------------------------

    def _open(self, state: _BreakerState, world: World, clock: Clock) -> None:
        state.opens += 1
        try:
            wait = self.wait_in_open_s * self.wait_multiplier ** (state.opens - 1)
        except OverflowError:
            wait = math.inf
        wait = min(wait, self.max_wait_in_open_s)
        state.retry_at = clock.now() + wait
        self._enter(state, OPEN)
        if self.automatic_transition and math.isfinite(wait):
            world.schedule(clock.true_delay(wait), self._automatic, (state, state.generation))

    def _automatic(self, arg: tuple[_BreakerState, int]) -> None:
        state, generation = arg
        if state.generation == generation:
            self._enter(state, HALF_OPEN)

    def _enter(self, state: _BreakerState, new: str) -> None:
        state.state = new
        state.generation += 1
        state.timeline.enter(new)
        if new is HALF_OPEN:
            state.permits = self.permitted_in_half_open
            state.half_total = state.half_failed = state.half_slow = 0
        elif new is CLOSED:
            state.opens = 0
            state.consecutive = 0
            state.window = self._window()


class _Admitted:
    """A call the breaker let through, waiting for its result."""

    __slots__ = ("breaker", "call", "done", "generation", "started", "state")

    def __init__(self, breaker: _Breaker, state: _BreakerState, call: Call, done: Done):
        self.breaker = breaker
        self.state = state
        self.generation = state.generation
        self.call = call
        self.started = call.world.env.now
        self.done = done

    def finish(self, result: Result) -> None:
        self.breaker._result(self.state, self.generation, self.call, self.started, result)
        self.done(result)


class CircuitBreaker(_Breaker):
    """resilience4j's sliding-window circuit breaker (see the module docstring).

    Args:
        window: ``count`` (COUNT_BASED: the last ``window_size`` calls) or ``time``
            (TIME_BASED: the last ``window_size`` seconds).
        window_size: calls or seconds (>= 1).
        minimum_calls: calls recorded before a rate is computed (>= 1).
        failure_rate_threshold: percent in (0, 100]; opens at or above it.
        slow_call_rate_threshold: percent in (0, 100]; opens at or above it.
        slow_call_duration_s: calls longer than this are slow.
        wait_in_open_s: the open wait (caller's clock).
        wait_multiplier: the wait's growth per open in a row (1: constant).
        max_wait_in_open_s: the longest open wait (None: no cap).
        permitted_in_half_open: probe calls in half-open state.
        automatic_transition: move to half-open when the wait ends, without a call.
        record_on: outcomes recorded as failures.
        name: metric prefix (default ``circuit_breaker``).
    """

    kind = "circuit_breaker"

    def __init__(
        self,
        *,
        window: str = "count",
        window_size: int = 100,
        minimum_calls: int = 100,
        failure_rate_threshold: float = 50.0,
        slow_call_rate_threshold: float = 100.0,
        slow_call_duration_s: float = 60.0,
        wait_in_open_s: float = 60.0,
        wait_multiplier: float = 1.0,
        max_wait_in_open_s: float | None = None,
        permitted_in_half_open: int = 10,
        automatic_transition: bool = False,
        record_on: Iterable[str | Outcome] = FAILURE_NAMES,
        name: str | None = None,
    ):
        super().__init__(
            wait_in_open_s=wait_in_open_s,
            wait_multiplier=wait_multiplier,
            max_wait_in_open_s=max_wait_in_open_s,
            permitted_in_half_open=permitted_in_half_open,
            automatic_transition=automatic_transition,
            slow_call_duration_s=slow_call_duration_s,
            record_on=record_on,
            name=name,
        )
        self.window = WINDOWS[choice("window", window, WINDOWS)]
        self.window_size = check.positive_int("window_size", window_size)
        self.minimum_calls = check.positive_int("minimum_calls", minimum_calls)
        self.failure_rate_threshold = percent("failure_rate_threshold", failure_rate_threshold)
        self.slow_call_rate_threshold = percent(
            "slow_call_rate_threshold", slow_call_rate_threshold
        )
        # resilience4j: a count window never waits for more calls than it holds.
        self._closed_minimum = (
            min(self.minimum_calls, self.window_size)
            if self.window == "count"
            else self.minimum_calls
        )
        self._half_open_minimum = min(self.minimum_calls, self.permitted_in_half_open)

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(window={self.window!r}, window_size={self.window_size}, "
            f"minimum_calls={self.minimum_calls}, "
            f"failure_rate_threshold={self.failure_rate_threshold}, name={self.name!r})"
        )

    def _window(self) -> _CountWindow | _TimeWindow:
        if self.window == "count":
            return _CountWindow(self.window_size)
        return _TimeWindow(self.window_size)

    def _exceeded(self, total: int, failed: int, slow: int) -> bool:
        # failed / total * 100 >= threshold, without the rounding of a division
        return (
            failed * 100.0 >= self.failure_rate_threshold * total
            or slow * 100.0 >= self.slow_call_rate_threshold * total
        )

    def _closed_trips(self, state: _BreakerState, failed: bool, slow: bool, now: float) -> bool:
        window = state.window
        assert window is not None
        window.record(failed, slow, now)
        total = window.total
        return total >= self._closed_minimum and self._exceeded(total, window.failed, window.slow)

    def _half_open_verdict(self, state: _BreakerState, failed: bool, slow: bool) -> str | None:
        state.half_total += 1
        state.half_failed += failed
        state.half_slow += slow
        if state.half_total < self._half_open_minimum:
            return None
        return (
            OPEN if self._exceeded(state.half_total, state.half_failed, state.half_slow) else CLOSED
        )


class ConsecutiveBreaker(_Breaker):
    """The classic breaker: ``failure_threshold`` consecutive failures open it for
    ``wait_in_open_s``; then ``permitted_in_half_open`` probes (default one) must all
    succeed to close it, and any failure opens it again.

    Args:
        failure_threshold: consecutive failures that open it (>= 1).
        wait_in_open_s, wait_multiplier, max_wait_in_open_s, automatic_transition,
        record_on: as :class:`CircuitBreaker`.
        permitted_in_half_open: probe calls (default 1).
        name: metric prefix (default ``consecutive_breaker``).
    """

    kind = "consecutive_breaker"

    def __init__(
        self,
        failure_threshold: int = 5,
        *,
        wait_in_open_s: float = 60.0,
        wait_multiplier: float = 1.0,
        max_wait_in_open_s: float | None = None,
        permitted_in_half_open: int = 1,
        automatic_transition: bool = False,
        record_on: Iterable[str | Outcome] = FAILURE_NAMES,
        name: str | None = None,
    ):
        super().__init__(
            wait_in_open_s=wait_in_open_s,
            wait_multiplier=wait_multiplier,
            max_wait_in_open_s=max_wait_in_open_s,
            permitted_in_half_open=permitted_in_half_open,
            automatic_transition=automatic_transition,
            slow_call_duration_s=None,  # the classic breaker counts failures only
            record_on=record_on,
            name=name,
        )
        self.failure_threshold = check.positive_int("failure_threshold", failure_threshold)

    def __repr__(self) -> str:
        return (
            f"ConsecutiveBreaker(failure_threshold={self.failure_threshold}, "
            f"wait_in_open_s={self.wait_in_open_s}, name={self.name!r})"
        )

    def _closed_trips(self, state: _BreakerState, failed: bool, slow: bool, now: float) -> bool:
        if not failed:
            state.consecutive = 0
            return False
        state.consecutive += 1
        return state.consecutive >= self.failure_threshold

    def _half_open_verdict(self, state: _BreakerState, failed: bool, slow: bool) -> str | None:
        if failed:
            return OPEN
        state.half_total += 1
        return CLOSED if state.half_total >= self.permitted_in_half_open else None
