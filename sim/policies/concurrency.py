"""Adaptive concurrency limits: Netflix concurrency-limits' AIMD limit.

A limit on requests in progress that adapts: each request that was dropped (rejected for
overload or timed out) or took longer than ``timeout_s`` multiplies the limit by
``backoff_ratio`` (and takes at least one off); each other success adds one when the
requests in progress when it started were at least half the limit (``inflight × 2 >=
limit``). The limit stays within [``min_limit``, ``max_limit``]. Defaults: initial 20, min
20, max 200, backoff 0.9, timeout 5 s, as in the library. Errors and refusals leave the
limit alone (the library's ``onIgnore``). A request that finds the limit reached is
``rejected(concurrency_limit)``.

Usable as a client policy (in-progress calls through it, latency on the caller's clock)
and as a server policy on an endpoint (requests admitted until they answer, latency on the
server's clock from arrival; a request the worker pool or another policy rejects counts as
a drop, a crash resets the count).

Metrics (``policy.<name>.``): ``limit`` (gauge), ``permitted``, ``drops``,
``rejected.concurrency_limit``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim import check
from sim.call import Call, Done, Outcome, Proceed, Result
from sim.errors import ConfigError
from sim.policies.base import CONCURRENCY_LIMIT, PolicyBase, rejection
from sim.service import ServerPolicy

if TYPE_CHECKING:
    from sim.clock import Clock
    from sim.node import Node
    from sim.service import Context
    from sim.world import World

__all__ = ["AdaptiveConcurrency"]

REJECTED = rejection(CONCURRENCY_LIMIT)
DROPS = frozenset({Outcome.TIMEOUT, Outcome.REJECTED})
IGNORED = frozenset({Outcome.ERROR, Outcome.REFUSED, Outcome.HUNG})


class _LimitState:
    __slots__ = (
        "admitted",
        "drops",
        "gauge",
        "inflight",
        "limit",
        "permitted",
        "rejected",
        "watched",
    )

    def __init__(self, world: World, prefix: str, limit: int):
        metrics = world.metrics
        self.limit = limit
        self.inflight = 0
        self.admitted: dict[Context, tuple[float, int]] = {}  # server side: arrival, inflight
        self.watched: set[Node] = set()  # nodes whose crash resets the count
        self.gauge = metrics.gauge(f"{prefix}.limit", limit)
        self.permitted = metrics.counter(f"{prefix}.permitted")
        self.drops = metrics.counter(f"{prefix}.drops")
        self.rejected = metrics.counter(f"{prefix}.rejected.{CONCURRENCY_LIMIT}")


class AdaptiveConcurrency(PolicyBase[_LimitState], ServerPolicy):
    """An AIMD concurrency limit (see the module docstring).

    Args:
        initial_limit: the limit at the start (within [min_limit, max_limit]).
        min_limit, max_limit: its bounds (1 <= min <= max).
        backoff_ratio: the factor on a drop, in [0.5, 1).
        timeout_s: latencies above this count as drops (> 0).
        name: metric prefix (default ``adaptive_concurrency``).
    """

    kind = "adaptive_concurrency"

    def __init__(
        self,
        initial_limit: int = 20,
        min_limit: int = 20,
        max_limit: int = 200,
        *,
        backoff_ratio: float = 0.9,
        timeout_s: float = 5.0,
        name: str | None = None,
    ):
        super().__init__(name)
        self.min_limit = check.positive_int("min_limit", min_limit)
        self.max_limit = check.at_least("max_limit", max_limit, self.min_limit)
        self.initial_limit = check.positive_int("initial_limit", initial_limit)
        if not self.min_limit <= self.initial_limit <= self.max_limit:
            raise ConfigError.single(
                "initial_limit", initial_limit, f"an integer in [{min_limit}, {max_limit}]"
            )
        if not 0.5 <= check.finite("backoff_ratio", backoff_ratio) < 1.0:
            raise ConfigError.single("backoff_ratio", backoff_ratio, "a number in [0.5, 1)")
        self.backoff_ratio = float(backoff_ratio)
        self.timeout_s = check.positive("timeout_s", timeout_s)

    def __repr__(self) -> str:
        return (
            f"AdaptiveConcurrency(initial_limit={self.initial_limit}, min_limit={self.min_limit},"
            f" max_limit={self.max_limit}, name={self.name!r})"
        )

    def _new_state(self, world: World) -> _LimitState:
        return _LimitState(world, self.prefix, self.initial_limit)

    def limit(self, world: World) -> int:
        """The limit in force in ``world``."""
        return self._state_for(world).limit

    def _acquire(self, state: _LimitState) -> int | None:
        """Count a request in (returns the requests in progress, itself included) or None."""
        if state.inflight >= state.limit:
            state.rejected.value += 1
            return None
        state.inflight += 1
        state.permitted.value += 1
        return state.inflight

    def _sample(self, state: _LimitState, latency: float, inflight: int, outcome: Outcome) -> None:
        """The library's AIMDLimit update, for one request that ended."""
        state.inflight -= 1
        if outcome in IGNORED:
            return
        limit = state.limit
        if outcome in DROPS or latency > self.timeout_s:
            state.drops.value += 1
            limit = max(1, min(limit - 1, int(limit * self.backoff_ratio)))
        elif inflight * 2 >= limit:
            limit += 1
        else:
            return
        limit = min(self.max_limit, max(self.min_limit, limit))
        if limit != state.limit:
            state.limit = limit
            state.gauge.set(limit)

    # -- client side --------------------------------------------------------------------

    def invoke(self, call: Call, proceed: Proceed, done: Done) -> None:
        world = call.world  # the fast path of _state_for inlined: once per call
        state = self._state if world is self._world else self._state_for(world)
        inflight = self._acquire(state)
        if inflight is None:
            done(REJECTED)
            return
        proceed(call, _Sampled(self, state, call, inflight, done).finish)

    # -- server side --------------------------------------------------------------------

    def admit(self, context: Context) -> Result | None:
        state = self._state_for(context.world)
        if context.node not in state.watched:
            state.watched.add(context.node)
            context.node.on_crash(lambda: _forget(state))
        inflight = self._acquire(state)
        if inflight is None:
            return REJECTED
        state.admitted[context] = (context.received_at, inflight)
        return None

    def complete(self, context: Context, result: Result) -> None:
        self._end(context, result.outcome)

    def dropped(self, context: Context, result: Result | None) -> None:
        self._end(context, Outcome.REJECTED if result is not None else Outcome.HUNG)

    def _end(self, context: Context, outcome: Outcome) -> None:
        state = self._state_for(context.world)
        entry = state.admitted.pop(context, None)
        if entry is None:
            return  # not admitted by this limiter (it rejected it, or a crash intervened)
        received, inflight = entry
        latency = context.node.clock.local_duration(context.world.env.now - received)
        self._sample(state, latency, inflight, outcome)


def _forget(state: _LimitState) -> None:
    state.admitted.clear()
    state.inflight = 0


class _Sampled:
    __slots__ = ("clock", "counted", "done", "inflight", "policy", "started", "state", "world")

    def __init__(
        self,
        policy: AdaptiveConcurrency,
        state: _LimitState,
        call: Call,
        inflight: int,
        done: Done,
    ):
        self.policy = policy
        self.state = state
        self.world = call.world
        self.clock: Clock = call.source.clock
        self.started = call.world.env.now
        self.inflight = inflight
        self.done = done
        self.counted = True  # still counted in the limiter's in-flight total
        if call.scope is not None:
            call.scope.on_abandon(self.abandon)

    def finish(self, result: Result) -> None:
        if self.counted:
            self.counted = False
            latency = self.clock.local_duration(self.world.env.now - self.started)
            self.policy._sample(self.state, latency, self.inflight, result.outcome)
        self.done(result)

    def abandon(self) -> None:
        """The Timeout around this call gave up: count it out now, as a timeout (a drop),
        rather than when (or if) its reply comes."""
        if self.counted:
            self.counted = False
            latency = self.clock.local_duration(self.world.env.now - self.started)
            self.policy._sample(self.state, latency, self.inflight, Outcome.TIMEOUT)
