"""The formulas and intervals the validation tests rely on, checked against known values."""

from __future__ import annotations

import math

import pytest

from sim.experiment.stats import interval, t_quantile

from .theory import T_975, erlang_b, erlang_c, mmc_sojourn, mmc_wait


@pytest.mark.parametrize("dof", sorted(T_975))
def test_t_quantiles_match_the_printed_table(dof: int) -> None:
    assert t_quantile(dof) == pytest.approx(T_975[dof], abs=0.0015)


def test_interval_half_width_is_t_times_the_standard_error() -> None:
    values = [1.0, 2.0, 4.0, 7.0, 11.0]  # mean 5, sample sd sqrt(16.5)
    estimate = interval(values)
    assert estimate.mean == 5.0
    assert estimate.half_width == pytest.approx(2.776 * math.sqrt(16.5 / 5), rel=1e-3)


def test_erlang_formulas_match_closed_forms_and_textbook_values() -> None:
    assert erlang_b(1, 0.8) == pytest.approx(0.8 / 1.8)  # M/M/1/1: a / (1 + a)
    assert erlang_c(1, 0.8) == pytest.approx(0.8)  # M/M/1: P(wait) = rho
    assert mmc_wait(0.8, 1.0, 1) == pytest.approx(4.0)  # rho / (mu - lambda)
    assert mmc_sojourn(0.8, 1.0, 1) == pytest.approx(5.0)  # 1 / (mu - lambda)
    # B(c, a) from its definition, (a^c/c!) / sum_k a^k/k!, for a few cases
    for c, a in ((2, 1.0), (5, 4.0), (10, 7.5)):
        terms = [a**k / math.factorial(k) for k in range(c + 1)]
        assert erlang_b(c, a) == pytest.approx(terms[-1] / sum(terms))
    assert erlang_b(5, 4.0) == pytest.approx(0.1991, abs=1e-4)  # the classic table value
    assert erlang_c(4, 3.2) == pytest.approx(0.5964, abs=1e-4)
