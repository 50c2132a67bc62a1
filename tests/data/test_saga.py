"""The saga orchestrator: order of steps and compensations, retries until compensated,
uncertain steps, resuming after a crash, stuck sagas, and invariants over seeds and faults."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sim import (
    Caller,
    Constant,
    Crash,
    ErrorBurst,
    Link,
    Outcome,
    Result,
    Timeout,
    World,
    inject,
)
from sim.data import Database, DatabaseProfile, SagaOrchestrator, SagaStep

from .shop import (
    RetryOnce,
    Shop,
    build_shop,
    check_run,
    check_saga_invariants,
    fault_schedules,
    run_scenario,
)

FAST_DB = DatabaseProfile("fast", Constant(0.001), Constant(0.002), Constant(0.003), 8)


def orchestrate(
    world: World, shop: Shop, *, store: bool = True, policy: Any = None,
    compensation_timeout_s: float = 0.3, **options: Any,
) -> SagaOrchestrator:  # fmt: skip
    policy = [Timeout(0.3)] if policy is None else policy
    undo_policy = [Timeout(compensation_timeout_s)]
    steps = [
        SagaStep(p.name, p.action_address, p.compensation_address, policy=policy,
                 compensation_policy=undo_policy)
        for p in shop.participants
    ]  # fmt: skip
    database = Database(world, "saga_db", world.node("saga_db"), profile=FAST_DB) if store else None
    options.setdefault("compensation_retry_max_s", 2.0)
    return SagaOrchestrator(world, "order", world.node("orchestrator"), steps, store=database,
                            **options)  # fmt: skip


def quiet_shop(**options: Any) -> tuple[World, Shop, SagaOrchestrator]:
    """A shop on a clean 1 ms network, with an orchestrator built with ``options``."""
    world = World()
    world.network.set_default(Link(Constant(0.001)))
    shop = build_shop(world)
    return world, shop, orchestrate(world, shop, **options)


def keys_of(saga_id: Any) -> list[tuple[str, Any, str]]:
    return [("order", saga_id, step) for step in ("reserve", "charge", "ship")]


def start(world: World, orchestrator: SagaOrchestrator, order: dict[str, int], key: Any):
    results: list[Result] = []
    Caller(world, world.node("client")).start(orchestrator.address, order, results.append,
                                              key=key)  # fmt: skip
    return results


def test_a_saga_commits_its_steps_in_order() -> None:
    world, shop, orchestrator = quiet_shop()
    shop.ledger.orders[1] = {"qty": 2, "amount": 30}
    results = start(world, orchestrator, shop.ledger.orders[1], key=1)
    world.run(10)
    assert [(r.outcome, r.value) for r in results] == [(Outcome.OK, "committed")]
    assert shop.ledger.stock == 10_000 - 2 and shop.ledger.charged == 30
    assert shop.ledger.shipped == 2
    record = orchestrator.store.peek(("saga", "order", 1)).value  # type: ignore[union-attr]
    assert (record.state, record.done, record.compensated) == ("committed", (0, 1, 2), ())


def test_a_failed_step_compensates_the_done_steps_in_reverse_order() -> None:
    world = World()
    world.network.set_default(Link(Constant(0.001)))
    shop = build_shop(world)
    order_log: list[str] = []
    for participant in shop.participants:
        for suffix in ("", "_undo"):
            endpoint = participant.service.endpoints[participant.name + suffix]
            inner = endpoint.handler

            def logged(ctx, request, inner=inner, name=participant.name + suffix):  # type: ignore[no-untyped-def]
                order_log.append(name)
                return inner(ctx, request)

            endpoint.handler = logged
    orchestrator = orchestrate(world, shop)
    # shipping fails (no effect) and so does its first compensation; the retry 0.5 s later
    # finds the burst over
    inject(world, ErrorBurst("shipping", 1.0), at_s=0.0, duration_s=0.1)
    shop.ledger.orders[7] = {"qty": 1, "amount": 50}
    results = start(world, orchestrator, shop.ledger.orders[7], key=7)
    world.run(10)
    assert [(r.outcome, r.reason) for r in results] == [(Outcome.ERROR, "compensated")]
    # the injected error answers before the handler runs: shipping never logged an action,
    # and its compensation only left a tombstone
    assert order_log == ["reserve", "charge", "ship_undo", "charge_undo", "reserve_undo"]
    assert shop.shipping.states[("order", 7, "ship")] == "cancelled"
    assert shop.ledger.stock == 10_000 and shop.ledger.charged == shop.ledger.refunded == 50


def test_compensations_are_retried_until_they_succeed() -> None:
    world, shop, orchestrator = quiet_shop()
    shop.ledger.orders[1] = {"qty": 1, "amount": 95}  # declined by payment
    inject(world, Crash("inventory"), at_s=0.02, duration_s=10.0)  # before the release
    start(world, orchestrator, shop.ledger.orders[1], key=1)
    world.run(60)
    assert world.metrics.counter("saga.order.compensation_retries").value >= 3
    assert world.metrics.counter("saga.order.compensated").value == 1
    assert shop.ledger.stock == 10_000 and shop.ledger.released == 1


def test_a_step_that_timed_out_is_compensated_and_its_late_action_refused() -> None:
    world = World()
    world.network.set_default(Link(Constant(0.001)))
    # requests to payment take 0.35 s: the charge times out at 0.3 s, a refund waits 1 s
    world.network.set_link("orchestrator", "payment", Link(Constant(0.35)), both_ways=False)
    shop = build_shop(world)
    orchestrator = orchestrate(world, shop, policy=[Timeout(0.3)], compensation_timeout_s=1.0)
    shop.ledger.orders[1] = {"qty": 1, "amount": 20}
    start(world, orchestrator, shop.ledger.orders[1], key=1)
    world.run(10)
    # the charge ran (its reply came too late): the saga compensated it as uncertain
    assert shop.ledger.charged == 20 and shop.ledger.refunded == 20
    assert world.metrics.counter("saga.order.compensated").value == 1
    check_saga_invariants(shop, orchestrator.tracker.outcomes, keys_of)


def test_step_policies_compose_and_a_failed_step_leaves_a_tombstone() -> None:
    world, shop, orchestrator = quiet_shop(policy=[RetryOnce(), Timeout(0.3)])
    # The first shipping attempt is lost (a timeout: it may have happened); the retry (a
    # test double in the step's pipeline) is answered with an error.
    world.network.set_link("orchestrator", "shipping", Link(Constant(0.001), loss=1.0))
    world.at(0.2, lambda _: world.network.set_link("orchestrator", "shipping", Link()))
    inject(world, ErrorBurst("shipping", 1.0), at_s=0.0, duration_s=0.5)
    shop.ledger.orders[1] = {"qty": 1, "amount": 20}
    start(world, orchestrator, shop.ledger.orders[1], key=1)
    world.run(30)
    # shipping never acted: its compensation left a tombstone and undid nothing
    assert shop.shipping.states[("order", 1, "ship")] == "cancelled"
    assert world.metrics.counter("saga.order.compensations").value == 3
    check_saga_invariants(shop, orchestrator.tracker.outcomes, keys_of)
    assert orchestrator.tracker.outcomes == {1: "compensated"}


def test_after_a_crash_the_orchestrator_resumes_from_its_database() -> None:
    world, shop, orchestrator = quiet_shop()
    shop.ledger.orders[1] = {"qty": 1, "amount": 20}
    start(world, orchestrator, shop.ledger.orders[1], key=1)
    # after the reserve answered (at ~0.006), before its progress was saved (~0.010)
    inject(world, Crash("orchestrator"), at_s=0.007, duration_s=5.0)
    world.run(30)
    assert world.metrics.counter("saga.order.resumed").value == 1
    assert orchestrator.tracker.outcomes == {1: "committed"}
    # the reserve was sent again after the restart, and answered from the participant's record
    assert shop.inventory.effects.count(("order", 1, "reserve")) == 1
    assert world.metrics.counter("service.inventory.received").value == 2
    check_saga_invariants(shop, orchestrator.tracker.outcomes, keys_of)


def test_without_a_database_a_crash_leaves_the_saga_stuck() -> None:
    world, shop, orchestrator = quiet_shop(store=False, stuck_after_s=60.0)
    shop.ledger.orders[1] = {"qty": 1, "amount": 20}
    start(world, orchestrator, shop.ledger.orders[1], key=1)
    inject(world, Crash("orchestrator"), at_s=0.007, duration_s=5.0)
    world.run(100)
    assert world.metrics.counter("saga.order.stuck").value == 1
    assert world.metrics.counter("anomaly.stuck_sagas").value == 1
    assert orchestrator.tracker.stuck_now() == 1
    assert shop.ledger.reserved == 1 and shop.ledger.released == 0  # stock held forever


def test_a_duplicated_start_runs_one_saga() -> None:
    world = World()
    world.network.set_default(Link(Constant(0.001), duplicate=1.0))
    shop = build_shop(world)
    orchestrator = orchestrate(world, shop)
    shop.ledger.orders[1] = {"qty": 1, "amount": 20}
    start(world, orchestrator, shop.ledger.orders[1], key=1)
    world.run(10)
    assert world.metrics.counter("saga.order.started").value == 1
    assert shop.ledger.reserved == 1 and shop.ledger.charged == 20
    check_saga_invariants(shop, orchestrator.tracker.outcomes, keys_of)


# -- invariants over seeds and fault schedules ---------------------------------------------------


def run_shop(
    seed: int, faults: list[tuple[Any, float, float]], duplicate: float, loss: float,
    *, idempotent: bool = True,
) -> tuple[Shop, SagaOrchestrator]:  # fmt: skip
    shop, orchestrator = run_scenario(orchestrate, seed, faults, duplicate, loss,
                                      idempotent=idempotent)  # fmt: skip
    return shop, orchestrator


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    faults=fault_schedules("orchestrator", "saga_db"),
    duplicate=st.sampled_from([0.0, 0.2]),
    loss=st.sampled_from([0.0, 0.02]),
)
def test_every_saga_commits_or_is_compensated_exactly_once_and_nothing_leaks(
    seed: int, faults: list[tuple[Any, float, float]], duplicate: float, loss: float
) -> None:
    shop, orchestrator = run_shop(seed, faults, duplicate, loss)
    check_run(shop, orchestrator.tracker, keys_of)


def test_without_idempotent_participants_duplicate_delivery_double_compensates() -> None:
    # The same run with participants that act on every copy: duplicated requests repeat
    # effects and compensations. This is what the invariant test above would catch.
    shop, _ = run_shop(3, [(ErrorBurst("shipping", 0.5), 0.0, 20.0)], 0.3, 0.0, idempotent=False)
    metrics = shop.world.metrics
    assert metrics.counter("anomaly.duplicate_side_effects").value > 0
    assert sum(p.undos.duplicates.value for p in shop.participants) > 0
    ledger = shop.ledger
    assert ledger.reserved - ledger.released != ledger.shipped - ledger.unshipped


def test_without_waiting_the_start_answers_once_the_saga_is_saved() -> None:
    world, shop, orchestrator = quiet_shop(wait=False)
    shop.ledger.orders[5] = {"qty": 1, "amount": 10}
    ended: list[float] = []
    results = start(world, orchestrator, shop.ledger.orders[5], key=5)
    world.at(0.005, lambda _: ended.append(len(results)))
    world.run(10)
    # 1 ms there, 1 + 2 + 1 ms to save the record, 1 ms back: answered at 0.006
    assert ended == [0] and [r.value for r in results] == ["accepted"]
    assert orchestrator.tracker.outcomes == {5: "committed"}


def test_steps_take_the_policies_packages_retry() -> None:
    # A step pipeline built from sim.policies: Retry(Timeout) rides out a participant's short
    # crash; the saga commits and the retried step acted once.
    from sim.policies import Retry

    world, shop, orchestrator = quiet_shop(policy=[Retry(5, base_s=0.2), Timeout(0.3)])
    inject(world, Crash("payment"), at_s=0.0, duration_s=0.5)
    shop.ledger.orders[1] = {"qty": 1, "amount": 20}
    start(world, orchestrator, shop.ledger.orders[1], key=1)
    world.run(10)
    assert orchestrator.tracker.outcomes == {1: "committed"}
    assert world.metrics.counter("service.payment.refused").value >= 1
    check_saga_invariants(shop, orchestrator.tracker.outcomes, keys_of)
