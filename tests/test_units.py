"""Durations and rates from config text: every accepted form, every refusal, and round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim import units
from sim.errors import ConfigError
from sim.units import format_duration, parse_duration, parse_rate


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5ns", 5e-9),
        ("20us", 2e-5),
        ("20µs", 2e-5),  # micro sign, U+00B5
        ("20μs", 2e-5),  # Greek mu, U+03BC
        ("250ms", 0.25),
        ("0.1ms", 0.0001),  # one rounding: the float nearest 0.0001, not 0.1 * 0.001
        ("1.1ms", 0.0011),
        ("1.5s", 1.5),
        ("3m", 180.0),
        ("3min", 180.0),
        ("2h", 7200.0),
        ("30d", 2_592_000.0),
        ("2.5", 2.5),
        ("0", 0.0),
        ("1e3", 1000.0),
        ("1e-3s", 0.001),
        ("+.5s", 0.5),
        ("5.s", 5.0),
        ("250 ms", 0.25),
        ("  250ms  ", 0.25),
        ("250\tms", 0.25),
        ("-0s", 0.0),
    ],
)
def test_parse_duration_accepts(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("number", "seconds"), [(0, 0.0), (3, 3.0), (2.5, 2.5), (-0.0, 0.0)])
def test_parse_duration_takes_numbers_as_seconds(number: float, seconds: float) -> None:
    result = parse_duration(number)
    assert result == seconds
    assert type(result) is float
    assert math.copysign(1.0, result) == 1.0  # never -0.0


@pytest.mark.parametrize(
    "bad",
    [
        "fast",
        "10 parsecs",
        "-1s",
        "",
        "   ",
        "1e999s",
        "1e999999999999999999999999s",  # beyond Decimal's own exponent range
        "ms",
        "MS",  # units are case-sensitive: refused, not guessed
        "250MS",
        "1_000s",
        "1.5.s",
        "5 m s",
        "nan",
        "inf",
        "1e",
        "3.2/s",  # a rate, not a duration
        -1,
        -0.5,
        math.inf,
        math.nan,
        True,
        None,
        [1],
    ],
)
def test_parse_duration_refuses(bad: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_duration(bad, name="payment.timeout")  # type: ignore[arg-type]
    (problem,) = caught.value.problems
    assert problem.path == "payment.timeout"
    assert problem.value is bad
    message = str(caught.value)
    assert "payment.timeout" in message
    assert repr(bad) in message
    assert "'250ms'" in message  # the accepted forms are shown


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("3.2/s", 3.2),
        ("120/min", 2.0),
        ("120/m", 2.0),
        ("50/h", 50 / 3600),
        ("10000/day", 10000 / 86400),
        ("10000/d", 10000 / 86400),
        ("100/ms", 100_000.0),
        ("0/s", 0.0),
        ("7", 7.0),
        ("120 / min", 2.0),
        (" 120/ min ", 2.0),
    ],
)
def test_parse_rate_accepts(text: str, per_second: float) -> None:
    assert parse_rate(text) == per_second


@pytest.mark.parametrize(("number", "per_second"), [(0, 0.0), (12, 12.0), (0.5, 0.5)])
def test_parse_rate_takes_numbers_as_per_second(number: float, per_second: float) -> None:
    assert parse_rate(number) == per_second


@pytest.mark.parametrize(
    "bad",
    ["fast", "", "/s", "3.2s", "-1/s", "10/parsec", "1e999/s", "1/S", "1//s", "nan/s", -1, True],
)
def test_parse_rate_refuses(bad: object) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rate(bad, name="workload.arrival_rate")  # type: ignore[arg-type]
    (problem,) = caught.value.problems
    assert problem.path == "workload.arrival_rate"
    assert problem.value is bad
    assert "'120/min'" in str(caught.value)


def test_default_names() -> None:
    with pytest.raises(ConfigError, match=r"^duration: "):
        parse_duration("fast")
    with pytest.raises(ConfigError, match=r"^rate: "):
        parse_rate("fast")


_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}
_RATE_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


@given(
    amount=st.floats(min_value=0, max_value=1e12),
    unit=st.sampled_from(sorted(_DURATION_UNITS)),
    space=st.sampled_from(["", " ", "  "]),
)
def test_parse_duration_scales_any_number(amount: float, unit: str, space: str) -> None:
    # The parser rounds once (exact decimal arithmetic); the reference rounds twice in floats,
    # so they may differ in the last bit, or by a subnormal step near zero.
    assert parse_duration(f"{amount!r}{space}{unit}") == pytest.approx(
        amount * _DURATION_UNITS[unit], rel=1e-15, abs=1e-300
    )


@given(
    amount=st.floats(min_value=0, max_value=1e12),
    unit=st.sampled_from(sorted(_RATE_UNITS)),
)
def test_parse_rate_scales_any_number(amount: float, unit: str) -> None:
    assert parse_rate(f"{amount!r}/{unit}") == pytest.approx(
        amount / _RATE_UNITS[unit], rel=1e-15, abs=1e-300
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.25, "250ms"),
        (90, "1.5min"),
        (7200, "2h"),
        (259_200, "3d"),
        (1.5, "1.5s"),
        (3e-5, "30µs"),
        (1.5e-7, "150ns"),
        (0, "0s"),
        (59.99, "1min"),  # rounded before the unit is chosen: not "60s"
        (0.9996, "1s"),
        (0.123456, "123ms"),
        (1e10, "115741d"),
        (-0.25, "-250ms"),
        (math.inf, "inf"),
        (math.nan, "nan"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@given(st.floats(min_value=1e-12, max_value=1e12))
def test_format_duration_reads_back(seconds: float) -> None:
    # Three significant digits: the rounding error is at most half a unit in the third digit,
    # 0.5/100 of the leading digit's place, so under 0.5% of the value.
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=5e-3)


def test_all_lists_the_public_names() -> None:
    assert sorted(units.__all__) == ["format_duration", "parse_duration", "parse_rate"]
    for public in units.__all__:
        assert callable(getattr(units, public))
