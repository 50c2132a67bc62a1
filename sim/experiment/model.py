"""Models: what a model is to the experiment layer, and how one is found by name.

A model is a parameter schema plus a function that builds the system in a world::

    MODEL = ModelDefinition(
        name="queueing",
        description="One service with c workers fed by Poisson arrivals",
        parameters=QueueingParameters,      # a pydantic model derived from Section
        build=build,                        # build(world, params) -> the measured workloads
    )

Models are found through the entry-point group ``sim.models`` (name = "module:object"), so
a third-party package adds one by declaring it in its own ``pyproject.toml``::

    [project.entry-points."sim.models"]
    mymodel = "mypackage.model:MODEL"

The engine (``sim``) never imports a model; the experiment layer loads one when a config
names it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from pydantic import BaseModel

from sim.errors import ConfigError

if TYPE_CHECKING:
    from sim.workload import EntryStats
    from sim.world import World

__all__ = ["GROUP", "Entry", "Model", "ModelDefinition", "available_models", "find_model"]

GROUP = "sim.models"


class Entry(Protocol):
    """A workload whose requests are measured: availability, latency and throughput are
    computed from the requests entering here (``OpenWorkload`` and ``ClosedWorkload`` are)."""

    @property
    def name(self) -> str: ...

    @property
    def stats(self) -> EntryStats: ...


@runtime_checkable
class Model(Protocol):
    """The contract of a model (see the module docstring)."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def parameters(self) -> type[BaseModel]: ...

    def build(self, world: World, params: Any) -> Sequence[Entry]:
        """Create the model's nodes, services and workloads in ``world``; return the
        workloads to measure. ``params`` is a validated instance of ``parameters``."""
        ...


@dataclass(frozen=True)
class ModelDefinition:
    """A model made of plain parts: the usual way to satisfy :class:`Model`."""

    name: str
    description: str
    parameters: type[BaseModel]
    builder: Callable[[World, Any], Sequence[Entry]]

    def build(self, world: World, params: Any) -> Sequence[Entry]:
        return self.builder(world, params)


@functools.cache
def _entry_points() -> Mapping[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_entry_points())


@functools.cache
def find_model(name: str) -> Model:
    """The model registered as ``name``.

    Raises:
        ConfigError: no model has that name (the error lists the registered ones), or the
            registered object is not a model.
    """
    found = _entry_points().get(name)
    if found is None:
        names = ", ".join(repr(n) for n in available_models()) or "none installed"
        raise ConfigError.single("experiment.model", name, f"a registered model: {names}")
    try:
        model = found.load()
    except Exception as error:  # a broken or half-installed package must not crash the CLI
        expected = f"a model that loads ({found.value}: {type(error).__name__}: {error})"
        raise ConfigError.single("experiment.model", name, expected) from None
    if not isinstance(model, Model):
        raise ConfigError.single(
            "experiment.model", name, f"an object with name, parameters and build ({found.value})"
        )
    return model
