"""The relay that publishes the order service's events to the bus: an outbox when the
events are durable (event sourcing), events in memory otherwise."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from sim.call import Result
from sim.data import EventBus, Message

if TYPE_CHECKING:
    from sim.node import Node
    from sim.world import World

__all__ = ["Relay"]


class Relay:
    """Publishes order events to the bus from the order service's node.

    ``durable``: the events are in the event store (an outbox), so after a crash of the
    relay's node the unpublished ones are sent again; otherwise they lived in the crashed
    process and are lost. ``retry``: a failed publish is sent again (same message id, the
    broker drops copies) until it is acknowledged; otherwise it is lost. Lost events are
    counted in ``notifications.lost_unpublished``.
    """

    RETRY_S = 5.0

    def __init__(self, world: World, bus: EventBus, node: Node, *, durable: bool, retry: bool):
        self.world = world
        self.node = node
        self.durable = durable
        self.retry = retry
        self.publisher = bus.publisher(node, on_outage="fail", timeout_s=5.0)
        self.pending: dict[int, Message] = {}
        self.lost = world.metrics.counter("notifications.lost_unpublished")
        self.published = world.metrics.counter("notifications.events")
        node.on_crash(self._on_crash)
        node.on_recover(self._on_recover)

    def publish(self, kind: str, order_id: int) -> None:
        message = self.publisher.message("orders", (kind, order_id, self.world.env.now), order_id)
        self.pending[message.id] = message
        self.published.value += 1
        self._send(message)

    def _send(self, message: Message) -> None:
        if self.node.up and message.id in self.pending:
            done = partial(self._sent, message, self.node.epoch)
            self.publisher.send_message(message, done)

    def _sent(self, message: Message, epoch: int, result: Result) -> None:
        if epoch != self.node.epoch or message.id not in self.pending:
            return  # the crash dealt with it
        if result.ok:
            del self.pending[message.id]
        elif self.retry:
            delay = self.node.clock.true_delay(self.RETRY_S)
            self.world.schedule(delay, self._resend, (message, epoch))
        else:
            del self.pending[message.id]
            self.lost.value += 1

    def _resend(self, arg: tuple[Message, int]) -> None:
        message, epoch = arg
        if epoch == self.node.epoch:
            self._send(message)

    def _on_crash(self) -> None:
        if not self.durable:
            self.lost.value += len(self.pending)
            self.pending.clear()

    def _on_recover(self) -> None:
        for message in list(self.pending.values()):
            self._send(message)
