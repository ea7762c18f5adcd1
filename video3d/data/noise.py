"""Detector-like noise for synthetic 2D keypoints (COCO-17, pixels).

Ground-truth projections are too clean: a lifter trained on them trusts every
pixel, while real detectors (BlazePose, HRNet) jitter, drift, jump, confuse
left and right and lose joints. :func:`detector_noise` imitates these errors
and the confidence scores that come with them; it runs in COCO-17 space, before
:func:`video3d.keypoints.coco_to_h36m`, so the derived joints (pelvis, thorax,
spine, head) inherit the errors exactly as they do at inference. The model and
its defaults are described in docs/training_data.md.

Randomness only comes from the ``rng`` argument; every function is vectorised
over frames and joints, and rare events cost in proportion to their number
(about 0.9 ms of CPU for a 243-frame window on the 2-core development machine).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from video3d.data.augment import COCO_FLIP_PERMUTATION

NUM_COCO_JOINTS = 17

#: Joint permutations of the three left/right confusions: arms (elbows and
#: wrists), legs (knees and ankles), whole body (every left/right pair).
SWAP_PERMUTATIONS: tuple[tuple[int, ...], ...] = (
    (0, 1, 2, 3, 4, 5, 6, 8, 7, 10, 9, 11, 12, 13, 14, 15, 16),
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 13, 16, 15),
    COCO_FLIP_PERMUTATION,
)


@dataclass
class DetectorNoiseConfig:
    """Parameters of :func:`detector_noise` (tabulated in docs/training_data.md).

    Sizes are fractions of the person scale ``s`` (the keypoints' bbox height,
    or its width when larger, per frame). Rates hold at noise level 1 and scale
    linearly with the per-sample level. Pairs are (low, high) of uniform draws.
    """

    #: Per-sample noise level: 0 (ground-truth-like) with ``clean_prob``,
    #: U(heavy_level) with ``heavy_prob``, else U(moderate_level).
    clean_prob: float = 0.1
    heavy_prob: float = 0.15
    moderate_level: tuple[float, float] = (0.5, 1.5)
    heavy_level: tuple[float, float] = (1.5, 3.0)
    #: Per-axis std of the jitter of each COCO joint at level 1, fraction of s.
    joint_std: tuple[float, ...] = (
        0.008,                  # nose
        0.007, 0.007,           # eyes
        0.010, 0.010,           # ears
        0.012, 0.012,           # shoulders
        0.016, 0.016,           # elbows
        0.022, 0.022,           # wrists
        0.014, 0.014,           # hips
        0.015, 0.015,           # knees
        0.020, 0.020,           # ankles
    )
    #: Log-normal sigma of a per-sample, per-joint multiplier of ``joint_std``
    #: (some joints are harder in some clips: occlusion, clothing, blur).
    joint_std_spread: float = 0.3
    #: Share of the jitter variance that is a constant offset over the window
    #: (systematic bias) and share that is white (frame-independent); the rest
    #: is AR(1) noise with correlation time U(corr_frames) frames.
    bias_fraction: float = 0.1
    white_fraction: float = 0.1
    corr_frames: tuple[float, float] = (2.0, 10.0)
    #: Outliers: expected fraction of (frame, joint) entries that jump by
    #: U(outlier_jump) * s in a random direction, for U{outlier_frames} frames.
    outlier_rate: float = 0.005
    outlier_frames: tuple[int, int] = (1, 5)
    outlier_jump: tuple[float, float] = (0.1, 0.3)
    #: Left/right swaps: expected fraction of frames inside a swap lasting
    #: U{swap_frames} frames; kind (arms, legs, whole body) drawn with swap_kind_probs.
    swap_rate: float = 0.01
    swap_frames: tuple[int, int] = (2, 10)
    swap_kind_probs: tuple[float, float, float] = (0.3, 0.5, 0.2)
    #: Dropped joints: expected fraction of entries lost for U{drop_frames}
    #: frames; the position then freezes at its last value (drop_hold_prob)
    #: or sits at a random place in the person's bbox enlarged 1.5x.
    drop_rate: float = 0.005
    drop_frames: tuple[int, int] = (1, 15)
    drop_hold_prob: float = 0.5
    #: Scores: per-sample, per-joint clean score U(score_clean), times
    #: 1 / (1 + (e / score_half_error)^2) for a position error e (fraction of
    #: s), times U(1 - score_jitter, 1) per entry. Dropped: U(drop_score).
    #: Joints outside the image (when its size is given): times U(outside_score).
    score_clean: tuple[float, float] = (0.8, 1.0)
    score_half_error: float = 0.08
    score_jitter: float = 0.05
    drop_score: tuple[float, float] = (0.0, 0.1)
    outside_score: tuple[float, float] = (0.0, 0.5)

    def __post_init__(self) -> None:
        if len(self.joint_std) != NUM_COCO_JOINTS:
            raise ValueError(f"joint_std needs {NUM_COCO_JOINTS} values, got {len(self.joint_std)}")


def sample_noise_level(rng: np.random.Generator, config: DetectorNoiseConfig | None = None) -> float:
    """Per-sample noise level: 0 (clean), moderate (~1) or heavy (> 1.5)."""
    cfg = config if config is not None else DetectorNoiseConfig()
    u, v = rng.random(2)
    if u < cfg.clean_prob:
        return 0.0
    lo, hi = cfg.heavy_level if u < cfg.clean_prob + cfg.heavy_prob else cfg.moderate_level
    return float(lo + (hi - lo) * v)


def person_scale(keypoints_2d: np.ndarray) -> np.ndarray:
    """Per-frame person scale: max(bbox height, bbox width) of the finite joints.

    keypoints_2d: (T, J, 2) pixels. Returns (T,) float64 pixels (NaN for a
    frame without any finite joint).
    """
    lo, hi = _bbox(np.asarray(keypoints_2d, np.float64))
    size = hi - lo
    return np.maximum(size[:, 0], size[:, 1])


def _bbox(kp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, J, 2) -> per-frame (min (T, 2), max (T, 2)) over the finite joints."""
    x, y = kp[..., 0], kp[..., 1]  # reducing x and y separately is ~4x faster than axis=1 of (T, J, 2)
    if np.isfinite(kp).all():
        return np.stack([x.min(axis=1), y.min(axis=1)], -1), np.stack([x.max(axis=1), y.max(axis=1)], -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN frames give NaN
        return (np.stack([np.nanmin(x, axis=1), np.nanmin(y, axis=1)], -1),
                np.stack([np.nanmax(x, axis=1), np.nanmax(y, axis=1)], -1))


def _events(rng: np.random.Generator, shape: tuple[int, ...], rate: np.ndarray | float,
            frames: tuple[int, int]) -> tuple[tuple[np.ndarray, ...], np.ndarray, int] | None:
    """Random on/off events along axis 0 (time), sparse.

    shape: (T,) or (T, J). rate: expected fraction of active entries, a scalar
    or an array broadcastable to shape[1:]. Each entry starts an event with
    probability rate / mean duration; durations are uniform integers in
    ``frames`` (inclusive). Starts are also drawn for the frames[1] - 1 frames
    before the window, so the rate holds at its beginning. Where two events
    of one joint overlap, the later start wins. Returns None when nothing is
    active, else (index tuple of the active entries as from np.nonzero,
    event (n,) int id in [0, n_events) of each entry's event, n_events).
    """
    lo, hi = int(frames[0]), int(frames[1])
    T = shape[0]
    J = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
    p = np.broadcast_to(np.asarray(rate, np.float64) / (0.5 * (lo + hi)), shape[1:]).reshape(J)
    if not (p > 0).any():
        return None
    pre = hi - 1
    u = rng.random((T + pre, J))
    ts, js = np.nonzero(u < p)  # event starts, in time order
    if ts.size == 0:
        return None
    # Given a start, u / p is uniform in [0, 1): it also draws the duration.
    dur = lo + np.minimum((u[ts, js] / p[js] * (hi - lo + 1)).astype(np.int64), hi - lo)
    event = np.repeat(np.arange(ts.size), dur)
    t = ts[event] - pre + np.arange(event.size) - np.repeat(np.cumsum(dur) - dur, dur)
    keep = (t >= 0) & (t < T)
    event, t = event[keep], t[keep]
    if t.size == 0:
        return None
    j = js[event]
    key = t * J + j
    if np.unique(key).size != key.size:  # overlaps: keep the latest event per entry
        order = np.lexsort((event, key))
        key_sorted = key[order]
        order = order[np.append(key_sorted[1:] != key_sorted[:-1], True)]
        event, t, j = event[order], t[order], j[order]
    return ((t,) if len(shape) == 1 else (t, j)), event, int(ts.size)


def ar1_filter(x: np.ndarray, coeff: float) -> np.ndarray:
    """The recursion y[t] = coeff * y[t-1] + x[t] along axis 0, with y[-1] = 0.

    x: (T, ...); 0 <= coeff < 1. Returns (T, ...) float64. Vectorised through
    y[t] = c^t * cumsum(x[k] / c^k), in blocks short enough that c^-k stays
    far from overflow (the sum is dominated by its latest terms, so this is as
    accurate as the loop).
    """
    x = np.asarray(x, np.float64)
    if not 0.0 <= coeff < 1.0:
        raise ValueError(f"AR(1) coefficient must be in [0, 1), got {coeff}")
    if coeff == 0.0 or x.shape[0] <= 1:
        return x.copy()
    block = max(1, int(300.0 / -math.log(coeff)))
    y = np.empty_like(x)
    carry = None
    for s in range(0, x.shape[0], block):
        chunk = x[s:s + block]
        powers = (coeff ** np.arange(chunk.shape[0])).reshape((-1,) + (1,) * (x.ndim - 1))
        out = np.cumsum(chunk / powers, axis=0) * powers
        if carry is not None:
            out += (coeff * powers) * carry
        y[s:s + block] = out
        carry = out[-1]
    return y


def _ar1_unit(e: np.ndarray, coeff: float) -> np.ndarray:
    """Unit-variance white noise (T, ...) -> stationary unit-variance AR(1) noise with lag-1 correlation coeff."""
    e = e.copy()
    e[1:] *= math.sqrt(1.0 - coeff * coeff)
    return ar1_filter(e, coeff)


def detector_noise(keypoints_2d: np.ndarray, rng: np.random.Generator,
                   config: DetectorNoiseConfig | None = None,
                   bbox_height: float | np.ndarray | None = None, *,
                   level: float | None = None,
                   image_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Corrupt clean 2D keypoints like a real 2D detector would.

    keypoints_2d: (T, 17, 2) COCO-17 pixels (NaN = missing: stays missing,
    score 0). rng: the only source of randomness. config: defaults to
    :class:`DetectorNoiseConfig`. bbox_height: the person scale s in pixels,
    scalar or (T,); default :func:`person_scale` per frame. level: noise level
    multiplier; default :func:`sample_noise_level`. image_size: (width,
    height); if given, joints outside the image get low scores.
    Applied in order: left/right swaps (the detector labels the wrong limb),
    correlated jitter + bias, outliers, dropped joints; scores fall with the
    jitter + outlier error (not with swaps: detectors are confidently wrong there).
    Returns (noisy (T, 17, 2) float64 pixels, scores (T, 17) float32 in [0, 1]).
    """
    cfg = config if config is not None else DetectorNoiseConfig()
    kp = np.asarray(keypoints_2d, np.float64)
    if kp.ndim != 3 or kp.shape[1:] != (NUM_COCO_JOINTS, 2):
        raise ValueError(f"keypoints_2d must be (T, 17, 2), got {kp.shape}")
    T, J = kp.shape[:2]
    lvl = sample_noise_level(rng, cfg) if level is None else float(level)
    lo, hi = _bbox(kp)
    if bbox_height is None:
        size = hi - lo
        s = np.maximum(size[:, 0], size[:, 1])
    else:
        s = np.broadcast_to(np.asarray(bbox_height, np.float64), (T,))
    std = np.asarray(cfg.joint_std, np.float64)
    # Joints that jitter more also fail more often (uniform if every std is 0).
    rel = std / std.mean() if std.mean() > 0 else np.ones(J)

    out = kp.copy()
    err2 = None  # squared position error (fraction of s) that lowers the scores
    dropped = None
    if lvl > 0.0:
        # 1. Left/right swaps: whole frames, one kind per event.
        ev = _events(rng, (T,), cfg.swap_rate * lvl, cfg.swap_frames)
        if ev is not None:
            (t_idx,), event, n_ev = ev
            cum = np.cumsum(cfg.swap_kind_probs)
            kind = np.searchsorted(cum, rng.random(n_ev) * cum[-1], side="right")[event]
            for k, perm in enumerate(SWAP_PERMUTATIONS):
                rows = t_idx[kind == k]
                if rows.size:
                    out[rows] = out[rows][:, perm]
        # 2. Jitter: AR(1) + white + constant bias, per-axis std sigma_j * level * s.
        w_white, w_bias = cfg.white_fraction, cfg.bias_fraction
        corr = cfg.corr_frames[0] + (cfg.corr_frames[1] - cfg.corr_frames[0]) * rng.random()
        e = rng.standard_normal((2 if w_white > 0 else 1, T, J, 2))
        unit = math.sqrt(max(0.0, 1.0 - w_white - w_bias)) * _ar1_unit(e[0], math.exp(-1.0 / corr))
        if w_white > 0:
            unit += math.sqrt(w_white) * e[1]
        gains = rng.standard_normal(3 * J)
        if w_bias > 0:
            unit += math.sqrt(w_bias) * gains[J:].reshape(1, J, 2)
        disp = unit * (std * lvl * np.exp(cfg.joint_std_spread * gains[:J]))[:, None]
        # 3. Outliers: a joint jumps by U(outlier_jump) * s for a few frames.
        ev = _events(rng, (T, J), cfg.outlier_rate * lvl * rel, cfg.outlier_frames)
        if ev is not None:
            idx, event, n_ev = ev
            u = rng.random((n_ev, 2))[event]
            ang = 2.0 * np.pi * u[:, 0]
            mag = cfg.outlier_jump[0] + (cfg.outlier_jump[1] - cfg.outlier_jump[0]) * u[:, 1]
            disp[idx] += np.stack([mag * np.cos(ang), mag * np.sin(ang)], axis=-1)
        err2 = disp[..., 0] ** 2 + disp[..., 1] ** 2
        out += disp * s[:, None, None]
        # 4. Dropped joints: frozen at the last value or wildly wrong, score ~ 0.
        ev = _events(rng, (T, J), cfg.drop_rate * lvl * rel, cfg.drop_frames)
        if ev is not None:
            (t_idx, j_idx), event, n_ev = ev
            # The frame before each drop began (its first frame in the window).
            first = np.full(n_ev, T, np.int64)
            np.minimum.at(first, event, t_idx)
            before = np.maximum(first[event] - 1, 0)
            u = rng.random((n_ev, 3))[event]
            wild = 0.5 * (lo + hi)[t_idx] + 1.5 * (u[:, :2] - 0.5) * (hi - lo)[t_idx]
            out[t_idx, j_idx] = np.where(u[:, 2:] < cfg.drop_hold_prob, out[before, j_idx], wild)
            dropped = (t_idx, j_idx)

    # Scores.
    r = rng.random(J + T * J)
    a, b = cfg.score_clean
    scores = (a + (b - a) * r[:J]) * (1.0 - cfg.score_jitter * r[J:].reshape(T, J))
    if err2 is not None:
        scores /= 1.0 + err2 * (1.0 / cfg.score_half_error ** 2)
    if dropped is not None:
        a, b = cfg.drop_score
        scores[dropped] = a + (b - a) * rng.random(dropped[0].size)
    if image_size is not None:
        w, h = image_size
        outside = (out[..., 0] < 0) | (out[..., 0] >= w) | (out[..., 1] < 0) | (out[..., 1] >= h)
        if outside.any():
            a, b = cfg.outside_score
            scores[outside] *= a + (b - a) * rng.random(int(outside.sum()))
    if not np.isfinite(out).all():
        missing = ~(np.isfinite(out[..., 0]) & np.isfinite(out[..., 1]))
        scores[missing] = 0.0
        out[missing] = np.nan
    return out, np.clip(scores, 0.0, 1.0).astype(np.float32)


def noise_free(keypoints_2d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The identity "detector": (keypoints (T, J, 2) float64 copy, scores (T, J) float32 ones).

    Missing (NaN) joints get score 0.
    """
    kp = np.array(keypoints_2d, np.float64)
    scores = np.isfinite(kp).all(axis=-1).astype(np.float32)
    return kp, scores


def _normalised(p: tuple[float, ...]) -> np.ndarray:
    a = np.asarray(p, np.float64)
    return a / a.sum()
