"""The complete experiment files shown in docs/experiments.md load, and the short one runs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from sim.experiment import run
from sim.experiment.config import experiment_from_dict

DOC = Path(__file__).parents[2] / "docs" / "experiments.md"
BLOCKS = [b for b in re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S) if "[experiment]" in b]


def test_the_docs_show_complete_experiments() -> None:
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("text", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_documented_experiment_loads_and_runs(text: str) -> None:
    experiment = experiment_from_dict(
        tomllib.loads(text),
        source="docs/experiments.md",
        overrides=['experiment.duration="20s"', "experiment.warmup=0", "experiment.replications=2",
                   'experiment.window="5s"'],
    )  # fmt: skip
    assert run(experiment).ok
