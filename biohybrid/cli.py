"""The ``biohybrid`` command line: list, show, run, sweep and watch scenarios.

Built on Typer (type-annotated Click) for argument parsing and help, and Rich for tables,
progress bars and readable error messages.

Every mistake in input, whether the command line's own (no command, an unknown option or
command, a missing argument, ``--seed abc``) or the engine's
(:class:`~biohybrid.errors.UserError`), is printed as one paragraph on stderr naming the
problem and the valid choices, with no traceback, and exits with status 2 before anything
is written. User text is never read as Rich markup (``[params]`` and ``[/bold]`` print as
typed). Exit statuses: 0 completed, 1 failed, 2 usage error, 130 interrupted by Ctrl-C,
143 terminated by SIGTERM.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from biohybrid.errors import UserError, did_you_mean
from biohybrid.params import Overrides
from biohybrid.registry import available_models, bundled_scenarios
from biohybrid.runner import run
from biohybrid.scenario import load_scenario, parse_value, read_scenario_file
from biohybrid.schedule import run_parameter_set
from biohybrid.sweep import parse_param_text, sensitivity, sweep

#: Exit statuses of the command line.
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM

app = typer.Typer(
    name="biohybrid",
    help="Multiscale hybrid models: Mesa agents, stiff intracellular ODEs, FiPy fields.",
    no_args_is_help=False,  # a bare `biohybrid` is a usage error ("Missing command"), exit 2
    add_completion=False,
    pretty_exceptions_enable=False,
)

ScenarioArg = Annotated[
    str, typer.Argument(metavar="SCENARIO", help="Scenario name or path to a .toml file.")
]
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


def _say(console: Console, text: str) -> None:
    """Print ``text`` exactly as given: no markup, no highlighting, no hard wrapping."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)


def _assignments(items: Sequence[str] | None) -> Overrides:
    """Parse ``--set NAME=VALUE`` items; a name given twice is refused, naming it.

    Raises:
        UserError: On an item without ``=``, an empty name, or a repeated name.
    """
    out = Overrides(origin="--set")
    for item in items or []:
        if "=" not in item:
            raise UserError(f"--set expects NAME=VALUE, got '{item}' (e.g. --set t_end=100).")
        name, value = (part.strip() for part in item.split("=", 1))
        if not name:
            raise UserError(f"--set expects NAME=VALUE, got '{item}': the name is missing.")
        if name in out:
            raise UserError(
                f"--set {name} is given twice ({name}={out[name]!r} and {item}); give each"
                " name once."
            )
        out[name] = parse_value(value)
    return out


@app.command("list")
def list_cmd(
    models: Annotated[bool, typer.Option("--models", help="List models instead.")] = False,
) -> None:
    """List the bundled scenarios, one line each."""
    console = _out()
    if models:
        for name, cls in available_models().items():
            _say(console, f"{name:<24} {cls.description}")
        return
    for name, path in bundled_scenarios().items():
        data = read_scenario_file(path)
        _say(console, f"{name:<36} [{data['model']}] {data.get('description', '')}")


@app.command("show")
def show_cmd(
    scenario: ScenarioArg,
    set_: SetOption = None,
) -> None:
    """Show a scenario's resolved parameters and run settings, with units."""
    sc = load_scenario(scenario, _assignments(set_))
    cls = sc.model_class
    console = _out()
    console.print(Text.assemble((sc.name, "bold"), f": {sc.description}"), soft_wrap=True)
    _say(console, f"model: {sc.model} ({cls.description})   seed: {sc.seed}   file: {sc.source}")
    for title, decl, values in (
        ("Model parameters", cls.parameters, sc.params),
        ("Run settings", run_parameter_set(cls), sc.run),
    ):
        table = Table(title=title, title_justify="left")
        for col in ("name", "value", "units", "meaning"):
            table.add_column(col)
        for name, value, units, meaning in decl.table(values):
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            table.add_row(*(Text(str(cell)) for cell in (name, shown, units, meaning)))
        console.print(table)


@app.command("run")
def run_cmd(
    scenario: ScenarioArg,
    set_: SetOption = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Run folder (default outputs/<scenario>/<id>).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run a scenario and write its run folder."""
    overrides = _assignments(set_)
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
        task = bar.add_task(escape(scenario), total=None)

        def progress(tick: int, total: int) -> None:
            bar.update(task, completed=tick, total=total)

        result = run(scenario, overrides=overrides, seed=seed, out=out, progress=progress)
    console = _out()
    _say(console, f"{result.status}: {result.message}")
    _say(console, f"run folder: {result.path}")
    _say(console, f"wall time: {result.wall_time:.2f} s")
    _warn_figures(result.path)
    code = run_exit_code(result)
    if code:
        raise typer.Exit(code)


def run_exit_code(result: Any) -> int:
    """The exit status of a run: 0 completed, 1 failed, 143 SIGTERM, 130 other interruption.

    A SIGTERM is recognised by ``result.stop_signal == "SIGTERM"``.
    """
    if result.status == "completed":
        return 0
    if result.status == "interrupted":
        if getattr(result, "stop_signal", None) == "SIGTERM":
            return EXIT_TERMINATED
        return EXIT_INTERRUPTED
    return EXIT_FAILED


def _warn_figures(path: Path | None) -> None:
    """Say on stderr when the run's figures could not be written (the data are kept)."""
    if path is None:
        return
    try:
        manifest = json.loads((Path(path) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    for key in ("figure_error", "summary_error"):
        if manifest.get(key):
            what = "figures" if key == "figure_error" else "summary"
            _say(_err(), f"warning: the run's {what} could not be written: {manifest[key]}")


@app.command("sweep")
def sweep_cmd(
    scenario: ScenarioArg,
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
        overrides=_assignments(set_),
        progress=not quiet,
        retry_failed=retry_failed,
    )
    info = df.attrs["sweep"]
    console = _out()
    counts = df["status"].value_counts().to_dict() if len(df) else {}
    _say(
        console,
        f"{info['n_runs']} runs: {info['n_done_now']} run now, {info['n_skipped']} already"
        f" done; " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())),
    )
    _say(console, f"sweep folder: {info['path']}")
    _say(console, f"wall time: {info['wall_time']:.2f} s")
    if design in ("sobol", "morris") and counts.get("completed", 0) == info["n_runs"]:
        _say(console, sensitivity(df).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if counts.get("completed", 0) < len(df):
        raise typer.Exit(1)


@app.command("viz")
def viz_cmd(
    scenario: ScenarioArg,
    set_: SetOption = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed.")] = None,
    port: Annotated[int, typer.Option("--port", "-p", help="TCP port of the server.")] = 8765,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (default: this machine only).")
    ] = "127.0.0.1",
) -> None:
    """Watch a scenario live in the browser (Mesa SolaraViz server on localhost)."""
    from biohybrid.viz.server import serve

    serve(scenario, _assignments(set_), seed=seed, host=host, port=port)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else text + "."


def _usage_message(exc: Exception) -> str:
    """One paragraph for a command-line usage error: the problem, the choices, the usage."""
    ctx = getattr(exc, "ctx", None)
    command = getattr(ctx, "command", None)
    path = getattr(ctx, "command_path", None) or "biohybrid"
    subcommands = sorted(getattr(command, "commands", {}) or {})
    kind = type(exc).__name__
    if kind == "NoArgsIsHelpError" or (subcommands and not exc.format_message()):
        text = "Missing command."
    elif kind == "NoSuchOption":
        text = _sentence(str(getattr(exc, "message", exc)))
        close = sorted(getattr(exc, "possibilities", None) or [])
        if close:
            text += f" Did you mean {' or '.join(close)}?"
    else:
        text = _sentence(exc.format_message())
    if subcommands:
        if text.startswith("No such command '") and "Did you mean" not in text:
            text += did_you_mean(text.split("'")[1], subcommands)
        text += f" Commands: {', '.join(subcommands)}."
    if kind == "NoSuchOption" and command is not None and not subcommands:
        names = sorted(
            opt
            for param in command.get_params(ctx)
            for opt in getattr(param, "opts", [])
            if opt.startswith("--")
        )
        text += f" Options of '{path}': {', '.join(names)}."
    if ctx is not None:
        usage = " ".join(ctx.get_usage().split()).rstrip(".")
        text += f" {usage}. Try '{path} --help' for help."
    else:
        text += " Try 'biohybrid --help' for help."
    return " ".join(text.split())


def _usage_errors() -> tuple[type[BaseException], ...]:
    """Usage-error classes of Typer (its own copy of Click, in recent Typer) and of Click."""
    kinds: list[type[BaseException]] = []
    try:
        from typer._click.exceptions import ClickException as TyperClickException

        kinds.append(TyperClickException)
    except ImportError:  # older Typer: Click's own classes
        pass
    try:
        import click

        kinds.append(click.ClickException)
    except ImportError:
        pass
    return tuple(kinds)


def _abort_errors() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [KeyboardInterrupt, typer.Abort]
    try:
        import click

        kinds.append(click.exceptions.Abort)
    except ImportError:
        pass
    return tuple(kinds)


def _exit_errors() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [typer.Exit]
    try:
        import click

        kinds.append(click.exceptions.Exit)
    except ImportError:
        pass
    return tuple(kinds)


def _error(text: str) -> int:
    """Print ``error: <text>`` as one paragraph on stderr (verbatim) and return exit status 2."""
    line = " ".join(str(text).split("\n"))
    _err().print(Text.assemble(("error:", "bold red"), " ", line), soft_wrap=True)
    return EXIT_USAGE


def cli(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default ``sys.argv[1:]``) and return its exit status.

    Never raises for a user's mistake: usage errors and :class:`UserError` print one
    paragraph and return 2, Ctrl-C returns 130.

    Args:
        argv: The arguments after the program name.

    Returns:
        The exit status.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = app(args=args, prog_name="biohybrid", standalone_mode=False)
    except UserError as exc:
        return _error(str(exc))
    except _exit_errors() as exc:
        return int(getattr(exc, "exit_code", 0) or 0)
    except _abort_errors():
        _say(_err(), "aborted")
        return EXIT_INTERRUPTED
    except _usage_errors() as exc:
        if int(getattr(exc, "exit_code", 1)) == EXIT_USAGE or hasattr(exc, "ctx"):
            return _error(_usage_message(exc))
        return _error(exc.format_message())  # e.g. a file Click could not open
    return code if isinstance(code, int) else 0


def main() -> None:
    """Console entry point (``biohybrid``): run :func:`cli` and exit with its status."""
    code = cli()
    if code:
        sys.exit(code)


if __name__ == "__main__":
    main()
