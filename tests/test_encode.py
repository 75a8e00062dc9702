"""GIF, MP4 and PNG files, read back."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
from conftest import reference_picture
from PIL import Image

from shrinkcli.draw import Picture, RenderSettings, render_frames, render_still
from shrinkcli.encode import build_palette, gif_delays, write_animation, write_still
from shrinkcli.errors import UsageError
from shrinkcli.tween import straight_frames

REFERENCE = Path(__file__).parent / "data" / "lme4"
ARTICLE_GIF_BYTES = 817_591  # the article's published baseline GIF


@pytest.fixture(scope="module")
def baseline() -> Picture:
    return reference_picture("baseline")


def stream(pic: Picture, **settings):
    s = RenderSettings(**settings)
    frames = straight_frames(pic.ols, pic.mixed, frames=s.frames, hold=s.hold, ease=s.ease)
    return render_frames(pic, frames, s), s


SMALL = {"width": 300, "height": 226, "frames": 6, "hold": 3}


def _gif_frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as im:
        out = []
        for i in range(im.n_frames):
            im.seek(i)
            out.append(np.asarray(im.convert("RGB")))
        return out


def test_gif_count_size_delay_loop(baseline, tmp_path):
    frames, s = stream(baseline, **SMALL)
    out = write_animation(frames, tmp_path / "a.gif", fps=s.fps, n_frames=s.n_frames)
    assert out == tmp_path / "a.gif"
    with Image.open(out) as im:
        assert im.format == "GIF"
        assert im.n_frames == 9
        assert im.size == (300, 226)
        assert im.info["loop"] == 0
        for i in range(im.n_frames):
            im.seek(i)
            assert im.info["duration"] == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif"]  # no temp file left


def test_gif_shows_the_frames(baseline, tmp_path):
    frames, s = stream(baseline, **SMALL)
    expected = [np.array(f) for f in stream(baseline, **SMALL)[0]]
    write_animation(frames, tmp_path / "a.gif", fps=s.fps, n_frames=s.n_frames)
    got = _gif_frames(tmp_path / "a.gif")
    for want, have in zip(expected, got, strict=True):
        paper = (want == [255, 255, 248]).all(axis=2)
        err = np.abs(want.astype(int) - have).max(axis=2)
        assert err[paper].max() == 0  # the background is exact
        assert err.mean() < 1.5 and np.quantile(err, 0.99) < 16


def test_gif_is_byte_identical_on_rerun(baseline, tmp_path):
    for name in ("one.gif", "two.gif"):
        frames, s = stream(baseline, **SMALL)
        write_animation(frames, tmp_path / name, fps=s.fps, n_frames=s.n_frames)
    assert (tmp_path / "one.gif").read_bytes() == (tmp_path / "two.gif").read_bytes()


def test_default_baseline_gif_is_smaller_than_the_articles(baseline, tmp_path):
    frames, s = stream(baseline)
    out = write_animation(frames, tmp_path / "baseline.gif", fps=s.fps, n_frames=s.n_frames)
    assert out.stat().st_size <= ARTICLE_GIF_BYTES
    with Image.open(out) as im:
        assert im.n_frames == 120 and im.size == (600, 450)


def test_gif_from_a_plain_list_of_frames(baseline, tmp_path):
    frames = [np.ascontiguousarray(f) for f in stream(baseline, **SMALL)[0]]
    progress = []
    write_animation(iter(frames), tmp_path / "l.gif", fps=5, n_frames=9, progress=progress.append)
    assert progress == list(range(1, 10))
    got = _gif_frames(tmp_path / "l.gif")
    assert len(got) == 9
    with Image.open(tmp_path / "l.gif") as im:
        assert im.info["duration"] == 200


def test_gif_delays_keep_the_total_time():
    assert gif_delays(4, 10) == [10, 10, 10, 10]
    d = gif_delays(30, 30)
    assert sum(d) == 100 and set(d) <= {3, 4}


def test_gif_rejects_too_fast_fps(baseline, tmp_path):
    frames, _ = stream(baseline, **SMALL)
    with pytest.raises(UsageError, match="--fps"):
        write_animation(frames, tmp_path / "f.gif", fps=60, n_frames=9)
    assert list(tmp_path.iterdir()) == []


def test_palette_keeps_the_background_and_a_spare_slot(baseline):
    frames, _ = stream(baseline, **SMALL)
    pal = np.array(build_palette(frames.palette_sample()).getpalette()).reshape(-1, 3)
    assert pal.shape == (256, 3)
    assert pal[0].tolist() == [255, 255, 248]


def _probe(path: Path) -> str:
    run = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
    )
    return run.stderr


def _top_level_boxes(data: bytes) -> list[str]:
    names, pos = [], 0
    while pos + 8 <= len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        names.append(data[pos + 4 : pos + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        if size < 8:
            break
        pos += size
    return names


def test_mp4_count_size_codec(baseline, tmp_path):
    frames, s = stream(baseline, **{**SMALL, "height": 226})
    out = write_animation(frames, tmp_path / "a.mp4", fps=s.fps, n_frames=s.n_frames)
    n, _ = imageio_ffmpeg.count_frames_and_secs(str(out))  # its seconds vary by version
    assert n == 9
    reader = imageio_ffmpeg.read_frames(str(out))
    meta = next(reader)
    assert tuple(meta["size"]) == (300, 226)
    first = np.frombuffer(next(reader), np.uint8).reshape(226, 300, 3)
    reader.close()
    expected = render_still(baseline, RenderSettings(**SMALL))  # compare the paper colour
    assert np.abs(first[5, 5].astype(int) - expected[5, 5]).max() < 6
    info = _probe(out)
    assert re.search(r"Video: h264", info) and "yuv420p" in info
    hours, mins, secs = re.search(r"Duration: (\d+):(\d+):([\d.]+)", info).groups()
    assert 3600 * int(hours) + 60 * int(mins) + float(secs) == pytest.approx(0.9, abs=0.05)
    boxes = _top_level_boxes(out.read_bytes())
    assert boxes.index("moov") < boxes.index("mdat")  # +faststart: playable while loading
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


def test_mp4_rejects_odd_sizes(baseline, tmp_path):
    frames, s = stream(baseline, **{**SMALL, "width": 301})
    with pytest.raises(UsageError, match="--width"):
        write_animation(frames, tmp_path / "odd.mp4", fps=s.fps, n_frames=s.n_frames)
    assert list(tmp_path.iterdir()) == []


def test_png_still(baseline, tmp_path):
    image = render_still(baseline, RenderSettings(**SMALL))
    out = write_still(image, tmp_path / "still.png")
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size == (300, 226)
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), image)
    frames, s = stream(baseline, **SMALL)
    last = write_animation(frames, tmp_path / "last.png", fps=s.fps, n_frames=s.n_frames)
    with Image.open(last) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), image)


def test_unknown_suffix_is_a_usage_error(baseline, tmp_path):
    frames, s = stream(baseline, **SMALL)
    with pytest.raises(UsageError, match="-o"):
        write_animation(frames, tmp_path / "a.avi", fps=s.fps, n_frames=s.n_frames)
    with pytest.raises(UsageError, match=".png"):
        write_still(render_still(baseline, RenderSettings(**SMALL)), tmp_path / "a.gif")
    assert list(tmp_path.iterdir()) == []


class Boom(RuntimeError):
    pass


def _failing(frames, after: int):
    for i, frame in enumerate(frames):
        if i == after:
            raise Boom("renderer failed")
        yield frame


@pytest.mark.parametrize("suffix", [".gif", ".mp4", ".png"])
def test_no_file_left_when_frames_fail_midway(baseline, tmp_path, suffix):
    frames, s = stream(baseline, **SMALL)
    target = tmp_path / f"broken{suffix}"
    with pytest.raises(Boom):
        write_animation(_failing(frames, 4), target, fps=s.fps, n_frames=s.n_frames)
    assert list(tmp_path.iterdir()) == []


def test_wrong_frame_count_leaves_no_file(baseline, tmp_path):
    frames, s = stream(baseline, **SMALL)
    with pytest.raises(ValueError, match="n_frames"):
        write_animation(frames, tmp_path / "short.gif", fps=s.fps, n_frames=s.n_frames + 1)
    assert list(tmp_path.iterdir()) == []
