"""The picture's window: what it holds, what lies beyond it, and where the edge markers go."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import SCENARIOS, reference_picture

from shrinkcli import window
from shrinkcli.draw import (
    MIN_TEXT_PX,
    ORANGE,
    RenderSettings,
    Scene,
    axis_limits,
    describe_picture,
    render_still,
)

SMALL = {"width": 300, "height": 226, "frames": 4, "hold": 2}


def _inside(points, xlim, ylim) -> np.ndarray:
    return (
        (xlim[0] <= points[:, 0])
        & (points[:, 0] <= xlim[1])
        & (ylim[0] <= points[:, 1])
        & (points[:, 1] <= ylim[1])
    )


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_auto_window_holds_every_mixed_estimate_and_counts_the_rest(scenario):
    pic = reference_picture(scenario)
    settings = RenderSettings()
    xlim, ylim = axis_limits(pic, settings)
    assert _inside(pic.mixed, xlim, ylim).all()
    assert _inside(pic.fixed[None], xlim, ylim).all()
    shown = describe_picture(pic, settings)
    finite = np.isfinite(pic.ols).all(axis=1)
    assert shown["outside"]["by_cluster"] == int((finite & ~_inside(pic.ols, xlim, ylim)).sum())
    assert shown["outside"]["mixed"] == 0
    assert shown["window"] == {"intercept": list(xlim), "slope": list(ylim)}
    # fixed effects +- 3 fitted SDs at least, on each side
    sd = np.sqrt(np.diag(pic.re_cov))
    assert xlim[0] <= pic.fixed[0] - 3 * sd[0] and xlim[1] >= pic.fixed[0] + 3 * sd[0]
    assert ylim[0] <= pic.fixed[1] - 3 * sd[1] and ylim[1] >= pic.fixed[1] + 3 * sd[1]


def test_auto_window_of_the_baseline_is_close_to_the_articles():
    pic = reference_picture("baseline")
    auto = axis_limits(pic, RenderSettings())
    article = axis_limits(pic, RenderSettings(zoom="article"))
    for a, b in zip(auto, article, strict=True):
        ratio = (a[1] - a[0]) / (b[1] - b[0])
        assert 0.9 < ratio < 1.2


def test_wild_ols_estimates_do_not_widen_the_auto_window():
    pic = reference_picture("fewer_obs")
    wild = pic.ols.copy()
    wild[0] = [1e6, -1e6]
    before = axis_limits(pic, RenderSettings())
    after = axis_limits(dataclasses.replace(pic, ols=wild), RenderSettings())
    assert before == after
    # the data zoom, in contrast, holds everything
    (x0, x1), (y0, y1) = axis_limits(
        dataclasses.replace(pic, ols=wild), RenderSettings(zoom="data")
    )
    assert x1 > 1e6 and y0 < -1e6


def test_window_scales_with_the_units():
    pic = reference_picture("baseline")
    for factor in (1e-100, 1e100):
        scaled = dataclasses.replace(
            pic,
            ols=pic.ols * factor,
            mixed=pic.mixed * factor,
            fixed=pic.fixed * factor,
            re_cov=pic.re_cov * factor**2,
        )
        a = np.array(axis_limits(pic, RenderSettings()))
        b = np.array(axis_limits(scaled, RenderSettings()))
        np.testing.assert_allclose(b, a * factor, rtol=1e-12)


def test_a_zero_spread_axis_still_gets_a_window():
    pic = reference_picture("baseline")
    flat = dataclasses.replace(
        pic,
        re_cov=np.zeros((2, 2)),
        mixed=np.tile(pic.fixed, (pic.n_clusters, 1)),
    )
    (x0, x1), (y0, y1) = axis_limits(flat, RenderSettings())
    assert x1 > x0 and y1 > y0
    # from the robust spread of the OLS estimates
    iqr = np.subtract(*np.quantile(pic.ols[:, 0], [0.75, 0.25])) / 1.349
    assert x1 - x0 == pytest.approx(2 * 3 * iqr * 1.1)


def test_edge_points_lie_on_the_box_and_on_the_segment():
    rng = np.random.default_rng(1)
    origins = rng.uniform(-1, 1, (200, 2))
    points = rng.normal(0, 10, (200, 2))
    out = window.outside(points, (-1, 1), (-1, 1))
    at = window.edge_points(points[out], origins[out], (-1, 1), (-1, 1))
    on_edge = np.isclose(np.abs(at), 1.0).any(axis=1)
    assert on_edge.all()
    # collinear with origin and point, between them
    d1, d2 = at - origins[out], points[out] - origins[out]
    np.testing.assert_allclose(d1[:, 0] * d2[:, 1] - d1[:, 1] * d2[:, 0], 0, atol=1e-9)
    assert ((d1 * d2).sum(axis=1) >= 0).all()


def test_beyond_edge_caption_line():
    assert window.beyond_edge_line(0, 0) is None
    assert window.beyond_edge_line(7, 0) == "7 by-cluster estimates beyond the edge (marked there)"
    line = window.beyond_edge_line(1, 2)
    assert line == "1 by-cluster estimate and 2 mixed estimates beyond the edge (marked there)"


def test_edge_marker_sits_where_the_line_leaves_the_window():
    pic = reference_picture("baseline")
    j = int(np.argmin(np.abs(pic.mixed[:, 1] - pic.fixed[1])))
    ols = pic.ols.copy()
    ols[j] = [pic.mixed[j, 0] + 100.0, pic.mixed[j, 1]]  # far to the right, same slope
    far = dataclasses.replace(pic, ols=ols)
    settings = RenderSettings()
    scene = Scene(far, settings)
    img = render_still(far, settings)
    row = int(round(scene.to_pixel(pic.mixed[j])[0, 1]))
    x_right = scene.to_pixel(np.array([axis_limits(far, settings)[0][1], pic.mixed[j, 1]]))[0, 0]
    strip = img[row - 1 : row + 2, int(x_right) - 10 : int(x_right)].reshape(-1, 3).astype(int)
    orange = np.array([int(ORANGE[i : i + 2], 16) for i in (1, 3, 5)])
    assert (np.abs(strip - orange).sum(axis=1) < 40).any()
    assert describe_picture(far, settings)["outside"]["by_cluster"] >= 1


def test_article_zoom_counts_mixed_estimates_beyond_it():
    pic = reference_picture("more_subject_variance")
    shown = describe_picture(pic, RenderSettings(zoom="baseline"))
    assert shown["zoom"] == "article"
    assert shown["outside"]["mixed"] > 0 and shown["outside"]["by_cluster"] > 40


def test_text_stays_legible_on_a_small_picture():
    pic = reference_picture("baseline")
    scene = Scene(pic, RenderSettings(width=300, height=225))
    dpi = scene.fig.dpi
    texts = [t for t in scene.fig.texts if t.get_text()]
    texts += [t for leg in scene.fig.legends for t in leg.get_texts()]
    texts += scene.ax.get_xticklabels() + scene.ax.get_yticklabels()
    assert texts
    for t in texts:
        assert t.get_fontsize() * dpi / 72 >= MIN_TEXT_PX - 1e-9, t.get_text()


def test_many_clusters_thin_the_markers():
    pic = reference_picture("baseline")
    many = dataclasses.replace(
        pic,
        ols=np.tile(pic.ols, (10, 1)),
        mixed=np.tile(pic.mixed, (10, 1)),
        sizes=np.tile(pic.sizes, 10),
    )
    few_scene, many_scene = (
        Scene(pic, RenderSettings(**SMALL)),
        Scene(many, RenderSettings(**SMALL)),
    )
    assert many_scene.diameter.max() < few_scene.diameter.max()
    assert many_scene.alpha.max() < few_scene.alpha.max()


def test_pooling_tracks_are_drawn_as_followed():
    from matplotlib.collections import LineCollection

    pic = reference_picture("baseline")
    f = 7
    lam = np.linspace(0, 1, f)[:, None, None] ** 2
    tracks = pic.ols[None] * (1 - lam) + pic.mixed[None] * lam
    tracks[:, :, 1] += np.sin(np.pi * np.linspace(0, 1, f))[:, None] * 0.1  # a curve
    scene = Scene(pic, RenderSettings(**SMALL), kappa_max=1e8, tracks=tracks)
    lines = [c for c in scene.ax.collections if isinstance(c, LineCollection)]
    assert len(lines) == 1
    paths = lines[0].get_segments()
    assert len(paths) == pic.n_clusters and all(len(p) == f for p in paths)
    # the middle of each drawn track is the middle frame's position, in pixels
    mid = scene.ax.transData.transform(tracks[f // 2])
    np.testing.assert_allclose(np.array([p[f // 2] for p in paths]), mid, atol=1e-6)


@pytest.mark.parametrize("zoom", ["auto", "article", "baseline", "data"])
def test_cli_accepts_every_zoom_and_reports_it(cli, tmp_path, zoom):
    res = cli("run", "--n-cluster", "8", "--frames", "2", "--hold", "0", "--zoom", zoom,
              "-o", tmp_path / "a.png", "--json")  # fmt: skip
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["picture"]["zoom"] == window.canonical_zoom(zoom)
    assert doc["picture"]["axis_labels"] == {"x": "Intercept", "y": "Slope for x"}


def test_cli_bad_zoom_names_the_choices(cli, tmp_path):
    res = cli("run", "--zoom", "far", "-o", tmp_path / "a.png")
    assert res.code == 2
    assert "auto" in res.err and "article" in res.err and len(res.err.strip().splitlines()) == 1
    assert not (tmp_path / "a.png").exists()


REAL = {  # R's data sets, exported by tests/data/real/make_refs.R
    "ChickWeight": ("weight", "Time", "Chick"),
    "Orange": ("circumference", "age", "Tree"),
    "CO2": ("uptake", "conc", "Plant"),
    "Loblolly": ("height", "age", "Seed"),
}


@pytest.mark.parametrize("name", list(REAL))
def test_real_data_pictures_fit_and_speak_the_users_words(cli, tmp_path, name):
    from conftest import DATA

    from shrinkcli.data import read_csv
    from shrinkcli.fit import fit_mixed

    y, x, g = REAL[name]
    path = DATA / "real" / name / "data.csv"
    res = cli("run", "--data", path, "--y", y, "--x", x, "--cluster", g,
              "--frames", "2", "--hold", "0", "-o", tmp_path / "a.png", "--json")  # fmt: skip
    assert res.code == 0, res.err
    shown = json.loads(res.out)["picture"]
    assert shown["axis_labels"] == {"x": f"Intercept ({y} at {x} = 0)", "y": f"Slope of {x}"}
    fits = fit_mixed(read_csv(path, y=y, x=x, cluster=g))
    xlim, ylim = shown["window"]["intercept"], shown["window"]["slope"]
    assert _inside(fits.mixed, xlim, ylim).all()
    assert shown["outside"]["mixed"] == 0
    finite = np.isfinite(fits.ols).all(axis=1)
    assert shown["outside"]["by_cluster"] == int((finite & ~_inside(fits.ols, xlim, ylim)).sum())
    # the article's fixed window (fixed effects +- 1.65, +- 0.825 in absolute units)
    article = cli("run", "--data", path, "--y", y, "--x", x, "--cluster", g, "--zoom", "article",
                  "--frames", "2", "--hold", "0", "-o", tmp_path / "b.png", "--json")  # fmt: skip
    outside = json.loads(article.out)["picture"]["outside"]
    box = (
        [fits.fixed[0] - 1.65, fits.fixed[0] + 1.65],
        [fits.fixed[1] - 0.825, fits.fixed[1] + 0.825],
    )
    assert outside["mixed"] == int((~_inside(fits.mixed, *box)).sum())


def test_title_names_the_data_file(tmp_path):
    from conftest import DATA

    from shrinkcli.data import read_csv
    from shrinkcli.fit import fit_mixed
    from shrinkcli.pipeline import make_picture

    data = read_csv(DATA / "real" / "Orange" / "data.csv", y="circumference", x="age",
                    cluster="Tree")  # fmt: skip
    pic = make_picture(data, fit_mixed(data))
    assert pic.title.startswith("data.csv: 5 clusters, 35 observations")
    assert pic.xlabel == "Intercept (circumference at age = 0)" and pic.ylabel == "Slope of age"


def test_singular_pooling_path_says_its_straight_part_is_not_a_model():
    from conftest import DATA

    from shrinkcli.data import read_csv
    from shrinkcli.draw import render_frames
    from shrinkcli.fit import fit_mixed
    from shrinkcli.pipeline import make_frames, make_picture

    data = read_csv(DATA / "real" / "CO2" / "data.csv", y="uptake", x="conc", cluster="Plant")
    fits = fit_mixed(data)
    assert fits.singular
    settings = RenderSettings(path="pooling", frames=20, hold=0)
    frames = make_frames(data, fits, settings)
    stream = render_frames(make_picture(data, fits), frames, settings)
    caption = " ".join(t.get_text() for t in stream.scene.fig.texts)
    assert "κ = ∞ part runs straight" in caption and "Pooling path" in caption
    # a non-singular fit has no such part
    base = reference_picture("baseline")
    lam = np.linspace(0, 1, 5)[:, None, None]
    from shrinkcli.tween import path_frames

    plain = path_frames(base.ols[None] * (1 - lam) + base.mixed[None] * lam,
                        np.array([np.inf, 1e3, 1e2, 10, 1]), frames=4, hold=0)  # fmt: skip
    text = " ".join(t.get_text() for t in render_frames(base, plain, settings).scene.fig.texts)
    assert "Pooling path" in text and "runs straight" not in text
