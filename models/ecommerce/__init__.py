"""The ``ecommerce`` model: the reference e-commerce platform.

::

    customers ──► API gateway ─┬─► order service ──► user service ──► user_db (PostgreSQL)
                               │        │  saga: created → reserve → charge → ship (local)
                               │        │        (compensations: unship, refund, release)
                               │        ├─► the order's record, which is the saga's log:
                               │        │   its stream in order_events (event store) or its
                               │        │   row in order_db (PostgreSQL) ──► relay ──► bus
                               │        │                                            │
                               │        │                notification ◄──────────────┘
                               │        │                  (OrderCreated, OrderCompleted)
                               │        │                  └─► notification_db (Redis)
                               │        ├─► product.reserve ──► product_db (MongoDB)
                               │        └─► payment.charge ──► payment provider (internet)
                               │                           └─► payment_db (PostgreSQL)
                               └─► product.browse ──► catalog_view (CQRS read model,
                                                      fed by product_events)

Every pattern is a switch in ``[model.patterns]`` (all on by default; all off is the
naive baseline): ``circuit_breaker``, ``retries``, ``timeouts``, ``bulkheads``, ``saga``,
``event_sourcing``, ``cqrs``, ``gateway``, ``idempotency``, ``degradation``. With
``shared_database = true`` every service uses one PostgreSQL-like database.

The measured entry point is ``orders`` (placing an order): with the saga on, an order is
accepted once its saga is saved and ends later as completed or compensated; with it off,
the request runs the steps itself and fails if any fails (nothing is undone). Browsing
(``catalog``) is measured apart: :func:`models.ecommerce.report.catalog_availability`.
Order outcomes, money and stock moved are in ``orders.*`` and ``ledger.*``.

Failures (``[model.failures]``): every service, database and the broker fail and are
repaired (MTBF/MTTR); network loss bursts and latency spikes; the payment provider's error
bursts and slowdowns. Sources of the defaults: docs/ecommerce.md.
"""

from __future__ import annotations

from models.ecommerce.build import Shop, build, build_shop
from models.ecommerce.ledger import Ledger, Order
from models.ecommerce.parameters import EcommerceParameters, Patterns
from sim.experiment.model import ModelDefinition

__all__ = [
    "MODEL",
    "EcommerceParameters",
    "Ledger",
    "Order",
    "Patterns",
    "Shop",
    "build",
    "build_shop",
]

MODEL = ModelDefinition(
    name="ecommerce",
    description="The reference e-commerce platform: gateway, five services, saga, event "
    "sourcing, CQRS, bus; every resilience pattern a switch",
    parameters=EcommerceParameters,
    builder=build,
)
