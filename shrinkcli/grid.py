"""Scenarios side by side: ``shrink grid FILES...`` and sweeps (``--sd-slope 0.1,0.25,1``).

    plan = plan_grid(["scenarios/baseline.toml", "scenarios/fewer_obs.toml"], flags)
    result = run_grid(plan, "two.gif")

Each panel is one scenario (a file merged with the flags, and one value of each
list), fitted exactly as ``shrink run``/``shrink fit`` would fit it alone, drawn
in one window shared by all panels, every panel moving in step (same frames,
same easing). Rows are the scenario files (or the first list's values), columns
the list's values (or the second list's); files or one list alone wrap into the
grid that fits the picture best (``cols`` to choose).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from shrinkcli.errors import UsageError
from shrinkcli.sweep import describe, flag_name, lists, panels

GRID_ONLY_KEYS = ("width", "height")  # the grid's size, not the files'


@dataclass(frozen=True)
class PanelPlan:
    """One panel: its title and the run values (flag names) that make it."""

    title: str
    values: dict[str, Any]


@dataclass(frozen=True)
class GridPlan:
    """What ``run_grid`` draws: panels in order (row by row), a fixed (rows, cols) when
    two dimensions decide it (else None), the picture's title and what the seed means."""

    panels: tuple[PanelPlan, ...]
    shape: tuple[int, int] | None
    title: str
    seed_note: str


@dataclass(frozen=True)
class GridResult:
    """Per panel its data, fits and Picture; the shared window; where it was written."""

    panels: tuple[PanelPlan, ...]
    data: tuple
    fits: tuple
    pictures: tuple
    window: tuple
    shape: tuple[int, int]
    size: tuple[int, int]
    output: Path | None
    seconds: float
    strip: bool = False  # random-intercept panels: window is (lo, hi) of the estimate


def plan_grid(files: list[str], flags: dict[str, Any], *, title: str | None = None,
              file_values: list[dict[str, Any]] | None = None) -> GridPlan:  # fmt: skip
    """Panels from scenario files (already read: ``file_values``) and the flags' lists."""
    from shrinkcli.config import merge

    given = {k: v for k, v in flags.items() if v is not None}
    sources = file_values if file_values is not None else [{}]
    if files and len(files) != len(sources):
        raise ValueError("plan_grid needs one file_values entry per file")
    rows = len(sources)
    swept = lists(given)
    if rows == 1 and not swept and not files:
        raise UsageError(
            "a grid needs panels: give scenario files, or a comma-separated list to a data "
            "flag (e.g. --sd-slope 0.1,0.25,1)"
        )
    out: list[PanelPlan] = []
    for k, file_vals in enumerate(sources):
        base = {k2: v for k2, v in file_vals.items() if k2 not in GRID_ONLY_KEYS}
        merged = merge(base, given)
        name = _file_title(files[k], file_vals) if files else ""
        for values in panels(merged, n_rows_given=rows):
            sweep_part = ", ".join(describe(key, values[key]) for key, _ in swept)
            values["title"] = ": ".join(p for p in (name, sweep_part) if p) or "Baseline"
            out.append(PanelPlan(title=values["title"], values=values))
    if len(out) < 2:
        raise UsageError(
            "a grid needs at least two panels: give two scenario files or a list of values"
        )
    shape = None
    if rows > 1 and swept:
        shape = (rows, len(swept[0][1]))
    elif len(swept) == 2:
        shape = (len(swept[0][1]), len(swept[1][1]))
    heading = _grid_title(files, swept) if title is None else title
    return GridPlan(tuple(out), shape, heading, seed_note(out))


def _varying(plan: GridPlan) -> set[str]:
    """The values that differ between panels (the lists, and what the files set)."""
    keys = {k for p in plan.panels for k in p.values} - {"title"}
    return {k for k in keys if len({repr(p.values.get(k)) for p in plan.panels}) > 1}


def _file_title(path: str, values: dict[str, Any]) -> str:
    return values.get("title") or values.get("name") or Path(path).stem


def _grid_title(files: list[str], swept: list) -> str:
    if swept:
        names = " and ".join(k.replace("_", " ") for k, _ in swept)
        return f"Shrinkage as {names} change{'s' if len(swept) == 1 else ''}"
    return f"{len(files)} scenarios side by side"


def seed_note(plans: list[PanelPlan]) -> str:
    """What the panels' seeds mean for the reader: the same clusters, or not.

    R's create_data draws x (one number per row) before the cluster effects, so the
    same seed gives the same clusters only when the number of rows is the same.
    """
    vals = [p.values for p in plans]
    if any(v.get("data") is not None for v in vals):
        return ""
    from shrinkcli.scenario import Scenario

    sims = [Scenario().with_changes(**{k: v.get(k) for k in _SIM_KEYS}) for v in vals]
    seeds = {s.seed for s in sims}
    designs = [(s.seed, s.n_cluster, s.obs_per_cluster) for s in sims]
    if len(set(designs)) == 1:
        return (
            f"Same seed ({sims[0].seed}) in every panel: the same clusters, from the same random "
            "draws, change from panel to panel"
        )
    why = "R's create_data draws x, one number per row, before the cluster effects"
    distinct = len(set(designs)) == len(designs)
    if distinct and len(seeds) == len(designs):
        return "Each panel has its own seed: different clusters in each"
    if len({d[1:] for d in designs}) == 1:  # only the seeds differ
        return (
            "Panels with the same seed show the same clusters, from the same random draws; "
            "another seed, other clusters"
        )
    if len(seeds) == 1:
        same = sims[0].seed
        if distinct:
            return f"Same seed ({same}) in every panel, but {why}: other rows, other clusters"
        return (
            f"Same seed ({same}) in every panel, but {why}: only panels with the same numbers "
            "of clusters and observations per cluster show the same clusters"
        )
    if distinct:
        return f"Different clusters in each panel: other seeds, and {why}"
    return (
        "Only panels with the same seed and the same numbers of clusters and observations per "
        f"cluster show the same clusters ({why})"
    )


_SIM_KEYS = ("obs_per_cluster", "n_cluster", "intercept", "beta", "sigma", "sd_int", "sd_slope",
             "cor", "balanced", "seed")  # fmt: skip


def check_plan(plan: GridPlan, width: int | None, height: int | None, cols: int | None):
    """Every panel's values, and the picture they share, checked before any work.

    Returns (per-panel Scenario or None, the grid's RenderSettings, (rows, cols), the
    PanelKind): panels are all planes or all strips (grid_strip.is_strip_grid).
    """
    from shrinkcli.grid_strip import is_strip_grid
    from shrinkcli.pipeline import check_values

    first_values = plan.panels[0].values
    if (
        first_values.get("layout") == "explain"
        or first_values.get("story")
        or (first_values.get("highlight") is not None)
    ):
        raise UsageError(
            "--layout explain, --story and --highlight explain one scenario, not a grid of "
            "panels: give each flag one value (shrink run) to use them"
        )
    varying = _varying(plan)
    checked = []
    for p in plan.panels:
        try:
            scenario, settings = check_values(p.values)
        except UsageError as exc:  # named by its panel when a value of that panel is wrong
            own = any(flag_name(k) in str(exc) for k in varying)
            raise UsageError(f"panel {p.title!r}: {exc}" if own else str(exc)) from None
        checked.append((scenario, settings))
    kind = _kind(is_strip_grid(plan))
    first = checked[0][1]
    for p, (_, s) in zip(plan.panels, checked, strict=True):
        differ = [k for k in ("frames", "hold", "fps", "ease", "ellipses", "truth", "zoom", "path",
                              "order") if getattr(s, k) != getattr(first, k)]  # fmt: skip
        if differ:
            k = differ[0]
            raise UsageError(
                f"panel {p.title!r} has {k} = {getattr(s, k)!r} but "
                f"{plan.panels[0].title!r} has {getattr(first, k)!r}; panels move in step: "
                f"give --{k} for all"
            )
    if cols is not None and plan.shape is not None:
        raise UsageError(
            f"--cols: these panels form {plan.shape[0]} rows x {plan.shape[1]} columns "
            "already (files x values, or two lists); drop --cols"
        )
    if cols is not None and not 1 <= cols <= len(plan.panels):
        raise UsageError(f"--cols {cols} must be from 1 to {len(plan.panels)} (the panels)")
    shape, size = grid_arrangement(len(plan.panels), width, height, cols, plan.shape)
    settings = replace(first, width=size[0], height=size[1])  # checks each is a size
    least = (MIN_CELL[0] * shape[1], MIN_CELL[1] * shape[0] + MIN_CHROME)
    if size[0] < least[0] or size[1] < least[1]:
        raise UsageError(
            f"{shape[0]} x {shape[1]} panels need at least {least[0]}x{least[1]} pixels to be "
            f"read, got {size[0]}x{size[1]}; give a larger --width/--height or --cols"
        )
    return [c[0] for c in checked], settings, shape, kind


# columns for n panels when no size is given: near 4:3 overall, rows filled
PRESET_COLS = {2: 2, 3: 3, 4: 2, 5: 3, 6: 3, 7: 4, 8: 4, 9: 3, 10: 4, 11: 4, 12: 4}
CELL_SIZE = (400, 346)  # pixels a cell when no size is given (even: MP4 needs it)
CHROME = 108  # the title, legend, x label and caption lines
MIN_CELL, MIN_CHROME = (200, 150), 90  # smaller, and a panel's text cannot fit it


def grid_arrangement(n: int, width: int | None, height: int | None, cols: int | None = None,
                     shape: tuple[int, int] | None = None):  # fmt: skip
    """((rows, cols), (width, height)) for n panels.

    A fixed ``shape`` (two dimensions) or ``cols`` decide the columns; else, with a
    size given, the columns whose cells come out largest at the planes' 4:3 shape,
    and without one PRESET_COLS. A size not given is CELL_SIZE a cell plus CHROME.
    """
    import math

    if shape is None:
        if cols is None and width is None and height is None:
            cols = PRESET_COLS.get(n, math.ceil(math.sqrt(n)))
        elif cols is None:
            w = CELL_SIZE[0] * min(n, 3) if width is None else max(width, 1)
            h = CELL_SIZE[1] * math.ceil(n / 3) + CHROME if height is None else max(height, 1)

            def cell(c: int) -> float:
                return min(w / c / 4, (h - CHROME) / math.ceil(n / c) / 3)

            cols = max(range(1, n + 1), key=lambda c: (cell(c), -c))
        shape = (math.ceil(n / cols), cols)
    rows, cols = shape
    size = (
        CELL_SIZE[0] * cols if width is None else width,
        CELL_SIZE[1] * rows + CHROME if height is None else height,
    )
    return shape, size


def run_grid(plan: GridPlan, output: str | Path | None, *, width: int | None = None,
             height: int | None = None, cols: int | None = None,
             progress=None) -> GridResult:  # fmt: skip
    """Fit every panel and draw them as one animation or still (by ``output``'s suffix)."""
    from shrinkcli.pipeline import check_output, fit_data, is_page, load_data

    start = time.perf_counter()
    scenarios, settings, shape, kind = check_plan(plan, width, height, cols)
    if not kind.page and is_page(output):
        raise UsageError(
            "-o .html: the grid's page draws planes only; for random-intercept models write "
            ".gif, .mp4 or .png, or each strip's page alone with shrink run -o strip.html"
        )
    check_output(output, settings)
    datas, fitted, read = [], [], {}
    for p, scenario in zip(plan.panels, scenarios, strict=True):
        if p.values.get("data") is None:
            data = load_data(p.values, scenario)
        else:  # a file read once, whatever number of panels use it (stdin, a FIFO)
            key = tuple(str(p.values.get(k)) for k in ("data", "y", "x", "cluster", "formula"))
            data = read[key] if key in read else read.setdefault(key, load_data(p.values, None))
        datas.append(data)
        fitted.append(
            fit_data(
                data,
                reml=not p.values.get("ml"),
                engine=p.values.get("engine") or "shrink",
                formula=p.values.get("formula"),
            )  # fmt: skip
        )
    _check_columns(plan, datas, settings)
    pictures = [
        kind.picture(p.title, d, f, s, settings)
        for p, d, f, s in zip(plan.panels, datas, fitted, scenarios, strict=True)
    ]
    if len({f.method for f in fitted}) > 1:  # say which panel is which
        pictures = [
            replace(pic, caption=(f"{f.method}: {pic.caption[0]}", *pic.caption[1:]))
            for pic, f in zip(pictures, fitted, strict=True)
        ]
    limits = kind.window(pictures, settings)
    path = None
    if output is not None:
        path = _draw(plan, kind, pictures, datas, fitted, settings, shape, limits, output,
                     progress)  # fmt: skip
    return GridResult(plan.panels, tuple(datas), tuple(fitted), tuple(pictures), limits, shape,
                      (settings.width, settings.height), path,
                      time.perf_counter() - start, kind is not PLANE)  # fmt: skip


def _check_columns(plan: GridPlan, datas, settings) -> None:
    """Panels share axes only if they speak of the same columns (simulated data are
    y and x); --truth needs every panel simulated."""
    names = [d.names[:2] for d in datas]
    for p, d, own in zip(plan.panels, datas, names, strict=True):
        if own != names[0]:
            raise UsageError(
                f"panels {plan.panels[0].title!r} and {p.title!r} have different axes (columns "
                f"{_pair(names[0])} vs {_pair(own)}); a grid compares scenarios on the same "
                "columns: draw the others in a grid of their own"
            )
        if settings.truth and d.truth is None:
            raise UsageError(
                f"--truth needs the true cluster effects, which only simulated data have; "
                f"panel {p.title!r} reads {d.source}: drop --truth"
            )


def _pair(names) -> str:
    return " and ".join(n for n in names if n)


def _picture(title: str, data, fits, scenario, settings):
    from shrinkcli.pipeline import make_picture

    pic = make_picture(data, fits, scenario=scenario, title=title, settings=settings)
    return replace(pic, caption=panel_caption(fits, data))


def panel_caption(fits, data) -> tuple[str, ...]:
    """Two short lines under a panel: the fitted SDs; the truth RMSE, OLS -> mixed."""
    import math

    import numpy as np

    from shrinkcli.pipeline import short_number as f
    from shrinkcli.summary import truth_rmse

    sd = np.sqrt(np.maximum(np.diag(fits.re_cov), 0))
    lines = [
        f"SD int {f(sd[0])}, slope {f(sd[1])}, resid {f(math.sqrt(fits.sigma2))}"
        + (" (singular)" if fits.singular else "")
    ]
    rmse = truth_rmse(fits, data.truth)
    if rmse is not None:
        o, m = rmse["ols"], rmse["mixed"]
        lines.append(
            f"RMSE int {f(o['intercept'])} → {f(m['intercept'])}, "
            f"slope {f(o['slope'])} → {f(m['slope'])}"
        )
    return tuple(lines)


def shared_window(pictures, settings) -> tuple:
    """One window (xlim, ylim) holding every plane's own window (so every mixed estimate)."""
    from shrinkcli.draw import axis_limits

    boxes = [axis_limits(p, settings) for p in pictures]
    xlim = (min(b[0][0] for b in boxes), max(b[0][1] for b in boxes))
    ylim = (min(b[1][0] for b in boxes), max(b[1][1] for b in boxes))
    return xlim, ylim


def _beyond(pictures, limits) -> tuple[int, int]:
    from shrinkcli import window

    return (sum(int(window.outside(p.ols, *limits).sum()) for p in pictures),
            sum(int(window.outside(p.mixed, *limits).sum()) for p in pictures))  # fmt: skip


def _scene(datas, fitted, pictures, settings):
    """(layout class, pictures, each panel's Frames, tracks) for the planes."""
    from shrinkcli.pipeline import make_frames
    from shrinkcli.render.grid import GridLayout, tracks_of

    frames = [make_frames(d, f, settings) for d, f in zip(datas, fitted, strict=True)]
    return GridLayout, pictures, frames, [tracks_of(f) for f in frames]


def _window_json(limits) -> dict[str, list[float]]:
    (x0, x1), (y0, y1) = limits
    return {"intercept": [x0, x1], "slope": [y0, y1]}


@dataclass(frozen=True)
class PanelKind:
    """What a grid of planes (PLANE) and a grid of strips (grid_strip.STRIP) do
    differently; the grid itself (plan, fits, arrangement, caption, encoding) is one."""

    picture: Callable[..., Any]  # (title, data, fits, scenario, settings) -> its picture
    window: Callable[..., tuple]  # (pictures, settings) -> the shared window
    beyond: Callable[..., tuple[int, int]]  # (pictures, window) -> estimates beyond it
    scene: Callable[..., tuple]  # (datas, fits, pictures, settings) -> _scene's four
    window_json: Callable[[tuple], dict]  # the window in --json
    sds: str  # what the panels' captions give ({what}: the strip's mean or intercept)
    truth: str  # what their RMSE compares
    scaled: str  # what the pooling path scales by κ
    notes: Callable[..., list[str]] = lambda plan, pictures: []
    page: bool = True  # the grid has an interactive page


PLANE = PanelKind(
    picture=_picture,
    window=shared_window,
    beyond=_beyond,
    scene=_scene,
    window_json=_window_json,
    sds="SDs of the random intercepts and slopes and the residual",
    truth="RMSE against the true effects, OLS → mixed",
    scaled="covariance",
)


def grid_caption(plan: GridPlan, kind: PanelKind, pictures, limits,
                 settings) -> tuple[str, ...]:  # fmt: skip
    from shrinkcli import window

    lines = []
    if plan.seed_note:
        lines.append(plan.seed_note + ".")
    edge = window.beyond_edge_line(*kind.beyond(pictures, limits))
    if edge:
        lines.append(f"All panels: {edge[0].lower()}{edge[1:]}")
    method = {f"{'ML' if p.values.get('ml') else 'REML'}" for p in plan.panels}
    truth = pictures[0].truth is not None
    sds = kind.sds.format(what=getattr(pictures[0], "what", ""))
    lines.append(f"{'/'.join(sorted(method))} fits; {sds}" + (f"; {kind.truth}" if truth else ""))
    lines += kind.notes(plan, pictures)
    if settings.path == "pooling":
        lines.append(f"Each frame a model on the pooling path ({kind.scaled} × κ, κ = ∞ → 1)")
    return tuple(lines)


def _draw(plan, kind, pictures, datas, fitted, settings, shape, limits, output,
          progress) -> Path:  # fmt: skip
    from shrinkcli.encode import write_animation, write_still
    from shrinkcli.pipeline import is_page, make_frames, page_settings
    from shrinkcli.render.grid import GridStream

    if is_page(output):  # the interactive page: its slider runs along the pooling path
        from shrinkcli.grid_page import write_grid_page

        on_path = page_settings(settings)
        frames = [make_frames(d, f, on_path) for d, f in zip(datas, fitted, strict=True)]
        return write_grid_page(pictures, frames, settings, output, shape=shape, limits=limits,
                               title=plan.title,
                               caption=grid_caption(plan, kind, pictures, limits, on_path),
                               labels=[d.labels for d in datas])  # fmt: skip
    layout, pictures, frames, tracks = kind.scene(datas, fitted, pictures, settings)
    scene = layout(
        list(pictures),
        settings,
        shape=shape,
        limits=limits,
        title=plan.title,
        captions=[p.caption for p in pictures],
        caption=grid_caption(plan, kind, pictures, limits, settings),
        tracks=tracks,
    )
    stream = GridStream(scene, frames)
    output = Path(output)
    if output.suffix.lower() == ".png":
        return write_still(stream.draw(frames[0].n_frames - 1), output)
    return write_animation(stream, output, fps=settings.fps, n_frames=frames[0].n_frames,
                           progress=progress)  # fmt: skip


def _kind(strip: bool) -> PanelKind:
    if not strip:
        return PLANE
    from shrinkcli.grid_strip import STRIP

    return STRIP


def grouped_warnings(result: GridResult) -> list[str]:
    """Each distinct fit warning once, after the panels it concerns (at most three named)."""
    panels_of: dict[str, list[str]] = {}
    for panel, fits in zip(result.panels, result.fits, strict=True):
        for message in fits.warnings:
            panels_of.setdefault(message, []).append(panel.title)
    lines = []
    for message, titles in panels_of.items():
        if len(titles) == 1:
            lines.append(f"{titles[0]}: {message}")
            continue
        named = "; ".join(titles[:3]) + ("; …" if len(titles) > 3 else "")
        lines.append(f"{len(titles)} panels ({named}): {message}")
    return lines


def describe_grid(result: GridResult) -> dict[str, Any]:
    """``shrink grid --json``: panels (title, values, fit summary), window, arrangement."""
    from shrinkcli.summary import to_json

    panels_doc = []
    for p, d, f in zip(result.panels, result.data, result.fits, strict=True):
        doc = to_json(f, truth=d.truth, source=d.source)
        values = {k: v for k, v in p.values.items() if v is not None and k != "title"}
        panels_doc.append({"title": p.title, "values": values, "fit": doc})
    window = _kind(result.strip).window_json(result.window)
    return {
        "output": None if result.output is None else str(result.output),
        "rows": result.shape[0],
        "cols": result.shape[1],
        "size": list(result.size),
        "window": window,
        "panels": panels_doc,
    }
