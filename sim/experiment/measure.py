"""What one replication measured: the report's metrics, per window and over the whole run.

Definitions (the words of DESIGN.md), all after warm-up:

- **availability**: successful requests (ok + degraded) / (requests ended + requests hung),
  at the entry points; a request is *hung* when it is still open at the end and has been
  for longer than ``experiment.overdue``.
- **throughput**: successful requests per second (and per day); **offered load**: requests
  that entered per second, beside it.
- **latency**: p50, p90, p99, p99.9 and mean of successful requests, entry to end (fixed-memory
  histograms, relative error <= 1%), all entry points merged.
- **amplification.<service>**: attempts that reached the service's node (served, refused
  or swallowed) per entry request.
- **pool.<name>.utilization**: time-averaged busy slots / capacity;
  ``pool.<name>.wait_probability``: share of grants that had to queue; the pool's queue
  length, waits and rejections come with the instruments below.
- **uptime**: share of the windows (wholly after warm-up) that meet the SLO. A window meets it
  when its availability — successes / (requests that ended in the window + requests that
  arrived in it and were hung at the end) — reaches ``slo.availability``, and every entry
  point's latency percentiles in the window stay within ``slo.latency``. A window in which
  no request ended and none hung meets it.

Every counter and state timeline of the run is reported too, under its own name (policy
metrics ``policy.*``, anomalies, faults, node states), with each gauge's time average
(``<name>.mean``) and each histogram's mean and p99.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sim.call import Outcome
from sim.experiment.config import QUANTILES, Config
from sim.experiment.model import Entry
from sim.metrics import Counter, Histogram, StateTimeline, TimeWeighted
from sim.world import World

__all__ = ["HEADLINE", "measure", "register_levels", "state_changes", "uptime", "windows"]

DAY_S = 86_400.0
_QUANTILE_OF = {"p50": 0.5, "p90": 0.9, "p99": 0.99, "p999": 0.999}
_FAILURES = (Outcome.TIMEOUT, Outcome.REFUSED, Outcome.REJECTED, Outcome.ERROR)
_OUTCOMES = (Outcome.OK, Outcome.DEGRADED, *_FAILURES)

HEADLINE = (
    "availability",
    "uptime",
    "throughput",
    "offered_load",
    "latency.p50",
    "latency.p99",
    "latency.p999",
    "hung",
)
"""The metrics a terminal summary shows first (amplification and utilization follow)."""


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def register_levels(world: World) -> None:
    """Report every pool's busy slots and queue length per window (``pool.<name>.busy`` and
    ``pool.<name>.queue``) in the world's series."""
    series = world.metrics.series
    if series is None:
        return
    for node in world.nodes.values():
        for pool in node.pools:
            series.level(f"pool.{pool.name}.busy", pool.busy_level)
            series.level(f"pool.{pool.name}.queue", pool.queue_level)


def _pools(world: World) -> list[Any]:
    return [pool for node in world.nodes.values() for pool in node.pools]


def measure(world: World, entries: Sequence[Entry], config: Config) -> dict[str, float]:
    """The replication's metrics, read at the end of the run."""
    experiment = config.experiment
    measured_s = experiment.duration - experiment.warmup
    figures: dict[str, float] = {}
    outcome_counts = {o: sum(e.stats.outcomes[o].value for e in entries) for o in _OUTCOMES}
    requests = sum(e.stats.requests.value for e in entries)
    hung = sum(e.stats.hung(experiment.overdue) for e in entries)
    good = outcome_counts[Outcome.OK] + outcome_counts[Outcome.DEGRADED]
    ended = sum(outcome_counts.values())
    figures["availability"] = _ratio(good, ended + hung)
    figures["throughput"] = good / measured_s
    figures["throughput_per_day"] = good / measured_s * DAY_S
    figures["offered_load"] = requests / measured_s
    figures["offered_load_per_day"] = requests / measured_s * DAY_S
    latency = Histogram()
    for entry in entries:
        latency.merge(entry.stats.latency)
    figures["latency.mean"] = latency.mean()
    for key, q in _QUANTILE_OF.items():
        figures[f"latency.{key}"] = latency.quantile(q)
    figures["requests"] = requests
    for outcome, count in outcome_counts.items():
        figures[outcome.value] = count
    figures["hung"] = hung
    figures["in_flight"] = sum(e.stats.in_flight() for e in entries)
    if len(entries) > 1:
        for entry in entries:
            stats = entry.stats
            entry_good = stats.outcomes[Outcome.OK].value + stats.outcomes[Outcome.DEGRADED].value
            entry_ended = sum(stats.outcomes[o].value for o in _OUTCOMES)
            entry_hung = stats.hung(experiment.overdue)
            prefix = f"entry.{entry.name}"
            figures[f"{prefix}.availability"] = _ratio(entry_good, entry_ended + entry_hung)
            figures[f"{prefix}.throughput"] = entry_good / measured_s
    for name, service in world.services.items():
        arrivals = service.received.value + service.refused.value + service.swallowed.value
        figures[f"amplification.{name}"] = _ratio(arrivals, requests)
    for pool in _pools(world):
        figures[f"pool.{pool.name}.utilization"] = pool.utilization()
        waits = pool.waits
        figures[f"pool.{pool.name}.wait_probability"] = _ratio(
            waits.count - waits.zero_count, waits.count
        )
    figures.update(_instrument_figures(world, figures))
    return figures


def _instrument_figures(world: World, taken: dict[str, float]) -> dict[str, float]:
    """Counters, timelines, gauge means and histogram summaries not already reported."""
    figures: dict[str, float] = {}
    for name, instrument in sorted(world.metrics.instruments().items()):
        if isinstance(instrument, Counter):
            figures[name] = instrument.value
        elif isinstance(instrument, TimeWeighted):
            figures[f"{name}.mean"] = instrument.mean()
        elif isinstance(instrument, Histogram):
            figures[f"{name}.count"] = instrument.count
            figures[f"{name}.mean"] = instrument.mean()
            figures[f"{name}.p99"] = instrument.quantile(0.99)
        elif isinstance(instrument, StateTimeline):
            for state, seconds in instrument.time_in().items():
                figures[f"{name}.time.{state}"] = seconds
            for (before, after), count in sorted(instrument.transitions.items()):
                figures[f"{name}.transitions.{before}.{after}"] = count
    return {k: v for k, v in figures.items() if k not in taken}


def windows(world: World, entries: Sequence[Entry], config: Config) -> list[dict[str, float]]:
    """One row per window wholly after warm-up and before the end: the series' own fields
    plus ``requests``, ``good``, ``ended``, ``availability``, ``throughput``,
    ``offered_load``, the worst entry's latency percentiles, pool utilizations, and
    ``meets_slo`` (1, 0, or nan when the SLO sets no target)."""
    series = world.metrics.series
    if series is None:
        return []
    window_s = config.window_s
    warmup = config.experiment.warmup
    slo = config.slo
    names = [entry.name for entry in entries]
    hung = _hung_by_window(entries, config.experiment.overdue, window_s, world.now)
    capacities = {pool.name: pool.nominal_capacity for pool in _pools(world)}
    rows: list[dict[str, float]] = []
    for row in series.rows():
        start, end = row["start"], row["end"]
        if start < warmup - 1e-9 or end - start < window_s * (1 - 1e-9):
            continue
        derived: dict[str, float] = {"start": start, "end": end}
        requests = sum(row.get(f"{n}.requests", 0.0) for n in names)
        good = sum(row.get(f"{n}.{o.value}", 0.0) for n in names for o in _OUTCOMES[:2])
        ended = good + sum(row.get(f"{n}.{o.value}", 0.0) for n in names for o in _FAILURES)
        stuck = hung.get(round(start / window_s), 0)
        basis = ended + stuck
        derived["requests"] = requests
        derived["good"] = good
        derived["ended"] = ended
        derived["hung"] = stuck
        derived["availability"] = _ratio(good, basis)
        derived["throughput"] = good / window_s
        derived["offered_load"] = requests / window_s
        for key in QUANTILES:
            values = [row.get(f"{n}.latency.{key}", math.nan) for n in names]
            known = [v for v in values if not math.isnan(v)]
            derived[f"latency.{key}"] = max(known) if known else math.nan
        for pool, capacity in capacities.items():
            busy = row.get(f"pool.{pool}.busy", math.nan)
            derived[f"pool.{pool}.utilization"] = busy / capacity
        derived["meets_slo"] = _meets(slo, derived, row, names, basis)
        for key, value in row.items():
            derived.setdefault(key, value)
        rows.append(derived)
    return rows


def _hung_by_window(
    entries: Sequence[Entry], overdue_s: float, window_s: float, now: float
) -> dict[int, int]:
    """Requests hung at the end, counted in the window they arrived in (windows from 0)."""
    counts: dict[int, int] = {}
    limit = now - overdue_s
    for entry in entries:
        for started in entry.stats.open.values():
            if started <= limit:
                index = int(started // window_s)
                counts[index] = counts.get(index, 0) + 1
    return counts


def _meets(
    slo: Any, derived: dict[str, float], row: dict[str, float], names: list[str], basis: float
) -> float:
    if not slo.judges_windows:
        return math.nan
    if slo.availability is not None and basis > 0 and derived["availability"] < slo.availability:
        return 0.0
    for key, target in slo.latency.items():
        for name in names:
            value = row.get(f"{name}.latency.{key}", math.nan)
            if not math.isnan(value) and value > target:
                return 0.0
    return 1.0


def uptime(rows: Sequence[dict[str, float]]) -> float:
    """Share of ``rows`` meeting the SLO (nan without rows or targets)."""
    judged = [row["meets_slo"] for row in rows if not math.isnan(row["meets_slo"])]
    return sum(judged) / len(judged) if judged else math.nan


def state_changes(world: World) -> list[tuple[str, float, str]]:
    """(timeline, time, state entered) for every timeline that changed state after warm-up:
    breaker states, node states."""
    changes: list[tuple[str, float, str]] = []
    for name, instrument in sorted(world.metrics.instruments().items()):
        if isinstance(instrument, StateTimeline) and len(instrument.changes) > 1:
            changes += [(name, time, state) for time, state in instrument.changes]
    return changes
