"""The `shrink` command line: thin commands over the library.

Heavy libraries (numpy, pandas, matplotlib) are imported inside the commands so
that `shrink --help` starts instantly.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from shrinkcli import __version__

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Make shrinkage (partial pooling) in mixed-effects models visible.",
)

_DATA = "Simulated data (the article's create_data)"

ObsPerCluster = Annotated[
    int | None, typer.Option(help="Observations per cluster [10].", rich_help_panel=_DATA)
]
NCluster = Annotated[
    int | None, typer.Option(help="Number of clusters [100].", rich_help_panel=_DATA)
]
Intercept = Annotated[
    float | None, typer.Option(help="Population intercept [1].", rich_help_panel=_DATA)
]
Beta = Annotated[
    float | None, typer.Option(help="Population slope of x [0.5].", rich_help_panel=_DATA)
]
Sigma = Annotated[
    float | None, typer.Option(help="Residual standard deviation [1].", rich_help_panel=_DATA)
]
SdInt = Annotated[
    float | None, typer.Option(help="SD of the random intercepts [0.5].", rich_help_panel=_DATA)
]
SdSlope = Annotated[
    float | None, typer.Option(help="SD of the random slopes [0.25].", rich_help_panel=_DATA)
]
Cor = Annotated[
    float | None,
    typer.Option(
        help="Correlation of random intercepts and slopes [0]. R's cor=c is c/(sd_int*sd_slope).",
        rich_help_panel=_DATA,
    ),
]
Balanced = Annotated[
    float | None,
    typer.Option(help="Fraction of rows kept, in (0, 1] [1].", rich_help_panel=_DATA),
]
Seed = Annotated[int | None, typer.Option(help="R's set.seed value [888].", rich_help_panel=_DATA)]


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


def _scenario(**flags: object):
    from shrinkcli.scenario import Scenario

    return Scenario().with_changes(**flags)


@app.command()
def simulate(
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="CSV file to write; '-' for stdout.")
    ] = None,
    effects: Annotated[
        str | None,
        typer.Option(help="Also write each cluster's true intercept and slope to this CSV."),
    ] = None,
    obs_per_cluster: ObsPerCluster = None,
    n_cluster: NCluster = None,
    intercept: Intercept = None,
    beta: Beta = None,
    sigma: Sigma = None,
    sd_int: SdInt = None,
    sd_slope: SdSlope = None,
    cor: Cor = None,
    balanced: Balanced = None,
    seed: Seed = None,
) -> None:
    """Write the simulated data (columns y, x, cluster) in R's row order."""
    from shrinkcli.output import csv_lines, text_output
    from shrinkcli.simulate import simulate as run_simulation

    scenario = _scenario(
        obs_per_cluster=obs_per_cluster, n_cluster=n_cluster, intercept=intercept, beta=beta,
        sigma=sigma, sd_int=sd_int, sd_slope=sd_slope, cor=cor, balanced=balanced, seed=seed,
    )  # fmt: skip
    data = run_simulation(scenario)
    if effects is not None:
        with text_output(effects) as fh:
            fh.writelines(
                csv_lines(
                    {
                        "cluster": data.labels,
                        "true_intercept": data.truth[:, 0],
                        "true_slope": data.truth[:, 1],
                    }
                )
            )
    with text_output(output) as fh:
        fh.writelines(csv_lines({"y": data.y, "x": data.x, "cluster": data.cluster}))


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
