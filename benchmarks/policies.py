"""What do resilience policies cost? The 3-hop chain, plain and with a policy pipeline on
every call.

Run: ``python benchmarks/policies.py`` (``--help`` for sizes). It prints figures and
asserts nothing: wall time on a shared machine is no pass/fail criterion.

The chain (the engine benchmark's): client -> gateway -> service -> database; link latency
lognormal with median 1 ms and p99 5 ms, drawn independently per message; worker pools
16/8/4; exponential service times with means 0.5/2/1 ms; the gateway and the service hold
their worker while they call downstream; 1000 requests/s; the client gives up after 50 ms.

- plain: the client's 50 ms timeout, nothing else.
- policies: every call (client -> gateway, gateway -> service, service -> database) goes
  through Retry(CircuitBreaker(Timeout)) in resilience4j's order: Retry with 3 attempts
  and a 10 ms constant backoff, a CircuitBreaker with resilience4j's defaults, and timeouts
  of 50, 40 and 30 ms per attempt on the three hops. Each hop has its own policy objects
  (one client instance per upstream).

Every variant runs ``--repeats`` times, interleaved, and the best (lowest) time is kept.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # after the path tweak, so that the script runs from a checkout
from sim.call import Pipeline
from sim.policies import CircuitBreaker, Retry, Timeout

POOLS = (16, 8, 4)  # gateway, service, database
SERVICE_MEANS_S = (0.0005, 0.002, 0.001)
RATE = 1000.0
HOP_TIMEOUTS_S = (0.050, 0.040, 0.030)  # client->gateway, gateway->service, service->db


def hop_policy(with_policies: bool, timeout_s: float, name: str) -> Pipeline:
    """The pipeline of one hop, built once per world (a pipeline object skips the per-call
    lookup that a list of policies needs)."""
    if not with_policies:
        return Pipeline([Timeout(timeout_s)] if name == "client" else [])
    return Pipeline(
        [
            Retry(3, base_s=0.010, name=f"{name}.retry"),
            CircuitBreaker(name=f"{name}.breaker"),
            Timeout(timeout_s, name=f"{name}.timeout"),
        ]
    )


def chain(requests: int, with_policies: bool, seed: int = 1) -> tuple[sim.World, sim.OpenWorkload]:
    world = sim.World(seed=seed)
    latency = sim.LogNormal.from_median_p99(0.001, 0.005)
    world.network.set_default(sim.Link(latency, reorder=True))
    names = ("gateway", "service", "database")
    tiers = [
        sim.Service(world, name, world.node(name), workers=workers)
        for name, workers in zip(names, POOLS, strict=True)
    ]
    to_service = hop_policy(with_policies, HOP_TIMEOUTS_S[1], "gateway")
    to_database = hop_policy(with_policies, HOP_TIMEOUTS_S[2], "service")

    def gateway_handler(ctx: sim.Context, payload: Any) -> Any:
        reply = yield from ctx.call("service.get", payload, policy=to_service)
        return reply

    def service_handler(ctx: sim.Context, payload: Any) -> Any:
        row = yield from ctx.call("database.get", payload, policy=to_database)
        return row

    handlers = (gateway_handler, service_handler, None)
    for tier, mean, handler in zip(tiers, SERVICE_MEANS_S, handlers, strict=True):
        tier.endpoint("get", sim.Exponential(mean), handler=handler)
    client_policy = hop_policy(with_policies, HOP_TIMEOUTS_S[0], "client")
    load = sim.OpenWorkload(world, "load", "gateway.get", RATE, policy=client_policy)
    load.stop_s = requests / RATE
    return world, load


def measure(requests: int, with_policies: bool) -> tuple[float, sim.World, sim.OpenWorkload]:
    world, load = chain(requests, with_policies)
    gc.collect()
    start = time.perf_counter()
    world.env.run()
    return time.perf_counter() - start, world, load


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    best: dict[bool, float] = {}
    last: dict[bool, tuple[sim.World, sim.OpenWorkload]] = {}
    for _ in range(args.repeats):
        for with_policies in (False, True):
            seconds, world, load = measure(args.requests, with_policies)
            best[with_policies] = min(seconds, best.get(with_policies, seconds))
            last[with_policies] = (world, load)
    print(f"3-hop chain, {args.requests} requests at {RATE:.0f}/s, best of {args.repeats}")
    print(f"{'variant':<34}{'µs/request':>12}{'ok':>9}{'timeout':>9}{'attempts/req':>14}")
    variants = ((False, "plain (client timeout)"), (True, "Timeout+Retry+CircuitBreaker"))
    for with_policies, label in variants:
        world, load = last[with_policies]
        outcomes = load.stats.outcomes
        requests = load.stats.requests.value
        attempts = world.metrics.counter("policy.client.retry.attempts").value
        per_request = attempts / requests if with_policies else 1.0
        print(
            f"{label:<34}{best[with_policies] / requests * 1e6:>12.1f}"
            f"{outcomes[sim.Outcome.OK].value:>9}{outcomes[sim.Outcome.TIMEOUT].value:>9}"
            f"{per_request:>14.4f}"
        )
    print(f"cost ratio (policies / plain): {best[True] / best[False]:.2f}")


if __name__ == "__main__":
    main()
