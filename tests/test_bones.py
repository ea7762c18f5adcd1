"""Per-clip bone-length consistency."""
from __future__ import annotations

import numpy as np
import pytest

from video3d import skeleton
from video3d.lift.bones import (SYMMETRIC_BONES, bone_lengths, bone_vectors, clip_bone_lengths,
                                consistent_bones, enforce_bone_lengths)


def noisy_clip(T: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A moving skeleton with H36M bone lengths, each frame's bones scaled by 0.8-1.2 at random.

    Returns (poses (T, 17, 3), true lengths (16,))."""
    rng = np.random.default_rng(seed)
    lengths = np.array([skeleton.MEAN_BONE_LENGTH_M[c] for _, c in skeleton.BONES])
    dirs = rng.normal(size=(T, 16, 3)) + np.linspace(0, 3, T)[:, None, None]
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    scale = rng.uniform(0.8, 1.2, (T, 16))
    poses = np.zeros((T, 17, 3))
    poses[:, 0] = rng.normal(size=(T, 3))
    for b, (p, c) in enumerate(skeleton.BONES):
        poses[:, c] = poses[:, p] + dirs[:, b] * (lengths[b] * scale[:, b])[:, None]
    return poses, lengths


def test_symmetric_pairs_are_left_right_bones():
    assert len(SYMMETRIC_BONES) == 6
    for left, right in SYMMETRIC_BONES:
        assert skeleton.BONES[left][1] in skeleton.LEFT_JOINTS and skeleton.BONES[right][1] in skeleton.RIGHT_JOINTS


def test_consistent_bones_constant_lengths_same_directions():
    poses, true = noisy_clip()
    poses[7] = np.nan  # a missing frame stays missing
    before = bone_lengths(poses)
    assert np.nanstd(before, axis=0).mean() > 0.02  # ~ 10 % of a bone
    out = consistent_bones(poses)
    assert np.isnan(out[7]).all() and np.isfinite(np.delete(out, 7, 0)).all()
    after = bone_lengths(np.delete(out, 7, 0))
    assert np.std(after, axis=0).max() < 1e-9
    np.testing.assert_allclose(after[0], true, rtol=0.05)  # the median recovers the true lengths
    for left, right in SYMMETRIC_BONES:
        assert after[0, left] == pytest.approx(after[0, right])
    v0, v1 = bone_vectors(np.delete(poses, 7, 0)), bone_vectors(np.delete(out, 7, 0))
    cos = (v0 * v1).sum(-1) / np.linalg.norm(v0, axis=-1) / np.linalg.norm(v1, axis=-1)
    assert cos.min() > 1 - 1e-12  # directions unchanged
    np.testing.assert_array_equal(out[:, 0], poses[:, 0])  # root unchanged


def test_clip_lengths_robust_and_valid_mask():
    poses, true = noisy_clip(T=41, seed=1)
    poses[:5] *= 3.0  # a few wild frames barely move the median
    lengths = clip_bone_lengths(poses, symmetric=False)
    np.testing.assert_allclose(lengths, true, rtol=0.12)
    masked = clip_bone_lengths(poses, valid=np.arange(41) >= 5, symmetric=False)
    assert np.abs(masked / true - 1).mean() < np.abs(lengths / true - 1).mean()


def test_enforce_checks_shape_and_keeps_nan_lengths():
    poses, _ = noisy_clip(T=3)
    with pytest.raises(ValueError, match="lengths must be"):
        enforce_bone_lengths(poses, np.ones(5))
    lengths = np.full(16, np.nan)
    np.testing.assert_allclose(enforce_bone_lengths(poses, lengths), poses, atol=1e-12)
    out = enforce_bone_lengths(poses.astype(np.float32), np.ones(16))
    assert out.dtype == np.float32
    np.testing.assert_allclose(bone_lengths(out), 1.0, atol=1e-5)


@pytest.mark.parametrize("bones", ["consistent", "raw"])
def test_run_path_option(tiny_weights, bones):
    """`RunOptions.bones` decides whether the lifted clip gets per-clip bone lengths."""
    from video3d.lift.lifter import Lifter
    from video3d.pipeline import RunOptions, lift_sequence
    from video3d.pose import PoseSequence

    rng = np.random.default_rng(3)
    T = 20
    kp = (np.array([160.0, 120.0]) + rng.normal(0, 30, (T, 17, 2))).astype(np.float32)
    seq = PoseSequence(keypoints_2d=kp, scores_2d=np.ones((T, 17), np.float32), valid=np.ones(T, bool),
                       fps=25.0, image_size=(320, 240))
    lifter = Lifter.load("ampose", str(tiny_weights["ampose"]), "cpu")
    lift_sequence(seq, lifter, RunOptions(bones=bones))
    std = bone_lengths(seq.keypoints_3d_camera).std(axis=0)
    world_std = bone_lengths(seq.keypoints_3d_world).std(axis=0)
    if bones == "consistent":
        assert std.max() < 1e-5 and world_std.max() < 1e-5  # the world frame is a rigid move per frame
    else:
        assert std.max() > 1e-3


def test_run_path_rejects_unknown_bones(tiny_weights):
    from video3d.errors import UserError
    from video3d.lift.lifter import Lifter
    from video3d.pipeline import RunOptions, lift_sequence
    from video3d.pose import PoseSequence

    seq = PoseSequence(keypoints_2d=np.zeros((2, 17, 2), np.float32), scores_2d=np.ones((2, 17), np.float32),
                       valid=np.ones(2, bool), fps=25.0, image_size=(320, 240))
    with pytest.raises(UserError, match="--bones"):
        lift_sequence(seq, Lifter.load("ampose", str(tiny_weights["ampose"]), "cpu"), RunOptions(bones="x"))
