"""Statistics across replications: Student-t confidence intervals, paired and unpaired
differences, and SLO verdicts.

Replications are independent by construction (seed + replication index), so the mean of a
metric over ``n`` replications has the interval ``mean ± t(0.975, n-1) · s / √n``. The t
quantile is computed here from the exact closed form of Student's t distribution for an
integer number of degrees of freedom (Abramowitz & Stegun 26.7.3-4) and bisection, and past
200 degrees of freedom from the normal quantile by the Cornish-Fisher expansion, so no scipy
is needed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist

__all__ = [
    "Interval",
    "Verdict",
    "interval",
    "paired_difference",
    "t_quantile",
    "unpaired_difference",
    "verdict",
]

CONFIDENCE = 0.95


def _two_sided_probability(t: float, dof: int) -> float:
    """P(|T| <= t) for Student's t with ``dof`` degrees of freedom (exact, t >= 0)."""
    theta = math.atan(t / math.sqrt(dof))
    cos2 = math.cos(theta) ** 2
    if dof % 2 == 1:
        # odd: (2/π)[θ + sinθ cosθ (1 + (2/3)cos²θ + (2·4)/(3·5)cos⁴θ + ...)], dof-2 terms
        total, term = 0.0, 1.0
        for k in range(1, (dof - 1) // 2 + 1):
            total += term
            term *= cos2 * (2 * k) / (2 * k + 1)
        series = math.sin(theta) * math.cos(theta) * total if dof > 1 else 0.0
        return 2.0 / math.pi * (theta + series)
    # even: sinθ (1 + (1/2)cos²θ + (1·3)/(2·4)cos⁴θ + ...), dof/2 terms
    total, term = 0.0, 1.0
    for k in range(1, dof // 2 + 1):
        total += term
        term *= cos2 * (2 * k - 1) / (2 * k)
    return math.sin(theta) * total


_EXPANSION_FROM = 200


def _cornish_fisher(dof: int, confidence: float) -> float:
    """The t quantile from the normal one by the Cornish-Fisher expansion in 1/dof (Abramowitz
    & Stegun 26.7.5); past 200 degrees of freedom its error is below 1e-10."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    n = float(dof)
    terms = (
        (z**3 + z) / 4.0,
        (5 * z**5 + 16 * z**3 + 3 * z) / 96.0,
        (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384.0,
        (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160.0,
    )
    return z + sum(term / n ** (k + 1) for k, term in enumerate(terms))


@functools.lru_cache(maxsize=256)
def t_quantile(dof: int, confidence: float = CONFIDENCE) -> float:
    """The ``t`` with P(|T| <= t) = ``confidence`` for ``dof`` degrees of freedom (>= 1).

    ``t_quantile(4) == 2.776...``, the 0.975 quantile; tends to 1.95996... as dof grows.
    """
    if dof < 1:
        raise ValueError(f"dof must be >= 1, got {dof}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    if dof > _EXPANSION_FROM:
        return _cornish_fisher(dof, confidence)
    low, high = 0.0, 1.0
    while _two_sided_probability(high, dof) < confidence:
        high *= 2.0
    for _ in range(200):  # bisection to the last bit of a double
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if _two_sided_probability(middle, dof) < confidence:
            low = middle
        else:
            high = middle
    return 0.5 * (low + high)


@dataclass(frozen=True)
class Interval:
    """A mean and its confidence interval.

    Attributes:
        mean: the sample mean (nan when there is no value).
        half_width: half the interval's width (nan with fewer than two values).
        n: the number of values (nan values are left out).
        sd: the sample standard deviation (nan with fewer than two values).
    """

    mean: float
    half_width: float
    n: int
    sd: float

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width


def _finite(values: Sequence[float]) -> list[float]:
    return [float(v) for v in values if not math.isnan(v)]


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return mean, math.nan
    return mean, math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """The mean of ``values`` (nan left out) with its Student-t interval."""
    kept = _finite(values)
    n = len(kept)
    if n == 0:
        return Interval(math.nan, math.nan, 0, math.nan)
    mean, sd = _mean_sd(kept)
    if n < 2:
        return Interval(mean, math.nan, n, math.nan)
    if all(v == kept[0] for v in kept):
        return Interval(kept[0], 0.0, n, 0.0)  # exactly: no rounding noise around a constant
    return Interval(mean, t_quantile(n - 1, confidence) * sd / math.sqrt(n), n, sd)


def paired_difference(
    variant: Sequence[float], baseline: Sequence[float], confidence: float = CONFIDENCE
) -> Interval:
    """The mean of ``variant[r] - baseline[r]`` over replications with its interval.

    With common random numbers the two runs of a replication share their random streams, so
    most of the noise cancels in the difference and the interval is narrow. Pairs with a nan
    on either side are left out.
    """
    if len(variant) != len(baseline):
        raise ValueError("paired samples must have the same length")
    return interval(
        [v - b for v, b in zip(variant, baseline, strict=True) if not (math.isnan(v + b))],
        confidence,
    )


def unpaired_difference(
    variant: Sequence[float], baseline: Sequence[float], confidence: float = CONFIDENCE
) -> Interval:
    """Welch's interval for ``mean(variant) - mean(baseline)``, as if the samples were
    independent: what the comparison would cost without common random numbers."""
    a, b = _finite(variant), _finite(baseline)
    if not a or not b:
        return Interval(math.nan, math.nan, 0, math.nan)
    mean_a, sd_a = _mean_sd(a)
    mean_b, sd_b = _mean_sd(b)
    difference = mean_a - mean_b
    if len(a) < 2 or len(b) < 2:
        return Interval(difference, math.nan, min(len(a), len(b)), math.nan)
    va, vb = sd_a**2 / len(a), sd_b**2 / len(b)
    se = math.sqrt(va + vb)
    if se == 0.0:
        return Interval(difference, 0.0, min(len(a), len(b)), 0.0)
    # Welch–Satterthwaite degrees of freedom, rounded down to an integer (conservative).
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    if not math.isfinite(dof):  # an infinite value among the samples: no interval
        return Interval(difference, math.nan, min(len(a), len(b)), math.nan)
    return Interval(
        difference, t_quantile(max(1, int(dof)), confidence) * se, min(len(a), len(b)), se
    )


class Verdict(StrEnum):
    """An SLO verdict from a confidence interval."""

    MET = "met"
    MISSED = "missed"
    INCONCLUSIVE = "inconclusive"  # the interval straddles the target


def verdict(estimate: Interval, target: float, *, higher_is_better: bool) -> Verdict:
    """Met when the whole interval is on the good side of ``target``, missed when it is
    wholly on the bad side, inconclusive otherwise (also with fewer than two values)."""
    if math.isnan(estimate.mean) or math.isnan(estimate.half_width):
        return Verdict.INCONCLUSIVE
    good = estimate.low >= target if higher_is_better else estimate.high <= target
    bad = estimate.high < target if higher_is_better else estimate.low > target
    if good:
        return Verdict.MET
    if bad:
        return Verdict.MISSED
    return Verdict.INCONCLUSIVE
