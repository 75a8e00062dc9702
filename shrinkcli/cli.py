"""The `shrink` command line: thin commands over the library.

Heavy libraries (numpy, pandas, matplotlib) are imported inside the commands so
that `shrink --help` starts instantly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """Ctrl-C while the command line is still importing: nothing to undo, no traceback."""
    with contextlib.suppress(OSError):
        os.write(2, b"shrink: error: interrupted\n")
    os._exit(130)


def _started_as_command() -> bool:
    """True when this import is the `shrink` console script or `python -m shrinkcli`."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None:
        return spec.name == "shrinkcli.__main__"
    return os.path.basename(getattr(main, "__file__", None) or "").startswith("shrink")


# installed before the heavy imports below (about 0.2 s), which a Ctrl-C may interrupt
if signal.getsignal(signal.SIGINT) is signal.default_int_handler and _started_as_command():
    signal.signal(signal.SIGINT, _interrupted_while_starting)

import functools  # noqa: E402
import inspect  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from typing import Annotated, Any  # noqa: E402

import typer  # noqa: E402

from shrinkcli import __version__  # noqa: E402
from shrinkcli.errors import ShrinkError, cut  # noqa: E402 - light: no heavy imports

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Make shrinkage (partial pooling) in mixed-effects models visible.",
)

_DATA = "Simulated data (the article's create_data)"
_OUTPUT_HELP = "File to write: .gif, .mp4, .png (a still) or .html (the interactive page)."
_SWEEP = "Simulated data (the article's create_data; lists a,b,c make panels)"
_FILE = "Your own data (instead of simulating)"

# options that run, grid and batch share
_Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no warnings.")]
_AllowOutsideData = Annotated[
    bool,
    typer.Option(
        "--allow-outside-data",
        help="Let a scenario file name a data file outside its own folder.",
    ),
]

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
_DATA_KINDS = {name: kind for name, kind, _ in _DATA_FLAGS}
_FILE_FLAGS = [
    ("data", str, "CSV file to read instead of simulating."),
    ("y", str, "Column of the response in --data (default y)."),
    ("x", str, "Column of the predictor in --data (default x)."),
    ("cluster", str, "Column of the cluster labels in --data (default cluster)."),
    (
        "formula",
        str,
        "lme4 formula naming the model and the columns instead of --y/--x/--cluster: "
        "'y ~ x + (x | g)', 'y ~ x + (1 | g)' or 'y ~ 1 + (1 | g)'.",
    ),
]
_MODEL_FLAGS = [
    ("ml", bool, "Fit by maximum likelihood instead of REML."),
    ("engine", str, "Fitting engine: shrink (default) or statsmodels."),
]
_PICTURE = "Picture"
_PICTURE_FLAGS = [
    ("frames", int, "Frames of movement [60]."),
    ("hold", int, "Frames holding the final state [60]."),
    ("fps", float, "Frames per second [10]."),
    ("width", int, "Width in pixels [600; 1200 with --layout explain]."),
    ("height", int, "Height in pixels [450]."),
    ("ease", str, "Easing: linear (default), quad-in-out, cubic-in-out, sine-in-out, ..."),
    ("ellipses", bool, "Draw contours of the fitted random-effect distribution."),
    ("truth", bool, "Draw the true cluster effects (simulated data)."),
    (
        "zoom",
        str,
        "auto (fits the mixed estimates, default), article (the article's fixed "
        "window; alias baseline) or data (every point).",
    ),
    ("path", str, "straight (the article's, default) or pooling (every frame a real model)."),
    (
        "layout",
        str,
        "single (the plane, default) or explain (beside it the highlighted clusters' data "
        "and how far each cluster was pulled; 1200 wide unless --width).",
    ),
    ("story", bool, "Tell complete -> no -> partial pooling as one animation."),
    (
        "highlight",
        str,
        "Clusters to follow in --layout explain, by label: A,B,C (default: the one that "
        "moves most, the smallest, the largest).",
    ),
    (
        "order",
        str,
        "Rows of the random-intercept picture: size (the largest cluster at the top, "
        "default) or estimate (the highest mixed estimate at the top).",
    ),
]


def _options(spec: list[tuple[str, type, str]], panel: str) -> list[inspect.Parameter]:
    params = []
    for name, kind, text in spec:
        decls = [f"--{name.replace('_', '-')}"]
        if kind is bool:
            decls = [f"{decls[0]}/--no-{decls[0][2:]}"]
        extra = {}
        if panel in (_DATA, _SWEEP):  # text, so that a comma-separated list gets through
            extra["metavar"] = "<int>" if kind is int else "<float>"
            kind = str
        option = typer.Option(*decls, help=text, rich_help_panel=panel, **extra)
        params.append(
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[kind | None, option],
            )
        )
    return params


_GROUPS = {
    "data": (_DATA_FLAGS, _DATA),
    "sweep": (_DATA_FLAGS, _SWEEP),  # the same flags, where lists make panels
    "file": (_FILE_FLAGS, _FILE),
    "model": (_MODEL_FLAGS, "Model"),
    "picture": (_PICTURE_FLAGS, _PICTURE),
}


def gathered(*groups: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add shared flag groups to a command, handed over as one dict ``flags``.

    Every command declares the create_data flags (and the file, model and picture
    flags) in one place; a flag that was not given arrives as None, so values
    from a scenario file can fill it.
    """
    extra = [p for g in groups for p in _options(*_GROUPS[g])]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = [
            p for p in inspect.signature(fn, eval_str=True).parameters.values() if p.name != "flags"
        ]

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            flags = {p.name: kwargs.pop(p.name) for p in extra}
            if "data" in groups or "sweep" in groups:  # numbers; lists make panels
                from shrinkcli.sweep import parse_flags

                flags = parse_flags(flags, _DATA_KINDS, lists_ok="sweep" in groups)
            _WORK.clear()
            _WORK.update(flags)
            try:
                return fn(flags=flags, **kwargs)
            except BrokenPipeError:  # Typer would make it exit(1): stop quietly, as cat does
                _silence_stdout()
                raise SystemExit(141) from None
            except MemoryError:
                raise ShrinkError(_out_of_memory(_WORK)) from None

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


def _load(flags: dict[str, Any], outputs: list[tuple[str, str | None]]):
    """Check the flags, every file to write against every input and each other, then
    simulate or read --data."""
    from shrinkcli.output import check_distinct, check_writable
    from shrinkcli.pipeline import check_values, load_data

    scenario, _ = check_values(flags, drawing=False)
    check_distinct(outputs, [("--data", flags.get("data"))])
    for what, target in outputs:
        if target == "-":
            _check_stdout_open("the simulated data" if what == "-o" else what)
    for _, target in outputs:
        if target not in (None, "-"):
            check_writable(target)
    return load_data(flags, scenario)


@app.command()
@gathered("data")
def simulate(
    flags: dict[str, Any],
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

    data = _load(flags, [("-o", output or "-"), ("--effects", effects)])
    if effects is not None:
        cols = {"cluster": data.labels, "true_intercept": data.truth[:, 0]}
        cols["true_slope"] = data.truth[:, 1]
        with text_output(effects) as fh:
            fh.writelines(csv_lines(cols))
    with text_output(output) as fh:
        fh.writelines(csv_lines({"y": data.y, "x": data.x, "cluster": data.cluster}))


@app.command()
@gathered("data", "file", "model")
def fit(
    flags: dict[str, Any],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout instead.")
    ] = False,
    estimates: Annotated[
        str | None, typer.Option(help="Write the per-cluster estimates to this CSV.")
    ] = None,
) -> None:
    """Fit y ~ x + (x | cluster) (or --formula's model) and print lme4's summary (or JSON)."""
    import json

    from shrinkcli.output import csv_lines, stdout_guard, text_output
    from shrinkcli.pipeline import fit_data
    from shrinkcli.summary import estimates_columns, to_json, to_text

    data = _load(flags, [("--estimates", estimates), ("the summary", "-")])
    fits = fit_data(
        data, reml=not flags["ml"], engine=flags["engine"] or "shrink", formula=flags["formula"]
    )
    for message in fits.warnings:
        _say(f"shrink: warning: {message}")
    if estimates is not None:
        with text_output(estimates) as fh:
            fh.writelines(csv_lines(estimates_columns(fits, data.labels, data.truth)))
    with stdout_guard():
        if as_json:
            print(json.dumps(to_json(fits, truth=data.truth, source=data.source), indent=2))
        else:
            sys.stdout.write(to_text(fits, truth=data.truth, source=data.source))


@app.command("run")
@gathered("sweep", "file", "model", "picture")
def run_command(
    flags: dict[str, Any],
    output: Annotated[str, typer.Option("--output", "-o", help=_OUTPUT_HELP)] = "shrinkage.gif",
    scenario: Annotated[
        str | None, typer.Option(help="Scenario TOML file; flags given here override it.")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title drawn on the picture.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the fit summary as JSON on stdout.")
    ] = False,
    quiet: _Quiet = False,
    allow_outside_data: _AllowOutsideData = False,
) -> None:
    """Simulate or read, fit, and animate each cluster's OLS estimate moving to the mixed one.

    A data flag given a list (--sd-slope 0.1,0.25,1) draws one panel per value, as
    shrink grid does.
    """
    import json

    if quiet:
        _QUIET.append(True)
    _lighter_matplotlib()
    from shrinkcli.config import merge, plain_text, read_scenario
    from shrinkcli.errors import DataError
    from shrinkcli.output import check_distinct, stdout_guard
    from shrinkcli.pipeline import run_values
    from shrinkcli.summary import to_json
    from shrinkcli.sweep import lists

    given = {**flags, "title": None if title is None else plain_text(title)}
    file_values = read_scenario(scenario, allow_outside_data=allow_outside_data) if scenario else {}
    values = merge(file_values, given)
    if lists(values):  # --sd-slope 0.1,0.25,1: one panel per value, as shrink grid draws
        files = [scenario] if scenario else []
        _grid(files, [file_values] if scenario else None, flags, output, None, title, as_json,
              quiet)  # fmt: skip
        return
    _WORK.update(values)
    check_distinct([("-o", output)], [("--data", values.get("data")), ("--scenario", scenario)])
    if as_json:
        _check_stdout_open("--json")
    try:
        with _progress(quiet, values) as progress:
            result = run_values(values, output, progress)
    except DataError as exc:
        if flags.get("data") is None and file_values.get("data"):  # the scenario's data
            raise DataError(f"{cut(scenario, 200)}: {exc}") from None
        raise
    if not quiet:
        for message in result.fits.warnings:
            _say(f"shrink: warning: {message}")
    if sys.stdout is None:  # closed (>&-), and no --json: the file is made, nothing to say
        return
    with stdout_guard():
        if as_json:
            doc = to_json(result.fits, truth=result.data.truth, source=result.data.source)
            doc["output"] = str(result.output)
            doc["picture"] = result.picture
            print(json.dumps(doc, indent=2))
        else:
            print(result.output)


@app.command("grid")
@gathered("sweep", "file", "model", "picture")
def grid_command(
    flags: dict[str, Any],
    files: Annotated[
        list[str] | None,
        typer.Argument(help="Scenario TOML files, one panel (or row) each.", show_default=False),
    ] = None,
    output: Annotated[str, typer.Option("--output", "-o", help=_OUTPUT_HELP)] = "grid.gif",
    cols: Annotated[
        int | None, typer.Option(help="Columns of panels (default: what fits the size best).")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Title drawn over the panels.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print every panel's fit summary as JSON on stdout.")
    ] = False,
    quiet: _Quiet = False,
    allow_outside_data: _AllowOutsideData = False,
) -> None:
    """Scenarios side by side on shared axes, moving in step: one panel per scenario file,
    or per value of a list (--sd-slope 0.1,0.25,1; two lists make rows x columns)."""
    from shrinkcli.config import read_scenario

    files = list(files or [])
    file_values = [read_scenario(f, allow_outside_data=allow_outside_data) for f in files]
    _grid(files, file_values or None, flags, output, cols, title, as_json, quiet)


def _grid(files: list[str], file_values: list[dict[str, Any]] | None, flags: dict[str, Any],
          output: str, cols: int | None, title: str | None, as_json: bool,
          quiet: bool) -> None:  # fmt: skip
    """Plan, check every output against every input, draw the grid, report."""
    import json

    from shrinkcli.config import plain_text
    from shrinkcli.grid import describe_grid, plan_grid, run_grid
    from shrinkcli.output import check_distinct, stdout_guard

    if quiet:
        _QUIET.append(True)
    _lighter_matplotlib()
    size = (flags.get("width"), flags.get("height"))  # the grid's, not each panel's
    flags = {**flags, "width": None, "height": None}
    plan = plan_grid(files, flags, file_values=file_values,
                     title=None if title is None else plain_text(title))  # fmt: skip
    inputs = [("--data", flags.get("data"))] + [("scenario file", f) for f in files]
    inputs += [(f"{p.title}'s data", p.values.get("data")) for p in plan.panels]
    check_distinct([("-o", output)], inputs)
    if as_json:
        _check_stdout_open("--json")
    with _progress(quiet, plan.panels[0].values) as progress:
        result = run_grid(plan, output, width=size[0], height=size[1], cols=cols,
                          progress=progress)  # fmt: skip
    if not quiet:  # a warning once, naming the panels it concerns
        from shrinkcli.grid import grouped_warnings

        for line in grouped_warnings(result):
            _say(f"shrink: warning: {line}")
    if sys.stdout is None:
        return
    with stdout_guard():
        if as_json:
            print(json.dumps(describe_grid(result), indent=2))
        else:
            print(result.output)


@app.command()
@gathered("data", "file", "model", "picture")
def batch(
    flags: dict[str, Any],
    files: Annotated[list[str], typer.Argument(help="Scenario TOML files.", show_default=False)],
    out_dir: Annotated[
        str, typer.Option("--out-dir", "-d", help="Folder for the outputs (created if needed).")
    ] = "shrink-out",
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", help="Parallel processes [number of cores].")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="gif, mp4 or png.")] = "gif",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the index as one JSON document on stdout.")
    ] = False,
    quiet: _Quiet = False,
    allow_outside_data: _AllowOutsideData = False,
) -> None:
    """Run many scenario files in parallel; flags given here override every file.

    Writes, per scenario, the animation, NAME_estimates.csv and NAME_fit.json, and
    DIR/index.json and DIR/index.csv. Exit code 1 if any scenario failed.
    """
    import json
    from pathlib import Path

    from shrinkcli.batch import plan, run_batch, write_index
    from shrinkcli.config import outside_data_allowed
    from shrinkcli.errors import UsageError
    from shrinkcli.output import stdout_guard

    if quiet:
        _QUIET.append(True)
    _lighter_matplotlib()
    if jobs is not None and jobs < 1:
        raise UsageError(f"--jobs {jobs} must be at least 1")
    if as_json:
        _check_stdout_open("--json")
    out = Path(out_dir)
    given = {k: v for k, v in flags.items() if v is not None}
    if given.get("data") == "-":  # the scenarios run in worker processes, without stdin
        raise UsageError("batch cannot read --data - (standard input); save it to a file first")
    if "data" in given and len(files) > 1 and _is_stream(given["data"]):
        raise UsageError(
            f"--data {cut(given['data'])} can be read only once, and {len(files)} scenarios "
            "need it; save it to a file first"
        )
    with outside_data_allowed(allow_outside_data):
        jobs_list = plan(files, out, fmt, given)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out-dir {out}: cannot create it ({exc.strerror})") from None
    tell = sys.stderr is not None and sys.stderr.isatty() and not quiet

    def on_done(row: dict[str, Any]) -> None:
        if tell:
            state = "ok" if row["status"] == "ok" else f"FAILED: {row['error']}"
            _say(f"  {row['name']}: {state} ({row['seconds']:.1f} s)")

    rows = run_batch(jobs_list, n_jobs=jobs, on_done=on_done)
    index_json, index_csv = write_index(rows, out)
    failed = [r for r in rows if r["status"] != "ok"]
    if sys.stdout is not None:  # closed (>&-) without --json: the index files say it all
        with stdout_guard():
            if as_json:
                doc = {"scenarios": rows, "index": [str(index_json), str(index_csv)]}
                print(json.dumps(doc, indent=2))
            else:
                for r in rows:
                    what = r["outputs"]["animation"] if r["status"] == "ok" else "FAILED"
                    print(f"{r['name']}\t{r['status']}\t{what}\t{r['seconds']:.2f}s")
    for r in failed:
        _say(f"shrink: error: scenario {r['name']} ({r['file']}): {r['error']}")
    if failed:
        sys.exit(1)


@app.command("study")
def study_command(
    file: Annotated[
        str,
        typer.Argument(help="Study TOML file: a grid of designs, reps, seed.", show_default=False),
    ],
    out_dir: Annotated[
        str,
        typer.Option(
            "--out-dir", "-d", help="Folder for the outputs and saved chunks (a rerun resumes)."
        ),
    ] = "shrink-study",
    scheduler: Annotated[
        str | None,
        typer.Option(help="A running Dask scheduler, tcp://HOST:PORT (default: local cores)."),
    ] = None,
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", help="Local processes (default: one a core).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print summary.json on stdout instead of a table.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """When does shrinkage help? Simulate and fit every cell of a grid many times.

    Writes replications.csv, summary.csv, summary.json, timing.csv and study.png.

    Finished chunks are kept in DIR/chunks: the same command resumes after Ctrl-C.
    """
    from shrinkcli.study.cli_view import run_from_cli

    _lighter_matplotlib()
    run_from_cli(
        file, out_dir=out_dir, scheduler=scheduler, jobs=jobs, as_json=as_json, quiet=quiet,
        fail=_fail,
    )  # fmt: skip


def _is_stream(path: str) -> bool:
    """Standard input, a FIFO or a device: data that can be read only once."""
    import stat

    try:
        return path == "-" or not stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _out_of_memory(values: dict[str, Any]) -> str:
    """The size that did not fit in memory, and what to do about it."""
    from shrinkcli.scenario import Scenario

    if values.get("data"):
        data = str(values["data"])
        try:
            size = f" ({os.stat(data).st_size / 1e6:,.0f} MB)" if data != "-" else ""
        except OSError:
            size = ""
        what = f"the data in {cut(data, 200)}{size}"
        advice = "use a smaller file"
    else:
        sim = {k: values[k] for k in ("n_cluster", "obs_per_cluster") if values.get(k)}
        sim = {k: max(v) if isinstance(v, tuple) else v for k, v in sim.items()}  # a sweep
        try:
            s = Scenario(**sim)
            what = (
                f"{s.n_obs:,} simulated observations ({s.n_cluster:,} clusters x "
                f"{s.obs_per_cluster:,})"
            )
        except Exception:
            what = "this design"
        advice = "use fewer clusters (--n-cluster) or observations (--obs-per-cluster)"
    if values.get("path") == "pooling":
        advice += ", or --path straight (the pooling path keeps a model per frame)"
    return f"out of memory with {what}; {advice}, or a machine with more memory"


def _check_stdout_open(what: str) -> None:
    """A result bound for a closed standard output (``>&-``) is refused before any work."""
    from shrinkcli.errors import UsageError

    if sys.stdout is None:
        raise UsageError(
            f"standard output is closed, and {what} goes there; "
            "redirect it to a file (> out.txt) or to /dev/null"
        )


@contextlib.contextmanager
def _progress(quiet: bool, values: dict[str, Any]) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr, only on a terminal and when not --quiet."""
    if quiet or sys.stderr is None or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    total = (values.get("frames") or 60) + (values.get("hold") or 60)
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("rendering", total=total)
        yield lambda done: bar.update(task, completed=done)


_INTERRUPTED: list[int] = []  # set by the console script's Ctrl-C handler
_QUIET: list[bool] = []  # set by --quiet: library warnings are then not shown at all
_SHOWN: set[str] = set()  # warning lines already printed (each is printed once)
_WORK: dict[str, Any] = {}  # the values of the command running: its size, if memory runs out
READER_WAIT = 3.0  # seconds to wait for a pipe's reader to take the last of the output


def main(argv: list[str] | None = None) -> None:
    """Entry point: one plain line on stderr for every error, never a traceback."""
    import warnings

    _QUIET.clear()
    _SHOWN.clear()
    try:
        command = typer.main.get_command(app)
        with warnings.catch_warnings(), _plain_log_messages():
            warnings.showwarning = _show_warning  # whatever a library still warns: one line
            code = command.main(args=argv, prog_name="shrink", standalone_mode=False)
    except ShrinkError as exc:
        _stopped_by_signal()  # an error that a signal caused is the signal's exit
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        _silence_stdout()
        _fail("", 141)
    except MemoryError:  # the commands name the size; this is the last resort
        _fail("out of memory; use smaller data (fewer clusters or observations)", 1)
    except Exception as exc:  # the parser's own errors (Typer vendors click's classes)
        _stopped_by_signal()  # Ctrl-C or SIGTERM inside C code can surface as another error
        if type(exc).__name__ == "NoArgsIsHelpError":
            sys.exit(0)
        if type(exc).__name__ == "Abort":
            _fail("interrupted", 130)
        if isinstance(exc, OSError) and exc.strerror:  # e.g. a path the system refuses
            where = f"{cut(os.fsdecode(exc.filename))}: " if exc.filename else ""
            _fail(f"{where}{exc.strerror}", 1)
        if not (hasattr(exc, "format_message") and hasattr(exc, "exit_code")):
            raise
        _fail(f"{cut(exc.format_message(), 300)} (see shrink --help)", exc.exit_code)
    if code == 130:  # Typer turns Ctrl-C into exit code 130 without a word
        _fail("interrupted", 130)
    sys.exit(code if isinstance(code, int) else 0)


def _stopped_by_signal() -> None:
    """Exit as the signal that stopped the run asks (130 for Ctrl-C with one line,
    128 + SIGTERM silently), whatever error it surfaced as."""
    if not _INTERRUPTED:
        return
    if _INTERRUPTED[-1] == signal.SIGTERM:
        sys.exit(128 + signal.SIGTERM)
    _fail("interrupted", 130)


def entry() -> None:
    """The console script: main(), then leave without tearing the interpreter down.

    Freeing matplotlib's and numpy's objects one by one at exit costs about 0.2 s of
    a 2 s run and gains nothing: every file is already closed and renamed into place.
    """

    def terminated(signum: int, frame: object) -> None:
        _INTERRUPTED.append(signum)
        raise SystemExit(128 + signum)  # unwinds like Ctrl-C: temporary files are removed

    def interrupted(signum: int, frame: object) -> None:
        _INTERRUPTED.append(signum)
        raise KeyboardInterrupt

    try:
        _hold_closed_streams()
        signal.signal(signal.SIGTERM, terminated)
        if signal.getsignal(signal.SIGINT) in (
            signal.default_int_handler,
            _interrupted_while_starting,
        ):
            signal.signal(signal.SIGINT, interrupted)
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:  # between installing the handler and main()'s own try
        _say("shrink: error: interrupted")
        code = 130
    try:
        code = _finish_stdout(code)
    except KeyboardInterrupt:  # while waiting for the reader of a pipe
        _silence_stdout()
        _say("shrink: error: interrupted")
        code = 130
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
    import multiprocessing

    if multiprocessing.active_children():  # never skip the joins that reap workers
        sys.exit(code)
    os._exit(code)


def _hold_closed_streams() -> None:
    """Started with stdin, stdout or stderr closed (``>&-``): park /dev/null on that
    descriptor, so that no file opened later takes its number (and receives another
    program's output). Python has already set sys.stdout (or sys.stderr) to None; it
    stays None, so that the commands can say the stream is closed."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def _finish_stdout(code: int) -> int:
    """Flush stdout; on success with stdout a pipe, wait (at most READER_WAIT seconds)
    for the reader to take what is left in it. A reader that leaves without reading
    everything (``shrink fit --json | head -c 10``) makes the exit code 141, as a large
    output would, whatever the timing."""
    if sys.stdout is None:
        return code
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        return 141 if code == 0 else code
    except (OSError, ValueError):
        _silence_stdout()
        return code or 1
    if code != 0:
        return code
    return 141 if _reader_left_early(1, READER_WAIT) else code


def _reader_left_early(fd: int, limit: float) -> bool:
    """True if ``fd`` is a pipe whose reader has gone while output is still unread in it."""
    import fcntl
    import select
    import stat
    import struct
    import termios
    import time

    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return False
        poller = select.poll()
        poller.register(fd, 0)  # POLLERR (no reader left) is always reported
        deadline = time.monotonic() + limit
        while True:
            unread = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
            if unread == 0:
                return False
            if any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(20)):
                return True
            if time.monotonic() > deadline:  # a live reader that reads later: not lost
                return False
    except OSError:
        return False


def _silence_stdout() -> None:
    from shrinkcli.output import _silence_stdout as silence

    silence()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """warnings.showwarning for the CLI: a library's leftover warning becomes one plain
    'shrink: warning:' line (each text once), or nothing with --quiet."""
    _warn_line(_plain_warning(str(message), category.__name__))


def _warn_line(text: str | None) -> None:
    if not text or _QUIET or text in _SHOWN:
        return
    _SHOWN.add(text)
    _say(f"shrink: warning: {text}")


def _say(line: str) -> None:
    """One line on stderr; nothing if stderr is closed (never on stdout instead)."""
    if sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):
            print(line, file=sys.stderr)


def _plain_warning(text: str, kind: str) -> str | None:
    import re

    first = " ".join(text.split()) or kind
    # "missing from current font." in matplotlib 3.7, "missing from font(s) NAME." later
    if re.match(r"Glyph \d+ .*missing from (current )?font", first):
        font = re.search(r"font\(s\) (.+?)\.?$", first)
        name = f" ({font.group(1)})" if font else ""
        return f"the font{name} lacks some characters of the title or labels; they show as boxes"
    if "identical low and high" in first or "singular transformation" in first:
        return None  # matplotlib widens such an axis itself; nothing for the user to do
    return cut(first, 200)


def _plain_log(text: str) -> str | None:
    if text.startswith(("mkdir -p failed", "Matplotlib is building the font cache")):
        return None  # the next message says what matters, or there is nothing to do
    if text.startswith(
        ("Matplotlib created a temporary cache directory", "Matplotlib created a temporary config")
    ):  # the second: matplotlib 3.7
        return (
            "matplotlib cannot write its settings folder (MPLCONFIGDIR or "
            "~/.config/matplotlib), so every start is slower; set MPLCONFIGDIR to a "
            "writable folder"
        )
    return cut(text, 200)


@contextlib.contextmanager
def _plain_log_messages() -> Iterator[None]:
    """Library log messages without a handler (matplotlib's about its cache folder)
    become one 'shrink: warning:' line, as warnings do."""
    import logging

    class Plain(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            with contextlib.suppress(Exception):
                _warn_line(_plain_log(" ".join(record.getMessage().split())))

    before = logging.lastResort
    logging.lastResort = Plain(logging.WARNING)
    try:
        yield
    finally:
        logging.lastResort = before


def _lighter_matplotlib() -> None:
    """In the CLI process only: skip matplotlib's generated Artist.set() docstrings.

    matplotlib builds a signature and a long docstring for every Artist subclass
    as it is defined, about a third of its import time. The command line never
    reads them, so the CLI (never the library) turns that off before the import.
    Artist.set itself is untouched: every subclass falls back to it.
    """
    from matplotlib import artist

    if hasattr(artist.Artist, "_update_set_signature_and_docstring"):
        artist.Artist._update_set_signature_and_docstring = classmethod(lambda cls: None)


def _fail(message: str, code: int) -> None:
    if message:
        _say(f"shrink: error: {_one_line(message)}")
    sys.exit(code)


def _one_line(message: str) -> str:
    """A message on one line, every quoted value in it cut to 60 characters and the
    whole to 1000: a value from a file or flag never fills the screen."""
    import re

    text = " ".join(message.split())
    quoted = r"(?<!\w)'([^']{61,})'(?!\w)"  # 'value', not the text between two values
    text = re.sub(quoted, lambda m: f"'{cut(m.group(1), 59)}'", text)
    return cut(text, 1000)
