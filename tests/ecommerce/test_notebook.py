"""The notebook runs from top to bottom (nbclient), on a horizon short enough for a test:
the test rewrites its parameters cell so that every experiment runs in the notebook's
kernel for a few simulated hours instead of loading 30-day results."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "ecommerce.ipynb"
SHORT = ['experiment.duration="90m"', 'experiment.warmup="10m"', 'experiment.window="10m"',
         "experiment.replications=2", "model.orders=0.3", "model.browse_per_order=1"]  # fmt: skip
PARAMETERS = f"""RESULTS = {{}}
OVERRIDES = {{
    "resilient": {SHORT!r},
    "ablation": {SHORT!r} + ['experiment.duration="20m"'],
    "outage": {SHORT!r} + ['faults.scheduled[0].at="40m"', 'faults.scheduled[1].at="40m"'],
}}
"""


def test_the_notebook_runs_on_a_short_horizon() -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "one cell tagged 'parameters'"
    tagged[0].source = PARAMETERS
    where = {"metadata": {"path": str(NOTEBOOK.parent)}}
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3", resources=where)
    client.execute()
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    images = [o for c in notebook.cells for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]  # fmt: skip
    assert len(images) >= 3  # availability over time, the ablation, the outage
