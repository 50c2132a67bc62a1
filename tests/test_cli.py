"""The sim command, through typer's CliRunner: every command's happy path, and every kind of
bad input ending with exit code 2, the key path in the message, no traceback, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sim.cli import app

from .experiment.conftest import SMALL

ROOT = Path(__file__).parents[1]
runner = CliRunner()


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory (default results folders land here)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def small(folder: Path, replace: dict[str, str] | None = None, name: str = "small.toml") -> Path:
    text = SMALL
    for old, new in (replace or {}).items():
        assert old in text
        text = text.replace(old, new)
    path = folder / "configs" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_run_writes_a_results_folder_and_shows_the_summary(workdir: Path) -> None:
    result = runner.invoke(app, ["run", str(small(workdir)), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "availability" in result.stdout and "verdict" in result.stdout
    (folder,) = (workdir / "results").iterdir()
    assert folder.name.startswith("small-")
    assert {"manifest.json", "summary.csv", "replications.csv", "timeseries.csv", "resolved.toml",
            "config.toml", "figures/availability.png"} <= files_under(folder)  # fmt: skip


def test_run_json_and_quiet(workdir: Path) -> None:
    config = str(small(workdir))
    result = runner.invoke(
        app,
        ["run", config, "-w", "1", "--json", "--out", "a", "--set", "experiment.replications=2"],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["status"] == "ok" and payload["results"] == "a"
    availability = next(row for row in payload["summary"] if row["metric"] == "availability")
    assert availability["n"] == 2 and availability["verdict"] in {"met", "missed", "inconclusive"}
    quiet = runner.invoke(app, ["run", config, "-w", "1", "--quiet", "--out", "b"])
    assert quiet.exit_code == 0 and quiet.stdout == ""
    assert (workdir / "b" / "summary.csv").exists()


BAD = [
    pytest.param({"seed = 5": "seed = 5\ncolour = 1"}, [],
                 "experiment.colour: got 1, expected no such key (valid keys: name",
                 id="unknown-key"),
    pytest.param({"replications = 3": "replications = 'x'"}, [],
                 "experiment.replications: got 'x', expected an integer", id="wrong-type"),
    pytest.param({"workers = 2": "workers = -2"}, [],
                 "model.services.db.workers: got -2, expected a number >= 1", id="out-of-range"),
    pytest.param({'duration = "60s"': 'duration = "60 lightyears"'}, [],
                 "experiment.duration: got '60 lightyears'", id="malformed-unit"),
    pytest.param({'model = "topology"': 'model = "topo"'}, [],
                 "got 'topo', expected a registered model: ",
                 id="model-name"),
    pytest.param({'timeout = { seconds = "500ms" }': "retyr = {}"}, [],
                 "policies.db.retyr: got 'retyr', expected a policy kind: one of timeout",
                 id="policy-name"),
    pytest.param({'mean = "20ms"': 'mean = "20ms", kind2 = 1'}, [],
                 "model.services.db.endpoints.query.service_time.kind2", id="distribution-key"),
    pytest.param({}, ["model.services.db.endpoints.query.service_time.kind=gamma"],
                 "service_time.kind: got 'gamma', expected one of 'constant'",
                 id="distribution-name"),
    pytest.param({}, ["experiment.name.first=1"],
                 "--set experiment.name.first: got 1, expected a key path into tables",
                 id="set-path"),
    pytest.param({}, ["experiment.seed=-3"], "experiment.seed: got -3, expected a number >= 0",
                 id="set-value"),
]  # fmt: skip


@pytest.mark.parametrize(("replace", "overrides", "message"), BAD)
def test_bad_input_exits_2_names_the_key_and_writes_nothing(
    workdir: Path, replace: dict[str, str], overrides: list[str], message: str
) -> None:
    config = small(workdir, replace)
    before = files_under(workdir)
    args = ["run", str(config), "-w", "1", "--out", "out"]
    for assignment in overrides:
        args += ["--set", assignment]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert all(line.startswith(f"error: {config}: ") for line in result.stderr.splitlines())
    assert "Traceback" not in result.output
    assert files_under(workdir) == before
    check = runner.invoke(
        app, ["check", str(config), *[a for o in overrides for a in ("--set", o)]]
    )
    assert check.exit_code == 2 and message in check.stderr


def test_bad_files_and_folders_exit_2(workdir: Path) -> None:
    broken = workdir / "broken.toml"
    broken.write_text("[experiment\n")
    for args, message in [
        (
            ["run", "missing.toml"],
            "missing.toml: got <missing>, expected an existing experiment file",
        ),
        (["run", str(broken)], "expected valid TOML"),
        (["check", str(broken)], "expected valid TOML"),
        (
            ["models", "nosuch"],
            "experiment.model: got 'nosuch', expected a registered model: ",
        ),
        (["list", "nowhere"], "nowhere: got 'not a folder', expected a folder of experiment files"),
        (["plot", str(workdir)], "expected a results folder written by sim run"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output
    taken = workdir / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")
    before = files_under(workdir)
    result = runner.invoke(app, ["run", str(small(workdir)), "--out", str(taken)])
    assert result.exit_code == 2 and "--out: got" in result.stderr
    assert files_under(workdir) == before | {"configs", "configs/small.toml"}
    usage = runner.invoke(app, ["run", str(small(workdir)), "--workers", "0"])
    assert usage.exit_code == 2 and "Traceback" not in usage.output


def test_check_models_and_list(workdir: Path) -> None:
    check = runner.invoke(app, ["check", str(small(workdir)), "--set", "experiment.replications=4"])
    assert (
        check.exit_code == 0
        and "ok — model topology, 1 scenario × 4 replications of 1min" in check.stdout
    )
    models = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    assert models.exit_code == 0
    for text in (
        "topology",
        "queueing",
        "services.<name>.workers",
        "integer (>= 1)",
        "arrival_rate",
    ):
        assert text in models.stdout
    listed = runner.invoke(app, ["list", str(ROOT / "experiments")], env={"COLUMNS": "200"})
    assert listed.exit_code == 0
    assert "mmc.toml" in listed.stdout and "Erlang C" in listed.stdout
    (workdir / "configs" / "broken.toml").write_text("[x")
    listed = runner.invoke(app, ["list", str(workdir / "configs")], env={"COLUMNS": "200"})
    assert (
        listed.exit_code == 0 and "small.toml" in listed.stdout and "(unreadable" in listed.stdout
    )


def test_plot_draws_the_figures_again(workdir: Path) -> None:
    assert (
        runner.invoke(app, ["run", str(small(workdir)), "-w", "1", "-q", "--out", "r"]).exit_code
        == 0
    )
    figures = workdir / "r" / "figures"
    for png in figures.iterdir():
        png.unlink()
    result = runner.invoke(app, ["plot", "r"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in figures.iterdir()) == [
        "availability.png",
        "latency.png",
        "pools.png",
    ]
    assert not [p for p in (workdir / "r").iterdir() if p.name.startswith(".")]


def test_serial_and_parallel_runs_give_identical_summaries(workdir: Path) -> None:
    mmc = str(ROOT / "experiments" / "mmc.toml")
    short = ["--set", 'experiment.duration="20m"', "--set", "experiment.replications=4", "-q"]
    serial = runner.invoke(app, ["run", mmc, *short, "--workers", "1", "--out", "serial"])
    parallel = runner.invoke(app, ["run", mmc, *short, "--workers", "2", "--out", "parallel"])
    assert serial.exit_code == 0 and parallel.exit_code == 0, (serial.output, parallel.output)
    same = (workdir / "serial" / "summary.csv").read_bytes()
    assert same == (workdir / "parallel" / "summary.csv").read_bytes()
    assert (workdir / "serial" / "replications.csv").read_bytes() == (
        workdir / "parallel" / "replications.csv"
    ).read_bytes()
    manifest = json.loads((workdir / "parallel" / "manifest.json").read_text())
    assert manifest["workers"] == 2 and len(manifest["runs"]) == 4


def test_a_failing_replication_exits_1_with_its_error_in_the_manifest(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sim.experiment.runner as experiment_runner

    def broken(*_: object) -> dict[str, float]:
        raise ZeroDivisionError("a bug in a model")

    monkeypatch.setattr(experiment_runner, "measure", broken)
    result = runner.invoke(app, ["run", str(small(workdir)), "-w", "1", "--out", "r"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "ZeroDivisionError: a bug in a model" in result.stderr
    manifest = json.loads((workdir / "r" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and "ZeroDivisionError" in manifest["error"]
    assert {run["status"] for run in manifest["runs"]} == {"failed"}


def test_intervals_are_printed_to_the_precision_the_half_width_supports() -> None:
    from sim.cli import _measured

    assert _measured(0.99934, 0.000123) == "0.99934 ± 0.00012"
    assert _measured(276311.58, 763.43) == "276310 ± 760"
    assert _measured(-0.27, 0.040) == "-0.270 ± 0.040"
    assert _measured(1.0, 0.0) == "1 ± 0"
    assert _measured(5.0, float("nan")) == "5"
