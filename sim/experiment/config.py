"""Experiment files: read, override, expand into scenarios, validate — in one named constructor.

:func:`load_experiment` reads a TOML file, applies ``--set`` overrides, expands the sweep
grid and the named variants into scenarios, and validates every scenario completely: the
experiment's own sections, the policies, the model's parameters (the model's own schema),
and, by building each scenario's system once in a throwaway world, every name a fault
refers to. Every problem found is reported at once, as one line naming the file, the key
path, the bad value and what was expected.

Sections of a file::

    [experiment]   name, description, model, duration, warmup, replications, seed, window,
                   overdue
    [slo]          availability, latency = { p99 = "2s" }, uptime, window
    [model]        the model's parameters
    [policies]     named pipelines (see sim.experiment.policies)
    [faults]       scheduled faults and random failures (see sim.experiment.faults)
    [sweep]        grid = { "dotted.key" = [values] }, variants.<name> = { "dotted.key" = value }
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from sim.errors import ConfigError, Problem
from sim.experiment.faults import FaultsSection, apply_faults
from sim.experiment.model import Entry, Model, available_models, find_model
from sim.experiment.policies import PipelineSpec, load_policies
from sim.experiment.schema import (
    Duration,
    Name,
    PositiveDuration,
    Probability,
    Section,
    problem,
)
from sim.experiment.schema import problems as problems_error
from sim.experiment.tomlout import dumps
from sim.experiment.validation import MISSING, join, problems_of
from sim.world import World

__all__ = [
    "Config",
    "Experiment",
    "ExperimentSection",
    "Scenario",
    "SloSection",
    "SweepSection",
    "apply_overrides",
    "experiment_from_dict",
    "load_experiment",
    "parse_assignment",
    "validate_scenario",
]

QUANTILES = ("p50", "p90", "p99", "p999")
_WINDOW_CHOICES = (3600.0, 600.0, 60.0, 10.0, 1.0)
_MIN_WINDOWS = 30


def default_window(duration_s: float) -> float:
    """The largest of 1 h, 10 min, 1 min, 10 s that cuts ``duration_s`` into at least 30
    windows; 1 s when none does."""
    for window in _WINDOW_CHOICES:
        if duration_s / window >= _MIN_WINDOWS:
            return window
    return _WINDOW_CHOICES[-1]


class ExperimentSection(Section):
    """``[experiment]``: what to run, for how long, how many times."""

    name: Name = Field(description="names the results folder")
    description: str = Field(default="", description="one line for `sim list`")
    model: str = Field(description="a registered model name (`sim models`)")
    duration: PositiveDuration = Field(description="simulated time per replication")
    warmup: Duration = Field(default=0.0, description="measurements start after it")
    replications: int = Field(default=10, ge=1, description="independent runs per scenario")
    seed: int = Field(default=0, ge=0, description="root seed")
    window: PositiveDuration | None = Field(
        default=None,
        description="time-series resolution (default: >= 30 windows of 1h/10m/1m/10s/1s)",
    )
    overdue: PositiveDuration = Field(
        default=30.0, description="a request still open this long at the end counts as hung"
    )

    @field_validator("model")
    @classmethod
    def _registered(cls, value: str) -> str:
        names = available_models()
        if value not in names:
            raise problem(f"a registered model: {', '.join(repr(n) for n in names)}", value)
        return value

    @model_validator(mode="after")
    def _warmup_before_end(self) -> ExperimentSection:
        if self.warmup >= self.duration:
            raise problem(
                f"a warm-up shorter than the duration ({self.duration} s)", self.warmup, "warmup"
            )
        return self

    @property
    def window_s(self) -> float:
        """The time-series window in seconds (the given one or the default)."""
        return self.window if self.window is not None else default_window(self.duration)


class SloSection(Section):
    """``[slo]``: targets that verdicts and uptime are judged against."""

    availability: Probability | None = Field(default=None, description="least share of successes")
    latency: dict[Literal["p50", "p90", "p99", "p999"], PositiveDuration] = Field(
        default_factory=dict, description="largest latency per percentile, e.g. { p99 = '2s' }"
    )
    uptime: Probability | None = Field(
        default=None, description="least share of windows meeting the SLO"
    )
    window: PositiveDuration | None = Field(
        default=None,
        description="uptime window (the experiment's window; set one or make them equal)",
    )

    @property
    def judges_windows(self) -> bool:
        """True when a window can meet or miss the SLO (some target is set)."""
        return self.availability is not None or bool(self.latency)


class SweepSection(Section):
    """``[sweep]``: a grid of values over dotted keys, and named variants to compare."""

    grid: dict[str, list[Any]] = Field(default_factory=dict, description="dotted key -> values")
    variants: dict[Name, dict[str, Any]] = Field(
        default_factory=dict, description="variant name -> { dotted key = value }"
    )
    baseline: Name | None = Field(default=None, description="the variant others are compared with")

    @model_validator(mode="after")
    def _consistent(self) -> SweepSection:
        found = [
            Problem(f"grid.{key}", values, "a non-empty list of values")
            for key, values in self.grid.items()
            if not values
        ]
        if self.baseline is not None and self.baseline not in self.variants:
            names = ", ".join(repr(v) for v in self.variants) or "none defined"
            found.append(Problem("baseline", self.baseline, f"a variant name ({names})"))
        if found:
            raise problems_error(found)
        return self


class Config(Section):
    """A whole experiment file; ``model`` and ``policies`` are validated apart (the model's
    own schema, the policy factory)."""

    experiment: ExperimentSection
    slo: SloSection = Field(default_factory=SloSection)
    model: dict[str, Any] = Field(default_factory=dict)
    policies: dict[str, Any] = Field(default_factory=dict)
    faults: FaultsSection = Field(default_factory=FaultsSection)
    sweep: SweepSection = Field(default_factory=SweepSection)

    @model_validator(mode="after")
    def _windows_agree(self) -> Config:
        given, uptime = self.experiment.window, self.slo.window
        if uptime is not None and given is not None and uptime != given:
            raise problem(
                f"the experiment's window ({given} s): uptime is judged per series window",
                uptime,
                "slo.window",
            )
        return self

    @property
    def window_s(self) -> float:
        """The series window: ``experiment.window``, else ``slo.window``, else the default."""
        if self.experiment.window is None and self.slo.window is not None:
            return self.slo.window
        return self.experiment.window_s


# -- scenarios ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One point of the sweep grid under one variant: a complete, validated configuration.

    Attributes:
        index: position among the experiment's scenarios.
        point: index of the grid point (0 without a grid).
        variant: the variant's name (``"base"`` without variants).
        settings: the grid's values at this point, by dotted key.
        raw: the config as a plain dict (overrides applied, no sweep): what worker
            processes receive.
        config: the validated sections.
        params: the model's validated parameters.
        policies: the validated pipelines by name.
    """

    index: int
    point: int
    variant: str
    settings: Mapping[str, Any]
    raw: Mapping[str, Any]
    config: Config
    params: BaseModel
    policies: Mapping[str, PipelineSpec]

    @property
    def model(self) -> Model:
        return find_model(self.config.experiment.model)

    @property
    def label(self) -> str:
        """``"a=1, b=2 / variant"`` (or ``"base"``)."""
        parts = [f"{key}={_text(value)}" for key, value in self.settings.items()]
        if not parts:
            return self.variant
        return ", ".join(parts) + ("" if self.variant == "base" else f" / {self.variant}")

    def resolved(self) -> dict[str, Any]:
        """The configuration with every default written out, as plain data (keys whose value
        is None left out: TOML has no None, and leaving them out loads back the same)."""
        data = self.config.model_dump(mode="python", exclude={"model", "policies", "sweep"})
        data["model"] = self.params.model_dump(mode="python")
        data["policies"] = copy.deepcopy(dict(self.raw.get("policies", {})))
        cleaned: dict[str, Any] = _without_none(data)
        return cleaned

    def build(self, world: World) -> list[Entry]:
        """Build the system and its faults in ``world``; the measured workloads."""
        entries = list(self.model.build(world, self.params))
        apply_faults(world, self.config.faults)
        return entries


def _without_none(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: _without_none(value) for key, value in data.items() if value is not None}
    if isinstance(data, list):
        return [_without_none(value) for value in data]
    return data


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class Experiment:
    """A loaded experiment file: its scenarios, each validated.

    Attributes:
        source: the file it came from (or ``"<config>"``).
        raw: the file's data with the overrides applied.
        overrides: the ``key=value`` assignments applied.
        base: the file without its sweep, validated (its settings hold for every scenario
            that does not override them).
        scenarios: grid points × variants, points outermost.
        grid_keys: the sweep's dotted keys, in file order.
        variants: variant names (``("base",)`` without variants).
        baseline: the variant the others are compared with.
    """

    source: str
    raw: Mapping[str, Any]
    overrides: tuple[str, ...]
    base: Scenario
    scenarios: tuple[Scenario, ...]
    grid_keys: tuple[str, ...]
    variants: tuple[str, ...]
    baseline: str
    directory: Path | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return self.base.config.experiment.name

    @property
    def description(self) -> str:
        return self.base.config.experiment.description

    @property
    def replications(self) -> int:
        return self.base.config.experiment.replications

    @property
    def seed(self) -> int:
        return self.base.config.experiment.seed

    @property
    def model_name(self) -> str:
        return self.base.config.experiment.model

    def resolved(self) -> dict[str, Any]:
        """The file with every default written out (the sweep included)."""
        data = self.base.resolved()
        sweep = self.base.config.sweep
        if sweep.grid or sweep.variants:
            data["sweep"] = _without_none(sweep.model_dump(mode="python"))
        return data

    def resolved_toml(self) -> str:
        """:meth:`resolved` as TOML text, which loads back as the same experiment."""
        return dumps(self.resolved())

    @property
    def config_hash(self) -> str:
        """SHA-256 of the resolved configuration (canonical JSON)."""
        text = json.dumps(self.resolved(), sort_keys=True, default=str, allow_nan=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- overrides -----------------------------------------------------------------------------


_INDEX = re.compile(r"\[(\d+)\]")


def _segments(path: str) -> list[str]:
    """``"a.b[0].c"`` and ``"a.b.0.c"`` -> ``["a", "b", "0", "c"]``."""
    return [s for s in _INDEX.sub(r".\1", path).split(".")]


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set ``value`` at the dotted ``path`` of ``data`` (tables created as needed; a list
    item is addressed by its index).

    Raises:
        ConfigError: the path is empty or runs through a value that is not a table.
    """
    parts = _segments(path)
    if not path or any(not p for p in parts):
        raise ConfigError.single(path, value, "a dotted key path such as 'experiment.seed'")
    node: Any = data
    for depth, part in enumerate(parts):
        last = depth == len(parts) - 1
        here = ".".join(parts[:depth]) or "the config"
        if isinstance(node, dict):
            if last:
                node[part] = copy.deepcopy(value)
                return
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            node = child
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            if last:
                node[int(part)] = copy.deepcopy(value)
                return
            node = node[int(part)]
        else:
            raise ConfigError.single(path, value, f"a key path into tables ({here} is {node!r})")


def parse_assignment(text: str) -> tuple[str, Any]:
    """``"key=value"`` -> (key, value); the value is read as a TOML value (``8``, ``"2s"``,
    ``[1, 2]``, ``{ kind = "exponential", mean = "1s" }``), or kept as text if it is none."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError.single("--set", text, "key=value, e.g. experiment.replications=5")
    try:
        return key, tomllib.loads(f"value = {value.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        return key, value.strip()


def apply_overrides(data: dict[str, Any], assignments: Iterable[str]) -> dict[str, Any]:
    """A copy of ``data`` with each ``key=value`` of ``assignments`` applied, in order."""
    result = copy.deepcopy(data)
    found: list[Problem] = []
    for text in assignments:
        try:
            key, value = parse_assignment(text)
            set_path(result, key, value)
        except ConfigError as error:
            found += [Problem(f"--set {p.path}", p.value, p.expected) for p in error.problems]
    if found:
        raise ConfigError(found)
    return result


def flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys for the values of nested ``table``: a key without a dot whose value is a
    table is descended into, unless the table has a ``kind`` (a distribution, a fault): a
    quoted dotted key, or a table with a kind, is replaced as a whole."""
    flat: dict[str, Any] = {}
    for key, value in table.items():
        path = join(prefix, key)
        if isinstance(value, Mapping) and value and "." not in key and "kind" not in value:
            flat.update(flatten(value, path))
        else:
            flat[path] = value
    return flat


# -- validation ----------------------------------------------------------------------------


def validate_scenario(
    raw: dict[str, Any], index: int, point: int, variant: str, settings: Mapping[str, Any]
) -> tuple[Scenario | None, list[Problem]]:
    """The scenario ``raw`` describes (sweep already applied), or None and its problems."""
    found: list[Problem] = []
    config: Config | None = None
    try:
        config = Config.model_validate(raw)
    except ValidationError as error:
        found += problems_of(error, Config)
    book, policy_problems = load_policies(raw.get("policies"))
    found += policy_problems
    name = (
        raw.get("experiment", {}).get("model") if isinstance(raw.get("experiment"), dict) else None
    )
    if not isinstance(name, str) or name not in available_models():
        return None, found
    try:
        model = find_model(name)
    except ConfigError as error:  # registered, but it does not load
        return None, found + list(error.problems)
    params: BaseModel | None = None
    try:
        params = model.parameters.model_validate(raw.get("model", {}), context={"policies": book})
    except ValidationError as error:
        found += problems_of(error, model.parameters, "model")
    if found or config is None or params is None:
        return None, list(dict.fromkeys(found))  # a section that is no table: reported once
    scenario = Scenario(index, point, variant, dict(settings), raw, config, params, book)
    try:  # a throwaway world: names that only the built system knows (faults' targets)
        world = World(config.experiment.seed, 0, window_s=config.window_s)
        if not scenario.build(world):
            found.append(Problem("model", MISSING, "a model that defines at least one workload"))
    except ConfigError as error:
        found += [
            p
            if p.path.startswith("faults.")
            else Problem(join("model", p.path), p.value, p.expected)
            for p in error.problems
        ]
    return (None if found else scenario), list(dict.fromkeys(found))


def _variants(sweep: object) -> dict[str, dict[str, Any]]:
    if not isinstance(sweep, Mapping):
        return {}
    variants = sweep.get("variants")
    if not isinstance(variants, Mapping) or not variants:
        return {"base": {}}
    return {str(k): flatten(v) if isinstance(v, Mapping) else {} for k, v in variants.items()}


def _grid(sweep: object) -> dict[str, list[Any]]:
    if not isinstance(sweep, Mapping) or not isinstance(sweep.get("grid"), Mapping):
        return {}
    flat = flatten(sweep["grid"])
    return {k: v for k, v in flat.items() if isinstance(v, list) and v}


def experiment_from_dict(
    data: Mapping[str, Any],
    *,
    source: str = "<config>",
    overrides: Sequence[str] = (),
    directory: Path | None = None,
) -> Experiment:
    """Validate ``data`` (a parsed experiment file) with ``overrides`` applied.

    Raises:
        ConfigError: every problem, one per line, each prefixed with ``source``.
    """
    try:
        raw = apply_overrides(dict(data), overrides)
    except ConfigError as error:
        raise _located(error.problems, source) from None
    sweep = raw.get("sweep")
    base_raw = {k: v for k, v in raw.items() if k != "sweep"}
    if sweep is not None:
        base_raw["sweep"] = sweep  # validated with the base (its shape), not applied to it
    base, found = validate_scenario(base_raw, 0, 0, "base", {})
    if found or base is None:
        raise _located(found, source)
    grid = _grid(sweep)
    variants = _variants(sweep) if sweep is not None else {"base": {}}
    baseline = base.config.sweep.baseline or next(iter(variants))
    scenarios: list[Scenario] = []
    seen: set[Problem] = set()
    problems: list[Problem] = []
    points = list(itertools.product(*grid.values())) if grid else [()]
    for point, values in enumerate(points):
        settings = dict(zip(grid, values, strict=True))
        for variant, changes in variants.items():
            scenario_raw = copy.deepcopy(base_raw)
            scenario_raw.pop("sweep", None)
            where = _where(settings, variant)
            try:
                for key, value in (*settings.items(), *changes.items()):
                    set_path(scenario_raw, key, value)
            except ConfigError as error:
                problems += [
                    Problem(f"sweep: {p.path}{where}", p.value, p.expected) for p in error.problems
                ]
                continue
            if not settings and not changes:
                scenario = Scenario(
                    len(scenarios),
                    point,
                    variant,
                    {},
                    scenario_raw,
                    base.config,
                    base.params,
                    base.policies,
                )
                scenarios.append(scenario)
                continue
            scenario_or_none, found = validate_scenario(
                scenario_raw, len(scenarios), point, variant, settings
            )
            for p in found:
                moved = Problem(f"{p.path}{where}", p.value, p.expected)
                if moved not in seen:
                    seen.add(moved)
                    problems.append(moved)
            if scenario_or_none is not None:
                scenarios.append(scenario_or_none)
    if problems:
        raise _located(problems, source)
    return Experiment(
        source=source,
        raw=raw,
        overrides=tuple(overrides),
        base=base,
        scenarios=tuple(scenarios),
        grid_keys=tuple(grid),
        variants=tuple(variants),
        baseline=baseline,
        directory=directory,
    )


def _where(settings: Mapping[str, Any], variant: str) -> str:
    parts = [f"{k}={_text(v)}" for k, v in settings.items()]
    if variant != "base":
        parts.append(f"variant {variant}")
    return f" (in sweep {', '.join(parts)})" if parts else ""


def _located(found: Iterable[Problem], source: str) -> ConfigError:
    return ConfigError(Problem(f"{source}: {p.path}", p.value, p.expected) for p in found)


def load_experiment(path: str | Path, overrides: Sequence[str] = ()) -> Experiment:
    """Read, override, expand and validate the experiment file at ``path``.

    Args:
        path: a TOML file.
        overrides: ``"key=value"`` assignments applied before validation (``--set``).

    Raises:
        ConfigError: the file cannot be read or parsed, or any value is bad; one line per
            problem, each naming the file.
    """
    file = Path(path)
    source = str(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.single(source, MISSING, "an existing experiment file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError.single(
            source, type(error).__name__, "a readable UTF-8 TOML file"
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError.single(source, str(error), "valid TOML") from None
    return experiment_from_dict(data, source=source, overrides=overrides, directory=file.parent)
