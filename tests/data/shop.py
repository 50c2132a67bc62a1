"""A small shop for saga tests: inventory, payment and shipping participants, with the
ledgers that conservation is checked against, and minimal client-policy test doubles."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sim import Call, Constant, Result, Service, ServiceError, World
from sim.call import Done, Proceed
from sim.data import Participant


@dataclass
class Ledger:
    """Quantities and money moved by the participants' effects (not by copies refused)."""

    stock: int = 10_000
    reserved: int = 0
    released: int = 0
    shipped: int = 0
    unshipped: int = 0
    charged: int = 0
    refunded: int = 0
    orders: dict[Any, dict[str, int]] = field(default_factory=dict)


@dataclass
class Shop:
    world: World
    ledger: Ledger
    inventory: Participant
    payment: Participant
    shipping: Participant

    @property
    def participants(self) -> tuple[Participant, ...]:
        return (self.inventory, self.payment, self.shipping)


DECLINE_ABOVE = 80  # payment declines orders above this amount: a business failure


def build_shop(world: World, *, idempotent: bool = True, stock: int = 10_000) -> Shop:
    ledger = Ledger(stock=stock)

    def reserve(order: dict[str, int]) -> None:
        if ledger.stock < order["qty"]:
            raise ServiceError("out_of_stock")
        ledger.stock -= order["qty"]
        ledger.reserved += order["qty"]

    def release(order: dict[str, int]) -> None:
        ledger.stock += order["qty"]
        ledger.released += order["qty"]

    def charge(order: dict[str, int]) -> None:
        if order["amount"] > DECLINE_ABOVE:
            raise ServiceError("declined")
        ledger.charged += order["amount"]

    def refund(order: dict[str, int]) -> None:
        ledger.refunded += order["amount"]

    def ship(order: dict[str, int]) -> None:
        ledger.shipped += order["qty"]

    def unship(order: dict[str, int]) -> None:
        ledger.unshipped += order["qty"]

    def participant(name: str, action: str, do: Any, undo: Any) -> Participant:
        service = Service(world, name, world.node(name), workers=16)
        return Participant(
            service, action, do, undo, service_time=Constant(0.002), idempotent=idempotent
        )

    return Shop(
        world,
        ledger,
        participant("inventory", "reserve", reserve, release),
        participant("payment", "charge", charge, refund),
        participant("shipping", "ship", ship, unship),
    )


def order_payload(ledger: Ledger, rng_seed: int) -> Any:
    """A workload payload builder: order ``request_id`` with a quantity and an amount."""
    import numpy as np

    rng = np.random.default_rng(rng_seed)

    def payload(request_id: int) -> dict[str, int]:
        order = {"qty": int(rng.integers(1, 4)), "amount": int(rng.integers(10, 100))}
        ledger.orders[request_id] = order
        return order

    return payload


def check_saga_invariants(shop: Shop, outcomes: dict[Any, str], keys: Any) -> None:
    """Every saga committed, or each of its steps that acted was compensated exactly once;
    no effect and no compensation happened twice; stock and money are conserved.

    ``keys(saga_id)`` gives the participants' step keys of a saga, in step order.
    """
    ledger = shop.ledger
    committed = [sid for sid, outcome in outcomes.items() if outcome == "committed"]
    for saga_id, outcome in outcomes.items():
        for participant, key in zip(shop.participants, keys(saga_id), strict=True):
            effects, undos = participant.effects.count(key), participant.undos.count(key)
            assert effects <= 1 and undos <= 1, (saga_id, participant, effects, undos)
            if outcome == "committed":
                assert (effects, undos) == (1, 0), (saga_id, participant)
            else:
                assert undos == effects, (saga_id, participant, effects, undos)
    qty = sum(ledger.orders[sid]["qty"] for sid in committed)
    amount = sum(ledger.orders[sid]["amount"] for sid in committed)
    assert ledger.reserved - ledger.released == ledger.shipped - ledger.unshipped == qty
    assert ledger.charged - ledger.refunded == amount


# -- minimal client-policy test doubles ------------------------------------------------------


class RetryOnce:
    """Re-sends a failed attempt once (a stand-in for the policies package's Retry)."""

    def invoke(self, call: Call, proceed: Proceed, done: Done) -> None:
        def first(result: Result) -> None:
            if result.ok:
                done(result)
            else:
                proceed(call, done)

        proceed(call, first)


# -- whole runs under faults, for the invariant tests of both kinds of saga -------------------


def fault_schedules(coordinator: str, transport: str) -> Any:
    """A hypothesis strategy: up to three faults, each (fault, start, duration), among crashes
    of the saga's coordinator, its transport (database or broker) and the participants, and
    error bursts at two participants. Faults start in the first 10 s and last up to 5 s."""
    from hypothesis import strategies as st

    from sim import Crash, ErrorBurst

    kinds = [Crash(coordinator), Crash(transport)]
    kinds += [Crash(name) for name in ("inventory", "payment", "shipping")]
    kinds += [ErrorBurst("payment", 0.5), ErrorBurst("shipping", 0.3)]
    fault = st.tuples(st.sampled_from(kinds), st.floats(0.0, 10.0), st.floats(0.05, 5.0))
    return st.lists(fault, max_size=3)


def run_scenario(
    build: Any, seed: int, faults: list[tuple[Any, float, float]], duplicate: float,
    loss: float, *, idempotent: bool = True, orders: int = 25,
) -> tuple[Shop, Any]:  # fmt: skip
    """Orders at 2.5/s through the saga that ``build(world, shop)`` makes, under ``faults``
    and a lossy, duplicating network, then long enough for every saga to end."""
    from sim import Link, OpenWorkload, inject

    world = World(seed=seed)
    world.network.set_default(Link(Constant(0.002), duplicate=duplicate, loss=loss))
    shop = build_shop(world, idempotent=idempotent)
    saga = build(world, shop)
    OpenWorkload(world, "orders", saga.address, 2.5, timeout_s=30.0,
                 payload=order_payload(shop.ledger, seed), stop_s=orders / 2.5)  # fmt: skip
    for fault, at_s, duration_s in faults:
        inject(world, fault, at_s, duration_s)
    world.run(600)
    return shop, saga


def check_run(shop: Shop, tracker: Any, keys: Any) -> None:
    """Every saga ended once the faults were over, and the invariants hold."""
    assert not tracker.unfinished, tracker.unfinished
    assert tracker.outcomes
    check_saga_invariants(shop, tracker.outcomes, keys)
    assert shop.world.metrics.counter("anomaly.duplicate_side_effects").value == 0
