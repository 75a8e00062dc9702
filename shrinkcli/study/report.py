"""A study's results: the replications table, the summary per cell, and the plot."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from shrinkcli.study.chunk import COLUMNS
from shrinkcli.study.spec import Study

# per cell: the mean and Monte-Carlo standard error of each (over its "ok" replications)
METRICS = (
    "rmse_ols_intercept", "rmse_mixed_intercept", "gain_intercept",
    "rmse_ols_slope", "rmse_mixed_slope", "gain_slope",
    "closer", "est_sd_intercept", "est_sd_slope", "est_corr", "est_sigma",
    "singular", "covers", "converged",
)  # fmt: skip


def column_name(key: str) -> str:
    """A grid key as a column: obs-per-cluster -> obs_per_cluster."""
    return key.replace("-", "_")


def replications_table(study: Study, results: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """replications.csv's columns: cell, rep, the grid values, then chunk.COLUMNS."""
    cells = study.cells
    cell = np.concatenate([np.full(r["count"], r["cell"], dtype=np.int64) for r in results])
    rep = np.concatenate([np.arange(r["first"], r["first"] + r["count"]) for r in results])
    out: dict[str, np.ndarray] = {"cell": cell, "rep": rep.astype(np.int64)}
    for key in study.grid:
        values = [cells[i].values[key] for i in range(len(cells))]
        column = np.empty(len(values), dtype=object)
        column[:] = [_json_value(v) for v in values]
        out[column_name(key)] = column[cell]
    for name in COLUMNS:
        out[name] = np.concatenate([r["columns"][name] for r in results])
    with np.errstate(divide="ignore", invalid="ignore"):
        for part in ("intercept", "slope"):
            out[f"gain_{part}"] = 1.0 - out[f"rmse_mixed_{part}"] / out[f"rmse_ols_{part}"]
    return out


def summarise(study: Study, results: list[dict[str, Any]]):
    """(summary DataFrame, replications columns). Means and SEs over each cell's "ok"
    replications where the value is finite (corr is NaN for a zero variance)."""
    import pandas as pd

    reps = replications_table(study, results)
    rows = []
    ok_all = reps["status"] == "ok"
    for cell in study.cells:
        mine = reps["cell"] == cell.index
        ok = mine & ok_all
        row: dict[str, Any] = {"cell": cell.index}
        row.update({column_name(k): _json_value(v) for k, v in cell.values.items()})
        row.update(reps=int(mine.sum()), ok=int(ok.sum()), failed=int((mine & ~ok_all).sum()))
        for name in METRICS:
            values = np.asarray(reps[name][ok], dtype=float)
            values = values[np.isfinite(values)]
            mean = float(np.mean(values)) if len(values) else math.nan
            se = (
                float(np.std(values, ddof=1) / math.sqrt(len(values)))
                if len(values) > 1
                else math.nan
            )
            row[f"{name}_mean"] = mean
            row[f"{name}_se"] = se
        rows.append(row)
    return pd.DataFrame(rows), reps


def _json_value(v: Any) -> Any:
    return bool(v) if isinstance(v, (bool, np.bool_)) else v


def _num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def summary_doc(study: Study, summary) -> dict[str, Any]:
    """summary.json: the study, then one object per cell with every mean and SE."""
    cells = []
    for cell, row in zip(study.cells, summary.to_dict("records"), strict=True):
        cells.append(
            {
                "cell": cell.index,
                "values": {k: _json_value(v) for k, v in cell.values.items()},
                "design": {
                    **{k: v for k, v in vars(cell.scenario).items() if k != "seed"},
                    "ml": cell.ml,
                },
                "reps": row["reps"],
                "ok": row["ok"],
                "failed": row["failed"],
                "metrics": {
                    m: {"mean": _num(row[f"{m}_mean"]), "se": _num(row[f"{m}_se"])} for m in METRICS
                },
            }
        )
    return {"study": study.describe(), "cells": cells}


def write_outputs(
    study: Study, folder: Path, summary, reps: dict[str, np.ndarray], results, *, plot: bool
) -> None:
    from shrinkcli.output import csv_lines, text_output
    from shrinkcli.study.runner import outputs

    paths = outputs(folder)
    with text_output(str(paths["replications.csv"])) as fh:
        fh.writelines(csv_lines(reps))
    columns = {c: summary[c].to_numpy() for c in summary.columns}
    with text_output(str(paths["summary.csv"])) as fh:
        fh.writelines(csv_lines(columns))
    with text_output(str(paths["summary.json"])) as fh:
        fh.write(json.dumps(summary_doc(study, summary), indent=2, allow_nan=False) + "\n")
    timing = {
        "cell": np.array([r["cell"] for r in results], dtype=np.int64),
        "first_rep": np.array([r["first"] for r in results], dtype=np.int64),
        "reps": np.array([r["count"] for r in results], dtype=np.int64),
        "seconds": np.array([r["seconds"] for r in results], dtype=float),
        "cpu_seconds": np.array([r["cpu_seconds"] for r in results], dtype=float),
        "worker": np.array([r["worker"] for r in results], dtype=object),
    }
    with text_output(str(paths["timing.csv"])) as fh:
        fh.writelines(csv_lines(timing))
    if plot:
        draw_study(study, summary, paths["study.png"])


# ----------------------------------------------------------------------------- the plot


def _series(study: Study, summary) -> tuple[str | None, list, list[tuple[str, list[int]]]]:
    """The x key, its values, and one (label, cell per x value) per line."""
    keys = list(study.grid)
    if not keys:
        return None, [""], [("", [0])]
    first = keys[0]
    xs = list(study.grid[first])
    others = keys[1:]
    lines: dict[tuple, list[int]] = {}
    for cell in study.cells:
        tag = tuple(cell.values[k] for k in others)
        lines.setdefault(tag, [])
        lines[tag].append(cell.index)
    labelled = []
    for tag, idx in lines.items():
        label = ", ".join(f"{k} = {format_value(v)}" for k, v in zip(others, tag, strict=True))
        labelled.append((label, idx))
    return first, xs, labelled


def format_value(v: Any) -> str:
    """A grid value as the TOML wrote it (true/false, 0.5, 12), for labels and tables."""
    if isinstance(v, bool):
        return "true" if v else "false"
    return f"{v:g}" if isinstance(v, float) else str(v)


def draw_study(study: Study, summary, path: Path) -> None:
    """study.png: the RMSE gain of partial over no pooling (intercept, slope) against the
    grid's first key, one line per value of the others, ±1.96 Monte-Carlo SE; and the
    singular-fit rate."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from shrinkcli.output import atomic_path

    first, xs, lines = _series(study, summary)
    fig = Figure(figsize=(12, 4.2), dpi=100, facecolor="#fffff8")
    axes = fig.subplots(1, 3)
    panels = (
        ("gain_intercept", "RMSE gain, intercepts (%)"),
        ("gain_slope", "RMSE gain, slopes (%)"),
        ("singular", "singular fits (%)"),
    )
    pos = np.arange(len(xs))
    colours = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, max(len(lines), 1)))
    width = 0.25 / max(len(lines), 1)
    for ax, (metric, title) in zip(axes, panels, strict=True):
        ax.set_facecolor("#fffff8")
        for (label, idx), colour, k in zip(lines, colours, range(len(lines)), strict=True):
            mean = 100 * summary[f"{metric}_mean"].to_numpy()[idx]
            se = 100 * summary[f"{metric}_se"].to_numpy()[idx]
            shift = (k - (len(lines) - 1) / 2) * width
            ax.errorbar(
                pos + shift, mean, yerr=1.96 * np.nan_to_num(se), marker="o", ms=4,
                capsize=3, lw=1.5, color=colour, label=label or None,
            )  # fmt: skip
        if metric != "singular":
            ax.axhline(0.0, color="0.5", lw=0.8, ls=":")
        ax.set_title(title, fontsize=11, color="0.25", loc="left")
        ax.set_xticks(pos, [format_value(v) for v in xs])
        ax.set_xlabel(first or "", color="0.3")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        ax.tick_params(colors="0.3")
    if any(label for label, _ in lines):
        axes[0].legend(fontsize=8, frameon=False)
    head = study.title or study.name
    fig.suptitle(
        f"{head}: {study.reps} replications a cell; gain = 1 - RMSE(mixed) / RMSE(OLS) "
        "against the true cluster effects; bars ±1.96 SE",
        fontsize=10,
        color="0.25",
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", facecolor=fig.get_facecolor())
