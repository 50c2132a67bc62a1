"""Benchmark of the ecommerce model: simulated days per wall-clock second for the resilient
configuration, and peak traced memory of a short run against a long one.

    python benchmarks/ecommerce.py                 # 30-day speed run; memory 1 day vs 30 days
    python benchmarks/ecommerce.py --days 3 --memory-days 7
    python benchmarks/ecommerce.py --profile 0.5   # cProfile of half a day, top functions

Targets (issue 6): a 30-day replication in at most 30 s on one core; peak memory of a 30-day
run within 1.2x of a 1-day run. Speed is measured without tracemalloc (it slows Python
several-fold); memory with it, each run in a fresh process so one run's allocations do not
count in the other's peak. The model runs as `sim run` runs it: World with a 1-hour series
window, the default parameters (random failures on), seed 2026, replication 0.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import subprocess
import sys
import time
import tracemalloc

DAY_S = 86_400.0


def _shop(seed: int = 2026) -> tuple[object, object]:
    from models.ecommerce import EcommerceParameters, build_shop
    from sim import World

    world = World(seed, 0, window_s=3600.0)
    shop = build_shop(world, EcommerceParameters())
    return world, shop


def simpy_floor(events: int = 1_000_000) -> float:
    """SimPy's own cost per event, in µs: a timeout with one callback that schedules the
    next, nothing else. Run in the same process as the model, after it, as the baseline."""
    import simpy

    env = simpy.Environment()
    left = [events]

    def tick(_: object) -> None:
        left[0] -= 1
        if left[0] > 0:
            env.timeout(0.001).callbacks.append(tick)

    env.timeout(0.001).callbacks.append(tick)
    started = time.perf_counter()
    env.run()
    return (time.perf_counter() - started) / events * 1e6


def speed(days: float) -> dict[str, float]:
    """Wall time of one replication of ``days`` (build included), the calls and SimPy
    events it took, and SimPy's bare cost per event measured right after in this process."""
    started = time.perf_counter()
    world, shop = _shop()
    world.run(days * DAY_S)  # type: ignore[attr-defined]
    wall = time.perf_counter() - started
    orders = shop.orders.stats.requests.value  # type: ignore[attr-defined]
    services = world.services.values()  # type: ignore[attr-defined]
    calls = sum(e.received.value for s in services for e in s.endpoints.values())
    events = next(world.env._eid)  # type: ignore[attr-defined]  # SimPy's event counter
    return {"days": days, "wall_s": wall, "days_per_s": days / wall,
            "orders": orders, "us_per_order": wall / orders * 1e6,
            "calls": calls, "events": events, "floor_us": simpy_floor()}  # fmt: skip


def memory(days: float) -> dict[str, float]:
    """Peak traced memory (MiB) of one replication of ``days``, build included."""
    tracemalloc.start()
    world, _ = _shop()
    world.run(days * DAY_S)  # type: ignore[attr-defined]
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"days": days, "peak_mib": peak / 2**20, "end_mib": current / 2**20}


def _in_child(kind: str, days: float) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(days)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def profile(days: float, top: int) -> None:
    world, _ = _shop()
    profiler = cProfile.Profile()
    profiler.enable()
    world.run(days * DAY_S)  # type: ignore[attr-defined]
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30.0, help="speed run length")
    parser.add_argument("--memory-days", type=float, default=30.0, help="long memory run")
    parser.add_argument("--profile", type=float, default=None, help="profile this many days")
    parser.add_argument("--child", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        kind, days = args.child[0], float(args.child[1])
        print(json.dumps(speed(days) if kind == "speed" else memory(days)))
        return
    if args.profile is not None:
        profile(args.profile, 30)
        return
    fast = _in_child("speed", args.days)
    print(f"speed: {fast['days']:g} simulated days in {fast['wall_s']:.1f} s wall "
          f"= {fast['days_per_s']:.3f} days/s; {fast['orders']:.0f} orders, "
          f"{fast['us_per_order']:.0f} us of wall time per order (browsing included); "
          f"30-day replication ~ {30 / fast['days_per_s']:.0f} s (target <= 30 s)")  # fmt: skip
    per_day = fast["events"] / fast["days"]
    floor_s = per_day * fast["floor_us"] * 1e-6
    print(f"work: {fast['calls'] / fast['days']:,.0f} calls and {per_day:,.0f} SimPy events "
          f"a day ({fast['events'] / fast['calls']:.2f} per call); SimPy alone costs "
          f"{fast['floor_us']:.2f} us an event here, so the events alone take {floor_s:.2f} s "
          f"a day ({30 * floor_s:.0f} s for 30 days); the model runs at "
          f"{fast['wall_s'] / fast['days'] / floor_s:.1f}x that floor")  # fmt: skip
    short = _in_child("memory", 1.0)
    long = _in_child("memory", args.memory_days)
    ratio = long["peak_mib"] / short["peak_mib"]
    print(f"memory: peak {short['peak_mib']:.1f} MiB (1 day), {long['peak_mib']:.1f} MiB "
          f"({long['days']:g} days): ratio {ratio:.2f} (target <= 1.2)")  # fmt: skip


if __name__ == "__main__":
    main()
