"""The story: complete pooling -> no pooling -> partial pooling, as one animation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from shrinkcli.draw import ORANGE, RenderSettings, render_frames, render_still
from shrinkcli.explain import pooled_ols
from shrinkcli.fit import fit_mixed, sufficient_stats
from shrinkcli.pipeline import make_frames, make_picture, pooling_path_frames
from shrinkcli.render.layout import STAGES
from shrinkcli.scenario import Scenario
from shrinkcli.simulate import simulate
from shrinkcli.tween import path_frames, story_frames, story_hold, straight_frames, to_long

FRAMES, HOLD = 6, 3


@pytest.fixture(scope="module")
def fitted():
    data = simulate(Scenario())
    return data, fit_mixed(data)


def _settings(**kw) -> RenderSettings:
    return RenderSettings(story=True, frames=FRAMES, hold=HOLD, fps=2, **kw)


def test_stages_start_and_end_at_the_pooled_ols_and_mixed_estimates(fitted):
    data, fits = fitted
    st = _settings()
    frames = make_frames(data, fits, st)
    h = story_hold(st.fps)
    assert h == 5  # 2.5 s at 2 fps
    assert frames.n_frames == h + FRAMES + h + FRAMES + HOLD
    assert frames.n_move == frames.n_frames - HOLD
    pooled = pooled_ols(sufficient_stats(data))
    ok = np.isfinite(fits.ols).all(axis=1)
    p = frames.positions
    for i in range(h + 1):  # the hold, and the fan-out's first frame
        assert np.array_equal(p[i][ok], np.broadcast_to(pooled, (ok.sum(), 2)))
    arrive = h + FRAMES - 1
    assert not np.array_equal(p[arrive - 1][ok], fits.ols[ok])
    for i in range(arrive, arrive + h + 2):  # arrival, its hold, the pull's first frame
        assert np.array_equal(p[i][ok], fits.ols[ok])
    for i in range(frames.n_move - 1, frames.n_frames):
        assert np.array_equal(p[i], fits.mixed)
    # the clock: 0 at complete pooling, up to 1 at no pooling, then 1 + the pull's progress
    s = frames.stage
    assert np.all(s[:h] == 0) and s[arrive] == 1 and np.all(np.diff(s) >= 0) and s[-1] == 2
    assert np.all(frames.progress[: arrive + h + 1] == 0) and frames.progress[-1] == 1
    assert frames.kappa is None
    assert np.all(to_long(frames)["stage"][: data.n_clusters] == 0)


def test_story_on_the_pooling_path_follows_the_path_after_no_pooling(fitted):
    data, fits = fitted
    st = _settings(path="pooling")
    frames = make_frames(data, fits, st)
    kappas, path = pooling_path_frames(data, fits, FRAMES)
    pull = path_frames(path, kappas, frames=FRAMES, hold=HOLD)
    start = frames.n_frames - pull.n_frames
    np.testing.assert_array_equal(frames.positions[start:], pull.positions)
    np.testing.assert_array_equal(frames.kappa[start:], pull.kappa)
    assert np.isnan(frames.kappa[:start]).all()


def test_cluster_without_ols_waits_at_its_mixed_estimate():
    ols = np.array([[1.0, 2.0], [np.nan, np.nan], [3.0, 1.0]])
    mixed = np.array([[1.5, 1.5], [2.0, 1.0], [2.5, 1.2]])
    pull = straight_frames(ols, mixed, frames=3, hold=1)
    frames = story_frames(np.array([2.0, 1.4]), ols, pull, frames=3, hold=2)
    assert frames.n_frames == 2 + 3 + 2 + 3 + 1
    assert np.all(frames.positions[:, 1] == mixed[1])
    np.testing.assert_array_equal(frames.positions[0, [0, 2]], [[2.0, 1.4], [2.0, 1.4]])


def _isolated_ols_pixel(scene, pic):
    """An OLS estimate inside the window, far from every other estimate and the pooled one."""
    ols, mixed = scene.to_pixel(pic.ols), scene.to_pixel(pic.mixed)
    pooled = scene.to_pixel(pic.explanation.pooled)
    x0, x1, y0, y1 = *scene.plane.xlim, *scene.plane.ylim
    for j in np.argsort(-scene.alpha):
        a, b = pic.ols[j]
        if not (x0 < a < x1 and y0 < b < y1):
            continue
        others = np.concatenate([np.delete(ols, j, 0), mixed, pooled])
        if np.hypot(*(others - ols[j]).T).min() > 12:
            return j, ols[j]
    raise AssertionError("no isolated OLS estimate")


def test_ols_points_appear_only_when_the_clusters_reach_them(fitted):
    data, fits = fitted
    st = _settings(width=600, height=450)
    pic = make_picture(data, fits, settings=st)
    frames = make_frames(data, fits, st)
    stream = render_frames(pic, frames, st)
    scene = stream.scene
    # the base, and one layer per stage line, with the OLS estimates from no pooling on
    assert len(scene.canvas.layers) == 5 and len(scene.plane.reveal) >= 3
    j, (c, r) = _isolated_ols_pixel(scene, pic)
    c, r = int(c), int(r)
    h = story_hold(st.fps)
    paper = np.array([0xFF, 0xFF, 0xF8], dtype=float)
    orange = np.array([int(ORANGE[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)
    for i in (0, h + FRAMES // 2):  # complete pooling, and half way out
        assert np.abs(stream.draw(i)[r, c] - paper).max() < 30, i
    for i in (h + FRAMES - 1, h + FRAMES + h, frames.n_frames - 1):  # arrived, then pulled
        pixel = stream.draw(i)[r, c].astype(float)
        assert np.abs(pixel - paper).max() > 30, i
        assert np.abs(pixel - orange).sum() < np.abs(pixel - paper).sum(), i


def paper_row(rows: np.ndarray) -> np.ndarray:
    return np.broadcast_to(np.array([0xFF, 0xFF, 0xF8]), rows.shape)


def test_each_stage_says_what_it_is(fitted):
    data, fits = fitted
    st = _settings(width=600, height=450)
    pic = make_picture(data, fits, settings=st)
    frames = make_frames(data, fits, st)
    stream = render_frames(pic, frames, st)
    h = story_hold(st.fps)
    ends = (0, h - 1, h + 1, h + FRAMES + 1, frames.n_frames - HOLD - 1, frames.n_frames - 1)
    texts = [STAGES[stream.clock.state(i).stage] for i in ends]
    assert texts == [STAGES[0]] * 2 + [STAGES[1]] * 2 + [STAGES[2]] * 2
    assert [t[:2] for t in STAGES] == ["1.", "2.", "3."]
    # the line is drawn: the rows it takes change with the stage, and only then
    box = stream.scene.canvas.box(stream.scene.stage_text)
    rows = slice(int(st.height - box[3]), int(st.height - box[1]) + 1)
    lines = [stream.draw(i)[rows].astype(int) for i in ends]
    assert (np.abs(lines[0] - paper_row(lines[0])).sum()) > 0
    for k in (0, 2, 4):
        assert np.array_equal(lines[k], lines[k + 1])
    for k in (1, 3):
        assert np.abs(lines[k] - lines[k + 1]).sum() > 0
    last = stream.draw(frames.n_frames - 1)
    np.testing.assert_array_equal(render_still(pic, st, frames), last)


def test_story_in_the_explaining_layout_moves_lines_and_shares_through_the_stages(fitted):
    data, fits = fitted
    st = _settings(layout="explain", width=900, height=340)
    pic = make_picture(data, fits, settings=st)
    frames = make_frames(data, fits, st)
    stream = render_frames(pic, frames, st)
    scene = stream.scene
    pooled, h = pic.explanation.pooled, story_hold(st.fps)
    stages = (
        (0, pooled, 1.0),
        (h + FRAMES - 1, fits.ols, 0.0),
        (frames.n_frames - 1, fits.mixed, None),
    )
    for i, coef, share in stages:
        stream.draw(i)
        for line, j in zip(scene.data.lines, pic.explanation.highlight, strict=True):
            a, b = coef[j] if coef.ndim == 2 else coef
            x = line.get_xdata()
            assert np.array_equal(line.get_ydata(), [a + b * x[0], a + b * x[1]])
        ys = np.concatenate([sc.get_offsets()[:, 1] for sc in scene.shrinkage.scatters])
        if share is not None:  # every cluster all the way pooled, then not at all
            assert np.all(ys[np.isfinite(ys)] == share) and np.isfinite(ys).sum() > 150
    # the pooled line is there from the start, in every small panel
    dotted = [ln for ax in scene.data.axes for ln in ax.get_lines() if ln.get_linestyle() == ":"]
    assert len(dotted) == 3


def test_story_gif_frame_count_size_and_rerun(tmp_path, cli):
    out = []
    for name in ("a.gif", "b.gif"):
        res = cli("run", "--story", "--layout", "explain", "--frames", "8", "--hold", "2",
                  "--fps", "4", "--width", "640", "--height", "300", "-q",
                  "-o", tmp_path / name)  # fmt: skip
        assert res.code == 0, res.err
        out.append((tmp_path / name).read_bytes())
    assert out[0] == out[1]
    gif = Image.open(tmp_path / "a.gif")
    assert gif.size == (640, 300) and gif.n_frames == 10 + 8 + 10 + 8 + 2
