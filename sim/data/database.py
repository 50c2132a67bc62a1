"""Databases: a service on a node that stores versioned rows, with a pool of connections.

A :class:`Database` is a :class:`~sim.service.Service` whose workers are its connections:
operations beyond ``connections`` queue (and may be rejected by ``queue_limit`` or
``max_wait_s``), so every user of one database shares its capacity. Each operation has a
service-time distribution taken from a :class:`DatabaseProfile`; the operation's effect
happens atomically at the end of its service time, so an operation cut short by a crash did
not happen.

Rows are versioned. A write may carry ``expected_version`` (compare-and-set: a mismatch
answers ``error`` with reason ``"conflict"``) or ``read_version`` (the version the writer
based its new value on, without a check: if the row has moved on, the write silently
overwrites an update its writer never saw, a *lost update*, counted). Writing ``None`` deletes
(a tombstone keeps the version increasing, so compare-and-set has no ABA problem).

Failures, as the real systems have them:

- a crash of the node refuses new operations, loses those in flight, and loses acknowledged
  writes according to the profile's durability: ``"sync"`` loses none (PostgreSQL with
  ``synchronous_commit=on``), ``"periodic"`` loses those since the last flush (Redis with
  ``appendfsync everysec``: up to about a second), ``"volatile"`` loses everything (a cache
  without persistence);
- an optional asynchronous replica on another node applies each committed write after a
  replication lag, in commit order; reads sent to it may be stale, and are counted.

Metrics (``db.<name>.*``): ``reads``, ``writes``, ``scans``, ``conflicts``, ``lost_updates``,
``lost_writes`` (acknowledged writes lost in crashes), ``stale_reads`` (replica reads behind
the primary), ``replication_lag`` (histogram, seconds from commit to replica apply). Lost
updates, lost writes and stale reads also count in ``anomaly.lost_updates`` and
``anomaly.stale_reads``. The connection pool reports under ``pool.<name>.*``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from sim import check
from sim.call import Caller, CallFailed, Pipeline, Policy
from sim.distributions import Distribution, LogNormal
from sim.errors import ConfigError
from sim.service import Context, Service, ServiceError

if TYPE_CHECKING:
    import simpy

    from sim.node import Node
    from sim.world import World

__all__ = [
    "MONGODB",
    "POSTGRESQL",
    "PROFILES",
    "REDIS",
    "Apply",
    "Database",
    "DatabaseProfile",
    "Put",
    "Row",
    "Scan",
    "is_conflict",
]

Durability = Literal["sync", "periodic", "volatile"]
PolicyArg = Pipeline | Sequence[Policy] | None
CONFLICT = "conflict"


@dataclass(frozen=True)
class DatabaseProfile:
    """Server-side service times and failure behaviour of one kind of database.

    Attributes:
        name: the profile's name.
        read: a point read by key, seconds (network excluded: links add it).
        write: a single-row write, committed, seconds.
        scan: a prefix (range) query, seconds.
        connections: operations the database executes at once.
        durability: what a crash loses: ``"sync"``, ``"periodic"`` or ``"volatile"``.
        flush_interval_s: for ``"periodic"``, seconds between flushes to disk.
    """

    name: str
    read: Distribution
    write: Distribution
    scan: Distribution
    connections: int
    durability: Durability = "sync"
    flush_interval_s: float = 1.0


# The figures below are order-of-magnitude defaults for a small, memory-resident working set
# on SSD, server-side, in one data centre; they are not measurements. Replace them with your
# own when you have them.
#
# PostgreSQL: an indexed point SELECT takes well under a millisecond; a committed single-row
# write waits for the WAL flush (synchronous_commit=on, the default), a few milliseconds on
# SSD. 10 connections is HikariCP's default maximumPoolSize, the usual application pool in
# front of it (the server's max_connections defaults to 100).
POSTGRESQL = DatabaseProfile(
    "postgresql",
    read=LogNormal.from_median_p99(0.0005, 0.005),
    write=LogNormal.from_median_p99(0.002, 0.020),
    scan=LogNormal.from_median_p99(0.005, 0.050),
    connections=10,
    durability="sync",
)
# MongoDB: reads by _id are sub-millisecond; writes acknowledge with writeConcern "majority"
# (the default since 5.0), which adds a replication round trip. The drivers' maxPoolSize
# defaults to 100.
MONGODB = DatabaseProfile(
    "mongodb",
    read=LogNormal.from_median_p99(0.0004, 0.004),
    write=LogNormal.from_median_p99(0.003, 0.030),
    scan=LogNormal.from_median_p99(0.004, 0.040),
    connections=100,
    durability="sync",
)
# Redis: commands run one at a time on a single thread (hence 1 connection: a slow command
# delays every client), each in tens of microseconds; with AOF and appendfsync everysec a
# crash loses up to one second of acknowledged writes.
REDIS = DatabaseProfile(
    "redis",
    read=LogNormal.from_median_p99(0.00002, 0.0002),
    write=LogNormal.from_median_p99(0.00003, 0.0003),
    scan=LogNormal.from_median_p99(0.0005, 0.005),
    connections=1,
    durability="periodic",
    flush_interval_s=1.0,
)
PROFILES: dict[str, DatabaseProfile] = {p.name: p for p in (POSTGRESQL, MONGODB, REDIS)}
_DURABILITIES = ("sync", "periodic", "volatile")
# Async replication is usually milliseconds behind and now and then a second or more.
DEFAULT_REPLICATION_LAG = LogNormal.from_median_p99(0.010, 1.0)


class Row(NamedTuple):
    """A row as read: its value (None if absent or deleted) and version (0 if never written)."""

    value: Any
    version: int


class Put(NamedTuple):
    """Write ``value`` (None deletes) at ``key``.

    ``expected_version``: compare-and-set; ``read_version``: the version the value was based
    on (no check, but a blind overwrite of a newer version is counted as a lost update).
    """

    key: Any
    value: Any
    expected_version: int | None = None
    read_version: int | None = None


class Apply(NamedTuple):
    """Atomic read-modify-write in one statement: the new value is ``fn(old value)``
    (``UPDATE stock SET n = n - 1 WHERE n > 0``). ``fn`` may raise ServiceError to refuse."""

    key: Any
    fn: Callable[[Any], Any]


class Scan(NamedTuple):
    """Every live row whose key is a tuple beginning with ``prefix``."""

    prefix: tuple[Any, ...]


class _Stored(NamedTuple):
    value: Any
    version: int
    committed_at: float  # true time


_ABSENT = _Stored(None, 0, 0.0)


def is_conflict(failure: CallFailed) -> bool:
    """True if a failed database call was a compare-and-set conflict."""
    return failure.reason == CONFLICT


class Database:
    """A database service on ``node``.

    Args:
        world: the run.
        name: the service's name; endpoints are ``<name>.get``, ``.put``, ``.apply``,
            ``.scan`` (and ``<name>.replica.get`` with a replica).
        node: where the primary runs.
        profile: a :class:`DatabaseProfile` or the name of one in :data:`PROFILES`.
        connections: overrides the profile's connection count.
        queue_limit, max_wait_s: limits of the queue for a connection (see Service).
        replica_node: where an asynchronous read replica runs (None: no replica).
        replication_lag: delay from commit to replica apply (default: lognormal, median
            10 ms, p99 1 s).
        error_probability: chance that any operation answers ``error`` (a flaky database).

    Attributes:
        service: the primary's service; replica: the replica's service or None.
        rows: the primary's rows (inspect in tests; models go through calls).
    """

    def __init__(
        self,
        world: World,
        name: str,
        node: Node,
        *,
        profile: DatabaseProfile | str = POSTGRESQL,
        connections: int | None = None,
        queue_limit: int | None = None,
        max_wait_s: float | None = None,
        replica_node: Node | None = None,
        replication_lag: Distribution | None = None,
        error_probability: float = 0.0,
    ):
        self.profile = _profile(profile)
        self.world = world
        self.name = name
        self.node = node
        capacity = self.profile.connections if connections is None else connections
        check.positive_int(f"{name}.connections", capacity)
        if replication_lag is not None and replica_node is None:
            raise ConfigError.single(
                f"{name}.replication_lag", replication_lag, "a replica_node to replicate to"
            )
        if replica_node is node:
            raise ConfigError.single(
                f"{name}.replica_node", replica_node.name, "a node other than the primary's"
            )
        self.service = Service(
            world, name, node, workers=capacity, queue_limit=queue_limit, max_wait_s=max_wait_s
        )
        profile_ = self.profile
        self.service.endpoint(
            "get", profile_.read, handler=self._get, error_probability=error_probability
        )
        for operation, handler in (("put", self._put), ("apply", self._apply)):
            self.service.endpoint(
                operation, profile_.write, handler=handler, error_probability=error_probability
            )
        self.service.endpoint(
            "scan", profile_.scan, handler=self._scan, error_probability=error_probability
        )
        self.rows: dict[Any, _Stored] = {}
        metrics = world.metrics
        prefix = f"db.{name}"
        self.reads = metrics.counter(f"{prefix}.reads")
        self.writes = metrics.counter(f"{prefix}.writes")
        self.scans = metrics.counter(f"{prefix}.scans")
        self.conflicts = metrics.counter(f"{prefix}.conflicts")
        self.lost_updates = metrics.counter(f"{prefix}.lost_updates")
        self.lost_writes = metrics.counter(f"{prefix}.lost_writes")
        self.stale_reads = metrics.counter(f"{prefix}.stale_reads")
        self.replication_lag = metrics.histogram(f"{prefix}.replication_lag")
        self._anomaly_lost = metrics.counter("anomaly.lost_updates")
        self._anomaly_stale = metrics.counter("anomaly.stale_reads")
        # Durability: writes not yet on disk, each with the row it replaced (undone at a crash).
        self._unflushed: list[tuple[Any, _Stored | None]] = []
        self._flush_pending = False
        self._since_crash = 0  # writes since the last crash (what a volatile store loses)
        node.on_crash(self._on_crash)
        self.replica: Service | None = None
        if replica_node is not None:
            self._start_replica(replica_node, replication_lag or DEFAULT_REPLICATION_LAG)

    def __repr__(self) -> str:
        return f"Database({self.name!r}, {self.profile.name}, on {self.node.name})"

    # -- addresses and client calls -------------------------------------------------------

    def address(self, operation: str) -> str:
        """The endpoint address of ``operation`` (``"get"``, ``"put"``, ``"apply"``, ``"scan"``)."""
        return f"{self.name}.{operation}"

    @property
    def read_address(self) -> str:
        """Where reads go: the replica's ``get`` if there is a replica, else the primary's."""
        return f"{self.name}.replica.get" if self.replica is not None else self.address("get")

    def get(
        self,
        caller: Caller,
        key: Any,
        *,
        replica: bool = False,
        policy: PolicyArg = None,
        timeout_s: float | None = None,
    ) -> Generator[simpy.Event, Any, Row]:
        """Read ``key`` (from the replica if ``replica``): ``row = yield from db.get(ctx, k)``."""
        target = self.read_address if replica else self.address("get")
        row: Row = yield from caller.call(target, key, policy=policy, timeout_s=timeout_s)
        return row

    def put(
        self,
        caller: Caller,
        key: Any,
        value: Any,
        *,
        expected_version: int | None = None,
        read_version: int | None = None,
        policy: PolicyArg = None,
        timeout_s: float | None = None,
    ) -> Generator[simpy.Event, Any, int]:
        """Write ``key``; returns the new version. A conflict raises CallError("conflict")."""
        version: int = yield from caller.call(
            self.address("put"), Put(key, value, expected_version, read_version),
            policy=policy, timeout_s=timeout_s,
        )  # fmt: skip
        return version

    def apply(
        self,
        caller: Caller,
        key: Any,
        fn: Callable[[Any], Any],
        *,
        policy: PolicyArg = None,
        timeout_s: float | None = None,
    ) -> Generator[simpy.Event, Any, Row]:
        """Atomically replace the value of ``key`` by ``fn(value)``; returns the new row."""
        row: Row = yield from caller.call(
            self.address("apply"), Apply(key, fn), policy=policy, timeout_s=timeout_s
        )
        return row

    def scan(
        self,
        caller: Caller,
        prefix: tuple[Any, ...],
        *,
        policy: PolicyArg = None,
        timeout_s: float | None = None,
    ) -> Generator[simpy.Event, Any, list[tuple[Any, Row]]]:
        """Every live row whose tuple key starts with ``prefix``, as (key, row) pairs."""
        rows: list[tuple[Any, Row]] = yield from caller.call(
            self.address("scan"), Scan(prefix), policy=policy, timeout_s=timeout_s
        )
        return rows

    def peek(self, key: Any) -> Row:
        """The primary's row now, without a call (for tests and measurements)."""
        stored = self.rows.get(key, _ABSENT)
        return Row(stored.value, stored.version)

    # -- the server's operations (run at the end of their service time) -------------------

    def _get(self, _: Context, key: Any) -> Row:
        self.reads.value += 1
        stored = self.rows.get(key, _ABSENT)
        return Row(stored.value, stored.version)

    def _put(self, _: Context, put: Put) -> int:
        current = self.rows.get(put.key, _ABSENT)
        if put.expected_version is not None and put.expected_version != current.version:
            self.conflicts.value += 1
            raise ServiceError(CONFLICT)
        if put.read_version is not None and put.read_version != current.version:
            self.lost_updates.value += 1  # the write overwrites a version its writer never saw
            self._anomaly_lost.value += 1
        return self._commit(put.key, current, put.value)

    def _apply(self, _: Context, apply: Apply) -> Row:
        current = self.rows.get(apply.key, _ABSENT)
        value = apply.fn(current.value)  # may raise ServiceError: nothing is written
        version = self._commit(apply.key, current, value)
        return Row(value, version)

    def _scan(self, _: Context, scan: Scan) -> list[tuple[Any, Row]]:
        self.scans.value += 1
        prefix = scan.prefix
        size = len(prefix)
        return [
            (key, Row(stored.value, stored.version))
            for key, stored in self.rows.items()
            if stored.value is not None and isinstance(key, tuple) and key[:size] == prefix
        ]

    def _commit(self, key: Any, current: _Stored, value: Any) -> int:
        self.writes.value += 1
        now = self.world.env.now
        stored = _Stored(value, current.version + 1, now)
        self.rows[key] = stored
        self._since_crash += 1
        if self.profile.durability == "periodic":
            self._unflushed.append((key, current if current is not _ABSENT else None))
            if not self._flush_pending:
                self._flush_pending = True
                delay = self.node.clock.true_delay(self.profile.flush_interval_s)
                self.world.schedule(delay, self._flush, self.node.epoch)
        if self.replica is not None:
            self._ship(key, stored)
        return stored.version

    # -- durability -----------------------------------------------------------------------

    def _flush(self, epoch: int) -> None:
        if epoch != self.node.epoch:
            return  # the crash already dealt with these writes
        self._unflushed.clear()
        self._flush_pending = False

    def _on_crash(self) -> None:
        durability = self.profile.durability
        if durability == "periodic":
            lost = len(self._unflushed)
            for key, previous in reversed(self._unflushed):
                if previous is None:
                    del self.rows[key]
                else:
                    self.rows[key] = previous
            self._unflushed.clear()
            self._flush_pending = False
        elif durability == "volatile":
            lost = self._since_crash
            self.rows.clear()
        else:
            lost = 0
        self._since_crash = 0
        self.lost_writes.value += lost
        self._anomaly_lost.value += lost

    # -- the replica ----------------------------------------------------------------------

    def _start_replica(self, node: Node, lag: Distribution) -> None:
        if not isinstance(lag, Distribution):
            raise ConfigError.single(f"{self.name}.replication_lag", lag, "a distribution")
        self.replica = Service(
            self.world, f"{self.name}.replica", node, workers=self.service.pool.capacity
        )
        self.replica.endpoint("get", self.profile.read, handler=self._replica_get)
        self.replica_rows: dict[Any, _Stored] = {}
        self._lag = self.world.sampler(f"db.{self.name}.replication_lag", lag)
        self._last_apply = 0.0
        self._backlog: deque[tuple[Any, _Stored]] = deque()
        node.on_recover(self._drain_backlog)

    def _ship(self, key: Any, stored: _Stored) -> None:
        # In commit order: a write is never applied before one committed earlier (WAL order).
        now = self.world.env.now
        self._last_apply = max(self._last_apply, now + self._lag())
        self.world.schedule(self._last_apply - now, self._replicate, (key, stored))

    def _replicate(self, entry: tuple[Any, _Stored]) -> None:
        assert self.replica is not None
        if not self.replica.node.up or self._backlog:
            self._backlog.append(entry)  # the replica catches up when it is back
            return
        self._apply_on_replica(entry)

    def _drain_backlog(self) -> None:
        while self._backlog:
            self._apply_on_replica(self._backlog.popleft())

    def _apply_on_replica(self, entry: tuple[Any, _Stored]) -> None:
        key, stored = entry
        self.replica_rows[key] = stored
        self.replication_lag.record(self.world.env.now - stored.committed_at)

    def _replica_get(self, _: Context, key: Any) -> Row:
        self.reads.value += 1
        stored = self.replica_rows.get(key, _ABSENT)
        if stored.version < self.rows.get(key, _ABSENT).version:
            self.stale_reads.value += 1
            self._anomaly_stale.value += 1
        return Row(stored.value, stored.version)


def _profile(profile: DatabaseProfile | str) -> DatabaseProfile:
    if isinstance(profile, DatabaseProfile):
        chosen = profile
    elif isinstance(profile, str) and profile in PROFILES:
        chosen = PROFILES[profile]
    else:
        raise ConfigError.single(
            "profile", profile, f"a DatabaseProfile or one of {sorted(PROFILES)}"
        )
    if chosen.durability not in _DURABILITIES:
        raise ConfigError.single(
            f"{chosen.name}.durability", chosen.durability, f"one of {list(_DURABILITIES)}"
        )
    check.positive(f"{chosen.name}.flush_interval_s", chosen.flush_interval_s)
    for field in ("read", "write", "scan"):
        if not isinstance(getattr(chosen, field), Distribution):
            raise ConfigError.single(
                f"{chosen.name}.{field}", getattr(chosen, field), "a distribution"
            )
    return chosen
