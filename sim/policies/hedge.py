"""Hedged requests: when the first attempt is slow, send another, and take the first reply.

After ``delay_s`` on the caller's clock without a reply, another attempt goes out, and so on
every ``delay_s`` up to ``max_attempts`` attempts in all (the original included, as gRPC's
hedgingPolicy counts them). With ``quantile`` set, the delay is that quantile of the
latencies of this policy's recent successful calls (the last ``window`` of them, refreshed
every tenth of a window; "The Tail at Scale" hedges at the 95th percentile), and
``delay_s`` is used until ``min_samples`` latencies are known.

The first success wins; the other attempts are cancelled (``request.cancelled``): a server
that has not started one skips it, work already started goes on and its reply is ignored.
A failed attempt is not final while others are outstanding; when every attempt sent has
failed, the next hedge (if any is left) goes out at once, else the last failure ends the
call. Put a per-attempt Timeout inside the Hedge and a Deadline outside it.

Metrics (``policy.<name>.``): ``calls``, ``hedges`` (extra attempts sent), ``won`` (calls
won by a hedge, not the original), ``cancelled`` (losers marked cancelled), ``delay``
(histogram of the delays used, seconds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim import check
from sim.call import Call, Done, Proceed, Request, Result
from sim.errors import ConfigError
from sim.policies.base import PolicyBase

if TYPE_CHECKING:
    from sim.world import World

__all__ = ["Hedge"]


class _HedgeState:
    __slots__ = (
        "calls",
        "cancelled",
        "delay",
        "delays",
        "hedges",
        "latencies",
        "learned",
        "since",
        "won",
    )

    def __init__(self, world: World, prefix: str, delay_s: float):
        metrics = world.metrics
        self.calls = metrics.counter(f"{prefix}.calls")
        self.hedges = metrics.counter(f"{prefix}.hedges")
        self.won = metrics.counter(f"{prefix}.won")
        self.cancelled = metrics.counter(f"{prefix}.cancelled")
        self.delays = metrics.histogram(f"{prefix}.delay")
        self.delay = delay_s  # the delay in force, local seconds
        self.latencies: list[float] = []  # ring of recent successful latencies
        self.since = 0  # latencies recorded since the delay was last computed
        self.learned = 0  # latencies recorded in all


class Hedge(PolicyBase[_HedgeState]):
    """Send up to ``max_attempts`` attempts, ``delay_s`` apart, first success wins.

    Args:
        delay_s: the hedging delay (> 0), or the initial one with ``quantile``.
        max_attempts: attempts in all, the original included (>= 2).
        quantile: hedge at this quantile of recent latencies (in (0, 1)), or None.
        window: recent latencies kept for the quantile (>= 10).
        min_samples: latencies needed before the quantile is used (>= 1).
        name: metric prefix (default ``hedge``).
    """

    kind = "hedge"

    def __init__(
        self,
        delay_s: float,
        max_attempts: int = 2,
        *,
        quantile: float | None = None,
        window: int = 1000,
        min_samples: int = 100,
        name: str | None = None,
    ):
        super().__init__(name)
        self.delay_s = check.positive("delay_s", delay_s)
        self.max_attempts = check.at_least("max_attempts", max_attempts, 2)
        if quantile is not None and not 0.0 < check.finite("quantile", quantile) < 1.0:
            raise ConfigError.single("quantile", quantile, "a number in (0, 1)")
        self.quantile = quantile
        self.window = check.at_least("window", window, 10)
        self.min_samples = check.positive_int("min_samples", min_samples)

    def __repr__(self) -> str:
        return f"Hedge(delay_s={self.delay_s}, max_attempts={self.max_attempts})"

    def _new_state(self, world: World) -> _HedgeState:
        return _HedgeState(world, self.prefix, self.delay_s)

    def invoke(self, call: Call, proceed: Proceed, done: Done) -> None:
        world = call.world  # the fast path of _state_for inlined: once per call
        state = self._state if world is self._world else self._state_for(world)
        state.calls.value += 1
        _Hedged(self, state, call, proceed, done).send()

    def _learn(self, state: _HedgeState, latency: float) -> None:
        latencies = state.latencies
        if len(latencies) < self.window:
            latencies.append(latency)
        else:
            latencies[state.learned % self.window] = latency
        state.learned += 1
        state.since += 1
        if len(latencies) >= self.min_samples and state.since >= max(1, self.window // 10):
            state.since = 0
            ordered = sorted(latencies)
            assert self.quantile is not None
            rank = min(len(ordered) - 1, int(self.quantile * len(ordered)))
            state.delay = max(ordered[rank], 1e-9)


class _Hedged:
    """One hedged call: its attempts on the wire and how many are still outstanding."""

    __slots__ = (
        "call",
        "done",
        "outstanding",
        "over",
        "policy",
        "proceed",
        "requests",
        "started",
        "state",
    )

    def __init__(self, policy: Hedge, state: _HedgeState, call: Call, proceed: Proceed, done: Done):
        self.policy = policy
        self.state = state
        self.call = call
        self.proceed = proceed
        self.done = done
        self.requests: list[Request | None] = []
        self.outstanding = 0
        self.over = False
        self.started = call.world.env.now

    def send(self) -> None:
        call = self.call
        index = len(self.requests)
        if index:
            self.state.hedges.value += 1
        before = call.last_request
        self.requests.append(None)
        self.outstanding += 1
        self.proceed(call, _Attempt(self, index).finish)
        if call.last_request is not before:  # sent now (not held by an inner policy)
            self.requests[index] = call.last_request
        if len(self.requests) < self.policy.max_attempts and not self.over:
            delay = self.state.delay
            self.state.delays.record(delay)
            call.world.schedule(call.source.clock.true_delay(delay), self._timer, index)

    def _timer(self, index: int) -> None:
        # Only the timer of the latest attempt sends the next one.
        if not self.over and index == len(self.requests) - 1:
            self.send()

    def result(self, index: int, result: Result) -> None:
        self.outstanding -= 1
        if self.over:
            return
        if result.ok:
            self.over = True
            state = self.state
            if index:
                state.won.value += 1
            for other, request in enumerate(self.requests):
                if other != index and request is not None and not request.replied:
                    request.cancelled = True
                    state.cancelled.value += 1
            if self.policy.quantile is not None:
                call = self.call
                latency = call.source.clock.local_duration(call.world.env.now - self.started)
                self.policy._learn(state, latency)
            self.done(result)
        elif self.outstanding == 0:
            if len(self.requests) < self.policy.max_attempts:
                self.send()
            else:
                self.over = True
                self.done(result)


class _Attempt:
    __slots__ = ("hedged", "index")

    def __init__(self, hedged: _Hedged, index: int):
        self.hedged = hedged
        self.index = index

    def finish(self, result: Result) -> None:
        self.hedged.result(self.index, result)
