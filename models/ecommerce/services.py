"""The shop's services: user, product (catalog and inventory), order (entry, order record,
shipments), payment (and the external provider), notification, and the relay that
publishes order events to the bus.

Saga steps and their compensations are endpoints taking a
:class:`~sim.data.participant.StepRequest`; each does its database I/O first (keyed writes,
safe to repeat) and then applies its effect through a :class:`~sim.data.Participant`,
which makes the effect idempotent by step key when idempotency is on and refuses an action
whose compensation already ran.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from models.ecommerce.ledger import COMPLETED, FAILED, Archive, Ledger, Order
from models.ecommerce.paths import Paths
from models.ecommerce.relay import Relay
from sim.call import Caller, CallFailed, Outcome, Result
from sim.data import EffectLog, EventBus, EventStore, Participant, Query, ReadModel
from sim.data import Table as DataTable
from sim.data.database import is_conflict
from sim.data.eventstore import DEFAULT_READ_TIME
from sim.data.participant import StepRequest
from sim.data.saga import COMMITTED, COMPENSATING, RUNNING, SagaRecord
from sim.distributions import Constant, LogNormal, Uniform
from sim.policies import Idempotency
from sim.service import Context, ServerPolicy, Service, ServiceError

if TYPE_CHECKING:
    from sim.data import SagaOrchestrator
    from sim.node import Node
    from sim.world import World

__all__ = [
    "REMOTE_STEPS",
    "SHIP",
    "NotificationService",
    "OrderRowLog",
    "OrderService",
    "OrderStreamLog",
    "PaymentService",
    "ProductService",
    "UserService",
]

SAGA = "orders"
_UNIT = Uniform(0.0, 1.0)
IDEMPOTENCY_TTL_S = 86_400.0  # Stripe keeps idempotency keys for 24 hours
CREATED = "OrderCreated"
NOTIFIED = (CREATED, COMPLETED_EVENT := "OrderCompleted")


def step_key(order_id: int, step: str) -> tuple[str, int, str]:
    """The key a saga step carries (the orchestrator's format)."""
    return (SAGA, order_id, step)


def _time(median_s: float, p99_s: float) -> LogNormal:
    return LogNormal.from_median_p99(median_s, p99_s)


class Tally(ServerPolicy):
    """Counts the requests reaching an endpoint per window (``<field>`` in the series):
    retry amplification over time."""

    def __init__(self, world: World, field: str):
        self.series = world.metrics.series
        self.field = field

    def admit(self, context: Context) -> Result | None:
        if self.series is not None:
            self.series.add(self.field)
        return None


def _forget_rows(table: DataTable, *keys: Any) -> None:
    rows = table.database.rows
    for key in keys:
        rows.pop((table.namespace, key), None)


def _forget_steps(participant: Participant, order_id: int, step: str) -> None:
    key = step_key(order_id, step)
    participant.states.pop(key, None)
    participant.results.pop(key, None)
    participant.effects.counts.pop(key, None)
    participant.undos.counts.pop(key, None)


class UserService:
    """Customer profiles in the user database."""

    def __init__(self, world: World, node: Node, table: DataTable, paths: Paths):
        self.table = table
        self.paths = paths
        self.service = Service(world, "user", node, workers=16, queue_limit=200)
        self.service.endpoint("profile", _time(0.001, 0.010), handler=self._profile)

    def _profile(self, ctx: Context, customer: int) -> Generator[simpy.Event, Any, Any]:
        row = yield from self.table.get(ctx, ("customer", customer), policy=self.paths.read("user"))
        return row.value


class ProductService:
    """Catalog pages (from the CQRS view, or normalized reads of the product database),
    catalog updates, and inventory reservations (a saga participant)."""

    def __init__(
        self,
        world: World,
        node: Node,
        table: DataTable,
        ledger: Ledger,
        paths: Paths,
        archive: Archive,
        *,
        events: EventStore | None,
        view: ReadModel | None,
        idempotent: bool,
    ):
        self.table = table
        self.paths = paths
        self.events = events
        self.view = view
        self.service = service = Service(world, "product", node, workers=32, queue_limit=200)
        service.endpoint("browse", _time(0.002, 0.020), handler=self._browse)
        service.endpoint("update", _time(0.001, 0.010), handler=self._update)
        service.endpoint("reserve", _time(0.0005, 0.005), handler=self._reserve)
        service.endpoint("release", _time(0.0005, 0.005), handler=self._release)
        self.inventory = Participant(
            service, "inventory", ledger.reserve, ledger.release, idempotent=idempotent
        )
        self._get = table.database.address("get")
        self.degraded = world.metrics.counter("catalog.degraded")
        archive.register(self._forget)

    def _browse(self, ctx: Context, product: int) -> Generator[simpy.Event, Any, Any]:
        policy = self.paths.browse_read
        if self.view is not None:
            results = [
                (yield from ctx.call_result(self.view.address, Query(product), policy=policy))
            ]
        else:  # normalized: the product document, then its stock
            namespace = self.table.namespace
            results = []
            for key in (("product", product), ("stock", product)):
                result = yield from ctx.call_result(self._get, (namespace, key), policy=policy)
                results.append(result)
                if not result.ok:
                    break
        if any(not r.ok for r in results):
            raise ServiceError("catalog_unavailable")
        if any(r.outcome is Outcome.DEGRADED for r in results):
            ctx.degraded = True  # a page from the stale cache
            self.degraded.value += 1
        return results[0].value

    def _update(self, ctx: Context, product: int) -> Generator[simpy.Event, Any, None]:
        write = self.paths.write("product")
        if self.events is not None:
            yield from self.events.append(ctx, f"product-{product}", [("price", product)],
                                          policy=write)  # fmt: skip
        else:
            yield from self.table.put(ctx, ("product", product), ctx.now, policy=write)

    def _reserve(self, ctx: Context, request: StepRequest) -> Generator[simpy.Event, Any, Any]:
        order: Order = request.data
        yield from self.table.put(ctx, ("reservation", order.id), order.qty,
                                  policy=self.paths.write("product"))  # fmt: skip
        return self.inventory.act(request.key, order)

    def _release(self, ctx: Context, request: StepRequest) -> Generator[simpy.Event, Any, None]:
        order: Order = request.data
        yield from self.table.put(ctx, ("reservation", order.id), None,
                                  policy=self.paths.write("product"))  # fmt: skip
        self.inventory.compensate(request.key, order)

    def _forget(self, order_id: int) -> None:
        _forget_rows(self.table, ("reservation", order_id))
        _forget_steps(self.inventory, order_id, "reserve")


class PaymentService:
    """Charges and refunds through the external payment provider (breaker, retries and a
    timeout on those calls; an idempotency key per charge), recorded in the payment
    database. The provider is a participant: its ledger is the money."""

    def __init__(
        self,
        world: World,
        node: Node,
        provider_node: Node,
        table: DataTable,
        ledger: Ledger,
        paths: Paths,
        archive: Archive,
        *,
        idempotent: bool,
        provider_latency: Any,
        decline_probability: float,
    ):
        self.table = table
        self.paths = paths
        self.ledger = ledger
        self.decline_probability = decline_probability
        self._chance = world.sampler("provider.declines", _UNIT)
        policies: list[ServerPolicy] = [Tally(world, "payment.attempts")]
        if idempotent:
            policies.append(Idempotency(IDEMPOTENCY_TTL_S, name="payment.charge.idempotency"))
        self.service = service = Service(world, "payment", node, workers=16, queue_limit=200)
        service.endpoint("charge", Constant(0.001), handler=self._charge, policies=policies)
        service.endpoint("refund", Constant(0.001), handler=self._refund)
        provider = Service(world, "provider", provider_node, workers=500)
        self.provider = Participant(
            provider, "charge", self._provider_charge, ledger.refund,
            service_time=provider_latency, idempotent=idempotent,
        )  # fmt: skip
        provider.endpoints["charge"].add_policy(Tally(world, "provider.attempts"))
        archive.register(self._forget)

    def _provider_charge(self, order: Order) -> str:
        if self.decline_probability and self._chance() < self.decline_probability:
            raise ServiceError("declined")
        self.ledger.charge(order)
        return "charged"

    def _charge(self, ctx: Context, request: StepRequest) -> Generator[simpy.Event, Any, str]:
        order: Order = request.data
        yield from ctx.call(self.provider.action_address, request, policy=self.paths.provider,
                            key=request.key)  # fmt: skip
        yield from self.table.put(ctx, ("payment", order.id), "charged",
                                  policy=self.paths.write("payment"))  # fmt: skip
        return "charged"

    def _refund(self, ctx: Context, request: StepRequest) -> Generator[simpy.Event, Any, None]:
        order: Order = request.data
        yield from ctx.call(self.provider.compensation_address, request,
                            policy=self.paths.provider, key=(request.key, "undo"))  # fmt: skip
        yield from self.table.put(ctx, ("payment", order.id), "refunded",
                                  policy=self.paths.write("payment"))  # fmt: skip

    def _forget(self, order_id: int) -> None:
        _forget_rows(self.table, ("payment", order_id))
        _forget_steps(self.provider, order_id, "charge")


# (step, action, compensation) of the order saga after its creation: the two steps other
# services perform; shipping is the order service's own work, a local step (see build.py)
REMOTE_STEPS = (
    ("reserve", "product.reserve", "product.release"),
    ("charge", "payment.charge", "payment.refund"),
)
SHIP = "ship"
# the events a saga transition records, by step: done, failed, undone
STEP_EVENTS = {
    "reserve": ("InventoryReserved", "ReservationFailed", "InventoryReleased"),
    "charge": ("PaymentCharged", "PaymentFailed", "PaymentRefunded"),
    SHIP: ("ShipmentCreated", "ShipmentFailed", "ShipmentCancelled"),
}
STEP_NAMES = (*(name for name, _, _ in REMOTE_STEPS), SHIP)
CANCELLED_EVENT = "OrderCancelled"


def transition_events(record: SagaRecord) -> tuple[str, ...]:
    """The order events a saga write records: what the transition it saves did."""
    if record.state == RUNNING:
        return (CREATED,) if record.step == 0 else (STEP_EVENTS[STEP_NAMES[record.step - 1]][0],)
    if record.state == COMMITTED:
        return (STEP_EVENTS[STEP_NAMES[-1]][0], COMPLETED_EVENT)
    if record.compensated:
        last: tuple[str, ...] = (STEP_EVENTS[STEP_NAMES[record.compensated[-1]]][2],)
    else:
        assert record.failed is not None
        last = (STEP_EVENTS[STEP_NAMES[record.failed]][1],)
    return last if record.state == COMPENSATING else (*last, CANCELLED_EVENT)


class OrderStreamLog:
    """The saga log with event sourcing: the order's event stream ``order-<id>`` *is* the
    saga's record. Each saga transition is one append (compare-and-set on the stream's
    version) of the events it stands for; each event carries the saga's record after it,
    so the stream folds to its last event's record. Recovery reads the ``order-`` category
    (an endpoint the order service adds to its event store, as EventStoreDB's category
    projection ``$ce-order`` serves)."""

    def __init__(self, events: EventStore, timeout_s: float):
        self.events = events
        self.timeout_s = timeout_s
        events.service.endpoint("sagas", DEFAULT_READ_TIME, handler=self._sagas)

    def write(
        self, caller: Caller, record: SagaRecord, version: int
    ) -> Generator[simpy.Event, Any, int]:
        events = [(kind, record.id, record) for kind in transition_events(record)]
        appended = yield from self.events.append(
            caller, f"order-{record.id}", events, expected_version=version,
            timeout_s=self.timeout_s,
        )  # fmt: skip
        return appended.version

    def read(self, caller: Caller, saga_id: Any) -> Generator[simpy.Event, Any, tuple[Any, int]]:
        stream = yield from self.events.read(caller, f"order-{saga_id}", timeout_s=self.timeout_s)
        return (stream[-1].data[2], len(stream)) if stream else (None, 0)

    def scan(self, caller: Caller) -> Generator[simpy.Event, Any, list[tuple[SagaRecord, int]]]:
        found: list[tuple[SagaRecord, int]] = yield from caller.call(
            f"{self.events.name}.sagas", None, timeout_s=self.timeout_s
        )
        return found

    def _sagas(self, _: Context, __: Any) -> list[tuple[SagaRecord, int]]:
        return [
            (stream[-1].data[2], len(stream))
            for name, stream in self.events.streams.items()
            if stream and name.startswith("order-") and stream[-1].data[2] is not None
        ]


class OrderRowLog:
    """The saga log without event sourcing: the order's row ``("order", id)`` holds the
    saga's record, one compare-and-set write per transition; the events OrderCreated and
    OrderCompleted are published from memory after the write (a dual write: lost if the
    order service crashes before the relay has sent them)."""

    def __init__(self, table: DataTable, relay: Relay, timeout_s: float):
        self.table = table
        self.relay = relay
        self.timeout_s = timeout_s

    def write(
        self, caller: Caller, record: SagaRecord, version: int
    ) -> Generator[simpy.Event, Any, int]:
        try:
            saved: int = yield from self.table.put(
                caller, ("order", record.id), record, expected_version=version,
                timeout_s=self.timeout_s,
            )  # fmt: skip
        except CallFailed as failure:  # a retry of a write that landed, or another writer
            if not is_conflict(failure):
                raise
            found, saved = yield from self.read(caller, record.id)
            if found != record:
                raise
        for kind in transition_events(record):
            if kind in NOTIFIED:
                self.relay.publish(kind, record.id)
        return saved

    def read(self, caller: Caller, saga_id: Any) -> Generator[simpy.Event, Any, tuple[Any, int]]:
        row = yield from self.table.get(caller, ("order", saga_id), timeout_s=self.timeout_s)
        return row.value, row.version

    def scan(self, caller: Caller) -> Generator[simpy.Event, Any, list[tuple[SagaRecord, int]]]:
        rows = yield from self.table.scan(caller, ("order",), timeout_s=self.timeout_s)
        return [(row.value, row.version) for _, row in rows if isinstance(row.value, SagaRecord)]


class OrderService:
    """The order entry point, the order record (event-sourced or a row), shipments (a
    participant the order service calls in-process), and the saga's outcome bookkeeping.

    With the saga, placing an order is one handler: look the customer up, then start the
    saga in-process (:meth:`SagaOrchestrator.begin`), whose first write (OrderCreated) is
    the order's creation; the saga's log is :meth:`saga_log`. Without it, the handler runs
    the chain itself: record OrderCreated, reserve, charge, ship (record ShipmentCreated
    and OrderCompleted)."""

    def __init__(
        self,
        world: World,
        node: Node,
        table: DataTable,
        ledger: Ledger,
        paths: Paths,
        archive: Archive,
        relay: Relay,
        *,
        events: EventStore | None,
        idempotent: bool,
    ):
        self.world = world
        self.table = table
        self.ledger = ledger
        self.paths = paths
        self.archive = archive
        self.relay = relay
        self.events = events
        self.idempotent = idempotent
        self.saga: SagaOrchestrator | None = None
        self.service = service = Service(world, "order", node, workers=64, queue_limit=200)
        service.endpoint("place", _time(0.001, 0.010), handler=self._place)
        self.shipping = Participant(
            service, "shipping", ledger.ship, ledger.unship, idempotent=idempotent
        )
        if events is not None:
            events.subscribe(self._appended)
        archive.register(self._forget)

    def saga_log(self, timeout_s: float) -> OrderStreamLog | OrderRowLog:
        """Where the saga keeps its progress: the order's event stream, or its row (each
        call with a ``timeout_s`` of its own, as the orchestrator's default log has,
        whatever the timeouts switch: the saga retries its writes until they land)."""
        if self.events is not None:
            return OrderStreamLog(self.events, timeout_s)
        return OrderRowLog(self.table, self.relay, timeout_s)

    def ship(self, request: StepRequest) -> Any:
        """The saga's last step, local: a shipment for the order (made durable by the saga
        write that records ShipmentCreated and OrderCompleted)."""
        return self.shipping.act(request.key, request.data)

    def unship(self, request: StepRequest) -> None:
        self.shipping.compensate(request.key, request.data)

    # -- the entry point ------------------------------------------------------------------

    def _place(self, ctx: Context, order: Order) -> Generator[simpy.Event, Any, Any]:
        if not isinstance(order, Order):
            raise ServiceError("bad_request")
        yield from ctx.call("user.profile", order.customer, policy=self.paths.user)
        if self.saga is not None:  # accepted once the saga is saved; it runs on its own
            reply = yield from self.saga.begin(order.id, order)
            return reply
        # no saga: the steps one after the other, in this request; nothing is undone
        self.ledger.place(order)
        try:
            yield from self._record(ctx, order, (CREATED,), 0)
        except CallFailed as failure:
            self._ended(order.id, FAILED)
            raise ServiceError("open_failed") from failure
        for name, action, _ in REMOTE_STEPS:
            key = step_key(order.id, name)
            try:
                yield from ctx.call(action, StepRequest(key, order), policy=self.paths.steps[name],
                                    key=(key, "do"))  # fmt: skip
            except CallFailed as failure:
                self._ended(order.id, FAILED)
                raise ServiceError(f"{name}_failed") from failure
        try:
            yield from self._record(ctx, order, (STEP_EVENTS[SHIP][0], COMPLETED_EVENT), 2)
        except CallFailed as failure:
            self._ended(order.id, FAILED)
            raise ServiceError("ship_failed") from failure
        self.ship(StepRequest(step_key(order.id, SHIP), order))
        self._ended(order.id, COMPLETED)
        return COMPLETED

    def saga_began(self, record: SagaRecord) -> None:
        """The orchestrator's hook: the order entered the system (its creation is saved)."""
        self.ledger.place(record.data)

    def saga_ended(self, saga_id: Any, outcome: str) -> None:
        """The saga tracker's hook: the order's outcome."""
        self._ended(saga_id, COMPLETED if outcome == "committed" else "compensated")

    def _ended(self, order_id: int, outcome: str) -> None:
        self.ledger.end(order_id, outcome)
        self.archive.ended(order_id)

    # -- the order record without the saga ------------------------------------------------

    def _record(
        self, ctx: Context, order: Order, kinds: tuple[str, ...], code: int
    ) -> Generator[simpy.Event, Any, None]:
        write = self.paths.write("order")
        if self.events is not None:  # the relay publishes from the store's subscription
            append_id = order.id * 4 + code if self.idempotent else None
            events = [(kind, order.id, None) for kind in kinds]
            yield from self.events.append(ctx, f"order-{order.id}", events, append_id=append_id,
                                          policy=write)  # fmt: skip
            return
        yield from self.table.put(ctx, ("order", order.id), kinds[-1], policy=write)
        for kind in kinds:  # a dual write: the row, then the events
            if kind in NOTIFIED:
                self.relay.publish(kind, order.id)

    def _appended(self, event: Any) -> None:
        kind, order_id, _ = event.data
        if kind in NOTIFIED:
            self.relay.publish(kind, order_id)

    def _forget(self, order_id: int) -> None:
        _forget_rows(self.table, ("order", order_id))
        _forget_steps(self.shipping, order_id, SHIP)
        if self.events is not None:
            self.events.forget(f"order-{order_id}")
        if self.saga is not None:
            self.saga.tracker.outcomes.pop(order_id, None)
        self.ledger.forget(order_id)


class NotificationService:
    """Consumes OrderCreated and OrderCompleted from the bus; each notification is stored
    in the notification database (Redis-like) and sent once (duplicates counted in
    ``effects.notification.sent.duplicates``)."""

    def __init__(
        self,
        world: World,
        node: Node,
        table: DataTable,
        bus: EventBus,
        paths: Paths,
        archive: Archive,
        *,
        idempotent: bool,
        patient: bool,
    ):
        self.world = world
        self.table = table
        self.paths = paths
        self.service = Service(world, "notification", node, workers=8, queue_limit=200)
        policy = Idempotency(IDEMPOTENCY_TTL_S, enabled=idempotent, name="notification.idempotency")
        self.service.endpoint("on_event", _time(0.001, 0.010), handler=self._on_event,
                              policies=[policy])  # fmt: skip
        # patient (degradation on): redeliver for a long time rather than dead-letter
        self.subscription = bus.subscribe(
            "orders", "notification", "notification.on_event", ack_timeout_s=10.0,
            max_deliveries=1000 if patient else 3, redelivery_delay_s=10.0 if patient else 1.0,
            concurrency=8,
        )  # fmt: skip
        self.sent = EffectLog(world, "notification.sent")
        self.delay = world.metrics.histogram("notifications.delay")
        self._series = world.metrics.series
        archive.register(self._forget)

    def _on_event(self, ctx: Context, delivery: Any) -> Generator[simpy.Event, Any, None]:
        kind, order_id, created_at = delivery.message.payload
        yield from self.table.put(ctx, ("sent", order_id, kind), True,
                                  policy=self.paths.write("notification"))  # fmt: skip
        if self.sent.record((order_id, kind)):
            self.delay.record(self.world.env.now - created_at)
            if self._series is not None:
                self._series.add("notifications.sent")

    def _forget(self, order_id: int) -> None:
        for kind in NOTIFIED:
            _forget_rows(self.table, ("sent", order_id, kind))
            self.sent.counts.pop((order_id, kind), None)
