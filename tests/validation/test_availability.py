"""Availability algebra: a node that fails and is repaired at random is up
MTBF / (MTBF + MTTR) of the time.

``node.fail_randomly(Exponential(MTBF), Exponential(MTTR))`` is an alternating renewal
process; its long-run share of up time is ``MTBF / (MTBF + MTTR)`` (for any distributions
with those means). Measured from the node's state timeline (``node.<name>.state``: seconds
in ``up`` since the warm-up) over R replications, judged by the rule in ``theory.py``.
"""

from __future__ import annotations

import pytest

from sim import Exponential, World

from .theory import check_against_theory

SEED = 20261127
REPLICATIONS = 20
HORIZON_S = 100_000.0
WARMUP_S = 1_000.0


@pytest.mark.parametrize(
    ("kind", "down_state", "mtbf_s", "mttr_s"),
    [("crash", "down", 9.0, 1.0), ("hang", "hung", 60.0, 15.0)],
)
def test_share_of_time_up_is_mtbf_over_mtbf_plus_mttr(
    kind: str, down_state: str, mtbf_s: float, mttr_s: float
) -> None:
    shares = []
    for replication in range(REPLICATIONS):
        world = World(seed=SEED, replication=replication)
        node = world.node("server")
        node.fail_randomly(Exponential(mtbf_s), Exponential(mttr_s), kind=kind)  # type: ignore[arg-type]
        world.run(HORIZON_S, warmup_s=WARMUP_S)
        spent = node.state.time_in()
        assert set(spent) == {"up", down_state}
        assert sum(spent.values()) == pytest.approx(HORIZON_S - WARMUP_S)
        shares.append(spent["up"] / (HORIZON_S - WARMUP_S))
    # crash: 9 / 10 = 0.9; hang: 60 / 75 = 0.8
    check_against_theory(f"availability ({kind})", shares, mtbf_s / (mtbf_s + mttr_s))
