"""Per-window time series: what happened in each window of ``w`` seconds of a run.

:class:`WindowSeries` turns the instruments of :mod:`sim.metrics` into rows, one per window:
sums of counted events, histograms of observed values, and exact time averages of gauges.
It lives apart from the registry because it is the one instrument whose output grows (one
row per window); ``from sim.metrics import WindowSeries`` still works.
"""

from __future__ import annotations

import math

from sim import check
from sim.errors import ConfigError
from sim.histogram import Histogram, histogram_summary, summary_keys, valid_accuracy
from sim.metrics import Clock, TimeWeighted, _check_name

__all__ = ["WindowSeries"]

_ADD, _OBSERVE, _LEVEL = "add", "observe", "level"


class _Level:
    """A gauge reported by a series, with the integral at the start of the open window."""

    __slots__ = ("base_area", "base_time", "gauge")

    def __init__(self, gauge: TimeWeighted, t: float) -> None:
        self.gauge = gauge
        self.base_area = gauge._integral_at(t)
        self.base_time = t


class WindowSeries:
    """A time series in fixed windows ``[t0 + k*w, t0 + (k+1)*w)`` from creation time ``t0``.

    Three kinds of field, each name used for one kind only:

    - ``add(field, amount)``: the sum of amounts in the window (0 when none);
    - ``observe(field, x)``: a histogram per window, reported as ``<field>.count``,
      ``<field>.mean``, ``.p50``, ``.p90``, ``.p99``, ``.p999``, ``.min`` and ``.max`` (all
      nan but the count, 0, when the window has no value);
    - ``level(field, gauge)``: the time average of a :class:`TimeWeighted` over the window
      (nan for windows before registration; over ``[registration, end]`` for the window in
      which it was registered).

    Windows close lazily and exactly, with no scheduled event: every ``add``/``observe`` and
    ``rows()`` first closes the windows that ended before now, and a gauge registered with
    ``level`` does the same before it changes level past a window end (one float comparison
    in its ``set``/``add``). So a gauge's level is known to have been constant from its last
    change to each boundary being closed, and its window averages are exact.

    Memory: one open window (a sum per added field, one histogram per observed field, reused)
    plus one row of floats per closed window, the output.

    Args:
        now: the simulated clock, the same one the reported gauges use.
        window_s: window length in seconds.
        relative_accuracy: of the per-window histograms.
    """

    __slots__ = (
        "_end",
        "_histograms",
        "_index",
        "_kinds",
        "_levels",
        "_now",
        "_origin",
        "_relative_accuracy",
        "_rows",
        "_start",
        "_sums",
        "window_s",
    )

    def __init__(self, now: Clock, window_s: float, *, relative_accuracy: float = 0.01) -> None:
        self.window_s = check.positive("window_s", window_s)
        self._relative_accuracy = valid_accuracy(relative_accuracy)
        self._now = now
        self._origin = now()
        self._index = 0
        self._start = self._origin
        self._end = self._origin + self.window_s
        self._kinds: dict[str, str] = {}  # field -> kind, in first-use order
        self._sums: dict[str, float] = {}
        self._histograms: dict[str, Histogram] = {}
        self._levels: dict[str, _Level] = {}
        self._rows: list[dict[str, float]] = []

    def add(self, field: str, amount: float = 1.0) -> None:
        """Add ``amount`` to ``field`` in the current window."""
        t = self._now()
        if t >= self._end:
            self._roll(t)
        sums = self._sums
        if field in sums:
            sums[field] += amount
        else:
            self._claim(field, _ADD)
            sums[field] = amount

    def observe(self, field: str, x: float) -> None:
        """Record ``x >= 0`` in the current window's histogram of ``field``."""
        t = self._now()
        if t >= self._end:
            self._roll(t)
        histogram = self._histograms.get(field)
        if histogram is None:
            self._claim(field, _OBSERVE)
            histogram = self._histograms[field] = Histogram(self._relative_accuracy)
        histogram.record(x)

    def level(self, field: str, gauge: TimeWeighted) -> None:
        """Report the time average of ``gauge`` per window as ``field``, from now on.

        Registering the same gauge under the same field again does nothing.

        Raises:
            ConfigError: ``field`` reports another gauge, or ``gauge`` already belongs to
                another series.
        """
        t = self._now()
        if t >= self._end:
            self._roll(t)
        known = self._levels.get(field)
        if known is not None:
            if known.gauge is not gauge:
                raise ConfigError.single(field, gauge, "the gauge this field already reports")
            return
        if gauge._series is not None and gauge._series is not self:
            raise ConfigError.single(field, gauge, "a gauge not reported by another series")
        self._claim(field, _LEVEL)
        self._levels[field] = _Level(gauge, t)
        gauge._series = self
        gauge._watch = self._end

    def rows(self) -> list[dict[str, float]]:
        """One dict per window, oldest first, every row with the same keys.

        Keys: ``start`` and ``end`` (seconds), then each field in first-use order (see the
        class docstring). The last row is the window still open, ending now, if it has any
        length or any data.
        """
        t = self._now()
        if t >= self._end:
            self._roll(t)
        rows = [self._complete(row) for row in self._rows]
        has_data = any(self._sums.values()) or any(h.count for h in self._histograms.values())
        if t > self._start or has_data:
            rows.append(self._complete(self._summarize(t, close=False)))
        return rows

    def _claim(self, field: str, kind: str) -> None:
        """Register ``field`` as ``kind``, or raise if it is another kind or its keys clash."""
        known = self._kinds.get(field)
        if known is not None:
            if known != kind:
                raise ConfigError.single(field, kind, f"'{known}', the kind this field was first")
            return
        _check_name("field", field)
        taken = {"start", "end"}
        for other, other_kind in self._kinds.items():
            taken.update(_row_keys(other, other_kind))
        clashes = [key for key in _row_keys(field, kind) if key in taken]
        if clashes:
            raise ConfigError.single("field", field, f"a name whose row keys are free: {clashes}")
        self._kinds[field] = kind

    def _roll(self, t: float) -> None:
        """Close every window that ended at or before ``t``."""
        while t >= self._end:
            self._rows.append(self._summarize(self._end, close=True))
            for field in self._sums:
                self._sums[field] = 0.0
            for histogram in self._histograms.values():
                histogram.reset()
            self._index += 1
            self._start = self._end
            # From the origin, not by repeated addition: boundaries do not drift.
            self._end = self._origin + (self._index + 1) * self.window_s
        for level in self._levels.values():
            level.gauge._watch = self._end

    def _summarize(self, end: float, *, close: bool) -> dict[str, float]:
        """The row of the open window up to ``end``; if ``close``, level baselines move there."""
        row: dict[str, float] = {"start": self._start, "end": end}
        row.update(self._sums)
        for field, histogram in self._histograms.items():
            row.update(histogram_summary(field, histogram))
        for field, level in self._levels.items():
            area = level.gauge._integral_at(end)
            span = end - level.base_time
            row[field] = (area - level.base_area) / span if span > 0 else level.gauge.value
            if close:  # the next window starts here
                level.base_area = area
                level.base_time = end
        return row

    def _complete(self, row: dict[str, float]) -> dict[str, float]:
        """``row`` with every field present, defaults for those without data."""
        full = {"start": row["start"], "end": row["end"]}
        for field, kind in self._kinds.items():
            if kind == _ADD:
                full[field] = row.get(field, 0.0)
            elif kind == _LEVEL:
                full[field] = row.get(field, math.nan)
            else:  # a field observed first after this row closed has no keys in it
                for key, empty in summary_keys(field):
                    full[key] = row.get(key, empty)
        return full

    def __repr__(self) -> str:
        return f"WindowSeries(window_s={self.window_s}, windows={len(self._rows) + 1})"


def _row_keys(field: str, kind: str) -> list[str]:
    """The keys by which a series reports ``field`` of ``kind`` in each row."""
    return [key for key, _ in summary_keys(field)] if kind == _OBSERVE else [field]
