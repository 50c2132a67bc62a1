"""Reading an ``ecommerce`` experiment's results: the headline table (order entry point
and catalog apart), the ablation, the outage timeline, and their figures.

Every figure is computed per replication from ``results.replications`` and summarized with
a 95% Student-t interval (:func:`sim.experiment.stats.interval`); differences between
variants are paired by replication (common random numbers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.experiment import stats

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sim.experiment.results import Results

__all__ = [
    "catalog_availability",
    "headline",
    "outage_summary",
    "outage_timeline",
    "paired",
    "plot_ablation",
    "plot_availability_over_time",
    "plot_outage",
]

DAY_S = 86_400.0
_FAILED = ("error", "timeout", "refused", "rejected")
Metric = Callable[[pd.DataFrame], pd.Series]


def _col(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame:  # a counter absent from a window or run counted nothing there
        return frame[name].astype(float).fillna(0.0)
    return pd.Series(0.0, index=frame.index)


def _raw(name: str) -> Metric:
    """A measured figure as it is (nan stays nan: no request, no availability)."""
    return lambda frame: (
        frame[name].astype(float) if name in frame else frame["scenario"] * math.nan
    )


def _entry_availability(entry: str) -> Metric:
    def metric(frame: pd.DataFrame) -> pd.Series:
        good = _col(frame, f"entry.{entry}.ok") + _col(frame, f"entry.{entry}.degraded")
        ended = good + sum(_col(frame, f"entry.{entry}.{o}") for o in _FAILED)
        return good / ended.where(ended > 0)

    return metric


def _entry_share(entry: str, outcome: str) -> Metric:
    """The share of the entry's ended requests that ended with ``outcome``."""

    def metric(frame: pd.DataFrame) -> pd.Series:
        ended = _col(frame, f"entry.{entry}.ok")
        for other in ("degraded", *_FAILED):
            ended = ended + _col(frame, f"entry.{entry}.{other}")
        return _col(frame, f"entry.{entry}.{outcome}") / ended.where(ended > 0)

    return metric


def _measured_days(results: Results) -> float:
    experiment = results.config["experiment"]
    return (float(experiment["duration"]) - float(experiment.get("warmup", 0.0))) / DAY_S


def _per_day(column: str, days: float) -> Metric:
    return lambda frame: _col(frame, column) / days


def _metrics(results: Results) -> dict[str, Metric]:
    """Headline metrics, computed per replication."""
    days = _measured_days(results)
    return {
        "availability (orders)": _raw("availability"),
        "availability (catalog)": _entry_availability("catalog"),
        "catalog pages served stale": _entry_share("catalog", "degraded"),
        "uptime (orders)": _raw("uptime"),
        "orders offered / day": _per_day("entry.orders.requests", days),
        "orders accepted / day": lambda f: _col(f, "throughput_per_day"),
        "orders completed / day": _per_day("orders.completed", days),
        "orders compensated / day": _per_day("orders.compensated", days),
        "orders failed part-way / day": _per_day("orders.failed", days),
        "p99 latency (orders), s": _raw("latency.p99"),
        "duplicate side effects": lambda f: _col(f, "anomaly.duplicate_side_effects"),
        "money in limbo, cents (charged - refunded - completed)": lambda f: (
            _col(f, "ledger.charged")
            - _col(f, "ledger.refunded")
            - _col(f, "orders.completed_amount")
        ),
        "notifications lost": lambda f: (
            _col(f, "notifications.lost_unpublished")
            + _col(f, "bus.bus.dead_letters")
            + _col(f, "bus.bus.lost")
        ),
    }


def _ok(results: Results) -> pd.DataFrame:
    frame = results.replications
    return frame[frame["status"] == "ok"] if "status" in frame else frame


def _labels(results: Results) -> dict[int, str]:
    """Each scenario's name: its variant, or its grid point's label when a sweep has a grid
    (``model.orders=20000/day``), since then several scenarios share one variant."""
    scenarios = results.manifest.get("scenarios", [])
    variants = [str(s["variant"]) for s in scenarios]
    if len(set(variants)) == len(variants):
        return {int(s["index"]): name for s, name in zip(scenarios, variants, strict=True)}
    return {int(s["index"]): str(s.get("label", s["variant"])) for s in scenarios}


def headline(results: Results) -> pd.DataFrame:
    """One row per scenario and metric: mean, 95% interval, n."""
    frame = _ok(results)
    rows = []
    for scenario, label in _labels(results).items():
        part = frame[frame["scenario"] == scenario]
        for name, metric in _metrics(results).items():
            found = stats.interval(list(metric(part))) if len(part) else None
            if found is None:
                continue
            rows.append({"scenario": scenario, "variant": label, "metric": name,
                         "mean": found.mean, "ci_low": found.low, "ci_high": found.high,
                         "half_width": found.half_width, "n": found.n})  # fmt: skip
    return pd.DataFrame(rows)


def catalog_availability(results: Results) -> pd.DataFrame:
    """The catalog's availability per scenario (the rows of :func:`headline` for it)."""
    table = headline(results)
    return table[table["metric"] == "availability (catalog)"].reset_index(drop=True)


def paired(results: Results, baseline: str | None = None) -> pd.DataFrame:
    """Each variant minus ``baseline`` (default: the experiment's), paired by replication,
    for every headline metric: mean difference and 95% interval."""
    frame = _ok(results)
    labels = _labels(results)
    by_name = {v: k for k, v in labels.items()}
    base_name = baseline or str(results.manifest.get("baseline"))
    if baseline is None and base_name not in by_name:  # a grid: the first point
        base_name = labels[min(labels)]
    if base_name not in by_name:
        raise ValueError(f"no variant {base_name!r} in {sorted(by_name)}")
    base = frame[frame["scenario"] == by_name[base_name]].set_index("replication")
    rows = []
    for scenario, label in labels.items():
        if label == base_name:
            continue
        other = frame[frame["scenario"] == scenario].set_index("replication")
        common = base.index.intersection(other.index)
        for name, metric in _metrics(results).items():
            a = list(metric(other.loc[common]))
            b = list(metric(base.loc[common]))
            found = stats.paired_difference(a, b)
            rows.append({"variant": label, "metric": name, "difference": found.mean,
                         "ci_low": found.low, "ci_high": found.high, "n": found.n})  # fmt: skip
    return pd.DataFrame(rows)


def outage_timeline(results: Results) -> pd.DataFrame:
    """Per scenario and window (mean over replications): orders accepted and failed at the
    entry point, orders completed, compensated and failed part-way, payment and provider
    attempts per order placed (retry amplification)."""
    series = results.timeseries.copy()
    series["accepted"] = _col(series, "orders.ok") + _col(series, "orders.degraded")
    series["refused_or_failed"] = sum(_col(series, f"orders.{o}") for o in _FAILED)
    for name in ("orders.completed", "orders.compensated", "orders.failed", "orders.placed",
                 "payment.attempts", "provider.attempts"):  # fmt: skip
        series[name] = _col(series, name)
    keep = ["accepted", "refused_or_failed", "orders.completed", "orders.compensated",
            "orders.failed", "orders.placed", "payment.attempts", "provider.attempts"]  # fmt: skip
    table = series.groupby(["scenario", "start"])[keep].mean().reset_index()
    table["variant"] = table["scenario"].map(_labels(results))
    placed = table["orders.placed"].where(table["orders.placed"] > 0)
    table["provider attempts per order"] = table["provider.attempts"] / placed
    table["payment attempts per order"] = table["payment.attempts"] / placed
    return table


def outage_summary(results: Results, start_s: float, end_s: float) -> pd.DataFrame:
    """Per variant, totals over the windows starting in [start_s, end_s) (mean over
    replications): orders accepted and refused or failed at the entry point, orders
    completed, compensated and failed part-way, and payment and provider attempts."""
    table = outage_timeline(results)
    part = table[(table["start"] >= start_s) & (table["start"] < end_s)]
    keep = ["accepted", "refused_or_failed", "orders.completed", "orders.compensated",
            "orders.failed", "orders.placed", "payment.attempts", "provider.attempts"]  # fmt: skip
    return part.groupby("variant", sort=False)[keep].sum()


# -- figures -----------------------------------------------------------------------------


def plot_availability_over_time(results: Results) -> Figure:
    """Order availability per window (mean over replications, by variant)."""
    import matplotlib.pyplot as plt

    series = results.timeseries
    fig, ax = plt.subplots(figsize=(9, 3.5))
    labels = _labels(results)
    for scenario in sorted(set(series["scenario"])):
        frame = series[series["scenario"] == scenario]
        mean = frame.groupby("start")["availability"].mean()
        times = [float(start) / 3600.0 for start in mean.index]
        ax.plot(times, list(mean), label=labels.get(int(scenario), str(scenario)))
    ax.set_xlabel("hours")
    ax.set_ylabel("availability (orders)")
    ax.set_title("Order entry point: availability per window, mean over replications")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_ablation(results: Results, metrics: Sequence[str] = ()) -> Figure:
    """Paired difference of each variant from the baseline, with 95% intervals."""
    import matplotlib.pyplot as plt

    chosen = list(metrics) or [
        "availability (orders)", "orders completed / day", "p99 latency (orders), s",
    ]  # fmt: skip
    table = paired(results)
    fig, axes = plt.subplots(1, len(chosen), figsize=(4.2 * len(chosen), 4), squeeze=False)
    for ax, metric in zip(axes[0], chosen, strict=True):
        part = table[table["metric"] == metric]
        low = (part["difference"] - part["ci_low"]).fillna(0.0)
        high = (part["ci_high"] - part["difference"]).fillna(0.0)
        ax.barh(part["variant"], part["difference"], xerr=[low, high], capsize=3)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_title(f"{metric}\nminus {results.manifest.get('baseline')}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_outage(results: Results, around: tuple[float, float] | None = None) -> Figure:
    """The outage timeline: orders accepted, failed, completed and compensated per window,
    provider attempts per order, and the payment breaker's state."""
    import matplotlib.pyplot as plt

    table = outage_timeline(results)
    if around is not None:
        table = table[(table["start"] >= around[0]) & (table["start"] <= around[1])]
    variants = list(dict.fromkeys(table["variant"]))
    fig, axes = plt.subplots(3, len(variants), figsize=(6 * len(variants), 8), squeeze=False,
                             sharex=True)  # fmt: skip
    for column, variant in enumerate(variants):
        part = table[table["variant"] == variant]
        hours = part["start"] / 3600.0
        top, middle, bottom = axes[0][column], axes[1][column], axes[2][column]
        for name in ("accepted", "refused_or_failed", "orders.completed", "orders.compensated",
                     "orders.failed"):  # fmt: skip
            top.plot(hours, part[name], label=name)
        top.set_title(f"{variant}: orders per window")
        top.legend(fontsize=7)
        for name in ("payment attempts per order", "provider attempts per order"):
            middle.plot(hours, part[name], label=name.replace(" per order", ""))
        middle.set_ylabel("attempts per order placed")
        middle.legend(fontsize=7)
        _breaker(bottom, results, variant, around)
        bottom.set_xlabel("hours")
    fig.tight_layout()
    return fig


def _breaker(ax: Any, results: Results, variant: str, around: tuple[float, float] | None) -> None:
    states = results.states
    name = "policy.payment.provider.breaker.state"
    order = {"closed": 0, "half_open": 1, "open": 2}
    if states.empty or "timeline" not in states:
        ax.set_title("no breaker state changes")
        return
    part = states[(states["timeline"] == name) & (states["variant"] == variant)]
    if part.empty:
        ax.set_title(f"{variant}: no breaker (or it never changed state)")
        return
    first = part[part["replication"] == part["replication"].min()]
    times = first["time"].astype(float) / 3600.0
    levels = first["state"].map(order)
    ax.step(times, levels, where="post")
    ax.set_yticks(list(order.values()), list(order))
    ax.set_title(f"{variant}: payment breaker state (replication {first['replication'].min()})")
    if around is not None:
        ax.set_xlim(around[0] / 3600.0, around[1] / 3600.0)


def fmt(value: float, digits: int = 4) -> str:
    """A number for a table: ``nan`` as an empty cell."""
    return "" if math.isnan(value) else f"{value:.{digits}g}"
