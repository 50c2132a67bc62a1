"""Building a small shop for tests: the model's own build with random failures off, a
higher order rate for a short horizon, arrivals that stop so that every order can end."""

from __future__ import annotations

from typing import Any

from models.ecommerce import EcommerceParameters, Shop, build_shop
from models.ecommerce.build import INTERNAL
from sim import World
from sim.faults import Fault, inject
from sim.network import Link


def parameters(**changes: Any) -> EcommerceParameters:
    """The defaults with random failures off and ``changes`` applied (dotted-free keys;
    ``patterns`` and ``failures`` as dicts)."""
    data: dict[str, Any] = {"failures": {"enabled": False}, "orders": 0.5, "browse_per_order": 1}
    data.update(changes)
    return EcommerceParameters.model_validate(data, strict=False)


def run_shop(
    params: EcommerceParameters,
    *,
    seed: int = 1,
    arrivals_s: float = 600.0,
    drain_s: float = 3 * 3600.0,
    faults: tuple[tuple[Fault, float, float], ...] = (),
    duplicate: float = 0.0,
    loss: float = 0.0,
) -> Shop:
    """Arrivals for ``arrivals_s``, then ``drain_s`` more for every order to end. Faults are
    (fault, at, duration); ``duplicate`` and ``loss`` apply to every internal link."""
    world = World(seed, 0, window_s=60.0)
    shop = build_shop(world, params, keep=True)
    for workload in (shop.orders, shop.catalog):
        if workload is not None:
            workload.stop_s = arrivals_s
    if duplicate or loss:
        world.network.set_default(Link(INTERNAL, loss=loss, duplicate=duplicate))
    for fault, at, duration in faults:
        inject(world, fault, at, duration)
    world.run(arrivals_s + drain_s)
    return shop
