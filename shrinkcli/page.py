"""The interactive page: drag the pooling dial yourself (``shrink run -o page.html``).

One HTML file that needs nothing but a browser: plotly.js is inline, so the page
works offline and asks no other host for anything. It shows the GIF's
(intercept, slope) plane, in the GIF's window and colours, with

- a slider along the real pooling path (the frames of ``--path pooling``: κ from
  ∞, no pooling, down to 1, the fitted model; every frame but a singular fit's
  straight κ = ∞ start is exactly that model) and a play/pause button;
- hover (or tap) on a cluster: its label, size, OLS, mixed and (for simulated data)
  true estimates, and its track drawn darker;
- buttons (and legend entries) that show or hide the ellipses and the true effects;
- the caption (fitted SDs, truth RMSE) and the user's column names on the axes.

Plotly does the drawing, the slider and the animation (frames); a few lines of
JavaScript only draw the hovered cluster's track. Numbers travel as plotly.js typed
arrays (base64): the start (OLS) and end (mixed) frames as float64, exact, and the
frames between and the faint tracks as float32 (seven digits, far below a pixel),
which keeps the baseline page under 5 MB with plotly.js inline (under 300 KB with
``plotlyjs="cdn"``, an option for pages served online; never the default).

plotly is an optional extra (``pip install 'shrinkcli[html]'``); nothing here imports
it before a page or figure is asked for.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

MISSING_PLOTLY = "an .html page needs plotly: pip install 'shrinkcli[html]'"
PLOTLYJS = ("inline", "cdn")
HEIGHT = 820  # pixels; the width follows the window
MARGIN = {"l": 80, "r": 220, "t": 70, "b": 300}
TRUTH = "#333333"
TEXT = "#4D4D4D"  # ggplot's grey30, as the GIF
TICK_TEXT = "#7F7F7F"  # ggplot's grey50
FONT = "Helvetica Neue, Helvetica, Arial, sans-serif"
PLAY = "▶ Play"
TRACKS_AS_PICTURE = 500  # more moving clusters than this: the faint tracks are one PNG
TRACKS_PICTURE_PX = (1600, 900)  # its size: twice a panel of ~800x450 page pixels
BASE_MARKER = 7.0  # marker diameter in pixels (the GIF's 5 points at its 100 dpi)

# The page's script, shared by the single page and the grid's (shrinkcli.grid_page):
# it rebuilds what the file leaves out to stay small (the faint tracks, from the
# frames; the hover texts, from one list), draws the figure, and draws the hovered
# cluster's track darker. page_script puts each page's own two parts into it.
_SCRIPT_HEAD = """
(function () {
  var gd = document.getElementById('shrink-page');
  var fig = JSON.parse(document.getElementById('shrink-figure').textContent);
  var S = fig.page;
  function decode(v) {
    if (!v || typeof v.bdata !== 'string') { return v; }
    var s = atob(v.bdata), b = new Uint8Array(s.length);
    for (var i = 0; i < s.length; i++) { b[i] = s.charCodeAt(i); }
    return v.dtype === 'f4' ? new Float32Array(b.buffer) : new Float64Array(b.buffer);
  }
"""
_SCRIPT_TEXTS = """  fig.data.forEach(function (trace) {
    if (trace.customdata && !trace.hovertext) {
      trace.hovertext = trace.customdata.map(function (g) { return S.texts[g]; });
    }
  });
"""
_SCRIPT_START = """  Plotly.newPlot(gd, fig.data, fig.layout, fig.config).then(function () {
    return Plotly.addFrames(gd, fig.frames);
  }).then(function () {
    gd.on('plotly_hover', function (e) { show(e.points[0].customdata); });
    gd.on('plotly_click', function (e) { show(e.points[0].customdata); });
    gd.on('plotly_unhover', hide);
    gd.on('plotly_buttonclicked', function (e) {
      // Play at the end of the path starts again from no pooling
      if (e.button.label === S.play && gd.layout.sliders[0].active === nf - 1) {
        Plotly.animate(gd, null, S.replay);
      }
    });
    gd.setAttribute('data-ready', '1');
  });
})();
"""


def page_script(tracks: str, hover: str) -> str:
    """The page's script with its own parts: ``tracks`` rebuilds the faint tracks from
    the frames (and sets nf, the number of frames); ``hover`` defines show(g), which
    draws cluster g's track darker, and hide(), and whatever must run before drawing."""
    return _SCRIPT_HEAD + tracks + _SCRIPT_TEXTS + hover + _SCRIPT_START


_PAGE_JS = page_script(
    tracks="""  var nf = fig.frames.length, nm = S.moving_clusters.length, w = nf + 1;
  var tx = new Float32Array(nm * w).fill(NaN), ty = new Float32Array(nm * w).fill(NaN);
  fig.frames.forEach(function (frame, k) {
    var x = decode(frame.data[0].x), y = decode(frame.data[0].y);
    for (var j = 0; j < nm; j++) { tx[j * w + k] = x[j]; ty[j * w + k] = y[j]; }
  });
  if (S.draw_tracks) { fig.data[S.tracks].x = tx; fig.data[S.tracks].y = ty; }
""",
    hover="""  var track = new Array(S.texts.length).fill(-1);
  S.moving_clusters.forEach(function (g, j) { track[g] = j; });
  var shown = -1;
  function show(g) {
    var j = track[g];
    if (j === undefined || j < 0 || j === shown) { return; }
    shown = j;
    Plotly.restyle(gd, {x: [Array.from(tx.subarray(j * w, j * w + nf))],
                        y: [Array.from(ty.subarray(j * w, j * w + nf))]}, [S.highlight]);
  }
  function hide() {
    if (shown < 0) { return; }
    shown = -1;
    Plotly.restyle(gd, {x: [[]], y: [[]]}, [S.highlight]);
  }
""",
)

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8" />
<title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1" />
<style>body {{ margin: 0; background: {background}; }}</style>
<script>window.PlotlyConfig = {{MathJaxConfig: 'local'}};</script>
{plotlyjs}
</head>
<body>
<div id="shrink-page" style="width: 100%; height: {height}px;"></div>
<script id="shrink-figure" type="application/json">{figure}</script>
<script>{script}</script>
</body>
</html>
"""


def require_plotly() -> None:
    """Refuse, before any work, a page when plotly is not installed (exit 2)."""
    import importlib.util

    from shrinkcli.errors import UsageError

    if importlib.util.find_spec("plotly") is None:
        raise UsageError(MISSING_PLOTLY)


# ----------------------------------------------------------------------------- writing


def write_page(
    picture,
    frames,
    settings,
    output: str | Path,
    *,
    labels=None,
    plotlyjs: str = "inline",
) -> Path:
    """Write the interactive page for ``picture`` along ``frames`` (its movement
    frames are the slider's steps); ``labels`` name the clusters in the hover text.

    ``plotlyjs="cdn"`` loads plotly.js from its public CDN instead of inlining it:
    a much smaller file that needs the network.
    """
    return write_html(page_html(picture, frames, settings, labels=labels, plotlyjs=plotlyjs),
                      output)  # fmt: skip


def write_run_page(
    result, output: str | Path, *, settings=None, title: str = "", plotlyjs: str = "inline"
) -> Path:
    """The page of a finished run (pipeline.RunResult), e.g. ``plotlyjs="cdn"`` for a
    small page that loads plotly.js from its public CDN (it then needs the network)."""
    from shrinkcli.pipeline import make_frames, make_picture, page_settings
    from shrinkcli.settings import RenderSettings

    if settings is None:
        shown = result.picture
        settings = RenderSettings(zoom=shown["zoom"]) if shown else RenderSettings()
    picture = make_picture(result.data, result.fits, title=title)
    frames = make_frames(result.data, result.fits, page_settings(settings))
    return write_page(picture, frames, settings, output, labels=result.data.labels,
                      plotlyjs=plotlyjs)  # fmt: skip


def page_html(picture, frames, settings, *, labels=None, plotlyjs: str = "inline") -> str:
    """The page as one string (see write_page)."""
    check_page_options(plotlyjs)
    spec = page_figure(picture, frames, settings, labels=labels)
    return html_page(spec, title=" ".join(picture.title.split()) or "shrink", height=HEIGHT,
                     script=_PAGE_JS, tracks=[spec["page"]["tracks"]],
                     plotlyjs=plotlyjs)  # fmt: skip


def check_page_options(plotlyjs: str) -> None:
    """Refuse, before any work, an unknown ``plotlyjs`` and a missing plotly."""
    if plotlyjs not in PLOTLYJS:
        raise ValueError(f"plotlyjs must be one of {PLOTLYJS}, got {plotlyjs!r}")
    require_plotly()


def html_page(spec: dict[str, Any], *, title: str, height: int, script: str, tracks,
              plotlyjs: str) -> str:  # fmt: skip
    """The page of the figure ``spec`` (a single page's or a grid's) with its ``script``.
    What the script rebuilds is left out of the file: the hover texts of the traces
    with customdata (from page.texts), and the faint tracks, traces ``tracks`` (from
    the frames)."""
    for trace in spec["data"]:
        if "customdata" in trace:
            trace.pop("hovertext", None)
    for index in tracks:
        spec["data"][index]["x"], spec["data"][index]["y"] = [], []
    spec["config"] = {"displaylogo": False, "responsive": True, "scrollZoom": False}
    return _TEMPLATE.format(
        title=html.escape(title),
        background=_colours()["BACKGROUND"],
        plotlyjs=_plotlyjs_tag(plotlyjs),
        height=height,
        figure=_script_json(spec),
        script=script,
    )


def write_html(text: str, output: str | Path) -> Path:
    """Write a page through shrinkcli.output's one writer (atomically)."""
    from shrinkcli.output import text_output

    with text_output(str(output)) as fh:
        fh.write(text)
    return Path(output)


def _plotlyjs_tag(how: str) -> str:
    """plotly.js inline, or from its public CDN, pinned to the bundled version and
    checked against it (subresource integrity)."""
    import hashlib

    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    source = get_plotlyjs()
    if how == "inline":
        return f"<script>{source}</script>"
    digest = base64.b64encode(hashlib.sha384(source.encode("utf-8")).digest()).decode("ascii")
    url = f"https://cdn.plot.ly/plotly-{get_plotlyjs_version()}.min.js"
    return (
        f'<script charset="utf-8" src="{url}" integrity="sha384-{digest}" '
        'crossorigin="anonymous"></script>'
    )


def _script_json(spec: dict[str, Any]) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' (a label such as
    '</script>' stays text), no line or paragraph separators."""
    text = json.dumps(spec, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for bad, safe in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                      ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):  # fmt: skip
        text = text.replace(bad, safe)
    return text


def _colours() -> dict[str, str]:
    from shrinkcli.draw import BACKGROUND, OLIVE, ORANGE

    return {"ORANGE": ORANGE, "OLIVE": OLIVE, "BACKGROUND": BACKGROUND}


# ----------------------------------------------------------------------------- the figure


def figure(data, fits, *, settings=None, scenario=None, title: str = ""):
    """The page's figure as a plotly Figure, for notebooks (``fig.show()``).

    The slider runs along the pooling path of ``settings.frames`` frames; the
    window follows ``settings.zoom``; the ellipses and true effects start shown as
    ``settings.ellipses`` and ``settings.truth`` say. The hovered cluster's track is
    drawn darker only in a written page (its few lines of JavaScript do that).
    """
    require_plotly()
    import plotly.graph_objects as go

    from shrinkcli.pipeline import make_frames, make_picture, page_settings
    from shrinkcli.settings import RenderSettings

    settings = settings or RenderSettings()
    picture = make_picture(data, fits, scenario=scenario, title=title)
    frames = make_frames(data, fits, page_settings(settings))
    spec = page_figure(picture, frames, settings, labels=data.labels)
    spec.pop("page")
    return go.Figure(spec)


def page_figure(picture, frames, settings, *, labels=None, limits=None) -> dict[str, Any]:
    """The plotly figure as a plain dict (data, layout, frames), plus ``page``: what
    the page's script needs (trace numbers, the clusters that move, hover texts).
    ``limits`` ((x0, x1), (y0, y1)) replaces the picture's own window (a grid's
    shared window, shrinkcli.grid_page)."""
    import numpy as np

    from shrinkcli.draw import density, describe_picture, point_alpha, point_diameter
    from shrinkcli.errors import UsageError

    if settings.truth and picture.truth is None:
        raise UsageError(
            "--truth needs the true cluster effects, which only simulated "
            "data have; drop --truth for data read from a file"
        )
    col = _colours()
    g = picture.n_clusters
    shown = describe_picture(picture, settings)
    xlim, ylim = tuple(shown["window"]["intercept"]), tuple(shown["window"]["slope"])
    if limits is not None:
        xlim, ylim = tuple(limits[0]), tuple(limits[1])
    n = frames.n_move
    pos = np.asarray(frames.positions[:n], dtype=float)
    kappa = None if frames.kappa is None else np.asarray(frames.kappa[:n], dtype=float)
    progress = np.asarray(frames.progress[:n], dtype=float)
    ok = picture.has_ols
    moving = np.flatnonzero(ok)
    thin = density(g)  # the GIF's thinning and marker sizes, its 5 points BASE_MARKER pixels
    alpha = point_alpha(picture) * max(thin, 0.5)
    size = point_diameter(picture) * (BASE_MARKER / 5.0) * math.sqrt(thin)
    texts = hover_texts(picture, labels)

    traces: list[dict[str, Any]] = []

    def add(trace: dict[str, Any]) -> int:
        traces.append({"type": "scatter", "hoverinfo": "skip", **trace})
        return len(traces) - 1

    def hover(index) -> dict[str, Any]:
        return {
            "customdata": [int(i) for i in index],
            "hovertext": [texts[i] for i in index],
            "hovertemplate": "%{hovertext}<extra></extra>",
            "hoverinfo": None,
        }

    ellipse_pts = _ellipse_line(picture)
    add(
        {
            "name": "50/80/95% of<br>random effects",
            "x": _typed(ellipse_pts[:, 0], "f4"),
            "y": _typed(ellipse_pts[:, 1], "f4"),
            "mode": "lines",
            "line": {"color": TICK_TEXT, "width": 1},
            "opacity": 0.6,
            "visible": True if settings.ellipses else "legendonly",
            "legendrank": 900,
        }
    )
    tracks = np.full((len(moving), n + 1, 2), np.nan)
    tracks[:, :n] = np.swapaxes(pos[:, moving], 0, 1)
    track_style = {"width": max(0.6, 1.0 * max(thin, 0.6)),
                   "opacity": 0.1 if thin == 1 else 0.1 * max(thin, 0.5)}  # fmt: skip
    pictured = len(moving) > TRACKS_AS_PICTURE
    tracks_index = add(
        {
            "name": "tracks",
            "x": [] if pictured else _typed(tracks[:, :, 0].ravel(), "f4"),
            "y": [] if pictured else _typed(tracks[:, :, 1].ravel(), "f4"),
            "mode": "lines",
            "line": {"color": "black", "width": track_style["width"]},
            "opacity": track_style["opacity"],
            "showlegend": False,
            "connectgaps": False,
        }
    )
    if picture.truth is not None:
        add(
            {
                "name": "truth",
                "x": _typed(picture.truth[:, 0]),
                "y": _typed(picture.truth[:, 1]),
                "mode": "markers",
                "marker": {
                    "symbol": "cross-thin",
                    "size": BASE_MARKER * math.sqrt(thin),
                    "line": {"color": TRUTH, "width": 1},
                },
                "opacity": 0.55,
                "visible": True if settings.truth else "legendonly",
                "legendrank": 800,
                **hover(range(g)),
            }
        )
    add(
        {
            "name": "by-cluster",
            "x": _typed(picture.ols[moving, 0]),
            "y": _typed(picture.ols[moving, 1]),
            "mode": "markers",
            "marker": {
                "color": col["ORANGE"],
                "size": _sizes(size[moving]),
                "opacity": _typed(alpha[moving], "f4"),
                "line": {"width": 0},
            },
            "legendrank": 100,
            **hover(moving),
        }
    )
    no_ols = np.flatnonzero(~ok)
    if len(no_ols):
        add(
            {
                "name": "no OLS slope",
                "x": _typed(picture.mixed[no_ols, 0]),
                "y": _typed(picture.mixed[no_ols, 1]),
                "mode": "markers",
                "marker": {
                    "symbol": "diamond-open",
                    "color": col["OLIVE"],
                    "size": _sizes(0.9 * size[no_ols]),
                    "line": {"width": 1.3},
                },
                "legendrank": 300,
                **hover(no_ols),
            }
        )
    edges = _edge_markers(picture, xlim, ylim, col)
    for trace, index in edges:
        add({**trace, **hover(index)})
    highlight = add(
        {
            "name": "highlighted track",
            "x": [],
            "y": [],
            "mode": "lines",
            "line": {"color": TEXT, "width": 2.5},
            "opacity": 0.9,
            "showlegend": False,
        }
    )
    # the moving points turn from orange to olive as they go; only their colour and
    # place change from frame to frame (per-point styles would cost a redraw each)
    colours = [_mix(col["ORANGE"], col["OLIVE"], p) for p in progress]
    add(
        {
            "name": "mixed",
            "legendgroup": "mixed",  # the legend's swatch, olive: clicking it hides the points
            "x": [None],
            "y": [None],
            "mode": "markers",
            "marker": {"color": col["OLIVE"], "size": BASE_MARKER},
            "legendrank": 200,
        }
    )
    moving_index = add(
        {
            "name": "mixed",
            "legendgroup": "mixed",
            "showlegend": False,
            "x": _typed(pos[0, moving, 0]),
            "y": _typed(pos[0, moving, 1]),
            "mode": "markers",
            "marker": {
                "color": colours[0],
                "size": _sizes(size[moving]),
                "opacity": max(thin, 0.5),
                "line": {"width": 0},
            },
            **hover(moving),
        }
    )
    fx, fy = (float(v) for v in picture.fixed)
    add(
        {
            "name": "average",
            "x": [fx, fx],
            "y": [fy, fy],
            "mode": "markers",
            "marker": {
                "color": ["rgba(0,0,0,0.25)", "rgba(0,0,0,0.5)"],
                "size": [20, 8],
                "line": {"width": 0},
            },
            "hovertext": [_average_text(picture)] * 2,
            "hovertemplate": "%{hovertext}<extra></extra>",
            "hoverinfo": None,
            "legendrank": 700,
        }
    )

    names = [str(k) for k in range(n)]
    plot_frames = []
    for k in range(n):
        exact = k in (0, n - 1)  # the OLS and mixed estimates: float64, exact
        dtype = "f8" if exact else "f4"
        plot_frames.append(
            {
                "name": names[k],
                "traces": [moving_index],
                "data": [
                    {
                        "x": _typed(pos[k, moving, 0], dtype),
                        "y": _typed(pos[k, moving, 1], dtype),
                        "marker": {"color": colours[k]},
                    }
                ],
            }
        )
    step_args = {"mode": "immediate", "frame": {"duration": 0, "redraw": False},
                 "transition": {"duration": 0}}  # fmt: skip
    steps = [
        {"method": "animate", "label": _step_label(k, n, kappa), "args": [[names[k]], step_args]}
        for k in range(n)
    ]
    frame_ms = max(20, round(1000 / settings.fps))
    play_args = {"mode": "immediate", "fromcurrent": True,
                 "frame": {"duration": frame_ms, "redraw": False},
                 "transition": {"duration": 0}}  # fmt: skip
    replay = {**play_args, "fromcurrent": False}
    plot_h = HEIGHT - MARGIN["t"] - MARGIN["b"]

    def below(px: float) -> float:  # paper y of a point px pixels below the panel
        return -px / plot_h

    caption = list(picture.caption)
    beyond = _beyond_line(shown)
    if beyond:
        caption.append(beyond)
    caption.append(
        "Pooling path: random-effect covariance × κ; κ = ∞ no pooling, 1 the fitted model"
        if kappa is not None
        else "Straight lines from each by-cluster estimate to its mixed estimate"
    )
    if kappa is not None and np.isinf(kappa[1:]).any():
        caption.append(
            "Singular fit: no κ reaches the OLS estimates, so the κ = ∞ part runs straight "
            "from them onto the fit's zero-variance direction (it is not a model)"
        )
    if not picture.balanced:
        lo, hi = int(picture.sizes.min()), int(picture.sizes.max())
        caption.append(f"Point area shows cluster size ({lo} to {hi} observations)")
    caption.append("Hover or tap a cluster for its numbers and its track")

    def toggle(label: str, index: int, on: bool, y: float) -> dict[str, Any]:
        return {
            "type": "buttons",
            "active": -1,  # not pressed: a click runs args, the next one args2
            "showactive": False,
            "x": 1.02,
            "xanchor": "left",
            "y": y,
            "yanchor": "top",
            "pad": {"t": 0, "b": 0, "l": 0, "r": 0},
            "bgcolor": "white",
            "bordercolor": "#cccccc",
            "font": {"size": 11, "color": TEXT},
            "buttons": [
                {
                    "label": label,
                    "method": "restyle",
                    "args": [{"visible": "legendonly" if on else True}, [index]],
                    "args2": [{"visible": True if on else "legendonly"}, [index]],
                }
            ],
        }

    menus = [
        {
            "type": "buttons",
            "direction": "left",
            "showactive": False,
            "x": 0.0,
            "xanchor": "right",
            "y": below(78),
            "yanchor": "top",
            "pad": {"t": 28, "r": 10},
            "bgcolor": "white",
            "bordercolor": "#cccccc",
            "font": {"size": 12, "color": TEXT},
            "buttons": [
                {"label": PLAY, "method": "animate", "args": [None, play_args]},
                {"label": "❚❚ Pause", "method": "animate", "args": [[None], step_args]},
            ],
        },
        toggle("Ellipses on/off", 0, settings.ellipses, 0.30),
    ]
    if picture.truth is not None:
        menus.append(toggle("True effects on/off", 2, settings.truth, 0.21))
    annotations = [
        _note("no pooling", 0.0, below(150), "left"),
        _note("the fitted model", 1.0, below(150), "right"),
        {
            **_note("<br>".join(html.escape(line) for line in caption), 0.0, below(172), "left"),
            "x": -60 / 1000,
            "font": {"size": 11, "color": TICK_TEXT},
        },
    ]
    layout = {
        "height": HEIGHT,
        "autosize": True,
        "margin": dict(MARGIN),
        "paper_bgcolor": col["BACKGROUND"],
        "plot_bgcolor": col["BACKGROUND"],
        "font": {"family": FONT, "color": TEXT, "size": 12},
        "title": {
            "text": html.escape(" ".join(picture.title.split())),
            "x": 0.01,
            "xanchor": "left",
            "y": 0.975,
            "font": {"size": 16, "color": "#333333"},
        },
        "xaxis": _axis(picture.xlabel, xlim),
        "yaxis": _axis(picture.ylabel, ylim),
        "hovermode": "closest",
        "hoverlabel": {"bgcolor": "white", "font": {"family": FONT, "size": 12}},
        "showlegend": True,
        "legend": {
            "title": {"text": "Model"},
            "x": 1.02,
            "xanchor": "left",
            "y": 1.0,
            "yanchor": "top",
            "font": {"size": 12, "color": TEXT},
            "itemsizing": "constant",
            "itemclick": "toggle",
            "itemdoubleclick": False,
        },
        "sliders": [
            {
                "active": 0,
                "steps": steps,
                "x": 0.0,
                "len": 1.0,
                "y": below(78),
                "yanchor": "top",
                "pad": {"t": 0, "b": 0},
                "currentvalue": {
                    "prefix": "κ = ",
                    "visible": True,
                    "xanchor": "left",
                    "font": {"size": 13, "color": TEXT},
                },
                "font": {"size": 1, "color": "rgba(0,0,0,0)"},  # 60 step labels: none shown
                "ticklen": 3,
                "minorticklen": 0,
                "tickcolor": "#bbbbbb",
                "bgcolor": "#f2f2e8",
                "activebgcolor": col["OLIVE"],
                "bordercolor": "#bbbbbb",
                "transition": {"duration": 0},
            }
        ],
        "updatemenus": menus,
        "annotations": annotations,
        "images": [_tracks_picture(tracks, xlim, ylim, **track_style)] if pictured else [],
    }
    page = {
        "tracks": tracks_index,
        "draw_tracks": not pictured,
        "highlight": highlight,
        "moving": moving_index,
        "moving_clusters": [int(i) for i in moving],
        "texts": texts,
        "play": PLAY,
        "replay": replay,
    }
    return {"data": traces, "layout": layout, "frames": plot_frames, "page": page}


# ----------------------------------------------------------------------------- pieces


def _typed(values, dtype: str = "f8") -> dict[str, str]:
    """A plotly.js typed array: base64 of little-endian float64 ('f8') or float32 ('f4')."""
    import numpy as np

    arr = np.ascontiguousarray(values, dtype="<f8" if dtype == "f8" else "<f4")
    return {"dtype": dtype, "bdata": base64.b64encode(arr.tobytes()).decode("ascii")}


def _tracks_picture(tracks, xlim, ylim, *, width: float, opacity: float) -> dict[str, Any]:
    """The faint tracks as one transparent PNG laid under the panel (stretched with
    it when zoomed): a browser redraws thousands of SVG lines on every slider step,
    a picture costs next to nothing."""
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection
    from matplotlib.figure import Figure

    w, h = TRACKS_PICTURE_PX
    fig = Figure(figsize=(w / 100, h / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    scale = w / 800  # the picture's pixels per page pixel, for a panel ~800 wide
    ax.add_collection(LineCollection(list(tracks[:, :-1]), colors="black", alpha=opacity,
                                     linewidths=width * scale * 72 / 100))  # fmt: skip
    buf = io.BytesIO()
    fig.savefig(buf, format="png", transparent=True, dpi=100)
    return {
        "source": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii"),
        "xref": "x",
        "yref": "y",
        "x": float(xlim[0]),
        "y": float(ylim[1]),
        "sizex": float(xlim[1] - xlim[0]),
        "sizey": float(ylim[1] - ylim[0]),
        "xanchor": "left",
        "yanchor": "top",
        "sizing": "stretch",
        "layer": "below",
    }


def _sizes(values):
    """Marker sizes: one number when all are equal (plotly then styles the points
    faster), else a float32 typed array."""
    import numpy as np

    values = np.asarray(values, dtype=float)
    if len(values) and np.all(values == values[0]):
        return float(values[0])
    return _typed(values, "f4")


def _ellipse_line(picture):
    """The 50/80/95% contours as one line with gaps (one trace to toggle)."""
    import numpy as np

    from shrinkcli import window

    parts = []
    for contour in window.ellipses(picture.fixed, picture.re_cov, 121):
        parts += [contour, np.full((1, 2), np.nan)]
    return np.concatenate(parts)


def _mix(a: str, b: str, t: float) -> str:
    """The colour a fraction t of the way from hex colour a to b."""
    ca = [int(a[i : i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i : i + 2], 16) for i in (1, 3, 5)]
    t = min(1.0, max(0.0, float(t)))
    return "#" + "".join(f"{round((1 - t) * u + t * v):02x}" for u, v in zip(ca, cb, strict=True))


def _step_label(k: int, n: int, kappa) -> str:
    from shrinkcli.render.dial import format_kappa  # as the GIF's dial writes κ

    if kappa is None:
        return f"{round(100 * k / max(n - 1, 1))}% of the way"
    text = format_kappa(float(kappa[k]))
    if k == 0:
        return text + " (no pooling: the by-cluster OLS estimates)"
    if k == n - 1:
        return text + " (the fitted mixed model)"
    return text


def label_text(value) -> str:
    """A cluster label as the estimates CSV prints it: 19, 2.5, or the text."""
    import numpy as np

    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    return str(value)


def hover_texts(picture, labels=None) -> list[str]:
    """One hover text per cluster: label and size, OLS, mixed and true estimates."""
    from shrinkcli.pipeline import short_number as f

    g = picture.n_clusters
    out = []
    for i in range(g):
        name = label_text(labels[i]) if labels is not None else str(i + 1)
        lines = [f"<b>cluster {html.escape(name)}</b> ({int(picture.sizes[i])} obs)"]
        o, m = picture.ols[i], picture.mixed[i]
        if math.isfinite(o[0]) and math.isfinite(o[1]):
            lines.append(f"OLS: intercept {f(o[0])}, slope {f(o[1])}")
        else:
            lines.append("OLS: no slope (one x value)")
        lines.append(f"mixed: intercept {f(m[0])}, slope {f(m[1])}")
        if picture.truth is not None:
            t = picture.truth[i]
            lines.append(f"truth: intercept {f(t[0])}, slope {f(t[1])}")
        out.append("<br>".join(lines))
    return out


def _average_text(picture) -> str:
    from shrinkcli.pipeline import short_number as f

    fx, fy = picture.fixed
    return f"<b>population average</b><br>fixed effects: intercept {f(fx)}, slope {f(fy)}"


def _axis(title: str, lim) -> dict[str, Any]:
    return {
        "title": {"text": html.escape(title), "font": {"size": 13, "color": TEXT}},
        "range": [float(lim[0]), float(lim[1])],
        "autorange": False,
        "showgrid": False,
        "zeroline": False,
        "showline": False,
        "ticks": "",
        "tickfont": {"size": 11, "color": TICK_TEXT},
        "fixedrange": False,
    }


def _note(text: str, x: float, y: float, anchor: str) -> dict[str, Any]:
    return {
        "text": text,
        "x": x,
        "y": y,
        "xref": "paper",
        "yref": "paper",
        "xanchor": anchor,
        "yanchor": "top",
        "showarrow": False,
        "align": "left",
        "font": {"size": 11, "color": TICK_TEXT},
    }


def _beyond_line(shown: dict) -> str | None:
    from shrinkcli import window

    out = shown["outside"]
    return window.beyond_edge_line(out["by_cluster"], out["mixed"])


def _edge_markers(picture, xlim, ylim, col) -> list[tuple[dict[str, Any], Any]]:
    """Estimates beyond the window as small triangles on its edge, pointing at them.

    A by-cluster estimate's triangle sits where the line from its mixed estimate
    leaves the window; a mixed estimate's (only with the article's fixed window) on
    the line from the window's centre. Directions assume a panel of ~700x450 pixels.
    """
    import numpy as np

    from shrinkcli import window

    span = np.array([xlim[1] - xlim[0], ylim[1] - ylim[0]])
    inset = 0.012 * span
    box = ((xlim[0] + inset[0], xlim[1] - inset[0]), (ylim[0] + inset[1], ylim[1] - inset[1]))
    centre = np.array([sum(xlim) / 2, sum(ylim) / 2])
    out = []
    for name, points, colour in (("by_cluster", picture.ols, col["ORANGE"]),
                                 ("mixed", picture.mixed, col["OLIVE"])):  # fmt: skip
        beyond = np.flatnonzero(window.outside(points, xlim, ylim))
        if not len(beyond):
            continue
        target = points[beyond]
        origin = picture.mixed[beyond] if name == "by_cluster" else centre[None]
        origin = np.broadcast_to(origin, target.shape)
        at = window.edge_points(target, origin, *box)
        d = (target - at) / span * np.array([700.0, 450.0])
        angle = np.degrees(np.arctan2(d[:, 0], d[:, 1]))  # clockwise from up, on screen
        out.append(
            (
                {
                    "name": "beyond the edge",
                    "legendgroup": "beyond",
                    "showlegend": name == "by_cluster" or len(out) == 0,
                    "x": _typed(at[:, 0]),
                    "y": _typed(at[:, 1]),
                    "mode": "markers",
                    "marker": {
                        "symbol": "triangle-up",
                        "angle": _typed(angle, "f4"),
                        "color": colour,
                        "size": 8,
                        "opacity": 0.85,
                        "line": {"width": 0},
                    },
                    "legendrank": 600,
                },
                beyond,
            )
        )
    return out
