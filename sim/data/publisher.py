"""Publishers: how a node sends messages to an event bus, and what it does while the broker
is down (fail, or buffer locally and send later).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from sim import check
from sim.call import Caller, Outcome, Pipeline, Policy, Result, start_call
from sim.data._calls import raise_for, result_event
from sim.data.bus import Message
from sim.errors import ConfigError

if TYPE_CHECKING:
    import simpy

    from sim.data.bus import EventBus
    from sim.node import Node

__all__ = ["OutageMode", "Publisher"]

OutageMode = Literal["fail", "buffer"]


class Publisher:
    """Sends messages from ``node`` to a bus. Create with :meth:`EventBus.publisher`.

    With ``on_outage="fail"`` a publish is one call through ``policy`` and ``timeout_s``;
    a failure raises :class:`~sim.call.CallFailed` (or is handed to ``done``). With
    ``"buffer"`` a publish returns as soon as the message is in the local buffer (like a
    Kafka producer's ``send``); a background sender keeps up to ``max_in_flight`` publishes
    going, and after a failure waits ``retry_interval_s`` (node clock) before sending again.
    A full buffer (``buffer_limit``) rejects the publish (reason ``"buffer_full"``); the
    buffer lives in the node's memory and is lost if the node crashes.
    """

    def __init__(
        self,
        bus: EventBus,
        node: Node,
        *,
        on_outage: OutageMode,
        buffer_limit: int,
        retry_interval_s: float,
        max_in_flight: int,
        timeout_s: float,
        policy: Pipeline | Sequence[Policy] | None,
    ):
        if on_outage not in ("fail", "buffer"):
            raise ConfigError.single("on_outage", on_outage, "'fail' or 'buffer'")
        self.bus = bus
        self.node = node
        self.on_outage = on_outage
        self.buffer_limit = check.positive_int("buffer_limit", buffer_limit)
        self.retry_interval_s = check.positive("retry_interval_s", retry_interval_s)
        self.max_in_flight = check.positive_int("max_in_flight", max_in_flight)
        check.positive("timeout_s", timeout_s)
        self.caller = Caller(bus.world, node)
        self.pipeline = self.caller.pipeline(policy, timeout_s)
        self.endpoint = self.caller.resolve(bus.address)
        self.buffer: deque[Message] = deque()
        self._sending = 0
        self._backing_off = False
        node.on_crash(self._on_crash)

    def message(self, topic: str, payload: Any, key: Any = None) -> Message:
        """A new message (a fresh id, stamped now)."""
        world = self.bus.world
        return Message(world.new_id(), topic, key, payload, world.env.now, self.node.name)

    def send(
        self,
        topic: str,
        payload: Any,
        key: Any = None,
        done: Callable[[Result], None] | None = None,
    ) -> Message:
        """Publish without waiting: ``done(result)`` runs when the broker acknowledged (fail
        mode) or the message was buffered (buffer mode)."""
        message = self.message(topic, payload, key)
        self.send_message(message, done)
        return message

    def send_message(self, message: Message, done: Callable[[Result], None] | None = None) -> None:
        """Publish ``message`` as it is: re-sending one whose acknowledgement was lost keeps
        its id, so the broker drops the copy (within its dedupe window)."""
        finish = done or _ignore
        if self.on_outage == "fail":
            start_call(self.node, self.endpoint, message, self.pipeline, finish, key=message.id)
            return
        if len(self.buffer) + self._sending >= self.buffer_limit:
            self.bus.buffer_overflow.value += 1
            finish(Result(Outcome.REJECTED, reason="buffer_full"))
            return
        self.buffer.append(message)
        self.bus.buffered.value += 1
        self._pump()
        finish(Result(Outcome.OK, message.id))

    def publish(
        self, topic: str, payload: Any, key: Any = None
    ) -> Generator[simpy.Event, Any, int]:
        """Publish and wait (see the class docs); returns the message id or raises."""
        message_id = yield from self.publish_message(self.message(topic, payload, key))
        return message_id

    def publish_message(self, message: Message) -> Generator[simpy.Event, Any, int]:
        """Publish ``message`` as it is and wait; returns its id or raises."""
        event, done = result_event(self.bus.world.env)
        self.send_message(message, done)
        result: Result = yield event
        if not result.ok:
            raise_for(self.bus.address, result)
        return message.id

    # -- the background sender (buffer mode) ----------------------------------------------

    def _pump(self) -> None:
        while self.buffer and not self._backing_off and self._sending < self.max_in_flight:
            message = self.buffer.popleft()
            self._sending += 1
            epoch = self.node.epoch

            def done(result: Result, message: Message = message, epoch: int = epoch) -> None:
                self._sent(message, epoch, result)

            start_call(self.node, self.endpoint, message, self.pipeline, done, key=message.id)

    def _sent(self, message: Message, epoch: int, result: Result) -> None:
        if epoch != self.node.epoch:
            return  # sent by an incarnation that crashed: its buffer is gone
        self._sending -= 1
        if not result.ok:
            self.buffer.appendleft(message)
            if not self._backing_off:
                self._backing_off = True
                delay = self.node.clock.true_delay(self.retry_interval_s)
                self.bus.world.schedule(delay, self._resume, epoch)
        self._pump()

    def _resume(self, epoch: int) -> None:
        if epoch == self.node.epoch:
            self._backing_off = False
            self._pump()

    def _on_crash(self) -> None:
        # Publishes in flight may still reach the broker; the buffer is gone for sure.
        self.bus.lost.value += len(self.buffer)
        self.buffer.clear()
        self._sending = 0
        self._backing_off = False


def _ignore(_: Result) -> None:
    pass
