"""Small validators shared by every component: each returns the value or raises ConfigError."""

from __future__ import annotations

import math

from sim.errors import ConfigError

__all__ = ["at_least", "finite", "non_negative", "positive", "positive_int", "probability"]


def finite(name: str, value: float) -> float:
    """``value`` if it is a finite real number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError.single(name, value, "a finite number")
    return float(value)


def positive(name: str, value: float) -> float:
    """``value`` if it is a finite number > 0."""
    if finite(name, value) <= 0:
        raise ConfigError.single(name, value, "a number > 0")
    return float(value)


def non_negative(name: str, value: float) -> float:
    """``value`` if it is a finite number >= 0."""
    if finite(name, value) < 0:
        raise ConfigError.single(name, value, "a number >= 0")
    return float(value)


def probability(name: str, value: float) -> float:
    """``value`` if it lies in [0, 1]."""
    if not 0.0 <= finite(name, value) <= 1.0:
        raise ConfigError.single(name, value, "a probability in [0, 1]")
    return float(value)


def at_least(name: str, value: int, minimum: int) -> int:
    """``value`` if it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError.single(name, value, f"an integer >= {minimum}")
    return value


def positive_int(name: str, value: int) -> int:
    """``value`` if it is an integer >= 1."""
    return at_least(name, value, 1)
