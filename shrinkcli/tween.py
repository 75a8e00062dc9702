"""Easing and frame interpolation: small pure functions in the spirit of tweenr.

A :class:`Frames` holds where the moving points are in every frame of the
animation. Frames ``0 .. frames-1`` are the movement (frame 0 is the start,
frame ``frames-1`` the end) and the ``hold`` frames after them repeat the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from shrinkcli.errors import UsageError

Easing = Callable[[np.ndarray], np.ndarray]


def linear(t: np.ndarray) -> np.ndarray:
    """Constant speed."""
    return np.asarray(t, dtype=float)


def quad_in_out(t: np.ndarray) -> np.ndarray:
    """Accelerate then decelerate, quadratically."""
    t = np.asarray(t, dtype=float)
    return np.where(t < 0.5, 2 * t * t, 1 - 2 * (1 - t) ** 2)


def cubic_in_out(t: np.ndarray) -> np.ndarray:
    """Accelerate then decelerate, cubically."""
    t = np.asarray(t, dtype=float)
    return np.where(t < 0.5, 4 * t**3, 1 - 4 * (1 - t) ** 3)


def sine_in_out(t: np.ndarray) -> np.ndarray:
    """Accelerate then decelerate along half a cosine."""
    t = np.asarray(t, dtype=float)
    return (1 - np.cos(np.pi * t)) / 2


def cubic_out(t: np.ndarray) -> np.ndarray:
    """Start fast and settle slowly into the end."""
    t = np.asarray(t, dtype=float)
    return 1 - (1 - t) ** 3


def exponential_in_out(t: np.ndarray) -> np.ndarray:
    """Very slow at both ends, fast in the middle (tweenr's 'exponential-in-out')."""
    t = np.asarray(t, dtype=float)
    lo = np.power(2.0, 20 * t - 10) / 2
    hi = 1 - np.power(2.0, -20 * t + 10) / 2
    out = np.where(t < 0.5, lo, hi)
    return np.where(t <= 0, 0.0, np.where(t >= 1, 1.0, out))


EASINGS: dict[str, Easing] = {
    "linear": linear,
    "quad-in-out": quad_in_out,
    "cubic-in-out": cubic_in_out,
    "sine-in-out": sine_in_out,
    "cubic-out": cubic_out,
    "exponential-in-out": exponential_in_out,
}


def easing(name: str) -> Easing:
    """The easing function called ``name`` (see :data:`EASINGS`)."""
    try:
        return EASINGS[name]
    except KeyError:
        choices = ", ".join(EASINGS)
        raise UsageError(f"--ease {name!r} is not known; use one of {choices}") from None


@dataclass(frozen=True, eq=False)
class Frames:
    """Moving-point positions per frame.

    positions: (F, G, 2) intercept and slope of every cluster's moving point.
    progress: (F,) in [0, 1], eased; drives the colour change (0 = by-cluster, 1 = mixed).
    kappa: (F,) the covariance scale of each frame on the pooling path, else None
    (NaN in a story's frames before the path starts).
    n_move: how many of the F frames are movement; the rest hold the end.
    stage: (F,) a story's clock (see story_frames), else None: 0 at complete pooling,
    the fan-out's eased progress up to 1 at no pooling, then 1 + the pull's progress.
    """

    positions: np.ndarray
    progress: np.ndarray
    kappa: np.ndarray | None
    n_move: int
    stage: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("positions", "progress", "kappa", "stage"):
            value = getattr(self, name)
            if value is not None:
                value = np.array(value, dtype=float)  # a private, read-only copy
                value.setflags(write=False)
                object.__setattr__(self, name, value)
        if self.positions.ndim != 3 or self.positions.shape[2] != 2:
            raise ValueError(f"positions must be (F, G, 2), got {self.positions.shape}")
        n = self.positions.shape[0]
        if self.progress.shape != (n,):
            raise ValueError(f"progress must be ({n},), got {self.progress.shape}")
        for name in ("kappa", "stage"):
            value = getattr(self, name)
            if value is not None and value.shape != (n,):
                raise ValueError(f"{name} must be ({n},), got {value.shape}")
        if not 1 <= self.n_move <= n:
            raise ValueError(f"n_move must be in 1..{n}, got {self.n_move}")

    @property
    def n_frames(self) -> int:
        return self.positions.shape[0]

    @property
    def n_clusters(self) -> int:
        return self.positions.shape[1]

    @property
    def on_path(self) -> np.ndarray | None:
        """(F,) True on the pooling path's moving frames (a story's κ is NaN before the
        path starts; held frames are not moving), or None off the path."""
        if self.kappa is None:
            return None
        return ~np.isnan(self.kappa) & (np.arange(self.n_frames) < self.n_move)


def eased_progress(*, frames: int, hold: int, ease: str) -> np.ndarray:
    """(frames + hold,) progress: eased 0 -> 1 over ``frames`` frames, then 1 held."""
    _check_counts(frames, hold)
    t = np.arange(frames, dtype=float) / (frames - 1)
    p = np.clip(easing(ease)(t), 0.0, 1.0)
    p[0], p[-1] = 0.0, 1.0
    return np.concatenate([p, np.ones(hold)])


def straight_frames(
    start: np.ndarray, end: np.ndarray, *, frames: int, hold: int, ease: str = "linear"
) -> Frames:
    """Straight lines from ``start`` (G, 2) to ``end`` (G, 2), as the article draws them.

    A cluster whose start has a NaN (no OLS slope) sits at its end from the first frame.
    """
    start, end = _as_points(start, "start"), _as_points(end, "end")
    if start.shape != end.shape:
        raise ValueError(f"start {start.shape} and end {end.shape} differ in shape")
    start = np.where(np.isnan(start).any(axis=1, keepdims=True), end, start)
    p = eased_progress(frames=frames, hold=hold, ease=ease)
    positions = start[None] + p[:, None, None] * (end - start)[None]
    positions[frames - 1 :] = end  # exact, not start + 1 * (end - start)
    return Frames(positions=positions, progress=p, kappa=None, n_move=frames)


def path_frames(
    path: np.ndarray, kappas: np.ndarray, *, frames: int, hold: int, ease: str = "linear"
) -> Frames:
    """Follow a precomputed pooling path.

    path: (K, G, 2) cluster estimates at K values of the covariance scale ``kappas``
    (K,), from huge (no pooling, the OLS estimates) to 1 (the fitted model); several
    leading samples may have kappa = inf (a singular fit's straight start, see
    pipeline.pooling_path_frames), and frames between them keep kappa = inf. Eased
    progress runs along the K samples, interpolating linearly between neighbours
    (and geometrically in kappa). A sample with a NaN takes the cluster's end.
    """
    path = np.asarray(path, dtype=float)
    kappas = np.asarray(kappas, dtype=float)
    if path.ndim != 3 or path.shape[2] != 2 or path.shape[0] < 2:
        raise ValueError(f"path must be (K >= 2, G, 2), got {path.shape}")
    if kappas.shape != path.shape[:1] or not np.all(kappas > 0):
        raise ValueError(f"kappas must be ({path.shape[0]},) positive numbers")
    end = path[-1]
    if np.isnan(end).any():
        raise ValueError("the last sample of the pooling path (the fitted model) has NaN")
    path = np.where(np.isnan(path).any(axis=2, keepdims=True), end[None], path)
    p = eased_progress(frames=frames, hold=hold, ease=ease)
    s = p * (path.shape[0] - 1)
    i = np.minimum(np.floor(s).astype(int), path.shape[0] - 2)
    w = (s - i)[:, None, None]
    positions = (1 - w) * path[i] + w * path[i + 1]
    positions[frames - 1 :] = end
    positions[0] = path[0]
    lo, hi, t = np.log(kappas[i]), np.log(kappas[i + 1]), w[:, 0, 0]
    with np.errstate(invalid="ignore"):  # inf * 0 between two kappa = inf samples
        mix = (1 - t) * lo + t * hi
    kappa = np.exp(np.where(t == 0, lo, np.where(t == 1, hi, np.where(lo == hi, lo, mix))))
    kappa[frames - 1 :] = kappas[-1]
    kappa[0] = kappas[0]
    return Frames(positions=positions, progress=p, kappa=kappa, n_move=frames)


STORY_HOLD_SECONDS = 2.5  # each stage of a story is held this long before the next moves


def story_hold(fps: float) -> int:
    """Frames a story holds each stage (at least one): STORY_HOLD_SECONDS at ``fps``."""
    return max(1, round(STORY_HOLD_SECONDS * fps))


def story_frames(
    pooled: np.ndarray, ols: np.ndarray, pull: Frames, *, frames: int, hold: int,
    ease: str = "linear",
) -> Frames:  # fmt: skip
    """Complete pooling -> no pooling -> partial pooling, as one animation.

    ``hold`` frames with every cluster at the pooled OLS estimate ``pooled`` (2,),
    ``frames`` frames fanning out in straight lines to each cluster's own OLS
    estimate ``ols`` (G, 2), ``hold`` frames there, then ``pull`` (straight or
    pooling-path frames from the OLS to the mixed estimates, with its own hold).
    A cluster without an OLS estimate waits where ``pull`` starts it.

    progress (the colour) is 0 until the pull starts; stage is the story's clock
    (see Frames); kappa is NaN before the pull when the pull has one.
    """
    ols = _as_points(ols, "ols")
    if ols.shape != pull.positions.shape[1:]:
        raise ValueError(f"ols {ols.shape} and the pull's clusters differ in shape")
    start = pull.positions[0]
    target = np.where(np.isnan(ols).any(axis=1, keepdims=True), start, ols)
    pooled = np.broadcast_to(np.asarray(pooled, dtype=float), ols.shape)
    pooled = np.where(np.isnan(ols).any(axis=1, keepdims=True), start, pooled)
    _check_counts(frames, hold)
    fan = straight_frames(pooled, target, frames=frames, hold=hold, ease=ease)
    before = np.repeat(pooled[None], hold, axis=0)
    n_before = hold + fan.n_frames
    kappa = None
    if pull.kappa is not None:
        kappa = np.concatenate([np.full(n_before, np.nan), pull.kappa])
    return Frames(
        positions=np.concatenate([before, fan.positions, pull.positions]),
        progress=np.concatenate([np.zeros(n_before), pull.progress]),
        kappa=kappa,
        n_move=n_before + pull.n_move,
        stage=np.concatenate([np.zeros(hold), fan.progress, 1.0 + pull.progress]),
    )


def to_long(frames: Frames, clusters: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The tweenr-like long table: one row per frame and cluster.

    Columns frame (1-based, as tweenr), phase ("move" or "hold"), cluster (the labels
    given, else 1..G), x (intercept), y (slope), plus progress, kappa and stage (if any).
    """
    n, g = frames.n_frames, frames.n_clusters
    labels = np.arange(1, g + 1) if clusters is None else np.asarray(clusters)
    if labels.shape != (g,):
        raise ValueError(f"clusters must have {g} labels, got {labels.shape}")
    frame = np.repeat(np.arange(1, n + 1), g)
    phase = np.where(np.arange(n) < frames.n_move, "move", "hold")
    out = {
        "frame": frame,
        "phase": np.repeat(phase, g),
        "cluster": np.tile(labels, n),
        "x": frames.positions[:, :, 0].reshape(-1).copy(),
        "y": frames.positions[:, :, 1].reshape(-1).copy(),
        "progress": np.repeat(frames.progress, g),
    }
    if frames.kappa is not None:
        out["kappa"] = np.repeat(frames.kappa, g)
    if frames.stage is not None:
        out["stage"] = np.repeat(frames.stage, g)
    return out


def _check_counts(frames: int, hold: int) -> None:
    if int(frames) != frames or frames < 2:
        raise UsageError(f"--frames {frames} is too few; use at least 2 movement frames")
    if int(hold) != hold or hold < 0:
        raise UsageError(f"--hold {hold} must be a whole number >= 0")


def _as_points(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    if a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"{name} must be (G, 2), got {a.shape}")
    return a
