"""The API gateway: routing, request ids, keys forwarded, per-route policies, not found, and
fan-out aggregation that degrades when a non-critical backend fails."""

from __future__ import annotations

from typing import Any

import pytest

from sim import Caller, ConfigError, Constant, Link, Outcome, Service, Timeout, World
from sim.data import FanOut, Gateway, GatewayReply, GatewayRequest, Part, Route


def make(world: World) -> tuple[Gateway, Caller, dict[str, list[Any]]]:
    world.network.set_default(Link(Constant(0.001)))
    seen: dict[str, list[Any]] = {"catalog": [], "reviews": [], "prices": []}
    for name, time in (("catalog", 0.010), ("reviews", 0.050), ("prices", 0.005)):
        service = Service(world, name, world.node(name), workers=4)

        def handle(ctx, body, name=name):  # type: ignore[no-untyped-def]
            seen[name].append(ctx.key)
            return f"{name}:{body}"

        service.endpoint("get", Constant(time), handler=handle)
    routes = {
        "catalog": Route("catalog.get", [Timeout(0.5)]),
        "reviews": Route("reviews.get", [Timeout(0.02)]),  # tighter than reviews' 50 ms
        "product": FanOut(
            {
                "item": Part("catalog.get", [Timeout(0.5)]),
                "price": Part("prices.get", [Timeout(0.5)]),
                "reviews": Part("reviews.get", [Timeout(0.5)], critical=False),
            }
        ),
    }
    gateway = Gateway(world, "gw", world.node("gw"), routes, service_time=Constant(0.0))
    return gateway, Caller(world, world.node("client")), seen


def ask(world: World, client: Caller, route: str, key: Any = None) -> list[Any]:
    results: list[Any] = []
    ended: list[float] = []

    def done(result: Any) -> None:
        results.append(result)
        ended.append(round(world.now, 9))

    client.start("gw.handle", GatewayRequest(route, "x"), done, key=key)
    world.run(world.now + 5)
    return [(results[0], ended[0])]


def test_a_route_forwards_the_body_and_the_callers_key() -> None:
    world = World()
    _, client, seen = make(world)
    [(result, ended)] = ask(world, client, "catalog", key="order-7")
    assert result.outcome is Outcome.OK
    assert result.value == GatewayReply(1, "catalog:x")
    assert ended == 0.014  # 1 + 1 ms to the backend, 10 ms, 1 + 1 ms back
    assert seen["catalog"] == ["order-7"]  # the idempotency key travels on
    [(result, _)] = ask(world, client, "catalog")
    assert seen["catalog"][-1] == result.value.request_id == 2  # else the request id


def test_an_unknown_route_is_not_found() -> None:
    world = World()
    _, client, seen = make(world)
    [(result, ended)] = ask(world, client, "checkout")
    assert (result.outcome, result.reason, ended) == (Outcome.ERROR, "not_found", 0.002)
    assert world.metrics.counter("gateway.gw.not_found").value == 1
    assert not any(seen.values())


def test_each_route_has_its_own_policies() -> None:
    world = World()
    _, client, _ = make(world)
    [(result, ended)] = ask(world, client, "reviews")
    assert (result.outcome, result.reason) == (Outcome.ERROR, "upstream_timeout")
    assert ended == pytest.approx(0.001 + 0.02 + 0.001)  # the route's 20 ms timeout
    assert world.metrics.counter("gateway.gw.routes.reviews.failed").value == 1


def test_fan_out_aggregates_and_degrades_without_a_non_critical_part() -> None:
    world = World()
    _, client, _ = make(world)
    [(result, ended)] = ask(world, client, "product")
    assert result.outcome is Outcome.OK
    assert result.value.value == {"item": "catalog:x", "price": "prices:x", "reviews": "reviews:x"}
    assert ended == 0.054  # the slowest part (50 ms) sets the pace
    world.nodes["reviews"].crash()
    [(result, _)] = ask(world, client, "product")
    assert result.outcome is Outcome.DEGRADED
    assert result.value.value == {"item": "catalog:x", "price": "prices:x"}
    assert result.value.missing == ("reviews",)
    world.nodes["prices"].crash()
    [(result, _)] = ask(world, client, "product")
    assert (result.outcome, result.reason) == (Outcome.ERROR, "upstream_price")
    metrics = world.metrics
    assert metrics.counter("gateway.gw.routes.product.degraded").value == 1
    assert metrics.counter("gateway.gw.parts.product.reviews.failed").value == 2


def test_request_ids_are_unique_and_reach_the_backend_when_concurrent() -> None:
    world = World(seed=2)
    _, client, seen = make(world)
    replies: list[int] = []
    for n in range(40):  # all at once: they overlap in the gateway
        client.start("gw.handle", GatewayRequest("catalog", n),
                     lambda r: replies.append(r.value.request_id))  # fmt: skip
    world.run(10)
    assert len(replies) == 40 and len(set(replies)) == 40
    assert sorted(seen["catalog"]) == sorted(replies)


def test_a_route_to_an_unknown_backend_is_a_configuration_error() -> None:
    world = World()
    with pytest.raises(ConfigError) as error:
        Gateway(world, "gw", world.node("gw"), {"x": Route("nowhere.get")})
    assert "gw.routes.x" in str(error.value) and "nowhere.get" in str(error.value)
