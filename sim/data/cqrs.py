"""CQRS read models: projections of an event store's events into views that queries read.

A :class:`ReadModel` is a service on its own node. Its projection receives every event
appended to an :class:`~sim.data.eventstore.EventStore` and applies it to a denormalized
view, keyed by ``key_of(event)``, with ``view = project(view, event)``. Each event is applied
a *projection lag* after it was appended (a draw from ``lag``: the whole path of store
subscription, projector and view write), and never before an event appended earlier: the
projection applies in log order, so one slow event holds back those behind it.

Queries (``<name>.query`` with a :class:`Query`) answer from the view at once, whatever it
has applied so far, and measure at the moment of the read:

- *staleness*: how long the oldest event for the key that is appended but not yet applied
  has been waiting (0 when the view has them all); a read with staleness > 0 is a stale read;
- *read-your-writes violations*: the query names the log position of the client's own last
  write (``min_position``, from :class:`~sim.data.eventstore.Appended`); if the projection
  has not reached it, the client does not see its own write.

With ``wait_s`` a query that would violate read-your-writes waits (up to ``wait_s`` on the
read model's clock) for the projection to reach ``min_position``, a common remedy; a query
that gives up answers the stale view and counts the violation.

A crash of the read model's node pauses the projection (the view itself is durable); on
recovery it resumes from its checkpoint, each waiting event taking a fresh lag from then.

Metrics (``db.<name>.*``): ``queries``, ``projection_lag`` (histogram: append to apply),
``staleness`` (histogram over every query, zeros included), ``stale_reads``,
``ryw_violations``, ``applied``; also ``anomaly.stale_reads`` and
``anomaly.read_your_writes``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import simpy

from sim import check
from sim.call import Caller, Pipeline, Policy
from sim.distributions import Distribution, Exponential, LogNormal
from sim.errors import ConfigError
from sim.service import Context, Service

if TYPE_CHECKING:
    from sim.data.eventstore import EventStore, RecordedEvent
    from sim.node import Node
    from sim.world import World

__all__ = ["Query", "ReadModel", "View"]

DEFAULT_LAG = Exponential(0.1)
DEFAULT_QUERY_TIME = LogNormal.from_median_p99(0.0005, 0.005)


class Query(NamedTuple):
    """Read ``key``; ``min_position``: the log position of the reader's own last write."""

    key: Any
    min_position: int | None = None


class View(NamedTuple):
    """A query's answer: the view, the position of the last event applied to it, and how
    stale it was when read (seconds)."""

    value: Any
    position: int
    staleness: float


class ReadModel:
    """A read model fed by ``store``.

    Args:
        world: the run.
        name: service name; queries go to ``<name>.query``.
        node: where it runs.
        store: the event store it projects.
        project: ``project(view, event) -> view`` (view is ``initial`` for a new key).
        key_of: the view key an event updates (default: its stream).
        initial: the view of a key no event has touched.
        lag: projection lag per event (default exponential, mean 100 ms).
        query_time: service time of a query.
        workers: queries at once.
        wait_s: how long a query with ``min_position`` may wait for the projection
            (None: answer at once).
    """

    def __init__(
        self,
        world: World,
        name: str,
        node: Node,
        store: EventStore,
        project: Callable[[Any, RecordedEvent], Any],
        *,
        key_of: Callable[[RecordedEvent], Any] | None = None,
        initial: Any = None,
        lag: Distribution = DEFAULT_LAG,
        query_time: Distribution = DEFAULT_QUERY_TIME,
        workers: int = 8,
        wait_s: float | None = None,
    ):
        if not callable(project):
            raise ConfigError.single(f"{name}.project", project, "a function (view, event)")
        if not isinstance(lag, Distribution):
            raise ConfigError.single(f"{name}.lag", lag, "a distribution")
        self.wait_s = None if wait_s is None else check.positive(f"{name}.wait_s", wait_s)
        self.world = world
        self.name = name
        self.node = node
        self.project = project
        self.key_of: Callable[[RecordedEvent], Any] = key_of or _stream_of
        self.initial = initial
        self._lag = world.sampler(f"db.{name}.projection_lag", lag)
        self.service = Service(world, name, node, workers=workers)
        handler = self._query if wait_s is None else self._query_waiting
        self.service.endpoint("query", query_time, handler=handler)
        self.views: dict[Any, tuple[Any, int]] = {}  # key -> (view, position)
        self.position = 0  # the projection's checkpoint: last position applied
        self._queue: deque[RecordedEvent] = deque()  # appended, not yet applied, in order
        self._waiting: dict[Any, deque[float]] = {}  # key -> appended_at of unapplied events
        self._due = 0.0  # when the last scheduled event applies
        self._generation = 0
        self._watchers: list[tuple[int, simpy.Event]] = []
        metrics = world.metrics
        prefix = f"db.{name}"
        self.queries = metrics.counter(f"{prefix}.queries")
        self.applied = metrics.counter(f"{prefix}.applied")
        self.projection_lag = metrics.histogram(f"{prefix}.projection_lag")
        self.staleness = metrics.histogram(f"{prefix}.staleness")
        self.stale_reads = metrics.counter(f"{prefix}.stale_reads")
        self.ryw_violations = metrics.counter(f"{prefix}.ryw_violations")
        self._anomaly_stale = metrics.counter("anomaly.stale_reads")
        self._anomaly_ryw = metrics.counter("anomaly.read_your_writes")
        store.subscribe(self._appended)
        node.on_crash(self._on_crash)
        node.on_recover(self._on_recover)

    def __repr__(self) -> str:
        return f"ReadModel({self.name!r} on {self.node.name})"

    @property
    def address(self) -> str:
        """The query endpoint."""
        return f"{self.name}.query"

    def query(
        self,
        caller: Caller,
        key: Any,
        *,
        min_position: int | None = None,
        policy: Pipeline | Sequence[Policy] | None = None,
        timeout_s: float | None = None,
    ) -> Generator[simpy.Event, Any, View]:
        """Read the view of ``key``."""
        view: View = yield from caller.call(
            self.address, Query(key, min_position), policy=policy, timeout_s=timeout_s
        )
        return view

    # -- the projection -------------------------------------------------------------------

    def _appended(self, event: RecordedEvent) -> None:
        self._queue.append(event)
        key = self.key_of(event)
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = self._waiting[key] = deque()
        waiting.append(event.appended_at)
        if self.node.up:
            self._schedule(event, event.appended_at)

    def _schedule(self, event: RecordedEvent, from_time: float) -> None:
        now = self.world.env.now
        self._due = max(self._due, from_time + self._lag())
        self.world.schedule(self._due - now, self._apply, (event, self._generation))

    def _apply(self, arg: tuple[RecordedEvent, int]) -> None:
        event, generation = arg
        if generation != self._generation:
            return  # scheduled before a crash; recovery scheduled it again
        head = self._queue.popleft()
        assert head is event, "the projection applies in log order"
        key = self.key_of(event)
        view, _ = self.views.get(key, (self.initial, 0))
        self.views[key] = (self.project(view, event), event.position)
        waiting = self._waiting[key]
        waiting.popleft()
        if not waiting:
            del self._waiting[key]
        self.position = event.position
        self.applied.value += 1
        self.projection_lag.record(self.world.env.now - event.appended_at)
        if self._watchers:
            self._wake()

    def _on_crash(self) -> None:
        self._generation += 1
        self._watchers.clear()  # the queries waiting on them died with the node

    def _on_recover(self) -> None:
        now = self.world.env.now
        self._due = now
        for event in self._queue:
            self._schedule(event, now)

    # -- queries --------------------------------------------------------------------------

    def _answer(self, key: Any, min_position: int | None) -> View:
        self.queries.value += 1
        now = self.world.env.now
        waiting = self._waiting.get(key)
        staleness = now - waiting[0] if waiting else 0.0
        self.staleness.record(staleness)
        if staleness > 0.0:
            self.stale_reads.value += 1
            self._anomaly_stale.value += 1
        if min_position is not None and self.position < min_position:
            self.ryw_violations.value += 1
            self._anomaly_ryw.value += 1
        view, position = self.views.get(key, (self.initial, 0))
        return View(view, position, staleness)

    def _query(self, _: Context, query: Query) -> View:
        return self._answer(query.key, query.min_position)

    def _query_waiting(self, ctx: Context, query: Query) -> Generator[simpy.Event, Any, View]:
        wanted = query.min_position
        if wanted is not None and self.position < wanted:
            assert self.wait_s is not None
            reached = self.world.env.event()
            self._watchers.append((wanted, reached))
            yield reached | ctx.sleep(self.wait_s)
        return self._answer(query.key, wanted)

    def _wake(self) -> None:
        keep = []
        for wanted, event in self._watchers:
            if self.position >= wanted:
                if not event.triggered:
                    event.succeed()
            else:
                keep.append((wanted, event))
        self._watchers = keep


def _stream_of(event: RecordedEvent) -> Any:
    return event.stream
