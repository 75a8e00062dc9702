"""The interactive page of a random-intercept model: the strip, with a pooling slider.

One HTML file with plotly.js inline (works offline), as shrinkcli.page makes for the
plane: each cluster on its row (the strip's rows and window), its by-cluster point,
its faint track, the population line, and the moving points on a slider along the
exact pooling path (κ from ∞, no pooling, to 1, the fitted model) with play/pause;
hover on a cluster gives its label, size, by-cluster and mixed estimates and its
shrinkage factor. Simpler than the plane's page: no hover-drawn track, no buttons
beyond play and pause (the legend hides and shows the layers). Labels, names and
captions are escaped, as on that page: plotly reads its text as HTML.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from shrinkcli.page import FONT, PLAY, TEXT, TICK_TEXT, TRUTH, _mix, _step_label, write_html
from shrinkcli.strip import StripPicture, outside, strip_window

HEIGHT = 720
LABELLED = 30  # at most this many clusters get their labels on the rows


def hover_texts(picture: StripPicture) -> list[str]:
    """One line block per cluster: label, size, estimates and factor."""
    from shrinkcli.pipeline import short_number as f

    out = []
    for j in range(picture.n_clusters):
        own = f(picture.ols[j]) if np.isfinite(picture.ols[j]) else "none"
        lines = [
            f"<b>{html.escape(picture.labels[j])}</b> (n = {int(picture.sizes[j])})",
            f"by-cluster {own}",
            f"mixed {f(picture.mixed[j])}",
            f"shrinkage factor {picture.shrinkage[j]:.3f}",
        ]
        if picture.truth is not None:
            lines.append(f"truth {f(picture.truth[j])}")
        out.append("<br>".join(lines))
    return out


def strip_figure(picture: StripPicture, frames, settings):
    """The page's plotly Figure: ``frames`` are the pooling path's (their movement part
    is the slider); window and rows as the strip's."""
    import plotly.graph_objects as go

    from shrinkcli.render.style import BACKGROUND, OLIVE, ORANGE

    xlim = strip_window(picture, settings.zoom, truth=settings.truth, band=settings.ellipses)
    rows = picture.rows
    n = frames.n_move
    pos = np.asarray(frames.positions[:n, :, 0], dtype=float)
    ok = np.flatnonzero(picture.has_ols)
    texts = hover_texts(picture)
    hover = {"hovertemplate": "%{hovertext}<extra></extra>"}
    traces: list[Any] = []
    seg = np.full((len(ok), 3), np.nan)
    seg[:, 0], seg[:, 1] = picture.ols[ok], picture.mixed[ok]
    ys = np.repeat(rows[ok, None], 3, axis=1)
    traces.append(go.Scatter(x=seg.ravel(), y=ys.ravel(), mode="lines", name="tracks",
                             line={"color": "black", "width": 1}, opacity=0.15,
                             hoverinfo="skip", showlegend=False))  # fmt: skip
    if picture.truth is not None:
        traces.append(go.Scatter(x=picture.truth, y=rows, mode="markers", name="truth",
                                 marker={"symbol": "cross-thin", "size": 8,
                                         "line": {"color": TRUTH, "width": 1}},
                                 visible=True if settings.truth else "legendonly",
                                 hovertext=texts, **hover))  # fmt: skip
    traces.append(go.Scatter(x=picture.ols[ok], y=rows[ok], mode="markers", name="by-cluster",
                             marker={"color": ORANGE, "size": 7, "opacity": 0.8},
                             hovertext=[texts[j] for j in ok], **hover))  # fmt: skip
    beyond = outside(picture.ols, xlim)
    if beyond.any():
        right = picture.ols[beyond] > xlim[1]
        span = xlim[1] - xlim[0]
        at = np.where(right, xlim[1] - 0.005 * span, xlim[0] + 0.005 * span)
        traces.append(go.Scatter(x=at, y=rows[beyond], mode="markers", name="beyond the edge",
                                 marker={"color": ORANGE, "size": 8,
                                         "symbol": np.where(right, "triangle-right",
                                                            "triangle-left").tolist()},
                                 hovertext=[texts[j] for j in np.flatnonzero(beyond)],
                                 **hover))  # fmt: skip
    none = np.flatnonzero(~picture.has_ols)
    if len(none):
        traces.append(go.Scatter(x=picture.mixed[none], y=rows[none], mode="markers",
                                 name="no by-cluster estimate",
                                 marker={"symbol": "diamond-open", "color": OLIVE, "size": 7},
                                 hovertext=[texts[j] for j in none], **hover))  # fmt: skip
    colours = [_mix(ORANGE, OLIVE, float(p)) for p in frames.progress[:n]]
    traces.append(go.Scatter(x=[None], y=[None], mode="markers", name="mixed",
                             legendgroup="mixed", marker={"color": OLIVE, "size": 7}))  # fmt: skip
    moving = len(traces)  # its colour runs from orange to olive: the legend's swatch is above
    traces.append(go.Scatter(x=pos[0, ok], y=rows[ok], mode="markers", name="mixed",
                             legendgroup="mixed", showlegend=False,
                             marker={"color": colours[0], "size": 7},
                             hovertext=[texts[j] for j in ok], **hover))  # fmt: skip
    plot_frames = [
        go.Frame(name=str(k), traces=[moving],
                 data=[go.Scatter(x=pos[k, ok], marker={"color": colours[k], "size": 7})])
        for k in range(n)
    ]  # fmt: skip
    steps = [
        {"label": _step_label(k, n, frames.kappa),  # unique: plotly finds a step by it
         "method": "animate",
         "args": [[str(k)], {"mode": "immediate", "frame": {"duration": 0, "redraw": False},
                             "transition": {"duration": 0}}]}
        for k in range(n)
    ]  # fmt: skip
    play = {"frame": {"duration": max(20, round(1000 / settings.fps)), "redraw": False},
            "fromcurrent": True, "transition": {"duration": 0}}  # fmt: skip
    ticks = {}
    if picture.n_clusters <= LABELLED:
        order = np.argsort(rows)
        ticks = {"tickvals": rows[order].tolist(),
                 "ticktext": [html.escape(picture.labels[j]) for j in order]}  # fmt: skip
    else:
        ticks = {"showticklabels": False}
    shapes = [{"type": "line", "x0": picture.fixed, "x1": picture.fixed, "y0": 0, "y1": 1,
               "yref": "paper", "line": {"color": "rgba(0,0,0,0.5)", "width": 1.5}}]  # fmt: skip
    if settings.ellipses:
        shapes.append({"type": "rect", "x0": picture.fixed - 1.96 * picture.re_sd,
                       "x1": picture.fixed + 1.96 * picture.re_sd, "y0": 0, "y1": 1,
                       "yref": "paper", "fillcolor": "rgba(0,0,0,0.06)", "line": {"width": 0},
                       "layer": "below"})  # fmt: skip
    caption = "<br>".join(html.escape(line) for line in picture.caption)
    layout = go.Layout(
        title={"text": html.escape(picture.title), "x": 0.01,
               "font": {"color": "#333333", "size": 18}},
        paper_bgcolor=BACKGROUND, plot_bgcolor=BACKGROUND, height=HEIGHT,
        font={"family": FONT, "color": TEXT},
        xaxis={"title": html.escape(picture.xlabel), "range": list(xlim), "showgrid": False,
               "zeroline": False, "color": TICK_TEXT},
        yaxis={"title": html.escape(picture.ylabel), "range": [-1, picture.n_clusters],
               "showgrid": False, "zeroline": False, "color": TICK_TEXT, **ticks},
        shapes=shapes,
        margin={"l": 80, "r": 40, "t": 70, "b": 200},
        legend={"title": {"text": "Model"}},
        annotations=[{"text": caption, "xref": "paper", "yref": "paper", "x": 0, "y": -0.42,
                      "showarrow": False, "align": "left", "xanchor": "left",
                      "font": {"size": 12, "color": TICK_TEXT}}],
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0, "y": -0.12,
                      "xanchor": "left", "showactive": False,
                      "buttons": [{"label": PLAY, "method": "animate", "args": [None, play]},
                                  {"label": "❚❚ Pause", "method": "animate",
                                   "args": [[None], {"mode": "immediate",
                                                     "frame": {"duration": 0}}]}]}],
        sliders=[{"active": 0, "steps": steps, "x": 0.22, "y": -0.08, "len": 0.78,
                  "currentvalue": {"prefix": "κ = " if frames.kappa is not None else "",
                                   "font": {"size": 13, "color": TEXT}},
                  "pad": {"t": 30},
                  "font": {"size": 1, "color": "rgba(0,0,0,0)"}}],  # 60 labels: none shown
    )  # fmt: skip
    return go.Figure(data=traces, layout=layout, frames=plot_frames)


def write_strip_page(picture: StripPicture, frames, settings, output: str | Path) -> Path:
    """The page as one HTML file, written atomically."""
    text = strip_figure(picture, frames, settings).to_html(
        include_plotlyjs=True, full_html=True, auto_play=False, config={"displaylogo": False}
    )
    if not text.lstrip().lower().startswith("<!doctype"):  # plotly 6.0 leaves it out:
        text = "<!doctype html>\n" + text  # without it a browser draws in quirks mode
    return write_html(text, output)


def figure(data, fits, settings=None, *, title: str = ""):
    """The strip page's figure for a notebook (a plotly Figure)."""
    from shrinkcli.pipeline import page_settings
    from shrinkcli.settings import RenderSettings
    from shrinkcli.strip import strip_frames, strip_picture

    settings = page_settings(settings or RenderSettings())
    picture = strip_picture(data, fits, title=title, settings=settings)
    return strip_figure(picture, strip_frames(data, fits, picture, settings), settings)
