"""A choreographed saga: participants react to each other's events over the bus.

The same saga as :class:`~sim.data.saga.SagaOrchestrator` runs, without an orchestrator:

- the initiator (``<name>.start`` on the ``origin`` node) publishes ``<name>.0.do``;
- the participant of step ``i`` consumes ``<name>.<i>.do``, acts, and publishes
  ``<name>.<i+1>.do`` (after the last step: a ``committed`` outcome); if its action refuses
  (raises ServiceError) it publishes ``<name>.<i-1>.undo`` (for the first step: a
  ``compensated`` outcome);
- the participant of step ``i`` consumes ``<name>.<i>.undo``, compensates, and passes the
  compensation on to step ``i-1`` (after the first step: a ``compensated`` outcome);
- the initiator consumes ``<name>.outcome`` and records how the saga ended.

A handler acknowledges its delivery only after its next event is published (a publisher
in ``fail`` mode: the broker acknowledged it). So a step is redelivered until both its local
effect and its announcement happened: at-least-once end to end, and participants must be
idempotent (the step key is ``(saga name, saga id, step name)``, as in the orchestrated
saga). A message dead-lettered after ``max_deliveries`` leaves its saga unfinished: stuck,
with no orchestrator to notice; only the initiator's timer does.

Timeouts do not make steps uncertain here: a delivery that timed out is redelivered until
acknowledged, and the participant's inbox answers copies. Steps without compensation
(``compensable=False``) pass an undo straight on.

Measured with the same :class:`~sim.data.saga.SagaTracker` as the orchestrated saga
(``saga.<name>.*``), so the two can be compared.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from sim.call import CallFailed, Outcome
from sim.data.saga import COMMITTED, COMPENSATED, SagaTracker
from sim.distributions import Constant
from sim.errors import ConfigError
from sim.service import Context, Service, ServiceError

if TYPE_CHECKING:
    import simpy

    from sim.data.bus import Delivery, EventBus
    from sim.data.participant import Participant
    from sim.data.publisher import Publisher
    from sim.node import Node
    from sim.world import World

__all__ = ["ChoreographedSaga", "ChoreographyStep", "SagaEvent"]

START_ATTEMPTS = 5  # a start whose publish timed out is re-sent (same id: no duplicate)


@dataclass(frozen=True)
class ChoreographyStep:
    """A step: its participant, whether it can be undone, and its data from the saga's."""

    participant: Participant
    compensable: bool = True
    payload: Callable[[Any], Any] | None = None


class SagaEvent(NamedTuple):
    """The body of every event of a choreographed saga."""

    saga_id: Any
    data: Any
    outcome: str | None = None


class ChoreographedSaga:
    """A saga run by events between participants.

    Args:
        world: the run.
        name: the saga's name (no dots): topics ``<name>.*``, metrics ``saga.<name>.*``.
        bus: the event bus.
        origin: the initiator's node; ``<name>.start`` runs there.
        steps: the steps in order.
        ack_timeout_s, max_deliveries, redelivery_delay_s, concurrency: of every
            subscription (see :meth:`~sim.data.bus.EventBus.subscribe`).
        publish_timeout_s: timeout of each publish.
        stuck_after_s: see :class:`~sim.data.saga.SagaTracker`.
    """

    def __init__(
        self,
        world: World,
        name: str,
        bus: EventBus,
        origin: Node,
        steps: Sequence[ChoreographyStep],
        *,
        ack_timeout_s: float = 5.0,
        max_deliveries: int = 10,
        redelivery_delay_s: float = 0.5,
        concurrency: int = 16,
        publish_timeout_s: float = 1.0,
        stuck_after_s: float = 300.0,
    ):
        if not isinstance(name, str) or not name or "." in name:
            raise ConfigError.single("saga.name", name, "a non-empty name without dots")
        self.steps = tuple(steps)
        if not self.steps:
            raise ConfigError.single(f"{name}.steps", steps, "one or more ChoreographyStep")
        for index, step in enumerate(self.steps):
            if not isinstance(step, ChoreographyStep):
                raise ConfigError.single(f"{name}.steps[{index}]", step, "a ChoreographyStep")
        self.world = world
        self.name = name
        self.bus = bus
        self.tracker = SagaTracker(world, name, stuck_after_s)
        self._publish_timeout_s = publish_timeout_s
        self._publishers: dict[str, Publisher] = {}
        options: dict[str, Any] = {
            "ack_timeout_s": ack_timeout_s,
            "max_deliveries": max_deliveries,
            "redelivery_delay_s": redelivery_delay_s,
            "concurrency": concurrency,
        }
        self._starting: set[Any] = set()  # starts in progress: they die in a crash
        origin.on_crash(self._on_origin_crash)
        self.origin = Service(world, name, origin, workers=concurrency)
        self.origin.endpoint("start", Constant(0.0), handler=self._start)
        self.origin.endpoint("outcome", Constant(0.0), handler=self._outcome)
        bus.subscribe(self.topic("outcome"), name, f"{name}.outcome", **options)
        for index, step in enumerate(self.steps):
            service = step.participant.service
            service_time = step.participant.service_time
            for kind, handler in (("do", self._do), ("undo", self._undo)):
                endpoint = service.endpoint(
                    f"{name}_{index}_{kind}", service_time,
                    handler=_bind(handler, index),
                )  # fmt: skip
                bus.subscribe(self.topic(f"{index}.{kind}"), name, endpoint, **options)

    def __repr__(self) -> str:
        return f"ChoreographedSaga({self.name!r}, {len(self.steps)} steps)"

    @property
    def address(self) -> str:
        """The start endpoint."""
        return f"{self.name}.start"

    def topic(self, suffix: str) -> str:
        """The topic ``<name>.<suffix>``."""
        return f"{self.name}.{suffix}"

    def _publisher(self, node: Node) -> Publisher:
        publisher = self._publishers.get(node.name)
        if publisher is None:
            publisher = self._publishers[node.name] = self.bus.publisher(
                node, timeout_s=self._publish_timeout_s
            )
        return publisher

    def _key(self, saga_id: Any, index: int) -> tuple[str, Any, int]:
        return (self.name, saga_id, index)

    def _data(self, index: int, data: Any) -> Any:
        payload = self.steps[index].payload
        return payload(data) if payload is not None else data

    # -- handlers ---------------------------------------------------------------------------

    def _start(self, ctx: Context, data: Any) -> Generator[simpy.Event, Any, str]:
        saga_id = ctx.key if ctx.key is not None else self.world.new_id()
        self.tracker.begin(saga_id)
        self._starting.add(saga_id)
        try:
            outcome = yield from self._send_start(ctx, saga_id, data)
        finally:
            self._starting.discard(saga_id)
        return outcome

    def _send_start(
        self, ctx: Context, saga_id: Any, data: Any
    ) -> Generator[simpy.Event, Any, str]:
        publisher = self._publisher(ctx.node)
        message = publisher.message(self.topic("0.do"), SagaEvent(saga_id, data), saga_id)
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                yield from publisher.publish_message(message)
                return "accepted"
            except CallFailed as failure:
                if failure.outcome is not Outcome.TIMEOUT:  # the broker never had it
                    self.tracker.forget(saga_id)
                    raise
                if attempt == START_ATTEMPTS:
                    raise  # it may have been published: the saga stays tracked
        raise AssertionError("unreachable")

    def _on_origin_crash(self) -> None:
        # Their callers got no answer; if a first message did leave, the saga's outcome
        # still arrives and is counted then (SagaTracker.end).
        for saga_id in self._starting:
            self.tracker.forget(saga_id)
        self._starting.clear()

    def _do(
        self, index: int, ctx: Context, delivery: Delivery
    ) -> Generator[simpy.Event, Any, None]:
        event: SagaEvent = delivery.message.payload
        participant = self.steps[index].participant
        try:
            participant.act(self._key(event.saga_id, index), self._data(index, event.data))
        except ServiceError:
            yield from self._undo_before(ctx, index, event)
            return
        if index + 1 < len(self.steps):
            yield from self._announce(ctx, f"{index + 1}.do", event)
        else:
            yield from self._announce(ctx, "outcome", event._replace(outcome=COMMITTED))

    def _undo(
        self, index: int, ctx: Context, delivery: Delivery
    ) -> Generator[simpy.Event, Any, None]:
        event: SagaEvent = delivery.message.payload
        step = self.steps[index]
        if step.compensable:
            step.participant.compensate(
                self._key(event.saga_id, index), self._data(index, event.data)
            )
        yield from self._undo_before(ctx, index, event)

    def _undo_before(
        self, ctx: Context, index: int, event: SagaEvent
    ) -> Generator[simpy.Event, Any, None]:
        if index > 0:
            yield from self._announce(ctx, f"{index - 1}.undo", event)
        else:
            yield from self._announce(ctx, "outcome", event._replace(outcome=COMPENSATED))

    def _announce(
        self, ctx: Context, suffix: str, event: SagaEvent
    ) -> Generator[simpy.Event, Any, None]:
        yield from self._publisher(ctx.node).publish(self.topic(suffix), event, key=event.saga_id)

    def _outcome(self, _: Context, delivery: Delivery) -> None:
        event: SagaEvent = delivery.message.payload
        assert event.outcome is not None
        self.tracker.end(event.saga_id, event.outcome)


def _bind(
    handler: Callable[[int, Context, Delivery], Generator[simpy.Event, Any, None]], index: int
) -> Callable[[Context, Delivery], Generator[simpy.Event, Any, None]]:
    def bound(ctx: Context, delivery: Delivery) -> Generator[simpy.Event, Any, None]:
        return (yield from handler(index, ctx, delivery))

    return bound
