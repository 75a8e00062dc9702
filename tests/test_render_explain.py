"""The explaining layout: the data panel's lines, the shrinkage panel's points and
curves, the highlighted clusters in the plane, frame counts, sizes and reruns."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import DATA
from PIL import Image

from shrinkcli.data import read_csv
from shrinkcli.draw import HIGHLIGHT, RenderSettings, render_frames, render_still
from shrinkcli.errors import UsageError
from shrinkcli.explain import shrinkage, typical_curve
from shrinkcli.fit import fit_mixed, sufficient_stats
from shrinkcli.pipeline import make_frames, make_picture, run
from shrinkcli.render.shrinkage import EDGE, OFFSET, YLIM
from shrinkcli.scenario import Scenario
from shrinkcli.simulate import simulate

assert YLIM == (-0.3, 1.3) and EDGE == 0.03  # the numbers the tests below spell out

SMALL = {"width": 900, "height": 340, "frames": 4, "hold": 2}
UNBALANCED = Scenario(balanced=0.5, sd_int=0.5, sd_slope=0.5, sigma=0.25)


def _case(scenario: Scenario | None = None, **settings):
    if scenario is None:
        data = read_csv(DATA / "real" / "ChickWeight" / "data.csv", y="weight", x="Time",
                        cluster="Chick")  # fmt: skip
    else:
        data = simulate(scenario)
    fits = fit_mixed(data)
    st = RenderSettings(layout="explain", **{**SMALL, **settings})
    return data, fits, st, make_picture(data, fits, scenario=scenario, settings=st)


@pytest.fixture(scope="module")
def baseline():
    return _case(Scenario())


@pytest.fixture(scope="module")
def unbalanced():
    return _case(UNBALANCED)


def _stream(case):
    data, fits, st, pic = case
    frames = make_frames(data, fits, st)
    return render_frames(pic, frames, st), frames


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


@pytest.mark.parametrize("name", ["baseline", "unbalanced", "chick"])
def test_data_lines_are_the_ols_lines_first_and_the_mixed_lines_last(name, baseline, unbalanced):
    case = {"baseline": baseline, "unbalanced": unbalanced}.get(name) or _case(None)
    _, fits, _, pic = case
    stream, frames = _stream(case)
    panel = stream.scene.data
    chosen = pic.explanation.highlight
    assert len(chosen) == 3 and len(panel.lines) == 3
    for i, coef in ((0, fits.ols), (frames.n_frames - 1, fits.mixed)):
        stream.draw(i)
        for line, ax, j in zip(panel.lines, panel.axes, chosen, strict=True):
            x = np.asarray(line.get_xdata(), dtype=float)
            y = np.asarray(line.get_ydata(), dtype=float)
            assert tuple(x) == ax.get_xlim()  # across the whole small panel
            a, b = coef[j]
            assert np.array_equal(y, [a + b * x[0], a + b * x[1]])  # exactly, not nearly
    # in between, the line is the moving point's: intercept + slope x of frame 1
    stream.draw(1)
    line, j = panel.lines[0], chosen[0]
    a, b = frames.positions[1, j]
    x = np.asarray(line.get_xdata(), dtype=float)
    assert np.array_equal(np.asarray(line.get_ydata()), [a + b * x[0], a + b * x[1]])
    assert not np.array_equal([a, b], fits.ols[j]) and not np.array_equal([a, b], fits.mixed[j])


def test_data_lines_are_drawn_in_their_colour(baseline):
    stream, frames = _stream(baseline)
    image = stream.draw(frames.n_frames - 1)
    panel, h = stream.scene.data, stream.scene.canvas.height
    for line, colour in zip(panel.lines, HIGHLIGHT, strict=False):
        # the middle of the line, in image pixels
        xy = line.get_transform().transform(np.column_stack(line.get_data()))
        c, r = (xy[0] + xy[1]) / 2
        patch = image[int(h - r) - 1 : int(h - r) + 2, int(c) - 1 : int(c) + 2].reshape(-1, 3)
        assert (np.abs(patch.astype(float) - _rgb(colour)).max(axis=1) < 30).any(), colour


def test_highlighted_clusters_are_ringed_in_the_plane_in_their_colours(unbalanced):
    _, fits, _, pic = unbalanced
    stream, frames = _stream(unbalanced)
    plane = stream.scene.plane
    for i in (0, frames.n_frames - 1):
        stream.draw(i)
        np.testing.assert_array_equal(
            plane.rings.get_offsets(), frames.positions[i][list(pic.explanation.highlight)]
        )
    edges = plane.rings.get_edgecolors()[:, :3]
    np.testing.assert_allclose(edges * 255, [_rgb(c) for c in HIGHLIGHT[:3]], atol=0.5)
    # the default: the one that moves most (in view), the smallest and the largest
    chosen = pic.explanation.highlight
    has = np.isfinite(fits.ols).all(axis=1)
    assert fits.sizes[chosen[1]] == fits.sizes[has].min()
    assert fits.sizes[chosen[2]] == fits.sizes[has].max()


def stream_index(pic):
    marked = list(pic.explanation.highlight)
    others = [j for j in np.flatnonzero(pic.has_ols) if j not in marked]
    return np.array(others + marked)


@pytest.mark.parametrize("which", ["baseline", "unbalanced"])
def test_shrinkage_points_are_the_share_of_the_way_travelled(which, baseline, unbalanced):
    case = baseline if which == "baseline" else unbalanced
    data, fits, _, pic = case
    stream, frames = _stream(case)
    panel = stream.scene.shrinkage
    ex = pic.explanation
    idx = stream_index(pic)
    assert ex.axis == ("information" if which == "baseline" else "size")
    offset = OFFSET if ex.axis == "size" else 0.0
    observed = shrinkage(sufficient_stats(data), fits).observed
    for i in (0, 1, frames.n_frames - 1):
        stream.draw(i)
        want = (fits.ols[idx] - frames.positions[i][idx]) / (fits.ols[idx] - fits.fixed)
        if i == frames.n_frames - 1:  # the end: the observed shrinkage, computed apart
            np.testing.assert_array_equal(want, observed[idx])
        if i == 0:
            assert np.all(want == 0)
        for c, scatter in enumerate(panel.scatters):
            xy = scatter.get_offsets()
            np.testing.assert_array_equal(xy[:, 0], ex.x[idx] + (2 * c - 1) * offset)
            out = (want[:, c] < -0.3) | (want[:, c] > 1.3)  # beyond the panel: at its edge
            inner = np.clip(want[:, c], -0.27, 1.27)
            shown = np.where(out, inner, want[:, c])
            np.testing.assert_array_equal(xy[:, 1], shown)
            # clipped points are hollow: no face, an outline
            faces = scatter.get_facecolors()
            assert np.all(faces[out, 3] == 0) and np.all(faces[~out, 3] > 0)
    assert "Shrinkage panel:" in " ".join(t.get_text() for t in stream.scene.fig.texts)


def test_shrinkage_curve_and_predictions_are_their_formulas(baseline, unbalanced):
    for data, fits, st, pic in (baseline, unbalanced):
        scene = render_frames(pic, make_frames(data, fits, st), st).scene
        ex, ax = pic.explanation, scene.shrinkage.ax
        stats = sufficient_stats(data)
        curves = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == len(ex.curve_x)]
        assert len(curves) == 2
        for c, line in enumerate(curves):
            np.testing.assert_array_equal(line.get_xdata(), ex.curve_x)
            np.testing.assert_array_equal(line.get_ydata(), ex.curve[:, c])
        if ex.axis == "size":
            np.testing.assert_array_equal(ex.curve, typical_curve(stats, fits, ex.curve_x))
        # the typical curve by hand: a cluster of that size and spread, Λ = Σ / σ²
        x, codes = np.asarray(data.x), np.asarray(data.codes)
        n_all = len(x)
        m = x.mean()
        var = sum(((x[codes == j] - x[codes == j].mean()) ** 2).sum()
                  for j in range(data.n_clusters)) / n_all  # fmt: skip
        for k in (0, len(ex.curve_x) // 2, len(ex.curve_x) - 1):
            if ex.axis == "size":
                n, v = ex.curve_x[k], var
            else:
                n = fits.sizes[0]
                v = ex.curve_x[k] / n
            s = n * np.array([[1, m], [m, v + m * m]])
            lam = fits.re_cov / fits.sigma2
            r = np.linalg.solve(np.eye(2) + lam @ s, lam @ s)
            np.testing.assert_allclose(ex.curve[k], 1 - np.diag(r), rtol=1e-9, atol=1e-12)
        # the hollow marks: diag(I - R_j) of every cluster, beside its point
        hollow = [c for c in ax.collections if not c.get_animated() and len(c.get_offsets())]
        idx = stream_index(pic)
        predicted = shrinkage(stats, fits).predicted[idx]
        offset = OFFSET if ex.axis == "size" else 0.0
        for c, marks in enumerate(hollow):
            xy = marks.get_offsets()
            np.testing.assert_array_equal(xy[:, 0], ex.x[idx] + (2 * c - 1) * offset)
            y = predicted[:, c]
            shown = np.where((y < -0.3) | (y > 1.3), np.clip(y, -0.27, 1.27), y)
            np.testing.assert_array_equal(xy[:, 1], shown)


def test_small_clusters_are_pulled_hardest_on_the_unbalanced_curve(unbalanced):
    ex = unbalanced[3].explanation
    assert ex.axis == "size" and np.all(np.diff(ex.curve, axis=0) < 0)


def test_explaining_layout_size_count_and_default_width(baseline):
    data, fits, _, _ = baseline
    st = RenderSettings(layout="explain", frames=3, hold=1)
    assert (st.width, st.height) == (1200, 450)
    pic = make_picture(data, fits, settings=st)
    images = list(render_frames(pic, make_frames(data, fits, st), st))
    assert len(images) == 4 and all(im.shape == (450, 1200, 3) for im in images)
    assert images[3] is images[2]  # the held end is not drawn again
    still = render_still(pic, st, make_frames(data, fits, st))
    np.testing.assert_array_equal(still, images[-1])


def test_highlight_by_label_and_bad_choices(tmp_path, cli):
    data, fits, st, _ = _case(Scenario(), highlight="5, 17")
    pic = make_picture(data, fits, settings=st)
    assert pic.explanation.labels == ("5", "17")
    stream, _ = _stream((data, fits, st, pic))
    assert len(stream.scene.data.axes) == 2
    with pytest.raises(UsageError, match="--highlight 'nope'"):
        make_picture(data, fits, settings=dataclasses.replace(st, highlight="5,nope"))
    with pytest.raises(UsageError, match="--layout explain"):
        RenderSettings(highlight="5")
    with pytest.raises(UsageError, match="--layout"):
        RenderSettings(layout="triple")
    with pytest.raises(UsageError, match="at least 640x240 pixels"):
        RenderSettings(layout="explain", width=300, height=150)
    res = cli("run", "--highlight", "3", "-o", tmp_path / "a.gif")
    assert res.code == 2 and "--layout explain" in res.err and len(res.err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_six_highlights_fill_two_columns():
    data, fits, st, pic = _case(Scenario(), highlight="1,2,3,4,5,6")
    stream, frames = _stream((data, fits, st, pic))
    axes = stream.scene.data.axes
    assert len(axes) == 6
    lefts = sorted({round(ax.get_position().x0, 6) for ax in axes})
    assert len(lefts) == 2
    image = stream.draw(frames.n_frames - 1)
    assert image.shape == (SMALL["height"], SMALL["width"], 3)


def test_cli_explain_gif_is_byte_identical_on_rerun(tmp_path, cli):
    out = []
    for name in ("a.gif", "b.gif"):
        res = cli("run", "--layout", "explain", "--frames", "30", "--hold", "2", "--width", "800",
                  "--height", "300", "--json", "-q", "-o", tmp_path / name)  # fmt: skip
        assert res.code == 0, res.err
        out.append((tmp_path / name).read_bytes())
    assert out[0] == out[1]
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == 32 and gif.size == (800, 300)
    import json

    shown = json.loads(res.out)["picture"]
    assert shown["shrinkage_axis"] == "information" and len(shown["highlight"]) == 3


def test_run_with_the_explaining_layout_writes_a_still(tmp_path):
    st = RenderSettings(layout="explain", width=700, height=300, path="pooling", frames=5)
    result = run(UNBALANCED, output=tmp_path / "x.png", settings=st)
    assert Image.open(result.output).size == (700, 300)
    assert result.picture["shrinkage_axis"] == "size"


def test_scenario_file_asks_for_the_explaining_story(tmp_path, cli):
    scen = tmp_path / "s.toml"
    scen.write_text('layout = "explain"\nstory = true\nhighlight = "3,7"\nframes = 3\nhold = 1\n'
                    'fps = 2\nwidth = 700\nheight = 300\n')  # fmt: skip
    res = cli("run", "--scenario", scen, "--json", "-q", "-o", tmp_path / "s.gif")
    assert res.code == 0, res.err
    import json

    assert json.loads(res.out)["picture"]["highlight"] == ["3", "7"]
    gif = Image.open(tmp_path / "s.gif")
    assert gif.size == (700, 300) and gif.n_frames == 5 + 3 + 5 + 3 + 1
    bad = tmp_path / "bad.toml"
    bad.write_text("story = 1\n")
    res = cli("run", "--scenario", bad, "-o", tmp_path / "b.gif")
    assert res.code == 2 and "story" in res.err
