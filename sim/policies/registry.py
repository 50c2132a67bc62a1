"""Policies by name, for configuration files: ``build_policy("retry", {"max_attempts": 4})``.

Parameters are the policy constructors' keyword arguments. Text is accepted where a config
file would write units: durations (parameters named ``*_s`` and ``seconds``) as ``"250ms"``,
the rate limiter's ``rate`` as ``"100/s"``; Retry's ``budget`` as a table with a ``kind``
(``envoy`` or ``grpc``); Fallback's ``alternate_policy`` as a list of policy tables. Unknown
kinds and parameters, missing required ones and bad values raise one :class:`ConfigError`
naming each problem (``retry.max_attempts: got -1, expected an integer >= 1``).

:data:`DEFAULT_ORDER` is the documented default composition, outermost first, following
resilience4j's Retry(CircuitBreaker(RateLimiter(TimeLimiter(Bulkhead(call))))) with a
deadline and a fallback around it all; :func:`in_default_order` sorts a list of policies
into it. A config may give any other order: order is itself an experimental variable.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from sim.call import Pipeline, Policy, Timeout
from sim.errors import ConfigError, Problem
from sim.policies.breaker import CircuitBreaker, ConsecutiveBreaker
from sim.policies.budget import build_budget
from sim.policies.bulkhead import Bulkhead, ThreadPoolBulkhead
from sim.policies.concurrency import AdaptiveConcurrency
from sim.policies.fallback import Fallback
from sim.policies.hedge import Hedge
from sim.policies.idempotency import Idempotency
from sim.policies.ratelimit import RateLimiter
from sim.policies.retry import Retry
from sim.policies.shedding import LoadShedder
from sim.policies.timeout import Deadline
from sim.units import parse_duration, parse_rate

__all__ = [
    "CLIENT_KINDS",
    "DEFAULT_ORDER",
    "POLICIES",
    "SERVER_KINDS",
    "build_pipeline",
    "build_policy",
    "in_default_order",
]

POLICIES: Mapping[str, type[Any]] = {
    cls.kind: cls
    for cls in (
        Timeout,
        Deadline,
        Retry,
        CircuitBreaker,
        ConsecutiveBreaker,
        Bulkhead,
        ThreadPoolBulkhead,
        RateLimiter,
        Hedge,
        Fallback,
        LoadShedder,
        AdaptiveConcurrency,
        Idempotency,
    )
}
# Kinds that go in a call's pipeline, and kinds that go on an endpoint (both: rate limiter,
# adaptive concurrency).
CLIENT_KINDS = tuple(k for k, cls in POLICIES.items() if hasattr(cls, "invoke"))
SERVER_KINDS = ("rate_limiter", "load_shedder", "adaptive_concurrency", "idempotency")

DEFAULT_ORDER = (
    "deadline",
    "fallback",
    "retry",
    "circuit_breaker",
    "consecutive_breaker",
    "rate_limiter",
    "adaptive_concurrency",
    "hedge",
    "timeout",
    "bulkhead",
    "thread_pool_bulkhead",
)

T = TypeVar("T")


def construct(cls: type[T], params: Mapping[str, Any], path: str) -> T:
    """``cls(**params)`` with config text converted and every problem named under ``path``."""
    if not isinstance(params, Mapping):
        raise ConfigError.single(path, params, "a table of parameters")
    signature = inspect.signature(cls)
    names = [name for name in signature.parameters if name != "self"]
    problems: list[Problem] = []
    for key, value in params.items():
        if key not in names:
            problems.append(Problem(f"{path}.{key}", value, f"one of {', '.join(names)}"))
    for name, parameter in signature.parameters.items():
        if parameter.default is inspect.Parameter.empty and name not in params:
            problems.append(Problem(f"{path}.{name}", None, "a value (it is required)"))
    if problems:
        raise ConfigError(problems)
    converted: dict[str, Any] = {}
    for key, value in params.items():
        try:
            converted[key] = _convert(key, value)
        except ConfigError as error:
            problems.extend(error.under(path).problems)
    if problems:
        raise ConfigError(problems)
    try:
        return cls(**converted)
    except ConfigError as error:
        raise error.under(path) from None


def _convert(key: str, value: Any) -> Any:
    if isinstance(value, str) and (key.endswith("_s") or key == "seconds"):
        return parse_duration(value, key)
    if key == "rate" and isinstance(value, str):
        return parse_rate(value, key)
    if key == "budget" and isinstance(value, Mapping):
        return build_budget(value)
    if key == "alternate_policy" and isinstance(value, Sequence) and not isinstance(value, str):
        return build_pipeline(value, key)
    return value


def build_policy(kind: str, params: Mapping[str, Any] | None = None) -> Any:
    """A new policy of ``kind`` with ``params`` (see the module docstring)."""
    cls = POLICIES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ConfigError.single("kind", kind, f"one of {', '.join(POLICIES)}")
    return construct(cls, {} if params is None else params, kind)


def build_pipeline(specs: Iterable[Mapping[str, Any]], path: str = "policies") -> Pipeline:
    """A pipeline from policy tables in order, outermost first: ``[{"kind": "retry"}, ...]``."""
    policies: list[Policy] = []
    problems: list[Problem] = []
    for index, spec in enumerate(specs):
        where = f"{path}[{index}]"
        if not isinstance(spec, Mapping) or "kind" not in spec:
            problems.append(Problem(where, spec, "a table with a 'kind'"))
            continue
        params = {k: v for k, v in spec.items() if k != "kind"}
        try:
            policy = build_policy(spec["kind"], params)
        except ConfigError as error:
            problems.extend(error.under(where).problems)
            continue
        if not hasattr(policy, "invoke"):
            problems.append(Problem(f"{where}.kind", spec["kind"], "a client-side policy"))
            continue
        policies.append(policy)
    if problems:
        raise ConfigError(problems)
    return Pipeline(policies)


def in_default_order(policies: Iterable[T]) -> list[T]:
    """``policies`` sorted into :data:`DEFAULT_ORDER` (kinds it does not list go innermost,
    keeping their relative order)."""
    rank = {kind: index for index, kind in enumerate(DEFAULT_ORDER)}
    return sorted(policies, key=lambda p: rank.get(getattr(p, "kind", ""), len(rank)))
