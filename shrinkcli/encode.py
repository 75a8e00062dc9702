"""Writing frames to GIF, MP4 or PNG, always through a temporary file.

GIF: one global 255-colour palette for the whole animation (no colour flicker),
built from a few sample frames; every later frame stores only the rectangle that
changed, with unchanged pixels transparent (index 255), so moving points cost
little and held frames cost a few bytes each. No dithering, so identical frames
give identical bytes. MP4: H.264 in yuv420p with +faststart, streamed to the
ffmpeg binary that imageio-ffmpeg ships. PNG: one still image.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import struct
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import GifImagePlugin, Image

from shrinkcli.errors import ShrinkError, UsageError, cut
from shrinkcli.output import atomic_path

Progress = Callable[[int], None] | None
SUFFIXES = (".gif", ".mp4", ".png", ".html")  # .html: the interactive page (page.py)
TRANSPARENT = 255  # palette index kept free for "unchanged since the previous frame"
_SPARE = (255, 0, 255)  # colour parked at the transparent index; never chosen (checked)


def write_animation(
    frames_iter: Iterable[np.ndarray],
    path: str | Path,
    *,
    fps: float,
    n_frames: int,
    progress: Progress = None,
) -> Path:
    """Write (H, W, 3) uint8 RGB frames to ``path``; the suffix picks the format.

    .gif and .mp4 get every frame at ``fps`` frames per second; .png gets the last
    frame (the final state). ``progress(n_done)`` is called after each frame.
    If ``frames_iter`` has a ``palette_sample()`` method (draw.FrameStream), the GIF
    palette comes from it and frames are streamed; otherwise the GIF writer keeps
    the frames in memory until the palette is known. Returns the path written.
    """
    path = Path(path)
    suffix = check_target(path, fps=fps)
    frames = _counted(iter(frames_iter), n_frames, progress)
    with _gc_paused(), atomic_path(path) as tmp:
        if suffix == ".gif":
            sample = getattr(frames_iter, "palette_sample", None)
            keep = getattr(frames_iter, "key_colors", ())
            _write_gif(frames, tmp, fps=fps, n_frames=n_frames, sample=sample, keep=keep,
                       stream=frames_iter, progress=progress)  # fmt: skip
        elif suffix == ".mp4":
            _write_mp4(frames, tmp, fps=fps)
        else:
            last = None
            for last in frames:  # noqa: B007 - the final state is the last frame
                pass
            _save_png(last, tmp)
    return path


def check_target(path: Path, *, fps: float, size: tuple[int, int] | None = None) -> str:
    """What the output format allows, checked before any work; returns the suffix."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:  # say why, in the words that help
        name = path.name
        shown = repr(cut(name))
        example = path.parent / "shrinkage.gif"
        if name in ("", ".", ".."):
            why = "the output name (-o) names no file; give one, e.g. shrinkage.gif"
        elif name.lower() in SUFFIXES:  # outs/.gif: a hidden file without a name
            why = f"cannot write {path}: {name!r} is only a suffix; give a name, e.g. {example}"
        elif name.rstrip().lower().endswith(SUFFIXES):
            why = f"cannot write {shown}: the name ends in a space after its suffix; remove it"
        elif path.is_dir():
            why = f"cannot write {path}: it is a folder; give a file in it, e.g. {example}"
        else:
            why = (
                f"cannot write {shown}: the output file (-o) must end in .gif, .mp4 or .png, "
                "or .html for the interactive page"
            )
        raise UsageError(why)
    if not 0 < fps <= 100:
        raise UsageError(f"--fps {fps} must be a number above 0 and at most 100")
    if suffix == ".gif" and fps > 50:
        raise UsageError(
            f"--fps {fps:g} is too fast for a GIF (browsers slow down delays "
            "under 0.02 s); use --fps 50 or less, or write .mp4"
        )
    if suffix == ".mp4" and size is not None and (size[0] % 2 or size[1] % 2):
        raise UsageError(
            f"MP4 (H.264, yuv420p) needs an even width and height, got {size[0]}x{size[1]}; "
            "pass even --width and --height values"
        )
    return suffix


def write_still(image: np.ndarray, path: str | Path) -> Path:
    """Write one (H, W, 3) uint8 RGB image as PNG."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UsageError(f"cannot write {path.name!r} as a still: the file (-o) must end in .png")
    with atomic_path(path) as tmp:
        _save_png(image, tmp)
    return path


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while frames stream through.

    Drawing allocates many small objects per frame, which triggers collections
    that walk every object matplotlib and numpy have made: on the default
    baseline that took as long as the drawing itself. Reference counting still
    frees everything; the collector's previous state is restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _counted(frames: Iterator[np.ndarray], n_frames: int, progress: Progress):
    """Pass frames through, check their count and shape, report progress."""
    shape = None
    done = 0
    for frame in frames:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if shape is None:
            shape = frame.shape
        elif frame.shape != shape:
            raise ValueError(f"frame {done} is {frame.shape}, the first was {shape}")
        done += 1
        if done > n_frames:
            raise ValueError(f"got more frames than n_frames={n_frames}")
        yield frame
        if progress is not None:
            progress(done)
    if done != n_frames:
        raise ValueError(f"got {done} frames, expected n_frames={n_frames}")


# ----------------------------------------------------------------------------- images


def _rgba_base(frame: np.ndarray) -> np.ndarray | None:
    """The contiguous (H, W, 4) array a frame is an RGB view of, if it is one."""
    base = frame.base
    if (
        isinstance(base, np.ndarray)
        and base.dtype == np.uint8
        and base.ndim == 3
        and base.shape == (*frame.shape[:2], 4)
        and base.flags.c_contiguous
        and frame.strides == (*base.strides[:2], 1)
        and frame.__array_interface__["data"][0] == base.__array_interface__["data"][0]
    ):
        return base
    return None


def _to_pil(frame: np.ndarray) -> Image.Image:
    """An RGB Pillow image of a frame, without a slow strided copy when possible."""
    base = _rgba_base(frame)
    h, w = frame.shape[:2]
    if base is not None:
        return Image.frombytes("RGB", (w, h), base, "raw", "RGBX")
    return Image.frombytes("RGB", (w, h), np.ascontiguousarray(frame), "raw", "RGB")


def _as_u32(frame: np.ndarray) -> np.ndarray:
    """(H, W) uint32 packing R | G << 8 | B << 16 of a frame's colours, to compare fast."""
    base = _rgba_base(frame)
    if base is not None and np.little_endian:  # RGBA bytes read as uint32: A B G R
        return base.view(np.uint32)[:, :, 0] & np.uint32(0x00FFFFFF)
    f = frame.astype(np.uint32)
    return f[:, :, 0] | (f[:, :, 1] << 8) | (f[:, :, 2] << 16)


def _save_png(image: np.ndarray | None, tmp: Path) -> None:
    if image is None:
        raise ValueError("no frame to write")
    _to_pil(np.asarray(image)).save(tmp, format="PNG", optimize=False, compress_level=6)


# ----------------------------------------------------------------------------- GIF


def gif_delays(n_frames: int, fps: float) -> list[int]:
    """Per-frame delays in hundredths of a second (GIF's unit), summing to n/fps.

    With fps = 10 every delay is 10 (100 ms); for fps that do not divide 100 the
    rounding is spread so the total time stays right.
    """
    ticks = [round(100 * i / fps) for i in range(n_frames + 1)]
    return [b - a for a, b in zip(ticks, ticks[1:], strict=False)]


def build_palette(samples: list[np.ndarray], keep: Iterable[str] = ()) -> Image.Image:
    """A 'P' image whose palette has 255 colours for these frames (index 255 spare).

    The commonest colour (the background) and, if they fit, every colour of the
    samples are kept exactly; otherwise Pillow's median cut chooses the rest from
    the non-background pixels, so the palette is spent where the picture is. The
    ``keep`` colours ('#rrggbb', e.g. the legend's) are always exact: median cut
    would otherwise merge a colour that covers few pixels into a neighbour.
    """
    fixed = [int(c[1:3], 16) | int(c[3:5], 16) << 8 | int(c[5:7], 16) << 16 for c in keep]
    packed = np.concatenate([_as_u32(s).ravel() for s in samples])
    values, counts = np.unique(packed[:: max(1, packed.size // 200_000)], return_counts=True)
    background = values[np.argmax(counts)]
    rest = packed[packed != background]
    rest = rest[:: max(1, rest.size // 250_000)]  # a spread-out subsample is plenty
    uniq = np.unique(rest)
    rgb = _unpack(np.concatenate([[background], uniq]))
    if len(rgb) > 255:  # median cut time grows fast with pixels; 50k keep the same quality
        exact = np.unique(np.array([c for c in fixed if c != background], dtype=np.uint32))
        n_cut = 254 - len(exact)
        pixels = _unpack(rest[:: max(1, rest.size // 50_000)])
        strip = Image.frombytes("RGB", (len(pixels), 1), pixels.astype(np.uint8).tobytes())
        q = strip.quantize(colors=n_cut, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
        cut = np.array(q.getpalette()[: 3 * n_cut], dtype=np.uint8).reshape(-1, 3)
        rgb = np.concatenate([_unpack(np.array([background])), _unpack(exact), cut])
    table = np.zeros((256, 3), dtype=np.uint8)
    table[:] = _SPARE
    table[: len(rgb)] = rgb
    pal = Image.new("P", (1, 1))
    pal.putpalette(table.tobytes())
    return pal


def _unpack(packed: np.ndarray) -> np.ndarray:
    """(N,) colours packed by _as_u32 -> (N, 3) uint8 RGB."""
    packed = np.asarray(packed, dtype=np.uint32)
    return np.stack([packed & 255, (packed >> 8) & 255, (packed >> 16) & 255], 1).astype(np.uint8)


class _Quantizer:
    """Exact nearest-colour mapping to a palette, memoised in a lookup table.

    Pillow's quantize(palette=...) looks colours up at reduced precision and can
    map the background to a near neighbour; this maps every colour to its truly
    nearest palette entry (RGB distance), so palette colours stay exact.
    """

    def __init__(self, palette: Image.Image) -> None:
        table = np.array(palette.getpalette()[: 3 * 256], dtype=np.float32).reshape(-1, 3)
        self.table = table[:TRANSPARENT]
        self.norms = (self.table**2).sum(axis=1)
        self.lut = np.full(1 << 24, TRANSPARENT, dtype=np.uint8)  # TRANSPARENT = unknown

    def __call__(self, packed: np.ndarray) -> np.ndarray:
        """Palette indices of colours packed by _as_u32 (any shape)."""
        idx = np.take(self.lut, packed)
        unknown = idx == TRANSPARENT
        if unknown.any():
            new = np.unique(packed[unknown])
            rgb = _unpack(new).astype(np.float32)
            for lo in range(0, len(new), 8192):
                chunk = rgb[lo : lo + 8192]
                # |c - p|^2 - |c|^2: integers below 2^24, so exact in float32; three outer
                # products rather than a matmul, which would wake BLAS threads that spin
                t = self.table
                cross = np.multiply.outer(chunk[:, 0], t[:, 0])
                cross += np.multiply.outer(chunk[:, 1], t[:, 1])
                cross += np.multiply.outer(chunk[:, 2], t[:, 2])
                dist = self.norms[None] - 2.0 * cross
                self.lut[new[lo : lo + 8192]] = dist.argmin(axis=1)
            idx = np.take(self.lut, packed)
        return idx


def _gif_header(width: int, height: int, palette: Image.Image) -> bytes:
    table = bytes(palette.getpalette()[:768])
    screen = struct.pack("<HHBBB", width, height, 0xF7, 0, 0)  # global table of 256
    loop = b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", 0) + b"\x00"  # loop forever
    return b"GIF89a" + screen + table + loop


def _gif_frame(
    indices: np.ndarray, offset: tuple[int, int], delay: int, transparent: bool
) -> bytes:
    """Graphic control + image descriptor + LZW data for one (part of a) frame."""
    im = Image.frombytes(
        "P", (indices.shape[1], indices.shape[0]), np.ascontiguousarray(indices).tobytes()
    )
    params = {"duration": delay * 10, "disposal": 1}
    if transparent:
        params["transparency"] = TRANSPARENT
    return b"".join(GifImagePlugin.getdata(im, offset=offset, **params))


class _GifEncoder:
    """The GIF's frame blocks: after the first, each stores only what changed.

    Palette indices are a pure function of colour (exact nearest entry), so the
    state after writing a frame is just that frame, quantised: ``prime`` can
    start an encoder anywhere in the animation and produce the same bytes.
    """

    def __init__(self, palette: Image.Image, delays: list[int]) -> None:
        self.palette, self.delays = palette, delays
        self.quantize = _Quantizer(palette)
        self.prev_rgb = self.prev_idx = self.prev_frame = None

    def prime(self, frame: np.ndarray) -> None:
        """Continue as if ``frame`` had just been written."""
        self.prev_frame, self.prev_rgb = frame, _as_u32(frame)
        self.prev_idx = self.quantize(self.prev_rgb)

    def block(self, i: int, frame: np.ndarray) -> bytes:
        """Bytes for frame ``i`` (the first also carries the file header)."""
        one = np.full((1, 1), TRANSPARENT, np.uint8)
        if frame is self.prev_frame:  # the renderer repeats a held frame as the same array
            return _gif_frame(one, (0, 0), self.delays[i], transparent=True)
        self.prev_frame = frame
        rgb = _as_u32(frame)
        if self.prev_rgb is None:
            h, w = frame.shape[:2]
            self.prev_rgb, self.prev_idx = rgb, self.quantize(rgb)
            head = _gif_header(w, h, self.palette)
            return head + _gif_frame(self.prev_idx, (0, 0), self.delays[0], transparent=False)
        changed = rgb != self.prev_rgb
        rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        if rows.size == 0:  # a held frame: one transparent pixel keeps the frame count
            return _gif_frame(one, (0, 0), self.delays[i], transparent=True)
        y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        moved = changed[y0:y1, x0:x1]  # quantise only the pixels whose colour changed
        idx = self.quantize(rgb[y0:y1, x0:x1][moved])
        old = self.prev_idx[y0:y1, x0:x1]  # a view: updated in place below
        new = np.full(moved.shape, TRANSPARENT, np.uint8)
        new[moved] = np.where(idx == old[moved], TRANSPARENT, idx)
        old[moved] = idx
        self.prev_rgb = rgb
        return _gif_frame(new, (x0, y0), self.delays[i], transparent=True)


def _write_gif(
    frames: Iterator[np.ndarray],
    tmp: Path,
    *,
    fps: float,
    n_frames: int,
    sample: Callable[[], list[np.ndarray]] | None,
    keep: Iterable[str] = (),
    stream=None,
    progress: Progress = None,
) -> None:
    if sample is not None:
        palette = build_palette(sample(), keep)
    else:
        held = list(frames)
        if not held:
            raise ValueError("no frames to write")
        step = max(1, len(held) // 6)
        palette = build_palette(held[::step] + [held[-1]], keep)
        frames = iter(held)
    enc = _GifEncoder(palette, gif_delays(n_frames, fps))
    split = _split_point(stream)
    with open(tmp, "wb") as fh:
        if split:
            child = _encode_in_child(stream, enc, split, n_frames)
            try:
                for i in range(split):
                    fh.write(enc.block(i, next(frames)))
                tail = _collect(child)
            except BaseException:
                _stop(child)
                raise
            if tail is not None:
                fh.write(tail + b";")
                if progress is not None:
                    progress(n_frames)
                return
        # one process, or the child failed: the same iterator goes on from ``split``
        for i, frame in enumerate(frames, split):
            fh.write(enc.block(i, frame))
        if enc.prev_rgb is None:
            raise ValueError("no frames to write")
        fh.write(b";")


def _split_point(stream) -> int:
    """Where a second process takes over the frames, or 0 to stay in one.

    Worth it for a FrameStream (which can seek) of enough moving frames on a
    machine with a second core: the two halves draw and encode at once.
    """
    if stream is None or not hasattr(stream, "seek") or not sys.platform.startswith("linux"):
        return 0  # fork is only dependable on Linux (macOS system libraries dislike it)
    if len(os.sched_getaffinity(0)) < 2 or stream.frames.n_move < 24:
        return 0
    return stream.frames.n_move // 2


def _encode_in_child(stream, enc: _GifEncoder, split: int, n_frames: int) -> tuple[int, int]:
    """Fork: the child draws frames split-1.. and sends the blocks of split.. back.

    SIGINT and SIGTERM are blocked across the fork so that no exception can run the
    parent's clean-up code inside the child; the child then takes the default
    action (Ctrl-C simply ends it; ignored where the parent ignores it) and stops
    by itself if the parent dies.
    """
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    ignoring = signal.getsignal(signal.SIGINT) == signal.SIG_IGN  # e.g. in a batch worker
    stops = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    try:
        pid = os.fork()
        if pid == 0:  # the child: never returns, never touches the parent's files
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN if ignoring else signal.SIG_DFL)
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
                os.close(read_fd)
                stream.seek(split - 1)
                enc.prime(next(stream))
                blocks = []
                for i in range(split, n_frames):
                    if os.getppid() != parent:  # orphaned: nobody will read the result
                        break
                    blocks.append(enc.block(i, next(stream)))
                else:
                    with os.fdopen(write_fd, "wb") as pipe:
                        pipe.write(b"".join(blocks))
                    code = 0
            finally:
                os._exit(code)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)
    os.close(write_fd)
    return pid, read_fd


def _collect(child: tuple[int, int]) -> bytes | None:
    """The child's bytes, or None if it failed (the parent then draws the rest)."""
    pid, read_fd = child
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    return data if os.waitstatus_to_exitcode(status) == 0 else None


def _stop(child: tuple[int, int]) -> None:
    pid, read_fd = child
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    with contextlib.suppress(OSError):
        os.close(read_fd)


# ----------------------------------------------------------------------------- MP4


def _write_mp4(frames: Iterator[np.ndarray], tmp: Path, *, fps: float) -> None:
    import imageio_ffmpeg

    first = next(frames, None)
    if first is None:
        raise ValueError("no frames to write")
    h, w = first.shape[:2]
    check_target(tmp, fps=fps, size=(w, h))
    rate = Fraction(fps).limit_denominator(1001)
    use_rgba = _rgba_base(first) is not None
    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-y",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgba" if use_rgba else "rgb24",
        "-s",
        f"{w}x{h}",
        "-r",
        f"{rate.numerator}/{rate.denominator}",
        "-i",
        "-",
        "-an",
        "-c:v",
        "libx264",
        "-preset",
        "medium",
        "-crf",
        "20",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        "-fflags",
        "+bitexact",
        "-f",
        "mp4",
        str(tmp),
    ]
    with tempfile.TemporaryFile() as err:
        # ffmpeg runs in a session of its own: a Ctrl-C at the terminal (SIGINT to the
        # foreground process group) is for shrink to handle, not for ffmpeg, which stops
        # at once with exit 255 even where shrink ignores SIGINT (a batch worker, a
        # background job). Shrink kills it below when it is itself interrupted; if shrink
        # dies outright, the pipe closes and ffmpeg ends.
        proc = None
        try:
            with _signals_held():  # a handler's exception inside Popen would lose ffmpeg
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=err,
                    start_new_session=True,
                )
            for frame in _chain(first, frames):
                data = _rgba_base(frame) if use_rgba else np.ascontiguousarray(frame)
                if data is None:  # a plain RGB array among RGBA views: add the alpha
                    data = np.dstack([frame, np.full(frame.shape[:2], 255, np.uint8)])
                try:
                    proc.stdin.write(memoryview(np.ascontiguousarray(data)).cast("B"))
                except BrokenPipeError:
                    break  # ffmpeg stopped; its message is reported below
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            code = proc.wait()
        except BaseException:
            if proc is not None:
                proc.kill()
                proc.wait()
            raise
        if code != 0:
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            raise ShrinkError(
                f"ffmpeg could not write the MP4 (exit {code}): "
                + (lines[-1] if lines else "no message")
            )


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Run Python's signal handlers (Ctrl-C's KeyboardInterrupt, SIGTERM's SystemExit,
    a batch worker's orphan signal) only once the block has ended.

    An exception raised inside subprocess.Popen after the fork loses the child:
    ffmpeg would run on unseen and, its input closed, write an empty file where the
    temporary file was just removed. The signals that arrive meanwhile are raised
    again at the end, so their handlers run in the caller, where ``proc`` is known.
    Main thread only (Python runs handlers there); elsewhere nothing is held.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    held = {}
    for signum in signal.valid_signals():
        with contextlib.suppress(OSError, ValueError):
            if callable(signal.getsignal(signum)):
                held[signum] = signal.signal(signum, lambda n, _frame: caught.append(n))
    try:
        yield
    finally:
        for signum, handler in held.items():
            signal.signal(signum, handler)
        for signum in caught:
            signal.raise_signal(signum)
