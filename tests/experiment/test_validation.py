"""Validation against theory: experiments/mmc.toml (a topology config) against Erlang C, and
a paired comparison whose common random numbers make its interval narrower than an unpaired
one would be."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path

from sim.experiment import load_experiment, run
from sim.experiment.config import experiment_from_dict
from sim.experiment.stats import interval

MMC = Path(__file__).parents[2] / "experiments" / "mmc.toml"
ARRIVAL_RATE, SERVICE_RATE, SERVERS = 3.2, 1.0, 4


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/c with offered load ``offered`` = lambda/mu."""
    rho = offered / servers
    below = sum(offered**k / math.factorial(k) for k in range(servers))
    top = offered**servers / math.factorial(servers) / (1.0 - rho)
    return top / (below + top)


def test_mmc_topology_matches_erlang_c() -> None:
    # 10 replications of 2 h after 10 min warm-up: ~23,000 customers each.
    results = run(load_experiment(MMC, ['experiment.duration="2h"']))
    offered = ARRIVAL_RATE / SERVICE_RATE
    p_wait = erlang_c(SERVERS, offered)  # 0.5964
    wait = p_wait / (SERVERS * SERVICE_RATE - ARRIVAL_RATE)  # Wq = 0.7455 s
    theory = {
        "pool.queue.wait_probability": p_wait,
        "latency.mean": wait + 1.0 / SERVICE_RATE,  # W = Wq + 1/mu = 1.7455 s
        "pool.queue.queue.mean": ARRIVAL_RATE * wait,  # Lq = lambda Wq = 2.386 (Little)
        "pool.queue.utilization": offered / SERVERS,  # rho = 0.8
        "throughput": ARRIVAL_RATE,
        "availability": 1.0,
    }
    replications = results.replications
    for metric, expected in theory.items():
        values = list(replications[metric])
        # The tolerance is the replications' own 99.9% Student-t interval: with independent
        # replications it misses the true mean once in a thousand seeds. The 95% interval of
        # the summary must agree with the table, and be tight enough for the check to bite.
        wide = interval(values, confidence=0.999)
        assert wide.low <= expected <= wide.high, (metric, wide, expected)
        summary = results.interval(metric)
        assert summary.mean == wide.mean and summary.half_width <= wide.half_width
        assert summary.half_width <= 0.15 * expected, (metric, summary)


def test_paired_comparison_is_narrower_than_unpaired() -> None:
    data = tomllib.loads(MMC.read_text())
    data["experiment"]["duration"] = "1h"
    faster = {"kind": "exponential", "mean": "0.95s"}
    data["sweep"] = {
        "variants": {
            "base": {},
            "faster": {"model.services.queue.endpoints.serve.service_time": faster},
        }
    }
    results = run(experiment_from_dict(data))
    rows = results.comparisons.set_index("metric")
    # Both variants of replication r draw arrivals and service times from the same streams,
    # so their difference cancels most of the noise that an unpaired comparison keeps.
    for metric in ("latency.mean", "pool.queue.utilization", "pool.queue.queue.mean"):
        row = rows.loc[metric]
        assert row["half_width"] < 0.5 * row["unpaired_half_width"], (metric, row)
        assert row["ci_high"] < 0.0  # 5% faster service: less waiting, shorter queues
    # Utilization drops by lambda * 0.05 s / 4 = 0.04 in expectation (99.9% paired interval).
    utilization = rows.loc["pool.queue.utilization"]
    paired = interval(
        list(
            results.replications.query("variant == 'faster'")["pool.queue.utilization"].to_numpy()
            - results.replications.query("variant == 'base'")["pool.queue.utilization"].to_numpy()
        ),
        confidence=0.999,
    )
    assert paired.low <= -0.04 <= paired.high
    assert paired.mean == utilization["difference"]
