"""Field types for config schemas: durations, rates, distributions, names, policy references.

Every schema (the experiment's own sections and each model's parameters) is a pydantic model
derived from :class:`Section`: strict types, unknown keys refused, frozen. The annotated types
below turn config text into engine values once, at load time (``"250ms"`` -> 0.25), and write
them back in a form that loads again (the resolved config of a results folder).

A validator that finds a problem raises :func:`problem`, which carries the bad value's path
relative to the field, its value and what was expected; :mod:`sim.experiment.validation`
turns those into :class:`sim.errors.Problem` lines with the full key path.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator, ValidationInfo
from pydantic_core import PydanticCustomError

from sim.distributions import Distribution, Normal, parse_distribution
from sim.errors import ConfigError, Problem
from sim.units import parse_duration, parse_rate

__all__ = [
    "Distribution_",
    "Duration",
    "Label",
    "Name",
    "PositiveDuration",
    "PositiveRate",
    "Probability",
    "Rate",
    "Section",
    "SignedDuration",
    "distribution_config",
    "problem",
    "problems",
]


class Section(BaseModel):
    """A table of a config file: strict types, no unknown keys, immutable once validated."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


@dataclasses.dataclass(frozen=True)
class Label:
    """How ``sim models`` names a field's type (metadata of an annotated type)."""

    text: str


def problems(found: Iterable[Problem]) -> PydanticCustomError:
    """The error a validator raises for ``found``, paths relative to the field being checked
    (``""`` is the field itself)."""
    items = [(p.path, p.value, p.expected) for p in found]
    first = items[0][2] if items else "a valid value"
    return PydanticCustomError("config", "{expected}", {"expected": first, "problems": items})


def problem(expected: str, value: object = None, path: str = "") -> PydanticCustomError:
    """The error for one problem at ``path`` (relative to the field) with ``value``."""
    return problems([Problem(path, value, expected)])


def _relative(error: ConfigError, root: str) -> PydanticCustomError:
    """``error``'s problems with the ``root`` name used while parsing taken off their paths."""
    found = []
    for p in error.problems:
        path = p.path
        if path == root:
            path = ""
        elif path.startswith(root + "."):
            path = path[len(root) + 1 :]
        found.append(Problem(path, p.value, p.expected))
    return problems(found)


_ROOT = "@"  # the name parsers see; removed again from the paths they report


def _quantity(
    parse: Callable[[str | float | int, str], float], expected: str, expected_positive: str
) -> tuple[Callable[[object], float], Callable[[object], float]]:
    """Readers of a quantity from config text (``parse``): any value >= 0, and > 0 only."""

    def read(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise problem(expected, value)
        try:
            return parse(value, _ROOT)
        except ConfigError as error:
            raise _relative(error, _ROOT) from None

    def read_positive(value: object) -> float:
        amount = read(value)
        if amount <= 0:
            raise problem(expected_positive, value)
        return amount

    return read, read_positive


_duration, _positive_duration = _quantity(
    parse_duration,
    "a duration such as '250ms', '2h' or a number of seconds",
    "a duration > 0 such as '250ms' or '2h'",
)
_rate, _positive_rate = _quantity(
    parse_rate,
    "a rate such as '120/min', '10000/day' or a number per second",
    "a rate > 0 such as '120/min' or '3.2/s'",
)

_SIGN = re.compile(r"\s*-\s*")


def _signed_duration(value: object) -> float:
    """A duration that may be negative (clock offsets and jumps): ``"-2s"``, ``-0.5``."""
    if isinstance(value, str) and (match := _SIGN.match(value)):
        return -_duration(value[match.end() :])
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        return -_duration(-value)
    return _duration(value)


def _probability(value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0.0 <= float(value) <= 1.0
    ):
        raise problem("a probability: a number in [0, 1]", value)
    return float(value)


def _distribution(value: object) -> Distribution:
    try:
        return parse_distribution(value, _ROOT)
    except ConfigError as error:
        raise _relative(error, _ROOT) from None


def distribution_config(distribution: Distribution) -> dict[str, Any]:
    """The config table that :func:`sim.distributions.parse_distribution` reads back as
    ``distribution`` (seconds as plain numbers)."""
    table: dict[str, Any] = {"kind": distribution.name}
    for field in dataclasses.fields(distribution):  # type: ignore[arg-type]
        if not field.init:
            continue
        value = getattr(distribution, field.name)
        key = "mean" if isinstance(distribution, Normal) and field.name == "mu" else field.name
        table[key] = list(value) if isinstance(value, tuple) else value
    return table


_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")


def _name(value: object) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise problem("a name of letters, digits, '_' and '-' (no dots or spaces)", value)
    return value


Duration = Annotated[float, PlainValidator(_duration), Label("duration")]
"""Seconds >= 0, from ``"250ms"``, ``"2h"`` or a number of seconds."""

PositiveDuration = Annotated[float, PlainValidator(_positive_duration), Label("duration > 0")]
"""Seconds > 0."""

SignedDuration = Annotated[float, PlainValidator(_signed_duration), Label("signed duration")]
"""Seconds, negative allowed (``"-2s"``): clock offsets and jumps."""

Rate = Annotated[float, PlainValidator(_rate), Label("rate")]
"""Events per second >= 0, from ``"120/min"``, ``"10000/day"`` or a number per second."""

PositiveRate = Annotated[float, PlainValidator(_positive_rate), Label("rate > 0")]
"""Events per second > 0."""

Probability = Annotated[float, PlainValidator(_probability), Label("probability")]
"""A number in [0, 1]."""

Distribution_ = Annotated[
    Distribution,
    PlainValidator(_distribution),
    PlainSerializer(distribution_config),
    Label("distribution"),
]
"""A distribution: a duration (constant) or a table with ``kind`` (see
:func:`sim.distributions.parse_distribution`)."""

Name = Annotated[str, PlainValidator(_name), Label("name")]
"""A component name: letters, digits, ``_`` and ``-``."""


def context_value(info: ValidationInfo, key: str) -> Any:
    """``key`` of the validation context (None when validating without one)."""
    context = info.context
    return context.get(key) if isinstance(context, dict) else None
