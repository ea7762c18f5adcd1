"""Camera frame -> world (display) frame."""
import numpy as np
from scipy.spatial.transform import Rotation

from video3d.lift.world import CAMERA_TO_WORLD, camera_to_display_world


def standing_pose_camera() -> np.ndarray:
    """A standing person in the camera frame (y down): head has smaller y than feet."""
    p = np.zeros((17, 3))
    p[[1, 4], 0] = [-0.13, 0.13]
    p[[2, 5], 1] = 0.44
    p[[3, 6], 1] = 0.89
    p[[2, 5], 0] = p[[3, 6], 0] = [-0.13, 0.13]
    p[7, 1], p[8, 1], p[9, 1], p[10, 1] = -0.24, -0.49, -0.6, -0.72
    p[[11, 14], 0], p[[11, 14], 1] = [0.16, -0.16], -0.49
    p[[12, 15], 0], p[[12, 15], 1] = [0.16, -0.16], -0.2
    p[[13, 16], 0], p[[13, 16], 1] = [0.16, -0.16], 0.05
    return p


def test_upright_camera_gives_z_up_and_floor():
    pose = np.repeat(standing_pose_camera()[None], 5, 0)
    w = camera_to_display_world(pose)
    assert np.allclose(w[:, :, 2].min(axis=1), 0.0)  # lowest joint on the floor
    assert (w[:, 10, 2] > w[:, 0, 2]).all() and (w[:, 0, 2] > w[:, 3, 2]).all()  # head above pelvis above feet
    np.testing.assert_allclose(w[:, 0, :2], 0.0, atol=1e-9)  # pelvis above the origin


def test_tilted_camera_is_levelled():
    pose = standing_pose_camera()
    tilt = Rotation.from_euler("x", 20, degrees=True).as_matrix()  # camera pitched by 20 degrees
    w = camera_to_display_world(np.repeat((pose @ tilt.T)[None], 3, 0))
    spine = w[0, 8] - w[0, 0]
    assert np.degrees(np.arccos(spine[2] / np.linalg.norm(spine))) < 1.0


def test_nan_frames_stay_nan():
    pose = np.repeat(standing_pose_camera()[None], 4, 0)
    pose[2] = np.nan
    w = camera_to_display_world(pose)
    assert np.isnan(w[2]).all() and np.isfinite(w[[0, 1, 3]]).all()


def test_axis_swap_is_a_rotation():
    assert np.isclose(np.linalg.det(CAMERA_TO_WORLD), 1.0)
