"""Grids of random-intercept models: every panel the strip (shrinkcli.strip).

    shrink run --formula "y ~ 1 + (1 | cluster)" --sd-int 0.1,0.5,1 -o sweep.gif

A grid is all planes (y ~ x + (x | g)) or all strips (y ~ x + (1 | g), y ~ 1 +
(1 | g)): the two pictures have different axes. A strip panel is the strip of
``shrink run`` for that scenario, with a caption short enough for a cell; the
panels share the estimate's window (the union of their own), each keeps its own
clusters as rows.
"""

from __future__ import annotations

from dataclasses import replace

from shrinkcli.errors import UsageError
from shrinkcli.grid import PanelKind


def is_strip_grid(plan) -> bool:
    """True when every panel's model has a random intercept only; a grid that mixes
    them with the full model is refused (other axes)."""
    from shrinkcli.formula import as_formula

    kinds = []
    for p in plan.panels:
        formula = as_formula(p.values.get("formula"))
        kinds.append((formula is not None and not formula.random_slope, formula, p.title))
    strip = [k for k in kinds if k[0]]
    if strip and len(strip) < len(kinds):
        _, model, a = strip[0]
        _, other, b = next(k for k in kinds if not k[0])
        raise UsageError(
            f"panel {a!r} fits {model} (a strip of clusters on one axis) but {b!r} fits "
            f"{other or 'y ~ x + (x | cluster)'} (the intercept-slope plane): different axes "
            "cannot share a grid; draw each kind in a grid of its own"
        )
    return bool(strip)


def strip_panel(title: str, data, fits, scenario, settings):
    """The StripPicture of one panel, titled by the panel and with its short caption."""
    from shrinkcli.strip import strip_picture

    pic = strip_picture(data, fits, scenario=scenario, title=title, settings=settings)
    return replace(pic, caption=panel_caption(pic, fits))


def panel_caption(picture, fits) -> tuple[str, ...]:
    """Two short lines under a panel: τ and σ; the truth RMSE, by-cluster -> mixed."""
    from shrinkcli.pipeline import short_number as f
    from shrinkcli.strip import truth_rmse

    lines = [
        f"τ = {f(picture.re_sd)}, σ = {f(picture.sigma)}" + (" (singular)" if fits.singular else "")
    ]
    rmse = truth_rmse(picture)
    if rmse is not None:
        lines.append(f"RMSE intercept {f(rmse[0])} → {f(rmse[1])}")
    return tuple(lines)


def shared_window(pictures, settings) -> tuple[float, float]:
    """The union of the panels' own windows on the estimate's axis."""
    from shrinkcli.strip import strip_window

    boxes = [strip_window(p, settings.zoom, truth=settings.truth, band=settings.ellipses)
             for p in pictures]  # fmt: skip
    return min(b[0] for b in boxes), max(b[1] for b in boxes)


def common_rows(pictures) -> list:
    """The pictures with one y label for the grid: theirs if they agree, else what holds
    for all (the balanced panels' rows go by estimate, which ties by size also do)."""
    labels = {p.ylabel for p in pictures}
    if len(labels) == 1:
        return list(pictures)
    if all(p.sizes.min() == p.sizes.max() for p in pictures):  # balanced, other sizes
        label = "Clusters (of one size in each panel) by mixed estimate (highest at the top)"
    else:
        label = "Clusters by size (largest at the top; equal sizes by mixed estimate)"
    return [replace(p, ylabel=label) for p in pictures]


def slope_note(plan, pictures) -> list[str]:
    """For y ~ x + (1 | g): where on the line the intercepts are read (as the strip's
    caption says, without each panel's fixed slope)."""
    if not pictures[0].slope:
        return []
    from shrinkcli.formula import as_formula

    x = as_formula(plan.panels[0].values.get("formula")).x
    return [
        f"By-cluster: each cluster's intercept at its panel's common within-cluster slope of "
        f"{x}; mixed: at the panel's fixed slope"
    ]


def outside_counts(pictures, limits) -> tuple[int, int]:
    """By-cluster and mixed estimates beyond the shared window, over all panels."""
    from shrinkcli.strip import outside

    return (sum(int(outside(p.ols, limits).sum()) for p in pictures),
            sum(int(outside(p.mixed, limits).sum()) for p in pictures))  # fmt: skip


def scene(datas, fits, pictures, settings):
    """(layout class, pictures with one row label, each panel's Frames, no tracks)."""
    from shrinkcli.render.grid_strip import StripGridLayout
    from shrinkcli.strip import strip_frames

    frames = [strip_frames(d, f, p, settings)
              for d, f, p in zip(datas, fits, pictures, strict=True)]  # fmt: skip
    return StripGridLayout, common_rows(pictures), frames, None


STRIP = PanelKind(
    picture=strip_panel,
    window=shared_window,
    beyond=outside_counts,
    scene=scene,
    window_json=lambda limits: {"estimate": list(limits)},
    sds="τ the SD of the cluster {what}s, σ the residual SD",
    truth="RMSE against the true intercepts, by-cluster → mixed",
    scaled="random-intercept variance",
    notes=slope_note,
    page=False,
)
