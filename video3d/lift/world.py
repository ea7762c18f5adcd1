"""Camera frame -> display/world frame.

Camera frame (lifter output): OpenCV axes (x right, y down, z forward),
metres, root-relative (pelvis = 0).

World/display frame: z up, x to the camera's right, y away from the camera,
metres, the pelvis above the origin and the lowest joint of each frame on
z = 0. Because a monocular lifter predicts root-relative poses, the world
frame carries no horizontal trajectory; the vertical placement is per frame.

The camera's pitch and roll are unknown for an ordinary video, so the up
direction is estimated from the body itself: the median over the clip of the
pelvis->thorax direction (people are upright most of the time). The
correction is limited to ``max_tilt_deg`` so a clip of someone lying down is
not turned upright.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

#: Camera (x right, y down, z forward) -> world (x right, y forward, z up).
CAMERA_TO_WORLD = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def estimate_up_correction(poses_world: np.ndarray, max_tilt_deg: float = 35.0) -> np.ndarray:
    """Rotation (3, 3) that turns the clip's median body axis to +z.

    poses_world: (T, 17, 3) after the fixed camera->world axis swap; NaN frames ignored.
    """
    spine = poses_world[:, 8] - poses_world[:, 0]
    ok = np.isfinite(spine).all(axis=1) & (np.linalg.norm(spine, axis=1) > 1e-6)
    if not ok.any():
        return np.eye(3)
    axis = np.median(spine[ok] / np.linalg.norm(spine[ok], axis=1, keepdims=True), axis=0)
    axis /= np.linalg.norm(axis)
    up = np.array([0.0, 0.0, 1.0])
    angle = np.arccos(np.clip(axis @ up, -1.0, 1.0))
    if angle < 1e-6:
        return np.eye(3)
    rot_axis = np.cross(axis, up)
    rot_axis /= np.linalg.norm(rot_axis)
    angle = min(angle, np.deg2rad(max_tilt_deg))
    return Rotation.from_rotvec(rot_axis * angle).as_matrix()


def camera_to_display_world(poses_camera: np.ndarray, level: bool = True, max_tilt_deg: float = 35.0) -> np.ndarray:
    """Camera-frame root-relative poses -> display/world frame.

    poses_camera: (T, 17, 3) metres. Returns (T, 17, 3): z up, lowest joint of
    every frame on z = 0, pelvis at x = y = 0. NaN frames stay NaN.
    """
    world = poses_camera @ CAMERA_TO_WORLD.T
    if level:
        world = world @ estimate_up_correction(world, max_tilt_deg).T
    world = world - world[:, :1] * np.array([1.0, 1.0, 0.0])
    z = np.where(np.isfinite(world[..., 2]), world[..., 2], np.inf).min(axis=1, keepdims=True)
    world[..., 2] -= np.where(np.isfinite(z), z, 0.0)
    return world.astype(poses_camera.dtype)
