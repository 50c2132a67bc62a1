"""Wiring the shop: nodes, links, databases, event stores, the bus, the saga, the gateway,
the workloads and the failure processes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from models.ecommerce.failures import start_failures
from models.ecommerce.ledger import Archive, Ledger, Order
from models.ecommerce.parameters import EcommerceParameters
from models.ecommerce.paths import Paths
from models.ecommerce.relay import Relay
from models.ecommerce.services import (
    REMOTE_STEPS,
    SAGA,
    SHIP,
    NotificationService,
    OrderService,
    PaymentService,
    ProductService,
    UserService,
)
from sim.data import (
    MONGODB,
    POSTGRESQL,
    REDIS,
    Database,
    DatabaseProfile,
    EventBus,
    EventStore,
    Gateway,
    GatewayRequest,
    ReadModel,
    Route,
    SagaOrchestrator,
    SagaStep,
    Table,
)
from sim.distributions import LogNormal, Uniform
from sim.network import Link
from sim.workload import DiurnalRate, OpenWorkload
from sim.world import World

__all__ = ["SERVICES", "Shop", "build", "build_shop"]

SERVICES = ("user", "product", "order", "payment", "notification")
DATABASES: dict[str, DatabaseProfile] = {
    "user": POSTGRESQL,
    "product": MONGODB,
    "order": POSTGRESQL,
    "payment": POSTGRESQL,
    "notification": REDIS,
}
# In one data centre: half a millisecond, a few at the tail. Customers and the payment
# provider are across the internet.
INTERNAL = LogNormal.from_median_p99(0.0005, 0.005)
INTERNET = LogNormal.from_median_p99(0.020, 0.150)
CATALOG_UPDATES_PER_S = 1.0 / 300.0  # merchandising edits a product every five minutes
SAGA_WRITE_TIMEOUT_S = 1.0  # each saga write, as the orchestrator's own default


@dataclass
class Shop:
    """The built system (tests and reports inspect it).

    Attributes:
        orders: the measured workload (the order entry point).
        catalog: the browsing workload (reported apart), or None without browsing.
    """

    world: World
    params: EcommerceParameters
    ledger: Ledger
    archive: Archive
    paths: Paths
    orders: OpenWorkload
    catalog: OpenWorkload | None
    user: UserService
    product: ProductService
    order: OrderService
    payment: PaymentService
    notification: NotificationService
    relay: Relay
    bus: EventBus
    databases: dict[str, Database]
    saga: SagaOrchestrator | None
    gateway: Gateway | None


def _databases(
    world: World, shared: bool
) -> tuple[dict[str, Table], dict[str, Database], list[tuple[str, str]]]:
    """A table per service; the databases by name; (node, failure kind) of each."""
    if shared:
        database = Database(world, "shared_db", world.node("shared_db"), profile=POSTGRESQL,
                            max_wait_s=30.0)  # fmt: skip
        shared_tables = {name: Table(database, name) for name in SERVICES}
        return shared_tables, {"shared_db": database}, [("shared_db", "postgresql")]
    tables: dict[str, Table] = {}
    databases: dict[str, Database] = {}
    kinds: list[tuple[str, str]] = []
    for name, profile in DATABASES.items():
        db_name = f"{name}_db"
        # 30 s: HikariCP's connectionTimeout, the longest wait for a connection
        database = Database(world, db_name, world.node(db_name), profile=profile, max_wait_s=30.0)
        tables[name] = Table(database, name)
        databases[db_name] = database
        kinds.append((db_name, profile.name))
    return tables, databases, kinds


def build_shop(world: World, params: EcommerceParameters, *, keep: bool = False) -> Shop:
    """Build the shop in ``world``; ``keep`` keeps every order's outcome (for tests)."""
    p = params.patterns
    paths = Paths(p)
    ledger = Ledger(world, keep=keep)
    archive = Archive(world, None if keep else params.archive_after)
    network = world.network
    network.set_default(Link(INTERNAL))
    tables, databases, failing = _databases(world, params.shared_database)
    store_node = {name: tables[name].database.node for name in SERVICES}

    order_events = product_events = None
    if p.event_sourcing:
        order_events = EventStore(world, "order_events", store_node["order"], keep_log=False)
    view = None
    if p.cqrs:
        product_events = EventStore(world, "product_events", store_node["product"], keep_log=False)
        view = ReadModel(world, "catalog_view", world.node("catalog_view"), product_events,
                         project=_project, key_of=_product_of, workers=32)  # fmt: skip
        failing.append(("catalog_view", "service"))

    bus = EventBus(world, "bus", world.node("broker"))
    relay = Relay(world, bus, world.node("order"), durable=p.event_sourcing, retry=p.degradation)
    user = UserService(world, world.node("user"), tables["user"], paths)
    product = ProductService(
        world, world.node("product"), tables["product"], ledger, paths, archive,
        events=product_events, view=view, idempotent=p.idempotency,
    )  # fmt: skip
    payment = PaymentService(
        world, world.node("payment"), world.node("provider"), tables["payment"], ledger, paths,
        archive, idempotent=p.idempotency, provider_latency=params.provider_latency,
        decline_probability=params.decline_probability,
    )  # fmt: skip
    network.set_link("payment", "provider", Link(INTERNET))
    order = OrderService(
        world, world.node("order"), tables["order"], ledger, paths, archive, relay,
        events=order_events, idempotent=p.idempotency,
    )  # fmt: skip
    notification = NotificationService(
        world, world.node("notification"), tables["notification"], bus, paths, archive,
        idempotent=p.idempotency, patient=p.degradation,
    )  # fmt: skip
    saga = None
    if p.saga:
        # created by the order service in-process (its first write records OrderCreated),
        # then reserve and charge (other services), then ship (local: the order service's)
        steps = [
            SagaStep(name, action, undo, policy=paths.steps[name],
                     compensation_policy=paths.undo[name])
            for name, action, undo in REMOTE_STEPS
        ]  # fmt: skip
        steps.append(SagaStep(SHIP, order.ship, order.unship))
        saga = SagaOrchestrator(world, SAGA, world.node("order"), steps,
                                log=order.saga_log(SAGA_WRITE_TIMEOUT_S), wait=False,
                                stuck_after_s=3600.0)  # fmt: skip
        saga.tracker.on_end = order.saga_ended
        saga.on_begin = order.saga_began
        order.saga = saga

    gateway = None
    entry_orders, entry_browse = "order.place", "product.browse"
    if p.gateway:
        routes = {
            "orders": Route("order.place", paths.gateway_orders),
            "catalog": Route("product.browse", paths.gateway_browse),
        }
        gateway = Gateway(world, "gateway", world.node("gateway"), routes)
        entry_orders = entry_browse = gateway.address
        failing.append(("gateway", "service"))
    edge = "gateway" if p.gateway else None

    profile = {"peak_to_trough": params.peak_to_trough, "peak_s": params.peak_hour}
    orders = OpenWorkload(
        world, "orders", entry_orders, DiurnalRate(params.orders, **profile),
        timeout_s=params.order_timeout, payload=_orders(world, params, "orders" if edge else None),
    )  # fmt: skip
    network.set_link("client.orders", edge or "order", Link(INTERNET))
    catalog = None
    if params.browse_per_order > 0:
        rate = DiurnalRate(params.orders * params.browse_per_order, **profile)
        catalog = OpenWorkload(
            world, "catalog", entry_browse, rate, timeout_s=params.browse_timeout,
            payload=_products(world, params.products, "catalog" if edge else None, "catalog"),
        )  # fmt: skip
        network.set_link("client.catalog", edge or "product", Link(INTERNET))
    OpenWorkload(world, "merchandising", "product.update", CATALOG_UPDATES_PER_S, timeout_s=5.0,
                 payload=_products(world, params.products, None, "merchandising"))  # fmt: skip

    failing += [(name, "service") for name in SERVICES] + [("broker", "broker")]
    start_failures(world, params.failures, failing, provider="provider",
                   provider_link=("payment", "provider"))  # fmt: skip
    return Shop(
        world, params, ledger, archive, paths, orders, catalog, user, product, order, payment,
        notification, relay, bus, databases, saga, gateway,
    )  # fmt: skip


def build(world: World, params: EcommerceParameters) -> list[OpenWorkload]:
    """The model's builder: the order entry point is the measured workload; browsing is
    reported apart (``entry.catalog.*``; see :func:`models.ecommerce.report`)."""
    return [build_shop(world, params).orders]


def _project(_: Any, event: Any) -> Any:
    return event.data


def _product_of(event: Any) -> Any:
    return event.data[1]


def _orders(world: World, params: EcommerceParameters, route: str | None) -> Callable[[int], Any]:
    """Each order: a customer, a product, a quantity of 1-3 and 10-200 (currency units, in
    cents); wrapped for the gateway's route when there is one."""
    unit = world.sampler("ecommerce.orders", Uniform(0.0, 1.0))
    products = params.products

    def payload(request_id: int) -> Any:
        order = Order(request_id, int(unit() * 100_000), int(unit() * products),
                      1 + int(unit() * 3), 1000 + int(unit() * 19_000))  # fmt: skip
        return order if route is None else GatewayRequest(route, order)

    return payload


def _products(world: World, products: int, route: str | None, stream: str) -> Callable[[int], Any]:
    unit = world.sampler(f"ecommerce.{stream}", Uniform(0.0, 1.0))

    def payload(_: int) -> Any:
        product = int(unit() * products)
        return product if route is None else GatewayRequest(route, product)

    return payload
