"""Databases: versions and compare-and-set, lost updates, replicas and stale reads, what a
crash loses per profile, pool contention, and the cost of sharing one database."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sim import Caller, CallError, Constant, Exponential, Link, Outcome, Service, World
from sim.data import (
    POSTGRESQL,
    REDIS,
    Database,
    DatabaseProfile,
    Row,
    database_tables,
    is_conflict,
)
from tests.validation.theory import mmc_sojourn


def make(world: World, **options: Any) -> tuple[Database, Caller]:
    world.network.set_default(Link(Constant(0.001)))
    fixed = DatabaseProfile("fixed", Constant(0.002), Constant(0.004), Constant(0.010), 2)
    options.setdefault("profile", fixed)
    database = Database(world, "db", world.node("dbhost"), **options)
    return database, Caller(world, world.node("app"))


def run(world: World, script: Any, until: float = 60.0) -> None:
    world.env.process(script())
    world.run(until)


def test_reads_writes_versions_and_compare_and_set() -> None:
    world = World()
    db, app = make(world)
    log: list[object] = []

    def script():  # type: ignore[no-untyped-def]
        log.append((yield from db.get(app, "k")))
        log.append((yield from db.put(app, "k", "a")))
        log.append((yield from db.put(app, "k", "b", expected_version=1)))
        try:
            yield from db.put(app, "k", "c", expected_version=1)
        except CallError as error:
            log.append(("conflict", is_conflict(error), round(world.now, 9)))
        log.append((yield from db.apply(app, "k", lambda v: v + "!")))
        log.append((yield from db.put(app, "k", None)))  # delete: a tombstone
        log.append((yield from db.get(app, "k")))

    run(world, script)
    # each call: 1 ms there, the operation's service time, 1 ms back
    assert log == [
        Row(None, 0),
        1,
        2,
        ("conflict", True, round(0.004 + 2 * 0.006 + 0.006, 9)),
        Row("b!", 3),
        4,
        Row(None, 4),
    ]
    assert world.metrics.counter("db.db.conflicts").value == 1


def increment_twice(cas: bool) -> tuple[World, Database, list[str]]:
    """Two clients read the same row, then each writes its increment."""
    world = World()
    db, app = make(world)
    outcomes: list[str] = []

    def writer(delta: int):  # type: ignore[no-untyped-def]
        row = yield from db.get(app, "stock")
        option = {"expected_version": row.version} if cas else {"read_version": row.version}
        try:
            yield from db.put(app, "stock", (row.value or 0) + delta, **option)
            outcomes.append("written")
        except CallError as error:
            outcomes.append(error.reason or "")

    world.env.process(writer(5))
    world.env.process(writer(7))  # both read version 0 before either writes
    world.run(10)
    return world, db, outcomes


def test_a_blind_overwrite_is_a_lost_update_and_compare_and_set_turns_it_into_a_conflict() -> None:
    for use_cas in (False, True):
        world, db, outcomes = increment_twice(use_cas)
        lost = world.metrics.counter("anomaly.lost_updates").value
        if use_cas:
            assert sorted(outcomes) == ["conflict", "written"] and lost == 0
        else:
            assert outcomes == ["written", "written"] and lost == 1
            assert db.peek("stock").value in (5, 7)  # one increment vanished


def test_replica_reads_are_stale_until_the_replication_lag_has_passed() -> None:
    world = World()
    db, app = make(world, replica_node=world.node("replica"), replication_lag=Constant(0.05))
    log: list[tuple[float, Row]] = []

    def script():  # type: ignore[no-untyped-def]
        yield from db.put(app, "k", "v")  # committed at 0.005, reaches the replica at 0.055
        for pause in (0.0, 0.1):
            yield world.env.timeout(pause)
            row = yield from db.get(app, "k", replica=True)
            log.append((round(world.now, 9), row))

    run(world, script)
    assert log == [(0.01, Row(None, 0)), (0.114, Row("v", 1))]
    assert world.metrics.counter("db.db.stale_reads").value == 1
    assert world.metrics.counter("anomaly.stale_reads").value == 1
    assert db.replication_lag.mean() == pytest.approx(0.05)


def test_a_replica_that_was_down_catches_up_in_commit_order() -> None:
    world = World()
    db, app = make(world, replica_node=world.node("replica"), replication_lag=Constant(0.05))
    replica = world.nodes["replica"]

    def script():  # type: ignore[no-untyped-def]
        replica.crash()
        for value in ("a", "b", "c"):
            yield from db.put(app, "k", value)
        yield world.env.timeout(1.0)
        assert db.replica_rows == {}
        replica.recover()
        assert db.replica_rows["k"].value == "c"
        assert db.replica_rows["k"].version == 3

    run(world, script)
    assert db.replication_lag.count == 3


@pytest.mark.parametrize(
    ("durability", "lost", "value"),
    [("sync", 0, "late"), ("periodic", 1, "early"), ("volatile", 2, None)],
)
def test_what_a_crash_loses_depends_on_durability(
    durability: str, lost: int, value: str | None
) -> None:
    world = World()
    profile = DatabaseProfile(
        "p", Constant(0.002), Constant(0.004), Constant(0.01), 2,
        durability=durability, flush_interval_s=1.0,  # type: ignore[arg-type]
    )  # fmt: skip
    db, app = make(world, profile=profile)

    def script():  # type: ignore[no-untyped-def]
        yield from db.put(app, "k", "early")  # committed at 0.005, flushed at 1.005
        yield world.env.timeout(1.5)
        yield from db.put(app, "k", "late")  # committed at 1.510, would flush at 2.510
        db.node.crash()
        db.node.recover()

    run(world, script)
    assert db.peek("k").value == value
    assert world.metrics.counter("db.db.lost_writes").value == lost
    assert world.metrics.counter("anomaly.lost_updates").value == lost


def test_an_operation_cut_short_by_a_crash_does_not_happen() -> None:
    world = World()
    db, app = make(world)
    results = []
    app.start("db.put", ("k", "v", None, None), results.append, timeout_s=1.0)
    world.at(0.003, lambda _: db.node.crash())  # during the write's 4 ms
    world.at(0.004, lambda _: db.node.recover())
    world.run(5)
    assert [r.outcome for r in results] == [Outcome.TIMEOUT]
    assert db.peek("k") == Row(None, 0)


def test_operations_beyond_the_connections_wait_for_one() -> None:
    world = World()
    _, app = make(world)  # 2 connections, 2 ms reads
    ended: list[float] = []
    for _ in range(5):
        app.start("db.get", "k", lambda _: ended.append(round(world.now, 9)))
    world.run(1)
    # pairs are served back to back: 1 ms link + 2, 4, 6 ms + 1 ms link
    assert ended == [0.004, 0.004, 0.006, 0.006, 0.008]


def test_profiles_have_the_documented_shape() -> None:
    # Redis runs commands one at a time; PostgreSQL reads are faster than its durable writes.
    assert REDIS.connections == 1 and REDIS.durability == "periodic"
    assert POSTGRESQL.durability == "sync"
    assert POSTGRESQL.read.mean < POSTGRESQL.write.mean
    world = World()
    db = Database(world, "cache", world.node("c"), profile="redis")
    assert db.service.pool.capacity == 1


# -- shared database versus one per service --------------------------------------------------

OWNERS = ("orders", "payments", "inventory")


def shop(world: World, *, shared: bool, read_time: Any, connections: int) -> dict[str, Any]:
    """Three services, each reading its own table on every request."""
    profile = DatabaseProfile("exp", read_time, read_time, read_time, connections)
    tables = database_tables(world, OWNERS, shared=shared, profile=profile)
    for owner in OWNERS:
        service = Service(world, owner, world.node(owner), workers=10_000)
        table = tables[owner]

        def handle(ctx, payload, table=table):  # type: ignore[no-untyped-def]
            row = yield from table.get(ctx, "item", timeout_s=1.0)
            return row.version

        service.endpoint("get", None, handler=handle)
    return tables


def test_an_outage_of_the_shared_database_takes_down_every_service_that_uses_it() -> None:
    from sim import Crash, OpenWorkload, inject

    for shared in (True, False):
        world = World(seed=4)
        shop(world, shared=shared, read_time=Constant(0.001), connections=10)
        loads = {o: OpenWorkload(world, o, f"{o}.get", 20.0, stop_s=20.0) for o in OWNERS}
        inject(world, Crash("shared_db" if shared else "orders_db"), at_s=5.0, duration_s=10.0)
        world.run(25)
        failed = {o: loads[o].stats.outcomes[Outcome.ERROR].value for o in OWNERS}
        served = {o: loads[o].stats.outcomes[Outcome.OK].value for o in OWNERS}
        # Poisson(20/s) over a 10 s outage: ~200 failures per affected service (sd ~14).
        assert failed["orders"] > 150
        if shared:
            assert failed["payments"] > 150 and failed["inventory"] > 150
        else:
            assert failed["payments"] == 0 and failed["inventory"] == 0
        assert all(served[o] > 150 for o in OWNERS)  # they all work outside the outage


def test_pool_contention_in_a_shared_database_raises_the_other_services_latency() -> None:
    from sim import OpenWorkload

    # Two connections, exponential 10 ms reads. "payments" sends 30/s; "orders" 120/s.
    # Per service, payments' database is M/M/2 at 30/s; shared, it queues behind orders' load
    # too: M/M/2 at 150/s (rho = 0.75). Each layout's mean is checked against Erlang C with
    # a 99% confidence interval across replications, so the difference is the coupling.
    rates = {"orders": 120.0, "payments": 30.0, "inventory": 0.1}
    for shared in (False, True):
        means = []
        for replication in range(6):
            world = World(seed=11, replication=replication)
            shop(world, shared=shared, read_time=Exponential(0.010), connections=2)
            payments = None
            for owner, rate in rates.items():
                load = OpenWorkload(world, owner, f"{owner}.get", rate)
                if owner == "payments":
                    payments = load
            world.run(40, warmup_s=5)
            assert payments is not None
            means.append(payments.stats.latency.mean())
        centre = sum(means) / len(means)
        sd = math.sqrt(sum((m - centre) ** 2 for m in means) / (len(means) - 1))
        half_width = 4.032 * sd / math.sqrt(len(means))  # t(0.995, 5 d.f.)
        offered = sum(rates.values()) if shared else rates["payments"]
        expected = mmc_sojourn(offered, 0.010, 2)
        # The histogram's 1% relative accuracy adds a little on top of the sampling error.
        assert abs(centre - expected) <= half_width + 0.01 * expected, (shared, centre, expected)
    assert mmc_sojourn(150.1, 0.010, 2) > 2 * mmc_sojourn(30.0, 0.010, 2)
