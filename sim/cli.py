"""The ``sim`` command: a thin shell over :mod:`sim.experiment`.

Exit status: 0 done; 1 the run finished but some replication failed (its error is in the
results folder's manifest); 2 bad input (one line per problem on stderr, nothing written).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from sim.errors import ConfigError

__all__ = ["app", "main"]

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Run simulation experiments described in TOML files.",
    pretty_exceptions_enable=False,
)

BAD_INPUT = 2
RUN_FAILED = 1

FileArgument = Annotated[
    Path, typer.Argument(help="An experiment file (TOML).", show_default=False)
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s", help="Override a key: --set experiment.replications=5 (repeatable)."
    ),
]


def _fail(error: ConfigError) -> typer.Exit:
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    for line in str(error).splitlines():
        err.print(f"error: {line}", markup=False)
    return typer.Exit(BAD_INPUT)


def _number(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.4g}"
    return str(value)


def _measured(mean: Any, half: Any) -> str:
    """``mean ± half`` as a measurement is reported: the half-width to two significant
    figures and the mean to the same decimal place (0.99934 ± 0.00012, 276310 ± 760)."""
    if not isinstance(half, float) or math.isnan(half):
        return _number(mean)
    if not isinstance(mean, float) or not math.isfinite(mean) or not math.isfinite(half):
        return f"{_number(mean)} ± {_number(half)}"
    if half == 0.0:
        return f"{_number(mean)} ± 0"
    decimals = 1 - math.floor(math.log10(abs(half)))
    places = max(decimals, 0)
    return f"{round(mean, decimals):.{places}f} ± {round(half, decimals):.{places}f}"


def _interval_text(row: Any) -> str:
    return _measured(row["mean"], row["half_width"])


def _default_out(name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path("results") / f"{name}-{stamp}"
    suffix = 2
    while out.exists():
        out = Path("results") / f"{name}-{stamp}-{suffix}"
        suffix += 1
    return out


def _show_summary(console: Console, results: Any) -> None:
    headline = results.headline()
    labels = results.scenario_labels()
    for scenario, rows in headline.groupby("scenario", sort=True):
        title = labels.get(int(scenario), "") if len(labels) > 1 else results.manifest["name"]
        table = Table(title=title, title_justify="left")
        table.add_column("metric")
        table.add_column("mean ± 95% CI", justify="right")
        table.add_column("n", justify="right")
        table.add_column("SLO", justify="right")
        table.add_column("verdict")
        for _, row in rows.iterrows():
            verdict = row["verdict"] if isinstance(row["verdict"], str) else ""
            color = {"met": "green", "missed": "red", "inconclusive": "yellow"}.get(verdict, "")
            target = "" if math.isnan(row["target"]) else _number(row["target"])
            table.add_row(
                row["metric"],
                _interval_text(row),
                str(row["n"]),
                target,
                f"[{color}]{verdict}[/]" if color else "",
            )
        console.print(table)
    comparisons = results.comparisons
    if not comparisons.empty:
        from sim.experiment.measure import HEADLINE

        table = Table(title="paired differences from the baseline", title_justify="left")
        for column in ("point", "variant", "metric", "difference ± 95% CI", "unpaired ±"):
            table.add_column(column)
        for _, row in comparisons[comparisons["metric"].isin(HEADLINE)].iterrows():
            text = _measured(row["difference"], row["half_width"])
            table.add_row(
                str(row["point"]),
                f"{row['variant']} - {row['baseline']}",
                row["metric"],
                text,
                _number(row["unpaired_half_width"]),
            )
        console.print(table)


def _records(frame: Any) -> list[dict[str, Any]]:
    records = frame.to_dict(orient="records")
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in record.items()}
        for record in records
    ]


@app.command()
def run(
    file: FileArgument,
    set_: SetOption = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", "-w", min=1, help="Worker processes (default: all cores)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Results folder (default: results/<name>-<time>/)."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar, no table.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
) -> None:
    """Run an experiment: replications, summary with confidence intervals, results folder."""
    from sim.experiment import load_experiment
    from sim.experiment import run as run_experiment
    from sim.experiment.results import check_out
    from sim.experiment.runner import default_workers

    try:
        experiment = load_experiment(file, set_ or [])
        folder = out if out is not None else _default_out(experiment.name)
        check_out(folder)
    except ConfigError as error:
        raise _fail(error) from None
    total = len(experiment.scenarios) * experiment.replications
    count = workers if workers is not None else default_workers()
    if quiet or as_json:
        results = run_experiment(experiment, workers=count)
    else:
        columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(experiment.name, total=total)
            results = run_experiment(
                experiment, workers=count, progress=lambda done, _: bar.update(task, completed=done)
            )
    try:
        path = results.save(folder)
    except ConfigError as error:  # the folder appeared while the run was going on
        raise _fail(error) from None
    if as_json:
        payload = {
            "name": experiment.name,
            "status": results.manifest["status"],
            "error": results.manifest["error"],
            "results": str(path),
            "summary": _records(results.summary),
            "comparisons": _records(results.comparisons),
        }
        typer.echo(json.dumps(payload, indent=2, default=str))
    elif not quiet:
        console = Console()
        _show_summary(console, results)
        console.print(f"results: {path}", highlight=False, markup=False)
    if not results.ok:
        message = f"error: {results.manifest['error']}"
        Console(stderr=True, soft_wrap=True).print(message, markup=False, highlight=False)
        raise typer.Exit(RUN_FAILED)


@app.command()
def check(file: FileArgument, set_: SetOption = None) -> None:
    """Validate an experiment file without running it."""
    from sim.experiment import load_experiment
    from sim.units import format_duration

    try:
        experiment = load_experiment(file, set_ or [])
    except ConfigError as error:
        raise _fail(error) from None
    section = experiment.base.config.experiment
    scenarios = len(experiment.scenarios)
    typer.echo(
        f"{file}: ok — model {section.model}, {scenarios} scenario{'s' if scenarios != 1 else ''}"
        f" × {section.replications} replications of {format_duration(section.duration)}"
        f" ({format_duration(section.warmup)} warm-up)"
    )


@app.command()
def models(
    name: Annotated[
        str | None, typer.Argument(help="Show only this model.", show_default=False)
    ] = None,
) -> None:
    """List the registered models with their parameters and defaults."""
    from sim.experiment.describe import parameters
    from sim.experiment.model import available_models, find_model

    names = available_models()
    if name is not None:
        try:
            find_model(name)
        except ConfigError as error:
            raise _fail(error) from None
        names = [name]
    console = Console(soft_wrap=True)
    for model_name in names:
        try:
            model = find_model(model_name)
        except ConfigError as error:
            console.print(f"{model_name}: cannot be loaded: {error}", markup=False)
            continue
        table = Table(title=escape(f"{model.name}: {model.description}"), title_justify="left")
        table.add_column(escape("[model] key"), overflow="fold")
        for column in ("type", "default", "meaning"):
            table.add_column(column)
        for p in parameters(model.parameters):
            table.add_row(*(escape(text) for text in (p.key, p.type, p.default, p.description)))
        console.print(table)


@app.command("list")
def list_(
    folder: Annotated[Path, typer.Argument(help="Where to look.")] = Path("experiments"),
) -> None:
    """List experiment files with their descriptions."""
    if not folder.is_dir():
        raise _fail(ConfigError.single(str(folder), "not a folder", "a folder of experiment files"))
    table = Table(title=str(folder), title_justify="left")
    for column in ("file", "model", "description"):
        table.add_column(column)
    for path in sorted(folder.glob("*.toml")):
        try:
            section = tomllib.loads(path.read_text("utf-8")).get("experiment", {})
            model = str(section.get("model", "")) if isinstance(section, dict) else ""
            text = str(section.get("description", "")) if isinstance(section, dict) else ""
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            model, text = "", f"(unreadable: {error})"
        table.add_row(escape(path.name), escape(model), escape(text))
    Console(soft_wrap=True).print(table)


@app.command()
def plot(
    folder: Annotated[Path, typer.Argument(help="A results folder.", show_default=False)],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Where the PNGs go (default: FOLDER/figures)."),
    ] = None,
) -> None:
    """Draw the figures of a results folder again."""
    from sim.experiment.results import load_results, write_figures

    try:
        results = load_results(folder)
    except ConfigError as error:
        raise _fail(error) from None
    target = out if out is not None else folder / "figures"
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=".figures-", dir=target.parent))
    try:
        written = write_figures(results, fresh)
        old = target.with_name(target.name + ".old")
        if target.exists():
            target.rename(old)
        fresh.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    for path in written:
        typer.echo(str(target / path.name))


def main() -> None:
    """Entry point of the ``sim`` console script."""
    app()
