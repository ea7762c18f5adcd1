"""The real-video check: synthetic multi-view people (always) and the shared multicam clip (when present)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.test_bones import noisy_clip
from tests.test_calibration import CALIB, ring_cameras
from video3d.evaluation.detections import Detections
from video3d.evaluation.realvideo import (LIMB_JOINTS, MEDIAPIPE, CheckSettings, LoadedLifter, bone_std_mm,
                                          evaluate_person, match_people, triangulate_person)
from video3d.lift.bones import consistent_bones

MULTICAM = CALIB.parent / "videos"


class ExactLifter:
    """Stands in for a Lifter: returns the true pose of the view, root-relative, optionally noisy."""

    def __init__(self, poses_cam: np.ndarray, noise: float = 0.0):
        self.poses, self.noise = poses_cam, noise

    def lift(self, keypoints_2d, image_size, valid=None, flip=True):
        rng = np.random.default_rng(0)
        p = self.poses - self.poses[:, :1]
        return p + rng.normal(0.0, self.noise, p.shape) * (np.arange(17) > 0)[:, None]


def people_3d(T: int = 40) -> list[np.ndarray]:
    """Two people (T, 17, 3) world metres standing apart in front of the ring cameras."""
    out = []
    for seed, where in ((4, [0.4, 0.0, 1.0]), (5, [-0.6, 0.5, 1.0])):
        p = consistent_bones(noisy_clip(T, seed=seed)[0])
        out.append(p - p[:, :1] + np.array(where))
    return out


def detections_of(pose_world: np.ndarray, cam) -> Detections:
    kp = cam.project(pose_world).astype(np.float32)
    T = len(kp)
    world = (cam.world_to_camera(pose_world) - cam.world_to_camera(pose_world)[:, :1]).astype(np.float32)
    return Detections(keypoints_2d=kp, scores_2d=np.ones((T, 17), np.float32), valid=np.ones(T, bool),
                      raw_2d=kp.copy(), raw_scores=np.ones((T, 17), np.float32), world=world, fps=30.0,
                      image_size=(cam.width, cam.height))


def test_match_people_groups_proposals_across_views():
    cams = [c.camera for c in ring_cameras()]
    a, b = people_3d()
    # Per view, proposals in a different order; view 2 also sees a stray third person.
    order = [(a, b), (b, a), (a, b), (b, a)]
    cands = [[(cam.project(p[0]), np.ones(17)) for p in pair] for cam, pair in zip(cams, order)]
    cands[2].append((cands[2][0][0] + 250.0, np.ones(17)))
    people = match_people(cands, cams, CheckSettings())
    assert people == [(0, 1, 0, 1), (1, 0, 1, 0)] or people == [(1, 0, 1, 0), (0, 1, 0, 1)]


def test_pseudo_gt_gates_a_view_on_the_wrong_person_and_scores_methods():
    cams = [c.camera for c in ring_cameras()]
    a, b = people_3d()
    dets = [detections_of(a, c) for c in cams]
    wrong = detections_of(b, cams[3])
    for f in ("raw_2d", "keypoints_2d"):  # view 3 tracks the other person in frames 10-19
        getattr(dets[3], f)[10:20] = getattr(wrong, f)[10:20]
    tri, kept = triangulate_person(dets, cams, CheckSettings())
    assert not kept[3, 10:20].any() and kept[:3].all() and kept[3, :10].all()
    assert np.abs(tri.points - a)[:, list(LIMB_JOINTS)].max() < 1e-6

    lifters = [LoadedLifter("exact", ExactLifter(cams[0].world_to_camera(a))),
               LoadedLifter("noisy", ExactLifter(cams[0].world_to_camera(a), noise=0.03))]
    rep = evaluate_person(dets[:1] + dets[1:], cams, ["c0", "c1", "c2", "c3"], lifters, CheckSettings())
    view0 = rep["views"]["c0"]
    assert view0["frames"] == 40 and rep["views"]["c3"]["frames"] == 30  # wrong-person frames left out
    assert view0["methods"]["exact"]["p_mpjpe_mm"] < 0.01
    assert view0["methods"][MEDIAPIPE]["p_mpjpe_mm"] < 0.01
    assert 15.0 < view0["methods"]["noisy"]["p_mpjpe_mm"] < 60.0
    assert view0["methods"]["noisy+bones"]["bone_std_mm"] < 1e-3 < view0["methods"]["noisy"]["bone_std_mm"]
    assert rep["triangulation"]["median_reprojection_px"] < 1e-3
    assert rep["triangulation"]["per_view_frames_gated_out"] == {"c0": 0, "c1": 0, "c2": 0, "c3": 10}


def test_jsonable_makes_strict_json():
    from video3d.evaluation.realvideo import jsonable

    out = jsonable({"a": np.float32(1.5), "b": [float("nan"), np.inf, np.int64(3)], "c": (np.bool_(True),)})
    assert json.dumps(out, allow_nan=False) == '{"a": 1.5, "b": [null, null, 3], "c": [true]}'


def test_bone_std_mm_units():
    poses, _ = noisy_clip(30)
    s = bone_std_mm(poses)
    assert s["mean"] > 10.0 and len(s["per_bone"]) == 16 and len(s["mean_length"]) == 16
    assert bone_std_mm(consistent_bones(poses))["mean"] < 1e-6


@pytest.mark.slow
def test_shared_multicam_check(tmp_path):
    """The check on the shared clip (BlazePose detections cached in ~/.cache/video3d after the first run)."""
    videos = sorted(MULTICAM.glob("cam*.mp4"))
    if len(videos) < 2 or not (CALIB / "Calib.toml").is_file():
        pytest.skip(f"shared multicam clip not available: {MULTICAM}")
    pytest.importorskip("mediapipe")
    import subprocess
    import sys

    out = tmp_path / "rv.json"
    repo = Path(__file__).resolve().parents[1]
    res = subprocess.run([sys.executable, str(repo / "scripts" / "realvideo_check.py"), "--weights", "ampose",
                          "--street", "", "--out", str(out)], capture_output=True, text=True, timeout=1200)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(out.read_text())
    assert {"settings", "lifters", "multicam", "summary"} <= set(report)
    from video3d.models.registry import get_lifter

    name = get_lifter("ampose").default_weights
    assert set(report["summary"]) == {name, name + "+bones", name + "+fused+bones", MEDIAPIPE, MEDIAPIPE + "+bones"}
    people = report["multicam"]["people"]
    assert len(people) == 2 and report["multicam"]["primary"] in people
    for person in people.values():
        tri = person["triangulation"]
        assert tri["median_reprojection_px"] < 15.0 and tri["frames_with_all_limbs"] >= 50
        assert set(person["views"]) == {"cam01", "cam02", "cam03", "cam04"}
        for view in person["views"].values():
            assert view["frames"] >= 20
            for m in view["methods"].values():
                assert 20.0 < m["p_mpjpe_mm"] < 250.0
    for m in report["summary"].values():
        assert m["p_mpjpe_mm"] is not None and m["bone_std_mm_multicam"] is not None
    assert report["summary"][name + "+bones"]["bone_std_mm_multicam"] < 0.01
    assert report["summary"][name + "+fused+bones"]["bone_std_mm_multicam"] < 0.01
    assert "Real-video check" in res.stdout
