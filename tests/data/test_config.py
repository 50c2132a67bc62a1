"""Bad configuration of any data block raises one clear error naming the parameter and the
value; the package's public names are exactly ``__all__``; nodes run recovery hooks."""

from __future__ import annotations

from typing import Any

import pytest

import sim.data
from sim import ConfigError, Constant, Service, World
from sim.data import (
    ChoreographedSaga,
    Database,
    DatabaseProfile,
    EventBus,
    EventStore,
    FanOut,
    Gateway,
    Participant,
    ReadModel,
    SagaOrchestrator,
    SagaStep,
    database_tables,
)


def bus(world: World) -> EventBus:
    return EventBus(world, "bus", world.node("broker"))


def consumer(world: World) -> str:
    Service(world, "c", world.node("c")).endpoint("on", Constant(0.0))
    return "c.on"


def participant(world: World) -> Participant:
    return Participant(Service(world, "inv", world.node("inv")), "reserve", print, print)


CASES: list[tuple[str, Any, str, str]] = [
    ("unknown profile", lambda w: Database(w, "db", w.node("n"), profile="oracle"),
     "profile", "'oracle'"),
    ("no connections", lambda w: Database(w, "db", w.node("n"), connections=0),
     "db.connections", "0"),
    ("lag without replica",
     lambda w: Database(w, "db", w.node("n"), replication_lag=Constant(1.0)),
     "db.replication_lag", "Constant"),
    ("replica on the primary", lambda w: Database(w, "db", w.node("n"), replica_node=w.node("n")),
     "db.replica_node", "'n'"),
    ("unknown durability",
     lambda w: Database(w, "db", w.node("n"), profile=DatabaseProfile(
         "p", Constant(0.1), Constant(0.1), Constant(0.1), 1, durability="sometimes")),  # type: ignore[arg-type]
     "p.durability", "'sometimes'"),
    ("owners repeated", lambda w: database_tables(w, ["a", "a"], shared=True), "owners", "'a'"),
    ("dedupe window", lambda w: EventBus(w, "bus", w.node("b"), dedupe_window_s=0),
     "bus.dedupe_window_s", "0"),
    ("ack timeout", lambda w: bus(w).subscribe("t", "g", consumer(w), ack_timeout_s=0),
     "t.g.ack_timeout_s", "0"),
    ("max deliveries", lambda w: bus(w).subscribe("t", "g", consumer(w), max_deliveries=0),
     "t.g.max_deliveries", "0"),
    ("concurrency", lambda w: bus(w).subscribe("t", "g", consumer(w), concurrency=-2),
     "t.g.concurrency", "-2"),
    ("no consumers", lambda w: bus(w).subscribe("t", "g", []), "t.g.consumers", "[]"),
    ("unknown consumer", lambda w: bus(w).subscribe("t", "g", "nope.on"), "target", "'nope.on'"),
    ("outage mode", lambda w: bus(w).publisher(w.node("p"), on_outage="drop"),  # type: ignore[arg-type]
     "on_outage", "'drop'"),
    ("buffer limit", lambda w: bus(w).publisher(w.node("p"), buffer_limit=0),
     "buffer_limit", "0"),
    ("snapshots without fold", lambda w: EventStore(w, "es", w.node("n"), snapshot_every=5),
     "es.snapshot_every", "5"),
    ("snapshot interval",
     lambda w: EventStore(w, "es", w.node("n"), fold=lambda s, e: s, snapshot_every=0),
     "es.snapshot_every", "0"),
    ("projection lag",
     lambda w: ReadModel(w, "rm", w.node("r"), EventStore(w, "es", w.node("n")),
                         lambda v, e: v, lag="fast"),  # type: ignore[arg-type]
     "rm.lag", "'fast'"),
    ("query wait",
     lambda w: ReadModel(w, "rm", w.node("r"), EventStore(w, "es", w.node("n")),
                         lambda v, e: v, wait_s=-1.0),
     "rm.wait_s", "-1.0"),
    ("no steps", lambda w: SagaOrchestrator(w, "order", w.node("o"), []), "order.steps", "()"),
    ("step repeated",
     lambda w: SagaOrchestrator(w, "order", w.node("o"),
                                [SagaStep("a", "x.y"), SagaStep("a", "x.z")]),
     "order.steps[1].name", "'a'"),
    ("step target", lambda w: SagaOrchestrator(w, "order", w.node("o"), [SagaStep("a", "x")]),
     "order.steps[0].action", "'x'"),
    ("stuck after",
     lambda w: SagaOrchestrator(w, "order", w.node("o"), [SagaStep("a", "x.y")],
                                stuck_after_s=0),
     "order.stuck_after_s", "0"),
    ("saga name",
     lambda w: ChoreographedSaga(w, "my.saga", bus(w), w.node("o"), []),
     "saga.name", "'my.saga'"),
    ("gateway route", lambda w: Gateway(w, "gw", w.node("g"), {"x": "c.on"}),  # type: ignore[dict-item]
     "gw.routes.x", "'c.on'"),
    ("empty fan-out", lambda w: Gateway(w, "gw", w.node("g"), {"x": FanOut({})}),
     "gw.routes.x.parts", "{}"),
    ("participant action",
     lambda w: Participant(Service(w, "inv", w.node("i")), "reserve", 42, print),  # type: ignore[arg-type]
     "inv.reserve.do", "42"),
]  # fmt: skip


@pytest.mark.parametrize(("make", "path", "value"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_configuration_names_the_parameter_and_the_value(make: Any, path: str, value: str):
    with pytest.raises(ConfigError) as error:
        make(World())
    message = str(error.value)
    assert len(message.splitlines()) == 1, message
    assert message.startswith(f"{path}: got "), message
    assert value in message, message


def test_the_public_names_are_exactly_all() -> None:
    exported = {name for name in dir(sim.data) if not name.startswith("_")}
    modules = {"bus", "choreography", "cqrs", "database", "eventstore", "gateway", "inbox"}
    modules |= {"participant", "publisher", "saga", "tables"}
    assert set(sim.data.__all__) == exported - modules


def test_a_node_runs_its_recovery_hooks_when_it_comes_back_up() -> None:
    world = World()
    node = world.node("n")
    log: list[tuple[str, float]] = []
    node.on_recover(lambda: log.append(("up", world.now)))
    world.at(1.0, lambda _: node.crash())
    world.at(2.0, lambda _: node.crash())  # a second hold: still down at 3
    world.at(3.0, lambda _: node.recover())
    world.at(4.0, lambda _: node.recover())
    world.at(5.0, lambda _: node.recover())  # nothing to release: no hook
    world.run(10)
    assert log == [("up", 4.0)]
    assert participant(World()).compensation_address == "inv.reserve_undo"
