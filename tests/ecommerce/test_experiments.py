"""Each ecommerce experiment file loads, runs on a short horizon and gives the report's
tables; bad model parameters end with one line per problem naming the key."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from models.ecommerce import report
from sim import ConfigError
from sim.experiment import load_experiment, run

EXPERIMENTS = Path(__file__).parents[2] / "experiments"
FILES = sorted(EXPERIMENTS.glob("ecommerce-*.toml"))
SHORT = ['experiment.duration="25m"', 'experiment.warmup="5m"', 'experiment.window="5m"',
         "experiment.replications=2", "model.orders=0.5", "model.browse_per_order=1"]  # fmt: skip


def test_there_is_a_file_per_experiment_of_the_issue() -> None:
    names = {path.stem for path in FILES}
    assert names == {"ecommerce-baseline", "ecommerce-resilient", "ecommerce-ablation",
                     "ecommerce-outage", "ecommerce-capacity"}  # fmt: skip


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_experiment_file_runs_on_a_short_horizon(path: Path) -> None:
    experiment = load_experiment(path, SHORT)
    results = run(experiment)
    assert results.ok, results.manifest["error"]
    table = report.headline(results)
    orders = table[table["metric"] == "availability (orders)"]
    assert len(orders) == len(experiment.scenarios)
    assert all(0.9 <= value <= 1.0 for value in orders["mean"])  # no random failures in 25m
    assert not math.isnan(report.catalog_availability(results)["mean"].iloc[0])
    if len(experiment.scenarios) > 1:
        differences = report.paired(results)
        # one row set per scenario but the baseline (variants, or grid points of one variant)
        assert differences["variant"].nunique() == len(experiment.scenarios) - 1
        if len(experiment.variants) > 1:
            assert set(differences["variant"]) == set(experiment.variants) - {experiment.baseline}


def test_bad_parameters_name_the_key_and_the_value() -> None:
    path = EXPERIMENTS / "ecommerce-baseline.toml"
    with pytest.raises(ConfigError) as raised:
        load_experiment(path, ["model.patterns.saga=3", "model.peak_to_trough=0.5",
                               'model.failures.service.mtbf="soon"'])  # fmt: skip
    text = str(raised.value)
    for key in ("model.patterns.saga", "model.peak_to_trough", "model.failures.service.mtbf"):
        assert key in text, text
