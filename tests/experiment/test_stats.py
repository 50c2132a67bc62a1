"""Student-t quantiles, intervals, paired and unpaired differences, SLO verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim.experiment.stats import (
    Interval,
    Verdict,
    interval,
    paired_difference,
    t_quantile,
    unpaired_difference,
    verdict,
)

# Two-sided 95% critical values of Student's t, as printed in statistical tables.
TABLE = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 9: 2.262, 10: 2.228, 19: 2.093,
         29: 2.045, 60: 2.000, 120: 1.980}  # fmt: skip


@pytest.mark.parametrize(("dof", "expected"), sorted(TABLE.items()))
def test_t_quantiles_match_the_printed_table(dof: int, expected: float) -> None:
    assert t_quantile(dof) == pytest.approx(expected, abs=6e-4)  # tables round to 3 decimals


def test_t_quantile_tends_to_the_normal_quantile() -> None:
    assert t_quantile(10**6) == pytest.approx(1.959964, abs=1e-5)
    assert t_quantile(5, 0.99) == pytest.approx(4.032, abs=6e-4)  # the 99% column of the table


def test_interval_of_known_values() -> None:
    estimate = interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert estimate.mean == 3.0
    assert estimate.sd == pytest.approx(math.sqrt(2.5))
    assert estimate.half_width == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5))
    assert interval([2.0, 2.0, 2.0]) == Interval(2.0, 0.0, 3, 0.0)
    assert math.isnan(interval([4.0]).half_width)
    assert interval([1.0, math.nan, 3.0]).n == 2  # nan values are left out


def test_intervals_cover_the_true_mean_95_percent_of_the_time() -> None:
    # Validation: 4000 intervals from 5 normal draws each. Coverage is binomial with p = 0.95,
    # sd = sqrt(0.95 * 0.05 / 4000) = 0.0034; 4 sd = 0.014 is the tolerance.
    rng = np.random.default_rng(2026)
    samples = rng.normal(10.0, 3.0, size=(4000, 5))
    covered = [interval(list(row)).low <= 10.0 <= interval(list(row)).high for row in samples]
    assert abs(np.mean(covered) - 0.95) < 0.014


def test_paired_difference_cancels_shared_noise() -> None:
    rng = np.random.default_rng(1)
    shared = rng.normal(0.0, 10.0, 20)  # what both variants see (common random numbers)
    baseline = list(shared + rng.normal(0.0, 0.1, 20))
    variant = list(shared + 1.0 + rng.normal(0.0, 0.1, 20))
    paired = paired_difference(variant, baseline)
    unpaired = unpaired_difference(variant, baseline)
    assert paired.low < 1.0 < paired.high
    assert paired.half_width < unpaired.half_width / 20
    assert paired.mean == pytest.approx(unpaired.mean)


def test_unpaired_difference_uses_welch_degrees_of_freedom() -> None:
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 2.5, 3.0]
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 3
    dof = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    expected = t_quantile(int(dof)) * math.sqrt(va + vb)
    assert unpaired_difference(a, b).half_width == pytest.approx(expected)


@pytest.mark.parametrize(
    ("values", "target", "higher", "expected"),
    [
        ([0.995, 0.996, 0.997], 0.99, True, Verdict.MET),
        ([0.95, 0.96, 0.97], 0.99, True, Verdict.MISSED),
        ([0.98, 0.99, 1.0], 0.99, True, Verdict.INCONCLUSIVE),
        ([0.2, 0.25, 0.3], 1.0, False, Verdict.MET),
        ([2.0, 2.5, 3.0], 1.0, False, Verdict.MISSED),
        ([0.5], 1.0, False, Verdict.INCONCLUSIVE),  # one value: no interval
    ],
)
def test_verdicts_from_the_interval(
    values: list[float], target: float, higher: bool, expected: Verdict
) -> None:
    assert verdict(interval(values), target, higher_is_better=higher) is expected
