"""An event store: append-only streams with optimistic concurrency, folding and snapshots.

``append(stream, events, expected_version)`` adds events to a stream if the stream is at
``expected_version`` (:data:`ANY` skips the check, :data:`NO_STREAM` requires a new stream);
otherwise the call answers ``error`` with reason ``"conflict"``, as EventStoreDB's
WrongExpectedVersion does. An append is idempotent by its ``append_id``: a re-sent append
(a retry after a lost reply, a duplicated request) that was already written answers the
original result instead of a conflict or a second copy.

State is rebuilt by folding a stream's events: ``state = fold(state, event)`` from
``initial``. With ``snapshot_every=N`` the store keeps a snapshot each time a stream passes a
multiple of N events, and ``load`` folds only the events after it; loading costs
``read_time`` plus ``per_event_s`` for each event folded, so snapshots show in latency.

Every event carries the timestamp of the *writer's* node clock when it sent the append, and
its global append position. With skewed clocks the timestamp order differs from the append
order: each appended event whose timestamp is earlier than one appended before it counts as
an inversion (``db.<name>.inversions`` across the whole log, ``db.<name>.stream_inversions``
within its stream). Sorting events by timestamp, as a naive consumer might, would reorder
them.

The store is durable: a crash of its node loses calls in flight (an append in flight either
happened entirely or not at all) and nothing acknowledged. Subscribers registered with
:meth:`EventStore.subscribe` are told of each appended event at once (a projection adds its
own lag; see :mod:`sim.data.cqrs`).

Metrics (``db.<name>.*``): ``appends``, ``events``, ``conflicts``, ``duplicate_appends``,
``snapshots``, ``inversions``, ``stream_inversions``, ``loaded_events`` (histogram: events
folded per load).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from sim import check
from sim.call import Caller, Pipeline, Policy
from sim.distributions import Distribution, LogNormal
from sim.errors import ConfigError
from sim.service import Context, Service, ServiceError

if TYPE_CHECKING:
    import simpy

    from sim.node import Node
    from sim.world import World

__all__ = ["ANY", "NO_STREAM", "Append", "Appended", "EventStore", "RecordedEvent"]

ANY: int | None = None  # append whatever the stream's version
NO_STREAM = 0  # append only if the stream has no event yet
Fold = Callable[[Any, "RecordedEvent"], Any]
PolicyArg = Pipeline | Sequence[Policy] | None
# An append is a durable write (an fsync); a read of a few events is sub-millisecond.
DEFAULT_APPEND_TIME = LogNormal.from_median_p99(0.002, 0.020)
DEFAULT_READ_TIME = LogNormal.from_median_p99(0.0005, 0.005)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored.

    Attributes:
        stream: its stream.
        version: its number in the stream (1, 2, ...).
        position: its number in the whole log (1, 2, ...), the append order.
        data: the event body.
        timestamp: the writer's node clock when the append was sent.
        appended_at: true time it was appended.
        writer: the writing node's name.
    """

    stream: str
    version: int
    position: int
    data: Any
    timestamp: float
    appended_at: float
    writer: str


class Append(NamedTuple):
    """An append request (the client helper builds it)."""

    stream: str
    events: tuple[Any, ...]
    expected_version: int | None
    timestamp: float
    writer: str
    append_id: int


class Appended(NamedTuple):
    """The result of an append: the stream's new version and the last event's position."""

    version: int
    position: int


class EventStore:
    """An event store service on ``node``.

    Args:
        world: the run.
        name: service name; endpoints ``<name>.append``, ``<name>.read``, ``<name>.load``.
        node: where it runs.
        workers: operations at once (connections).
        append_time, read_time: service times of an append and of a read or load.
        per_event_s: extra time per event folded by ``load``.
        fold: ``fold(state, event) -> state``, needed by ``load`` and snapshots.
        initial: the state before any event.
        snapshot_every: keep a snapshot every this many events of a stream (None: never).
        keep_log: keep the whole log in memory (``log``); False keeps only the streams, so
            that :meth:`forget` bounds memory in long runs (positions keep counting).
    """

    def __init__(
        self,
        world: World,
        name: str,
        node: Node,
        *,
        workers: int = 10,
        append_time: Distribution = DEFAULT_APPEND_TIME,
        read_time: Distribution = DEFAULT_READ_TIME,
        per_event_s: float = 0.00001,
        fold: Fold | None = None,
        initial: Any = None,
        snapshot_every: int | None = None,
        keep_log: bool = True,
    ):
        self.world = world
        self.name = name
        self.node = node
        self.per_event_s = check.non_negative(f"{name}.per_event_s", per_event_s)
        if fold is not None and not callable(fold):
            raise ConfigError.single(f"{name}.fold", fold, "a function (state, event) -> state")
        if snapshot_every is not None:
            check.positive_int(f"{name}.snapshot_every", snapshot_every)
            if fold is None:
                raise ConfigError.single(
                    f"{name}.snapshot_every", snapshot_every, "None, or a fold to build them"
                )
        self.fold = fold
        self.initial = initial
        self.snapshot_every = snapshot_every
        self.service = Service(world, name, node, workers=workers)
        self.service.endpoint("append", append_time, handler=self._append)
        self.service.endpoint("read", read_time, handler=self._read)
        self.service.endpoint("load", read_time, handler=self._load)
        self.log: list[RecordedEvent] = []
        self.keep_log = bool(keep_log)
        self.position = 0  # of the last event appended
        self._stream_appends: dict[str, list[int]] = {}  # stream -> its append ids
        self.streams: dict[str, list[RecordedEvent]] = {}
        self.snapshots: dict[str, tuple[Any, int]] = {}  # stream -> (state, version)
        self._appends: dict[int, Appended] = {}  # append id -> its result (idempotence)
        self._latest = float("-inf")  # greatest timestamp in the log
        self._stream_latest: dict[str, float] = {}
        self._subscribers: list[Callable[[RecordedEvent], None]] = []
        metrics = world.metrics
        prefix = f"db.{name}"
        self.appends = metrics.counter(f"{prefix}.appends")
        self.events = metrics.counter(f"{prefix}.events")
        self.conflicts = metrics.counter(f"{prefix}.conflicts")
        self.duplicate_appends = metrics.counter(f"{prefix}.duplicate_appends")
        self.snapshots_taken = metrics.counter(f"{prefix}.snapshots")
        self.inversions = metrics.counter(f"{prefix}.inversions")
        self.stream_inversions = metrics.counter(f"{prefix}.stream_inversions")
        self.loaded_events = metrics.histogram(f"{prefix}.loaded_events")

    def __repr__(self) -> str:
        return f"EventStore({self.name!r} on {self.node.name})"

    def subscribe(self, callback: Callable[[RecordedEvent], None]) -> None:
        """Call ``callback(event)`` for each event appended from now on."""
        self._subscribers.append(callback)

    def version(self, stream: str) -> int:
        """The stream's version now (0 if it has no events)."""
        return len(self.streams.get(stream, ()))

    def forget(self, stream: str) -> None:
        """Drop ``stream``: its events, snapshot and append records (an archived or
        hard-deleted stream). Events in ``log`` stay; positions keep counting."""
        self.streams.pop(stream, None)
        self.snapshots.pop(stream, None)
        self._stream_latest.pop(stream, None)
        for append_id in self._stream_appends.pop(stream, ()):
            self._appends.pop(append_id, None)

    def rebuild(self, stream: str) -> Any:
        """The stream's state folded from its first event, without a call (for checks)."""
        if self.fold is None:
            raise ConfigError.single(f"{self.name}.fold", None, "a fold to rebuild state")
        state = self.initial
        for event in self.streams.get(stream, ()):
            state = self.fold(state, event)
        return state

    # -- client calls ---------------------------------------------------------------------

    def append(
        self,
        caller: Caller,
        stream: str,
        events: Iterable[Any],
        expected_version: int | None = ANY,
        *,
        append_id: int | None = None,
        policy: PolicyArg = None,
        timeout_s: float | None = None,
    ) -> Generator[simpy.Event, Any, Appended]:
        """Append ``events`` (stamped with the caller's clock); a conflict raises
        CallError("conflict"). Retries through ``policy`` reuse the append id."""
        request = Append(
            stream, tuple(events), expected_version, caller.node.clock.now(), caller.node.name,
            append_id if append_id is not None else self.world.new_id(),
        )  # fmt: skip
        result: Appended = yield from caller.call(
            f"{self.name}.append", request, policy=policy, timeout_s=timeout_s,
            key=request.append_id,
        )  # fmt: skip
        return result

    def read(
        self,
        caller: Caller,
        stream: str,
        from_version: int = 1,
        *,
        policy: PolicyArg = None,
        timeout_s: float | None = None,
    ) -> Generator[simpy.Event, Any, list[RecordedEvent]]:
        """The stream's events from ``from_version`` on."""
        events: list[RecordedEvent] = yield from caller.call(
            f"{self.name}.read", (stream, from_version), policy=policy, timeout_s=timeout_s
        )
        return events

    def load(
        self,
        caller: Caller,
        stream: str,
        *,
        policy: PolicyArg = None,
        timeout_s: float | None = None,
    ) -> Generator[simpy.Event, Any, tuple[Any, int]]:
        """The stream's folded state and version (from the latest snapshot on)."""
        loaded: tuple[Any, int] = yield from caller.call(
            f"{self.name}.load", stream, policy=policy, timeout_s=timeout_s
        )
        return loaded

    # -- the server -----------------------------------------------------------------------

    def _append(self, _: Context, request: Append) -> Appended:
        done = self._appends.get(request.append_id)
        if done is not None:
            self.duplicate_appends.value += 1
            return done
        stream = self.streams.setdefault(request.stream, [])
        expected = request.expected_version
        if expected is not None and expected != len(stream):
            self.conflicts.value += 1
            raise ServiceError("conflict")
        now = self.world.env.now
        latest = self._latest
        stream_latest = self._stream_latest.get(request.stream, float("-inf"))
        timestamp = request.timestamp
        before = len(stream)
        for data in request.events:
            self.position += 1
            event = RecordedEvent(
                request.stream, len(stream) + 1, self.position, data, timestamp, now,
                request.writer,
            )  # fmt: skip
            if timestamp < latest:
                self.inversions.value += 1
            if timestamp < stream_latest:
                self.stream_inversions.value += 1
            if self.keep_log:
                self.log.append(event)
            stream.append(event)
            for subscriber in self._subscribers:
                subscriber(event)
        self._latest = max(latest, timestamp)
        self._stream_latest[request.stream] = max(stream_latest, timestamp)
        self.appends.value += 1
        self.events.value += len(request.events)
        if self.snapshot_every is not None:
            self._snapshot(request.stream, before, len(stream))
        result = Appended(len(stream), self.position)
        self._appends[request.append_id] = result
        self._stream_appends.setdefault(request.stream, []).append(request.append_id)
        return result

    def _snapshot(self, stream: str, before: int, after: int) -> None:
        every = self.snapshot_every
        assert every is not None and self.fold is not None
        if after // every == before // every:
            return
        state, version = self.snapshots.get(stream, (self.initial, 0))
        for event in self.streams[stream][version:after]:
            state = self.fold(state, event)
        self.snapshots[stream] = (state, after)
        self.snapshots_taken.value += 1

    def _read(self, _: Context, request: tuple[str, int]) -> list[RecordedEvent]:
        stream, from_version = request
        return self.streams.get(stream, [])[max(from_version, 1) - 1 :]

    def _load(self, ctx: Context, stream: str) -> Generator[simpy.Event, Any, tuple[Any, int]]:
        if self.fold is None:
            raise ServiceError("no_fold")
        state, version = self.snapshots.get(stream, (self.initial, 0))
        events = self.streams.get(stream, [])[version:]
        for event in events:
            state = self.fold(state, event)
        self.loaded_events.record(len(events))
        if events and self.per_event_s:
            yield ctx.work(len(events) * self.per_event_s)
        return state, version + len(events)
