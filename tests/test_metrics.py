"""Tests of sim.metrics: scripted schedules on a hand-driven clock, and properties of histograms."""

from __future__ import annotations

import json
import math
import re
import sys
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim.errors import ConfigError
from sim.metrics import Counter, Histogram, Metrics, StateTimeline, TimeWeighted, WindowSeries

QUANTILES = (0.0, 0.01, 0.5, 0.9, 0.99, 0.999, 1.0)


class Clock:
    """A simulated clock the test moves by hand: ``clock.t = 5.0``; instruments call it."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def nearest_rank(values: list[float], q: float) -> float:
    """The exact lower quantile: the value at rank max(1, ceil(q * n)) of the sorted values.

    ``q`` is taken as the decimal it is written as (0.07 means 7/100, not the double's value).
    """
    ordered = sorted(values)
    rank = max(1, math.ceil(Fraction(str(q)) * len(ordered)))
    return ordered[rank - 1]


def assert_within(estimate: float, exact: float, accuracy: float) -> None:
    assert abs(estimate - exact) <= accuracy * exact, (estimate, exact, accuracy)


def histogram_of(values: list[float], accuracy: float = 0.01) -> Histogram:
    histogram = Histogram(accuracy)
    for x in values:
        histogram.record(x)
    return histogram


def without_total(histogram: Histogram) -> dict[str, object]:
    """``to_dict`` minus the float sum, whose rounding depends on the order of additions."""
    described = histogram.to_dict()
    del described["total"]
    return described


# -- Histogram ----------------------------------------------------------------------------

# From 1 ns to 10^7 s, the values of interest, with zeros mixed in.
latencies = st.floats(min_value=1e-9, max_value=1e7)
with_zeros = st.one_of(st.just(0.0), latencies)
# Every positive normal double: 600 orders of magnitude.
normal_floats = st.floats(min_value=sys.float_info.min, max_value=sys.float_info.max)
accuracies = st.sampled_from([0.001, 0.01, 0.05])


@given(st.lists(with_zeros, min_size=1, max_size=300), accuracies)
def test_every_quantile_is_within_accuracy_of_the_nearest_rank_value(values, accuracy):
    histogram = histogram_of(values, accuracy)
    for q in QUANTILES:
        assert_within(histogram.quantile(q), nearest_rank(values, q), accuracy)


@given(st.lists(normal_floats, min_size=1, max_size=200))
def test_quantiles_hold_over_the_whole_range_of_normal_floats(values):
    histogram = histogram_of(values)
    for q in QUANTILES:
        assert_within(histogram.quantile(q), nearest_rank(values, q), 0.01)


@given(st.lists(with_zeros, min_size=1, max_size=300))
def test_count_total_minimum_maximum_mean_are_exact(values):
    histogram = histogram_of(values)
    assert histogram.count == len(values)
    assert histogram.zero_count == values.count(0.0)
    assert histogram.total == pytest.approx(math.fsum(values), rel=1e-12)
    assert histogram.minimum == min(values)
    assert histogram.maximum == max(values)
    assert histogram.mean() == pytest.approx(math.fsum(values) / len(values), rel=1e-12)


@given(st.lists(with_zeros, max_size=200), st.lists(with_zeros, max_size=200))
def test_merging_two_histograms_equals_recording_all_values_in_one(first, second):
    merged = histogram_of(first)
    merged.merge(histogram_of(second))
    everything = histogram_of(first + second)
    assert without_total(merged) == without_total(everything)
    assert merged.total == pytest.approx(everything.total, rel=1e-12)
    for q in QUANTILES:
        assert merged.quantile(q) == everything.quantile(q) or math.isnan(everything.quantile(q))


def test_merging_a_histogram_into_itself_doubles_every_count():
    histogram = histogram_of([0.0, 1.0, 2.0, 300.0])
    histogram.merge(histogram)
    assert without_total(histogram) == without_total(histogram_of([0.0, 1.0, 2.0, 300.0] * 2))


def test_merging_histograms_of_different_accuracy_is_refused():
    with pytest.raises(ConfigError, match=re.escape("other.relative_accuracy")):
        Histogram(0.01).merge(Histogram(0.02))


def test_zeros_are_counted_apart_and_answered_exactly():
    histogram = histogram_of([0.0] * 5)
    assert [histogram.quantile(q) for q in QUANTILES] == [0.0] * len(QUANTILES)
    assert histogram.mean() == 0.0
    assert histogram.bucket_count == 0
    mixed = histogram_of([0.0, 0.0, 0.0, 5.0])  # ranks 1-3 are zeros, rank 4 is 5.0
    assert mixed.quantile(0.75) == 0.0
    assert mixed.quantile(0.76) == 5.0
    assert mixed.zero_count == 3


def test_quantile_uses_the_nearest_rank_definition():
    histogram = histogram_of([float(v) for v in range(1, 101)])
    assert_within(histogram.quantile(0.07), 7.0, 0.01)  # rank ceil(7.0) = 7, not 8
    assert_within(histogram.quantile(0.071), 8.0, 0.01)
    assert_within(histogram.quantile(0.5), 50.0, 0.01)  # the lower median, no interpolation
    assert histogram.quantile(0.0) == 1.0  # ranks 1 and n are the exact minimum and maximum
    assert histogram.quantile(0.001) == 1.0
    assert histogram.quantile(1.0) == 100.0


def test_an_empty_histogram_answers_nan():
    histogram = Histogram()
    assert histogram.count == 0
    assert math.isnan(histogram.mean())
    assert math.isnan(histogram.quantile(0.5))
    assert math.isnan(histogram.minimum)
    assert math.isnan(histogram.maximum)


@given(st.lists(with_zeros, max_size=200), accuracies)
def test_to_dict_and_from_dict_round_trip_through_json(values, accuracy):
    histogram = histogram_of(values, accuracy)
    rebuilt = Histogram.from_dict(json.loads(json.dumps(histogram.to_dict())))
    assert rebuilt.to_dict() == histogram.to_dict()
    for q in QUANTILES:
        estimate = histogram.quantile(q)
        assert rebuilt.quantile(q) == estimate or math.isnan(estimate)
    rebuilt.record(1.0)  # a rebuilt histogram keeps working
    assert rebuilt.count == histogram.count + 1


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"count": 99}, "histogram.count"),
        ({"count": "3"}, "histogram.count"),
        ({"bucket_counts": [1, -1]}, "histogram.bucket_counts"),
        ({"bucket_counts": [0, 3]}, "histogram.bucket_counts"),
        ({"relative_accuracy": 2.0}, "relative_accuracy"),
        ({"minimum": "low"}, "histogram.minimum"),
    ],
)
def test_from_dict_names_the_bad_key(change, path):
    described = histogram_of([0.5, 1.0, 2.0]).to_dict() | change
    with pytest.raises(ConfigError, match=re.escape(path)):
        Histogram.from_dict(described)


def test_from_dict_reports_a_missing_key():
    described = histogram_of([1.0]).to_dict()
    del described["bucket_offset"]
    with pytest.raises(ConfigError, match=re.escape("histogram.bucket_offset")):
        Histogram.from_dict(described)


def test_memory_stays_bounded_by_the_range_of_values_not_their_number():
    accuracy, low, high = 0.01, 1e-3, 1e2
    gamma = (1 + accuracy) / (1 - accuracy)
    bound = math.ceil(math.log(high / low) / math.log(gamma)) + 2
    rng = np.random.default_rng(20261127)
    values = np.exp(rng.uniform(math.log(low), math.log(high), 1_000_000)).tolist()
    histogram = Histogram(accuracy)
    sizes = []
    for chunk in range(10):
        for x in values[chunk * 100_000 : (chunk + 1) * 100_000]:
            histogram.record(x)
        sizes.append(histogram.bucket_count)
    assert sizes[-1] <= bound
    assert sizes[-1] == sizes[len(sizes) // 2]  # flat after the range is covered
    ordered = np.sort(values)
    for q in QUANTILES:
        rank = max(1, math.ceil(Fraction(str(q)) * len(values)))
        assert_within(histogram.quantile(q), float(ordered[rank - 1]), accuracy)


def test_the_full_range_of_interest_needs_under_two_thousand_buckets():
    histogram = histogram_of([1e-9, 1e7])
    assert histogram.bucket_count <= 1845


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf, -math.inf])
def test_record_refuses_negative_and_non_finite_values_and_changes_nothing(bad):
    histogram = histogram_of([1.0, 2.0])
    before = histogram.to_dict()
    with pytest.raises(ConfigError, match="x: got"):
        histogram.record(bad)
    assert histogram.to_dict() == before


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.5, math.nan, "0.01"])
def test_accuracy_must_lie_strictly_between_zero_and_one(bad):
    with pytest.raises(ConfigError, match="relative_accuracy"):
        Histogram(bad)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan])
def test_quantile_refuses_q_outside_zero_one(bad):
    with pytest.raises(ConfigError, match="q: got"):
        histogram_of([1.0]).quantile(bad)


def test_reset_empties_the_histogram():
    histogram = histogram_of([0.0, 1.0, 5.0])
    histogram.reset()
    assert histogram.to_dict() == Histogram().to_dict()
    histogram.record(3.0)
    assert histogram.quantile(0.5) == 3.0


# -- Counter --------------------------------------------------------------------------------


def test_counter_counts_through_inc_and_direct_updates_and_resets():
    counter = Counter()
    counter.inc()
    counter.inc(4)
    counter.value += 1
    assert counter.value == 6
    counter.reset()
    assert counter.value == 0


# -- TimeWeighted ---------------------------------------------------------------------------


def test_mean_is_the_exact_time_average_of_a_scripted_schedule():
    clock = Clock()
    gauge = TimeWeighted(clock)  # level 0 from t=0
    script = [(2.0, "set", 4.0), (5.0, "add", -1.0), (9.0, "set", 0.0)]
    for t, action, amount in script:
        clock.t = t
        getattr(gauge, action)(amount)
    clock.t = 10.0
    # 0 for 2 s, 4 for 3 s, 3 for 4 s, 0 for 1 s: 24 level-seconds over 10 s.
    assert gauge.mean() == 2.4
    assert gauge.maximum == 4.0
    assert gauge.value == 0.0


def test_reset_restarts_averaging_at_now_keeping_the_level():
    clock = Clock()
    gauge = TimeWeighted(clock, initial=3.0)
    clock.t = 4.0
    gauge.set(8.0)
    clock.t = 10.0
    gauge.reset()
    assert gauge.mean() == 8.0  # a span of zero length: the level itself
    assert gauge.maximum == 8.0
    clock.t = 12.0
    gauge.set(2.0)
    clock.t = 16.0
    # 8 for 2 s, then 2 for 4 s: 24 over 6 s. Nothing before the reset counts.
    assert gauge.mean() == 4.0
    assert gauge.maximum == 8.0
    gauge.reset()
    assert gauge.maximum == 2.0


def test_the_mean_at_creation_is_the_initial_level():
    gauge = TimeWeighted(Clock(7.0), initial=1.5)
    assert gauge.mean() == 1.5
    assert gauge.maximum == 1.5


@given(
    st.lists(st.tuples(st.integers(0, 1000), st.integers(-50, 50)), min_size=1, max_size=50),
    st.integers(1, 100),
)
def test_mean_matches_the_integral_computed_exactly(steps, tail):
    clock = Clock()
    gauge = TimeWeighted(clock)
    area, t, level = Fraction(0), 0, 0
    for dt, value in steps:
        area += level * dt
        t += dt
        clock.t = float(t)
        gauge.set(float(value))
        level = value
    area += level * tail
    clock.t = float(t + tail)
    assert gauge.mean() == pytest.approx(float(area / (t + tail)), rel=1e-12, abs=1e-12)
    assert gauge.maximum == max(0, *(value for _, value in steps))


def test_gauge_initial_level_must_be_finite():
    with pytest.raises(ConfigError, match="initial"):
        TimeWeighted(Clock(), initial=math.inf)


# -- StateTimeline --------------------------------------------------------------------------


def run_breaker_script(timeline: StateTimeline, clock: Clock) -> None:
    script = [(3.0, "open"), (3.0, "open"), (8.0, "half_open"), (9.0, "closed"), (12.0, "open")]
    for t, state in script:
        clock.t = t
        timeline.enter(state)
    clock.t = 15.0


def test_time_in_transitions_and_changes_are_exact_for_a_script():
    clock = Clock()
    timeline = StateTimeline(clock, "closed")
    run_breaker_script(timeline, clock)
    assert timeline.state == "open"
    assert timeline.time_in() == {"closed": 6.0, "open": 8.0, "half_open": 1.0}
    assert timeline.transitions == {
        ("closed", "open"): 2,
        ("open", "half_open"): 1,
        ("half_open", "closed"): 1,
    }
    assert timeline.changes == [
        (0.0, "closed"),
        (3.0, "open"),
        (8.0, "half_open"),
        (9.0, "closed"),
        (12.0, "open"),
    ]
    assert timeline.dropped_changes == 0


def test_timeline_reset_keeps_the_state_and_known_states_and_zeroes_the_rest():
    clock = Clock()
    timeline = StateTimeline(clock, "closed")
    run_breaker_script(timeline, clock)
    timeline.reset()
    assert timeline.time_in() == {"closed": 0.0, "open": 0.0, "half_open": 0.0}
    assert timeline.transitions == {}
    assert timeline.changes == [(15.0, "open")]
    clock.t = 20.0
    timeline.enter("half_open")
    clock.t = 21.0
    assert timeline.time_in() == {"closed": 0.0, "open": 5.0, "half_open": 1.0}


def test_declared_states_are_reported_before_they_are_entered():
    timeline = StateTimeline(Clock(), "closed", states=("closed", "open", "half_open"))
    assert timeline.time_in() == {"closed": 0.0, "open": 0.0, "half_open": 0.0}


def test_the_change_log_is_capped_and_counts_what_it_drops():
    clock = Clock()
    timeline = StateTimeline(clock, "up", max_changes=3)
    for step in range(1, 11):  # ten changes after the initial entry: eleven entries in all
        clock.t = float(step)
        timeline.enter("down" if step % 2 else "up")
    clock.t = 12.0
    assert timeline.changes == [(0.0, "up"), (1.0, "down"), (2.0, "up")]
    assert timeline.dropped_changes == 8
    assert timeline.time_in() == {"up": 7.0, "down": 5.0}  # still exact past the cap
    assert timeline.transitions == {("up", "down"): 5, ("down", "up"): 5}


@pytest.mark.parametrize(("initial", "max_changes"), [("", 10), ("up", 0), ("up", 2.5)])
def test_timeline_parameters_are_checked(initial, max_changes):
    with pytest.raises(ConfigError):
        StateTimeline(Clock(), initial, max_changes=max_changes)


# -- WindowSeries ---------------------------------------------------------------------------

NAN = math.nan


def latency_row(count, value):
    """The keys of an ``observe`` field named latency for a window holding one value or none."""
    single = value if count else NAN
    return {
        "latency.count": float(count),
        "latency.mean": single,
        "latency.p50": single,
        "latency.p90": single,
        "latency.p99": single,
        "latency.p999": single,
        "latency.min": single,
        "latency.max": single,
    }


def same_rows(actual, expected):
    """Equal, nan equal to nan, keys in the same order."""
    assert [list(row) for row in actual] == [list(row) for row in expected]
    for got, want in zip(actual, expected, strict=True):
        for key in want:
            assert got[key] == want[key] or (math.isnan(got[key]) and math.isnan(want[key])), (
                key,
                got,
                want,
            )


def test_rows_are_exact_for_a_scripted_run_with_empty_windows():
    clock = Clock()
    series = WindowSeries(clock, window_s=10.0)
    busy = TimeWeighted(clock)
    series.level("busy", busy)
    script = [
        (1.0, lambda: series.add("ok")),
        (2.0, lambda: series.observe("latency", 0.5)),
        (4.0, lambda: busy.set(2.0)),
        (6.0, lambda: series.add("ok", 2.0)),
        (12.0, lambda: series.observe("latency", 1.25)),
        (15.0, lambda: busy.set(4.0)),
        # [20, 30) has no event at all
        (35.0, lambda: series.add("ok")),
        (38.0, lambda: busy.set(0.0)),
    ]
    for t, action in script:
        clock.t = t
        action()
    clock.t = 45.0
    expected = [
        {"start": 0.0, "end": 10.0, "busy": 1.2, "ok": 3.0, **latency_row(1, 0.5)},
        {"start": 10.0, "end": 20.0, "busy": 3.0, "ok": 0.0, **latency_row(1, 1.25)},
        {"start": 20.0, "end": 30.0, "busy": 4.0, "ok": 0.0, **latency_row(0, 0)},
        {"start": 30.0, "end": 40.0, "busy": 3.2, "ok": 1.0, **latency_row(0, 0)},
        {"start": 40.0, "end": 45.0, "busy": 0.0, "ok": 0.0, **latency_row(0, 0)},
    ]
    same_rows(series.rows(), expected)
    same_rows(series.rows(), expected)  # reading does not change anything


def test_a_gauge_changing_exactly_at_a_boundary_counts_in_the_next_window():
    clock = Clock()
    series = WindowSeries(clock, window_s=10.0)
    queue = TimeWeighted(clock, initial=1.0)
    series.level("queue", queue)
    clock.t = 10.0
    queue.set(3.0)
    clock.t = 30.0  # the gauge closes windows by itself before changing past a boundary
    queue.set(5.0)
    clock.t = 35.0
    assert [row["queue"] for row in series.rows()] == [1.0, 3.0, 3.0, 5.0]


def test_reading_rows_mid_window_leaves_the_window_average_alone():
    clock = Clock()
    series = WindowSeries(clock, window_s=10.0)
    gauge = TimeWeighted(clock, initial=2.0)
    series.level("level", gauge)
    clock.t = 4.0
    assert [row["level"] for row in series.rows()] == [2.0]  # the open window, [0, 4]
    gauge.set(7.0)
    clock.t = 10.0
    assert [row["level"] for row in series.rows()] == [(2.0 * 4 + 7.0 * 6) / 10]


def test_a_gauge_reset_leaves_its_window_averages_alone():
    clock = Clock()
    series = WindowSeries(clock, window_s=10.0)
    gauge = TimeWeighted(clock, initial=2.0)
    series.level("level", gauge)
    clock.t = 5.0
    gauge.reset()
    clock.t = 15.0
    gauge.set(6.0)
    gauge.reset()
    clock.t = 20.0
    assert [row["level"] for row in series.rows()] == [2.0, 4.0]


def test_fields_first_used_later_are_filled_in_earlier_rows():
    clock = Clock()
    series = WindowSeries(clock, window_s=1.0)
    clock.t = 0.5
    series.add("ok")
    clock.t = 1.5
    series.observe("latency", 2.0)
    gauge = TimeWeighted(clock, initial=1.0)
    series.level("late", gauge)  # registered at 1.5: the window average covers [1.5, 2]
    clock.t = 1.75
    gauge.set(3.0)
    clock.t = 2.0
    same_rows(
        series.rows(),
        [
            {"start": 0.0, "end": 1.0, "ok": 1.0, **latency_row(0, 0), "late": NAN},
            {"start": 1.0, "end": 2.0, "ok": 0.0, **latency_row(1, 2.0), "late": 2.0},
        ],
    )


def test_the_open_window_is_a_row_only_if_it_has_length_or_data():
    clock = Clock(100.0)  # windows start at creation: [100, 110), [110, 120) ...
    series = WindowSeries(clock, window_s=10.0)
    clock.t = 105.0
    series.add("ok")
    clock.t = 110.0
    assert [(row["start"], row["end"]) for row in series.rows()] == [(100.0, 110.0)]
    series.add("ok")
    assert [(row["start"], row["end"], row["ok"]) for row in series.rows()] == [
        (100.0, 110.0, 1.0),
        (110.0, 110.0, 1.0),
    ]


def test_many_windows_keep_their_boundaries_on_the_grid():
    clock = Clock()
    series = WindowSeries(clock, window_s=0.1)
    for step in range(1, 1001):
        clock.t = step * 0.1
        series.add("tick")
    rows = series.rows()
    assert len(rows) == 1001  # the last tick opens the window [100, 100.1)
    assert all(row["tick"] == 1.0 for row in rows[1:])
    assert rows[500]["start"] == 500 * 0.1


def test_a_field_has_one_kind():
    clock = Clock()
    series = WindowSeries(clock, window_s=1.0)
    series.add("x")
    with pytest.raises(ConfigError, match="'add', the kind"):
        series.observe("x", 1.0)
    with pytest.raises(ConfigError, match="'add', the kind"):
        series.level("x", TimeWeighted(clock))


def test_a_level_field_reports_one_gauge_and_a_gauge_one_series():
    clock = Clock()
    series = WindowSeries(clock, window_s=1.0)
    gauge = TimeWeighted(clock)
    series.level("busy", gauge)
    series.level("busy", gauge)  # the same registration again is harmless
    with pytest.raises(ConfigError, match="busy"):
        series.level("busy", TimeWeighted(clock))
    with pytest.raises(ConfigError, match="another series"):
        WindowSeries(clock, window_s=1.0).level("busy", gauge)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("add", "start"), None),
        (("add", "lat.p99"), ("observe", "lat")),
        (("observe", "lat"), ("add", "lat.count")),
    ],
)
def test_field_names_whose_row_keys_clash_are_refused(first, second):
    series = WindowSeries(Clock(), window_s=1.0)
    calls = {"add": series.add, "observe": lambda field: series.observe(field, 1.0)}
    with pytest.raises(ConfigError, match="row keys are free"):
        calls[first[0]](first[1])
        if second is not None:
            calls[second[0]](second[1])


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf])
def test_window_length_must_be_positive_and_finite(bad):
    with pytest.raises(ConfigError, match="window_s"):
        WindowSeries(Clock(), window_s=bad)


# -- Metrics --------------------------------------------------------------------------------


def test_asking_twice_for_a_name_returns_the_same_instrument():
    metrics = Metrics(Clock())
    assert metrics.counter("entry.ok") is metrics.counter("entry.ok")
    assert metrics.gauge("pool.web.busy") is metrics.gauge("pool.web.busy", initial=5.0)
    assert metrics.histogram("entry.latency") is metrics.histogram("entry.latency")
    assert metrics.timeline("breaker.pay", "closed") is metrics.timeline("breaker.pay", "open")
    assert metrics.timeline("breaker.pay", "open").state == "closed"  # used on creation only


def test_asking_for_a_name_as_another_kind_is_an_error():
    metrics = Metrics(Clock())
    metrics.counter("entry.ok")
    clash = "entry.ok: got 'histogram', expected 'counter'"
    with pytest.raises(ConfigError, match=re.escape(clash)):
        metrics.histogram("entry.ok")
    with pytest.raises(ConfigError, match=re.escape("entry.ok")):
        metrics.gauge("entry.ok")
    with pytest.raises(ConfigError, match=re.escape("entry.ok")):
        metrics.timeline("entry.ok", "up")


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a.", "a. b", "a b", 3])
def test_names_are_dotted_words(bad):
    with pytest.raises(ConfigError, match="a dotted name"):
        Metrics(Clock()).counter(bad)


def populated() -> tuple[Metrics, Clock]:
    clock = Clock()
    metrics = Metrics(clock)
    metrics.counter("entry.ok").value += 10
    busy = metrics.gauge("pool.web.busy", initial=1.0)
    latency = metrics.histogram("entry.latency")
    for x in (0.1, 0.2, 0.4):
        latency.record(x)
    breaker = metrics.timeline("breaker.pay", "closed")
    clock.t = 4.0
    busy.set(3.0)
    breaker.enter("open")
    clock.t = 6.0
    return metrics, clock


def test_snapshot_is_flat_and_named_by_the_documented_scheme():
    metrics, _ = populated()
    snapshot = metrics.snapshot()
    assert list(snapshot) == [
        "breaker.pay.time.closed",
        "breaker.pay.time.open",
        "breaker.pay.transitions.closed.open",
        "entry.latency.count",
        "entry.latency.mean",
        "entry.latency.p50",
        "entry.latency.p90",
        "entry.latency.p99",
        "entry.latency.p999",
        "entry.latency.min",
        "entry.latency.max",
        "entry.ok",
        "pool.web.busy.mean",
        "pool.web.busy.max",
        "pool.web.busy.value",
    ]
    assert snapshot["entry.ok"] == 10
    assert snapshot["pool.web.busy.mean"] == (1.0 * 4 + 3.0 * 2) / 6
    assert snapshot["pool.web.busy.max"] == 3.0
    assert snapshot["breaker.pay.time.open"] == 2.0
    assert snapshot["breaker.pay.transitions.closed.open"] == 1
    assert snapshot["entry.latency.count"] == 3
    assert_within(snapshot["entry.latency.p50"], 0.2, 0.01)
    assert snapshot["entry.latency.p99"] == 0.4


def test_reset_restarts_every_instrument_at_now():
    metrics, clock = populated()
    metrics.reset()
    snapshot = metrics.snapshot()
    assert snapshot["entry.ok"] == 0
    assert snapshot["entry.latency.count"] == 0
    assert math.isnan(snapshot["entry.latency.p50"])
    assert snapshot["pool.web.busy.mean"] == 3.0  # the level is kept, the average restarts
    assert snapshot["breaker.pay.time.open"] == 0.0
    assert "breaker.pay.transitions.closed.open" not in snapshot
    clock.t = 10.0
    metrics.gauge("pool.web.busy").set(1.0)
    clock.t = 12.0
    assert metrics.snapshot()["pool.web.busy.mean"] == (3.0 * 4 + 1.0 * 2) / 6
    assert metrics.snapshot()["breaker.pay.time.open"] == 6.0


def test_two_instruments_reporting_the_same_key_are_an_error():
    metrics = Metrics(Clock())
    metrics.histogram("a")
    metrics.counter("a.count")
    with pytest.raises(ConfigError, match=re.escape("a.count")):
        metrics.snapshot()


def test_the_series_exists_only_with_a_window_length_and_survives_reset():
    clock = Clock()
    assert Metrics(clock).series is None
    metrics = Metrics(clock, window_s=10.0)
    series = metrics.series
    assert isinstance(series, WindowSeries)
    clock.t = 5.0
    series.add("ok")
    metrics.reset()
    clock.t = 10.0
    assert [row["ok"] for row in series.rows()] == [1.0]
