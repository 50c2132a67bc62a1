"""Distributions of durations and other non-negative random quantities.

A :class:`Distribution` is a small frozen value: parameters plus two methods, ``mean`` (the
theoretical mean) and ``sample(rng, size)`` (a float64 array). Components never call numpy
per event; they ask once for ``dist.sampler(rng)``, a zero-argument callable that hands out
one float per call from batches drawn ``batch`` at a time.

Config files name distributions through :data:`DISTRIBUTIONS` and :func:`parse_distribution`,
once, at load time::

    {"kind": "lognormal", "median": "1ms", "p99": "10ms"}   ->  LogNormal(mu=..., sigma=...)
    "2ms"                                                     ->  Constant(0.002)

Reproducibility: a sampler returns exactly the values of consecutive ``sample(rng, batch)``
calls, in order, drawing a batch only when the previous one runs out. The distributions
here also draw as a *stream*: ``sample(rng, a)`` followed by ``sample(rng, b)`` returns the
same numbers as ``sample(rng, a + b)`` from the same state, so a sampler's batch size is a
speed knob only and never changes the numbers a run sees (tested for every distribution).
"""

from __future__ import annotations

import abc
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from types import MappingProxyType
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from sim.check import finite, non_negative, positive, positive_int
from sim.errors import ConfigError, Problem
from sim.units import parse_duration, parse_rate

__all__ = [
    "DISTRIBUTIONS",
    "Constant",
    "Distribution",
    "Empirical",
    "Exponential",
    "LogNormal",
    "Normal",
    "Pareto",
    "Uniform",
    "Weibull",
    "parse_distribution",
]

_STANDARD_NORMAL = NormalDist()
_Z_99 = _STANDARD_NORMAL.inv_cdf(0.99)  # 2.3263478740408408


class Distribution(abc.ABC):
    """A distribution of non-negative floats (durations in seconds, sizes, counts).

    A subclass is a frozen dataclass of its parameters, validated in ``__post_init__``, and
    defines:

    - ``name``: the name config files use for it (``"exponential"``);
    - ``mean``: the theoretical mean, ``math.inf`` where it is infinite;
    - ``sample(rng, size)``: ``size`` independent draws as a float64 array, all >= 0, using no
      randomness but ``rng``.

    ``sampler`` is inherited; override it only to skip the RNG entirely (as :class:`Constant`
    does).
    """

    __slots__ = ()

    name: ClassVar[str]

    @property
    @abc.abstractmethod
    def mean(self) -> float:
        """The theoretical mean, ``math.inf`` where it is infinite."""

    @abc.abstractmethod
    def sample(self, rng: np.random.Generator, size: int) -> npt.NDArray[np.float64]:
        """``size`` independent draws, drawn from ``rng`` only."""

    def sampler(self, rng: np.random.Generator, batch: int = 1024) -> Callable[[], float]:
        """A zero-argument callable returning one draw per call, drawing `batch` at a time.

        The values are those of consecutive ``self.sample(rng, batch)`` calls, in order; each
        batch is drawn when the previous one runs out (the first on the first call).
        """
        positive_int("batch", batch)

        def batches() -> Iterator[list[float]]:
            while True:
                yield self.sample(rng, batch).tolist()

        # Hot path: once per simulated message or service. chain's __next__ is a C method, so
        # a draw is one C call, with a Python frame only once per batch. Measured with timeit
        # (CPython 3.11, numpy 2.4, batch 1024, timeit's own loop of ~7 ns included), per
        # draw: Constant 21 ns; Exponential 43 ns (18 of them numpy and .tolist(), amortized);
        # Uniform 40; Empirical 48; Weibull 54; LogNormal 55; Pareto 57; truncated Normal 61.
        # For comparison: a closure over a list and an index, 89 ns; random.expovariate, 171.
        return itertools.chain.from_iterable(batches()).__next__


def _validate(instance: Distribution, **rules: Callable[[str, float], float]) -> None:
    """Check each named field with its rule, store the float the rule returns, and raise one
    ConfigError for every field that fails, so that a user fixes them all in one pass."""
    problems: list[Problem] = []
    for parameter, rule in rules.items():
        try:
            value = rule(parameter, getattr(instance, parameter))
        except ConfigError as error:
            problems.extend(error.problems)
        else:
            object.__setattr__(instance, parameter, value)
    if problems:
        raise ConfigError(problems)


@dataclass(frozen=True, slots=True)
class Constant(Distribution):
    """Always ``value``: a fixed delay, or no variability at all."""

    name: ClassVar[str] = "constant"

    value: float

    def __post_init__(self) -> None:
        _validate(self, value=non_negative)

    @property
    def mean(self) -> float:
        return self.value

    def sample(self, rng: np.random.Generator, size: int) -> npt.NDArray[np.float64]:
        return np.full(size, self.value, dtype=np.float64)

    def sampler(self, rng: np.random.Generator, batch: int = 1024) -> Callable[[], float]:
        """A callable returning ``value``; it never touches ``rng``."""
        positive_int("batch", batch)
        return itertools.repeat(self.value).__next__


@dataclass(frozen=True, slots=True)
class Exponential(Distribution):
    """Exponential with mean ``mean`` (> 0): the gaps between Poisson arrivals."""

    name: ClassVar[str] = "exponential"

    mean: float

    def __post_init__(self) -> None:
        _validate(self, mean=positive)

    @classmethod
    def from_rate(cls, rate: float) -> Exponential:
        """The gaps between events of a Poisson process with ``rate`` events per unit time."""
        mean = 1.0 / positive("rate", rate)
        if not math.isfinite(mean):
            raise ConfigError.single("rate", rate, "a number > 0 whose inverse is finite")
        return cls(mean)

    def sample(self, rng: np.random.Generator, size: int) -> npt.NDArray[np.float64]:
        return rng.exponential(self.mean, size)


@dataclass(frozen=True, slots=True)
class Uniform(Distribution):
    """Uniform on [``low``, ``high``], 0 <= low <= high."""

    name: ClassVar[str] = "uniform"

    low: float
    high: float

    def __post_init__(self) -> None:
        _validate(self, low=non_negative, high=non_negative)
        if self.high < self.low:
            raise ConfigError.single("high", self.high, f"a number >= low ({self.low!r})")

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def sample(self, rng: np.random.Generator, size: int) -> npt.NDArray[np.float64]:
        return rng.uniform(self.low, self.high, size)


@dataclass(frozen=True, slots=True)
class Normal(Distribution):
    """A normal distribution truncated at zero: N(mu, sd²) conditioned on being >= 0.

    The truncation is exact (rejection of negative draws), not clipping, which would pile
    the negative mass up at 0. ``mu`` >= 0 keeps at least half the draws, so rejection is
    cheap. Config files call ``mu`` "mean"; the ``mean`` property is the mean *after*
    truncation, mu + sd·φ(a)/(1 − Φ(a)) with a = −mu/sd, which exceeds ``mu`` noticeably
    once sd is more than about mu/2.

    Attributes:
        mu: the mean of the normal before truncation, >= 0.
        sd: its standard deviation, >= 0 (0 gives the constant ``mu``).
    """

    name: ClassVar[str] = "normal"

    mu: float
    sd: float

    def __post_init__(self) -> None:
        _validate(self, mu=non_negative, sd=non_negative)

    @property
    def mean(self) -> float:
        if self.sd == 0:
            return self.mu
        a = -self.mu / self.sd
        return self.mu + self.sd * _STANDARD_NORMAL.pdf(a) / (1.0 - _STANDARD_NORMAL.cdf(a))

    def sample(self, rng: np.random.Generator, size: int) -> npt.NDArray[np.float64]:
        # Rejection that consumes rng exactly as one-at-a-time rejection would: each round
        # draws only as many normals as values are still missing, so it can never draw past
        # the last accepted one. That keeps the stream property (see the module docstring).
        # With mu >= 0 each round keeps at least half, so a batch of 1024 takes ~12 rounds.
        kept: list[npt.NDArray[np.float64]] = []
        missing = size
        while missing > 0:
            draws = rng.normal(self.mu, self.sd, missing)
            accepted = draws[draws >= 0.0]
            kept.append(accepted)
            missing -= accepted.size
        return np.concatenate(kept) if kept else np.empty(0, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class LogNormal(Distribution):
    """exp(N(mu, sigma²)): service times with a long right tail.

    Attributes:
        mu: mean of the underlying normal, the log of the median (any finite number).
        sigma: standard deviation of the underlying normal, >= 0.
    """

    name: ClassVar[str] = "lognormal"

    mu: float
    sigma: float

    def __post_init__(self) -> None:
        _validate(self, mu=finite, sigma=non_negative)

    @classmethod
    def from_mean(cls, mean: float, sigma: float) -> LogNormal:
        """The lognormal with this mean (> 0) and underlying-normal ``sigma`` (>= 0)."""
        problems = _problems(lambda: positive("mean", mean), lambda: non_negative("sigma", sigma))
        if problems:
            raise ConfigError(problems)
        return cls(math.log(mean) - sigma * sigma / 2, sigma)

    @classmethod
    def from_median_p99(cls, median: float, p99: float) -> LogNormal:
        """The lognormal with this median and 99th percentile (p99 > median > 0)."""
        problems = _problems(lambda: positive("median", median), lambda: positive("p99", p99))
        if problems:
            raise ConfigError(problems)
        if not p99 > median:
            raise ConfigError.single("p99", p99, f"a number > median ({median!r})")
        return cls(math.log(median), math.log(p99 / median) / _Z_99)

    @property
    def mean(self) -> float:
        try:
            return math.exp(self.mu + self.sigma * self.sigma / 2)
        except OverflowError:
            return math.inf

    def sample(self, rng: np.random.Generator, size: int) -> npt.NDArray[np.float64]:
        return rng.lognormal(self.mu, self.sigma, size)


@dataclass(frozen=True, slots=True)
class Pareto(Distribution):
    """Classical Pareto with minimum ``scale`` (> 0) and tail index ``shape`` (> 0).

    P(X > x) = (scale/x)^shape for x >= scale. The mean is infinite for shape <= 1 and the
    variance for shape <= 2.
    """

    name: ClassVar[str] = "pareto"

    shape: float
    scale: float

    def __post_init__(self) -> None:
        _validate(self, shape=positive, scale=positive)

    @property
    def mean(self) -> float:
        if self.shape <= 1:
            return math.inf
        return self.shape * self.scale / (self.shape - 1)

    def sample(self, rng: np.random.Generator, size: int) -> npt.NDArray[np.float64]:
        # numpy's pareto is the Lomax (Pareto II, minimum 0); shifting by 1 gives the classical.
        return self.scale * (1.0 + rng.pareto(self.shape, size))


@dataclass(frozen=True, slots=True)
class Weibull(Distribution):
    """Weibull with ``shape`` (> 0) and ``scale`` (> 0): P(X > x) = exp(-(x/scale)^shape).

    shape < 1 gives a decreasing hazard (infant mortality), 1 the exponential, > 1 wear-out.
    """

    name: ClassVar[str] = "weibull"

    shape: float
    scale: float

    def __post_init__(self) -> None:
        _validate(self, shape=positive, scale=positive)

    @property
    def mean(self) -> float:
        try:
            return self.scale * math.gamma(1.0 + 1.0 / self.shape)
        except OverflowError:  # shape so small that Γ(1 + 1/shape) exceeds a float
            return math.inf

    def sample(self, rng: np.random.Generator, size: int) -> npt.NDArray[np.float64]:
        return self.scale * rng.weibull(self.shape, size)


@dataclass(frozen=True, slots=True)
class Empirical(Distribution):
    """Uniform resampling of measured values: each draw is one of ``samples``, equally likely.

    Attributes:
        samples: a non-empty sequence of finite numbers >= 0, stored as a tuple of floats.
    """

    name: ClassVar[str] = "empirical"

    samples: Sequence[float]
    _values: npt.NDArray[np.float64] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        expected = "a non-empty sequence of numbers >= 0"
        if isinstance(self.samples, str | bytes) or not isinstance(self.samples, Sequence):
            raise ConfigError.single("samples", self.samples, expected)
        if not self.samples:
            raise ConfigError.single("samples", self.samples, expected)
        problems: list[Problem] = []
        values: list[float] = []
        for index, value in enumerate(self.samples):
            try:
                values.append(non_negative(f"samples[{index}]", value))
            except ConfigError as error:
                problems.extend(error.problems)
        if problems:
            raise ConfigError(problems)
        object.__setattr__(self, "samples", tuple(values))
        object.__setattr__(self, "_values", np.array(values, dtype=np.float64))

    @property
    def mean(self) -> float:
        return math.fsum(self.samples) / len(self.samples)

    def sample(self, rng: np.random.Generator, size: int) -> npt.NDArray[np.float64]:
        return self._values[rng.integers(0, self._values.size, size)]


def _problems(*checks: Callable[[], object]) -> list[Problem]:
    """The problems raised by ``checks``, each run even when an earlier one fails."""
    problems: list[Problem] = []
    for check in checks:
        try:
            check()
        except ConfigError as error:
            problems.extend(error.problems)
    return problems


# --- config -----------------------------------------------------------------------------


class _Missing:
    """Stands for a key the config does not have, in error messages."""

    def __repr__(self) -> str:
        return "<missing>"


_MISSING = _Missing()

_Parser = Callable[[object, str], object]


def _number(value: object, path: str) -> float:
    """A plain number (shape, sigma, mu): no units."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError.single(path, value, "a number")
    return finite(path, value)


def _duration(value: object, path: str) -> float:
    """A time: a number of seconds or text such as ``"250ms"``."""
    if isinstance(value, str | int | float):
        return parse_duration(value, path)
    raise ConfigError.single(path, value, "a duration such as '250ms' or a number of seconds")


def _rate(value: object, path: str) -> float:
    """Events per second: a number or text such as ``"120/min"``."""
    if isinstance(value, str | int | float):
        return parse_rate(value, path)
    raise ConfigError.single(path, value, "a rate such as '120/min' or a number per second")


def _durations(value: object, path: str) -> tuple[float, ...]:
    """A non-empty list of times."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not value:
        raise ConfigError.single(path, value, "a non-empty list of durations")
    durations: list[float] = []
    problems: list[Problem] = []
    for index, item in enumerate(value):
        try:
            durations.append(_duration(item, f"{path}[{index}]"))
        except ConfigError as error:
            problems.extend(error.problems)
    if problems:
        raise ConfigError(problems)
    return tuple(durations)


def _above_zero(read: Callable[[object, str], float]) -> _Parser:
    """``read``, refusing 0: checked while reading so that it is reported with the rest."""

    def read_positive(value: object, path: str) -> float:
        number = read(value, path)
        if number <= 0:
            raise ConfigError.single(path, value, "a value > 0")
        return number

    return read_positive


def _non_negative_number(value: object, path: str) -> float:
    return non_negative(path, _number(value, path))


@dataclass(frozen=True)
class _Form:
    """One way to write a distribution in a config: its keys, how to read each, and the
    constructor that takes them as keyword arguments."""

    parameters: Mapping[str, _Parser]
    build: Callable[..., Distribution]

    def describe(self) -> str:
        return " and ".join(self.parameters)


# Every distribution and the ways a config may write it. A config that matches no form
# exactly is reported against the form sharing the most keys with it (the first among equals).
_FORMS: Mapping[type[Distribution], tuple[_Form, ...]] = {
    Constant: (_Form({"value": _duration}, Constant),),
    Exponential: (
        _Form({"mean": _above_zero(_duration)}, Exponential),
        _Form({"rate": _above_zero(_rate)}, Exponential.from_rate),
    ),
    Uniform: (_Form({"low": _duration, "high": _duration}, Uniform),),
    Normal: (_Form({"mean": _duration, "sd": _duration}, lambda mean, sd: Normal(mean, sd)),),
    LogNormal: (
        _Form(
            {"median": _above_zero(_duration), "p99": _above_zero(_duration)},
            LogNormal.from_median_p99,
        ),
        _Form({"mean": _above_zero(_duration), "sigma": _non_negative_number}, LogNormal.from_mean),
        _Form({"mu": _number, "sigma": _non_negative_number}, LogNormal),
    ),
    Pareto: (_Form({"shape": _above_zero(_number), "scale": _above_zero(_duration)}, Pareto),),
    Weibull: (_Form({"shape": _above_zero(_number), "scale": _above_zero(_duration)}, Weibull),),
    Empirical: (_Form({"samples": _durations}, Empirical),),
}

DISTRIBUTIONS: Mapping[str, type[Distribution]] = MappingProxyType(
    {cls.name: cls for cls in _FORMS}
)
"""Every distribution by the name config files use for it (read-only)."""


def parse_distribution(spec: object, name: str = "distribution") -> Distribution:
    """The distribution a config value describes.

    Args:
        spec: a :class:`Distribution` (returned as is); a number of seconds or a duration
            string (a :class:`Constant`); or a mapping with ``"kind"`` (a name in
            :data:`DISTRIBUTIONS`) and that kind's parameters. Times accept duration strings
            (``"2ms"``); ``shape``, ``sigma`` and ``mu`` are plain numbers::

                {"kind": "constant", "value": "5ms"}
                {"kind": "exponential", "mean": "2ms"}
                {"kind": "exponential", "rate": "500/s"}
                {"kind": "uniform", "low": "1ms", "high": "3ms"}
                {"kind": "normal", "mean": "10ms", "sd": "2ms"}      (truncated at zero)
                {"kind": "lognormal", "median": "1ms", "p99": "10ms"}
                {"kind": "lognormal", "mean": "5ms", "sigma": 0.5}
                {"kind": "lognormal", "mu": -7, "sigma": 0.5}
                {"kind": "pareto", "shape": 2.5, "scale": "1ms"}
                {"kind": "weibull", "shape": 1.5, "scale": "1h"}
                {"kind": "empirical", "samples": ["1ms", "2ms", 0.004]}

        name: the key path of ``spec`` in the config, used to name problems
            (``f"{name}.kind"``, ``f"{name}.mean"``).

    Raises:
        ConfigError: with one problem per unknown kind, unknown, missing or conflicting key,
            and bad value.
    """
    if isinstance(spec, Distribution):
        return spec
    if isinstance(spec, Mapping):
        return _parse_mapping(spec, name)
    if isinstance(spec, str | int | float) and not isinstance(spec, bool):
        return Constant(parse_duration(spec, name))
    raise ConfigError.single(
        name, spec, "a duration, a number of seconds, or a table with a 'kind' key"
    )


def _parse_mapping(spec: Mapping[object, object], name: str) -> Distribution:
    kind = spec.get("kind", _MISSING)
    cls = DISTRIBUTIONS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        valid = ", ".join(repr(known) for known in DISTRIBUTIONS)
        raise ConfigError.single(f"{name}.kind", kind, f"one of {valid}")
    forms = _FORMS[cls]
    given = {str(key): value for key, value in spec.items() if key != "kind"}
    form = max(
        forms,
        key=lambda f: (len(given.keys() & f.parameters), -len(f.parameters.keys() - given)),
    )  # max keeps the first of equals
    takes = f"{kind} takes " + ", or ".join(f.describe() for f in forms)
    known = {key for f in forms for key in f.parameters}

    problems: list[Problem] = []
    parsed: dict[str, object] = {}
    for key, value in given.items():
        path = f"{name}.{key}"
        if key not in known:
            problems.append(Problem(path, value, f"no key {key!r}: {takes}"))
        elif key not in form.parameters:
            problems.append(Problem(path, value, f"no {key} with {form.describe()} ({takes})"))
        else:
            try:
                parsed[key] = form.parameters[key](value, path)
            except ConfigError as error:
                problems.extend(error.problems)
    for key in (key for key in form.parameters if key not in given):
        problems.append(Problem(f"{name}.{key}", _MISSING, f"a value ({takes})"))
    if problems:
        raise ConfigError(problems)
    try:
        return form.build(**parsed)
    except ConfigError as error:
        raise error.under(name) from None
