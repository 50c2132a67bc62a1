"""A saga participant: one local action and its compensation, idempotent by saga step key.

Sagas (orchestrated or choreographed) deliver each step at least once: a request duplicated
by the network, a step re-sent by an orchestrator that crashed before it saved the step's
result, a redelivered event. A :class:`Participant` keeps, per step key, what it did, so
that with ``idempotent=True``:

- a repeated action answers the first result and does nothing again;
- a repeated compensation does nothing again;
- a compensation that arrives before (or instead of) its action leaves a tombstone, so a
  late action is refused (reason ``"cancelled"``) instead of reserving stock that nobody
  will ever release (the compensation must commute with its action);
- an action that raises :class:`~sim.service.ServiceError` (out of stock, card declined)
  did nothing, and answers ``error``.

With ``idempotent=False`` every copy acts: repeated actions repeat the effect and repeated
compensations undo again; the side-effect ledgers count the duplicates in
``anomaly.duplicate_side_effects``. The participant's state is durable (it stands for rows in
the participant's own database): a crash loses requests in flight, never recorded effects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from sim.data.inbox import EffectLog
from sim.distributions import Constant, Distribution
from sim.errors import ConfigError
from sim.service import Context, ServiceError

if TYPE_CHECKING:
    from sim.service import Service

__all__ = ["Participant", "StepRequest"]

DONE = "done"
COMPENSATED = "compensated"
CANCELLED = "cancelled"  # compensated before any action: a late action is refused
DEFAULT_SERVICE_TIME = Constant(0.001)


class StepRequest(NamedTuple):
    """A saga step as a participant receives it: the step's key (saga, saga id, step name)
    and the step's data."""

    key: Any
    data: Any


class Participant:
    """An action and its compensation, exposed as endpoints of ``service``.

    Args:
        service: where it runs.
        name: the action's endpoint; the compensation is ``<name>_undo``.
        do: ``do(data) -> result``, the effect; raise ServiceError to refuse (no effect).
        undo: ``undo(data)``, reverses the effect.
        service_time: of each endpoint.
        idempotent: deduplicate by step key (see the module docs).

    Attributes:
        effects, undos: ledgers of actions and compensations performed, by step key.
        states: the participant's record per step key.
    """

    def __init__(
        self,
        service: Service,
        name: str,
        do: Callable[[Any], Any],
        undo: Callable[[Any], None],
        *,
        service_time: Distribution = DEFAULT_SERVICE_TIME,
        idempotent: bool = True,
    ):
        for label, fn in (("do", do), ("undo", undo)):
            if not callable(fn):
                raise ConfigError.single(f"{service.name}.{name}.{label}", fn, "a function")
        self.service = service
        self.name = name
        self.do = do
        self.undo = undo
        self.idempotent = bool(idempotent)
        self.service_time = service_time
        self.states: dict[Any, str] = {}
        self.results: dict[Any, Any] = {}
        world = service.world
        label = f"{service.name}.{name}"
        self.effects = EffectLog(world, label)
        self.undos = EffectLog(world, f"{label}_undo")
        self.refused = world.metrics.counter(f"effects.{label}.refused")
        service.endpoint(name, service_time, handler=self._action_endpoint)
        service.endpoint(f"{name}_undo", service_time, handler=self._compensation_endpoint)

    def __repr__(self) -> str:
        return f"Participant({self.service.name}.{self.name})"

    @property
    def action_address(self) -> str:
        """The action's endpoint."""
        return f"{self.service.name}.{self.name}"

    @property
    def compensation_address(self) -> str:
        """The compensation's endpoint."""
        return f"{self.service.name}.{self.name}_undo"

    def act(self, key: Any, data: Any) -> Any:
        """Perform the action for step ``key`` (or answer its first result)."""
        state = self.states.get(key)
        if self.idempotent:
            if state == DONE:
                return self.results[key]
            if state is not None:
                self.refused.value += 1
                raise ServiceError(CANCELLED)
        try:
            result = self.do(data)
        except ServiceError:
            self.refused.value += 1
            raise
        self.effects.record(key)
        if state is None or not self.idempotent:
            self.states[key] = DONE
            self.results[key] = result
        return result

    def compensate(self, key: Any, data: Any) -> None:
        """Compensate step ``key`` (nothing to do if it never acted or already did)."""
        state = self.states.get(key)
        if self.idempotent and state != DONE:
            if state is None:
                self.states[key] = CANCELLED
            return
        self.undo(data)
        self.undos.record(key)
        self.states[key] = COMPENSATED

    def _action_endpoint(self, _: Context, request: StepRequest) -> Any:
        return self.act(request.key, request.data)

    def _compensation_endpoint(self, _: Context, request: StepRequest) -> None:
        self.compensate(request.key, request.data)
