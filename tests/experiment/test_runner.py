"""Running replications and measuring them: availability, uptime, hung requests, failures,
and the results folder."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from matplotlib.figure import Figure

from sim.errors import ConfigError
from sim.experiment import load_results, run
from sim.experiment.config import experiment_from_dict
from sim.experiment.results import write_atomically

from .conftest import WriteConfig


def outage(kind: str, duration: str | None = "20s") -> dict[str, Any]:
    """An instant system (no delays) with a fault on its only node from 30 s."""
    fault: dict[str, Any] = {"kind": kind, "node": "api", "at": "30s"}
    if duration is not None:
        fault["duration"] = duration
    return {
        "experiment": {"name": "outage", "model": "topology", "duration": "100s", "window": "10s",
                       "replications": 2, "overdue": "30s"},
        "slo": {"availability": 0.99},
        "model": {
            "services": {"api": {"workers": 1000, "endpoints": {"get": {"service_time": 0}}}},
            "workloads": {"users": {"kind": "open", "target": "api.get", "rate": "50/s"}},
        },
        "faults": {"scheduled": [fault]},
    }  # fmt: skip


def test_uptime_counts_the_windows_a_crash_spoils() -> None:
    results = run(experiment_from_dict(outage("crash")))
    # Requests are refused, at once, exactly while the node is down: 30-50 s, windows 3 and 4.
    series = results.timeseries[results.timeseries["replication"] == 0]
    assert list(series["meets_slo"]) == [1, 1, 1, 0, 0, 1, 1, 1, 1, 1]
    assert list(series["availability"])[3:5] == [0.0, 0.0]
    assert results.interval("uptime").mean == 0.8
    availability = results.replications["availability"]
    refused = results.replications["refused"] / results.replications["requests"]
    assert list(availability) == pytest.approx(list(1.0 - refused))


def test_hung_requests_count_against_availability_and_their_windows() -> None:
    results = run(experiment_from_dict(outage("hang", duration=None)))
    row = results.replications.iloc[0]
    # From 30 s the node answers nothing and nobody times out. At the end (100 s), requests
    # older than 30 s (sent 30-70 s) are hung; younger ones are open but not yet judged.
    assert row["hung"] > 0 and row["ok"] + row["hung"] + row["in_flight"] >= row["requests"] - 1
    assert row["availability"] == pytest.approx(row["ok"] / (row["ok"] + row["hung"]))
    series = results.timeseries[results.timeseries["replication"] == 0]
    assert list(series["meets_slo"]) == [1, 1, 1, 0, 0, 0, 0, 1, 1, 1]
    assert list(series["hung"])[3:7] == pytest.approx([row["hung"] / 4] * 4, rel=0.3)


def test_a_failing_replication_is_recorded_and_the_others_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sim.experiment.runner as runner

    measure = runner.measure

    def broken(world: Any, entries: Any, config: Any) -> dict[str, float]:
        if world.replication == 1:
            raise RuntimeError("a bug in a model")
        return measure(world, entries, config)

    monkeypatch.setattr(runner, "measure", broken)
    results = run(experiment_from_dict(outage("crash")))
    assert not results.ok
    assert results.manifest["status"] == "failed"
    assert "RuntimeError: a bug in a model" in results.manifest["error"]
    statuses = [(r["replication"], r["status"]) for r in results.manifest["runs"]]
    assert statuses == [(0, "ok"), (1, "failed")]
    assert results.interval("availability").n == 1


def test_results_folder_round_trip(write_config: WriteConfig, tmp_path: Path) -> None:
    results = run(experiment_from_dict(outage("crash")))
    folder = results.save(tmp_path / "out")
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["config.toml", "figures", "manifest.json", "replications.csv", "resolved.toml",
                     "states.csv", "summary.csv", "timeseries.csv"]  # fmt: skip
    assert sorted(p.name for p in (folder / "figures").iterdir()) == [
        "availability.png", "latency.png", "pools.png", "states.png"
    ]  # fmt: skip
    manifest = json.loads((folder / "manifest.json").read_text())
    for key in ("versions", "seed", "config_hash", "git_commit", "wall_time_s", "runs", "streams"):
        assert key in manifest
    again = load_results(folder)
    pd.testing.assert_frame_equal(again.summary, results.summary, check_dtype=False)
    assert again.config == results.config
    assert isinstance(again.plot_availability(), Figure)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_a_folder_is_never_half_written(tmp_path: Path) -> None:
    def fail(folder: Path) -> None:
        (folder / "summary.csv").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(tmp_path / "out", fail)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    with pytest.raises(
        ConfigError, match=r"--out: got '.*taken', expected a folder that does not exist yet"
    ):
        write_atomically(tmp_path / "taken", lambda folder: None)


def test_every_plot_helper_returns_a_figure(write_config: WriteConfig) -> None:
    text = (
        write_config().read_text()
        + '[sweep.grid]\n"model.workloads.users.rate" = ["10/s", "20/s"]\n'
    )
    text += '[sweep.variants.a]\n[sweep.variants.b]\n"model.services.db.workers" = 3\n'
    from sim.experiment import load_experiment

    results = run(load_experiment(write_config(text, name="sweep.toml")))
    figures = results.figures()
    assert set(figures) == {"availability", "latency", "pools", "sweep", "comparison"}
    for make in (results.plot_availability, results.plot_latency, results.plot_pools,
                 results.plot_states, results.plot_sweep, results.plot_comparison):  # fmt: skip
        assert isinstance(make(), Figure)
    comparisons = results.comparisons
    assert set(comparisons["variant"]) == {"b"} and set(comparisons["baseline"]) == {"a"}
    assert set(comparisons["point"]) == {0, 1}
    assert not math.isnan(results.interval("latency.p99", scenario=3).mean)
