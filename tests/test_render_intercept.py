"""The random-intercept picture (shrinkcli.strip, render.strip): rows, window, pixels,
edge markers, the shrinkage-factor panel, the pooling path, the story and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import DATA
from PIL import Image

from shrinkcli.data import read_csv
from shrinkcli.explain import fractions
from shrinkcli.pipeline import fit_data
from shrinkcli.render.strip import StripLayout, render_strip, render_strip_still
from shrinkcli.render.style import OLIVE, ORANGE
from shrinkcli.scenario import Scenario
from shrinkcli.settings import RenderSettings
from shrinkcli.simulate import simulate
from shrinkcli.strip import (
    describe,
    intercept_path,
    outside,
    rows,
    strip_frames,
    strip_picture,
    strip_window,
)

REAL = DATA / "real"
SLEEP = DATA / "lme4" / "sleepstudy" / "data.csv"
COLUMNS = {  # y, x, cluster of tests/data/real/*/data.csv
    "ChickWeight": ("weight", "Time", "Chick"),
    "Orange": ("circumference", "age", "Tree"),
    "CO2": ("uptake", "conc", "Plant"),
    "Loblolly": ("height", "age", "Seed"),
}
SMALL = {"frames": 4, "hold": 2}


def _real(name: str, slope: bool):
    y, x, g = COLUMNS[name]
    data = read_csv(REAL / name / "data.csv", y=y, x=x if slope else None, cluster=g)
    formula = f"{y} ~ {x} + (1 | {g})" if slope else f"{y} ~ 1 + (1 | {g})"
    return data, fit_data(data, formula=formula)


def _sim(scenario: Scenario, slope: bool):
    data = simulate(scenario)
    return data, fit_data(
        data, formula="y ~ x + (1 | cluster)" if slope else "y ~ 1 + (1 | cluster)"
    )


def _case(data, fits, **settings):
    st = RenderSettings(**{**SMALL, **settings})
    pic = strip_picture(data, fits, settings=st)
    return pic, strip_frames(data, fits, pic, st), st


@pytest.fixture(scope="module")
def chick():
    return _real("ChickWeight", True)


@pytest.fixture(scope="module")
def chick_mean():
    return _real("ChickWeight", False)


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


# ----------------------------------------------------------------------------- numbers


def test_rows_by_size_put_the_largest_on_top_and_by_estimate_the_highest(chick):
    _, fits = chick
    sizes, mixed = fits.sizes, fits.mixed[:, 0]
    by_size, by_est = rows(sizes, mixed, "size"), rows(sizes, mixed, "estimate")
    for r in (by_size, by_est):
        assert sorted(r) == list(range(len(sizes)))  # one row each
    top = np.argsort(by_size)
    assert np.all(np.diff(sizes[top]) >= 0)  # size never falls going up
    same = np.diff(sizes[top]) == 0  # ties by estimate
    assert np.all(np.diff(mixed[top])[same] >= 0)
    assert np.all(np.diff(mixed[np.argsort(by_est)]) >= 0)
    assert not np.array_equal(by_size, by_est)


@pytest.mark.parametrize("obs", [2, 3, 10])
@pytest.mark.parametrize("slope", [True, False])
def test_window_holds_every_mixed_estimate_and_wild_ones_do_not_widen_it(obs, slope):
    data, fits = _sim(Scenario(obs_per_cluster=obs, sigma=2.0), slope)
    pic, _, st = _case(data, fits)
    lo, hi = strip_window(pic, "auto")
    assert lo <= pic.mixed.min() and pic.mixed.max() <= hi
    assert lo <= pic.fixed - 3 * pic.re_sd and pic.fixed + 3 * pic.re_sd <= hi
    wild = pic.ols.copy()
    wild[0] = pic.fixed + 1e6  # one absurd by-cluster estimate changes nothing
    import dataclasses

    assert strip_window(dataclasses.replace(pic, ols=wild), "auto") == (lo, hi)
    shown = describe(pic, st)
    assert shown["window"]["estimate"] == [lo, hi]
    assert shown["outside"] == {"by_cluster": int(outside(pic.ols, (lo, hi)).sum()), "mixed": 0}
    assert shown["kind"] == "strip" and shown["order"] == "size"


@pytest.mark.parametrize("slope", [True, False])
def test_pooling_path_runs_exactly_from_no_pooling_to_the_fit(slope):
    data, fits = _sim(Scenario(balanced=0.5), slope)
    path = intercept_path(data, fits, np.array([1e12, 1.0]))
    np.testing.assert_allclose(path[1], fits.mixed[:, 0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(path[0], fits.ols[:, 0], rtol=1e-6, atol=1e-6)
    pic, frames, _ = _case(data, fits, path="pooling", frames=12)
    np.testing.assert_array_equal(frames.positions[0, :, 0], pic.ols)
    np.testing.assert_array_equal(frames.positions[-1, :, 0], pic.mixed)
    assert frames.kappa[0] == np.inf and frames.kappa[-1] == 1.0
    assert np.all(np.diff(frames.kappa[1 : frames.n_move]) <= 0)


def test_intercept_only_share_pulled_is_the_shrinkage_factor(chick_mean):
    data, fits = chick_mean
    pic, _, _ = _case(data, fits)
    pulled = fractions(pic.ols, pic.mixed, pic.fixed)  # share of the way to the population
    np.testing.assert_allclose(pulled, fits.shrinkage, rtol=1e-9)
    np.testing.assert_array_equal(pic.shrinkage, fits.shrinkage)


# ----------------------------------------------------------------------------- pixels


def _darkness_column(image: np.ndarray, layout: StripLayout) -> int:
    """The column of the axes whose pixels are darkest on average (the population line)."""
    cv = layout.canvas
    x0, y0, x1, y1 = (int(round(v)) for v in cv.box(layout.ax))
    band = image[cv.height - y1 + 2 : cv.height - y0 - 2, x0:x1].astype(float)
    return x0 + int(np.argmax((255 - band).mean(axis=(0, 2))))


@pytest.mark.parametrize("name", ["ChickWeight", "Orange", "CO2", "Loblolly"])
def test_population_line_is_drawn_at_the_fixed_intercept(name):
    data, fits = _real(name, True)
    pic, frames, st = _case(data, fits)
    stream = render_strip(pic, frames, st)
    image = np.asarray(stream.draw(frames.n_frames - 1))
    want = stream.scene.to_pixel([pic.fixed], [0.0])[0, 0]
    assert abs(_darkness_column(image, stream.scene) - want) <= 1.0


@pytest.mark.parametrize("which", ["chick", "sleep", "orange"])
def test_first_frame_orange_at_no_pooling_and_last_frame_olive_at_mixed(which, chick):
    if which == "chick":
        data, fits = chick
    elif which == "sleep":
        data = read_csv(SLEEP, y="Reaction", x=None, cluster="Subject")
        fits = fit_data(data, formula="Reaction ~ 1 + (1 | Subject)")
    else:
        data, fits = _real("Orange", True)
    pic, frames, st = _case(data, fits)
    stream = render_strip(pic, frames, st)
    lo, hi = strip_window(pic, st.zoom)
    ok = pic.has_ols & (pic.ols > lo) & (pic.ols < hi)
    orange, olive = _rgb(ORANGE), _rgb(OLIVE)
    first = np.asarray(stream.draw(0)).astype(float)
    at = np.round(stream.scene.to_pixel(pic.ols[ok], pic.rows[ok])).astype(int)
    px = first[at[:, 1], at[:, 0]]
    assert np.all(np.linalg.norm(px - orange, axis=1) < np.linalg.norm(px - olive, axis=1))
    assert np.all(px[:, 0] - px[:, 2] > 40)  # orange-ish, not the paper or the line
    last = np.asarray(stream.draw(frames.n_frames - 1)).astype(float)
    at = np.round(stream.scene.to_pixel(pic.mixed, pic.rows)).astype(int)
    px = last[at[:, 1], at[:, 0]]
    np.testing.assert_allclose(px, np.tile(olive, (len(px), 1)), atol=3)


def test_order_moves_the_rows_on_the_image(chick):
    data, fits = chick
    spots = {}
    for order in ("size", "estimate"):
        pic, frames, st = _case(data, fits, order=order)
        layout = StripLayout(pic, st)
        spots[order] = layout.to_pixel(pic.mixed, pic.rows)[:, 1]  # image row, 0 at top
    sizes, mixed = fits.sizes, fits.mixed[:, 0]
    big, small = np.argmax(sizes), np.argmin(sizes)
    assert spots["size"][big] < spots["size"][small]  # larger higher up
    hi, low = np.argmax(mixed), np.argmin(mixed)
    assert spots["estimate"][hi] == spots["estimate"].min()
    assert spots["estimate"][low] == spots["estimate"].max()
    assert not np.allclose(spots["size"], spots["estimate"])


def test_edge_markers_one_per_estimate_beyond_the_window():
    data, fits = _sim(Scenario(obs_per_cluster=2, sigma=2.0), False)
    pic, frames, st = _case(data, fits)
    stream = render_strip(pic, frames, st)
    beyond = outside(pic.ols, strip_window(pic, st.zoom))
    assert beyond.sum() > 0
    tris = stream.scene.strip.edge["by_cluster"]
    assert len(tris) == beyond.sum()
    cv = stream.scene.canvas
    x0, _, x1, _ = cv.box(stream.scene.ax)
    right = pic.ols[beyond] > pic.fixed
    assert np.all(np.abs(tris[right, 0, 0] - (x1 - 1)) < 1e-9)  # tips on the right edge
    assert np.all(np.abs(tris[~right, 0, 0] - (x0 + 1)) < 1e-9)
    assert f"{beyond.sum()} by-cluster estimates beyond the edge" in "\n".join(
        stream.scene.strip.caption_lines()
    )


def test_explain_panel_draws_the_shrinkage_factor_and_the_shares_reach_it(chick_mean):
    data, fits = chick_mean
    pic, frames, st = _case(data, fits, layout="explain")
    stream = render_strip(pic, frames, st)
    panel = stream.scene.factor
    offsets = np.asarray(panel.factor.get_offsets())
    np.testing.assert_array_equal(offsets[:, 0], fits.sizes)
    np.testing.assert_array_equal(offsets[:, 1], fits.shrinkage)
    t = fits.theta[0] ** 2
    np.testing.assert_allclose(panel.curve, 1 / (1 + t * panel.curve_n), rtol=1e-12)
    stream.draw(frames.n_frames - 1)
    shares = np.asarray(panel.points.get_offsets())[:, 1]
    np.testing.assert_allclose(shares, fits.shrinkage[panel.index], rtol=1e-9)
    stream.draw(0)
    assert np.allclose(np.asarray(panel.points.get_offsets())[:, 1], 0.0)


def test_story_starts_at_complete_pooling_and_hides_no_pooling_until_reached(chick):
    data, fits = chick
    pic, frames, st = _case(data, fits, story=True)
    assert np.all(frames.positions[0, :, 0] == pic.pooled)
    np.testing.assert_array_equal(frames.positions[-1, :, 0], pic.mixed)
    stream = render_strip(pic, frames, st)
    assert stream.scene.strip.reveal  # the by-cluster points wait for their layer
    first = np.asarray(stream.draw(0)).astype(float)
    at = np.round(stream.scene.to_pixel(pic.ols, pic.rows)).astype(int)
    far = np.abs(at[:, 0] - stream.scene.to_pixel([pic.pooled], [0.0])[0, 0]) > 20
    px = first[at[far, 1], at[far, 0]]
    assert np.all(px.min(axis=1) > 200)  # paper (and faint lines), no orange points yet


def test_small_and_many_clusters_render():
    data, fits = _sim(Scenario(n_cluster=1000, obs_per_cluster=4), False)
    pic, frames, st = _case(data, fits)
    image = render_strip_still(pic, st, frames)
    assert image.shape == (450, 600, 3)
    data, fits = _sim(Scenario(n_cluster=50), True)
    pic, frames, st = _case(data, fits, width=300, height=225)
    assert render_strip_still(pic, st, frames).shape == (225, 300, 3)


# ----------------------------------------------------------------------------- command line


@pytest.mark.parametrize("name", list(COLUMNS))
@pytest.mark.parametrize("slope", [True, False])
def test_cli_draws_both_formulas_on_the_real_data(name, slope, cli, tmp_path):
    y, x, g = COLUMNS[name]
    formula = f"{y} ~ {x} + (1 | {g})" if slope else f"{y} ~ 1 + (1 | {g})"
    suffix = ".gif" if slope else ".png"
    out = tmp_path / f"a{suffix}"
    res = cli("run", "--data", REAL / name / "data.csv", "--formula", formula, "-o", out,
              "--frames", 3, "--hold", 1, "--width", 300, "--height", 226)  # fmt: skip
    assert res.code == 0, res.err
    with Image.open(out) as im:
        assert im.size == (300, 226)
        assert im.format == ("GIF" if slope else "PNG")
        if slope:
            assert im.n_frames == 4


def test_cli_simulated_json_describes_the_strip(cli, tmp_path):
    out = tmp_path / "a.gif"
    res = cli("run", "--formula", "y ~ 1 + (1 | cluster)", "-o", out, "--frames", 3,
              "--hold", 0, "--json", "--truth", "--order", "estimate")  # fmt: skip
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    pic = doc["picture"]
    assert pic["kind"] == "strip" and pic["order"] == "estimate"
    lo, hi = pic["window"]["estimate"]
    assert lo < doc["fixed"]["intercept"]["estimate"] < hi
    assert pic["axis_labels"]["x"] == "Cluster mean"
    assert pic["outside"]["mixed"] == 0
    with Image.open(out) as im:
        assert im.n_frames == 3


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--formula", "y ~ 1 + (1 | cluster)", "--order", "height"], "use size"),
        (["--order", "size"], "has no rows"),
        (["--formula", "y ~ x + (1 | cluster)", "--layout", "explain", "--highlight", "1"],
         "--highlight"),
    ],
)  # fmt: skip
def test_cli_refuses_bad_order_in_one_line(args, words, cli, tmp_path):
    out = tmp_path / "a.gif"
    res = cli("run", *args, "-o", out)
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1
    assert words in res.err and not out.exists()
    if "height" in args:
        assert "size" in res.err and "estimate" in res.err


def test_notebook_animate_draws_a_random_intercept_model(tmp_path):
    import pandas as pd

    import shrinkcli

    df = pd.read_csv(SLEEP)
    anim = shrinkcli.animate(df, "Reaction ~ 1 + (1 | Subject)", frames=3, hold=0, width=300,
                             height=226)  # fmt: skip
    assert anim._repr_html_().startswith('<img src="data:image/gif;base64,')
    still = tmp_path / "s.png"
    shrinkcli.animate(df, "Reaction ~ Days + (1 | Subject)", output=still, order="estimate")
    with Image.open(still) as im:
        assert im.size == (600, 450)


def test_batch_runs_a_random_intercept_scenario(cli, tmp_path):
    toml = tmp_path / "ri.toml"
    toml.write_text(
        'formula = "y ~ 1 + (1 | cluster)"\nobs-per-cluster = 4\nframes = 3\nhold = 0\n'
    )
    res = cli("batch", toml, "--out-dir", tmp_path / "out", "--format", "png", "--json")
    assert res.code == 0, res.err
    (row,) = json.loads(res.out)["scenarios"]
    assert row["status"] == "ok"
    assert row["fit"]["fixed_slope"] is None and row["fit"]["var_slope"] is None
    assert (tmp_path / "out" / "ri.png").exists()


def test_page_slides_along_the_exact_pooling_path(cli, tmp_path):
    pytest.importorskip("plotly")
    from shrinkcli.strip_page import figure

    data, fits = _real("ChickWeight", True)
    fig = figure(data, fits, RenderSettings(frames=12))
    pic = strip_picture(data, fits)
    ok = pic.has_ols
    assert len(fig.frames) == 12 and len(fig.layout.sliders[0].steps) == 12
    np.testing.assert_array_equal(fig.frames[0].data[0].x, pic.ols[ok])
    np.testing.assert_array_equal(fig.frames[-1].data[0].x, pic.mixed[ok])
    labels = [step.label for step in fig.layout.sliders[0].steps]
    assert labels[0].startswith("∞ (no pooling") and labels[-1].startswith("1 (the fitted")
    assert fig.layout.sliders[0].currentvalue.prefix == "κ = "
    assert len(set(labels)) == len(labels)  # plotly finds the shown step by its label
    line = fig.layout.shapes[0]
    assert line.x0 == line.x1 == pic.fixed
    assert tuple(fig.layout.xaxis.range) == strip_window(pic, "auto")
    out = tmp_path / "p.html"
    res = cli("run", "--data", REAL / "Orange" / "data.csv", "--formula",
              "circumference ~ 1 + (1 | Tree)", "-o", out, "--frames", 4)  # fmt: skip
    assert res.code == 0, res.err
    text = out.read_text()
    assert text.startswith("<!doctype html>") and "shrinkage factor" in text
    assert 'src="https://cdn.plot.ly' not in text  # plotly.js inline: works offline
    assert "Plotly.animate(" not in text  # it opens at no pooling, until Play or the slider


def test_a_singular_fits_equal_mixed_estimates_are_ordered_by_their_own_estimates():
    sizes, mixed, ols = np.array([7, 7, 7]), np.zeros(3), np.array([2.0, -1.0, 5.0])
    for order in ("size", "estimate"):
        assert rows(sizes, mixed, order, ols).tolist() == [1.0, 0.0, 2.0]
    data, fits = _real("Orange", False)  # circumference ~ 1 + (1 | Tree) is singular
    assert fits.singular
    pic, _, _ = _case(data, fits)
    assert np.all(np.diff(pic.ols[np.argsort(pic.rows)]) > 0)
