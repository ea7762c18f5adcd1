"""Camera calibration from 3D-2D correspondences: DLT and non-linear refinement."""
from __future__ import annotations

import numpy as np
from scipy.linalg import rq
from scipy.optimize import least_squares
from scipy.spatial.transform import Rotation

from video3d.geometry.camera import CalibratedCamera, project_camera_points

#: Distortion models for :func:`calibrate_camera`.
DISTORTION_MODELS = ("none", "radial", "radial_tangential")


def _normalizer(points: np.ndarray) -> np.ndarray:
    """Similarity (D+1, D+1) moving points (N, D) to zero mean, mean norm sqrt(D)."""
    d = points.shape[1]
    mean = points.mean(0)
    scale = np.sqrt(d) / max(np.mean(np.linalg.norm(points - mean, axis=1)), 1e-12)
    T = np.eye(d + 1)
    T[:d, :d] *= scale
    T[:d, d] = -scale * mean
    return T


def dlt_projection_matrix(points_3d: np.ndarray, points_2d: np.ndarray) -> np.ndarray:
    """Direct linear transform with Hartley normalisation.

    points_3d: (N, 3), points_2d: (N, 2), N >= 6 in general position.
    Returns P (3, 4) with x ~ P @ [X, 1], scaled so ``det(P[:, :3]) > 0``.
    """
    X = np.asarray(points_3d, np.float64)
    x = np.asarray(points_2d, np.float64)
    if X.shape[0] < 6 or X.shape[0] != x.shape[0]:
        raise ValueError(f"DLT needs >= 6 matching points, got {X.shape[0]} and {x.shape[0]}")
    T3, T2 = _normalizer(X), _normalizer(x)
    Xh = np.c_[X, np.ones(len(X))] @ T3.T
    xh = np.c_[x, np.ones(len(x))] @ T2.T
    n = len(X)
    A = np.zeros((2 * n, 12))
    A[0::2, 0:4] = Xh
    A[0::2, 8:12] = -xh[:, :1] * Xh
    A[1::2, 4:8] = Xh
    A[1::2, 8:12] = -xh[:, 1:2] * Xh
    _, _, vt = np.linalg.svd(A, full_matrices=False)
    P = np.linalg.inv(T2) @ vt[-1].reshape(3, 4) @ T3
    if np.linalg.det(P[:, :3]) < 0:
        P = -P
    return P / np.linalg.norm(P[2, :3])


def decompose_projection(P: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P (3, 4) -> (K (3, 3) upper triangular, K[2,2] = 1; R (3, 3) rotation; t (3,))."""
    M = P[:, :3]
    if np.linalg.det(M) < 0:
        P = -P
        M = P[:, :3]
    K, R = rq(M)
    D = np.diag(np.sign(np.diag(K)))
    K, R = K @ D, D @ R
    s = K[2, 2]
    t = np.linalg.solve(K, P[:, 3])
    return K / s, R, t


def _unpack(params: np.ndarray, model: str) -> tuple:
    rvec, t, (fx, fy, cx, cy) = params[:3], params[3:6], params[6:10]
    k = tuple(params[10:12]) if model != "none" else (0.0, 0.0)
    p = tuple(params[12:14]) if model == "radial_tangential" else (0.0, 0.0)
    return Rotation.from_rotvec(rvec).as_matrix(), t, fx, fy, cx, cy, k, p


def calibrate_camera(points_3d: np.ndarray, points_2d: np.ndarray, image_size: tuple[int, int],
                     distortion: str = "radial", max_points: int = 5000, robust: bool = False
                     ) -> CalibratedCamera:
    """Recover a camera from 3D-2D correspondences.

    points_3d: (N, 3) world metres; points_2d: (N, 2) pixels. A DLT on at most
    ``max_points`` evenly spaced correspondences gives the initial R, t, fx,
    fy, cx, cy (skew dropped); ``scipy.optimize.least_squares`` then refines
    the pinhole model plus distortion (``"none"``, ``"radial"`` k1,k2 or
    ``"radial_tangential"`` k1,k2,p1,p2) on the same points: Levenberg-Marquardt,
    or with ``robust`` a soft-L1 loss (2 px scale) that resists detector
    outliers (slower). ``reprojection_error`` is the mean pixel error over all
    N points. Non-finite correspondences are ignored.
    """
    if distortion not in DISTORTION_MODELS:
        raise ValueError(f"distortion must be one of {DISTORTION_MODELS}, got {distortion!r}")
    X = np.asarray(points_3d, np.float64).reshape(-1, 3)
    x = np.asarray(points_2d, np.float64).reshape(-1, 2)
    ok = np.isfinite(X).all(1) & np.isfinite(x).all(1)
    X, x = X[ok], x[ok]
    if len(X) < 6:
        raise ValueError(f"need >= 6 valid correspondences to calibrate, got {len(X)}")
    step = max(1, int(np.ceil(len(X) / max_points)))
    Xs, xs = X[::step], x[::step]
    K, R, t = decompose_projection(dlt_projection_matrix(Xs, xs))
    n_dist = {"none": 0, "radial": 2, "radial_tangential": 4}[distortion]
    x0 = np.r_[Rotation.from_matrix(R).as_rotvec(), t, K[0, 0], K[1, 1], K[0, 2], K[1, 2],
               np.zeros(n_dist)]

    def residuals(params: np.ndarray) -> np.ndarray:
        R_, t_, fx, fy, cx, cy, k, p = _unpack(params, distortion)
        return (project_camera_points(Xs @ R_.T + t_, fx, fy, cx, cy, k, p) - xs).ravel()

    if robust:
        sol = least_squares(residuals, x0, loss="soft_l1", f_scale=2.0, x_scale="jac", method="trf")
    else:
        sol = least_squares(residuals, x0, method="lm", x_scale="jac")
    R, t, fx, fy, cx, cy, k, p = _unpack(sol.x, distortion)
    cam = CalibratedCamera(R=R, t=np.asarray(t), fx=float(fx), fy=float(fy), cx=float(cx), cy=float(cy),
                 width=int(image_size[0]), height=int(image_size[1]),
                 k=(float(k[0]), float(k[1])), p=(float(p[0]), float(p[1])))
    cam.reprojection_error = float(np.mean(np.linalg.norm(cam.project(X) - x, axis=1)))
    return cam
