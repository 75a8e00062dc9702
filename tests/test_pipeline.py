"""The whole chain: `shrink run` and the library call behind it, read back from the files."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from shrinkcli.draw import RenderSettings, data_to_pixel
from shrinkcli.errors import UsageError
from shrinkcli.pipeline import make_frames, make_picture, pooling_path_frames, run
from shrinkcli.scenario import Scenario

QUICK = ["--frames", "4", "--hold", "2", "--width", "240", "--height", "180"]


def test_library_call_returns_fits_and_output(tmp_path):
    result = run(Scenario(), output=tmp_path / "a.gif",
                 settings=RenderSettings(frames=3, hold=1, width=200, height=150))  # fmt: skip
    assert result.output == tmp_path / "a.gif" and result.output.exists()
    assert result.fits.mixed.shape == (100, 2) and result.seconds > 0
    assert abs(result.fits.criterion - 3012.189508088) < 1e-6
    no_file = run(Scenario(obs_per_cluster=3), output=None)
    assert no_file.output is None and no_file.data.n_obs == 300


def test_first_and_last_frames_are_the_ols_and_mixed_estimates():
    result = run(Scenario(), output=None)
    frames = make_frames(result.data, result.fits, RenderSettings())
    assert frames.n_frames == 120
    np.testing.assert_array_equal(frames.positions[0], result.fits.ols)
    np.testing.assert_array_equal(frames.positions[59], result.fits.mixed)
    np.testing.assert_array_equal(frames.positions[-1], result.fits.mixed)


def test_pooling_path_runs_from_no_pooling_to_the_fit_in_even_steps():
    result = run(Scenario(balanced=0.5, sd_slope=0.5, sigma=0.25), output=None)
    kappas, path = pooling_path_frames(result.data, result.fits, 60)
    assert np.isinf(kappas[0]) and kappas[-1] == 1.0 and np.all(np.diff(kappas) < 0)
    ols_ok = np.isfinite(result.fits.ols).all(axis=1)
    np.testing.assert_array_equal(path[0][ols_ok], result.fits.ols[ols_ok])
    np.testing.assert_allclose(path[-1], result.fits.mixed, atol=1e-12)
    scale = np.nanstd(result.fits.ols, axis=0)
    steps = np.linalg.norm(np.diff(path, axis=0) / scale, axis=2).mean(axis=1)
    assert steps.max() < 1.5 * steps.mean()  # no step is much larger than the average
    # every intermediate frame is a real model: re-solving at its kappa gives the same points
    from shrinkcli.fit import pooling_path, sufficient_stats

    again = pooling_path(sufficient_stats(result.data), result.fits, kappas[1:-1])
    np.testing.assert_allclose(again, path[1:-1], atol=1e-12)


def test_pixels_of_the_last_frame_sit_on_the_mixed_estimates(tmp_path):
    settings = RenderSettings(frames=3, hold=1)
    result = run(Scenario(), output=tmp_path / "a.gif", settings=settings)
    picture = make_picture(result.data, result.fits)
    gif = Image.open(result.output)
    gif.seek(gif.n_frames - 1)
    rgb = np.asarray(gif.convert("RGB")).astype(int)
    px = data_to_pixel(picture, settings, result.fits.mixed)
    inside = (px[:, 0] > 60) & (px[:, 0] < 480) & (px[:, 1] > 60) & (px[:, 1] < 370)
    # the expected colour: olive at full opacity, as every mixed point ends
    want = np.array([0x80, 0x81, 0x33])
    got = np.array([rgb[int(round(r)), int(round(c))] for c, r in px[inside]])
    close = np.abs(got - want).sum(axis=1) < 60
    assert close.mean() > 0.8  # a few points hide under the black hole or each other
    # and in the first frame the same pixels are not olive: the points have not arrived
    gif.seek(0)
    first = np.asarray(gif.convert("RGB")).astype(int)
    got0 = np.array([first[int(round(r)), int(round(c))] for c, r in px[inside]])
    assert (np.abs(got0 - want).sum(axis=1) < 60).mean() < close.mean() - 0.3


def test_run_gif_is_byte_identical_on_rerun_and_has_the_contract(cli, tmp_path):
    a, b = tmp_path / "a.gif", tmp_path / "b.gif"
    assert cli("run", "-o", a, *QUICK).code == 0
    assert cli("run", "-o", b, *QUICK).code == 0
    assert a.read_bytes() == b.read_bytes()
    gif = Image.open(a)
    assert gif.n_frames == 6 and gif.size == (240, 180) and gif.info["loop"] == 0
    assert gif.info["duration"] == 100


def test_default_gif_is_smaller_than_the_articles(cli, tmp_path):
    res = cli("run", "-o", tmp_path / "d.gif")
    assert res.code == 0, res.err
    assert res.out.strip() == str(tmp_path / "d.gif")
    gif = Image.open(tmp_path / "d.gif")
    assert gif.n_frames == 120 and gif.size == (600, 450)
    assert (tmp_path / "d.gif").stat().st_size <= 817_591


def test_run_mp4_and_png(cli, tmp_path):
    assert cli("run", "-o", tmp_path / "a.mp4", *QUICK).code == 0
    meta = _mp4_frames(tmp_path / "a.mp4")
    assert meta == (6, (240, 180))
    assert cli("run", "-o", tmp_path / "s.png", "--width", "300", "--height", "200").code == 0
    png = Image.open(tmp_path / "s.png")
    assert png.format == "PNG" and png.size == (300, 200)


def _mp4_frames(path):
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    n = sum(1 for _ in reader)
    return n, tuple(meta["size"])


def test_single_observation_clusters_render_and_are_counted(cli, tmp_path):
    res = cli("run", "--obs-per-cluster", 2, "--balanced", 0.6, "-o", tmp_path / "a.gif",
              "--json", "-q", *QUICK)  # fmt: skip
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["n_without_ols_slope"] > 0 and doc["output"] == str(tmp_path / "a.gif")
    assert Image.open(tmp_path / "a.gif").n_frames == 6


def test_caption_says_what_the_picture_shows():
    result = run(Scenario(obs_per_cluster=2, balanced=0.6), output=None)
    picture = make_picture(result.data, result.fits, scenario=Scenario(obs_per_cluster=2,
                           balanced=0.6))  # fmt: skip
    assert picture.title == "obs per cluster = 2, balanced = 0.6"
    text = " ".join(picture.caption)
    assert "SD intercept" in text and "RMSE vs truth" in text and "without an OLS slope" in text
    assert picture.balanced is False


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.54, "0.540"), (11.855, "11.855"), (123.456, "123.5"), (5e99, "5.00e+99"),
     (1.2e-99, "1.20e-99"), (0.0042, "0.00420"), (0.0, "0.000")],
)  # fmt: skip
def test_caption_numbers_stay_short_in_any_units(value, text):
    from shrinkcli.pipeline import short_number

    assert short_number(value) == text


@pytest.mark.parametrize(
    "args,message",
    [
        (["-o", "x.avi"], "must end in .gif, .mp4 or .png"),
        (["--ease", "wobble"], "--ease"),
        (["--frames", "1"], "--frames"),
        (["--width", "601", "-o", "x.mp4"], "--width"),
        (["--zoom", "far"], "--zoom"),
        (["--path", "curvy"], "--path"),
        (["--fps", "0"], "--fps"),
        (["--scenario", "nope.toml"], "nope.toml"),
    ],
)
def test_bad_run_flags_exit_2_and_leave_nothing(cli, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    res = cli("run", *args)
    assert res.code == 2 and message in res.err and len(res.err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_scenario_file_with_flag_override(cli, tmp_path):
    scen = tmp_path / "s.toml"
    scen.write_text('name = "s"\ntitle = "Three a cluster"\nobs-per-cluster = 3\nframes = 3\n')
    res = cli("run", "--scenario", scen, "--obs-per-cluster", 4, "--hold", 0, "--json", "-q",
              "-o", tmp_path / "s.gif")  # fmt: skip
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["n_obs"] == 400  # the flag beat the file
    assert Image.open(tmp_path / "s.gif").n_frames == 3  # the file's frames, hold from the flag


def test_interrupted_render_leaves_no_file(tmp_path, monkeypatch):
    import shrinkcli.draw as draw

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(draw, "render_frames", boom)
    with pytest.raises(KeyboardInterrupt):
        run(Scenario(), output=tmp_path / "a.gif")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(UsageError):
        run(Scenario(), output=tmp_path / "a.txt")


def test_legend_colours_survive_the_shared_palette(tmp_path):
    # with three observations a cluster most points are faint, so few pixels are pure
    # orange; the palette must still hold the legend's colours exactly
    result = run(Scenario(obs_per_cluster=3), output=tmp_path / "a.gif",
                 settings=RenderSettings(frames=4, hold=0))  # fmt: skip
    gif = Image.open(result.output)
    palette = np.array(gif.getpalette()).reshape(-1, 3)
    for colour in ("#F49E71", "#808133", "#fffff8"):
        rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
        assert (palette == rgb).all(axis=1).any(), colour
    first = np.asarray(gif.convert("RGB"))
    assert (first == [0xF4, 0x9E, 0x71]).all(axis=2).sum() >= 10  # the legend's dot at least


@pytest.mark.parametrize("child_fails", [False, True])
def test_gif_from_two_processes_equals_one_process(tmp_path, monkeypatch, child_fails):
    from shrinkcli import encode
    from shrinkcli.draw import FrameStream

    settings = RenderSettings(frames=30, hold=4, path="pooling", ellipses=True)
    scenario = Scenario(balanced=0.5, sd_slope=0.5, sigma=0.25)
    if child_fails:  # the child cannot seek: the parent must draw the rest itself
        monkeypatch.setattr(FrameStream, "seek", lambda self, i: 1 / 0)
    two = run(scenario, output=tmp_path / "two.gif", settings=settings).output
    assert encode._split_point(_stream_like(30)) == 15 or len(os.sched_getaffinity(0)) < 2
    monkeypatch.setattr(encode, "_split_point", lambda stream: 0)
    one = run(scenario, output=tmp_path / "one.gif", settings=settings).output
    assert two.read_bytes() == one.read_bytes()
    assert Image.open(two).n_frames == 34


def _stream_like(n_move: int):
    class Stream:
        frames = type("F", (), {"n_move": n_move})

        def seek(self, i):
            pass

    return Stream()


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_killed_run_leaves_no_file_and_no_process(tmp_path, sig):
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "shrinkcli", "run", "--frames", "3000", "-o", "x.gif", "-q"],
        cwd=tmp_path, stderr=subprocess.PIPE, start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as in a terminal
    )  # fmt: skip
    time.sleep(2.0)  # into the drawing, with the second process forked
    os.killpg(proc.pid, getattr(signal, sig))
    code = proc.wait(timeout=60)
    assert code in (130, 143)
    time.sleep(0.3)
    assert list(tmp_path.iterdir()) == []  # neither x.gif nor a temporary .x.gif.*
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # the whole group, child included, is gone


def test_fit_never_imports_matplotlib():
    import subprocess
    import sys

    code = (
        "import sys; from shrinkcli.cli import main\n"
        "try:\n main(['fit', '--json', '--n-cluster', '5'])\nexcept SystemExit: pass\n"
        "print('matplotlib' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stderr.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize(
    ("sig", "code", "err"), [("SIGTERM", 143, ""), ("SIGINT", 130, "interrupted")]
)
def test_a_signal_that_surfaces_as_another_error_keeps_its_exit_code(
    cli, tmp_path, monkeypatch, sig, code, err
):
    """A signal caught inside C code (matplotlib, a pipe to ffmpeg) can come out as a
    RuntimeError or a ShrinkError; the exit is still the signal's."""
    import signal

    from shrinkcli import cli as cli_module
    from shrinkcli import pipeline
    from shrinkcli.errors import ShrinkError

    for error in (RuntimeError("error return without exception set"), ShrinkError("ffmpeg")):

        def broken(*args, _error=error, **kwargs):
            cli_module._INTERRUPTED.append(getattr(signal, sig))
            raise _error

        monkeypatch.setattr(pipeline, "run_values", broken)
        try:
            res = cli("run", "-o", tmp_path / "a.gif")
        finally:
            cli_module._INTERRUPTED.clear()
        assert res.code == code and "Traceback" not in res.err
        assert res.err.strip() == (f"shrink: error: {err}" if err else "")


def test_the_page_is_the_pooling_dial_whatever_the_gif_flags_say():
    """A story's first frames are not models: the page's slider runs along the pooling
    path only, for the plane's, the strip's and the grid's pages alike."""
    from shrinkcli.pipeline import page_settings
    from shrinkcli.settings import RenderSettings

    page = page_settings(RenderSettings(story=True, path="straight", ease="cubic-in-out"))
    assert (page.story, page.path, page.ease) == (False, "pooling", "linear")


def test_a_story_page_is_the_plain_page(cli, tmp_path):
    pytest.importorskip("plotly")
    for name, extra in (("plain.html", []), ("story.html", ["--story"])):
        got = cli("run", "-o", tmp_path / name, "--frames", "4", *extra)
        assert got.code == 0, got.err
    assert (tmp_path / "plain.html").read_bytes() == (tmp_path / "story.html").read_bytes()
