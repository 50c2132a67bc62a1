"""Retry budgets: limits on retries shared by every Retry that uses the same budget object
(one per client and upstream cluster, as in Envoy and gRPC).

- :class:`RetryBudget` (Envoy's ``retry_budget``): retries in progress are at most
  ``max(min_retry_concurrency, budget_percent% × active requests)``; defaults 20% and 3.
- :class:`RetryThrottle` (gRPC's ``retryThrottling``): a token count starts at
  ``max_tokens``; every failed attempt takes 1, every successful one adds ``token_ratio``
  (never above ``max_tokens``); retries are allowed only while tokens > ``max_tokens / 2``.

A budget is not a pipeline policy: pass it to :class:`sim.policies.Retry` (``budget=``).
A retry the budget refuses is not sent: the call ends with the failure it already had (as in
Envoy and gRPC), and the Retry counts it as ``policy.<retry>.budget_denied``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from sim import check
from sim.errors import ConfigError
from sim.policies.base import PolicyBase, percent

if TYPE_CHECKING:
    from sim.world import World

__all__ = ["BudgetState", "RetryBudget", "RetryThrottle", "build_budget"]


class BudgetState(Protocol):
    """A budget's state in one world, as Retry uses it."""

    def begin_call(self) -> None:
        """A call entered a Retry that uses this budget."""

    def end_call(self) -> None:
        """That call ended."""

    def record(self, failed: bool) -> None:
        """An attempt ended (``failed``: with an outcome the Retry retries)."""

    def try_retry(self) -> bool:
        """May a retry start now? If True, it counts as in progress until ``end_retry``."""

    def end_retry(self) -> None:
        """A retry allowed by ``try_retry`` ended (its attempt has a result)."""


class _EnvoyState:
    __slots__ = ("active", "allowed", "denied", "min_concurrency", "ratio", "retries")

    def __init__(self, world: World, prefix: str, ratio: float, min_concurrency: int):
        self.ratio = ratio
        self.min_concurrency = min_concurrency
        self.active = 0  # calls in progress through Retry policies sharing this budget
        self.retries = 0  # retries in progress (from the decision to their attempt's end)
        self.allowed = world.metrics.counter(f"{prefix}.allowed")
        self.denied = world.metrics.counter(f"{prefix}.denied")

    def begin_call(self) -> None:
        self.active += 1

    def end_call(self) -> None:
        self.active -= 1

    def record(self, failed: bool) -> None:
        pass

    def try_retry(self) -> bool:
        if self.retries < max(self.min_concurrency, self.ratio * self.active):
            self.retries += 1
            self.allowed.value += 1
            return True
        self.denied.value += 1
        return False

    def end_retry(self) -> None:
        self.retries -= 1


class RetryBudget(PolicyBase[_EnvoyState]):
    """Envoy's retry budget: concurrent retries at most ``max(min_retry_concurrency,
    budget_percent% × active requests)``.

    Active requests are the calls in progress through the Retry policies sharing this
    budget (each counted once, whether on its first attempt, a retry or a backoff); a
    retry is in progress from the decision to retry until its attempt has a result.

    Metrics: ``policy.<name>.allowed``, ``policy.<name>.denied``.
    """

    kind = "envoy"

    def __init__(
        self,
        budget_percent: float = 20.0,
        min_retry_concurrency: int = 3,
        *,
        name: str | None = None,
    ):
        super().__init__("retry_budget" if name is None else name)
        self.budget_percent = percent("budget_percent", budget_percent)
        self.min_retry_concurrency = check.at_least(
            "min_retry_concurrency", min_retry_concurrency, 0
        )

    def _new_state(self, world: World) -> _EnvoyState:
        return _EnvoyState(
            world, self.prefix, self.budget_percent / 100.0, self.min_retry_concurrency
        )

    def state(self, world: World) -> BudgetState:
        """The budget's state in ``world``."""
        return self._state_for(world)


class _ThrottleState:
    __slots__ = ("allowed", "denied", "level", "max_tokens", "ratio", "threshold", "tokens")

    def __init__(self, world: World, prefix: str, max_tokens: float, ratio: float):
        self.max_tokens = max_tokens
        self.threshold = max_tokens / 2.0
        self.ratio = ratio
        self.tokens = max_tokens
        self.level = world.metrics.gauge(f"{prefix}.tokens", max_tokens)
        self.allowed = world.metrics.counter(f"{prefix}.allowed")
        self.denied = world.metrics.counter(f"{prefix}.denied")

    def begin_call(self) -> None:
        pass

    def end_call(self) -> None:
        pass

    def record(self, failed: bool) -> None:
        if failed:
            self.tokens = max(0.0, self.tokens - 1.0)
        else:
            self.tokens = min(self.max_tokens, self.tokens + self.ratio)
        self.level.set(self.tokens)

    def try_retry(self) -> bool:
        if self.tokens > self.threshold:
            self.allowed.value += 1
            return True
        self.denied.value += 1
        return False

    def end_retry(self) -> None:
        pass


class RetryThrottle(PolicyBase[_ThrottleState]):
    """gRPC's retry throttling: retries only while tokens > ``max_tokens / 2``.

    Tokens start at ``max_tokens``; an attempt that fails with an outcome the Retry
    retries takes 1 (floor 0), any other attempt adds ``token_ratio`` (cap ``max_tokens``).
    The first attempt of a call is never throttled. gRPC has no defaults (its service config
    requires both); ours are its documentation's example, 10 and 0.1.

    Metrics: ``policy.<name>.tokens`` (gauge), ``policy.<name>.allowed``, ``.denied``.
    """

    kind = "grpc"

    def __init__(
        self, max_tokens: float = 10.0, token_ratio: float = 0.1, *, name: str | None = None
    ):
        super().__init__("retry_throttle" if name is None else name)
        self.max_tokens = check.positive("max_tokens", max_tokens)
        if self.max_tokens > 1000:
            raise ConfigError.single("max_tokens", max_tokens, "a number in (0, 1000]")
        self.token_ratio = check.positive("token_ratio", token_ratio)

    def _new_state(self, world: World) -> _ThrottleState:
        return _ThrottleState(world, self.prefix, self.max_tokens, self.token_ratio)

    def state(self, world: World) -> BudgetState:
        """The throttle's state in ``world``."""
        return self._state_for(world)


Budget = RetryBudget | RetryThrottle

BUDGETS: Mapping[str, type[RetryBudget] | type[RetryThrottle]] = {
    RetryBudget.kind: RetryBudget,
    RetryThrottle.kind: RetryThrottle,
}


def build_budget(spec: Mapping[str, Any]) -> Budget:
    """A budget from config: ``{"kind": "envoy" | "grpc", ...its parameters}``."""
    from sim.policies.registry import construct

    if not isinstance(spec, Mapping):
        raise ConfigError.single("budget", spec, "a table with a 'kind' (envoy, grpc)")
    params = dict(spec)
    kind = params.pop("kind", None)
    if kind not in BUDGETS:
        raise ConfigError.single("budget.kind", kind, f"one of {', '.join(BUDGETS)}")
    budget: Budget = construct(BUDGETS[kind], params, f"budget.{kind}")
    return budget
