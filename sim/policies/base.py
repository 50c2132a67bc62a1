"""What every policy shares: a name for its metrics, state kept per world, rejections, and
the validators of policy parameters.

State and worlds. A policy object is its configuration plus the state a real library keeps
per client instance (a breaker's state, a limiter's tokens): every call through the same
object in one world shares that state, as calls through one resilience4j instance do. The
state lives on the world, created when the policy first sees that world, so the same
object used in another world (another replication, a sweep's next point) starts afresh
there and two worlds never share mutable state. Use one object per client instance and
upstream: the same object in two pipelines of one world is one shared instance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from sim import check
from sim.call import Outcome, Result
from sim.errors import ConfigError

if TYPE_CHECKING:
    from sim.world import World

__all__ = [
    "FAILURES",
    "FAILURE_NAMES",
    "REJECTION_REASONS",
    "PolicyBase",
    "choice",
    "optional_positive",
    "outcome_set",
    "percent",
    "rejection",
]

# Why a policy turned a call away; the ``reason`` of a ``rejected`` result.
BREAKER_OPEN = "breaker_open"
RATE_LIMITED = "rate_limited"
BULKHEAD_FULL = "bulkhead_full"
SHED = "shed"
CONCURRENCY_LIMIT = "concurrency_limit"
REJECTION_REASONS = (
    BREAKER_OPEN,
    RATE_LIMITED,
    BULKHEAD_FULL,
    SHED,
    CONCURRENCY_LIMIT,
)

# Every outcome that is not a success: what breakers count, retries retry and fallbacks
# cover unless configured otherwise (resilience4j records and retries every exception).
FAILURES = frozenset({Outcome.TIMEOUT, Outcome.REFUSED, Outcome.REJECTED, Outcome.ERROR})

FAILURE_NAMES = tuple(sorted(o.value for o in FAILURES))

_REJECTIONS = {reason: Result(Outcome.REJECTED, reason=reason) for reason in REJECTION_REASONS}


def rejection(reason: str) -> Result:
    """The (shared, never mutated) result of a call rejected for ``reason``."""
    found = _REJECTIONS.get(reason)
    return found if found is not None else Result(Outcome.REJECTED, reason=reason)


S = TypeVar("S")


class PolicyBase(Generic[S]):
    """A named policy with state per world (see the module docstring).

    Subclasses set ``kind`` (the registry name) and implement ``_new_state(world)``; hot
    code reads its state with ``self._state_for(world)``.

    Attributes:
        name: names the metrics, ``policy.<name>.*``, and the random streams. Policies of
            one world with the same name add up into the same metrics.
    """

    kind: ClassVar[str] = "policy"

    def __init__(self, name: str | None = None) -> None:
        chosen = self.kind if name is None else name
        if (
            not isinstance(chosen, str)
            or not chosen
            or any(not part or any(c.isspace() for c in part) for part in chosen.split("."))
        ):
            raise ConfigError.single("name", name, "a dotted name without spaces")
        self.name = chosen
        self.prefix = f"policy.{chosen}"
        self._world: World | None = None
        # the state in ``_world`` (the most recent world seen); unset until then
        self._state: S = None  # type: ignore[assignment]

    def _state_for(self, world: World) -> S:
        """This policy's state in ``world`` (created on first use there)."""
        if world is self._world:
            return self._state
        store = world.pipelines  # the world's per-run cache: the state dies with the run
        key = (_STATE_KEY, self)
        state: S | None = store.get(key)
        if state is None:
            state = store[key] = self._new_state(world)
        self._world = world
        self._state = state
        return state

    def _new_state(self, world: World) -> S:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


_STATE_KEY = "policy-state"


# -- validators ----------------------------------------------------------------------------


def percent(name: str, value: float) -> float:
    """``value`` if it is a percentage in (0, 100]."""
    if not 0.0 < check.finite(name, value) <= 100.0:
        raise ConfigError.single(name, value, "a percentage in (0, 100]")
    return float(value)


def choice(name: str, value: object, valid: Iterable[str]) -> str:
    """``value`` if it is one of ``valid`` (the error lists them)."""
    names = list(valid)
    if not isinstance(value, str) or value not in names:
        raise ConfigError.single(name, value, f"one of {', '.join(names)}")
    return value


def outcome_set(name: str, values: Iterable[str | Outcome]) -> frozenset[Outcome]:
    """Outcomes named by ``values`` (``"timeout"`` or ``Outcome.TIMEOUT``)."""
    if isinstance(values, str | Outcome):
        values = (values,)
    valid = [o.value for o in Outcome]
    found: set[Outcome] = set()
    for value in values:
        raw = value.value if isinstance(value, Outcome) else value
        found.add(Outcome(choice(name, raw, valid)))
    return frozenset(found)


def optional_positive(name: str, value: float | None) -> float:
    """``value`` if > 0, or infinity for None (no bound)."""
    return math.inf if value is None else check.positive(name, value)
