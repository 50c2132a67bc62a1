"""Where does sim's time go? cProfile of the benchmark models built from sim.

Run: ``python benchmarks/profile_engine.py`` (``--help`` for sizes and the number of rows).
Prints, per model, the functions with the most own time (``tottime``) and the most
cumulative time: the list to start from when tuning the hot path.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine import chain_sim, mmc_sim  # the benchmark models, with the same parameters


def profile(title: str, run: cProfile.Profile, rows: int) -> None:
    print(f"=== {title}")
    stats = pstats.Stats(run, stream=sys.stdout)
    stats.strip_dirs().sort_stats("tottime").print_stats(rows)
    stats.sort_stats("cumulative").print_stats(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=100_000, help="M/M/c customers")
    parser.add_argument("--requests", type=int, default=30_000, help="3-hop chain requests")
    parser.add_argument("--rows", type=int, default=25, help="functions listed per table")
    args = parser.parse_args()
    for title, model, size in (
        (f"sim M/M/4, {args.customers:,} customers", mmc_sim, args.customers),
        (f"sim 3-hop chain, {args.requests:,} requests", chain_sim, args.requests),
    ):
        run = cProfile.Profile()
        run.runcall(model, size)
        profile(title, run, args.rows)


if __name__ == "__main__":
    main()
