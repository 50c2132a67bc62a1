"""An event bus: a broker service with topics, consumer groups and at-least-once delivery.

Publishers send messages to the broker (a service on its node, with workers and a publish
service time). Each subscription (a consumer *group* on a topic) receives every message
published to the topic after it subscribed; inside a group each message goes to one of the
group's consumer endpoints. The broker pushes deliveries as ordinary calls from its node, so
they cross real links: they can be delayed, lost and duplicated.

Delivery is at least once:

- a delivery is acknowledged by a successful reply of the consumer endpoint; no reply within
  ``ack_timeout_s`` (the broker's clock), or a failed one, means the message is delivered
  again (after ``redelivery_delay_s``); a late acknowledgement is ignored, so the consumer
  may process the message twice, as with a visibility timeout that expires;
- after ``max_deliveries`` failed deliveries the message goes to the subscription's
  dead-letter queue;
- ``concurrency`` bounds the deliveries in flight per subscription (a prefetch count);
- with ``ordered=True`` messages with the same key are delivered one at a time in publish
  order, each key always to the same consumer (a partition); a failing message blocks its
  key until it is acknowledged or dead-lettered. Without it, order is not promised.

Duplicates therefore reach consumers from the network (duplicated requests) and from
redeliveries; consumers that must not repeat side effects deduplicate by message id (the
call's key; see :class:`sim.data.inbox.Inbox`). The broker drops a re-sent publish whose id
it saw within ``dedupe_window_s`` (an idempotent producer).

Outage: while the broker's node is down, publishes are refused and nothing is delivered;
a durable broker keeps its queues (deliveries in flight at the crash are redelivered after
recovery), a non-durable one loses them. What a publisher does when the broker is down is
its configuration (:class:`~sim.data.publisher.Publisher`): ``on_outage="fail"`` raises,
``"buffer"`` keeps messages on the publisher's node (lost if that node crashes) and sends
them when the broker is back.

Metrics (``bus.<name>.*``): ``published``, ``duplicate_publishes``, ``unrouted`` (no
subscription), ``deliveries`` (attempts), ``acked``, ``redeliveries``, ``dead_letters``,
``lost`` (in broker or publisher crashes), ``buffered``, ``buffer_overflow``,
``delivery_lag`` (histogram: publish to acknowledgement, seconds), ``backlog`` (gauge:
messages not yet acknowledged, all subscriptions).
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from sim import check
from sim.call import (
    Caller,
    Pipeline,
    Policy,
    Result,
    Timeout,
    start_call,
)
from sim.distributions import Distribution, LogNormal
from sim.errors import ConfigError
from sim.service import Context, Service

if TYPE_CHECKING:
    from sim.data.publisher import OutageMode, Publisher
    from sim.node import Node
    from sim.service import Endpoint
    from sim.world import World

__all__ = ["Delivery", "EventBus", "Message", "Subscription"]
# Kafka with acks=all: a publish is acknowledged in milliseconds, with a tail of tens.
DEFAULT_PUBLISH_TIME = LogNormal.from_median_p99(0.002, 0.020)


@dataclass(frozen=True, slots=True)
class Message:
    """A published message.

    Attributes:
        id: unique, assigned by the publisher (the same for every copy and re-send).
        topic: where it was published.
        key: the ordering key (None: no key).
        payload: the body.
        published_at: true time the publisher first sent it.
        source: name of the publishing node.
    """

    id: int
    topic: str
    key: Any
    payload: Any
    published_at: float
    source: str


class Delivery(NamedTuple):
    """What a consumer endpoint receives: the message and which delivery this is (1, 2, ...)."""

    message: Message
    attempt: int


class _Pending:
    __slots__ = ("attempts", "message")

    def __init__(self, message: Message):
        self.message = message
        self.attempts = 0


class Subscription:
    """A consumer group on a topic. Create with :meth:`EventBus.subscribe`.

    Attributes:
        dead_letters: messages that failed ``max_deliveries`` times, oldest first.
    """

    def __init__(
        self,
        bus: EventBus,
        topic: str,
        group: str,
        consumers: Sequence[Endpoint],
        *,
        ack_timeout_s: float,
        max_deliveries: int,
        concurrency: int,
        ordered: bool,
        redelivery_delay_s: float,
    ):
        self.bus = bus
        self.topic = topic
        self.group = group
        self.consumers = list(consumers)
        self.ack_timeout_s = ack_timeout_s
        self.max_deliveries = max_deliveries
        self.concurrency = concurrency
        self.ordered = ordered
        self.redelivery_delay_s = redelivery_delay_s
        self.pipeline = Pipeline([Timeout(ack_timeout_s)])
        self.dead_letters: list[Message] = []
        self._ready: deque[_Pending] = deque()  # unordered: deliverable now
        self._keys: dict[Any, deque[_Pending]] = {}  # ordered: queue per key, head first
        self._ready_keys: deque[Any] = deque()  # ordered: keys whose head may go now
        self._in_flight: dict[_Pending, int] = {}  # -> generation it was sent in
        self._parked: set[_Pending] = set()  # unordered: failed, waiting to go again
        self._generation = 0
        self._next_consumer = 0

    def __repr__(self) -> str:
        return f"Subscription({self.topic!r}, group={self.group!r})"

    def backlog(self) -> int:
        """Messages received and not yet acknowledged or dead-lettered."""
        if self.ordered:
            queued = sum(len(q) for q in self._keys.values())
            return queued  # the in-flight and waiting ones are the heads of their keys
        return len(self._ready) + len(self._in_flight) + len(self._parked)

    # -- queueing -------------------------------------------------------------------------

    def _enqueue(self, message: Message) -> None:
        pending = _Pending(message)
        if self.ordered:
            queue = self._keys.get(message.key)
            if queue is None:
                self._keys[message.key] = deque([pending])
                self._ready_keys.append(message.key)
            else:
                queue.append(pending)
        else:
            self._ready.append(pending)
        self._pump()

    def _pump(self) -> None:
        if not self.bus.node.up:
            return
        while len(self._in_flight) < self.concurrency:
            pending = self._next()
            if pending is None:
                return
            self._deliver(pending)

    def _next(self) -> _Pending | None:
        if self.ordered:
            if not self._ready_keys:
                return None
            return self._keys[self._ready_keys.popleft()][0]
        return self._ready.popleft() if self._ready else None

    def _consumer(self, message: Message) -> Endpoint:
        consumers = self.consumers
        if self.ordered:  # a key always goes to the same consumer (stable across runs)
            return consumers[zlib.crc32(repr(message.key).encode()) % len(consumers)]
        index = self._next_consumer
        self._next_consumer = (index + 1) % len(consumers)
        return consumers[index]

    # -- delivering -----------------------------------------------------------------------

    def _deliver(self, pending: _Pending) -> None:
        bus = self.bus
        pending.attempts += 1
        bus.deliveries.value += 1
        if pending.attempts > 1:
            bus.redeliveries.value += 1
        generation = self._generation
        self._in_flight[pending] = generation
        message = pending.message

        def done(result: Result) -> None:
            self._delivered(pending, generation, result)

        start_call(
            bus.node, self._consumer(message), Delivery(message, pending.attempts),
            self.pipeline, done, key=message.id,
        )  # fmt: skip

    def _delivered(self, pending: _Pending, generation: int, result: Result) -> None:
        if generation != self._generation:
            return  # the broker crashed since: the crash requeued this message
        del self._in_flight[pending]
        bus = self.bus
        if result.ok:
            bus.acked.value += 1
            bus.backlog.add(-1)
            bus.delivery_lag.record(bus.world.env.now - pending.message.published_at)
            self._release(pending)
        elif pending.attempts >= self.max_deliveries:
            bus.dead_lettered.value += 1
            bus.backlog.add(-1)
            self.dead_letters.append(pending.message)
            self._release(pending)
        elif self.redelivery_delay_s > 0:
            if not self.ordered:
                self._parked.add(pending)
            delay = bus.node.clock.true_delay(self.redelivery_delay_s)
            bus.world.schedule(delay, self._retry, (pending, self._generation))
        else:
            self._requeue(pending)
        self._pump()

    def _retry(self, arg: tuple[_Pending, int]) -> None:
        pending, generation = arg
        if generation != self._generation:
            return  # the crash already requeued it
        self._parked.discard(pending)
        self._requeue(pending)
        self._pump()

    def _requeue(self, pending: _Pending) -> None:
        if self.ordered:
            self._ready_keys.appendleft(pending.message.key)  # its head goes again
        else:
            self._ready.append(pending)

    def _release(self, pending: _Pending) -> None:
        if not self.ordered:
            return
        key = pending.message.key
        queue = self._keys[key]
        queue.popleft()
        if queue:
            self._ready_keys.append(key)
        else:
            del self._keys[key]

    # -- broker crash ---------------------------------------------------------------------

    def _crash(self, durable: bool) -> int:
        """The broker crashed: deliveries in flight are forgotten. Returns messages lost."""
        self._generation += 1
        if not durable:
            lost = self.backlog()
            self._ready.clear()
            self._parked.clear()
            self._keys.clear()
            self._ready_keys.clear()
            self._in_flight.clear()
            return lost
        if self.ordered:  # every key's head may go again, in key order of first arrival
            self._ready_keys = deque(self._keys)
        else:  # everything not acknowledged is ready again, oldest first
            redo = sorted(
                {*self._in_flight, *self._ready, *self._parked}, key=lambda p: p.message.id
            )
            self._ready = deque(redo)
            self._parked.clear()
        self._in_flight.clear()
        return 0


class EventBus:
    """A message broker on ``node``.

    Args:
        world: the run.
        name: the broker service's name; publishes go to ``<name>.publish``.
        node: where the broker runs.
        workers: publishes handled at once.
        publish_time: service time of a publish (default lognormal, median 2 ms, p99 20 ms).
        durable: queues survive a broker crash (persisted log) or not.
        dedupe_window_s: re-sent publishes with an id seen this recently (broker clock) are
            dropped; None keeps every copy.
    """

    def __init__(
        self,
        world: World,
        name: str,
        node: Node,
        *,
        workers: int = 8,
        publish_time: Distribution = DEFAULT_PUBLISH_TIME,
        durable: bool = True,
        dedupe_window_s: float | None = 300.0,
    ):
        self.world = world
        self.name = name
        self.node = node
        self.durable = bool(durable)
        if dedupe_window_s is not None:
            check.positive(f"{name}.dedupe_window_s", dedupe_window_s)
        self.dedupe_window_s = dedupe_window_s
        self.service = Service(world, name, node, workers=workers)
        self.service.endpoint("publish", publish_time, handler=self._publish)
        self.subscriptions: dict[str, list[Subscription]] = {}
        self._seen: set[int] = set()
        self._seen_order: deque[tuple[float, int]] = deque()
        metrics = world.metrics
        prefix = f"bus.{name}"
        self.published = metrics.counter(f"{prefix}.published")
        self.duplicate_publishes = metrics.counter(f"{prefix}.duplicate_publishes")
        self.unrouted = metrics.counter(f"{prefix}.unrouted")
        self.deliveries = metrics.counter(f"{prefix}.deliveries")
        self.acked = metrics.counter(f"{prefix}.acked")
        self.redeliveries = metrics.counter(f"{prefix}.redeliveries")
        self.dead_lettered = metrics.counter(f"{prefix}.dead_letters")
        self.lost = metrics.counter(f"{prefix}.lost")
        self.buffered = metrics.counter(f"{prefix}.buffered")
        self.buffer_overflow = metrics.counter(f"{prefix}.buffer_overflow")
        self.delivery_lag = metrics.histogram(f"{prefix}.delivery_lag")
        self.backlog = metrics.gauge(f"{prefix}.backlog")
        node.on_crash(self._on_crash)
        node.on_recover(self._on_recover)

    def __repr__(self) -> str:
        return f"EventBus({self.name!r} on {self.node.name})"

    @property
    def address(self) -> str:
        """The publish endpoint."""
        return f"{self.name}.publish"

    def subscribe(
        self,
        topic: str,
        group: str,
        consumers: str | Endpoint | Sequence[str | Endpoint],
        *,
        ack_timeout_s: float = 30.0,
        max_deliveries: int = 5,
        concurrency: int = 1,
        ordered: bool = False,
        redelivery_delay_s: float = 0.0,
    ) -> Subscription:
        """Subscribe the consumer group ``group`` to ``topic``.

        Args:
            consumers: the group's consumer endpoints (addresses or Endpoints). Each gets
                ``Delivery(message, attempt)`` as payload and the message id as call key.
            ack_timeout_s: time for a consumer to acknowledge, on the broker's clock.
            max_deliveries: deliveries before a message is dead-lettered (>= 1).
            concurrency: deliveries in flight at once for this group.
            ordered: per-key ordering (see the module docs).
            redelivery_delay_s: wait before delivering a failed message again.
        """
        if not isinstance(topic, str) or not topic:
            raise ConfigError.single("topic", topic, "a non-empty string")
        listed = (
            [consumers] if isinstance(consumers, str) or not isinstance(consumers, Sequence)
            else list(consumers)
        )  # fmt: skip
        if not listed:
            raise ConfigError.single(f"{topic}.{group}.consumers", consumers, "one or more")
        for existing in self.subscriptions.get(topic, []):
            if existing.group == group:
                raise ConfigError.single(
                    f"{topic}.group", group, "a group not yet subscribed to this topic"
                )
        caller = Caller(self.world, self.node)
        subscription = Subscription(
            self,
            topic,
            group,
            [caller.resolve(c) for c in listed],
            ack_timeout_s=check.positive(f"{topic}.{group}.ack_timeout_s", ack_timeout_s),
            max_deliveries=check.positive_int(f"{topic}.{group}.max_deliveries", max_deliveries),
            concurrency=check.positive_int(f"{topic}.{group}.concurrency", concurrency),
            ordered=bool(ordered),
            redelivery_delay_s=check.non_negative(
                f"{topic}.{group}.redelivery_delay_s", redelivery_delay_s
            ),
        )
        self.subscriptions.setdefault(topic, []).append(subscription)
        return subscription

    def publisher(
        self,
        node: Node,
        *,
        on_outage: OutageMode = "fail",
        buffer_limit: int = 10_000,
        retry_interval_s: float = 1.0,
        max_in_flight: int = 5,
        timeout_s: float = 5.0,
        policy: Pipeline | Sequence[Policy] | None = None,
    ) -> Publisher:
        """A publisher on ``node`` (see :class:`sim.data.publisher.Publisher`)."""
        from sim.data.publisher import Publisher  # it needs Message from here

        return Publisher(
            self, node, on_outage=on_outage, buffer_limit=buffer_limit,
            retry_interval_s=retry_interval_s, max_in_flight=max_in_flight,
            timeout_s=timeout_s, policy=policy,
        )  # fmt: skip

    # -- the broker -----------------------------------------------------------------------

    def _publish(self, ctx: Context, message: Message) -> int:
        if self.dedupe_window_s is not None and self._duplicate(ctx, message.id):
            self.duplicate_publishes.value += 1
            return message.id
        self.published.value += 1
        subscriptions = self.subscriptions.get(message.topic)
        if not subscriptions:
            self.unrouted.value += 1
            return message.id
        self.backlog.add(len(subscriptions))
        for subscription in subscriptions:
            subscription._enqueue(message)
        return message.id

    def _duplicate(self, ctx: Context, message_id: int) -> bool:
        assert self.dedupe_window_s is not None
        now = ctx.now
        order, seen = self._seen_order, self._seen
        while order and order[0][0] < now - self.dedupe_window_s:
            seen.discard(order.popleft()[1])
        if message_id in seen:
            return True
        seen.add(message_id)
        order.append((now, message_id))
        return False

    def _on_crash(self) -> None:
        lost = 0
        for subscriptions in self.subscriptions.values():
            for subscription in subscriptions:
                lost += subscription._crash(self.durable)
        if lost:
            self.lost.value += lost
            self.backlog.add(-lost)
        if not self.durable:
            self._seen.clear()
            self._seen_order.clear()

    def _on_recover(self) -> None:
        for subscriptions in self.subscriptions.values():
            for subscription in subscriptions:
                subscription._pump()
