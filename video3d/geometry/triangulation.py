"""Multi-view triangulation: undistortion, confidence-weighted DLT, view dropping.

All functions are vectorised over any leading shape (frames, joints, ...): views
come first, ``points`` is ``(V, ..., 2)`` pixels and ``scores`` ``(V, ...)``.

:func:`triangulate` solves, per point, the homogeneous DLT system built from the
*undistorted, normalised* image coordinates of every view whose confidence is
at least ``min_score`` (rows weighted by that confidence), then, while the
largest reprojection error (pixels, through the full distorted projection) of a
point exceeds ``max_error_px`` and more than ``min_views`` views remain, drops
the view whose removal leaves the smallest worst error (leave-one-out: an
outlier drags the solution, so its own error is not always the largest). Points seen by fewer than ``min_views`` views
are NaN.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from video3d.geometry.camera import CalibratedCamera


@dataclass
class Triangulation:
    """Result of :func:`triangulate` for points of leading shape ``S``.

    points: S + (3,) world metres, NaN where fewer than ``min_views`` views remain.
    errors: (V,) + S reprojection error in pixels of every view (also of dropped
        or low-confidence views, where observed), NaN where not observed or not triangulated.
    used: (V,) + S bool, the views the final solution used.
    """

    points: np.ndarray
    errors: np.ndarray
    used: np.ndarray

    @property
    def num_views(self) -> np.ndarray:
        """S int, views used per point."""
        return self.used.sum(axis=0)


def undistort_points(points: np.ndarray, camera: CalibratedCamera, iterations: int = 20) -> np.ndarray:
    """Pixels (..., 2) -> undistorted normalised image coordinates (x/z, y/z), (..., 2).

    Inverts the radial (k1, k2) + tangential (p1, p2) model of
    :func:`~video3d.geometry.camera.project_camera_points` by fixed-point
    iteration (as OpenCV's ``undistortPoints``); exact to ~1e-12 for the mild
    distortion of ordinary lenses. NaN in, NaN out.
    """
    pts = np.asarray(points, np.float64)
    xd = (pts[..., 0] - camera.cx) / camera.fx
    yd = (pts[..., 1] - camera.cy) / camera.fy
    (k1, k2), (p1, p2) = camera.k, camera.p
    x, y = xd.copy(), yd.copy()
    if k1 == k2 == p1 == p2 == 0.0:
        return np.stack([x, y], axis=-1)
    for _ in range(iterations):
        r2 = x * x + y * y
        radial = 1.0 + k1 * r2 + k2 * r2 * r2
        dx = 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
        dy = p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
        x = (xd - dx) / radial
        y = (yd - dy) / radial
    return np.stack([x, y], axis=-1)


def dlt(normalized: np.ndarray, extrinsics: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted homogeneous DLT.

    normalized: (V, N, 2) undistorted normalised coordinates; extrinsics: (V, 3, 4)
    ``[R | t]``; weights: (V, N) >= 0 (0 = view unused). Returns (N, 3); rows
    with fewer than two positive weights are NaN.
    """
    uv = np.nan_to_num(normalized)
    w = np.where(np.isfinite(normalized).all(axis=-1), weights, 0.0)
    P = extrinsics[:, None]  # (V, 1, 3, 4)
    rows_u = uv[..., 0:1] * P[..., 2, :] - P[..., 0, :]  # (V, N, 4)
    rows_v = uv[..., 1:2] * P[..., 2, :] - P[..., 1, :]
    A = np.concatenate([rows_u * w[..., None], rows_v * w[..., None]], axis=0)  # (2V, N, 4)
    A = np.moveaxis(A, 1, 0)  # (N, 2V, 4)
    _, _, vt = np.linalg.svd(A)
    X = vt[:, -1]  # (N, 4)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = X[:, :3] / X[:, 3:4]
    out[(w > 0).sum(axis=0) < 2] = np.nan
    return out


def reprojection_errors(points3d: np.ndarray, points2d: np.ndarray,
                        cameras: Sequence[CalibratedCamera]) -> np.ndarray:
    """Pixel distance between projected ``points3d`` (N, 3) and observed ``points2d`` (V, N, 2) -> (V, N).

    Points behind a camera get an infinite error.
    """
    errs = []
    for v, cam in enumerate(cameras):
        depth = cam.world_to_camera(points3d)[..., 2]
        proj = cam.project(points3d)
        e = np.linalg.norm(proj - points2d[v], axis=-1)
        errs.append(np.where(depth > 1e-6, e, np.where(np.isfinite(depth), np.inf, np.nan)))
    return np.stack(errs)


def triangulate(points: np.ndarray, scores: np.ndarray | None, cameras: Sequence[CalibratedCamera],
                min_score: float = 0.3, max_error_px: float = 20.0, min_views: int = 2) -> Triangulation:
    """Triangulate points seen by V calibrated cameras.

    points: (V, ..., 2) pixels (NaN = not seen); scores: (V, ...) confidences in
    [0, 1] or None (all 1); cameras: V cameras. Views with score < ``min_score``
    are ignored; DLT rows are weighted by the score. While a point's worst
    reprojection error exceeds ``max_error_px`` and it has more than
    ``min_views`` views, the view whose removal helps most is dropped. Returns a
    :class:`Triangulation` with leading shape ``S = points.shape[1:-1]``.
    """
    pts = np.asarray(points, np.float64)
    V = len(cameras)
    if pts.ndim < 2 or pts.shape[0] != V or pts.shape[-1] != 2:
        raise ValueError(f"points must be (V={V}, ..., 2), got {pts.shape}")
    if min_views < 2:
        raise ValueError("min_views must be >= 2")
    shape = pts.shape[1:-1]
    flat = pts.reshape(V, -1, 2)
    sc = np.ones(flat.shape[:2]) if scores is None else np.asarray(scores, np.float64).reshape(V, -1)
    if sc.shape != flat.shape[:2]:
        raise ValueError(f"scores must be (V, ...) matching points {pts.shape}, got {np.shape(scores)}")
    sc = np.nan_to_num(sc, nan=0.0)
    norm = np.stack([undistort_points(flat[v], cam) for v, cam in enumerate(cameras)])
    ext = np.stack([np.concatenate([np.asarray(c.R, np.float64), np.asarray(c.t, np.float64).reshape(3, 1)], 1)
                    for c in cameras])
    used = (sc >= min_score) & np.isfinite(norm).all(axis=-1)
    X = dlt(norm, ext, np.where(used, sc, 0.0))
    errors = reprojection_errors(X, flat, cameras)
    for _ in range(max(V - min_views, 0)):
        worst_err = np.where(used, np.nan_to_num(errors, nan=np.inf), -np.inf).max(axis=0)
        redo = np.flatnonzero((worst_err > max_error_px) & (used.sum(axis=0) > min_views))
        if len(redo) == 0:
            break
        # Leave-one-out: drop the view whose removal leaves the smallest worst error
        # (an outlier drags the DLT solution, so it is not always the view with the largest error).
        best_err = np.full(len(redo), np.inf)
        best_view = np.zeros(len(redo), dtype=int)
        best_X = X[redo].copy()
        best_errors = errors[:, redo].copy()
        for v in range(V):
            cand = redo[used[v, redo]]
            if len(cand) == 0:
                continue
            trial = used[:, cand].copy()
            trial[v] = False
            Xc = dlt(norm[:, cand], ext, np.where(trial, sc[:, cand], 0.0))
            ec = reprojection_errors(Xc, flat[:, cand], cameras)
            worst = np.where(trial, np.nan_to_num(ec, nan=np.inf), -np.inf).max(axis=0)
            pos = np.searchsorted(redo, cand)
            better = worst < best_err[pos]
            pos = pos[better]
            best_err[pos], best_view[pos] = worst[better], v
            best_X[pos], best_errors[:, pos] = Xc[better], ec[:, better]
        used[best_view, redo] = False
        X[redo], errors[:, redo] = best_X, best_errors
    bad = used.sum(axis=0) < min_views
    X[bad] = np.nan
    used[:, bad] = False
    errors[:, bad] = np.nan
    return Triangulation(points=X.reshape(shape + (3,)), errors=errors.reshape((V,) + shape),
                         used=used.reshape((V,) + shape))
