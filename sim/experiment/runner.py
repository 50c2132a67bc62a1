"""Running an experiment: every scenario's replications, serially or on worker processes.

Replication ``r`` of every scenario runs in ``World(seed, replication=r)``: replications are
independent of each other, and the scenarios of one replication share their random streams
(common random numbers), which is what makes paired comparisons of variants sharp.

A replication depends on nothing but its scenario and its index, so a run on ``N`` worker
processes gives exactly the numbers of a serial run; results are put back in (scenario,
replication) order before anything is aggregated.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sim.errors import ConfigError
from sim.experiment.config import Experiment, Scenario, validate_scenario
from sim.experiment.measure import measure, register_levels, state_changes, uptime, windows
from sim.world import World

if TYPE_CHECKING:
    from sim.experiment.results import Results

__all__ = ["Progress", "Replication", "run", "run_replication"]

Progress = Callable[[int, int], None]
"""Called as ``progress(done, total)`` after each replication."""


@dataclass
class Replication:
    """What one replication of one scenario produced.

    Attributes:
        scenario: the scenario's index.
        replication: the replication index.
        status: ``"ok"`` or ``"failed"``.
        error: what went wrong (failed only), with the traceback's last lines.
        wall_time_s: how long it took (not part of any result table).
        metrics: the metrics by name (see :mod:`sim.experiment.measure`).
        windows: the per-window rows after warm-up.
        states: (timeline, time, state entered) changes after warm-up.
        streams: the names of the random streams drawn from.
    """

    scenario: int
    replication: int
    status: str = "ok"
    error: str | None = None
    wall_time_s: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    windows: list[dict[str, float]] = field(default_factory=list)
    states: list[tuple[str, float, str]] = field(default_factory=list)
    streams: list[str] = field(default_factory=list)


def run_replication(scenario: Scenario, replication: int) -> Replication:
    """Run replication ``replication`` of ``scenario``; a model that raises is reported as a
    failed replication, not raised."""
    started = time.perf_counter()
    outcome = Replication(scenario.index, replication)
    try:
        config = scenario.config
        experiment = config.experiment
        world = World(experiment.seed, replication, window_s=config.window_s)
        entries = scenario.build(world)
        register_levels(world)
        world.run(experiment.duration, warmup_s=experiment.warmup)
        outcome.metrics = measure(world, entries, config)
        outcome.windows = windows(world, entries, config)
        outcome.metrics["uptime"] = uptime(outcome.windows)
        outcome.states = state_changes(world)
        outcome.streams = world.stream_names
    except Exception as error:  # a bug in a model or a policy: record it, keep the others
        outcome.status = "failed"
        lines = traceback.format_exception(error)
        outcome.error = "".join(lines[-6:]).strip()
    outcome.wall_time_s = time.perf_counter() - started
    return outcome


# -- worker processes ------------------------------------------------------------------------

_CACHE: dict[str, Scenario] = {}


def _job(
    raw: Mapping[str, Any], where: tuple[int, int, str, dict[str, Any]], r: int
) -> Replication:
    """Run in a worker process: validate the scenario's raw config (once per process) and run
    one replication."""
    key = json.dumps([raw, where], sort_keys=True, default=str)
    scenario = _CACHE.get(key)
    if scenario is None:
        index, point, variant, settings = where
        found, problems = validate_scenario(dict(raw), index, point, variant, settings)
        if found is None:
            raise ConfigError(problems)
        scenario = _CACHE[key] = found
    return run_replication(scenario, r)


def default_workers() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


@dataclass
class RunRecord:
    """The raw material of :class:`sim.experiment.results.Results`."""

    experiment: Experiment
    replications: list[Replication]
    started_at: str
    wall_time_s: float
    workers: int


def run_all(
    experiment: Experiment, *, workers: int = 1, progress: Progress | None = None
) -> RunRecord:
    """Every replication of every scenario, in (scenario, replication) order."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.perf_counter()
    jobs = [(s, r) for s in experiment.scenarios for r in range(experiment.replications)]
    total = len(jobs)
    workers = max(1, min(workers, total))
    done: dict[tuple[int, int], Replication] = {}
    if workers == 1:
        for scenario, r in jobs:
            done[(scenario.index, r)] = run_replication(scenario, r)
            if progress is not None:
                progress(len(done), total)
    else:
        # spawn, not fork: a forked child would inherit the parent's threads (a progress bar's)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {
                pool.submit(
                    _job,
                    scenario.raw,
                    (scenario.index, scenario.point, scenario.variant, dict(scenario.settings)),
                    r,
                ): (scenario.index, r)
                for scenario, r in jobs
            }
            for future in as_completed(futures):
                key = futures[future]
                try:
                    done[key] = future.result()
                except Exception as error:  # the worker itself failed (it could not start)
                    text = "".join(traceback.format_exception(error)[-6:]).strip()
                    done[key] = Replication(key[0], key[1], status="failed", error=text)
                if progress is not None:
                    progress(len(done), total)
    ordered = [done[key] for key in sorted(done)]
    return RunRecord(experiment, ordered, started_at, time.perf_counter() - clock, workers)


def run(experiment: Experiment, *, workers: int = 1, progress: Progress | None = None) -> Results:
    """Run every scenario's replications and aggregate them.

    Args:
        experiment: from :func:`sim.experiment.load_experiment`.
        workers: worker processes (1: in this process). The numbers do not depend on it.
        progress: called as ``progress(done, total)`` after each replication.

    Returns:
        :class:`sim.experiment.results.Results`.
    """
    from sim.experiment.results import Results

    return Results.from_record(run_all(experiment, workers=workers, progress=progress))
