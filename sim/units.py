"""Durations and rates as people write them in config files: ``"250ms"``, ``"120/min"``.

Simulated time is a plain float of seconds everywhere in ``sim/``; these functions turn the
text of a config file into that float once, at load time, and back into short text for reports.

Numbers are converted through :class:`decimal.Decimal`, so ``parse_duration("0.1ms")`` is the
float closest to 0.0001 (one rounding, not two).
"""

from __future__ import annotations

import decimal
import math
import re
from decimal import Decimal

from sim.errors import ConfigError

__all__ = ["format_duration", "parse_duration", "parse_rate"]

# Seconds in one of each unit. Both the micro sign (U+00B5) and the Greek mu (U+03BC) are
# accepted, because keyboards and editors produce either.
_SECONDS_PER_DURATION_UNIT: dict[str, Decimal] = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "\u00b5s": Decimal("1e-6"),
    "\u03bcs": Decimal("1e-6"),
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "min": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
}

# Seconds in the period of a rate: "120/min" is 120 events per 60 s.
_SECONDS_PER_RATE_UNIT: dict[str, Decimal] = {
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "min": Decimal(60),
    "h": Decimal(3600),
    "d": Decimal(86400),
    "day": Decimal(86400),
}

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_DURATION_TEXT = re.compile(rf"({_NUMBER})\s*([^\s\d.+-]*)")
_RATE_TEXT = re.compile(rf"({_NUMBER})\s*(?:/\s*(\S+))?")

# No traps: an exponent too large for Decimal becomes Infinity and is then refused as not
# finite, instead of escaping as decimal.Overflow. 60 digits is far beyond a float's 17.
_ARITHMETIC = decimal.Context(prec=60, traps=[])

_DURATION_EXPECTED = (
    "a finite duration >= 0 such as '250ms', '1.5s', '3m', '2h', '30d' or a number of seconds"
    " (units: ns, us, µs, ms, s, m, min, h, d)"
)
_RATE_EXPECTED = (
    "a finite rate >= 0 such as '3.2/s', '120/min', '50/h', '10000/day' or a number per second"
    " (units: /ms, /s, /m, /min, /h, /d, /day)"
)


def parse_duration(value: str | float | int, name: str = "duration") -> float:
    """A duration in seconds, from a number of seconds or text with a unit.

    Accepted: a finite number >= 0 (seconds); a numeric string (``"2.5"``, seconds); a number
    followed by a unit, with optional whitespace between (``"250ms"``, ``"250 ms"``, ``"1.5s"``,
    ``"3m"`` or ``"3min"`` for minutes, ``"2h"``, ``"30d"``, ``"20us"``/``"20µs"``, ``"5ns"``).
    Units are case-sensitive: ``"MS"`` is refused rather than guessed.

    Args:
        value: the number or text from the config.
        name: the parameter or key path to name in the error.

    Raises:
        ConfigError: naming ``name`` and ``value`` if it is malformed, negative or not finite.
    """
    seconds = _parse(value, name, _DURATION_TEXT, _SECONDS_PER_DURATION_UNIT, per=False)
    if seconds is None:
        raise ConfigError.single(name, value, _DURATION_EXPECTED)
    return seconds


def parse_rate(value: str | float | int, name: str = "rate") -> float:
    """A rate in events per second, from a number per second or text with a period.

    Accepted: a finite number >= 0 (per second); a numeric string (``"3.2"``, per second); a
    number, ``/`` and a period, with optional whitespace (``"3.2/s"``, ``"120/min"`` or
    ``"120/m"``, ``"50/h"``, ``"10000/day"`` or ``"10000/d"``, ``"100/ms"``).

    Args:
        value: the number or text from the config.
        name: the parameter or key path to name in the error.

    Raises:
        ConfigError: naming ``name`` and ``value`` if it is malformed, negative or not finite.
    """
    per_second = _parse(value, name, _RATE_TEXT, _SECONDS_PER_RATE_UNIT, per=True)
    if per_second is None:
        raise ConfigError.single(name, value, _RATE_EXPECTED)
    return per_second


def _parse(
    value: object,
    name: str,
    pattern: re.Pattern[str],
    units: dict[str, Decimal],
    *,
    per: bool,
) -> float | None:
    """The value in base units (seconds, or events per second), or None if it is unusable."""
    if isinstance(value, bool):  # a bool is an int to Python, never a quantity to a user
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        match = pattern.fullmatch(value.strip())
        if match is None:
            return None
        digits, unit = match.group(1), match.group(2) or "s"
        factor = units.get(unit)
        if factor is None:
            return None
        try:
            amount = Decimal(digits)
        except decimal.InvalidOperation:  # an exponent beyond Decimal's own limits
            return None
        scaled = _ARITHMETIC.divide(amount, factor) if per else _ARITHMETIC.multiply(amount, factor)
        number = float(scaled)
    else:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number + 0.0  # turns -0.0 into 0.0


# Largest first: a duration is shown in the largest unit it reaches.
_FORMAT_UNITS: tuple[tuple[str, float], ...] = (
    ("d", 86400.0),
    ("h", 3600.0),
    ("min", 60.0),
    ("s", 1.0),
    ("ms", 1e-3),
    ("µs", 1e-6),
    ("ns", 1e-9),
)


def format_duration(seconds: float) -> str:
    """Short text for a duration in reports, to three significant digits.

    The unit is the largest one the duration reaches: ``0.25 -> "250ms"``,
    ``90 -> "1.5min"``, ``7200 -> "2h"``, ``0 -> "0s"``. :func:`parse_duration` reads
    every result back (to within the rounding), except the infinite and negative ones.
    """
    if math.isnan(seconds):
        return "nan"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if math.isinf(seconds):
        return "inf"
    if seconds == 0:
        return "0s"
    # Round first, so that 59.99 s shows as "1min", not "60s".
    rounded = float(f"{seconds:.3g}")
    unit, size = next(
        ((unit, size) for unit, size in _FORMAT_UNITS if rounded >= size), _FORMAT_UNITS[-1]
    )
    amount = rounded / size
    text = f"{amount:.3g}" if amount < 1000 else f"{amount:.0f}"
    return text + unit
