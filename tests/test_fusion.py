"""video3d.lift.fusion: detector-3D fusion keeps the lifter's frame and averages the shapes."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tests.motions import standing_pose
from video3d.keypoints import coco_to_h36m
from video3d.lift.fusion import fuse_with_detector_3d


def _pose() -> np.ndarray:
    h36m = coco_to_h36m(standing_pose()[None])[0][0]
    return h36m - h36m[:1]


def test_identical_shapes_in_another_frame_give_the_lifted_pose():
    lifted = np.repeat(_pose()[None], 4, 0)
    rot = Rotation.from_euler("xyz", [20, -70, 5], degrees=True).as_matrix()
    det = 1.3 * lifted @ rot.T + np.array([0.4, -1.0, 2.0])  # other frame, scale and origin
    np.testing.assert_allclose(fuse_with_detector_3d(lifted, det), lifted, atol=1e-9)


def test_fusion_is_the_weighted_average_of_the_shapes_and_stays_root_relative():
    rng = np.random.default_rng(0)
    truth = _pose()
    a = truth + rng.normal(0, 0.03, truth.shape)
    b = truth + rng.normal(0, 0.03, truth.shape)
    a, b = a - a[:1], b - b[:1]
    fused = fuse_with_detector_3d(a[None], b[None], lifter_weight=0.5)[0]
    assert np.allclose(fused[0], 0.0)
    err = lambda p: np.linalg.norm(p - truth, axis=-1).mean()  # noqa: E731
    assert err(fused) < min(err(a), err(b))  # independent errors average out
    np.testing.assert_allclose(fuse_with_detector_3d(a[None], b[None], lifter_weight=1.0)[0], a, atol=1e-12)


def test_missing_detector_frames_keep_the_lifted_pose():
    lifted = np.repeat(_pose()[None], 3, 0)
    det = lifted + 0.05
    det[1] = np.nan
    lifted_b = lifted.copy()
    lifted_b[2, 5] += 0.1
    out = fuse_with_detector_3d(lifted_b, det)
    np.testing.assert_array_equal(out[1], lifted_b[1])
    assert np.isfinite(out).all()


def test_bad_shapes_and_weights_are_rejected():
    with pytest.raises(ValueError):
        fuse_with_detector_3d(np.zeros((2, 17, 3)), np.zeros((3, 17, 3)))
    with pytest.raises(ValueError):
        fuse_with_detector_3d(np.zeros((2, 17, 3)), np.zeros((2, 17, 3)), lifter_weight=1.5)


def test_run_path_fuses_the_detector_3d_before_the_bone_step(tiny_weights):
    """lift_sequence: with --fuse (default) the detector's 3D is averaged in; --no-fuse leaves the lifter alone."""
    from video3d.lift.bones import consistent_bones
    from video3d.lift.lifter import Lifter
    from video3d.pipeline import RunOptions, lift_sequence
    from video3d.pose import PoseSequence

    rng = np.random.default_rng(1)
    T = 12
    kp = np.repeat((_pose()[None, :, :2] * 300 + 320), T, 0) + rng.normal(0, 2, (T, 17, 2))
    det3d = np.repeat(_pose()[None], T, 0) + rng.normal(0, 0.02, (T, 17, 3))

    def seq(detector_3d):
        return PoseSequence(keypoints_2d=kp.astype(np.float32), scores_2d=np.ones((T, 17), np.float32),
                            valid=np.ones(T, bool), fps=25.0, image_size=(640, 480), detector_3d=detector_3d)

    lifter = Lifter.load(None, tiny_weights["ampose"], "cpu")
    raw = lifter.lift(kp.astype(np.float32), (640, 480), valid=np.ones(T, bool), flip=True)
    fused = lift_sequence(seq(det3d), lifter, RunOptions(bones="raw")).keypoints_3d_camera
    np.testing.assert_allclose(fused, fuse_with_detector_3d(raw, det3d), atol=1e-5)
    plain = lift_sequence(seq(det3d), lifter, RunOptions(bones="raw", fuse_detector_3d=False)).keypoints_3d_camera
    np.testing.assert_allclose(plain, raw, atol=1e-5)
    no_det = lift_sequence(seq(None), lifter, RunOptions(bones="raw")).keypoints_3d_camera
    np.testing.assert_allclose(no_det, raw, atol=1e-5)
    both = lift_sequence(seq(det3d), lifter, RunOptions()).keypoints_3d_camera  # default: fuse, then bones
    np.testing.assert_allclose(both, consistent_bones(fuse_with_detector_3d(raw, det3d), np.ones(T, bool)), atol=1e-5)
