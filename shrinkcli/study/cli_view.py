"""`shrink study` on the command line: progress bar, interruption, the printed table."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from shrinkcli.study.report import format_value
from shrinkcli.study.runner import CHUNK_DIR, chunk_files, outputs, plan, run_study
from shrinkcli.study.spec import read_study


def run_from_cli(
    file: str,
    *,
    out_dir: str,
    scheduler: str | None,
    jobs: int | None,
    as_json: bool,
    quiet: bool,
    fail: Callable[[str, int], None],
) -> None:
    from shrinkcli.output import stdout_guard
    from shrinkcli.study.report import summary_doc

    study = read_study(file)  # a malformed file stops here, before any work
    folder = Path(out_dir)
    total = len(plan(study).tasks)
    try:
        with _progress_bar(quiet) as progress:
            summary = run_study(
                study, out_dir=folder, scheduler=scheduler, jobs=jobs, progress=progress
            )
    except KeyboardInterrupt:
        kept = len(list(chunk_files(folder)))
        fail(
            f"interrupted; {min(kept, total)} of {total} chunks are saved in "
            f"{folder / CHUNK_DIR}: run the same command again to resume",
            130,
        )
        return
    failed = int(summary["failed"].sum())
    if failed:
        say(
            f"shrink: warning: {failed} of {int(summary['reps'].sum())} replications failed; "
            f"see {outputs(folder)['replications.csv']} (columns status and note)"
        )
    if not quiet:
        attrs = summary.attrs
        say(
            f"shrink: study {study.name}: {len(summary)} cells x {study.reps} replications "
            f"on {attrs['engine']} in {attrs['seconds']:.1f} s; outputs in {folder}"
        )
    if sys.stdout is None:
        return
    with stdout_guard():
        if as_json:
            print(json.dumps(summary_doc(study, summary), indent=2, allow_nan=False))
        else:
            sys.stdout.write(table(study, summary))
        sys.stdout.flush()


def say(line: str) -> None:
    """One line on stderr; nothing if stderr is closed."""
    if sys.stderr is not None:
        with contextlib.suppress(OSError, ValueError):
            print(line, file=sys.stderr)


def table(study, summary) -> str:
    """The summary as aligned text: grid values, RMSE gains (± 1.96 SE), singular fits."""
    from shrinkcli.study.report import column_name

    keys = [column_name(k) for k in study.grid]
    head = [*keys, "gain intercept", "gain slope", "singular", "coverage", "failed"]
    rows = []
    for rec in summary.to_dict("records"):
        cells = [format_value(rec[k]) for k in keys]
        for metric in ("gain_intercept", "gain_slope"):
            cells.append(_pct(rec[f"{metric}_mean"], rec[f"{metric}_se"]))
        cells.append(_pct(rec["singular_mean"], None))
        cells.append(_pct(rec["covers_mean"], None))
        cells.append(str(rec["failed"]))
        rows.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines) + "\n"


def _pct(mean: float, se: float | None) -> str:
    if mean != mean:
        return "NA"
    if se is None or se != se:
        return f"{100 * mean:.1f}%"
    return f"{100 * mean:.1f}% ± {196 * se:.1f}"


@contextlib.contextmanager
def _progress_bar(quiet: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A bar with replications done and the time left, on a terminal only. It redraws
    when a chunk arrives (no refresh thread, so worker processes fork from a process
    with a single thread)."""
    if quiet or sys.stderr is None or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("replications"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
    )
    with Progress(
        *columns, console=Console(stderr=True), transient=True, auto_refresh=False
    ) as bar:
        task = bar.add_task("study", total=None)
        started = []

        def update(done: int, total: int) -> None:
            if not started:  # chunks saved by an earlier run do not count toward the speed
                started.append(done)
                bar.reset(task, total=total, completed=done)
            else:
                bar.update(task, completed=done)
            bar.refresh()

        yield update
