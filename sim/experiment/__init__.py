"""Experiments: validated config files, replications, statistics, results folders, figures.

The Python API (the ``sim`` command calls the same functions)::

    experiment = load_experiment("experiments/mmc.toml", overrides=["experiment.replications=5"])
    results = run(experiment, workers=4)       # Results: pandas tables + plot helpers
    results.summary                            # mean, 95% CI and SLO verdict per metric
    results.save("results/mmc")                # the results folder, written atomically
    again = load_results("results/mmc")
"""

from sim.experiment.config import Experiment, Scenario, load_experiment
from sim.experiment.model import Entry, Model, ModelDefinition, available_models, find_model
from sim.experiment.results import Results, load_results
from sim.experiment.runner import run

__all__ = [
    "Entry",
    "Experiment",
    "Model",
    "ModelDefinition",
    "Results",
    "Scenario",
    "available_models",
    "find_model",
    "load_experiment",
    "load_results",
    "run",
]
