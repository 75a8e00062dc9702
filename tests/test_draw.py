"""Drawing: frame count and size, and pixels where the estimates should be."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from conftest import reference_picture

from shrinkcli.draw import (
    OLIVE,
    ORANGE,
    Picture,
    RenderSettings,
    Scene,
    axis_limits,
    data_to_pixel,
    point_alpha,
    point_diameter,
    render_frames,
    render_still,
)
from shrinkcli.errors import UsageError
from shrinkcli.tween import path_frames, straight_frames

REFERENCE = Path(__file__).parent / "data" / "lme4"
SMALL = {"width": 300, "height": 226, "frames": 4, "hold": 2}


@pytest.fixture(scope="module")
def baseline() -> Picture:
    return reference_picture("baseline")


@pytest.fixture(scope="module")
def unbalanced() -> Picture:
    return reference_picture("unbalanced")


_SCENES: dict = {}


def to_px(pic: Picture, settings: RenderSettings, xy) -> np.ndarray:
    """data_to_pixel, with one scene per picture and settings (building one takes a while)."""
    key = (id(pic), settings)
    if key not in _SCENES:
        _SCENES[key] = (pic, Scene(pic, settings))  # keep pic alive so its id stays unique
    return _SCENES[key][1].to_pixel(xy)


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=float)


def _isolated_clusters(pic: Picture, settings: RenderSettings, k: int = 3) -> list[int]:
    """Fairly opaque clusters whose OLS and mixed points are inside the panel, apart from
    the others and from the black hole, so the pixel at their centre is their own colour."""
    ols_px = to_px(pic, settings, pic.ols)
    mix_px = to_px(pic, settings, pic.mixed)
    hole = to_px(pic, settings, pic.fixed)[0]
    (x0, x1), (y0, y1) = axis_limits(pic, settings)
    (c0, r1), (c1, r0) = to_px(pic, settings, np.array([[x0, y0], [x1, y1]]))
    alpha = point_alpha(pic)
    chosen = []
    for j in np.argsort(-alpha):
        inside = all(
            c0 + 10 < c < c1 - 10 and r0 + 10 < r < r1 - 10 for c, r in (ols_px[j], mix_px[j])
        )
        if not inside or alpha[j] < 0.5:
            continue
        everyone = np.concatenate([np.delete(ols_px, j, 0), np.delete(mix_px, j, 0), [hole]])
        gaps = [np.hypot(*(everyone - p).T).min() for p in (ols_px[j], mix_px[j])]
        if min(gaps) > 10 and np.hypot(*(ols_px[j] - mix_px[j])) > 10:
            chosen.append(int(j))
        if len(chosen) == k:
            break
    assert chosen, "no isolated opaque cluster to check"
    return chosen


def _over(colour: np.ndarray, alpha: float, below: np.ndarray) -> np.ndarray:
    return alpha * colour + (1 - alpha) * below


def _pixel(img: np.ndarray, colrow: np.ndarray) -> np.ndarray:
    c, r = np.floor(colrow).astype(int)
    return img[r, c].astype(float)


def test_settings_defaults_are_the_articles():
    s = RenderSettings()
    assert (s.width, s.height, s.fps, s.frames, s.hold) == (600, 450, 10, 60, 60)
    assert (s.ease, s.zoom, s.path, s.ellipses, s.truth) == (
        "linear",
        "auto",
        "straight",
        False,
        False,
    )
    assert s.n_frames == 120


@pytest.mark.parametrize(
    ("change", "option"),
    [
        ({"ease": "wobble"}, "--ease"),
        ({"zoom": "all"}, "--zoom"),
        ({"path": "curvy"}, "--path"),
        ({"width": 10}, "--width"),
        ({"height": 450.5}, "--height"),
        ({"frames": 1}, "--frames"),
        ({"hold": -1}, "--hold"),
        ({"fps": 0}, "--fps"),
    ],
)
def test_bad_settings_name_the_option(change, option):
    with pytest.raises(UsageError, match=option):
        RenderSettings(**change)


@pytest.mark.parametrize(("width", "height"), [(600, 450), (301, 227), (800, 300)])
def test_frames_have_the_exact_size_and_count(baseline, width, height):
    settings = RenderSettings(width=width, height=height, frames=3, hold=2)
    frames = straight_frames(baseline.ols, baseline.mixed, frames=3, hold=2)
    images = list(render_frames(baseline, frames, settings))
    assert len(images) == 5
    for img in images:
        assert img.shape == (height, width, 3) and img.dtype == np.uint8
    # the held frames repeat the end state exactly, as the same read-only array
    np.testing.assert_array_equal(images[2], images[4])
    assert images[3] is images[2] and not images[2].flags.writeable
    assert not np.array_equal(images[0], images[2])


def test_points_start_orange_at_ols_and_end_olive_at_mixed(baseline):
    settings = RenderSettings(frames=4, hold=1)
    frames = straight_frames(baseline.ols, baseline.mixed, frames=4, hold=1)
    images = list(render_frames(baseline, frames, settings))
    first, last = images[0], images[-1]
    orange, olive, paper = _rgb(ORANGE), _rgb(OLIVE), _rgb("#fffff8")
    alpha = point_alpha(baseline)
    for j in _isolated_clusters(baseline, settings):
        a = alpha[j]
        ols_px = to_px(baseline, settings, baseline.ols[j])[0]
        mix_px = to_px(baseline, settings, baseline.mixed[j])[0]
        static = _over(orange, a, paper)  # the by-cluster point, drawn once
        assert np.abs(_pixel(first, ols_px) - _over(orange, a, static)).max() < 8
        # the mixed point arrives at full colour (100 clusters: no thinning)
        assert np.abs(_pixel(last, mix_px) - _over(olive, 1.0, paper)).max() < 8
        # the by-cluster point stays put; the mixed spot is empty at the start
        assert np.abs(_pixel(last, ols_px) - static).max() < 8
        assert np.abs(_pixel(first, mix_px) - paper).max() < 30


def test_colour_is_halfway_at_half_progress(baseline):
    settings = RenderSettings(frames=3, hold=0)
    frames = straight_frames(baseline.ols, baseline.mixed, frames=3, hold=0)
    middle = list(render_frames(baseline, frames, settings))[1]
    j = _isolated_clusters(baseline, settings, k=1)[0]
    mid = to_px(baseline, settings, (baseline.ols[j] + baseline.mixed[j]) / 2)[0]
    alpha = (point_alpha(baseline)[j] + 1.0) / 2  # opacity runs to full as the colour does
    expect = _over((_rgb(ORANGE) + _rgb(OLIVE)) / 2, alpha, _rgb("#fffff8"))
    # the faint arrow line runs under the point's centre here
    assert np.abs(_pixel(middle, mid) - expect).max() < 15


def test_black_hole_is_dark_at_the_fixed_effects(baseline):
    img = render_still(baseline, RenderSettings(**SMALL))
    px = data_to_pixel(baseline, RenderSettings(**SMALL), baseline.fixed)[0]
    assert _pixel(img, px).max() < 110  # black at alpha .5 over the halo over paper


def test_still_is_the_final_frame(baseline):
    settings = RenderSettings(**SMALL)
    frames = straight_frames(baseline.ols, baseline.mixed, frames=4, hold=2)
    last = list(render_frames(baseline, frames, settings))[-1]
    np.testing.assert_array_equal(render_still(baseline, settings), last)


def test_cluster_without_ols_slope_renders_marked(baseline):
    ols = baseline.ols.copy()
    settings = RenderSettings(frames=3, hold=1)
    j = _isolated_clusters(baseline, settings, k=1)[0]
    ols[j, 1] = np.nan
    pic = dataclasses.replace(baseline, ols=ols)
    frames = straight_frames(pic.ols, pic.mixed, frames=3, hold=1)
    np.testing.assert_array_equal(frames.positions[0, j], pic.mixed[j])
    images = list(render_frames(pic, frames, settings))
    c, r = np.floor(to_px(pic, settings, pic.mixed[j])[0]).astype(int)
    olive = _rgb(OLIVE)
    for img in (images[0], images[-1]):
        window = img[r - 6 : r + 7, c - 6 : c + 7].reshape(-1, 3).astype(float)
        # a hollow olive marker: olive outline, paper in the middle, in every frame
        assert (np.abs(window - olive).max(axis=1) < 40).sum() >= 8
        assert np.abs(img[r, c].astype(float) - _rgb("#fffff8")).max() < 30


def test_unbalanced_sizes_and_options_render(unbalanced):
    assert point_diameter(unbalanced).min() < point_diameter(unbalanced).max()
    pic = dataclasses.replace(unbalanced, truth=unbalanced.mixed + 0.05)
    plain = render_still(pic, RenderSettings(**SMALL))
    fancy = render_still(pic, RenderSettings(**SMALL, ellipses=True, truth=True, zoom="data"))
    assert plain.shape == fancy.shape == (226, 300, 3)
    assert np.abs(plain.astype(int) - fancy).sum() > 0


def test_data_zoom_fits_every_point(unbalanced):
    settings = RenderSettings(**SMALL, zoom="data")
    (x0, x1), (y0, y1) = axis_limits(unbalanced, settings)
    for pts in (unbalanced.ols, unbalanced.mixed):
        assert (pts[:, 0] > x0).all() and (pts[:, 0] < x1).all()
        assert (pts[:, 1] > y0).all() and (pts[:, 1] < y1).all()
    for zoom in ("article", "baseline"):
        (bx0, bx1), _ = axis_limits(unbalanced, RenderSettings(**SMALL, zoom=zoom))
        assert bx1 - bx0 == pytest.approx(2 * 3 * 0.5 * 1.1)  # fixed +- 3 SD, 5% expansion


def test_truth_without_truth_is_a_usage_error(baseline):
    with pytest.raises(UsageError, match="--truth"):
        render_still(baseline, RenderSettings(**SMALL, truth=True))


def test_pooling_path_draws_the_kappa_dial(baseline):
    settings = RenderSettings(**SMALL, path="pooling")
    k = np.logspace(4, 0, 5)
    lam = np.linspace(0, 1, 5)[:, None, None]
    path = baseline.ols[None] * (1 - lam) + baseline.mixed[None] * lam
    frames = path_frames(path, k, frames=4, hold=1)
    images = list(render_frames(baseline, frames, settings))
    assert len(images) == 5
    # the kappa label and knob change between the first and the last frame, outside the panel
    scene = Scene(baseline, settings, kappa_max=1e4)
    x1 = int(scene.to_pixel(np.array([axis_limits(baseline, settings)[0][1], 0]))[0, 0])
    assert np.abs(images[0][:, x1 + 2 :].astype(int) - images[-1][:, x1 + 2 :]).sum() > 0


def test_alpha_grows_with_distance(baseline):
    alpha = point_alpha(baseline)
    assert alpha.min() == pytest.approx(0.4) and alpha.max() == pytest.approx(1.0)
    sd = np.sqrt(np.diag(baseline.re_cov))
    dist = np.hypot(*((baseline.ols - baseline.fixed) / sd).T)
    order = np.argsort(dist)
    assert np.all(np.diff(alpha[order]) >= -1e-12)
    assert alpha[np.argmax(dist)] == 1.0


def test_one_cluster_and_all_missing_slopes_render(baseline):
    one = Picture(
        ols=baseline.ols[:1],
        mixed=baseline.mixed[:1],
        fixed=baseline.fixed,
        re_cov=baseline.re_cov,
        sizes=baseline.sizes[:1],
    )
    assert render_still(one, RenderSettings(**SMALL)).shape == (226, 300, 3)
    none = dataclasses.replace(baseline, ols=np.full_like(baseline.ols, np.nan))
    assert render_still(none, RenderSettings(**SMALL)).shape == (226, 300, 3)


def test_picture_shapes_are_checked(baseline):
    with pytest.raises(ValueError, match="sizes"):
        dataclasses.replace(baseline, sizes=baseline.sizes[:-1])


def test_track_width_in_points_does_not_grow_again_with_the_image():
    """Points already scale with the canvas dpi: the width in points stays 0.7 from the
    article's size up (it grew with the scale before: 2.8 points at 2400x1800)."""
    from shrinkcli.render.picture import track_width

    assert [track_width(s, 1.0) for s in (1.0, 2.0, 4.0, 13.6)] == [0.7] * 4
    assert track_width(0.5, 1.0) == 0.6  # the floor on small images
    assert track_width(1.0, 0.3) == 0.7 * 0.6  # crowded pictures thinner
