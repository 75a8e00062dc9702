"""The `shrink` command line: thin commands over the library.

Heavy libraries (numpy, pandas, matplotlib) are imported inside the commands so
that `shrink --help` starts instantly.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from shrinkcli import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Make shrinkage (partial pooling) in mixed-effects models visible.",
)

_DATA = "Simulated data (the article's create_data)"
_FILE = "Your own data (instead of simulating)"

# (name, type, help) of the flags that mirror create_data(); defaults live in Scenario.
_DATA_FLAGS = [
    ("obs_per_cluster", int, "Observations per cluster [10]."),
    ("n_cluster", int, "Number of clusters [100]."),
    ("intercept", float, "Population intercept [1]."),
    ("beta", float, "Population slope of x [0.5]."),
    ("sigma", float, "Residual standard deviation [1]."),
    ("sd_int", float, "SD of the random intercepts [0.5]."),
    ("sd_slope", float, "SD of the random slopes [0.25]."),
    ("cor", float, "Correlation of the random effects [0]; R's cor=c is c/(sd_int*sd_slope)."),
    ("balanced", float, "Fraction of rows kept, in (0, 1] [1]."),
    ("seed", int, "R's set.seed value [888]."),
]
_FILE_FLAGS = [
    ("data", str, "CSV file to read instead of simulating."),
    ("y", str, "Column of the response in --data (default y)."),
    ("x", str, "Column of the predictor in --data (default x)."),
    ("cluster", str, "Column of the cluster labels in --data (default cluster)."),
]


def _options(spec: list[tuple[str, type, str]], panel: str) -> list[inspect.Parameter]:
    return [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[kind | None, typer.Option(help=text, rich_help_panel=panel)],
        )
        for name, kind, text in spec
    ]


def data_options(*, files: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the create_data flags (and --data/--y/--x/--cluster) to a command.

    The command receives them gathered as ``source: dict`` so that every command
    declares and validates them in one place.
    """
    extra = _options(_DATA_FLAGS, _DATA) + (_options(_FILE_FLAGS, _FILE) if files else [])

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = [
            p
            for p in inspect.signature(fn, eval_str=True).parameters.values()
            if p.name != "source"
        ]

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            source = {p.name: kwargs.pop(p.name) for p in extra}
            return fn(source=source, **kwargs)

        wrapper.__signature__ = inspect.Signature(own + extra)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in own + extra}
        return wrapper

    return decorate


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shrink {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Make shrinkage (partial pooling) in mixed-effects models visible."""


def _load(source: dict[str, Any]):
    """Simulate from the data flags, or read --data; returns ClusteredData."""
    from shrinkcli.errors import UsageError
    from shrinkcli.scenario import Scenario, flag

    sim = {k: v for k, v in source.items() if k not in {"data", "y", "x", "cluster"}}
    path = source.get("data")
    if path is None:
        named = [flag(k) for k in ("y", "x", "cluster") if source.get(k) is not None]
        if named:
            raise UsageError(f"{named[0]} names a column of --data FILE.csv; give --data too")
        from shrinkcli.simulate import simulate as run_simulation

        return run_simulation(Scenario().with_changes(**sim))
    given = [flag(k) for k, v in sim.items() if v is not None]
    if given:
        raise UsageError(f"{given[0]} is a simulation flag and cannot be used with --data")
    from shrinkcli.data import read_csv

    cols = {k: source[k] for k in ("y", "x", "cluster") if source.get(k) is not None}
    return read_csv(path, **cols)


@app.command()
@data_options(files=False)
def simulate(
    source: dict[str, Any],
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="CSV file to write; '-' for stdout.")
    ] = None,
    effects: Annotated[
        str | None,
        typer.Option(help="Also write each cluster's true intercept and slope to this CSV."),
    ] = None,
) -> None:
    """Write the simulated data (columns y, x, cluster) in R's row order."""
    from shrinkcli.output import csv_lines, text_output

    data = _load(source)
    if effects is not None:
        cols = {"cluster": data.labels, "true_intercept": data.truth[:, 0]}
        cols["true_slope"] = data.truth[:, 1]
        with text_output(effects) as fh:
            fh.writelines(csv_lines(cols))
    with text_output(output) as fh:
        fh.writelines(csv_lines({"y": data.y, "x": data.x, "cluster": data.cluster}))


@app.command()
@data_options(files=True)
def fit(
    source: dict[str, Any],
    ml: Annotated[bool, typer.Option("--ml", help="Fit by maximum likelihood, not REML.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout instead.")
    ] = False,
    estimates: Annotated[
        str | None, typer.Option(help="Write the per-cluster estimates to this CSV.")
    ] = None,
    engine: Annotated[
        str, typer.Option(help="Fitting engine: shrink (default) or statsmodels.")
    ] = "shrink",
) -> None:
    """Fit y ~ x + (x | cluster) and print lme4's summary (or JSON)."""
    import json

    from shrinkcli.output import csv_lines, text_output
    from shrinkcli.pipeline import fit_data
    from shrinkcli.summary import estimates_columns, to_json, to_text

    data = _load(source)
    fits = fit_data(data, reml=not ml, engine=engine)
    for message in fits.warnings:
        print(f"shrink: warning: {message}", file=sys.stderr)
    if estimates is not None:
        with text_output(estimates) as fh:
            fh.writelines(csv_lines(estimates_columns(fits, data.labels, data.truth)))
    label = data.source if data.source != "simulated" else "simulated (create_data)"
    if as_json:
        print(json.dumps(to_json(fits, truth=data.truth, source=label), indent=2))
    else:
        sys.stdout.write(to_text(fits, truth=data.truth, source=label))


def main(argv: list[str] | None = None) -> None:
    """Entry point: one plain line on stderr for every error, never a traceback."""
    from shrinkcli.errors import ShrinkError

    command = typer.main.get_command(app)
    try:
        code = command.main(args=argv, prog_name="shrink", standalone_mode=False)
    except ShrinkError as exc:
        _fail(str(exc), exc.exit_code)
    except (KeyboardInterrupt, BrokenPipeError) as exc:
        _fail("interrupted" if isinstance(exc, KeyboardInterrupt) else "", 130)
    except Exception as exc:  # the parser's own errors (Typer vendors click's classes)
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(0)
        if type(exc).__name__ == "Abort":
            _fail("interrupted", 130)
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        _fail(f"{exc.format_message()} (see shrink --help)", exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> None:
    if message:
        print(f"shrink: error: {message}", file=sys.stderr)
    sys.exit(code)
