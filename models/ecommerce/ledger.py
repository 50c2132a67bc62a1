"""What the shop's effects add up to: stock, shipments and money moved, order outcomes, and
the archive that keeps a 30-day run's memory flat.

The :class:`Ledger` is what the conservation invariants are checked against: the
participants' effects move quantities here (a copy refused by idempotency moves nothing),
and every order ends in one of :data:`OUTCOMES`. Totals are metric counters
(``ledger.*``, ``orders.*``), so a run's results carry them; per-order detail is kept
while an order is in flight, and afterwards only when ``keep`` is set (tests).

The :class:`Archive` forgets per-order state in every component some time after the order
ended (a stand-in for moving closed orders to cold storage, whose cost is not modelled):
without it every saga record, event stream and idempotency record would stay in memory and
a 30-day run would need thirty times the memory of a one-day run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sim.world import World

__all__ = ["COMPENSATED", "COMPLETED", "FAILED", "OUTCOMES", "Archive", "Ledger", "Order"]

COMPLETED = "completed"
COMPENSATED = "compensated"  # accepted, then undone by the saga
FAILED = "failed"  # the synchronous chain (saga off) failed part-way: nothing is undone
OUTCOMES = (COMPLETED, COMPENSATED, FAILED)


@dataclass(frozen=True, slots=True)
class Order:
    """One order: its id (the customer's request id), what it buys and what it costs."""

    id: int
    customer: int
    product: int
    qty: int
    amount: int  # cents


class Ledger:
    """Quantities moved by effects, and order outcomes (see the module docstring).

    Args:
        world: the run (counters go in its metrics; outcomes per window in its series).
        keep: keep every order and outcome after it ended (for invariant checks).
    """

    def __init__(self, world: World, *, keep: bool = False):
        self.world = world
        self.keep = keep
        self.orders: dict[int, Order] = {}  # placed, not yet archived
        self.outcomes: dict[int, str] = {}  # ended, not yet archived (all of them with keep)
        self.ended_at: dict[int, float] = {}
        metrics = world.metrics
        self.placed = metrics.counter("orders.placed")
        self.counts = {o: metrics.counter(f"orders.{o}") for o in OUTCOMES}
        self.completed_amount = metrics.counter("orders.completed_amount")
        self.completed_qty = metrics.counter("orders.completed_qty")
        self.reserved = metrics.counter("ledger.stock_reserved")
        self.released = metrics.counter("ledger.stock_released")
        self.shipped = metrics.counter("ledger.shipped")
        self.unshipped = metrics.counter("ledger.unshipped")
        self.charged = metrics.counter("ledger.charged")
        self.refunded = metrics.counter("ledger.refunded")
        self.charges = metrics.counter("ledger.charges")
        self.duration = metrics.histogram("orders.duration")
        self._series = metrics.series

    def place(self, order: Order) -> None:
        """An order entered the system (its saga started, or its synchronous chain)."""
        if order.id in self.orders or order.id in self.outcomes:
            return
        self.orders[order.id] = order
        self.placed.value += 1
        if self._series is not None:
            self._series.add("orders.placed")

    def end(self, order_id: int, outcome: str) -> None:
        """The order ended (later calls for the same order are ignored)."""
        previous = self.outcomes.get(order_id)
        if previous is not None:
            if previous != FAILED or outcome != COMPLETED:
                return
            # a synchronous chain that failed, then completed when the customer's retry
            # (same key, idempotent steps) went through
            self.counts[FAILED].value -= 1
        order = self.orders.get(order_id)
        if order is None:
            return  # archived already, or never placed here
        self.outcomes[order_id] = outcome
        self.ended_at[order_id] = self.world.env.now
        self.counts[outcome].value += 1
        if outcome == COMPLETED:
            self.completed_amount.value += order.amount
            self.completed_qty.value += order.qty
        if self._series is not None:
            self._series.add(f"orders.{outcome}")

    # -- the participants' effects --------------------------------------------------------

    def reserve(self, order: Order) -> None:
        self.reserved.value += order.qty

    def release(self, order: Order) -> None:
        self.released.value += order.qty

    def ship(self, order: Order) -> None:
        self.shipped.value += order.qty

    def unship(self, order: Order) -> None:
        self.unshipped.value += order.qty

    def charge(self, order: Order) -> None:
        self.charged.value += order.amount
        self.charges.value += 1

    def refund(self, order: Order) -> None:
        self.refunded.value += order.amount

    def forget(self, order_id: int) -> None:
        """Archive the order (nothing is forgotten with ``keep``)."""
        if self.keep:
            return
        self.orders.pop(order_id, None)
        self.outcomes.pop(order_id, None)
        self.ended_at.pop(order_id, None)


class Archive:
    """Forgets ended orders everywhere, ``after_s`` (or up to twice that) after they ended.

    Components register ``forget(order_id)`` callbacks; every ``after_s`` the orders that
    ended during the sweep before last are handed to each of them. With ``after_s`` None
    nothing is ever forgotten.
    """

    def __init__(self, world: World, after_s: float | None):
        self.world = world
        self.after_s = after_s
        self._forgetters: list[Callable[[int], None]] = []
        self._ended: list[int] = []  # since the last sweep
        self._waiting: list[int] = []  # ended during the sweep before: forgotten next
        self.archived = world.metrics.counter("orders.archived")
        if after_s is not None:
            world.schedule(after_s, self._sweep)

    def register(self, forget: Callable[[int], None]) -> None:
        self._forgetters.append(forget)

    def ended(self, order_id: int) -> None:
        if self.after_s is not None:
            self._ended.append(order_id)

    def _sweep(self, _: Any) -> None:
        for order_id in self._waiting:
            for forget in self._forgetters:
                forget(order_id)
        self.archived.value += len(self._waiting)
        self._waiting, self._ended = self._ended, []
        assert self.after_s is not None
        self.world.schedule(self.after_s, self._sweep)
