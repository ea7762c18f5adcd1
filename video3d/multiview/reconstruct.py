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
    dlt: (T, 17, 3) the raw triangulation; views_used: (V, T, 17) bool (DLT); method: name."""

    points: np.ndarray
    valid: np.ndarray
    reprojection_error: np.ndarray
    dlt: np.ndarray
    views_used: np.ndarray
    method: str


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
                          method=method)
