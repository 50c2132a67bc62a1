"""Instruments for one simulation run: counters, time-weighted gauges, histograms, state timelines,
and the registry (:class:`Metrics`) that names them and holds the run's per-window time series
(:class:`~sim.series.WindowSeries`, in its own module and re-exported here).

Every instrument keeps aggregates, never one record per event: memory does not grow with the
number of recorded values or with the simulated horizon. The exceptions are the output of
:class:`WindowSeries`, one row per window, and the capped change log of :class:`StateTimeline`.

Time comes from a zero-argument callable ``now`` that returns true simulated seconds (for a
world, ``world.clock``). It must never go backwards. Instruments that need time call it
themselves, so hot code only says what happened (``gauge.set(busy)``), never when.

Hot paths (called once per simulated event) are ``Histogram.record``, ``TimeWeighted.set`` and
``TimeWeighted.add``, and ``counter.value += 1`` written inline by the caller. They allocate no
containers and validate only what costs nothing.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from itertools import accumulate
from math import ceil, exp, log
from types import MappingProxyType
from typing import TypeVar

from sim import check
from sim.errors import ConfigError

__all__ = ["Counter", "Histogram", "Metrics", "StateTimeline", "TimeWeighted", "WindowSeries"]

Clock = Callable[[], float]

# Quantiles reported by snapshots and window rows, with the suffix of their key.
_REPORTED_QUANTILES = ((0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p999"))


def _check_name(path: str, name: object) -> str:
    """``name`` if it is a dotted name: non-empty segments without whitespace."""
    if (
        not isinstance(name, str)
        or not name
        or any(not part or any(c.isspace() for c in part) for part in name.split("."))
    ):
        raise ConfigError.single(path, name, "a dotted name such as 'pool.web.wait'")
    return name


# -- counter ------------------------------------------------------------------------------


class Counter:
    """A plain integer count of events.

    Hot code may write ``counter.value += 1`` directly (one attribute update, ~25 ns); ``inc``
    is the same through a method call.

    Attributes:
        value: the count since creation or the last reset.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: int = 0

    def inc(self, n: int = 1) -> None:
        """Add ``n`` to the count."""
        self.value += n

    def reset(self) -> None:
        """Count from zero again."""
        self.value = 0

    def __repr__(self) -> str:
        return f"Counter(value={self.value})"


# -- time-weighted gauge --------------------------------------------------------------------


class TimeWeighted:
    """A level that changes in steps (busy workers, queue length), averaged over time.

    The level is piecewise constant: it holds its value until the next ``set`` or ``add``.
    The gauge keeps the integral of the level over time, so the mean over any span is exact.

    Args:
        now: the simulated clock (seconds, never decreasing).
        initial: the level at creation.

    Attributes:
        value: the current level. Read it freely; change it only through ``set``/``add``,
            otherwise the integral misses the change.
        maximum: the highest level held since creation or the last reset (the level at a
            reset counts, since it is held from then on).
    """

    __slots__ = (
        "_area",
        "_last",
        "_now",
        "_series",
        "_start",
        "_start_area",
        "_watch",
        "maximum",
        "value",
    )

    def __init__(self, now: Clock, initial: float = 0.0) -> None:
        initial = check.finite("initial", initial)
        t = now()
        self._now = now
        self.value: float = initial
        self.maximum: float = initial
        # Integral of the level from creation up to ``_last``, the time of the last update.
        # It is never reset (the mean subtracts ``_start_area``), so a WindowSeries can take
        # differences of it across a reset of the gauge.
        self._area = 0.0
        self._last = t
        self._start = t
        self._start_area = 0.0
        # The next window boundary of the WindowSeries that reports this gauge (inf if none):
        # the series must close its windows before the level changes past a boundary.
        self._watch = math.inf
        self._series: WindowSeries | None = None

    # Measured (CPython 3.11, 100k-call loops): set ≈ 0.13 µs, add ≈ 0.15 µs with a plain
    # clock method (≈ 0.03 µs of it); ≈ 0.19 µs with World._now (reads simpy's env.now
    # property). Being watched by a WindowSeries adds nothing measurable.
    def set(self, value: float) -> None:
        """Change the level to ``value`` from now on."""
        t = self._now()
        if t >= self._watch:
            self._cross(t)
        self._area += self.value * (t - self._last)
        self._last = t
        self.value = value
        if value > self.maximum:
            self.maximum = value

    def add(self, delta: float) -> None:
        """Change the level by ``delta`` from now on."""
        t = self._now()
        if t >= self._watch:
            self._cross(t)
        value = self.value
        self._area += value * (t - self._last)
        self._last = t
        value += delta
        self.value = value
        if value > self.maximum:
            self.maximum = value

    def mean(self) -> float:
        """The time average of the level since creation or the last reset, up to now.

        Over a span of zero length (read at the instant of creation or reset) this is the
        current level, the limit of the average as the span shrinks.
        """
        t = self._now()
        span = t - self._start
        if span <= 0.0:
            return self.value
        return (self._integral_at(t) - self._start_area) / span

    def reset(self) -> None:
        """Restart averaging (and the maximum) at now, keeping the current level."""
        t = self._now()
        if t >= self._watch:
            self._cross(t)
        self._area += self.value * (t - self._last)
        self._last = t
        self._start = t
        self._start_area = self._area
        self.maximum = self.value

    def _integral_at(self, t: float) -> float:
        """Integral of the level from creation up to ``t``.

        Exact for any ``t`` at or after the last change of level: the level has been constant
        since then, so the integral is linear in ``t`` (even backwards from ``_last``).
        """
        return self._area + self.value * (t - self._last)

    def _cross(self, t: float) -> None:
        # Only reached when a WindowSeries watches this gauge and a boundary has passed.
        assert self._series is not None
        self._series._roll(t)

    def __repr__(self) -> str:
        return f"TimeWeighted(value={self.value!r}, maximum={self.maximum!r})"


# -- histogram -----------------------------------------------------------------------------


# Buckets are built for an accuracy a hair tighter than asked, so that float rounding in
# log/ceil/exp (a few ulps) can never push an estimate past the promised relative error.
_ACCURACY_MARGIN = 1.0 - 1e-9
# q*count within this relative distance of an integer counts as that integer, so that
# quantile(0.07) of 100 values is rank 7 although the double 0.07 is a little above 7/100.
_RANK_SLACK = 1.0 - 1e-12


def _accuracy(relative_accuracy: float) -> float:
    """``relative_accuracy`` if it lies in (0, 1)."""
    if not 0.0 < check.finite("relative_accuracy", relative_accuracy) < 1.0:
        raise ConfigError.single("relative_accuracy", relative_accuracy, "a number in (0, 1)")
    return float(relative_accuracy)


class Histogram:
    """Distribution of non-negative values in fixed memory, mergeable, with bounded relative error.

    The buckets are logarithmic (the DDSketch scheme): with ``gamma = (1 + a) / (1 - a)``,
    a value ``x > 0`` goes to bucket ``i = ceil(log(x) / log(gamma))``, which holds the values
    in ``(gamma**(i-1), gamma**i]``; its representative ``2 * gamma**i / (gamma + 1)`` is within
    relative error ``a`` of every value in the bucket. Zeros are counted apart.

    Quantiles use the nearest-rank definition: ``quantile(q)`` estimates the value at rank
    ``max(1, ceil(q * count))`` (1-based) of the sorted recorded values, i.e. the lower
    quantile, always a recorded value, never an interpolation. The estimate ``e`` of a true
    value ``v`` satisfies ``|e - v| <= a * v`` (for normal floats); ranks 1 and ``count`` are
    answered exactly by the minimum and maximum.

    Memory: the buckets are a dense list spanning the lowest to the highest bucket seen, so
    their number is at most ``log(maximum / minimum) / log(gamma) + 2`` whatever the count:
    ~1,843 buckets for values from 1 ns to 10^7 s at 1%, and never more than ~73,000 (the
    whole range of positive doubles).

    Args:
        relative_accuracy: ``a``, in (0, 1); 0.01 means every quantile within 1%.

    Attributes:
        count: values recorded (zeros included).
        zero_count: how many of them were zero.
        total: the sum of the recorded values themselves (not estimated from buckets; its only
            error is float rounding of the running sum).
    """

    __slots__ = (
        "_bins",
        "_gamma_log",
        "_inv_gamma_log",
        "_maximum",
        "_minimum",
        "_offset",
        "_scale",
        "count",
        "relative_accuracy",
        "total",
        "zero_count",
    )

    def __init__(self, relative_accuracy: float = 0.01) -> None:
        a = self.relative_accuracy = _accuracy(relative_accuracy)
        inner = a * _ACCURACY_MARGIN
        self._gamma_log = math.log((1.0 + inner) / (1.0 - inner))
        self._inv_gamma_log = 1.0 / self._gamma_log
        # 2 * gamma**i / (gamma + 1) == (1 - inner) * gamma**i; computed as
        # exp(i * log(gamma) + log(1 - inner)) so the largest buckets do not overflow.
        self._scale = math.log(1.0 - inner)
        self.reset()

    def reset(self) -> None:
        """Forget every recorded value."""
        # _bins[j] counts bucket index _offset + j; both ends are non-empty (or the list is).
        self._bins: list[int] = []
        self._offset = 0
        self.count = 0
        self.zero_count = 0
        self.total = 0.0
        self._minimum = math.inf
        self._maximum = -math.inf

    # Measured (CPython 3.11, 100k-call loops, lognormal values over 8 decades): record ≈
    # 0.23 µs, ≈ 0.11 µs for zeros. A dict keyed by bucket index instead of the dense list
    # costs ≈ 0.03 µs more; exact min/max cost ≈ 0.02 µs; a compensated (Neumaier) sum for
    # ``total`` would add ≈ 0.05 µs for digits no report shows, so the sum is plain.
    def record(self, x: float) -> None:
        """Add one value ``x >= 0`` (finite)."""
        if x > 0.0:
            try:
                j = ceil(log(x) * self._inv_gamma_log) - self._offset
            except OverflowError:  # x is +inf
                raise ConfigError.single("x", x, "a finite number >= 0") from None
            if j >= 0:
                try:
                    self._bins[j] += 1
                except IndexError:
                    self._grow(j)
            else:
                self._grow(j)
        elif x == 0.0:
            self.zero_count += 1
        else:  # negative or nan
            raise ConfigError.single("x", x, "a finite number >= 0")
        self.count += 1
        self.total += x
        if x < self._minimum:
            self._minimum = x
        if x > self._maximum:
            self._maximum = x

    def _grow(self, j: int) -> None:
        """Count one value in bucket ``_offset + j``, which lies outside the list."""
        bins = self._bins
        if not bins:
            self._offset += j
            bins.append(1)
        elif j < 0:
            bins[:0] = [0] * -j
            self._offset += j
            bins[0] = 1
        else:
            bins.extend([0] * (j - len(bins)))
            bins.append(1)

    @property
    def minimum(self) -> float:
        """The smallest recorded value (nan if empty)."""
        return self._minimum if self.count else math.nan

    @property
    def maximum(self) -> float:
        """The largest recorded value (nan if empty)."""
        return self._maximum if self.count else math.nan

    @property
    def bucket_count(self) -> int:
        """Buckets held in memory: the span from the lowest to the highest non-empty bucket."""
        return len(self._bins)

    def mean(self) -> float:
        """``total / count``, exact up to float rounding (nan if empty)."""
        return self.total / self.count if self.count else math.nan

    def quantile(self, q: float) -> float:
        """The nearest-rank ``q``-quantile, within ``relative_accuracy`` (nan if empty).

        The true value is the one at rank ``max(1, ceil(q * count))`` of the sorted values
        (1-based); see the class docstring.
        """
        check.probability("q", q)
        n = self.count
        if n == 0:
            return math.nan
        rank = max(1, ceil(q * n * _RANK_SLACK))
        if rank == 1:
            return self._minimum
        if rank >= n:
            return self._maximum
        if rank <= self.zero_count:
            return 0.0
        # First bucket whose cumulative count reaches the rank among positive values.
        j = bisect_left(list(accumulate(self._bins)), rank - self.zero_count)
        try:
            estimate = exp((self._offset + j) * self._gamma_log + self._scale)
        except OverflowError:
            estimate = math.inf
        # The true value lies in [minimum, maximum]: clamping only moves the estimate closer.
        return min(max(estimate, self._minimum), self._maximum)

    def merge(self, other: Histogram) -> None:
        """Add every value recorded by ``other`` (which must have the same accuracy)."""
        if other.relative_accuracy != self.relative_accuracy:
            raise ConfigError.single(
                "other.relative_accuracy",
                other.relative_accuracy,
                f"{self.relative_accuracy} (histograms merge only at the same accuracy)",
            )
        if other._bins:
            theirs = list(other._bins)  # a copy: ``other`` may be ``self``
            if not self._bins:
                self._bins = theirs
                self._offset = other._offset
            else:
                low = min(self._offset, other._offset)
                high = max(self._offset + len(self._bins), other._offset + len(theirs))
                merged = [0] * (high - low)
                for source, offset in ((self._bins, self._offset), (theirs, other._offset)):
                    start = offset - low
                    for k, c in enumerate(source, start):
                        merged[k] += c
                self._bins = merged
                self._offset = low
        self.count += other.count
        self.zero_count += other.zero_count
        self.total += other.total
        self._minimum = min(self._minimum, other._minimum)
        self._maximum = max(self._maximum, other._maximum)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready description from which ``from_dict`` rebuilds an equal histogram.

        Keys: ``relative_accuracy``, ``count``, ``zero_count``, ``total``, ``minimum`` and
        ``maximum`` (None when empty), ``bucket_offset`` (index of the first bucket) and
        ``bucket_counts`` (dense counts from that bucket on).
        """
        return {
            "relative_accuracy": self.relative_accuracy,
            "count": self.count,
            "zero_count": self.zero_count,
            "total": self.total,
            "minimum": self._minimum if self.count else None,
            "maximum": self._maximum if self.count else None,
            "bucket_offset": self._offset,
            "bucket_counts": list(self._bins),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Histogram:
        """The histogram described by ``data`` (as written by ``to_dict``).

        Raises:
            ConfigError: a key is missing, has the wrong type, or the counts disagree.
        """

        def get(key: str) -> object:
            if key not in data:
                raise ConfigError.single(f"histogram.{key}", None, "a value (the key is missing)")
            return data[key]

        def integer(key: str) -> int:
            value = get(key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError.single(f"histogram.{key}", value, "an integer")
            return value

        def number(key: str) -> float:
            value = get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError.single(f"histogram.{key}", value, "a number")
            return float(value)

        accuracy = number("relative_accuracy")
        histogram = cls(accuracy)
        count = check.at_least("histogram.count", integer("count"), 0)
        zero_count = check.at_least("histogram.zero_count", integer("zero_count"), 0)
        offset = integer("bucket_offset")
        counts = get("bucket_counts")
        if not isinstance(counts, list) or not all(
            isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts
        ):
            raise ConfigError.single("histogram.bucket_counts", counts, "a list of integers >= 0")
        if sum(counts) + zero_count != count:
            raise ConfigError.single(
                "histogram.count", count, f"zero_count + sum(bucket_counts) = {sum(counts)}"
            )
        if counts and (counts[0] == 0 or counts[-1] == 0):
            raise ConfigError.single(
                "histogram.bucket_counts", counts, "a list that starts and ends with a count > 0"
            )
        if count:
            histogram._minimum = number("minimum")
            histogram._maximum = number("maximum")
        histogram._bins = list(counts)
        histogram._offset = offset
        histogram.count = count
        histogram.zero_count = zero_count
        histogram.total = number("total")
        return histogram

    def __repr__(self) -> str:
        return (
            f"Histogram(count={self.count}, mean={self.mean():.6g}, "
            f"p50={self.quantile(0.5):.6g}, p99={self.quantile(0.99):.6g})"
        )


# -- state timeline ------------------------------------------------------------------------


class StateTimeline:
    """A component's discrete state over time (a breaker's closed/open/half_open, up/down).

    Args:
        now: the simulated clock.
        initial: the state at creation.
        states: states to report even if never entered (so ``time_in`` and snapshots always
            carry the same keys), e.g. ``("closed", "open", "half_open")``.
        max_changes: the longest the change log may get. The cap keeps memory flat on long
            runs of a flapping component; entries past it are counted in ``dropped_changes``
            instead of stored. Time per state and transition counts stay exact regardless.

    Attributes:
        state: the current state.
        transitions: how many times the state went from ``a`` to ``b``, by ``(a, b)``.
        changes: ``(time, state entered)`` in order, starting with the state held at
            creation or the last reset; at most ``max_changes`` entries (the earliest ones).
        dropped_changes: changes not logged because the log was full.
    """

    __slots__ = (
        "_now",
        "_since",
        "_time",
        "changes",
        "dropped_changes",
        "max_changes",
        "state",
        "transitions",
    )

    def __init__(
        self,
        now: Clock,
        initial: str,
        *,
        states: Iterable[str] = (),
        max_changes: int = 10_000,
    ) -> None:
        if not isinstance(initial, str) or not initial:
            raise ConfigError.single("initial", initial, "a state name")
        self.max_changes = check.positive_int("max_changes", max_changes)
        self._now = now
        self.state = initial
        self._time: dict[str, float] = dict.fromkeys(states, 0.0)
        self._time.setdefault(initial, 0.0)
        self.transitions: dict[tuple[str, str], int] = {}
        self.changes: list[tuple[float, str]] = []
        self.dropped_changes = 0
        self._since = 0.0
        self.reset()

    def enter(self, state: str) -> None:
        """Move to ``state`` now (nothing happens if it is the current state)."""
        old = self.state
        if state == old:
            return
        t = self._now()
        time = self._time
        time[old] += t - self._since
        if state not in time:
            time[state] = 0.0
        key = (old, state)
        self.transitions[key] = self.transitions.get(key, 0) + 1
        self.state = state
        self._since = t
        if len(self.changes) < self.max_changes:
            self.changes.append((t, state))
        else:
            self.dropped_changes += 1

    def time_in(self) -> dict[str, float]:
        """Seconds spent in each state since creation or the last reset, up to now.

        Every state declared or entered so far is a key, in first-seen order.
        """
        spent = dict(self._time)
        spent[self.state] += self._now() - self._since
        return spent

    def reset(self) -> None:
        """Start over at now in the current state: zero times, no transitions, fresh log."""
        t = self._now()
        for state in self._time:
            self._time[state] = 0.0
        self._since = t
        self.transitions.clear()
        self.changes.clear()
        self.changes.append((t, self.state))
        self.dropped_changes = 0

    def __repr__(self) -> str:
        return f"StateTimeline(state={self.state!r}, transitions={sum(self.transitions.values())})"


# -- reporting a histogram ----------------------------------------------------------------


def _summary_keys(name: str) -> list[tuple[str, float]]:
    """The keys that report histogram ``name``, each with its value when there is no data."""
    keys = [(f"{name}.count", 0.0), (f"{name}.mean", math.nan)]
    keys += [(f"{name}.{suffix}", math.nan) for _, suffix in _REPORTED_QUANTILES]
    keys += [(f"{name}.min", math.nan), (f"{name}.max", math.nan)]
    return keys


def _summary(name: str, histogram: Histogram) -> dict[str, float]:
    """``<name>.count``, ``.mean``, ``.p50``, ``.p90``, ``.p99``, ``.p999``, ``.min``, ``.max``.

    All nan but the count (0) when the histogram is empty.
    """
    values = [float(histogram.count), histogram.mean()]
    values += [histogram.quantile(q) for q, _ in _REPORTED_QUANTILES]
    values += [histogram.minimum, histogram.maximum]
    return {key: value for (key, _), value in zip(_summary_keys(name), values, strict=True)}


# -- registry --------------------------------------------------------------------------------


_Instrument = TypeVar("_Instrument", Counter, TimeWeighted, Histogram, StateTimeline)

_KIND_NAMES: dict[type, str] = {
    Counter: "counter",
    TimeWeighted: "gauge",
    Histogram: "histogram",
    StateTimeline: "timeline",
}


class Metrics:
    """The instruments of one run, by dotted name, created on first use.

    Asking twice for a name returns the same instrument, so components need not pass
    instruments around; asking for an existing name as another kind raises ``ConfigError``.
    Arguments after the name (``initial``, ``states``) are used only when the instrument is
    created.

    Args:
        now: the simulated clock, shared by every instrument.
        window_s: window length of ``series``, or None for no series.

    Attributes:
        series: the per-window time series, or None. ``reset`` leaves it alone: its rows are
            indexed by time, so readers drop the warm-up windows by their ``start``, and the
            window open at the reset is not cut in two.
    """

    __slots__ = ("_instruments", "_now", "series")

    def __init__(self, now: Clock, window_s: float | None = None) -> None:
        self._now = now
        self._instruments: dict[str, Counter | TimeWeighted | Histogram | StateTimeline] = {}
        self.series: WindowSeries | None = None if window_s is None else WindowSeries(now, window_s)

    def counter(self, name: str) -> Counter:
        """The counter called ``name``."""
        return self._get(name, Counter, Counter)

    def gauge(self, name: str, initial: float = 0.0) -> TimeWeighted:
        """The time-weighted gauge called ``name`` (level ``initial`` when created)."""
        return self._get(name, TimeWeighted, lambda: TimeWeighted(self._now, initial))

    def histogram(self, name: str) -> Histogram:
        """The histogram called ``name`` (1% relative accuracy)."""
        return self._get(name, Histogram, Histogram)

    def timeline(self, name: str, initial: str, *, states: Iterable[str] = ()) -> StateTimeline:
        """The state timeline called ``name`` (in state ``initial`` when created)."""
        return self._get(
            name, StateTimeline, lambda: StateTimeline(self._now, initial, states=states)
        )

    def _get(
        self, name: str, kind: type[_Instrument], make: Callable[[], _Instrument]
    ) -> _Instrument:
        found = self._instruments.get(name)
        if found is None:
            created = make()
            self._instruments[_check_name("name", name)] = created
            return created
        if not isinstance(found, kind):
            raise ConfigError.single(
                name, _KIND_NAMES[kind], f"'{_KIND_NAMES[type(found)]}', the kind it already is"
            )
        return found

    def instruments(self) -> Mapping[str, Counter | TimeWeighted | Histogram | StateTimeline]:
        """Every instrument by name, read-only (for reports: state logs, kinds of figures)."""
        return MappingProxyType(self._instruments)

    def reset(self) -> None:
        """Restart every instrument at now (warm-up removal).

        Counters go to 0, histograms empty, gauges average from now keeping their level,
        timelines keep their state and zero their times, transitions and log.
        """
        for instrument in self._instruments.values():
            instrument.reset()

    def snapshot(self) -> dict[str, float]:
        """Every instrument's figures now, as one flat dict, instruments in name order.

        Keys for an instrument called ``name``:

        - counter: ``name`` (the count);
        - gauge: ``name.mean`` (time average since reset), ``name.max``, ``name.value`` (level
          now);
        - histogram: ``name.count``, ``name.mean``, ``name.p50``, ``name.p90``, ``name.p99``,
          ``name.p999``, ``name.min``, ``name.max`` (all nan but the count when empty);
        - timeline: ``name.time.<state>`` (seconds in each state since reset) and
          ``name.transitions.<from>.<to>`` (count of each transition seen since reset).

        Raises:
            ConfigError: two instruments report the same key (e.g. a counter ``a.count`` and
                a histogram ``a``).
        """
        figures: dict[str, float] = {}
        owners: dict[str, str] = {}

        def put(owner: str, key: str, value: float) -> None:
            if key in figures:
                raise ConfigError.single(key, owner, f"a key only '{owners[key]}' reports")
            figures[key] = value
            owners[key] = owner

        for name in sorted(self._instruments):
            instrument = self._instruments[name]
            if isinstance(instrument, Counter):
                put(name, name, instrument.value)
            elif isinstance(instrument, TimeWeighted):
                put(name, f"{name}.mean", instrument.mean())
                put(name, f"{name}.max", instrument.maximum)
                put(name, f"{name}.value", instrument.value)
            elif isinstance(instrument, Histogram):
                for key, value in _summary(name, instrument).items():
                    put(name, key, value)
            else:
                for state, seconds in instrument.time_in().items():
                    put(name, f"{name}.time.{state}", seconds)
                for (before, after), count in instrument.transitions.items():
                    put(name, f"{name}.transitions.{before}.{after}", count)
        return figures

    def __repr__(self) -> str:
        return f"Metrics(instruments={len(self._instruments)}, series={self.series is not None})"


# At the end, not the top: sim.series builds on the instruments above, and the registry
# (and old imports, ``from sim.metrics import WindowSeries``) use it. The package's
# ``__init__`` imports this module first, so the cycle always resolves this way round.
from sim.series import WindowSeries  # noqa: E402
