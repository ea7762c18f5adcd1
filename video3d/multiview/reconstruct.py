"""Multi-view 3D of one person: triangulation baseline, optional learned refinement, post-filtering.

:func:`reconstruct` = confidence-weighted DLT with view dropping
(:func:`video3d.geometry.triangulation.triangulate`, Pose2Sim-like thresholds)
-> optionally the learned refinement (:func:`video3d.multiview.learned.refine`)
-> Hampel outlier filter -> short-gap interpolation -> zero-phase 4th-order
6 Hz Butterworth (Pose2Sim's post-processing).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from video3d.filters import butterworth, fill_gaps_linear
from video3d.geometry.camera import CalibratedCamera
from video3d.geometry.triangulation import reprojection_errors, triangulate

#: Minimum finite joints for a frame to count as valid (pelvis required too).
MIN_VALID_JOINTS = 12


@dataclass
class Reconstruction:
    """points: (T, 17, 3) world metres; valid: (T,); reprojection_error: (V, T, 17) px of the final points;
    dlt: (T, 17, 3) the raw triangulation; views_used: (V, T, 17) bool (DLT); method: name;
    ignored: (V, T) bool, view-frames left out by :func:`gate_frames`."""

    points: np.ndarray
    valid: np.ndarray
    reprojection_error: np.ndarray
    dlt: np.ndarray
    views_used: np.ndarray
    method: str
    ignored: np.ndarray | None = None  # (V, T) view-frames ignored as following someone else


def hampel(x: np.ndarray, window: int = 7, n_sigmas: float = 3.0, min_dev: float = 0.01) -> np.ndarray:
    """Hampel outlier filter along time: values farther than ``n_sigmas`` robust deviations (and
    ``min_dev``) from the running median of ``2 * (window // 2) + 1`` samples are replaced by that median.

    x: (T, ...) with NaN = missing. Returns a float64 copy.
    """
    x = np.array(x, np.float64)
    T = len(x)
    h = window // 2
    if T < 3:
        return x
    pad = np.concatenate([np.full((h,) + x.shape[1:], np.nan), x, np.full((h,) + x.shape[1:], np.nan)])
    win = np.stack([pad[i:i + T] for i in range(2 * h + 1)])  # (W, T, ...)
    with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(win, axis=0)
        mad = 1.4826 * np.nanmedian(np.abs(win - med), axis=0)
        out = np.abs(x - med) > np.maximum(n_sigmas * mad, min_dev)
    x[out] = med[out]
    return x


def postprocess(points: np.ndarray, fps: float, smooth: bool = True) -> np.ndarray:
    """Hampel per coordinate, fill gaps up to 0.25 s, then zero-phase Butterworth (T, 17, 3)."""
    if not smooth or len(points) < 16:
        return np.array(points, np.float64)
    x = hampel(points)
    x = fill_gaps_linear(x, max(1, int(round(0.25 * fps))))
    return butterworth(x, fps)


#: A view's frame whose median joint reprojection error exceeds this fraction of the person's size
#: (bbox diagonal in that view) follows someone else there (tracker switch) and is ignored.
MAX_FRAME_ERROR = 0.08


def gate_frames(points: np.ndarray, scores: np.ndarray, errors: np.ndarray, used: np.ndarray,
                max_error: float = MAX_FRAME_ERROR) -> np.ndarray:
    """Per (view, frame): True where the view's 2D disagrees with the triangulation as a whole.

    points: (V, T, J, 2) px; scores: (V, T, J); errors: (V, T, J) px reprojection errors of a first
    triangulation; used: (V, T, J) views it used. Only gated where at least two other views saw the
    frame. Returns (V, T) bool.
    """
    import warnings

    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        size = np.linalg.norm(np.nanmax(points, axis=2) - np.nanmin(points, axis=2), axis=-1)  # (V, T)
        size = np.nanmedian(np.where(size > 0, size, np.nan), axis=1)[:, None]  # (V, 1)
        rel = np.nanmedian(errors, axis=2) / size
    seen = (scores > 0).any(axis=2)  # (V, T)
    bad = np.nan_to_num(rel, nan=0.0) > max_error
    others = seen.sum(axis=0, keepdims=True) - seen
    return bad & (others >= 2)


def reconstruct(points: np.ndarray, scores: np.ndarray, cameras: Sequence[CalibratedCamera], fps: float,
                method: str = "dlt", model=None, min_score: float = 0.3, max_error_px: float = 20.0,
                smooth: bool = True) -> Reconstruction:
    """3D of one person seen by V calibrated views.

    points: (V, T, 17, 2) pixels (NaN = unseen); scores: (V, T, 17). method: ``dlt`` or the
    learned model's name (then ``model`` is the loaded :class:`MultiViewRelational`).
    """
    pts = np.asarray(points, np.float64)
    sc = np.nan_to_num(np.asarray(scores, np.float64))
    tri = triangulate(pts, sc, cameras, min_score=min_score, max_error_px=max_error_px)
    gated = gate_frames(pts, sc, tri.errors, tri.used)
    if gated.any():
        sc = np.where(gated[..., None], 0.0, sc)
        tri = triangulate(pts, sc, cameras, min_score=min_score, max_error_px=max_error_px)
    X = tri.points
    if method != "dlt":
        from video3d.multiview.learned import refine

        X = refine(model, pts, sc, cameras, tri.points)
        # Frames where fewer than two views saw the person at all stay empty.
        seen = (np.isfinite(pts).all(-1) & (sc > 0)).any(axis=-1).sum(axis=0)  # (T,)
        X[seen < 2] = np.nan
    X = postprocess(X, fps, smooth)
    finite = np.isfinite(X).all(-1)
    valid = finite[:, 0] & (finite.sum(-1) >= MIN_VALID_JOINTS)
    T = pts.shape[1]
    err = reprojection_errors(X.reshape(-1, 3), pts.reshape(len(cameras), -1, 2), cameras).reshape(len(cameras), T, 17)
    return Reconstruction(points=X, valid=valid, reprojection_error=err, dlt=tri.points, views_used=tri.used,
                          method=method, ignored=gated)
