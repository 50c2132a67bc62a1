"""Built-in models: concrete systems built from the engine's parts, found by name through the
``sim.models`` entry-point group (see ``pyproject.toml`` and :mod:`sim.experiment.model`).

- ``topology``: any architecture described entirely in the config.
- ``queueing``: one queue with ``c`` servers, for teaching and validation.
"""
