"""The ``biohybrid`` command line: list, show and run scenarios.

Built on Typer (type-annotated Click) for argument parsing and help, and Rich for tables,
progress bars and readable error messages. A :class:`~biohybrid.errors.UserError` is
printed as one paragraph on stderr, with no traceback, and the command exits with status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from biohybrid.errors import UserError

app = typer.Typer(
    name="biohybrid",
    help="Multiscale hybrid models: Mesa agents, stiff intracellular ODEs, FiPy fields.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        metavar="NAME=VALUE",
        help="Override a model parameter or run setting (t_end, dt_output, ...). Repeatable.",
    ),
]


def _out() -> Console:
    return Console(highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


@app.command("list")
def list_cmd(
    models: Annotated[bool, typer.Option("--models", help="List models instead.")] = False,
) -> None:
    """List the bundled scenarios, one line each."""
    from biohybrid.registry import available_models, bundled_scenarios
    from biohybrid.scenario import read_scenario_file

    console = _out()
    if models:
        for name, cls in available_models().items():
            console.print(f"{name:<24} {cls.description}", soft_wrap=True)
        return
    for name, path in bundled_scenarios().items():
        data = read_scenario_file(path)
        console.print(f"{name:<36} [{data['model']}] {data.get('description', '')}", soft_wrap=True)


@app.command("show")
def show_cmd(
    scenario: Annotated[str, typer.Argument(help="Scenario name or path to a .toml file.")],
    set_: SetOption = None,
) -> None:
    """Show a scenario's resolved parameters and run settings, with units."""
    from biohybrid.scenario import load_scenario, parse_assignments
    from biohybrid.schedule import run_parameter_set

    sc = load_scenario(scenario, parse_assignments(set_))
    cls = sc.model_class
    console = _out()
    console.print(f"[bold]{sc.name}[/bold]: {sc.description}")
    console.print(f"model: {sc.model} ({cls.description})   seed: {sc.seed}   file: {sc.source}")
    for title, decl, values in (
        ("Model parameters", cls.parameters, sc.params),
        ("Run settings", run_parameter_set(cls), sc.run),
    ):
        table = Table(title=title, title_justify="left")
        for col in ("name", "value", "units", "meaning"):
            table.add_column(col)
        for name, value, units, meaning in decl.table(values):
            table.add_row(
                name, f"{value:g}" if isinstance(value, float) else str(value), units, meaning
            )
        console.print(table)


@app.command("run")
def run_cmd(
    scenario: Annotated[str, typer.Argument(help="Scenario name or path to a .toml file.")],
    set_: SetOption = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default outputs/<scenario>/<id>).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a scenario and write its run folder."""
    from biohybrid.runner import run
    from biohybrid.scenario import parse_assignments

    overrides = parse_assignments(set_)
    err = _err()
    show = not quiet and err.is_terminal
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} ticks"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not show,
        transient=True,
    ) as bar:
        task = bar.add_task(scenario, total=None)

        def progress(tick: int, total: int) -> None:
            bar.update(task, completed=tick, total=total)

        result = run(scenario, overrides=overrides, seed=seed, out=out, progress=progress)
    console = _out()
    console.print(f"{result.status}: {result.message}")
    console.print(f"run folder: {result.path}")
    console.print(f"wall time: {result.wall_time:.2f} s")
    if result.status != "completed":
        raise typer.Exit(1 if result.status == "failed" else 130)


@app.command("sweep")
def sweep_cmd(
    scenario: Annotated[str, typer.Argument(help="Scenario name or path to a .toml file.")],
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            metavar="NAME=v1,v2,...|NAME=lo:hi",
            help="A parameter to vary: a value list (grid) or a range (lhs, sobol, morris).",
        ),
    ] = None,
    design: Annotated[
        str, typer.Option("--design", "-d", help="grid, lhs, sobol or morris.")
    ] = "grid",
    n: Annotated[
        int | None,
        typer.Option("--n", help="Points (lhs), base samples (sobol), trajectories (morris)."),
    ] = None,
    replicates: Annotated[int, typer.Option("--replicates", "-r", help="Runs per point.")] = 1,
    seed: Annotated[int, typer.Option("--seed", help="Root seed of the sweep.")] = 0,
    workers: Annotated[
        int | None, typer.Option("--workers", "-w", help="Local worker processes.")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Dask scheduler address (tcp://host:port).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Sweep folder (default outputs/<scenario>/sweep-<time>)."),
    ] = None,
    set_: SetOption = None,
    retry_failed: Annotated[
        bool, typer.Option("--retry-failed", help="On resume, redo failed runs.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a scenario over a parameter design; resumable (give the same --out again)."""
    from biohybrid.scenario import parse_assignments
    from biohybrid.sweep import parse_param_text, sensitivity, sweep

    df = sweep(
        scenario,
        parse_param_text(param),
        design=design,
        n=n,
        replicates=replicates,
        seed=seed,
        workers=workers,
        scheduler=scheduler,
        out=out,
        overrides=parse_assignments(set_),
        progress=not quiet,
        retry_failed=retry_failed,
    )
    info = df.attrs["sweep"]
    console = _out()
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    console.print(
        f"{info['n_runs']} runs: {info['n_done_now']} run now, {info['n_skipped']} already"
        f" done; " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
    )
    console.print(f"sweep folder: {info['path']}")
    console.print(f"wall time: {info['wall_time']:.2f} s")
    if design in ("sobol", "morris") and counts.get("completed", 0) == info["n_runs"]:
        console.print(sensitivity(df).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if counts.get("completed", 0) < len(df):
        raise typer.Exit(1)


@app.command("viz")
def viz_cmd(
    scenario: Annotated[str, typer.Argument(help="Scenario name or path to a .toml file.")],
    set_: SetOption = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port of the server.")] = 8765,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (default: this machine only).")
    ] = "127.0.0.1",
) -> None:
    """Watch a scenario live in the browser (Mesa SolaraViz server on localhost)."""
    from biohybrid.scenario import parse_assignments
    from biohybrid.viz.server import serve

    serve(scenario, parse_assignments(set_), seed=seed, host=host, port=port)


def main() -> None:
    """Entry point: run the CLI, turning user errors into a clean message and exit 2."""
    try:
        code = app(standalone_mode=False)
    except UserError as exc:
        _err().print(f"[bold red]error:[/bold red] {exc}", soft_wrap=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _err().print("aborted")
        sys.exit(130)
    except Exception as exc:  # click usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)
