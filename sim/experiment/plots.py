"""Figures of a run's results (matplotlib, no pyplot: figures render with the Agg canvas, hold
no global state, and display in notebooks).

Each function takes :class:`sim.experiment.results.Results` and returns a figure; over time,
a line is the mean over replications per window and its band spans the 95% interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from sim.experiment import stats

if TYPE_CHECKING:
    from sim.experiment.results import Results

__all__ = ["all_figures", "availability", "comparison", "latency", "pools", "states", "sweep"]

MAX_LINES = 8  # scenarios drawn over time; more would be unreadable


def _scenarios(results: Results) -> list[tuple[int, str]]:
    labels = results.scenario_labels()
    indices = sorted(labels) or sorted(set(results.timeseries.get("scenario", [])))
    return [(i, labels.get(i, str(i))) for i in indices[:MAX_LINES]]


def _band(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per window start: mean and 95% interval over replications of ``column``."""
    rows = []
    for start, group in frame.groupby("start", sort=True):
        estimate = stats.interval(list(group[column].astype(float)))
        rows.append(
            {"start": start, "mean": estimate.mean, "low": estimate.low, "high": estimate.high}
        )
    return pd.DataFrame(rows)


def _over_time(
    ax: Axes,
    results: Results,
    column: str,
    label: str,
    *,
    suffix: str = "",
    limits: tuple[float, float] = (0.0, math.inf),
) -> bool:
    frame = results.timeseries
    if frame.empty or column not in frame.columns:
        return False
    drawn = False
    for index, name in _scenarios(results):
        band = _band(frame[frame["scenario"] == index], column)
        if band.empty or band["mean"].isna().all():
            continue
        hours = band["start"] / 3600.0
        line = ax.plot(hours, band["mean"], label=f"{name}{suffix}")[0]
        # An interval from few replications can pass what the figure can be: clip it there.
        low, high = band["low"].clip(*limits), band["high"].clip(*limits)
        ax.fill_between(hours, low, high, alpha=0.2, color=line.get_color(), lw=0)
        drawn = True
    ax.set_ylabel(label)
    return drawn


def _finish(fig: Figure, axes: Sequence[Axes], title: str) -> Figure:
    for ax in axes:
        ax.grid(True, alpha=0.3)
        handles, _ = ax.get_legend_handles_labels()
        if handles:
            ax.legend(fontsize="small")
    axes[-1].set_xlabel("time (h)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def availability(results: Results) -> Figure:
    fig = Figure(figsize=(9, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    _over_time(top, results, "availability", "availability", limits=(0.0, 1.0))
    _over_time(bottom, results, "throughput", "requests / s", suffix=" throughput")
    _over_time(bottom, results, "offered_load", "requests / s", suffix=" offered")
    return _finish(fig, [top, bottom], "Availability and throughput per window")


def latency(results: Results) -> Figure:
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    for key in ("p50", "p99", "p999"):
        _over_time(ax, results, f"latency.{key}", "latency (s)", suffix=f" {key}")
    if any(bool(np.any(np.asarray(line.get_ydata()) > 0)) for line in ax.get_lines()):
        ax.set_yscale("log")  # latencies spread over decades
    return _finish(fig, [ax], "Latency of successful requests per window")


def _pool_names(results: Results) -> list[str]:
    columns = results.timeseries.columns
    return sorted(
        c[5 : -len(".utilization")]
        for c in columns
        if c.startswith("pool.") and c.endswith(".utilization")
    )


def pools(results: Results) -> Figure:
    names = _pool_names(results)
    fig = Figure(figsize=(9, 6))
    top, bottom = fig.subplots(2, 1, sharex=True)
    first = _scenarios(results)[:1]
    frame = results.timeseries
    for pool in names:
        for index, _ in first:
            part = frame[frame["scenario"] == index]
            for ax, column in ((top, f"pool.{pool}.utilization"), (bottom, f"pool.{pool}.queue")):
                if column in part.columns:
                    band = _band(part, column)
                    ax.plot(band["start"] / 3600.0, band["mean"], label=pool)
    top.set_ylabel("utilization")
    bottom.set_ylabel("queue length")
    return _finish(fig, [top, bottom], "Pools (first scenario)")


def states(results: Results) -> Figure:
    frame = results.states
    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    if not frame.empty:
        first = frame[
            (frame["scenario"] == frame["scenario"].min())
            & (frame["replication"] == frame["replication"].min())
        ]
        levels: dict[str, int] = {}
        for timeline, group in first.groupby("timeline", sort=True):
            values = [levels.setdefault(s, len(levels)) for s in group["state"]]
            times = list(group["time"] / 3600.0)
            end = results.config.get("experiment", {}).get("duration", times[-1] * 3600.0) / 3600.0
            ax.step([*times, end], [*values, values[-1]], where="post", label=timeline, alpha=0.8)
        ax.set_yticks(list(levels.values()), list(levels))
    return _finish(fig, [ax], "State changes (first replication)")


def sweep(results: Results, metrics: Sequence[str]) -> Figure:
    keys: list[str] = list(results.manifest.get("grid_keys", []))
    summary = results.summary
    fig = Figure(figsize=(5 * max(1, len(metrics)), 4))
    axes = list(fig.subplots(1, max(1, len(metrics)), squeeze=False)[0])
    if keys and not summary.empty:
        x = keys[0]
        for ax, metric in zip(axes, metrics, strict=False):
            part = summary[summary["metric"] == metric]
            groups = ["variant", *keys[1:]]
            for name, group in part.groupby(groups, sort=False):
                group = group.sort_values(x)
                label = " ".join(str(v) for v in (name if isinstance(name, tuple) else (name,)))
                xs = pd.to_numeric(group[x], errors="coerce")
                numeric = not xs.isna().any()
                positions: Any = xs if numeric else list(range(len(group)))
                if not numeric:  # text values ("48/s"): evenly spaced, labelled as written
                    ax.set_xticks(positions, [str(v) for v in group[x]])
                line = ax.plot(positions, group["mean"], marker="o", label=label)[0]
                ax.fill_between(
                    positions,
                    group["ci_low"],
                    group["ci_high"],
                    alpha=0.2,
                    color=line.get_color(),
                    lw=0,
                )
            ax.set_title(metric)
            ax.set_xlabel(x)
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize="small")
    fig.suptitle("Sweep (mean and 95% interval)")
    fig.tight_layout()
    return fig


COMPARED = ("availability", "uptime", "throughput", "latency.p50", "latency.p99", "latency.p999")


def comparison(results: Results) -> Figure:
    frame = results.comparisons
    metrics = [m for m in COMPARED if not frame.empty and m in set(frame["metric"])]
    rows = max(1, len(metrics))
    fig = Figure(figsize=(9, 1.2 + 1.6 * rows))
    axes = list(fig.subplots(rows, 1, squeeze=False)[:, 0])
    for ax, metric in zip(axes, metrics, strict=False):
        part = frame[frame["metric"] == metric].reset_index(drop=True)
        labels = [f"point {r.point}: {r.variant}" for r in part.itertuples()]
        ys = np.arange(len(part), dtype=float)
        ax.errorbar(part["difference"], ys, xerr=part["half_width"].fillna(0.0), fmt="o",
                    capsize=3, label="paired (common random numbers)")  # fmt: skip
        ax.errorbar(part["difference"], ys + 0.3, xerr=part["unpaired_half_width"].fillna(0.0),
                    fmt="s", capsize=3, alpha=0.5, label="unpaired")  # fmt: skip
        ax.set_yticks(ys + 0.15, labels, fontsize="small")
        ax.set_ylim(-0.5, len(part))
        ax.axvline(0.0, color="grey", lw=0.8)
        ax.set_title(metric, fontsize="medium", loc="left")
        ax.grid(True, axis="x", alpha=0.3)
    axes[0].legend(fontsize="small")
    baseline = results.manifest.get("baseline", "the baseline")
    fig.suptitle(f"Differences from {baseline} (95% intervals)")
    fig.tight_layout()
    return fig


def all_figures(results: Results) -> dict[str, Figure]:
    """Every figure that has data, by file stem."""
    figures: dict[str, Figure] = {}
    series = results.timeseries
    if not series.empty:
        figures["availability"] = availability(results)
        if any(c.startswith("latency.") for c in series.columns) and not _all_nan(
            series, "latency.p50"
        ):
            figures["latency"] = latency(results)
        if _pool_names(results):
            figures["pools"] = pools(results)
    if not results.states.empty:
        figures["states"] = states(results)
    if results.manifest.get("grid_keys"):
        figures["sweep"] = sweep(results, ("availability", "throughput", "latency.p99"))
    if not results.comparisons.empty:
        figures["comparison"] = comparison(results)
    return figures


def _all_nan(frame: pd.DataFrame, column: str) -> bool:
    return column not in frame.columns or bool(frame[column].isna().all())
