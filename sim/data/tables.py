"""Tables: one owner's share of a database, and the choice between one database per
service and one shared database.

Services reach their data through a :class:`Table`, never a database directly, so a model
switches layouts with one flag of :func:`database_tables` and no change to service code. The
shared layout couples its users, which is what it is there to measure: one pool of
connections (contention raises every user's latency) and one node (its outage takes every
user down).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any

from sim.data.database import Database, Row
from sim.errors import ConfigError

if TYPE_CHECKING:
    import simpy

    from sim.call import Caller
    from sim.world import World

__all__ = ["Table", "database_tables"]


class Table:
    """One owner's view of a database: its keys live under ``(namespace, key)``.

    Services use tables, not databases, so that a model can switch between one database
    per service and a shared database without touching service code (see
    :func:`database_tables`). The client methods mirror :class:`Database`'s.
    """

    def __init__(self, database: Database, namespace: str):
        self.database = database
        self.namespace = namespace

    def __repr__(self) -> str:
        return f"Table({self.namespace!r} in {self.database.name!r})"

    def get(self, caller: Caller, key: Any, **options: Any) -> Generator[simpy.Event, Any, Row]:
        """Read ``key``."""
        return self.database.get(caller, (self.namespace, key), **options)

    def put(
        self, caller: Caller, key: Any, value: Any, **options: Any
    ) -> Generator[simpy.Event, Any, int]:
        """Write ``key``."""
        return self.database.put(caller, (self.namespace, key), value, **options)

    def apply(
        self, caller: Caller, key: Any, fn: Callable[[Any], Any], **options: Any
    ) -> Generator[simpy.Event, Any, Row]:
        """Atomically replace ``key``'s value by ``fn(value)``."""
        return self.database.apply(caller, (self.namespace, key), fn, **options)

    def scan(
        self, caller: Caller, prefix: tuple[Any, ...], **options: Any
    ) -> Generator[simpy.Event, Any, list[tuple[Any, Row]]]:
        """This table's live rows whose tuple key starts with ``prefix``."""
        rows = yield from self.database.scan(caller, (self.namespace,), **options)
        size = len(prefix)
        return [
            (key[1], row)
            for key, row in rows
            if isinstance(key[1], tuple) and key[1][:size] == prefix
        ]

    def peek(self, key: Any) -> Row:
        """The row now, without a call (tests and measurements)."""
        return self.database.peek((self.namespace, key))


def database_tables(
    world: World,
    owners: Iterable[str],
    *,
    shared: bool,
    shared_name: str = "shared_db",
    **options: Any,
) -> dict[str, Table]:
    """A table for each owner: in one shared database, or each in a database of its own.

    Args:
        world: the run.
        owners: service names.
        shared: True for one database ``shared_name`` on a node of that name; False for a
            database ``<owner>_db`` on a node of that name per owner.
        options: passed to every :class:`Database` (profile, connections, ...).

    The shared layout couples its users: one pool of connections (contention raises every
    user's latency) and one node (its outage takes every user down).
    """
    names = list(owners)
    if not names or len(set(names)) != len(names):
        raise ConfigError.single("owners", names, "one or more distinct service names")
    if shared:
        database = Database(world, shared_name, world.node(shared_name), **options)
        return {owner: Table(database, owner) for owner in names}
    tables = {}
    for owner in names:
        db_name = f"{owner}_db"
        tables[owner] = Table(Database(world, db_name, world.node(db_name), **options), owner)
    return tables
