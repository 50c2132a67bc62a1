"""What single patterns do, each in a scenario built to show it: a stale catalog while the
product database is down, notifications delayed (not lost) while the notification service
is down, one shared database taking every service down, and the archive keeping per-order
state bounded."""

from __future__ import annotations

from models.ecommerce.ledger import COMPLETED
from sim import Outcome
from sim.faults import Crash
from tests.ecommerce.shop import parameters, run_shop

NO_CQRS = {"cqrs": False}


def _catalog(shop: object) -> dict[Outcome, int]:
    stats = shop.catalog.stats  # type: ignore[attr-defined]
    return {o: stats.outcomes[o].value for o in Outcome}


def test_with_degradation_the_catalog_is_served_stale_while_the_product_database_is_down() -> None:
    """Browsing reads the product database (CQRS off); it is down from 5 to 10 minutes.
    With degradation, pages seen before are served from the stale cache (degraded) and the
    catalog barely fails; without it, every read in the outage fails."""
    down = ((Crash("product_db"), 300.0, 300.0),)
    on = run_shop(parameters(browse_per_order=20, patterns=NO_CQRS), faults=down, drain_s=60.0)
    off = run_shop(parameters(browse_per_order=20, patterns=NO_CQRS | {"degradation": False}),
                   faults=down, drain_s=60.0)  # fmt: skip
    served, failed = _catalog(on), _catalog(off)
    outage_reads = failed[Outcome.ERROR] + failed[Outcome.TIMEOUT]
    # ~0.28 reads/s x 20 per order... a few hundred reads fall in the outage
    assert outage_reads > 100
    assert served[Outcome.DEGRADED] > 0.5 * outage_reads
    failures_on = served[Outcome.ERROR] + served[Outcome.TIMEOUT]
    assert failures_on < 0.5 * outage_reads  # only pages never seen before still fail


def test_notifications_are_delayed_not_lost_while_the_notification_service_is_down() -> None:
    """The notification service is down for 10 minutes. Patient redelivery (degradation
    on) delivers every notification after it comes back, some more than 5 minutes late;
    without it, deliveries give up after three tries and the messages are dead-lettered."""
    down = ((Crash("notification"), 120.0, 600.0),)
    on = run_shop(parameters(), faults=down)
    off = run_shop(parameters(patterns={"degradation": False}), faults=down)
    completed = [i for i, o in on.ledger.outcomes.items() if o == COMPLETED]
    assert all(on.notification.sent.count((i, "OrderCompleted")) == 1 for i in completed)
    assert on.bus.dead_lettered.value == 0
    assert on.notification.delay.maximum > 300.0
    assert off.bus.dead_lettered.value > 20  # ~0.28 orders/s x 2 events x 600 s in the outage


def test_one_shared_database_outage_takes_the_order_entry_point_down() -> None:
    """Database per service: a product database outage leaves order entry alone (orders
    are accepted; their reservations wait for the saga's retries or are compensated). One
    shared database: the same outage is every service's, and order entry fails."""
    per_service = run_shop(parameters(), faults=((Crash("product_db"), 120.0, 300.0),))
    shared = run_shop(parameters(shared_database=True),
                      faults=((Crash("shared_db"), 120.0, 300.0),))  # fmt: skip
    failed_per_service = (
        per_service.orders.stats.requests.value
        - per_service.orders.stats.outcomes[Outcome.OK].value
    )
    shared_stats = shared.orders.stats
    failed_shared = shared_stats.requests.value - shared_stats.outcomes[Outcome.OK].value
    assert failed_per_service <= 2
    assert failed_shared > 30  # ~0.28 orders/s x 300 s of outage


def test_the_archive_forgets_ended_orders_everywhere() -> None:
    params = parameters(archive_after=600.0)
    from models.ecommerce import build_shop
    from sim import World

    world = World(2, 0, window_s=60.0)
    shop = build_shop(world, params)
    shop.orders.stop_s = 1800.0
    assert shop.catalog is not None
    shop.catalog.stop_s = 1800.0
    world.run(3 * 3600.0)
    assert shop.ledger.placed.value > 200
    assert shop.archive.archived.value == shop.ledger.placed.value
    assert not shop.ledger.orders and not shop.ledger.outcomes
    for participant in (shop.product.inventory, shop.payment.provider, shop.order.shipping):
        assert not participant.states and not participant.effects.counts
    assert shop.saga is not None and not shop.saga.tracker.outcomes
    events = shop.order.events
    assert events is not None and not events.streams and not events.log
    rows = [key for db in shop.databases.values() for key in db.rows]
    assert all(key[1][0] not in ("reservation", "payment", "order", "saga", "sent")
               for key in rows if isinstance(key[1], tuple)), rows[:5]  # fmt: skip
