"""Results of an experiment: tables (pandas), verdicts, and the results folder.

A results folder holds::

    config.toml         the file as run (overrides applied)
    resolved.toml       the same with every default written out (loads back as is)
    manifest.json       versions, seed, config hash, git commit, wall time, status,
                        per-replication status and errors, random stream names
    summary.csv         per scenario and metric: mean, 95% CI, n, SLO target and verdict
    replications.csv    per scenario and replication: every metric
    timeseries.csv      per scenario, replication and window: the window's figures
    states.csv          state changes of breakers and nodes (when any)
    comparisons.csv     paired differences between variants (when there are variants)
    figures/*.png

It is written into a temporary folder next to its destination and renamed into place, so a
folder either is complete or does not exist.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from sim.errors import ConfigError
from sim.experiment import stats
from sim.experiment.config import QUANTILES, Experiment, Scenario
from sim.experiment.measure import HEADLINE
from sim.experiment.tomlout import dumps

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from sim.experiment.runner import RunRecord

__all__ = ["Results", "load_results", "write_atomically"]

_PACKAGES = ("resilience-sim", "simpy", "numpy", "pandas", "pydantic", "matplotlib", "typer")
_SCENARIO_COLUMNS = ("scenario", "point", "variant")
_SUMMARY_COLUMNS = ("metric", "mean", "ci_low", "ci_high", "half_width", "sd", "n", "target",
                    "verdict")  # fmt: skip


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _git_commit(directory: Path | None) -> str | None:
    """The commit checked out where the experiment file lives, when that is a git work tree."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and commit else None


def _last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else "unknown error"


def _cell(value: Any) -> Any:
    """A grid value as a table cell: scalars as they are, tables and lists as JSON text."""
    return value if isinstance(value, str | int | float | bool) else json.dumps(value)


def _targets(scenario: Scenario) -> dict[str, tuple[float, bool]]:
    """Metric -> (target, higher is better) from the scenario's SLO."""
    slo = scenario.config.slo
    found: dict[str, tuple[float, bool]] = {}
    if slo.availability is not None:
        found["availability"] = (slo.availability, True)
    if slo.uptime is not None:
        found["uptime"] = (slo.uptime, True)
    for key, target in slo.latency.items():
        found[f"latency.{key}"] = (target, False)
    return found


def _metric_order(rows: Sequence[Mapping[str, float]]) -> list[str]:
    order: dict[str, None] = {}
    for row in rows:
        order.update(dict.fromkeys(row))
    return list(order)


@dataclass
class Results:
    """What a run produced, as tables; plot helpers return matplotlib figures.

    Attributes:
        config: the resolved configuration (every default written out).
        manifest: run facts: versions, seed, config hash, git commit, wall time, status,
            per-replication status.
        summary: per scenario and metric: ``mean``, ``ci_low``, ``ci_high``, ``half_width``,
            ``sd``, ``n``, and for SLO metrics ``target`` and ``verdict``.
        replications: per scenario and replication, every metric.
        timeseries: per scenario, replication and window.
        states: state changes (``timeline``, ``time``, ``state``) per scenario and replication.
        comparisons: paired differences of each variant from the baseline, per grid point
            and metric, with the unpaired (Welch) half-width beside.
        experiment: the experiment that ran (None when read back from a folder).
    """

    config: dict[str, Any]
    manifest: dict[str, Any]
    summary: pd.DataFrame
    replications: pd.DataFrame
    timeseries: pd.DataFrame
    states: pd.DataFrame
    comparisons: pd.DataFrame
    experiment: Experiment | None = field(default=None, repr=False)

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def from_record(cls, record: RunRecord) -> Results:
        experiment = record.experiment
        scenarios = {s.index: s for s in experiment.scenarios}
        grid = list(experiment.grid_keys)

        def labels(scenario: Scenario) -> dict[str, Any]:
            cells: dict[str, Any] = {
                "scenario": scenario.index,
                "point": scenario.point,
                "variant": scenario.variant,
            }
            cells.update({key: _cell(scenario.settings.get(key)) for key in grid})
            return cells

        rows = []
        series = []
        changes = []
        for rep in record.replications:
            scenario = scenarios[rep.scenario]
            head = labels(scenario) | {"replication": rep.replication, "status": rep.status}
            rows.append(head | rep.metrics)
            series += [head | {"window": i} | w for i, w in enumerate(rep.windows)]
            changes += [
                head | {"timeline": name, "time": time, "state": state}
                for name, time, state in rep.states
            ]
        replications = pd.DataFrame(rows)
        metric_names = _metric_order([rep.metrics for rep in record.replications])
        summary = _summary(experiment, replications, metric_names, labels)
        comparisons = _comparisons(experiment, replications, metric_names, grid)
        failed = [rep for rep in record.replications if rep.status != "ok"]
        first_ok = next((rep for rep in record.replications if rep.status == "ok"), None)
        manifest = {
            "name": experiment.name,
            "description": experiment.description,
            "model": experiment.model_name,
            "source": experiment.source,
            "overrides": list(experiment.overrides),
            "seed": experiment.seed,
            "replications": experiment.replications,
            "config_hash": experiment.config_hash,
            "git_commit": _git_commit(experiment.directory),
            "versions": _versions(),
            "started_at": record.started_at,
            "wall_time_s": record.wall_time_s,
            "workers": record.workers,
            "status": "failed" if failed else "ok",
            "error": (
                f"{len(failed)} of {len(record.replications)} replications failed; first: "
                f"{_last_line(failed[0].error)} (tracebacks under runs)"
                if failed
                else None
            ),
            "scenarios": [
                {
                    "index": s.index,
                    "point": s.point,
                    "variant": s.variant,
                    "settings": dict(s.settings),
                    "label": s.label,
                }
                for s in experiment.scenarios
            ],
            "grid_keys": grid,
            "variants": list(experiment.variants),
            "baseline": experiment.baseline,
            "runs": [
                {
                    "scenario": rep.scenario,
                    "replication": rep.replication,
                    "status": rep.status,
                    "error": rep.error,
                    "wall_time_s": rep.wall_time_s,
                }
                for rep in record.replications
            ],
            "streams": first_ok.streams if first_ok is not None else [],
        }
        return cls(
            config=experiment.resolved(),
            manifest=manifest,
            summary=summary,
            replications=replications,
            timeseries=pd.DataFrame(series),
            states=pd.DataFrame(changes),
            comparisons=comparisons,
            experiment=experiment,
        )

    # -- reading ------------------------------------------------------------------------------

    @property
    def ok(self) -> bool:
        """True when every replication ran to its end."""
        return bool(self.manifest.get("status") == "ok")

    def interval(self, metric: str, scenario: int = 0) -> stats.Interval:
        """The mean and 95% interval of ``metric`` in ``scenario``."""
        rows = self.summary[
            (self.summary["scenario"] == scenario) & (self.summary["metric"] == metric)
        ]
        if rows.empty:
            known = sorted(set(self.summary["metric"]))
            raise ConfigError.single("metric", metric, f"a metric of the summary: {known}")
        row = rows.iloc[0]
        return stats.Interval(
            float(row["mean"]), float(row["half_width"]), int(row["n"]), float(row["sd"])
        )

    def headline(self) -> pd.DataFrame:
        """The summary's headline rows: SLO metrics, throughput, latency, hung requests,
        amplification per service and pool utilizations."""
        names = self.summary["metric"]
        keep = names.isin(HEADLINE) | names.str.startswith("amplification.")
        keep |= names.str.match(r"^pool\..*\.utilization$") | self.summary["verdict"].notna()
        return self.summary[keep]

    def scenario_labels(self) -> dict[int, str]:
        return {int(s["index"]): str(s["label"]) for s in self.manifest.get("scenarios", [])}

    # -- plots ---------------------------------------------------------------------------------

    def plot_availability(self) -> Figure:
        """Availability, throughput and offered load per window (mean over replications)."""
        from sim.experiment import plots

        return plots.availability(self)

    def plot_latency(self) -> Figure:
        """Latency percentiles per window (mean over replications)."""
        from sim.experiment import plots

        return plots.latency(self)

    def plot_pools(self) -> Figure:
        """Utilization and queue length of every pool per window."""
        from sim.experiment import plots

        return plots.pools(self)

    def plot_states(self) -> Figure:
        """State timelines (breakers, nodes) of the first replication of each scenario."""
        from sim.experiment import plots

        return plots.states(self)

    def plot_sweep(
        self, metrics: Sequence[str] = ("availability", "throughput", "latency.p99")
    ) -> Figure:
        """``metrics`` against the first sweep key, one line per variant, with 95% bands."""
        from sim.experiment import plots

        return plots.sweep(self, metrics)

    def plot_comparison(self) -> Figure:
        """Paired differences of each variant from the baseline, with 95% intervals."""
        from sim.experiment import plots

        return plots.comparison(self)

    def figures(self) -> dict[str, Figure]:
        """Every figure that has data, by file stem."""
        from sim.experiment import plots

        return plots.all_figures(self)

    # -- writing ---------------------------------------------------------------------------

    def write(self, folder: Path) -> None:
        """Write the folder's files into ``folder`` (which exists); see :meth:`save`."""
        if self.experiment is not None:
            (folder / "config.toml").write_text(dumps(dict(self.experiment.raw)), "utf-8")
        (folder / "resolved.toml").write_text(dumps(self.config), "utf-8")
        try:
            write_figures(self, folder / "figures")
        except Exception as error:  # a figure that cannot be drawn must not cost the tables
            self.manifest["figures_error"] = f"{type(error).__name__}: {error}"
        (folder / "manifest.json").write_text(
            json.dumps(self.manifest, indent=2, default=str) + "\n", "utf-8"
        )
        self.summary.to_csv(folder / "summary.csv", index=False)
        self.replications.to_csv(folder / "replications.csv", index=False)
        self.timeseries.to_csv(folder / "timeseries.csv", index=False)
        if not self.states.empty:
            self.states.to_csv(folder / "states.csv", index=False)
        if not self.comparisons.empty:
            self.comparisons.to_csv(folder / "comparisons.csv", index=False)

    def save(self, out: str | Path) -> Path:
        """Write the results folder at ``out`` atomically; returns its path.

        Raises:
            ConfigError: ``out`` exists and is not an empty folder.
        """
        return write_atomically(Path(out), self.write)


def write_figures(results: Results, folder: Path) -> list[Path]:
    """Every figure as ``folder/<name>.png`` (folder created); the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, figure in results.figures().items():
        path = folder / f"{name}.png"
        figure.savefig(path, dpi=110)
        written.append(path)
    return written


def check_out(out: Path) -> None:
    """Raise unless ``out`` can become a results folder (absent, or an empty folder)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError.single("--out", str(out), "a folder that does not exist yet, or is empty")


def write_atomically(out: Path, fill: Callable[[Path], None]) -> Path:
    """Create folder ``out`` with ``fill(temporary folder)`` then one rename: a reader never
    sees a half-written folder, and a failure leaves nothing behind."""
    check_out(out)
    parent = out.parent
    parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{out.name}-", suffix=".partial", dir=parent))
    try:
        fill(temporary)
        if out.exists():
            out.rmdir()  # empty, checked above
        os.rename(temporary, out)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return out


# -- aggregation ---------------------------------------------------------------------------


def _ok_rows(replications: pd.DataFrame) -> dict[int, pd.DataFrame]:
    """Each scenario's replications that ran to their end, indexed by replication."""
    if replications.empty:
        return {}
    ok = replications[replications["status"] == "ok"]
    return {
        int(str(key)): rows.set_index("replication")
        for key, rows in ok.groupby("scenario", sort=True)
    }


def _values(rows: dict[int, pd.DataFrame], scenario: int, metric: str) -> pd.Series:
    frame = rows.get(scenario)
    if frame is None or metric not in frame.columns:
        return pd.Series(dtype=float)
    return frame[metric].astype(float)


def _summary(
    experiment: Experiment,
    replications: pd.DataFrame,
    metrics: Sequence[str],
    labels: Callable[[Scenario], dict[str, Any]],
) -> pd.DataFrame:
    ok = _ok_rows(replications)
    rows = []
    for scenario in experiment.scenarios:
        targets = _targets(scenario)
        for metric in metrics:
            estimate = stats.interval(list(_values(ok, scenario.index, metric)))
            target, higher = targets.get(metric, (math.nan, True))
            verdict = (
                stats.verdict(estimate, target, higher_is_better=higher).value
                if metric in targets
                else None
            )
            rows.append(
                labels(scenario)
                | {
                    "metric": metric,
                    "mean": estimate.mean,
                    "ci_low": estimate.low,
                    "ci_high": estimate.high,
                    "half_width": estimate.half_width,
                    "sd": estimate.sd,
                    "n": estimate.n,
                    "target": target,
                    "verdict": verdict,
                }
            )
    columns = [*_SCENARIO_COLUMNS, *experiment.grid_keys, *_SUMMARY_COLUMNS]
    return pd.DataFrame(rows, columns=columns)


def _comparisons(
    experiment: Experiment, replications: pd.DataFrame, metrics: Sequence[str], grid: list[str]
) -> pd.DataFrame:
    if len(experiment.variants) < 2:
        return pd.DataFrame()
    by_key = {(s.point, s.variant): s for s in experiment.scenarios}
    ok = _ok_rows(replications)
    rows = []
    for scenario in experiment.scenarios:
        if scenario.variant == experiment.baseline:
            continue
        base = by_key.get((scenario.point, experiment.baseline))
        if base is None:
            continue
        for metric in metrics:
            mine = _values(ok, scenario.index, metric)
            theirs = _values(ok, base.index, metric)
            common = mine.index.intersection(theirs.index)
            paired = stats.paired_difference(list(mine[common]), list(theirs[common]))
            unpaired = stats.unpaired_difference(list(mine), list(theirs))
            rows.append(
                {"point": scenario.point}
                | {key: _cell(scenario.settings.get(key)) for key in grid}
                | {
                    "variant": scenario.variant,
                    "baseline": experiment.baseline,
                    "metric": metric,
                    "difference": paired.mean,
                    "ci_low": paired.low,
                    "ci_high": paired.high,
                    "half_width": paired.half_width,
                    "n": paired.n,
                    "unpaired_half_width": unpaired.half_width,
                }
            )
    return pd.DataFrame(rows)


# -- reading a folder back ------------------------------------------------------------------


def _table(folder: Path, name: str) -> pd.DataFrame:
    path = folder / name
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def load_results(folder: str | Path) -> Results:
    """Read a results folder written by :meth:`Results.save` (or ``sim run``).

    Raises:
        ConfigError: ``folder`` is not a results folder.
    """
    path = Path(folder)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise ConfigError.single(
            str(path), "no manifest.json", "a results folder written by sim run"
        )
    try:
        manifest = json.loads(manifest_path.read_text("utf-8"))
        resolved = path / "resolved.toml"
        config = tomllib.loads(resolved.read_text("utf-8")) if resolved.exists() else {}
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError.single(str(path), str(error), "a readable results folder") from None
    return Results(
        config=config,
        manifest=manifest,
        summary=_table(path, "summary.csv"),
        replications=_table(path, "replications.csv"),
        timeseries=_table(path, "timeseries.csv"),
        states=_table(path, "states.csv"),
        comparisons=_table(path, "comparisons.csv"),
    )


QUANTILE_COLUMNS = tuple(f"latency.{q}" for q in QUANTILES)
