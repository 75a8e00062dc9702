"""Easing and frame interpolation: hand-checkable numbers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shrinkcli.errors import UsageError
from shrinkcli.tween import (
    EASINGS,
    Frames,
    eased_progress,
    easing,
    path_frames,
    straight_frames,
    to_long,
)

START = np.array([[0.0, 0.0], [1.0, 2.0], [-1.0, 4.0]])
END = np.array([[1.0, 1.0], [1.0, 0.0], [3.0, 0.0]])


@pytest.mark.parametrize("name", sorted(EASINGS))
def test_easing_endpoints_and_monotone(name):
    f = easing(name)
    t = np.linspace(0, 1, 1001)
    y = f(t)
    assert y[0] == pytest.approx(0, abs=1e-12)
    assert y[-1] == pytest.approx(1, abs=1e-12)
    assert np.all(np.diff(y) >= -1e-12), f"{name} is not monotone"
    assert np.all((y >= -1e-12) & (y <= 1 + 1e-12))


@pytest.mark.parametrize("name", ["quad-in-out", "cubic-in-out", "sine-in-out"])
def test_symmetric_easings_pass_the_middle(name):
    assert easing(name)(np.array([0.5]))[0] == pytest.approx(0.5)
    # slow start: a quarter of the time covers less than a quarter of the way
    assert easing(name)(np.array([0.25]))[0] < 0.25


def test_unknown_easing_names_the_option():
    with pytest.raises(UsageError, match="--ease"):
        easing("bouncy")


def test_progress_moves_then_holds():
    p = eased_progress(frames=5, hold=3, ease="linear")
    np.testing.assert_allclose(p, [0, 0.25, 0.5, 0.75, 1, 1, 1, 1])


@pytest.mark.parametrize(("frames", "hold"), [(1, 0), (0, 5), (3, -1)])
def test_bad_counts_are_usage_errors(frames, hold):
    with pytest.raises(UsageError):
        eased_progress(frames=frames, hold=hold, ease="linear")


def test_straight_frames_endpoints_hold_and_midpoint():
    fr = straight_frames(START, END, frames=5, hold=2)
    assert fr.positions.shape == (7, 3, 2)
    assert fr.n_frames == 7 and fr.n_move == 5 and fr.kappa is None
    np.testing.assert_array_equal(fr.positions[0], START)
    np.testing.assert_array_equal(fr.positions[4], END)
    np.testing.assert_array_equal(fr.positions[5], END)
    np.testing.assert_array_equal(fr.positions[6], END)
    np.testing.assert_allclose(fr.positions[2], (START + END) / 2)
    np.testing.assert_allclose(fr.positions[1], START + 0.25 * (END - START))
    np.testing.assert_allclose(fr.progress, [0, 0.25, 0.5, 0.75, 1, 1, 1])


def test_straight_frames_eased_middle_differs_but_ends_do_not():
    fr = straight_frames(START, END, frames=5, hold=0, ease="cubic-in-out")
    np.testing.assert_array_equal(fr.positions[0], START)
    np.testing.assert_array_equal(fr.positions[-1], END)
    np.testing.assert_allclose(fr.positions[1], START + 0.0625 * (END - START))  # 4 * .25^3


def test_cluster_without_start_sits_at_its_end():
    start = START.copy()
    start[1, 1] = np.nan
    fr = straight_frames(start, END, frames=4, hold=1)
    for i in range(fr.n_frames):
        np.testing.assert_array_equal(fr.positions[i, 1], END[1])
    np.testing.assert_array_equal(fr.positions[0, 0], START[0])


@given(st.integers(2, 40), st.integers(0, 10), st.sampled_from(sorted(EASINGS)))
def test_straight_frames_stay_on_the_segment(frames, hold, ease):
    fr = straight_frames(START, END, frames=frames, hold=hold, ease=ease)
    assert fr.n_frames == frames + hold
    # every position is start + p * (end - start) with the frame's progress p
    expect = START[None] + fr.progress[:, None, None] * (END - START)[None]
    np.testing.assert_allclose(fr.positions, expect, atol=1e-12)
    assert np.all(np.diff(fr.progress) >= -1e-12)


def _curved_path(k=9):
    kappas = np.logspace(4, 0, k)
    lam = np.linspace(0, 1, k)[:, None, None]
    path = START[None] * (1 - lam) + END[None] * lam
    path[:, :, 1] += np.sin(np.pi * lam[:, :, 0])  # not a straight line
    return path, kappas


def test_path_frames_endpoints_and_kappa():
    path, kappas = _curved_path()
    fr = path_frames(path, kappas, frames=20, hold=5)
    assert fr.positions.shape == (25, 3, 2)
    np.testing.assert_array_equal(fr.positions[0], path[0])
    np.testing.assert_array_equal(fr.positions[19], path[-1])
    np.testing.assert_array_equal(fr.positions[-1], path[-1])
    assert fr.kappa[0] == pytest.approx(1e4)
    assert fr.kappa[19] == 1 and fr.kappa[-1] == 1
    assert np.all(np.diff(fr.kappa) <= 0)


def test_path_frames_hit_the_samples_when_frames_equal_samples():
    path, kappas = _curved_path(k=9)
    fr = path_frames(path, kappas, frames=9, hold=0)
    np.testing.assert_allclose(fr.positions, path, atol=1e-12)
    np.testing.assert_allclose(fr.kappa, kappas, rtol=1e-12)
    # halfway between samples 0 and 1 with 17 frames: the average of the two
    fr = path_frames(path, kappas, frames=17, hold=0)
    np.testing.assert_allclose(fr.positions[1], (path[0] + path[1]) / 2, atol=1e-12)
    assert fr.kappa[1] == pytest.approx(np.sqrt(kappas[0] * kappas[1]))


def test_path_frames_nan_samples_take_the_end():
    path, kappas = _curved_path()
    path[:3, 2, :] = np.nan
    fr = path_frames(path, kappas, frames=10, hold=0)
    assert np.isfinite(fr.positions).all()
    np.testing.assert_array_equal(fr.positions[0, 2], path[-1, 2])


def test_to_long_columns():
    fr = straight_frames(START, END, frames=3, hold=2)
    long = to_long(fr, clusters=np.array(["a", "b", "c"]))
    assert set(long) == {"frame", "phase", "cluster", "x", "y", "progress"}
    assert all(len(v) == 15 for v in long.values())
    assert list(long["frame"][:4]) == [1, 1, 1, 2]
    assert list(long["cluster"][:4]) == ["a", "b", "c", "a"]
    assert list(long["phase"][::3]) == ["move", "move", "move", "hold", "hold"]
    np.testing.assert_array_equal(long["x"][-3:], END[:, 0])
    np.testing.assert_array_equal(long["y"][:3], START[:, 1])
    path, kappas = _curved_path()
    assert "kappa" in to_long(path_frames(path, kappas, frames=4, hold=0))


def test_frames_are_read_only_copies():
    pos = np.zeros((2, 1, 2))
    fr = Frames(positions=pos, progress=np.array([0.0, 1.0]), kappa=None, n_move=2)
    pos[0, 0, 0] = 5.0  # the caller's array stays theirs
    assert fr.positions[0, 0, 0] == 0.0
    with pytest.raises(ValueError):
        fr.positions[0, 0, 0] = 1.0
    with pytest.raises(ValueError):
        Frames(positions=pos, progress=np.array([0.0]), kappa=None, n_move=1)
