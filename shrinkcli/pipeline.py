"""The whole chain, one stage per line: scenario -> data -> fits -> frames -> file.

    from shrinkcli.pipeline import run
    result = run(Scenario(obs_per_cluster=3), output="fewer.gif")
    result.fits.mixed, result.output

Each stage is also callable on its own (simulate, fit_data, make_picture,
make_frames, encode.write_animation), the way lme4's modular interface is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from shrinkcli.errors import UsageError
from shrinkcli.scenario import Scenario

ENGINES = ("shrink", "statsmodels")
SIM_KEYS = tuple(f.name for f in fields(Scenario))  # the create_data arguments
COLUMN_KEYS = ("y", "x", "cluster")
# RenderSettings' fields, spelled out so that fitting never imports matplotlib (tested)
PICTURE_KEYS = ("frames", "hold", "fps", "width", "height", "ease", "ellipses", "truth", "zoom",
                "path", "layout", "story", "highlight", "order")  # fmt: skip
KAPPA_START = 1e8  # the pooling path's exact models run from this kappa down to 1


@dataclass(frozen=True)
class RunResult:
    """What a run produced: the data, the fits, the file written and the time taken.

    ``picture`` describes what the picture shows (window, estimates beyond its edge,
    axis labels: see draw.describe_picture); None when nothing was drawn.
    """

    data: Any
    fits: Any
    output: Path | None
    seconds: float
    picture: dict | None = None

    def figure(self, settings=None, *, title: str = ""):
        """The interactive page's figure (a plotly Figure; needs shrinkcli[html]): the
        pooling slider, play/pause and hover, in the window of this run's picture."""
        from shrinkcli.page import figure
        from shrinkcli.settings import RenderSettings

        if settings is None and self.picture is not None:
            settings = RenderSettings(zoom=self.picture["zoom"])
        if hasattr(self.fits, "re_var"):  # a random-intercept model: the strip's page
            from shrinkcli.strip_page import figure as strip_figure

            return strip_figure(self.data, self.fits, settings, title=title)
        return figure(self.data, self.fits, settings=settings, title=title)

    def _repr_mimebundle_(self, include=None, exclude=None):
        """Jupyter shows a run as its interactive figure when plotly is installed."""
        import importlib.util

        if importlib.util.find_spec("plotly") is None:
            return None
        return self.figure()._repr_mimebundle_(include, exclude)


def fit_data(data, *, reml: bool = True, engine: str = "shrink", formula=None):
    """Fit the model of ``formula`` (a formula.Formula or its text; default y ~ x +
    (x | cluster)) with the chosen engine; returns Fits, or fit.InterceptFits for the
    random-intercept models. A formula given is kept in the fit (``fits.formula``)."""
    import dataclasses

    from shrinkcli.formula import as_formula, check_formula_engine

    check_engine(engine)
    model = as_formula(formula)
    check_formula_engine(model, engine)
    if model is not None and not model.random_slope:
        from shrinkcli.fit import fit_intercept

        return fit_intercept(data, reml=reml, formula=model)
    if engine == "shrink":
        from shrinkcli.fit import fit_mixed

        fits = fit_mixed(data, reml=reml)
    else:
        from shrinkcli.fit_statsmodels import fit_statsmodels

        fits = fit_statsmodels(data, reml=reml)
    return fits if model is None else dataclasses.replace(fits, formula=model)


def run(
    scenario=None,
    *,
    data=None,
    output: str | Path | None = "shrinkage.gif",
    settings=None,
    reml: bool = True,
    engine: str = "shrink",
    title: str = "",
    progress=None,
    formula=None,
) -> RunResult:
    """Simulate (or take ``data``), fit, animate and write ``output`` (.gif, .mp4, .png).

    With ``output=None`` nothing is drawn: the result carries the data and fits only.
    ``formula`` (formula.Formula or its text) picks the model; a random-intercept model
    is drawn as a strip, one row per cluster (shrinkcli.strip).
    """
    from shrinkcli.formula import as_formula
    from shrinkcli.settings import RenderSettings
    from shrinkcli.simulate import simulate
    from shrinkcli.strip import check_strip, draw_strip, is_intercept_model

    start = time.perf_counter()
    formula = as_formula(formula)
    settings = settings or RenderSettings()
    check_strip(formula, settings, output)
    check_output(output, settings)
    if data is None:
        scenario = scenario or Scenario()
        data = simulate(scenario)
    fits = fit_data(data, reml=reml, engine=engine, formula=formula)
    path = shown = None
    if output is not None and is_intercept_model(fits):
        path, shown = draw_strip(data, fits, scenario=scenario, title=title, settings=settings,
                                 output=output, progress=progress)  # fmt: skip
    elif output is not None:
        from shrinkcli.draw import describe_picture

        picture = make_picture(data, fits, scenario=scenario, title=title, settings=settings)
        frames = make_frames(data, fits, page_settings(settings) if is_page(output) else settings)
        path = draw_to_file(picture, frames, settings, output, progress, labels=data.labels)
        shown = describe_picture(picture, settings)
    seconds = time.perf_counter() - start
    return RunResult(data=data, fits=fits, output=path, seconds=seconds, picture=shown)


def check_output(output: str | Path | None, settings) -> None:
    """A wrong suffix, size or folder for ``output`` is found before any work."""
    if output is None:
        return
    from shrinkcli.encode import check_target
    from shrinkcli.output import check_writable

    check_target(Path(output), fps=settings.fps, size=(settings.width, settings.height))
    check_writable(output)
    if is_page(output):
        from shrinkcli.page import require_plotly

        require_plotly()


def is_page(output: str | Path | None) -> bool:
    """An .html output: the interactive page (shrinkcli.page)."""
    return output is not None and Path(output).suffix.lower() == ".html"


def page_settings(settings):
    """The page's slider runs along the exact pooling path: every step one of its
    frames (a model), whatever --path, --ease and --story say for the GIF (a story's
    first stages are not models: the page is the pooling dial)."""
    from dataclasses import replace

    return replace(settings, path="pooling", ease="linear", story=False)


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise UsageError(f"--engine {engine!r} is not known: use one of {', '.join(ENGINES)}")


def check_values(values: dict[str, Any], *, drawing: bool = True):
    """Everything about a run's values that can be wrong, checked before any work.

    Returns the Scenario (None for --data) and the RenderSettings; run() checks
    the output file itself. ``drawing`` False (shrink fit): no picture will be drawn,
    so a random-intercept formula is fine.
    """
    from shrinkcli.formula import check_model
    from shrinkcli.scenario import flag
    from shrinkcli.settings import RenderSettings

    sim = {k: values.get(k) for k in SIM_KEYS}
    settings = RenderSettings(**{k: values[k] for k in PICTURE_KEYS if values.get(k) is not None})
    check_engine(values.get("engine") or "shrink")
    model = check_model(values, drawing=drawing)
    if drawing:
        from shrinkcli.strip import check_strip

        check_strip(model, settings, None)
    path = values.get("data")
    if path is None:
        named = [flag(k) for k in COLUMN_KEYS if values.get(k) is not None]
        if named:
            raise UsageError(f"{named[0]} names a column of --data FILE.csv; give --data too")
        return Scenario().with_changes(**sim), settings
    given = [flag(k) for k, v in sim.items() if v is not None]
    if given:
        raise UsageError(f"{given[0]} is a simulation flag and cannot be used with --data")
    from shrinkcli.data import check_readable

    check_readable(path)
    return None, settings


def load_data(values: dict[str, Any], scenario=None):
    """Simulate the scenario, or read ``data`` (a CSV path) with its column names."""
    if values.get("data") is None:
        from shrinkcli.simulate import simulate

        return simulate(scenario)
    from shrinkcli.data import read_csv
    from shrinkcli.formula import FORMULA_OPTIONS, as_formula

    cols = {k: values[k] for k in COLUMN_KEYS if values.get(k) is not None}
    formula = as_formula(values.get("formula"))
    if formula is not None:  # the formula names the columns (x None: y ~ 1 + (1 | g))
        cols = {**formula.columns(), "options": FORMULA_OPTIONS}
    return read_csv(values["data"], **cols)


def run_values(values: dict[str, Any], output: str | Path | None, progress=None) -> RunResult:
    """run() from flag-named values (a scenario file merged with command-line flags)."""
    scenario, settings = check_values(values)
    check_output(output, settings)  # before reading or simulating the data
    return run(
        scenario,
        data=load_data(values, scenario),
        output=output,
        settings=settings,
        reml=not values.get("ml"),
        engine=values.get("engine") or "shrink",
        title=values.get("title") or "",
        progress=progress,
        formula=values.get("formula"),
    )


def make_frames(data, fits, settings):
    """The moving points: the article's straight lines, or the real pooling path; with
    ``settings.story``, after complete pooling and the fan-out to no pooling
    (tween.story_frames: each stage held tween.story_hold(fps) frames)."""
    from shrinkcli.tween import path_frames, story_frames, story_hold, straight_frames

    if settings.path == "straight":
        pull = straight_frames(
            fits.ols, fits.mixed, frames=settings.frames, hold=settings.hold, ease=settings.ease
        )
    else:
        kappas, path = pooling_path_frames(data, fits, settings.frames)
        pull = path_frames(
            path, kappas, frames=settings.frames, hold=settings.hold, ease=settings.ease
        )
    if not getattr(settings, "story", False):
        return pull
    from shrinkcli.explain import pooled_ols
    from shrinkcli.fit import sufficient_stats

    pooled = pooled_ols(sufficient_stats(data))
    return story_frames(pooled, fits.ols, pull, frames=settings.frames,
                        hold=story_hold(settings.fps), ease=settings.ease)  # fmt: skip


def pooling_path_frames(data, fits, n: int):
    """n frames along the pooling path, spaced so that every step moves the points equally.

    Returns (kappas (n,), path (n, G, 2)), in two parts:

    1. kappa = inf: a straight line from each cluster's OLS estimate (frame 0; a
       cluster without an OLS line starts at the model below) to the exact model at
       kappa = KAPPA_START. These frames are not models. When T T' has full rank the
       models tend to the OLS estimates as kappa grows, and at 1e8 at most 5e-5 of a
       cluster's travel is left in the article's scenarios: this part is invisible
       and frame 0 is its only frame. A singular fit's models never get there: along
       the zero-variance direction every cluster stays pooled at any kappa, and the
       straight line is the move along that direction.
    2. finite kappa, from KAPPA_START down to 1 (the last frame, ``fits.mixed``):
       each frame exactly the model with relative covariance kappa * T T', T lme4's
       relative covariance factor (fit.pooling_path; no ridge).

    The frames invert the average distance travelled (measured on a dense grid of
    kappa, the straight part included), because on a plain log scale nearly all the
    movement happens in the last few frames.
    """
    import numpy as np

    from shrinkcli.fit import pooling_path, sufficient_stats

    stats = sufficient_stats(data)
    dense_k = np.geomspace(KAPPA_START, 1.0, 241)
    dense = pooling_path(stats, fits, dense_k)
    start = np.where(np.isfinite(fits.ols), fits.ols, dense[0])  # no OLS line: the models
    return spaced_path(start, dense, dense_k, fits.mixed, lambda k: pooling_path(stats, fits, k), n)


def spaced_path(start, dense, dense_k, end, models, n: int):
    """n frames from ``start`` (G, d) along a path of models to ``end`` (G, d), spaced so
    that every step moves the points equally on average: (kappas (n,), path (n, G, d)).

    ``dense`` (K, G, d) are the models at ``dense_k`` (KAPPA_START down to 1), on which
    the distance is measured (each coordinate in units of its spread, so intercepts and
    slopes count alike in any units); ``models(kappas)`` gives the frames' exact models.
    Between ``start`` and the first model the frames are a straight line (κ = ∞, see
    pooling_path_frames).
    """
    import numpy as np

    points = np.concatenate([start[None], dense])
    scale = np.std(start, axis=0)  # intercepts and slopes on comparable scales, any units
    scale = np.where(scale > 0, scale, np.std(points.reshape(-1, start.shape[1]), axis=0))
    scale = np.where(scale > 0, scale, 1.0)
    step = np.linalg.norm(np.diff(points, axis=0) / scale, axis=2).mean(axis=1)
    travelled = np.concatenate([[0.0], np.cumsum(step)])
    total = travelled[-1]
    if n < 3 or not total > 0:
        return np.array([np.inf, 1.0]), np.stack([start, end])
    targets = np.linspace(0.0, total, n)[1:-1]
    straight = targets < travelled[1]  # travelled[1]: the straight part's length
    share = targets[straight, None, None] / travelled[1]
    line = start[None] + share * (dense[0] - start)[None]
    kappas = np.exp(np.interp(targets[~straight], travelled[1:], np.log(dense_k)))
    between = models(kappas) if len(kappas) else line[:0]
    path = np.concatenate([start[None], line, between, end[None]])
    marks = np.full(1 + len(line), np.inf)
    return np.concatenate([marks, kappas, [1.0]]), path


def draw_to_file(
    picture, frames, settings, output: str | Path, progress=None, *, labels=None
) -> Path:
    """Render and encode by the file's suffix; written atomically. An .html page's
    hover names the clusters by ``labels``."""
    if is_page(output):
        from shrinkcli.page import write_page

        return write_page(picture, frames, settings, output, labels=labels)
    from shrinkcli.draw import render_frames, render_still
    from shrinkcli.encode import write_animation, write_still

    output = Path(output)
    if output.suffix.lower() == ".png":
        return write_still(render_still(picture, settings, frames), output)
    return write_animation(
        render_frames(picture, frames, settings),
        output,
        fps=settings.fps,
        n_frames=frames.n_frames,
        progress=progress,
    )


def make_picture(data, fits, *, scenario=None, title: str = "", settings=None):
    """The static inputs of the drawing, with a title and caption that say what it shows;
    for ``--layout explain`` or ``--story`` (``settings``) also the explain.Explanation."""
    import numpy as np

    from shrinkcli.draw import Picture
    from shrinkcli.summary import truth_rmse

    sizes = fits.sizes
    picture = Picture(
        ols=fits.ols,
        mixed=fits.mixed,
        fixed=fits.fixed,
        re_cov=fits.re_cov,
        sizes=sizes,
        balanced=bool(np.all(sizes == sizes[0])),
        truth=data.truth,
        title=title or describe(scenario, data),
        caption=caption_lines(fits, truth_rmse(fits, data.truth)),
        **axis_labels(data),
    )
    if settings is None or (settings.layout != "explain" and not settings.story):
        return picture
    import dataclasses

    from shrinkcli import window
    from shrinkcli.draw import axis_limits
    from shrinkcli.explain import explanation

    in_view = ~window.outside(fits.ols, *axis_limits(picture, settings))
    why = explanation(data, fits, settings.highlight, inside=in_view)
    return dataclasses.replace(picture, explanation=why)


def axis_labels(data) -> dict[str, str]:
    """The article's words for simulated data; the user's column names for their own."""
    if data.truth is not None:
        return {"xlabel": "Intercept", "ylabel": "Slope for x"}
    y, x, _ = data.names
    return {"xlabel": f"Intercept ({y} at {x} = 0)", "ylabel": f"Slope of {x}"}


def describe(scenario, data) -> str:
    """A title for an unnamed run: the data file, or what differs from the article's defaults."""
    if data.truth is None:
        return f"{Path(data.source).name}: {data.n_clusters} clusters, {data.n_obs} observations"
    if scenario is None:
        return "Simulated data"
    changed = scenario.differences()
    if not changed:
        return "Baseline (the article's defaults)"
    return ", ".join(f"{k.replace('_', ' ')} = {v:g}" for k, v in changed.items())


def short_number(v: float) -> str:
    """Three decimals in everyday ranges (the article's 0.540), else three significant
    digits, so that data in any units never print as 0.000 or a 100-digit number."""
    a = abs(v)
    if a == 0 or 1e-2 <= a < 100:
        return f"{v:.3f}"
    if 100 <= a < 1e5:
        return f"{v:.1f}"
    return f"{v:#.3g}"


def caption_lines(fits, rmse: dict | None) -> tuple[str, ...]:
    """Fitted variance components, what shrinkage bought, and clusters without an OLS line."""
    import math

    import numpy as np

    cov = fits.re_cov
    sd = np.sqrt(np.maximum(np.diag(cov), 0))
    corr = cov[0, 1] / (sd[0] * sd[1]) if sd[0] * sd[1] > 0 else math.nan
    corr_txt = f"{min(1.0, max(-1.0, corr)):.2f}" if math.isfinite(corr) else "n/a"
    f = short_number
    lines = [
        f"{fits.method} fit: SD intercept {f(sd[0])}, SD slope {f(sd[1])}, corr {corr_txt}, "
        f"residual SD {f(math.sqrt(fits.sigma2))}" + (" (singular)" if fits.singular else "")
    ]
    if rmse is not None:
        o, m = rmse["ols"], rmse["mixed"]
        lines.append(
            f"RMSE vs truth, OLS -> mixed: intercept {f(o['intercept'])} -> "
            f"{f(m['intercept'])}, slope {f(o['slope'])} -> {f(m['slope'])}"
        )
    missing = int(np.sum(~np.isfinite(fits.ols[:, 1])))
    if missing:
        lines.append(
            f"{missing} cluster{'s' if missing > 1 else ''} without an OLS slope "
            "shown at the mixed estimate only"
        )
    return tuple(lines)
