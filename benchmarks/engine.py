"""How fast is the engine? Idiomatic SimPy against the same models built from sim.

Run: ``python benchmarks/engine.py`` (``--help`` for sizes). It prints figures; it asserts
nothing, because wall time on a shared machine is no pass/fail criterion.

Three models, each written twice:

- M/M/c: c = 4 servers, mean service time 1 s, utilisation rho = 0.8 (arrivals 3.2/s).
  (a) hand-written idiomatic SimPy: a source process, one process per customer,
  ``simpy.Resource``, ``random.expovariate``; (b) sim: ``Service`` (its ``Pool``) fed by an
  ``OpenWorkload``, every metric on (pool gauges and wait histogram, entry latency).
- 3-hop chain: client -> gateway -> service -> database. Link latency lognormal with median
  1 ms and p99 5 ms (sigma = ln 5 / 2.326 = 0.692, mean 1.27 ms), drawn independently per
  message (sim: `Link(reorder=True)`; its default keeps each pair FIFO like one TCP connection);
  worker pools 16/8/4; exponential service times with means 0.5/2/1 ms; the gateway and the
  service hold their worker while they call downstream (thread per request); 1000
  requests/s; the client gives up after 50 ms. (a) idiomatic SimPy: a process per request
  and one per hop, ``simpy.Resource`` per tier, the client racing the reply against a 50 ms
  timeout with ``|``; (b) sim: three Services, generator handlers calling downstream, an
  ``OpenWorkload`` with ``timeout_s=0.05``.
- fan-out: client -> front -> back, the front's handler calling the back 4 times in turn (the
  shape of most e-commerce handlers: the per-call cost of a generator hop). Links as the
  chain, pools 32/8, exponential service times 0.5/0.2 ms, 500 requests/s, timeout 50 ms.
  (a) idiomatic SimPy: a process per hop; (b) sim: a generator handler with ``ctx.call``.

The machine is shared and noisy: every variant runs ``--repeats`` times, interleaved, and the
best (lowest) time is reported. Memory: peak ``tracemalloc`` memory of the sim M/M/c model at
two sizes (it must not grow with the number of customers).

Measured (2 shared cores, CPython 3.11.7, simpy 4.1.2, best of 3; 2026-11-27):

    M/M/4, 200,000 customers    simpy 9.16 µs/customer   sim 5.14 µs   0.56x
    3-hop chain, 100,000        simpy 53.78 µs/request   sim 22.62 µs  0.42x
    fan-out, 50,000             simpy 82.70 µs/request   sim 32.96 µs  0.40x
    memory, 50,000 vs 800,000 customers: 0.13 vs 0.15 MiB peak (1.17)

Where it came from (sim per unit, M/M/4 and chain; each change measured A/B, CPU time):
6.61 µs and 39.3 µs at the start (0.72x and 0.73x).

- read SimPy's time as ``env._now`` (4 ns) instead of the ``env.now`` property (45 ns),
  ~11 reads per customer: -5% and -1%;
- internal timers call their method with the event (``_Wake``), no ``_fire`` trampoline:
  -2%; the network reads ``link._latency``, not its property: -2.4% on the chain;
- our events push their own heap entry (no ``env.schedule`` call): -2% and -2.3%;
- the workload's per-request ending is a ``functools.partial``: -2% on M/M/4;
- ``Caller.call`` without the ``call_result`` generator layer, Timeout via ``_Wake``: -1.7%
  on the chain; the pool's busy gauge updated inline: -2% and -1%;
- timeouts of one delay share one heap entry (``sim.timeout._Timers``; heap ~65 -> ~15
  entries): -3.2% on the chain; no deadline or pipeline lookup for plain calls: -1.1%;
- the Call <-> Request reference cycle broken once the reply is handed over, so that
  requests are freed by reference counting, not by the cyclic collector: -6% and -10%
  (and the memory peak flat: 0.29 -> 0.62 MiB before, 0.13 -> 0.15 MiB after);
- an open workload reuses its one pending arrival event: -4% on M/M/4;
- generator handlers driven without a SimPy process (``sim.handler.Task``: the service
  time is one heap callback, a ``ctx.call`` reply resumes the handler in place, no event
  per call): chain 30.0 -> 22.8 µs, fan-out 39.9 -> 33.1 µs (e-commerce: 5.97 -> 4.62
  events and 21.8 -> 19.9 µs per call);
- the network's FIFO arrival without ``max()`` and its environment read once: -5% of a send.

Tried and dropped: plain slotted objects instead of Event subclasses in the heap (-15 ns an
event) were not worth leaving SimPy's types; a run loop of our own instead of SimPy's
``Environment.run`` (-2% on the chain) was not worth owning its semantics; ``Timeout``'s
timer registration inlined: no measurable gain.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import simpy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim  # after the path tweak, so that the script runs from a checkout too

# M/M/c
SERVERS = 4
MEAN_SERVICE_S = 1.0
RHO = 0.8
ARRIVAL_RATE = RHO * SERVERS / MEAN_SERVICE_S

# 3-hop chain
LINK_MEDIAN_S = 0.001
LINK_P99_S = 0.005
POOLS = (16, 8, 4)  # gateway, service, database
SERVICE_MEANS_S = (0.0005, 0.002, 0.001)
CHAIN_RATE = 1000.0
CLIENT_TIMEOUT_S = 0.050
# fan-out: a front tier whose generator handler calls a back tier several times in turn
FANOUT_CALLS = 4
FANOUT_POOLS = (32, 8)  # front, back
FANOUT_MEANS_S = (0.0005, 0.0002)
FANOUT_RATE = 500.0
# sigma of the lognormal whose p99 is LINK_P99_S / LINK_MEDIAN_S times its median
Z99 = 2.326347874040841
LINK_SIGMA = math.log(LINK_P99_S / LINK_MEDIAN_S) / Z99
LINK_MU = math.log(LINK_MEDIAN_S)


# -- M/M/c ---------------------------------------------------------------------------------


def mmc_simpy(customers: int, seed: int = 1) -> tuple[float, int]:
    """Idiomatic SimPy M/M/c: returns (mean wait, customers)."""
    rng = random.Random(seed)
    env = simpy.Environment()
    servers = simpy.Resource(env, capacity=SERVERS)
    total_wait = [0.0, 0]

    def customer(env: simpy.Environment) -> Any:
        arrived = env.now
        with servers.request() as request:
            yield request
            total_wait[0] += env.now - arrived
            total_wait[1] += 1
            yield env.timeout(rng.expovariate(1.0 / MEAN_SERVICE_S))

    def source(env: simpy.Environment) -> Any:
        for _ in range(customers):
            yield env.timeout(rng.expovariate(ARRIVAL_RATE))
            env.process(customer(env))

    env.process(source(env))
    env.run()
    return total_wait[0] / total_wait[1], customers


def mmc_world(customers: int, seed: int = 1) -> tuple[sim.World, sim.OpenWorkload]:
    world = sim.World(seed=seed)
    service = sim.Service(world, "server", world.node("server"), workers=SERVERS)
    service.endpoint("work", sim.Exponential(MEAN_SERVICE_S))
    load = sim.OpenWorkload(world, "load", "server.work", ARRIVAL_RATE)
    load.stop_s = customers / ARRIVAL_RATE  # about `customers` arrivals, then drain
    return world, load


def mmc_sim(customers: int, seed: int = 1) -> tuple[float, int]:
    """The same model from sim's Service and Pool: returns (mean wait, customers)."""
    world, load = mmc_world(customers, seed)
    world.env.run()  # until the last customer leaves
    waits = world.metrics.histogram("pool.server.wait")
    return waits.mean(), load.stats.requests.value


# -- 3-hop chain -----------------------------------------------------------------------------


SimPyHandler = Callable[[simpy.Environment], Any]


def simpy_hop(env: simpy.Environment, rng: random.Random, handler: SimPyHandler) -> Any:
    """A call in idiomatic SimPy: the request crosses the link, the handler runs, the reply
    crosses back."""
    yield env.timeout(rng.lognormvariate(LINK_MU, LINK_SIGMA))
    value = yield env.process(handler(env))
    yield env.timeout(rng.lognormvariate(LINK_MU, LINK_SIGMA))
    return value


def simpy_open_loop(
    env: simpy.Environment, rng: random.Random, requests: int, rate: float, first: SimPyHandler
) -> list[float]:
    """Poisson arrivals at ``rate``, each a client calling ``first`` with a timeout; runs the
    model and returns [total latency of successes, successes]."""
    done = [0.0, 0]

    def client(env: simpy.Environment) -> Any:
        start = env.now
        call = env.process(simpy_hop(env, rng, first))
        outcome = yield call | env.timeout(CLIENT_TIMEOUT_S)
        if call in outcome:
            done[0] += env.now - start
            done[1] += 1

    def source(env: simpy.Environment) -> Any:
        for _ in range(requests):
            yield env.timeout(rng.expovariate(rate))
            env.process(client(env))

    env.process(source(env))
    env.run()
    return done


def chain_simpy(requests: int, seed: int = 1) -> tuple[float, int]:
    """Idiomatic SimPy chain: returns (mean latency of successes, requests)."""
    rng = random.Random(seed)
    env = simpy.Environment()
    gateway, service, database = (simpy.Resource(env, capacity=c) for c in POOLS)
    means = SERVICE_MEANS_S

    def database_handler(env: simpy.Environment) -> Any:
        with database.request() as worker:
            yield worker
            yield env.timeout(rng.expovariate(1.0 / means[2]))
        return "row"

    def service_handler(env: simpy.Environment) -> Any:
        with service.request() as worker:
            yield worker
            yield env.timeout(rng.expovariate(1.0 / means[1]))
            row = yield env.process(simpy_hop(env, rng, database_handler))
        return row

    def gateway_handler(env: simpy.Environment) -> Any:
        with gateway.request() as worker:
            yield worker
            yield env.timeout(rng.expovariate(1.0 / means[0]))
            reply = yield env.process(simpy_hop(env, rng, service_handler))
        return reply

    done = simpy_open_loop(env, rng, requests, CHAIN_RATE, gateway_handler)
    return done[0] / done[1], requests


def chain_sim(requests: int, seed: int = 1) -> tuple[float, int]:
    """The same chain from sim: returns (mean latency of successes, requests)."""
    world = linked_world(seed)
    names = ("gateway", "service", "database")
    tiers = [
        sim.Service(world, name, world.node(name), workers=workers)
        for name, workers in zip(names, POOLS, strict=True)
    ]

    def gateway_handler(ctx: sim.Context, payload: Any) -> Any:
        reply = yield from ctx.call("service.get", payload)
        return reply

    def service_handler(ctx: sim.Context, payload: Any) -> Any:
        row = yield from ctx.call("database.get", payload)
        return row

    handlers = (gateway_handler, service_handler, None)
    for tier, mean, handler in zip(tiers, SERVICE_MEANS_S, handlers, strict=True):
        tier.endpoint("get", sim.Exponential(mean), handler=handler)
    return open_loop(world, "gateway.get", CHAIN_RATE, requests)


def linked_world(seed: int) -> sim.World:
    """A world whose links are those of the SimPy models: lognormal, independent delays per
    message (``reorder=True``; sim's default keeps each directed pair FIFO like one TCP
    connection, which adds head-of-line waits)."""
    world = sim.World(seed=seed)
    latency = sim.LogNormal.from_median_p99(LINK_MEDIAN_S, LINK_P99_S)
    world.network.set_default(sim.Link(latency, reorder=True))
    return world


def open_loop(world: sim.World, target: str, rate: float, requests: int) -> tuple[float, int]:
    """About ``requests`` Poisson arrivals at ``rate`` calling ``target`` with the client
    timeout, run to the end: (mean latency of successes, requests)."""
    load = sim.OpenWorkload(world, "load", target, rate, timeout_s=CLIENT_TIMEOUT_S)
    load.stop_s = requests / rate
    world.env.run()
    return load.stats.latency.mean(), load.stats.requests.value


# -- fan-out: one generator hop making sequential downstream calls --------------------------


def fanout_simpy(requests: int, seed: int = 1) -> tuple[float, int]:
    """Idiomatic SimPy fan-out: returns (mean latency of successes, requests)."""
    rng = random.Random(seed)
    env = simpy.Environment()
    front, back = (simpy.Resource(env, capacity=c) for c in FANOUT_POOLS)

    def back_handler(env: simpy.Environment) -> Any:
        with back.request() as worker:
            yield worker
            yield env.timeout(rng.expovariate(1.0 / FANOUT_MEANS_S[1]))
        return "row"

    def front_handler(env: simpy.Environment) -> Any:
        with front.request() as worker:
            yield worker
            yield env.timeout(rng.expovariate(1.0 / FANOUT_MEANS_S[0]))
            rows = []
            for _ in range(FANOUT_CALLS):
                rows.append((yield env.process(simpy_hop(env, rng, back_handler))))
        return rows

    done = simpy_open_loop(env, rng, requests, FANOUT_RATE, front_handler)
    return done[0] / done[1], requests


def fanout_sim(requests: int, seed: int = 1) -> tuple[float, int]:
    """The same fan-out from sim: returns (mean latency of successes, requests)."""
    world = linked_world(seed)
    front = sim.Service(world, "front", world.node("front"), workers=FANOUT_POOLS[0])
    back = sim.Service(world, "back", world.node("back"), workers=FANOUT_POOLS[1])

    def front_handler(ctx: sim.Context, payload: Any) -> Any:
        rows = []
        for _ in range(FANOUT_CALLS):
            rows.append((yield from ctx.call("back.get", payload)))
        return rows

    front.endpoint("get", sim.Exponential(FANOUT_MEANS_S[0]), handler=front_handler)
    back.endpoint("get", sim.Exponential(FANOUT_MEANS_S[1]))
    return open_loop(world, "front.get", FANOUT_RATE, requests)


# -- measuring -------------------------------------------------------------------------------


def timed(fn: Callable[[int], tuple[float, int]], size: int) -> tuple[float, float, int]:
    """(wall seconds, figure, count) of one run, garbage collected before it starts."""
    gc.collect()
    start = time.perf_counter()
    figure, count = fn(size)
    return time.perf_counter() - start, figure, count


def best_of(
    variants: dict[str, Callable[[int], tuple[float, int]]], size: int, repeats: int
) -> dict[str, tuple[float, float, int]]:
    """Run the variants interleaved ``repeats`` times; keep each one's fastest run."""
    best: dict[str, tuple[float, float, int]] = {}
    for _ in range(repeats):
        for name, fn in variants.items():
            result = timed(fn, size)
            if name not in best or result[0] < best[name][0]:
                best[name] = result
    return best


def report(title: str, unit: str, figure: str, best: dict[str, tuple[float, float, int]]) -> None:
    (a_name, (a_s, a_fig, a_n)), (b_name, (b_s, b_fig, b_n)) = best.items()
    print(title)
    for name, seconds, fig, n in ((a_name, a_s, a_fig, a_n), (b_name, b_s, b_fig, b_n)):
        print(
            f"  {name:<16} {seconds:8.3f} s  {seconds / n * 1e6:7.2f} µs/{unit}  "
            f"{figure} {fig * 1e3 if unit == 'request' else fig:.4f}"
            f"{' ms' if unit == 'request' else ' s'}  ({n:,} {unit}s)"
        )
    per_a, per_b = a_s / a_n, b_s / b_n
    print(f"  ratio sim/simpy  {per_b / per_a:.2f}x per {unit} ({b_s / a_s:.2f}x wall time)")


def peak_memory(customers: int) -> float:
    """Peak traced memory, MiB, of the sim M/M/c model run to ``customers`` arrivals."""
    gc.collect()
    tracemalloc.start()
    mmc_sim(customers)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=200_000, help="M/M/c customers")
    parser.add_argument("--requests", type=int, default=100_000, help="3-hop chain requests")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per variant")
    parser.add_argument(
        "--memory", type=int, nargs=2, default=(50_000, 800_000), metavar=("SMALL", "LARGE"),
        help="customer counts of the memory comparison (0 0 skips it)",
    )  # fmt: skip
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, simpy {simpy.__version__}; best of {args.repeats}")
    print(f"M/M/{SERVERS}: rho {RHO}, mean service {MEAN_SERVICE_S} s, arrivals {ARRIVAL_RATE}/s")
    best = best_of({"simpy idiomatic": mmc_simpy, "sim": mmc_sim}, args.customers, args.repeats)
    report(f"M/M/{SERVERS}, {args.customers:,} customers", "customer", "mean wait", best)
    print(
        f"3-hop chain: lognormal links median {LINK_MEDIAN_S * 1e3:g} ms p99 "
        f"{LINK_P99_S * 1e3:g} ms, pools {POOLS}, service means "
        f"{tuple(m * 1e3 for m in SERVICE_MEANS_S)} ms, {CHAIN_RATE:g}/s, "
        f"timeout {CLIENT_TIMEOUT_S * 1e3:g} ms"
    )
    best = best_of({"simpy idiomatic": chain_simpy, "sim": chain_sim}, args.requests, args.repeats)
    report(f"3-hop chain, {args.requests:,} requests", "request", "mean latency", best)
    print(
        f"fan-out: the front's generator handler calls the back {FANOUT_CALLS} times in turn; "
        f"pools {FANOUT_POOLS}, service means {tuple(m * 1e3 for m in FANOUT_MEANS_S)} ms, "
        f"links as the chain, {FANOUT_RATE:g}/s, timeout {CLIENT_TIMEOUT_S * 1e3:g} ms"
    )
    fanout = args.requests // 2
    best = best_of({"simpy idiomatic": fanout_simpy, "sim": fanout_sim}, fanout, args.repeats)
    report(f"fan-out, {fanout:,} requests", "request", "mean latency", best)
    small, large = args.memory
    if small and large:
        low, high = peak_memory(small), peak_memory(large)
        print(
            f"memory (sim M/M/{SERVERS}, tracemalloc peak): {small:,} customers {low:.2f} MiB, "
            f"{large:,} customers {high:.2f} MiB, ratio {high / low:.2f}"
        )


if __name__ == "__main__":
    main()
