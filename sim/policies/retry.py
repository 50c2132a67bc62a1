"""Retry with backoff and jitter, optionally under a retry budget.

``max_attempts`` counts the first call: ``max_attempts=3`` is one call and at most two
retries (resilience4j's ``maxAttempts``, gRPC's ``maxAttempts``). Defaults are resilience4j's:
3 attempts, a constant 500 ms wait, every failure retried.

Backoff before retry ``n`` (n = 1 for the first retry), before jitter, capped at ``cap_s``:

- ``constant``: ``base``;
- ``linear``: ``base · n``;
- ``exponential``: ``base · multiplier^(n-1)``: the first retry uses exponent 0 and waits
  ``base``, as resilience4j's ``initialInterval`` and gRPC's ``initial_backoff``. With the
  default multiplier 2 this is the AWS Architecture Blog's ``base · 2^attempt`` with attempt
  counted from 0 (resilience4j's own default multiplier is 1.5).

Jitter, as defined in the AWS Architecture Blog's "Exponential Backoff and Jitter", with
``v`` the capped backoff above and ``U`` a uniform draw:

- ``none``: ``v``;
- ``full``: ``U(0, v)``;
- ``equal``: ``v/2 + U(0, v/2)``;
- ``decorrelated``: ``min(cap, U(base, 3 · previous sleep))``, the previous sleep of the
  first retry being ``base``. It replaces the backoff kind: each sleep grows from the last.

A backoff is waited on the caller's clock. A retry whose backoff would end at or after the
call's deadline is not sent (the last failure is returned).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from sim import check
from sim.call import Call, Done, Outcome, Proceed, Result
from sim.distributions import Uniform
from sim.errors import ConfigError
from sim.policies.base import (
    FAILURE_NAMES,
    PolicyBase,
    choice,
    optional_positive,
    outcome_set,
)
from sim.policies.budget import Budget, BudgetState, RetryBudget, RetryThrottle

if TYPE_CHECKING:
    from sim.world import World

__all__ = ["BACKOFFS", "JITTERS", "Backoff", "Retry"]

BACKOFFS = ("constant", "linear", "exponential")
JITTERS = ("none", "full", "equal", "decorrelated")


class Backoff:
    """How long to wait before each retry (see the module docstring for the formulas).

    Args:
        kind: ``constant``, ``linear`` or ``exponential``.
        base_s: the base wait, seconds (>= 0).
        multiplier: growth factor of ``exponential`` (>= 1).
        cap_s: the longest wait, seconds (None: no cap).
        jitter: ``none``, ``full``, ``equal`` or ``decorrelated``.
    """

    def __init__(
        self,
        kind: str = "constant",
        base_s: float = 0.5,
        *,
        multiplier: float = 2.0,
        cap_s: float | None = None,
        jitter: str = "none",
    ):
        self.kind = choice("backoff", kind, BACKOFFS)
        self.base_s = check.non_negative("base_s", base_s)
        self.multiplier = check.finite("multiplier", multiplier)
        if self.multiplier < 1.0:
            raise ConfigError.single("multiplier", multiplier, "a number >= 1")
        self.cap_s = optional_positive("cap_s", cap_s)
        self.jitter = choice("jitter", jitter, JITTERS)

    def __repr__(self) -> str:
        return (
            f"Backoff({self.kind!r}, base_s={self.base_s}, multiplier={self.multiplier}, "
            f"cap_s={self.cap_s}, jitter={self.jitter!r})"
        )

    def ceiling(self, retry: int) -> float:
        """The capped wait before retry number ``retry`` (>= 1), before jitter."""
        base = self.base_s
        if self.kind == "constant":
            value = base
        elif self.kind == "linear":
            value = base * retry
        else:
            try:
                value = base * self.multiplier ** (retry - 1)
            except OverflowError:
                value = math.inf
        return min(self.cap_s, value)

    def sleep(self, retry: int, previous: float, uniform: Callable[[], float]) -> float:
        """The wait before retry ``retry`` (>= 1); ``previous`` is the last sleep of this
        call (``base_s`` before the first retry); ``uniform()`` draws from U(0, 1)."""
        jitter = self.jitter
        if jitter == "none":
            return self.ceiling(retry)
        if jitter == "decorrelated":
            low = self.base_s
            return min(self.cap_s, low + uniform() * (3.0 * previous - low))
        value = self.ceiling(retry)
        if jitter == "full":
            return uniform() * value
        half = value / 2.0
        return half + uniform() * half


class _RetryState:
    __slots__ = (
        "attempts",
        "backoff",
        "budget",
        "calls",
        "deadline_stops",
        "denied",
        "exhausted",
        "retries",
        "uniform",
    )

    def __init__(self, world: World, prefix: str, budget: BudgetState | None):
        metrics = world.metrics
        self.calls = metrics.counter(f"{prefix}.calls")
        self.attempts = metrics.counter(f"{prefix}.attempts")
        self.retries = metrics.counter(f"{prefix}.retries")
        self.exhausted = metrics.counter(f"{prefix}.exhausted")
        self.deadline_stops = metrics.counter(f"{prefix}.deadline_stops")
        self.denied = metrics.counter(f"{prefix}.budget_denied")
        self.backoff = metrics.histogram(f"{prefix}.backoff")
        self.uniform = world.sampler(f"{prefix}.jitter", Uniform(0.0, 1.0))
        self.budget = budget


class Retry(PolicyBase[_RetryState]):
    """Send the call again when an attempt fails with an outcome in ``retry_on``.

    The call ends with the first result not retried: a success, an outcome not in
    ``retry_on``, the last attempt's failure when ``max_attempts`` are used up (counted as
    ``exhausted``) or the deadline leaves no time, or the budget refuses a retry (counted
    as ``budget_denied``). A refused retry returns the failure the call already had, as
    Envoy (``upstream_rq_retry_overflow``) and gRPC (throttled retries) do: the budget
    limits amplification, it does not invent a new kind of failure.

    Metrics (``policy.<name>.``): ``calls``, ``attempts`` (amplification is
    attempts / calls), ``retries``, ``exhausted``, ``deadline_stops``,
    ``budget_denied``, ``backoff`` (histogram of sleeps, seconds).

    Args:
        max_attempts: attempts including the first call (>= 1).
        backoff: ``constant``, ``linear`` or ``exponential``; or a :class:`Backoff`.
        base_s, multiplier, cap_s, jitter: see :class:`Backoff`.
        retry_on: outcomes that are retried (default: every failure).
        budget: a :class:`~sim.policies.RetryBudget` or :class:`~sim.policies.RetryThrottle`
            shared by the Retry policies of one client and upstream.
        name: metric prefix (default ``retry``).
    """

    kind = "retry"

    def __init__(
        self,
        max_attempts: int = 3,
        *,
        backoff: str | Backoff = "constant",
        base_s: float = 0.5,
        multiplier: float = 2.0,
        cap_s: float | None = None,
        jitter: str = "none",
        retry_on: Iterable[str | Outcome] = FAILURE_NAMES,
        budget: Budget | None = None,
        name: str | None = None,
    ):
        super().__init__(name)
        self.max_attempts = check.positive_int("max_attempts", max_attempts)
        self.backoff = (
            backoff
            if isinstance(backoff, Backoff)
            else Backoff(backoff, base_s, multiplier=multiplier, cap_s=cap_s, jitter=jitter)
        )
        self.retry_on = outcome_set("retry_on", retry_on)
        if budget is not None and not isinstance(budget, RetryBudget | RetryThrottle):
            raise ConfigError.single("budget", budget, "a RetryBudget or RetryThrottle")
        self.budget = budget

    def __repr__(self) -> str:
        return f"Retry(max_attempts={self.max_attempts}, {self.backoff!r}, name={self.name!r})"

    def _new_state(self, world: World) -> _RetryState:
        budget = None if self.budget is None else self.budget.state(world)
        return _RetryState(world, self.prefix, budget)

    def invoke(self, call: Call, proceed: Proceed, done: Done) -> None:
        world = call.world  # the fast path of _state_for inlined: once per call
        state = self._state if world is self._world else self._state_for(world)
        state.calls.value += 1
        if state.budget is not None:
            state.budget.begin_call()
        run = _Run(self, state, call, proceed, done)
        run.send()


class _Run:
    """One call through a Retry: its attempts so far and its last sleep."""

    __slots__ = ("call", "done", "number", "policy", "previous", "proceed", "retrying", "state")

    def __init__(self, policy: Retry, state: _RetryState, call: Call, proceed: Proceed, done: Done):
        self.policy = policy
        self.state = state
        self.call = call
        self.proceed = proceed
        self.done = done
        self.number = 0  # attempts sent
        self.previous = policy.backoff.base_s  # the last sleep (decorrelated jitter)
        self.retrying = False  # holding a budget's retry slot

    def send(self, after_backoff: object = None) -> None:
        call = self.call
        if after_backoff:  # the caller may have died during the backoff
            source = call.source
            if not source.up or source.epoch != call.source_epoch:
                self._release()
                return
        self.number += 1
        self.state.attempts.value += 1
        self.proceed(call, self.on_result)

    def on_result(self, result: Result) -> None:
        state = self.state
        policy = self.policy
        budget = state.budget
        if self.retrying:
            self.retrying = False
            budget.end_retry()  # type: ignore[union-attr]  # retrying implies a budget
        retryable = result.outcome in policy.retry_on
        if budget is not None:
            budget.record(retryable)
        if not retryable:
            self._finish(result)
            return
        if self.number >= policy.max_attempts:
            state.exhausted.value += 1
            self._finish(result)
            return
        call = self.call
        clock = call.source.clock
        sleep = policy.backoff.sleep(self.number, self.previous, state.uniform)
        if call.deadline is not None and clock.now() + sleep >= call.deadline:
            state.deadline_stops.value += 1
            self._finish(result)
            return
        if budget is not None:
            if not budget.try_retry():
                state.denied.value += 1
                self._finish(result)
                return
            self.retrying = True
        self.previous = sleep
        state.retries.value += 1
        state.backoff.record(sleep)
        if sleep > 0.0:
            call.world.schedule(clock.true_delay(sleep), self.send, True)
        else:
            self.send()

    def _release(self) -> None:
        budget = self.state.budget
        if budget is not None:
            if self.retrying:
                self.retrying = False
                budget.end_retry()
            budget.end_call()

    def _finish(self, result: Result) -> None:
        self._release()
        self.done(result)
