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
    from biohybrid.model import run_parameter_set
    from biohybrid.scenario import load_scenario, parse_assignments

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
