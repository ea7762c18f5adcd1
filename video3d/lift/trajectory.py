"""Global trajectory: where the pelvis is in the camera frame, from a root-relative pose and its 2D.

A lifter predicts root-relative 3D (pelvis = 0) in metres; its size is a real
body size, so the pelvis position ``t`` follows from perspective: find ``t``
such that the projection of ``pose + t`` matches the 2D keypoints. With pinhole
intrinsics (f, cx, cy) each joint j gives two equations linear in t
(``f (X_j + t_x) = (u_j - cx)(Z_j + t_z)`` and the same for y), solved per frame
by weighted least squares (weights = 2D scores, divided by the joint's depth so
the residual approximates a reprojection error in pixels; two passes). The
result is then smoothed in time (median then Gaussian, over valid frames) since
depth is the noisiest coordinate.

Focal length: ``focal_from_fov``; ``--fov`` is the field of view across the
image's LONG side (horizontal for landscape video), default
:data:`DEFAULT_FOV_DEG` = 60 degrees, the middle of phone main cameras and
webcams (the training cameras span 40-90 degrees, docs/training_data.md).

All functions are pure numpy. Camera frame: x right, y down, z forward, metres.
"""
from __future__ import annotations

import math

import numpy as np

DEFAULT_FOV_DEG = 60.0


def focal_from_fov(image_size: tuple[int, int], fov_deg: float = DEFAULT_FOV_DEG) -> float:
    """Focal length in pixels for a field of view ``fov_deg`` across the long side of (width, height)."""
    if not 1.0 <= fov_deg <= 170.0:
        raise ValueError(f"fov must be within [1, 170] degrees, got {fov_deg}")
    return 0.5 * max(image_size) / math.tan(math.radians(fov_deg) / 2.0)


def solve_root_translation(pose_rel: np.ndarray, keypoints_2d: np.ndarray, focal: float,
                           center: tuple[float, float], weights: np.ndarray | None = None,
                           iterations: int = 2, min_depth: float = 0.3) -> np.ndarray:
    """Per-frame pelvis position t with project(pose_rel + t) ~ keypoints_2d.

    Args:
        pose_rel: (T, J, 3) root-relative poses, camera frame, metres.
        keypoints_2d: (T, J, 2) pixels; NaN rows are ignored.
        focal: focal length in pixels (fx = fy).
        center: principal point (cx, cy) in pixels.
        weights: (T, J) per-joint confidence (default 1).
        iterations: re-weighting passes by 1 / joint depth.
        min_depth: smallest pelvis depth returned, metres.

    Returns:
        (T, 3) float64 translations in metres; NaN for frames with fewer than 2
        usable joints or a non-finite pose.
    """
    X = np.asarray(pose_rel, np.float64)
    uv = np.asarray(keypoints_2d, np.float64)
    if X.ndim != 3 or X.shape[-1] != 3 or uv.shape != X.shape[:2] + (2,):
        raise ValueError(f"pose_rel (T, J, 3) and keypoints_2d (T, J, 2) must match, got {X.shape}, {uv.shape}")
    w = np.ones(X.shape[:2]) if weights is None else np.clip(np.asarray(weights, np.float64), 0.0, None)
    ok = np.isfinite(uv).all(-1) & np.isfinite(X).all(-1) & (w > 0)
    w = np.where(ok, w, 0.0)
    X = np.where(ok[..., None], X, 0.0)
    a = np.where(ok[..., None], uv - np.asarray(center, np.float64), 0.0)  # (T, J, 2) centred pixels
    f = float(focal)
    T = len(X)
    # Rows: [f, 0, -a_x] t = a_x Z - f X ; [0, f, -a_y] t = a_y Z - f Y.
    zeros = np.zeros_like(a[..., 0])
    fcol = np.full_like(zeros, f)
    A = np.stack([np.stack([fcol, zeros, -a[..., 0]], -1), np.stack([zeros, fcol, -a[..., 1]], -1)], 2)  # (T,J,2,3)
    b = np.stack([a[..., 0] * X[..., 2] - f * X[..., 0], a[..., 1] * X[..., 2] - f * X[..., 1]], 2)  # (T,J,2)
    t = np.full((T, 3), np.nan)
    depth = np.ones(X.shape[:2])
    for _ in range(max(1, iterations)):
        wr = np.repeat((w / depth)[..., None], 2, axis=-1).reshape(T, -1)  # (T, 2J): residual/depth ~ px
        Ar, br = A.reshape(T, -1, 3), b.reshape(T, -1)
        M = np.einsum("tni,tn,tnj->tij", Ar, wr, Ar)
        v = np.einsum("tni,tn,tn->ti", Ar, wr, br)
        solvable = (ok.sum(1) >= 2) & (np.abs(np.linalg.det(M)) > 1e-9 * f ** 4)
        t = np.full((T, 3), np.nan)
        if solvable.any():
            t[solvable] = np.linalg.solve(M[solvable], v[solvable][..., None])[..., 0]
        t[:, 2] = np.where(np.isfinite(t[:, 2]), np.maximum(t[:, 2], min_depth), np.nan)
        depth = np.maximum(X[..., 2] + np.nan_to_num(t[:, 2:3], nan=1.0), min_depth)
    return t


def smooth_trajectory(t: np.ndarray, fps: float, window_s: float = 0.4) -> np.ndarray:
    """Temporal smoothing of a (T, 3) trajectory: running median, then Gaussian (sigma = window/4).

    Only finite frames are used (in order, gaps closed up); NaN frames stay NaN.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    x = np.asarray(t, np.float64)
    ok = np.isfinite(x).all(axis=1)
    out = np.full_like(x, np.nan)
    if not ok.any():
        return out
    half = max(1, int(round(0.5 * window_s * fps)))
    vals = x[ok]
    padded = np.pad(vals, ((half, half), (0, 0)), mode="edge")
    med = np.median(sliding_window_view(padded, 2 * half + 1, axis=0), axis=-1)  # (N, 3)
    sigma = max(half / 2.0, 0.5)
    k = np.arange(-2 * half, 2 * half + 1)
    g = np.exp(-0.5 * (k / sigma) ** 2)
    g /= g.sum()
    padded = np.pad(med, ((2 * half, 2 * half), (0, 0)), mode="edge")
    out[ok] = sliding_window_view(padded, len(g), axis=0) @ g
    return out


def root_trajectory(pose_rel: np.ndarray, keypoints_2d: np.ndarray, image_size: tuple[int, int], fps: float,
                    fov_deg: float = DEFAULT_FOV_DEG, scores: np.ndarray | None = None,
                    valid: np.ndarray | None = None, focal: float | None = None,
                    center: tuple[float, float] | None = None, smooth_s: float = 0.4) -> np.ndarray:
    """Smoothed pelvis positions (T, 3), metres, camera frame; NaN where ``valid`` is False.

    pose_rel (T, J, 3) root-relative metres; keypoints_2d (T, J, 2) pixels;
    image_size (width, height). ``focal``/``center`` override the FOV-based
    intrinsics (e.g. from a calibration).
    """
    f = focal if focal is not None else focal_from_fov(image_size, fov_deg)
    c = center if center is not None else (0.5 * image_size[0], 0.5 * image_size[1])
    t = solve_root_translation(pose_rel, keypoints_2d, f, c, scores)
    if valid is not None:
        t[~np.asarray(valid, bool)] = np.nan
    return smooth_trajectory(t, fps, smooth_s) if smooth_s > 0 else t
