"""Fallbacks: answer something useful when the call fails; the answer is ``degraded``.

Three modes:

- ``static``: a fixed ``value``;
- ``stale``: the last good value this policy saw (per endpoint, or per endpoint and payload
  with ``per_payload=True``); with none seen yet the failure stands;
- ``alternate``: call another endpoint (``target``, through ``alternate_policy``) with the
  same payload; its success is served, its failure leaves the original failure standing.

Only failures whose outcome is in ``on`` are covered (default: every failure).
Metrics (``policy.<name>.``): ``served`` (degraded answers given), ``missed`` (failures the
fallback could not cover).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sim.call import Call, Done, Outcome, Pipeline, Policy, Proceed, Result, start_call
from sim.errors import ConfigError
from sim.policies.base import FAILURE_NAMES, PolicyBase, choice, outcome_set

if TYPE_CHECKING:
    from sim.service import Endpoint
    from sim.world import World

__all__ = ["MODES", "Fallback"]

MODES = ("static", "stale", "alternate")


class _FallbackState:
    __slots__ = ("alternate", "cache", "missed", "served", "world")

    def __init__(self, world: World, prefix: str):
        self.world = world
        self.cache: dict[Any, Any] = {}
        self.alternate: Endpoint | None = None
        self.served = world.metrics.counter(f"{prefix}.served")
        self.missed = world.metrics.counter(f"{prefix}.missed")


class Fallback(PolicyBase[_FallbackState]):
    """Cover failures with a degraded answer.

    Args:
        mode: ``static``, ``stale`` or ``alternate``.
        value: the static answer.
        target: the alternate endpoint, ``"service.endpoint"``.
        alternate_policy: policies of the alternate call (default: none).
        per_payload: stale values are kept per payload (hashable) as well as per endpoint.
        on: outcomes covered.
        name: metric prefix (default ``fallback``).
    """

    kind = "fallback"

    def __init__(
        self,
        mode: str = "static",
        value: Any = None,
        *,
        target: str | None = None,
        alternate_policy: Sequence[Policy] | Pipeline = (),
        per_payload: bool = False,
        on: Iterable[str | Outcome] = FAILURE_NAMES,
        name: str | None = None,
    ):
        super().__init__(name)
        self.mode = choice("mode", mode, MODES)
        if self.mode == "alternate" and not (isinstance(target, str) and "." in target):
            raise ConfigError.single("target", target, "'service.endpoint' for mode alternate")
        self.value = value
        self.target = target
        self.alternate_policy = (
            alternate_policy
            if isinstance(alternate_policy, Pipeline)
            else Pipeline(alternate_policy)
        )
        self.per_payload = bool(per_payload)
        self.on = outcome_set("on", on)

    def __repr__(self) -> str:
        return f"Fallback({self.mode!r}, name={self.name!r})"

    def _new_state(self, world: World) -> _FallbackState:
        return _FallbackState(world, self.prefix)

    def invoke(self, call: Call, proceed: Proceed, done: Done) -> None:
        world = call.world  # the fast path of _state_for inlined: once per call
        state = self._state if world is self._world else self._state_for(world)
        proceed(call, _Covered(self, state, call, done).finish)

    def _key(self, call: Call) -> Any:
        if self.per_payload:
            return (call.endpoint.address, call.payload)
        return call.endpoint.address

    def _cover(self, state: _FallbackState, call: Call, result: Result, done: Done) -> None:
        mode = self.mode
        if mode == "static":
            state.served.value += 1
            done(Result(Outcome.DEGRADED, self.value))
        elif mode == "stale":
            key = self._key(call)
            if key in state.cache:
                state.served.value += 1
                done(Result(Outcome.DEGRADED, state.cache[key]))
            else:
                state.missed.value += 1
                done(result)
        else:
            endpoint = state.alternate
            if endpoint is None:
                assert self.target is not None
                endpoint = state.alternate = state.world.endpoint(self.target)
            start_call(
                call.source,
                endpoint,
                call.payload,
                self.alternate_policy,
                _Alternate(state, result, done).finish,
                key=call.key,
                deadline=call.deadline,
            )


class _Covered:
    __slots__ = ("call", "done", "policy", "state")

    def __init__(self, policy: Fallback, state: _FallbackState, call: Call, done: Done):
        self.policy = policy
        self.state = state
        self.call = call
        self.done = done

    def finish(self, result: Result) -> None:
        policy = self.policy
        if result.outcome is Outcome.OK:
            if policy.mode == "stale":
                self.state.cache[policy._key(self.call)] = result.value
            self.done(result)
        elif result.outcome in policy.on:
            policy._cover(self.state, self.call, result, self.done)
        else:
            self.done(result)


class _Alternate:
    __slots__ = ("done", "original", "state")

    def __init__(self, state: _FallbackState, original: Result, done: Done):
        self.state = state
        self.original = original
        self.done = done

    def finish(self, result: Result) -> None:
        if result.ok:
            self.state.served.value += 1
            self.done(Result(Outcome.DEGRADED, result.value))
        else:
            self.state.missed.value += 1
            self.done(self.original)
