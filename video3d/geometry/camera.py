"""Camera geometry: pinhole and calibrated (distorted) cameras, transforms, projection, look-at.

Conventions (docs/CONVENTIONS.md):

* World frame: metres, z up, floor near z = 0.
* Camera frame (OpenCV): x right, y down, z forward. ``R`` maps world to
  camera, ``X_cam = R @ X_world + t``; the camera centre is ``-R.T @ t``.
* Pixels: x right, y down, origin at the top-left corner of the top-left
  pixel; ``u = fx * x / z + cx``, ``v = fy * y / z + cy``.

Random virtual cameras for training live in :mod:`video3d.data.virtual_camera`;
calibration from correspondences in :mod:`video3d.geometry.calibrate`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

#: Depth (metres) below which a point counts as behind the camera in :func:`project`.
_MIN_PROJECT_DEPTH = 1e-6


@dataclass
class Camera:
    """A pinhole camera without distortion.

    R: (3, 3) world -> camera rotation; t: (3,) translation in metres;
    fx, fy, cx, cy: intrinsics in pixels; width, height: image size in pixels.
    """

    R: np.ndarray
    t: np.ndarray
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @property
    def K(self) -> np.ndarray:
        """Intrinsic matrix, (3, 3) float64."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def center(self) -> np.ndarray:
        """Camera centre in the world frame, (3,) metres."""
        return -np.asarray(self.R, np.float64).T @ np.asarray(self.t, np.float64)


def world_to_camera(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """World -> camera frame: ``R @ p + t``.

    points: (..., 3) metres; R: (3, 3); t: (3,). Returns (..., 3) float64.
    """
    p = np.asarray(points, np.float64)
    return p @ np.asarray(R, np.float64).T + np.asarray(t, np.float64)


def camera_to_world(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Camera -> world frame, the inverse of :func:`world_to_camera`.

    points: (..., 3) metres; R: (3, 3) world -> camera; t: (3,). Returns (..., 3) float64.
    """
    p = np.asarray(points, np.float64)
    return (p - np.asarray(t, np.float64)) @ np.asarray(R, np.float64)


def project(points_cam: np.ndarray, camera: Camera) -> np.ndarray:
    """Pinhole projection of camera-frame points to pixels.

    points_cam: (..., 3) metres, camera frame. Returns (..., 2) float64 pixels;
    points with depth z <= 1e-6 (on or behind the camera plane) give NaN.
    """
    p = np.asarray(points_cam, np.float64)
    z = p[..., 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_z = np.where(z > _MIN_PROJECT_DEPTH, 1.0 / z, np.nan)
    out = np.empty(p.shape[:-1] + (2,), np.float64)
    out[..., 0] = camera.fx * p[..., 0] * inv_z + camera.cx
    out[..., 1] = camera.fy * p[..., 1] * inv_z + camera.cy
    return out


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = (0.0, 0.0, 1.0),
            roll: float = 0.0) -> np.ndarray:
    """World -> camera rotation of a camera at ``eye`` looking at ``target``.

    eye, target, up: (3,) world. The optical axis (camera z) points from eye to
    target, image y points along -up (so "up" is up in the image) and x to the
    right. ``roll`` (radians) then turns the camera about its optical axis: a
    positive roll rotates the image content clockwise as displayed (from +x
    towards +y). If the view direction is parallel to ``up``, world y (or x) is
    used as the up hint instead. Returns R (3, 3), rows = camera x, y, z axes.
    """
    ex, ey, ez = (float(v) for v in eye)
    tx, ty, tz = (float(v) for v in target)
    fx_, fy_, fz_ = tx - ex, ty - ey, tz - ez
    n = math.sqrt(fx_ * fx_ + fy_ * fy_ + fz_ * fz_)
    if not n > 0.0:
        raise ValueError("look_at: eye and target coincide")
    fx_, fy_, fz_ = fx_ / n, fy_ / n, fz_ / n
    hints = [tuple(float(v) for v in up), (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)]
    for ux, uy, uz in hints:
        # right = forward x up
        rx, ry, rz = fy_ * uz - fz_ * uy, fz_ * ux - fx_ * uz, fx_ * uy - fy_ * ux
        rn = math.sqrt(rx * rx + ry * ry + rz * rz)
        if rn > 1e-9 * max(1.0, math.sqrt(ux * ux + uy * uy + uz * uz)):
            break
    rx, ry, rz = rx / rn, ry / rn, rz / rn
    # down = forward x right
    dx, dy, dz = fy_ * rz - fz_ * ry, fz_ * rx - fx_ * rz, fx_ * ry - fy_ * rx
    if roll:
        c, s = math.cos(roll), math.sin(roll)
        rx, ry, rz, dx, dy, dz = (c * rx - s * dx, c * ry - s * dy, c * rz - s * dz,
                                  s * rx + c * dx, s * ry + c * dy, s * rz + c * dz)
    return np.array([[rx, ry, rz], [dx, dy, dz], [fx_, fy_, fz_]])


@dataclass
class CalibratedCamera(Camera):
    """A calibrated camera: the pinhole :class:`Camera` plus lens distortion.

    R: (3, 3) world -> camera rotation; t: (3,) metres, so X_cam = R @ X_world + t
    (OpenCV frame: x right, y down, z forward). fx, fy, cx, cy: pixels.
    k: radial (k1, k2); p: tangential (p1, p2), OpenCV convention.
    reprojection_error: mean pixel error of the fit when recovered from data.
    """

    k: tuple[float, float] = (0.0, 0.0)
    p: tuple[float, float] = (0.0, 0.0)
    reprojection_error: float | None = None

    @property
    def image_size(self) -> tuple[int, int]:
        return (int(self.width), int(self.height))

    def world_to_camera(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) world metres -> (..., 3) camera metres."""
        return np.asarray(points) @ self.R.T + self.t

    def project(self, points_world: np.ndarray) -> np.ndarray:
        """(..., 3) world metres -> (..., 2) pixels (with distortion)."""
        return project_camera_points(self.world_to_camera(points_world), self.fx, self.fy,
                                     self.cx, self.cy, self.k, self.p)

    def to_dict(self) -> dict:
        """JSON-ready dict in the :func:`load_cameras_json` schema."""
        d = {"R": np.asarray(self.R).tolist(), "t": np.asarray(self.t).tolist(),
             "fx": float(self.fx), "fy": float(self.fy), "cx": float(self.cx), "cy": float(self.cy),
             "width": int(self.width), "height": int(self.height),
             "k": [float(v) for v in self.k], "p": [float(v) for v in self.p]}
        if self.reprojection_error is not None:
            d["reprojection_error"] = float(self.reprojection_error)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> "CalibratedCamera":
        try:
            R = np.asarray(d["R"], np.float64)
            t = np.asarray(d["t"], np.float64).reshape(3)
            cam = cls(R=R, t=t, fx=float(d["fx"]), fy=float(d["fy"]), cx=float(d["cx"]),
                      cy=float(d["cy"]), width=int(d["width"]), height=int(d["height"]),
                      k=tuple(float(v) for v in d.get("k", (0.0, 0.0))),
                      p=tuple(float(v) for v in d.get("p", (0.0, 0.0))),
                      reprojection_error=d.get("reprojection_error"))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"bad camera record ({e}); needs R, t, fx, fy, cx, cy, width, height") from e
        if R.shape != (3, 3) or abs(np.linalg.det(R) - 1.0) > 1e-3 or \
                not np.allclose(R @ R.T, np.eye(3), atol=1e-3):
            raise ValueError("camera R must be a 3x3 rotation matrix (world -> camera)")
        if len(cam.k) != 2 or len(cam.p) != 2:
            raise ValueError("camera k and p must have two values each")
        return cam


def project_camera_points(points_cam: np.ndarray, fx: float, fy: float, cx: float, cy: float,
                          k: Sequence[float] = (0.0, 0.0), p: Sequence[float] = (0.0, 0.0)
                          ) -> np.ndarray:
    """Pinhole projection with radial (k1, k2) and tangential (p1, p2) distortion.

    points_cam: (..., 3) camera frame, z > 0. Returns (..., 2) pixels.
    """
    pc = np.asarray(points_cam, np.float64)
    x = pc[..., 0] / pc[..., 2]
    y = pc[..., 1] / pc[..., 2]
    r2 = x * x + y * y
    radial = 1.0 + k[0] * r2 + k[1] * r2 * r2
    xd = x * radial + 2.0 * p[0] * x * y + p[1] * (r2 + 2.0 * x * x)
    yd = y * radial + p[0] * (r2 + 2.0 * y * y) + 2.0 * p[1] * x * y
    return np.stack([fx * xd + cx, fy * yd + cy], axis=-1)
