"""Distributions: validation against theory, reproducibility of samplers, and config parsing.

Tolerances for sampled statistics are derived from standard errors, never tuned to a seed.
With 200,000 draws a sample mean is within 5 standard errors of the true mean except with
probability about 6e-7 (two-sided normal tail beyond 5; the CLT is accurate at this n for
the distributions used, all with finite fourth moments). The seed is fixed, so the test is
deterministic anyway; the tolerance says how large an error in a formula or a sampler it can
miss: about 5·sd/√n = 1.1% of one standard deviation.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
from dataclasses import FrozenInstanceError
from statistics import NormalDist

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import distributions
from sim.distributions import (
    DISTRIBUTIONS,
    Constant,
    Distribution,
    Empirical,
    Exponential,
    LogNormal,
    Normal,
    Pareto,
    Uniform,
    Weibull,
    parse_distribution,
)
from sim.errors import ConfigError

SEED = 12345
DRAWS = 200_000
STANDARD_ERRORS = 5

EXAMPLES: list[Distribution] = [
    Constant(0.002),
    Exponential(0.002),
    Uniform(0.001, 0.004),
    Normal(0.010, 0.002),
    Normal(0.001, 0.002),  # heavy truncation: ~31% of the untruncated mass is below zero
    Normal(0.0, 1.0),  # half-normal
    LogNormal.from_median_p99(0.001, 0.010),
    LogNormal(-7.0, 0.5),
    Pareto(5.0, 0.002),  # shape > 4: finite fourth moment, so the CLT applies at this n
    Weibull(0.7, 3600.0),
    Weibull(3.0, 2.0),
    Empirical([0.001, 0.001, 0.002, 0.010, 0.0]),
]


def _id(distribution: Distribution) -> str:
    return repr(distribution)


def rng() -> np.random.Generator:
    return np.random.default_rng(SEED)


# --- validation against theory ------------------------------------------------------------


@pytest.mark.parametrize("distribution", EXAMPLES, ids=_id)
def test_sample_mean_matches_theoretical_mean(distribution: Distribution) -> None:
    draws = distribution.sample(rng(), DRAWS)
    assert draws.dtype == np.float64
    assert draws.shape == (DRAWS,)
    assert (draws >= 0).all()
    standard_error = draws.std(ddof=1) / math.sqrt(DRAWS)
    # The tiny relative slack covers Constant, whose standard error is 0 while summing 200,000
    # copies of a float may round in the last bit.
    tolerance = STANDARD_ERRORS * standard_error + 1e-12 * distribution.mean
    assert abs(draws.mean() - distribution.mean) <= tolerance


def _fraction_at_or_below(draws: np.ndarray, quantile: float) -> float:
    return float((draws <= quantile).mean())


@pytest.mark.parametrize(("median", "p99"), [(0.001, 0.010), (0.2, 0.25), (3.0, 300.0)])
def test_lognormal_from_median_p99_reproduces_the_quantiles(median: float, p99: float) -> None:
    # In probability space the tolerance is exact binomial reasoning, with no density needed:
    # the share of draws <= the true q-quantile has standard error sqrt(q(1-q)/n).
    draws = LogNormal.from_median_p99(median, p99).sample(rng(), DRAWS)
    for quantile, probability in [(median, 0.5), (p99, 0.99)]:
        standard_error = math.sqrt(probability * (1 - probability) / DRAWS)
        share = _fraction_at_or_below(draws, quantile)
        assert abs(share - probability) <= STANDARD_ERRORS * standard_error


def test_lognormal_parameterisations_agree() -> None:
    by_quantiles = LogNormal.from_median_p99(0.001, 0.010)
    assert by_quantiles.mu == pytest.approx(math.log(0.001))
    assert by_quantiles.sigma == pytest.approx(math.log(10) / NormalDist().inv_cdf(0.99))
    by_mean = LogNormal.from_mean(0.005, 0.5)
    assert by_mean.sigma == 0.5
    assert by_mean.mean == pytest.approx(0.005, rel=1e-12)


def test_truncated_normal_is_truncated_not_clipped() -> None:
    distribution = Normal(0.001, 0.002)
    draws = distribution.sample(rng(), DRAWS)
    assert draws.min() >= 0
    # Clipping would put the whole negative mass, Φ(-0.5) ≈ 31%, at exactly 0.
    assert not (draws == 0).any()
    # Its mean is the truncated mean, far (> 100 standard errors) from mu and from the mean
    # of the clipped distribution, so the sample-mean test above tells them apart.
    a = -distribution.mu / distribution.sd
    clipped_mean = distribution.mu * (1 - NormalDist().cdf(a)) + distribution.sd * NormalDist().pdf(
        a
    )
    standard_error = draws.std(ddof=1) / math.sqrt(DRAWS)
    assert abs(distribution.mean - clipped_mean) > 100 * standard_error
    assert abs(distribution.mean - distribution.mu) > 100 * standard_error
    # The share below mu, from the truncated CDF.
    untruncated = NormalDist(distribution.mu, distribution.sd)
    kept = 1 - untruncated.cdf(0)
    expected_share = (0.5 - untruncated.cdf(0)) / kept
    share = _fraction_at_or_below(draws, distribution.mu)
    assert abs(share - expected_share) <= STANDARD_ERRORS * math.sqrt(
        expected_share * (1 - expected_share) / DRAWS
    )


@pytest.mark.parametrize(
    ("distribution", "mean"),
    [
        (Constant(3.0), 3.0),
        (Exponential.from_rate(500), 0.002),
        (Uniform(1, 3), 2.0),
        (Uniform(2, 2), 2.0),
        (Normal(5.0, 0.0), 5.0),
        (Normal(0.0, 1.0), math.sqrt(2 / math.pi)),  # half-normal
        (Normal(100.0, 1.0), 100.0),  # truncation negligible
        (LogNormal(0.0, 0.0), 1.0),
        (LogNormal(1000.0, 1.0), math.inf),  # too large for a float
        (Pareto(2.0, 3.0), 6.0),
        (Pareto(1.0, 3.0), math.inf),
        (Pareto(0.5, 3.0), math.inf),
        (Weibull(1.0, 2.0), 2.0),  # the exponential
        (Weibull(2.0, 1.0), math.sqrt(math.pi) / 2),
        (Weibull(1e-3, 1.0), math.inf),  # Γ(1001) overflows a float
        (Empirical([1, 2, 6]), 3.0),
    ],
    ids=repr,
)
def test_theoretical_means(distribution: Distribution, mean: float) -> None:
    assert distribution.mean == pytest.approx(mean, rel=1e-12)


# --- reproducibility ----------------------------------------------------------------------


@pytest.mark.parametrize("distribution", EXAMPLES, ids=_id)
@pytest.mark.parametrize("batch", [1, 7, 64, 1024])
def test_sampler_returns_the_draws_of_consecutive_batches(
    distribution: Distribution, batch: int
) -> None:
    count = 3 * batch + 5  # crosses batch boundaries and ends inside a batch
    draw = distribution.sampler(rng(), batch=batch)
    drawn = [draw() for _ in range(count)]
    direct_rng = rng()
    batches = -(-count // batch)
    direct = np.concatenate([distribution.sample(direct_rng, batch) for _ in range(batches)])
    assert drawn == direct[:count].tolist()
    assert all(type(value) is float for value in drawn)


@pytest.mark.parametrize("distribution", EXAMPLES, ids=_id)
def test_batch_size_never_changes_the_values(distribution: Distribution) -> None:
    small, large = distribution.sampler(rng(), batch=7), distribution.sampler(rng())
    assert [small() for _ in range(3000)] == [large() for _ in range(3000)]


@settings(max_examples=30, deadline=None)
@given(
    distribution=st.sampled_from(EXAMPLES),
    first=st.integers(0, 300),
    second=st.integers(0, 300),
    seed=st.integers(0, 2**63),
)
def test_draws_form_a_stream(
    distribution: Distribution, first: int, second: int, seed: int
) -> None:
    # sample(a) then sample(b) gives the same numbers as sample(a + b) from the same state.
    split_rng, whole_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    split = np.concatenate(
        [distribution.sample(split_rng, first), distribution.sample(split_rng, second)]
    )
    whole = distribution.sample(whole_rng, first + second)
    np.testing.assert_array_equal(split, whole)
    # ...and leaves the generator in the same state, so the next component's draws agree too.
    assert split_rng.bit_generator.state == whole_rng.bit_generator.state


@pytest.mark.parametrize("distribution", EXAMPLES, ids=_id)
def test_same_seed_same_draws(distribution: Distribution) -> None:
    np.testing.assert_array_equal(
        distribution.sample(rng(), 1000), distribution.sample(rng(), 1000)
    )


def test_constant_sampler_never_touches_the_rng() -> None:
    generator = rng()
    before = generator.bit_generator.state
    draw = Constant(0.25).sampler(generator)
    assert [draw() for _ in range(5)] == [0.25] * 5
    assert generator.bit_generator.state == before


def test_sampler_draws_lazily() -> None:
    generator = rng()
    before = generator.bit_generator.state
    draw = Exponential(1.0).sampler(generator)
    assert generator.bit_generator.state == before
    draw()
    assert generator.bit_generator.state != before


@settings(max_examples=50, deadline=None)
@given(
    mu=st.floats(0, 10),
    sd=st.floats(0, 10),
    size=st.integers(0, 500),
    seed=st.integers(0, 2**63),
)
def test_truncated_normal_never_negative(mu: float, sd: float, size: int, seed: int) -> None:
    draws = Normal(mu, sd).sample(np.random.default_rng(seed), size)
    assert draws.shape == (size,)
    assert (draws >= 0).all()


# --- values -------------------------------------------------------------------------------


@pytest.mark.parametrize("distribution", EXAMPLES, ids=_id)
def test_frozen_hashable_and_picklable(distribution: Distribution) -> None:
    # Experiments ship configs to worker processes: distributions must pickle.
    first = dataclasses.fields(distribution)[0].name  # type: ignore[arg-type]
    with pytest.raises(FrozenInstanceError):
        setattr(distribution, first, 1.0)
    assert pickle.loads(pickle.dumps(distribution)) == distribution
    assert hash(distribution) == hash(pickle.loads(pickle.dumps(distribution)))


def test_parameters_are_stored_as_floats() -> None:
    assert Exponential(2).mean == 2.0
    assert type(Exponential(2).mean) is float
    empirical = Empirical([1, np.float64(2.5)])
    assert empirical.samples == (1.0, 2.5)
    assert all(type(value) is float for value in empirical.samples)
    assert Empirical([1, 2]) == Empirical((1.0, 2.0))


@pytest.mark.parametrize(
    ("build", "path", "value"),
    [
        (lambda: Exponential(mean=0), "mean", 0),
        (lambda: Exponential(-1.0), "mean", -1.0),
        (lambda: Exponential(math.nan), "mean", math.nan),
        # Text goes through parse_distribution; the constructors take numbers only.
        (lambda: Exponential("2ms"), "mean", "2ms"),  # type: ignore[arg-type]
        (lambda: Exponential.from_rate(0), "rate", 0),
        (lambda: Exponential.from_rate(1e-320), "rate", 1e-320),  # 1/rate overflows
        (lambda: Constant(-1), "value", -1),
        (lambda: Uniform(2, 1), "high", 1.0),
        (lambda: Normal(-1, 1), "mu", -1),
        (lambda: Normal(1, -1), "sd", -1),
        (lambda: LogNormal(math.inf, 1), "mu", math.inf),
        (lambda: LogNormal(0, -1), "sigma", -1),
        (lambda: LogNormal.from_median_p99(5, 1), "p99", 1),
        (lambda: LogNormal.from_median_p99(5, 5), "p99", 5),
        (lambda: LogNormal.from_median_p99(0, 1), "median", 0),
        (lambda: LogNormal.from_mean(0, 1), "mean", 0),
        (lambda: Pareto(0, 1), "shape", 0),
        (lambda: Pareto(1, 0), "scale", 0),
        (lambda: Weibull(-1, 1), "shape", -1),
        (lambda: Weibull(1, 0), "scale", 0),
        (lambda: Empirical([]), "samples", []),
        (lambda: Empirical("123"), "samples", "123"),  # type: ignore[arg-type]
        (lambda: Empirical([1, -2]), "samples[1]", -2),
        (lambda: Empirical([1, math.inf]), "samples[1]", math.inf),
        (lambda: Exponential(1).sampler(rng(), batch=0), "batch", 0),
    ],
)
def test_bad_parameters_are_named(build: object, path: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        build()  # type: ignore[operator]
    (problem,) = caught.value.problems
    assert problem.path == path
    if isinstance(value, float) and math.isnan(value):
        assert isinstance(problem.value, float)
        assert math.isnan(problem.value)
    else:
        assert problem.value == value
    assert str(caught.value).startswith(f"{path}: got {value!r}")


def test_every_bad_parameter_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        Uniform(-1, -2)
    assert [problem.path for problem in caught.value.problems] == ["low", "high"]
    with pytest.raises(ConfigError) as caught:
        Pareto(0, -1)
    assert [problem.path for problem in caught.value.problems] == ["shape", "scale"]
    with pytest.raises(ConfigError) as caught:
        LogNormal.from_median_p99(-1, 0)
    assert [problem.path for problem in caught.value.problems] == ["median", "p99"]
    with pytest.raises(ConfigError) as caught:
        Empirical([-1, 0, -3])
    assert [problem.path for problem in caught.value.problems] == ["samples[0]", "samples[2]"]


# --- config -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (0.002, Constant(0.002)),
        (3, Constant(3.0)),
        ("2ms", Constant(0.002)),
        ({"kind": "constant", "value": "5ms"}, Constant(0.005)),
        ({"kind": "exponential", "mean": "2ms"}, Exponential(0.002)),
        ({"kind": "exponential", "mean": 0.5}, Exponential(0.5)),
        ({"kind": "exponential", "rate": "500/s"}, Exponential(0.002)),
        ({"kind": "uniform", "low": "1ms", "high": "3ms"}, Uniform(0.001, 0.003)),
        ({"kind": "normal", "mean": "10ms", "sd": "2ms"}, Normal(0.01, 0.002)),
        (
            {"kind": "lognormal", "median": "1ms", "p99": "10ms"},
            LogNormal.from_median_p99(0.001, 0.01),
        ),
        ({"kind": "lognormal", "mean": "5ms", "sigma": 0.5}, LogNormal.from_mean(0.005, 0.5)),
        ({"kind": "lognormal", "mu": -7, "sigma": 0.5}, LogNormal(-7.0, 0.5)),
        ({"kind": "pareto", "shape": 2.5, "scale": "1ms"}, Pareto(2.5, 0.001)),
        ({"kind": "weibull", "shape": 1.5, "scale": "1h"}, Weibull(1.5, 3600.0)),
        (
            {"kind": "empirical", "samples": ["1ms", "2ms", 0.004]},
            Empirical([0.001, 0.002, 0.004]),
        ),
    ],
    ids=repr,
)
def test_parse_distribution(spec: object, expected: Distribution) -> None:
    assert parse_distribution(spec) == expected


def test_a_distribution_is_returned_as_is() -> None:
    distribution = Exponential(1.0)
    assert parse_distribution(distribution) is distribution


def _problems(spec: object, name: str = "payment.latency") -> list[tuple[str, object]]:
    with pytest.raises(ConfigError) as caught:
        parse_distribution(spec, name)
    return [(problem.path, problem.value) for problem in caught.value.problems]


def test_unknown_kind_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_distribution({"kind": "gaussian", "mean": 1}, "payment.latency")
    (problem,) = caught.value.problems
    assert (problem.path, problem.value) == ("payment.latency.kind", "gaussian")
    message = str(caught.value)
    assert "payment.latency.kind" in message
    assert "'gaussian'" in message
    for name in DISTRIBUTIONS:
        assert repr(name) in message


def test_missing_or_non_text_kind() -> None:
    [(path, value)] = _problems({"mean": "2ms"})
    assert path == "payment.latency.kind"
    assert repr(value) == "<missing>"
    assert _problems({"kind": 3}) == [("payment.latency.kind", 3)]


@pytest.mark.parametrize(
    ("spec", "problems"),
    [
        ({"kind": "exponential", "mean": "0ms"}, [("payment.latency.mean", "0ms")]),
        ({"kind": "exponential", "rate": "0/s"}, [("payment.latency.rate", "0/s")]),
        ({"kind": "exponential", "mean": "fast"}, [("payment.latency.mean", "fast")]),
        ({"kind": "exponential", "mean": [1]}, [("payment.latency.mean", [1])]),
        ({"kind": "uniform", "low": "2ms", "high": "1ms"}, [("payment.latency.high", 0.001)]),
        ({"kind": "lognormal", "median": "5ms", "p99": "1ms"}, [("payment.latency.p99", 0.001)]),
        ({"kind": "lognormal", "mu": -7, "sigma": "0.5"}, [("payment.latency.sigma", "0.5")]),
        ({"kind": "lognormal", "mu": True, "sigma": 0.5}, [("payment.latency.mu", True)]),
        ({"kind": "weibull", "shape": -1, "scale": "1h"}, [("payment.latency.shape", -1)]),
        (
            {"kind": "exponential", "mean": "2ms", "jitter": 0.1},
            [("payment.latency.jitter", 0.1)],
        ),
        (
            # one problem per key: an unknown one, a bad value and a missing one, all at once
            {"kind": "pareto", "shape": 0, "bogus": 3},
            [
                ("payment.latency.shape", 0),
                ("payment.latency.bogus", 3),
                ("payment.latency.scale", "<missing>"),
            ],
        ),
        (
            # two forms mixed: the one matching most keys is kept, the other's key refused
            {"kind": "lognormal", "median": "1ms", "p99": "10ms", "sigma": 0.5},
            [("payment.latency.sigma", 0.5)],
        ),
        (
            {"kind": "exponential", "mean": "2ms", "rate": "500/s"},
            [("payment.latency.rate", "500/s")],
        ),
        (
            {"kind": "empirical", "samples": [1, "x", -2]},
            [("payment.latency.samples[1]", "x"), ("payment.latency.samples[2]", -2)],
        ),
        ({"kind": "empirical", "samples": []}, [("payment.latency.samples", [])]),
        ({"kind": "empirical", "samples": "1ms"}, [("payment.latency.samples", "1ms")]),
        ("fast", [("payment.latency", "fast")]),
        (-1, [("payment.latency", -1)]),
        (True, [("payment.latency", True)]),
        (None, [("payment.latency", None)]),
    ],
    ids=repr,
)
def test_parse_distribution_names_every_problem(
    spec: object, problems: list[tuple[str, object]]
) -> None:
    found = [
        (path, repr(value) if repr(value) == "<missing>" else value)
        for path, value in _problems(spec)
    ]
    assert found == problems


def test_problems_explain_what_a_kind_takes() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_distribution({"kind": "lognormal", "sigma": 0.5, "p50": "1ms"}, "db.query")
    message = str(caught.value)
    assert "db.query.p50" in message
    assert "db.query.mean" in message  # the best-matching form is mean and sigma
    assert "median and p99, or mean and sigma, or mu and sigma" in message


# --- registry and public names ------------------------------------------------------------


def test_registry_names_every_distribution_once() -> None:
    assert set(DISTRIBUTIONS) == {
        "constant",
        "exponential",
        "uniform",
        "normal",
        "lognormal",
        "pareto",
        "weibull",
        "empirical",
    }
    for name, cls in DISTRIBUTIONS.items():
        assert cls.name == name
        assert issubclass(cls, Distribution)


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        DISTRIBUTIONS["mine"] = Constant  # type: ignore[index]


def test_examples_cover_every_kind() -> None:
    assert {type(example) for example in EXAMPLES} == set(DISTRIBUTIONS.values())


def test_all_lists_the_public_names() -> None:
    public = {
        name
        for name, value in vars(distributions).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == distributions.__name__
    }
    assert public | {"DISTRIBUTIONS"} == set(distributions.__all__)
