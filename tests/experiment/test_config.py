"""Loading experiment files: units, defaults, overrides, sweeps, the resolved config, and one
clear line per problem for every kind of bad input."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from sim.distributions import Exponential
from sim.errors import ConfigError
from sim.experiment import load_experiment
from sim.experiment.config import apply_overrides, default_window, flatten, parse_assignment

from .conftest import SMALL, WriteConfig


def problems_of(path: Path, overrides: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_experiment(path, overrides)
    lines = str(caught.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines), "every line names the file"
    return lines


def test_units_and_defaults_are_resolved(write_config: WriteConfig) -> None:
    experiment = load_experiment(write_config())
    scenario = experiment.scenarios[0]
    section = scenario.config.experiment
    assert (section.duration, section.warmup, section.window, section.overdue) == (
        60.0,
        10.0,
        10.0,
        30.0,
    )
    params = scenario.params
    assert params.workloads["users"].rate == 20.0  # type: ignore[attr-defined]
    assert params.services["db"].endpoints["query"].service_time == Exponential(0.020)  # type: ignore[attr-defined]
    assert scenario.config.slo.latency == {"p99": 1.0}
    assert experiment.variants == ("base",) and len(experiment.scenarios) == 1


def test_default_window_gives_at_least_thirty_windows() -> None:
    assert default_window(7200.0) == 60.0
    assert default_window(86400.0) == 600.0
    assert default_window(40.0) == 1.0  # too short for 30 windows of any size: the smallest


def test_overrides_are_read_as_toml_values(write_config: WriteConfig) -> None:
    experiment = load_experiment(
        write_config(),
        [
            "experiment.replications=7",
            'model.workloads.users.rate="30/s"',
            "experiment.description=plain text stays text",
            'model.services.db.endpoints.query.service_time={ kind = "constant", value = "5ms" }',
            "model.services.api.endpoints.get.calls[0].timeout=0.25",
        ],
    )
    scenario = experiment.scenarios[0]
    assert experiment.replications == 7
    assert scenario.params.workloads["users"].rate == 30.0  # type: ignore[attr-defined]
    assert experiment.description == "plain text stays text"
    assert scenario.params.services["api"].endpoints["get"].calls[0].timeout == 0.25  # type: ignore[attr-defined]
    assert parse_assignment("a.b = [1, 2]") == ("a.b", [1, 2])


def test_sweep_grid_times_variants(write_config: WriteConfig) -> None:
    sweep = """
[sweep.grid]
"model.services.db.workers" = [1, 2, 3]
[sweep.variants.fast]
"model.services.db.endpoints.query.service_time" = { kind = "exponential", mean = "10ms" }
[sweep.variants.slow.model.services.api]
workers = 2
"""
    experiment = load_experiment(write_config(SMALL + sweep))
    assert experiment.grid_keys == ("model.services.db.workers",)
    assert experiment.variants == ("fast", "slow") and experiment.baseline == "fast"
    labels = [(s.point, s.variant, s.params.services["db"].workers) for s in experiment.scenarios]  # type: ignore[attr-defined]
    assert labels == [
        (0, "fast", 1),
        (0, "slow", 1),
        (1, "fast", 2),
        (1, "slow", 2),
        (2, "fast", 3),
        (2, "slow", 3),
    ]
    fast, slow = experiment.scenarios[0], experiment.scenarios[1]
    assert fast.params.services["db"].endpoints["query"].service_time == Exponential(0.010)  # type: ignore[attr-defined]
    assert slow.params.services["api"].workers == 2  # type: ignore[attr-defined]
    # a variant's nested table merges; its other settings stay as in the file
    assert slow.params.services["db"].endpoints["query"].service_time == Exponential(0.020)  # type: ignore[attr-defined]


def test_flatten_descends_tables_but_keeps_kind_tables_and_dotted_keys_whole() -> None:
    nested = {"a": {"b": 1, "c": {"kind": "constant", "value": 2}}, "x.y": {"z": 3}}
    assert flatten(nested) == {"a.b": 1, "a.c": {"kind": "constant", "value": 2}, "x.y": {"z": 3}}


def test_resolved_config_loads_back_as_the_same_experiment(
    write_config: WriteConfig, tmp_path: Path
) -> None:
    experiment = load_experiment(write_config(SMALL + '[sweep.grid]\n"experiment.seed" = [1, 2]\n'))
    text = experiment.resolved_toml()
    again = load_experiment(write_config(text, name="resolved.toml"))
    assert again.resolved() == experiment.resolved()
    assert again.config_hash == experiment.config_hash
    assert tomllib.loads(text)["experiment"]["overdue"] == 30.0  # defaults are written out


def test_set_into_a_value_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"--set experiment.name.x"):
        apply_overrides({"experiment": {"name": "a"}}, ["experiment.name.x=1"])
    with pytest.raises(ConfigError, match=r"--set: got 'nothing', expected key=value"):
        apply_overrides({}, ["nothing"])


# -- bad input: one line per problem, naming file, key path, value and what is expected ----


def reported(lines: list[str], *fragments: str) -> bool:
    """True when one line holds every fragment (long expectations split in readable parts)."""
    return any(all(fragment in line for fragment in fragments) for line in lines)


def test_unknown_keys_list_the_valid_ones(write_config: WriteConfig) -> None:
    path = write_config(
        replace={"seed = 5": "seed = 5\ncolour = 'blue'", "workers = 2": "workers = 2\nthreads = 3"}
    )
    lines = problems_of(path)
    assert reported(lines, "experiment.colour: got 'blue', expected no such key",
                    "(valid keys: name, description, model, duration")  # fmt: skip
    assert reported(lines, "model.services.db.threads: got 3", "workers, queue_limit")


def test_wrong_types_and_out_of_range_values(write_config: WriteConfig) -> None:
    replace = {"replications = 3": "replications = 'three'", "workers = 4": "workers = 0",
               "availability = 0.9": "availability = 1.5"}  # fmt: skip
    path = write_config(replace=replace)
    lines = problems_of(path)
    assert f"{path}: experiment.replications: got 'three', expected an integer" in lines
    assert f"{path}: model.services.api.workers: got 0, expected a number >= 1" in lines
    assert reported(lines, f"{path}: slo.availability: got 1.5, expected a probability")


def test_malformed_units(write_config: WriteConfig) -> None:
    replace = {'duration = "60s"': 'duration = "60 parsecs"', 'rate = "20/s"': 'rate = "20 per s"'}
    lines = problems_of(write_config(replace=replace))
    assert reported(lines, "experiment.duration: got '60 parsecs', expected a finite duration")
    assert reported(lines, "model.workloads.users.rate: got '20 per s', expected a finite rate")


def test_unknown_names_list_the_valid_names(write_config: WriteConfig) -> None:
    replace = {
        'kind = "exponential", mean = "20ms"': 'kind = "exponentail", mean = "20ms"',
        'timeout = { seconds = "500ms" }': 'timeuot = { seconds = "500ms" }',
        'kind = "open"': 'kind = "opne"',
    }
    lines = problems_of(write_config(replace=replace))
    assert reported(lines, "model.services.db.endpoints.query.service_time.kind: got 'exponentail'",
                    "expected one of 'constant', 'exponential', 'uniform'")  # fmt: skip
    assert reported(lines, "policies.db.timeuot: got 'timeuot'",
                    "expected a policy kind: one of timeout, deadline, retry")  # fmt: skip
    assert reported(
        lines, "model.workloads.users.kind: got 'opne', expected one of 'open', 'closed'"
    )
    model = problems_of(write_config(replace={'model = "topology"': 'model = "topolgy"'}))
    assert reported(model, "experiment.model: got 'topolgy'",
                    "expected a registered model: ", "'queueing', 'topology'")  # fmt: skip


def test_bad_references_between_sections(write_config: WriteConfig) -> None:
    replace = {'policy = "db"': 'policy = "dbb"', 'target = "api.get"': 'target = "api.put"'}
    lines = problems_of(write_config(replace=replace))
    assert reported(lines, "calls[0].policy: got 'dbb'",
                    "expected the name of a pipeline in [policies] ('db')")  # fmt: skip
    lines = problems_of(write_config(replace={'target = "api.get"': 'target = "api.put"'}))
    assert reported(lines, "model.workloads.users.target: got 'api.put'",
                    "expected an endpoint 'service.endpoint': api.get, db.query")  # fmt: skip


def test_a_server_side_pipeline_is_refused_on_a_call(write_config: WriteConfig) -> None:
    replace = {'timeout = { seconds = "500ms" }': "load_shedder = { max_queue = 5 }"}
    lines = problems_of(write_config(replace=replace))
    assert reported(lines, "calls[0].policy: got 'db', expected a pipeline of client-side policies")


def test_bad_policy_parameters_are_named(write_config: WriteConfig) -> None:
    replace = {'timeout = { seconds = "500ms" }': "retry = { max_attempts = -1 }"}
    lines = problems_of(write_config(replace=replace))
    assert reported(lines, "policies.db.retry.max_attempts: got -1")


def test_faults_naming_unknown_parts_are_caught_at_load(write_config: WriteConfig) -> None:
    faults = """
[[faults.scheduled]]
kind = "crash"
node = "ghost"
at = "5s"
[[faults.random]]
node = "nobody"
time_to_failure = { kind = "exponential", mean = "1h" }
time_to_repair = "1m"
"""
    lines = problems_of(write_config(SMALL + faults))
    assert reported(lines, "faults.scheduled[0].node: got 'ghost'",
                    "expected a node name in ['api', 'client.users', 'db']")  # fmt: skip
    assert reported(lines, "faults.random[0].node: got 'nobody'")


def test_a_call_cycle_is_refused(write_config: WriteConfig) -> None:
    cycle = 'service_time = "1ms"\ncalls = [{ target = "api.get" }]'
    path = write_config(replace={'service_time = { kind = "exponential", mean = "20ms" }': cycle})
    lines = problems_of(path)
    assert reported(lines, "model.services: got 'api.get -> db.query -> api.get'",
                    "expected calls that form no cycle")  # fmt: skip


def test_problems_in_a_sweep_point_say_which_point(write_config: WriteConfig) -> None:
    path = write_config(SMALL + '[sweep.grid]\n"model.services.db.workers" = [1, 0]\n')
    where = "(in sweep model.services.db.workers=0)"
    assert problems_of(path) == [
        f"{path}: model.services.db.workers {where}: got 0, expected a number >= 1"
    ]


def test_warmup_must_end_before_the_run(write_config: WriteConfig) -> None:
    lines = problems_of(write_config(replace={'warmup = "10s"': 'warmup = "2m"'}))
    assert reported(lines, "experiment.warmup: got 120.0, expected a warm-up shorter than the")


def test_unreadable_files(tmp_path: Path) -> None:
    missing = r"missing.toml: got <missing>, expected an existing experiment file"
    with pytest.raises(ConfigError, match=missing):
        load_experiment(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[experiment\nname = 1\n")
    with pytest.raises(ConfigError, match=r"broken.toml: got .*line 1.*expected valid TOML"):
        load_experiment(broken)
