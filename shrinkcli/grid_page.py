"""The grid's interactive page (``shrink grid FILES... -o grid.html``).

The panels of ``shrink grid`` as plotly subplots in the grid's rows and columns,
all in the grid's shared window, with one legend, the grid's title and caption, and
ONE pooling slider (with play/pause) that moves every panel in step along its own
pooling path (the frames of ``--path pooling``; every panel has the same number).
Each panel is titled and captioned as in the GIF (fitted SDs; truth RMSE), and
hover (or tap) names the cluster (label, size, OLS, mixed, truth) and draws its
track darker.

Each panel is the single page's figure (shrinkcli.page.page_figure, in the shared
window) put on its own axes; its moving points are one trace, and a slider step is
one plotly frame that moves all of them. The file is one offline HTML page, plotly.js
inline, written through shrinkcli.output's one writer.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from shrinkcli.page import (
    FONT,
    PLAY,
    TEXT,
    TICK_TEXT,
    _axis,
    _note,
    check_page_options,
    html_page,
    page_figure,
    page_script,
    write_html,
)
from shrinkcli.render.dial import format_kappa

ROW_PX = 260  # a panel's plot height in page pixels; the width follows the window
TOP = 84  # the grid's title and the first row's panel titles
GAP = 88  # between rows: x tick labels, the panel's two caption lines, the next title
UNDER = 84  # under the last row: x tick labels, caption lines, the x label
H_GAP = 0.03  # between columns, a fraction of the plotting width
MIN_PANEL_PX = 300  # a panel is at least this wide (the page scrolls sideways if need be)
TITLE_CHARS = 46  # a panel title longer than this is set on two lines
TITLE_LINE_PX = 15  # the room a second title line takes
MARGIN = {"l": 80, "r": 200}
CAPTION_PX = 15  # one caption line

# The page's script (shrinkcli.page.page_script) with one highlighted track per panel
# (the hovered cluster's, in its own panel) and the faint tracks of every panel
# rebuilt from the frames (frame k holds panel p's moving points as its data[p]).
_GRID_JS = page_script(
    tracks="""  var nf = fig.frames.length, w = nf + 1, owner = {};
  var tracks = S.panels.map(function (P, p) {
    var nm = P.moving_clusters.length;
    var tx = new Float32Array(nm * w).fill(NaN), ty = new Float32Array(nm * w).fill(NaN);
    fig.frames.forEach(function (frame, k) {
      var x = decode(frame.data[p].x), y = decode(frame.data[p].y);
      for (var j = 0; j < nm; j++) { tx[j * w + k] = x[j]; ty[j * w + k] = y[j]; }
    });
    if (P.draw_tracks) { fig.data[P.tracks].x = tx; fig.data[P.tracks].y = ty; }
    P.moving_clusters.forEach(function (g, j) { owner[g] = [p, j]; });
    return {x: tx, y: ty};
  });
""",
    hover="""  var shown = null;
  function hide() {
    if (shown === null) { return; }
    Plotly.restyle(gd, {x: [[]], y: [[]]}, [S.panels[shown[0]].highlight]);
    shown = null;
  }
  function show(g) {
    var o = owner[g];
    if (!o || (shown && shown[0] === o[0] && shown[1] === o[1])) { return; }
    hide();
    shown = o;
    var t = tracks[o[0]], j = o[1];
    Plotly.restyle(gd, {x: [Array.from(t.x.subarray(j * w, j * w + nf))],
                        y: [Array.from(t.y.subarray(j * w, j * w + nf))]},
                   [S.panels[o[0]].highlight]);
  }
  gd.style.minWidth = S.min_width + 'px';
""",
)


def write_grid_page(
    pictures,
    frames,
    settings,
    output: str | Path,
    *,
    shape: tuple[int, int],
    limits,
    title: str = "",
    caption: tuple[str, ...] = (),
    labels=None,
    plotlyjs: str = "inline",
) -> Path:
    """Write the grid's page: ``pictures`` (one per panel, row by row) in ``shape``
    (rows, cols), all in the shared window ``limits`` ((x0, x1), (y0, y1)), moved
    along ``frames`` (one Frames per panel, of the pooling path: pipeline.page_settings).
    ``caption`` is the grid's lines under the slider; ``labels`` (per panel, or None)
    name the clusters in the hover text."""
    text = grid_page_html(pictures, frames, settings, shape=shape, limits=limits, title=title,
                          caption=caption, labels=labels, plotlyjs=plotlyjs)  # fmt: skip
    return write_html(text, output)


def grid_page_html(pictures, frames, settings, *, shape, limits, title: str = "",
                   caption=(), labels=None, plotlyjs: str = "inline") -> str:  # fmt: skip
    """The grid's page as one string (see write_grid_page)."""
    check_page_options(plotlyjs)
    spec = grid_figure(pictures, frames, settings, shape=shape, limits=limits, title=title,
                       caption=caption, labels=labels)  # fmt: skip
    return html_page(spec, title=" ".join(title.split()) or "shrink grid",
                     height=spec["layout"]["height"], script=_GRID_JS,
                     tracks=[panel["tracks"] for panel in spec["page"]["panels"]],
                     plotlyjs=plotlyjs)  # fmt: skip


def grid_figure(pictures, frames, settings, *, shape, limits, title: str = "", caption=(),
                labels=None) -> dict[str, Any]:  # fmt: skip
    """The grid's plotly figure as a plain dict (data, layout, frames) plus ``page``
    (per panel: its trace numbers and moving clusters; the hover texts of all)."""
    rows, cols = shape
    n_panels = len(pictures)
    if n_panels > rows * cols:
        raise ValueError(f"{n_panels} panels do not fit {rows} x {cols}")
    if len(frames) != n_panels:
        raise ValueError("write_grid_page needs one Frames per panel")
    labels = list(labels) if labels is not None else [None] * n_panels
    xlim, ylim = (tuple(float(v) for v in lim) for lim in limits)
    specs = [
        page_figure(pic, fr, settings, labels=lab, limits=(xlim, ylim))
        for pic, fr, lab in zip(pictures, frames, labels, strict=True)
    ]
    n = len(specs[0]["frames"])
    if any(len(s["frames"]) != n for s in specs):
        raise ValueError("every panel must have the same number of frames")

    # -- geometry, in page pixels: rows of ROW_PX with GAP between them
    titles = [_two_lines(" ".join(pic.title.split())) for pic in pictures]
    extra = TITLE_LINE_PX if any(len(t) > 1 for t in titles) else 0
    top_px, gap = TOP + extra, GAP + extra
    plot_h = rows * ROW_PX + (rows - 1) * gap
    lines = list(caption) + _more_caption(pictures, frames, n)
    lines.append("Hover or tap a cluster for its numbers and its track")
    under = UNDER + 98 + CAPTION_PX * len(lines) + 24
    height = top_px + plot_h + under
    col_w = (1.0 - (cols - 1) * H_GAP) / cols

    def cell(p: int) -> tuple[list[float], list[float]]:
        r, c = divmod(p, cols)
        x0 = c * (col_w + H_GAP)
        top = 1.0 - r * (ROW_PX + gap) / plot_h
        return [x0, x0 + col_w], [max(0.0, top - ROW_PX / plot_h), top]

    def below(px: float) -> float:  # paper y of a point px pixels below the plotting area
        return -px / plot_h

    # -- the panels' traces on their own axes, one legend entry per kind
    data: list[dict[str, Any]] = []
    texts: list[str] = []
    panels: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    in_legend: set[str] = set()
    copies: dict[str, list[int]] = {}  # a kind of trace (its legend group) -> every panel's
    layout_axes: dict[str, Any] = {}
    annotations: list[dict[str, Any]] = []
    pic0 = pictures[0]
    for p, (pic, spec) in enumerate(zip(pictures, specs, strict=True)):
        ax = "" if p == 0 else str(p + 1)
        offset, first_cluster = len(data), len(texts)
        for trace in spec["data"]:
            t = {**trace, "xaxis": "x" + ax, "yaxis": "y" + ax}
            group = t.get("legendgroup") or t["name"]
            t["legendgroup"] = group
            if t.get("showlegend", True):
                t["showlegend"] = group not in in_legend
                in_legend.add(group)
            if "customdata" in t:
                t["customdata"] = [g + first_cluster for g in t["customdata"]]
            copies.setdefault(group, []).append(len(data))
            data.append(t)
        page = spec["page"]
        texts += page["texts"]
        panels.append(
            {
                "tracks": page["tracks"] + offset,
                "draw_tracks": page["draw_tracks"],
                "highlight": page["highlight"] + offset,
                "moving": page["moving"] + offset,
                "moving_clusters": [g + first_cluster for g in page["moving_clusters"]],
            }
        )
        for image in spec["layout"]["images"]:  # faint tracks as a picture (many clusters)
            images.append({**image, "xref": "x" + ax, "yref": "y" + ax})
        xdom, ydom = cell(p)
        c = p % cols
        x_axis = _axis("", xlim)
        x_axis.pop("title")
        y_axis = _axis(pic.ylabel if c == 0 else "", ylim)
        if c:
            y_axis.pop("title")
        layout_axes["xaxis" + ax] = {**x_axis, "domain": xdom, "anchor": "y" + ax,
                                     **({"matches": "x"} if p else {})}  # fmt: skip
        layout_axes["yaxis" + ax] = {**y_axis, "domain": ydom, "anchor": "x" + ax,
                                     "showticklabels": c == 0,
                                     **({"matches": "y"} if p else {})}  # fmt: skip
        annotations.append(
            {
                **_note(
                    "<br>".join(html.escape(t) for t in titles[p]), xdom[0], ydom[1], "left"
                ),  # fmt: skip
                "yanchor": "bottom",
                "yshift": 3,
                "font": {"size": 12, "color": "#333333"},
            }
        )
        if pic.caption:
            annotations.append(
                {
                    **_note(
                        "<br>".join(html.escape(line) for line in pic.caption),
                        xdom[0],
                        ydom[0],
                        "left",
                    ),  # fmt: skip
                    "yshift": -20,
                    "font": {"size": 10.5, "color": TICK_TEXT},
                }
            )

    # -- one slider (and play/pause) for all panels: the single page's, relabelled
    base = specs[0]["layout"]
    slider = dict(base["sliders"][0])
    frame_names = [f["name"] for f in specs[0]["frames"]]
    slider["steps"] = [
        {**step, "label": _step_label(k, n)} for k, step in enumerate(slider["steps"])
    ]
    slider["currentvalue"] = {**slider["currentvalue"], "prefix": ""}
    slider_y = below(UNDER + 4)
    slider["y"] = slider_y
    # each panel's own κ in its top right corner: the panels' paths differ, so the
    # slider says only where along them all are
    kappas = [None if f.kappa is None else [format_kappa(float(v)) for v in f.kappa[:n]]
              for f in frames]  # fmt: skip
    kappa_traces = []
    for p, values in enumerate(kappas):
        if values is None:
            continue
        ax = "" if p == 0 else str(p + 1)
        kappa_traces.append((len(data), values))
        data.append(
            {
                "type": "scatter",
                "name": "κ",
                "mode": "text",
                "x": [xlim[1]],
                "y": [ylim[1]],
                "text": ["κ = " + values[0]],
                "textposition": "bottom left",
                "textfont": {"size": 11, "color": TEXT},
                "hoverinfo": "skip",
                "showlegend": False,
                "xaxis": "x" + ax,
                "yaxis": "y" + ax,
            }
        )
    plot_frames = []
    for k in range(n):
        plot_frames.append(
            {
                "name": frame_names[k],
                "traces": [pp["moving"] for pp in panels] + [i for i, _ in kappa_traces],
                "data": [spec["frames"][k]["data"][0] for spec in specs]
                + [{"text": ["κ = " + values[k]]} for _, values in kappa_traces],
            }
        )
    menus = []
    for menu in base["updatemenus"]:
        menu = dict(menu)
        if any(b["label"] == PLAY for b in menu["buttons"]):
            menu["y"] = slider_y
        else:  # a toggle: it shows or hides that layer in every panel
            button = dict(menu["buttons"][0])
            (index,) = button["args"][1]
            kind = specs[0]["data"][index]
            every = copies[kind.get("legendgroup") or kind["name"]]
            button["args"] = [button["args"][0], every]
            button["args2"] = [button["args2"][0], every]
            menu["buttons"] = [button]
            menu["yanchor"] = "top"
            menu["y"] = 1.0 - (_legend_px(data) + 16 + 34 * (len(menus) - 1)) / plot_h
        menus.append(menu)

    annotations += [
        {
            **_note(html.escape(pic0.xlabel), 0.5, below(UNDER - 26), "center"),
            "font": {"size": 13, "color": TEXT},
        },  # fmt: skip
        _note("no pooling", 0.0, below(UNDER + 76), "left"),
        _note("the fitted models", 1.0, below(UNDER + 76), "right"),
        {
            **_note(
                "<br>".join(html.escape(line) for line in lines), 0.0, below(UNDER + 98), "left"
            ),  # fmt: skip
            "x": -60 / 1000,
        },
    ]
    layout = {
        **{
            k: base[k]
            for k in (
                "paper_bgcolor",
                "plot_bgcolor",
                "font",
                "hovermode",
                "hoverlabel",
                "showlegend",
                "legend",
            )
        },  # fmt: skip
        "height": height,
        "autosize": True,
        "margin": {**MARGIN, "t": top_px, "b": under},
        "title": {
            "text": html.escape(" ".join(title.split())),
            "x": 0.01,
            "xanchor": "left",
            "y": 1 - 14 / height,
            "yanchor": "top",
            "font": {"size": 17, "color": "#333333", "family": FONT},
        },
        **layout_axes,
        "sliders": [slider],
        "updatemenus": menus,
        "annotations": annotations,
        "images": images,
    }
    page = {"panels": panels, "texts": texts, "play": PLAY, "replay": specs[0]["page"]["replay"],
            "min_width": cols * MIN_PANEL_PX + MARGIN["l"] + MARGIN["r"]}  # fmt: skip
    return {"data": data, "layout": layout, "frames": plot_frames, "page": page}


def _legend_px(data) -> int:
    """About how tall the legend at the right is, in pixels: its title, an entry a
    line (the ellipses' two lines)."""
    entries = [t for t in data if t.get("showlegend", True)]
    return 30 + 29 * len(entries) + 15


def _more_caption(pictures, frames, n: int) -> list[str]:
    """What the single page's caption says that the grid's does not: point sizes, and
    singular fits' straight κ = ∞ start."""
    import numpy as np

    lines = []
    ranges = {(int(p.sizes.min()), int(p.sizes.max())) for p in pictures if not p.balanced}
    if len(ranges) == 1:
        ((lo, hi),) = ranges
        lines.append(f"Point area shows cluster size ({lo} to {hi} observations)")
    elif ranges:
        lines.append("Point area shows cluster size, in each panel from its smallest to its "
                     "largest cluster")  # fmt: skip
    if any(f.kappa is not None and np.isinf(np.asarray(f.kappa[1:n])).any() for f in frames):
        lines.append(
            "Singular fits: no κ reaches their OLS estimates, so the κ = ∞ part runs straight "
            "from them onto the fit's zero-variance direction (it is not a model)"
        )
    return lines


def _two_lines(title: str) -> list[str]:
    """A panel title as one line, or two split at the space nearest its middle when
    it is longer than TITLE_CHARS (a panel is about 300 pixels wide)."""
    if len(title) <= TITLE_CHARS or " " not in title:
        return [title]
    spaces = [i for i, ch in enumerate(title) if ch == " "]
    cut = min(spaces, key=lambda i: abs(i - len(title) / 2))
    return [title[:cut], title[cut + 1 :]]


def _step_label(k: int, n: int) -> str:
    if k == 0:
        return "κ = ∞ in every panel: no pooling (the by-cluster OLS estimates)"
    if k == n - 1:
        return "κ = 1 in every panel: the fitted mixed models"
    return f"step {k} of {n - 1} along each panel's pooling path (κ from ∞ to 1)"
