"""The orchestrator's persistence and its shortcuts for a service that owns its saga: one
write per state transition, a log of the model's own (:class:`SagaLog`), local steps and
starting a saga with a function call. The timings assume the quiet 1 ms network of
``test_saga.quiet_shop``."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from sim import Caller, Constant, Crash, Link, Outcome, Result, Timeout, World, inject
from sim.data import Database, SagaOrchestrator, SagaStep
from sim.data.participant import StepRequest
from sim.data.saga import SagaRecord, StoreLog
from sim.service import Context, Service

from .shop import build_shop, check_saga_invariants
from .test_saga import FAST_DB, keys_of, quiet_shop, start


def test_the_last_step_and_the_commit_are_one_write() -> None:
    world, shop, orchestrator = quiet_shop()
    shop.ledger.orders[1] = {"qty": 1, "amount": 20}
    start(world, orchestrator, shop.ledger.orders[1], key=1)
    world.run(10)
    assert orchestrator.tracker.outcomes == {1: "committed"}
    assert isinstance(orchestrator.store, Database)
    # created, reserved, charged, shipped-and-committed: 4 writes for 3 steps
    assert orchestrator.store.writes.value == len(orchestrator.steps) + 1


class CountingLog(StoreLog):
    """The default log, counting what the orchestrator asks of it."""

    def __init__(self, database: Database):
        super().__init__(database, "order", 0.3)
        self.writes: list[SagaRecord] = []
        self.scans = 0

    def write(self, caller: Caller, record: SagaRecord, version: int) -> Generator[Any, Any, int]:
        self.writes.append(record)
        saved = yield from super().write(caller, record, version)
        return saved

    def scan(self, caller: Caller) -> Generator[Any, Any, list[tuple[SagaRecord, int]]]:
        self.scans += 1
        found = yield from super().scan(caller)
        return found


def owned_saga(world: World) -> tuple[Any, SagaOrchestrator, CountingLog, list[Result]]:
    """A shop whose ``orders`` service owns its saga: reserve and charge are calls, ship is
    local (the shipping participant's function, no call), the saga is started in-process
    by ``orders.place`` and kept in a CountingLog."""
    world.network.set_default(Link(Constant(0.001)))
    shop = build_shop(world)
    node = world.node("orchestrator")
    steps = [
        SagaStep(p.name, p.action_address, p.compensation_address, policy=[Timeout(0.3)],
                 compensation_policy=[Timeout(0.3)])
        for p in (shop.inventory, shop.payment)
    ]  # fmt: skip
    shipping = shop.shipping

    def ship(request: StepRequest) -> Any:
        return shipping.act(request.key, request.data)

    def unship(request: StepRequest) -> None:
        shipping.compensate(request.key, request.data)

    steps.append(SagaStep("ship", ship, unship))
    log = CountingLog(Database(world, "saga_db", world.node("saga_db"), profile=FAST_DB))
    orchestrator = SagaOrchestrator(world, "order", node, steps, log=log, wait=False)
    began: list[Any] = []
    orchestrator.on_begin = lambda record: began.append(record.id)
    orders = Service(world, "orders", node, workers=8)

    def place(ctx: Context, order: Any) -> Generator[Any, Any, str]:
        reply = yield from orchestrator.begin(ctx.key, order)
        return reply

    orders.endpoint("place", Constant(0.0), handler=place)
    shop.ledger.orders[1] = {"qty": 1, "amount": 20}
    results: list[Result] = []
    Caller(world, world.node("client")).start("orders.place", shop.ledger.orders[1],
                                              results.append, key=1)  # fmt: skip
    return (shop, began), orchestrator, log, results


def test_a_saga_started_in_process_with_a_local_step_commits() -> None:
    world = World()
    (shop, began), orchestrator, log, results = owned_saga(world)
    world.run(10)
    assert [(r.outcome, r.value) for r in results] == [(Outcome.OK, "accepted")]
    assert orchestrator.tracker.outcomes == {1: "committed"} and began == [1]
    assert world.metrics.counter("service.order.received").value == 0  # no start call
    assert world.metrics.counter("service.shipping.received").value == 0  # ship was local
    assert shop.shipping.effects.count(("order", 1, "ship")) == 1
    assert len(log.writes) == 4  # created, reserved, charged, shipped-and-committed
    check_saga_invariants(shop, orchestrator.tracker.outcomes, keys_of)


def test_after_a_crash_a_saga_resumes_from_a_log_of_the_models_own() -> None:
    world = World()
    (shop, began), orchestrator, log, _ = owned_saga(world)
    # after the reserve answered (~0.008), before its progress was saved
    inject(world, Crash("orchestrator"), at_s=0.009, duration_s=5.0)
    world.run(30)
    assert log.scans == 1 and world.metrics.counter("saga.order.resumed").value == 1
    assert began == [1, 1]  # created, then resumed: the hook hears of both
    assert orchestrator.tracker.outcomes == {1: "committed"}
    assert shop.inventory.effects.count(("order", 1, "reserve")) == 1
    assert world.metrics.counter("service.inventory.received").value == 2  # sent again
    check_saga_invariants(shop, orchestrator.tracker.outcomes, keys_of)
