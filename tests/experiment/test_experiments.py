"""Every experiment file in experiments/ loads and runs (smoke tests on a short horizon), and
every built-in model has one."""

from __future__ import annotations

import math
import tomllib
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from sim.experiment import available_models, load_experiment, run
from sim.experiment.model import GROUP

FILES = sorted((Path(__file__).parents[2] / "experiments").glob("*.toml"))
SHORT = ['experiment.duration="10s"', 'experiment.warmup="2s"', 'experiment.window="2s"',
         "experiment.replications=2"]  # fmt: skip


def test_every_built_in_model_has_an_experiment_file() -> None:
    used = {tomllib.loads(path.read_text())["experiment"]["model"] for path in FILES}
    built_in = {ep.name for ep in entry_points(group=GROUP) if ep.value.startswith("models.")}
    assert {"topology", "queueing"} <= built_in <= set(available_models())
    assert built_in <= used


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_experiment_file_runs_on_a_short_horizon(path: Path) -> None:
    slo = tomllib.loads(path.read_text()).get("slo", {})
    experiment = load_experiment(path, SHORT + (['slo.window="2s"'] if "window" in slo else []))
    assert experiment.description, "sim list shows it"
    results = run(experiment)
    assert results.ok, results.manifest["error"]
    summary = results.summary
    assert len(summary) > 0 and summary["n"].max() == 2
    for scenario in range(len(experiment.scenarios)):
        availability = results.interval("availability", scenario).mean
        assert 0.0 <= availability <= 1.0 and not math.isnan(
            results.interval("throughput", scenario).mean
        )
