"""Whole pipeline with the shipped weights: ground truth from the mannequin renderer, and a real clip."""
from __future__ import annotations

import os

import numpy as np
import pytest

from tests.videos import person_clip
from video3d.lift.weights import default_weights_path
from video3d.pipeline import RunOptions, run_video
from video3d.train.metrics import mpjpe, p_mpjpe

#: Whole pipeline with the shipped weights on rendered and real clips (minutes on 2 cores).
pytestmark = pytest.mark.slow

#: P-MPJPE (mm) the shipped lifters must reach on the rendered mannequin
#: (measured values are in the README; thresholds leave a margin).
GT_THRESHOLD_MM = {"ktpformer": 100.0, "ampose": 70.0}  # measured: 85.6 and 56.1


def shipped(lifter: str):
    path = default_weights_path(lifter)
    if not path.is_file():
        pytest.fail(f"shipped weights missing: {path}")
    return path


@pytest.fixture(scope="module")
def mannequin(tmp_path_factory):
    return person_clip(tmp_path_factory.mktemp("gt") / "mannequin.mp4", frames=90, width=640, height=480,
                       kind="demo", fps=30.0)


@pytest.mark.parametrize("lifter", ["ktpformer", "ampose"])
def test_mannequin_ground_truth(mannequin, tmp_path, lifter):
    """Render a known 3D motion, run everything, compare with the motion's truth."""
    video, truth = mannequin
    shipped(lifter)
    res = run_video(video, tmp_path, RunOptions(lifter=lifter, render=False))
    with np.load(res.out_dir / "keypoints.npz") as z:
        pred, valid = z["keypoints_3d_camera"], z["valid"]
    assert valid.mean() > 0.95
    target = truth["joints_h36m_camera"] - truth["joints_h36m_camera"][:, :1]
    err = p_mpjpe(pred[valid], target[valid])
    print(f"{lifter}: P-MPJPE {err:.1f} mm, MPJPE {mpjpe(pred[valid], target[valid]):.1f} mm")
    assert err < GT_THRESHOLD_MM[lifter]


def test_real_street_clip(park_video, tmp_path):
    """../shared/media/street/park.mp4 end to end (VP9 with audio, 1768x994, several people)."""
    shipped("ktpformer")
    res = run_video(park_video, tmp_path, RunOptions())
    assert res.num_frames == 230 and res.image_size == (1768, 994)
    with np.load(res.out_dir / "keypoints.npz") as z:
        valid, world = z["valid"], z["keypoints_3d_world"]
    assert valid.mean() > 0.9
    # Plausible human: thigh and shin lengths of the reconstruction within anatomical bounds.
    from video3d import skeleton
    bones = np.nanmedian(skeleton.bone_lengths(world[valid]), axis=0)
    assert 0.3 < bones[1] < 0.6 and 0.3 < bones[2] < 0.6  # right thigh, right shin
    assert sorted(p.name for p in res.out_dir.iterdir()) == sorted(
        ["keypoints.npz", "keypoints.json", "keypoints_3d.csv", "overlay.mp4", "skeleton3d.mp4", "viewer.html"])
