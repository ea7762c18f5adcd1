"""The archived mocap sources: DAZ BVH, CMU expmap, ReActIdle; archives, source weights, splits.

Tests on the real archives skip when ../shared/data/mocap (or $VIDEO3D_MOCAP)
lacks them; they extract once to the default cache (~/.cache/video3d).
"""
from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from video3d.keypoints import COCO_JOINT_NAMES
from video3d.mocap import expmap
from video3d.mocap.archives import extract_archive
from video3d.mocap.clips import (DAZ_FPS, ClipSpec, MocapClip, default_mocap_root, load_clip, mocap_specs,
                                 resolve_sources)
from video3d.formats.bvh import BvhMotion, BvhSkeleton, forward_kinematics, read_bvh
from video3d.mocap.landmarks import bvh_to_coco, expmap_to_coco, fix_absolute_translations
from video3d.train.samplers import source_weights
from video3d.train.splits import load_splits

C = {n: i for i, n in enumerate(COCO_JOINT_NAMES)}


def _len(lm, a, b):
    return float(np.median(np.linalg.norm(lm[:, C[a]] - lm[:, C[b]], axis=-1)))


# --------------------------------------------------------------------------- expmap, synthetic

def _chain_skeleton() -> expmap.ExpmapSkeleton:
    return expmap.ExpmapSkeleton(parents=(-1, 0, 1), offsets=np.array([[0, 0, 0], [0, 1.0, 0], [2.0, 0, 0]]),
                                 names=("root", "a", "b"), metres_per_unit=1.0)


def test_expmap_rotmat_is_rodrigues():
    r = np.array([0.3, -0.2, 0.9])
    R = expmap.expmap_to_rotmat(r)
    assert np.allclose(R @ R.T, np.eye(3), atol=1e-12) and np.isclose(np.linalg.det(R), 1)
    axis = r / np.linalg.norm(r)
    assert np.allclose(R @ axis, axis)                      # the axis is fixed
    assert np.isclose(np.degrees(np.arccos((np.trace(R) - 1) / 2)), np.degrees(np.linalg.norm(r)))
    assert np.allclose(expmap.expmap_to_rotmat(np.zeros(3)), np.eye(3))


def test_expmap_fk_row_vector_convention():
    sk = _chain_skeleton()
    vals = np.zeros((2, 3 + 9))
    vals[1, 0:3] = [5, 6, 7]                     # root position, in the file's (x, y, z) order
    vals[1, 3 + 3:3 + 6] = [0, 0, np.pi / 2]     # joint a: 90 deg about z
    pos, rot = expmap.forward_kinematics(vals, sk)
    assert np.allclose(pos[0], [[0, 0, 0], [0, 1, 0], [2, 1, 0]])   # rest: cumulative offsets
    # p_b = offset_b @ R_a + p_a with row vectors: [2,0,0] @ Rz(90) = [0,-2,0]... as the authors' code
    Rz = expmap.expmap_to_rotmat(np.array([0, 0, np.pi / 2]))
    assert np.allclose(pos[1, 1], [5, 7, 7])
    assert np.allclose(pos[1, 2], np.array([2.0, 0, 0]) @ Rz + [5, 7, 7])
    assert np.allclose(rot[1, 2], Rz)


def test_expmap_repair_inserts_thorax_and_wrists():
    root = default_mocap_root()
    path = root / "cmu-expmap-skeleton.json" if root else None
    if path is None or not path.is_file():
        pytest.skip("cmu-expmap-skeleton.json absent")
    sk = expmap.read_skeleton(path)
    j = expmap.JOINTS
    assert np.allclose(sk.offsets[j["thorax"]], 0) and np.allclose(sk.offsets[j["left_hand_pivot"]], 0)
    fixed = expmap.repair_skeleton(sk)
    assert np.allclose(fixed.offsets[j["thorax"]], sk.offsets[j["upperback_end"]])
    assert np.allclose(fixed.offsets[j["left_hand_pivot"]], 0.5 * sk.offsets[j["left_radius_end"]])
    assert np.allclose(expmap.repair_skeleton(fixed).offsets, fixed.offsets)   # idempotent


# --------------------------------------------------------------------------- BVH with absolute translations

def test_fix_absolute_translations_matches_plain_bvh():
    names = ["root", "a", "a_End"]
    offsets = np.array([[0, 1.0, 0], [0.3, 0, 0], [0, -0.4, 0]])
    plain = BvhSkeleton(names, [-1, 0, 1], offsets, [["Xposition", "Yposition", "Zposition", "Xrotation",
                                                       "Yrotation", "Zrotation"], ["Xrotation", "Yrotation", "Zrotation"], []])
    rng = np.random.default_rng(0)
    rot = rng.uniform(-40, 40, (4, 6))
    m_plain = BvhMotion(plain, 1 / 24, np.concatenate([rng.normal(0, 0.1, (4, 3)), rot[:, :3], rot[:, 3:]], 1))
    # the same motion written Blender-style: 6 channels per joint, positions = the full local translation
    absolute = BvhSkeleton(names, [-1, 0, 1], offsets, [plain.channels[0], ["Xposition", "Yposition", "Zposition",
                                                                           "Xrotation", "Yrotation", "Zrotation"], []])
    m_abs = BvhMotion(absolute, 1 / 24, np.concatenate([m_plain.motion[:, :6], np.tile([0.3, 0, 0], (4, 1)),
                                                        rot[:, 3:]], 1))
    doubled = forward_kinematics(m_abs)
    assert np.linalg.norm(doubled[0, 1] - doubled[0, 0]) == pytest.approx(0.6)   # the naive reading
    fixed = forward_kinematics(fix_absolute_translations(m_abs))
    assert np.allclose(fixed, forward_kinematics(m_plain))
    assert fix_absolute_translations(m_plain) is m_plain     # ordinary files are untouched


# --------------------------------------------------------------------------- archives

def test_extract_archive_once(tmp_path: Path):
    src = tmp_path / "x.tar.xz"
    with tarfile.open(src, "w:xz") as tar:
        data = b"hello"
        info = tarfile.TarInfo("x/a.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    dest = extract_archive(src, tmp_path / "cache")
    assert (dest / "x" / "a.txt").read_bytes() == b"hello"
    (dest / "x" / "a.txt").write_bytes(b"kept")                 # a second call reuses the extraction
    assert extract_archive(src, tmp_path / "cache") == dest
    assert (dest / "x" / "a.txt").read_bytes() == b"kept"
    assert not list((tmp_path / "cache" / "archives").glob(".*partial"))


def test_resolve_sources():
    assert resolve_sources("cmu,daz") == ("cc_bvh", "cmu_bvh", "cmu_asf", "daz_bvh")
    assert len(resolve_sources(None)) == 6 and resolve_sources("all") == resolve_sources(None)
    from video3d.errors import UserError
    with pytest.raises(UserError, match="unknown source"):
        resolve_sources("cmu,nope")


# --------------------------------------------------------------------------- weights and splits

def _clip(source, minutes, name="c", subject="1"):
    n = int(minutes * 60 * 50)
    return MocapClip(name, subject, source, 50.0, np.zeros((n, 17, 3), np.float32))


def test_source_weights_cap_minutes():
    clips = [_clip("cc_bvh", 6), _clip("cc_bvh", 2), _clip("daz_bvh", 20), _clip("reactidle", 40)]
    p, info = source_weights(clips, {"default": 12.0, "reactidle": 4.0})
    assert p.sum() == pytest.approx(1)
    # weights 8 : 12 : 4 minutes; within cc, 3 : 1 by frames
    assert info["cc_bvh"]["share"] == pytest.approx(8 / 24, abs=1e-3)
    assert info["reactidle"]["share"] == pytest.approx(4 / 24, abs=1e-3)
    assert p[0] / p[1] == pytest.approx(3)
    assert p[3] == pytest.approx(4 / 24)


def test_split_definition():
    defn = load_splits()
    assert defn.seeds["validation"] != defn.seeds["test"]
    c = lambda src, subj, name="x": MocapClip(name, subj, src, 50.0, np.zeros((2, 17, 3)))  # noqa: E731
    assert defn.part_of(c("cc_bvh", "7")) == "test" and defn.part_of(c("cmu_bvh", "131")) == "test"
    assert defn.part_of(c("cc_bvh", "2")) == "validation" and defn.part_of(c("cc_bvh", "5")) == "train"
    assert defn.part_of(c("reactidle", "reactidle-009")) == "test"
    assert defn.part_of(c("cmu_expmap", "expmap", "expmap-test-walking_1")) == "test"
    assert defn.part_of(c("cmu_expmap", "expmap", "expmap-test-basketball_1")) == "train"   # may be CC subject 6
    # legacy --val-subjects: named subjects validate, even test ones; the other test clips stay test
    from video3d.train.splits import with_validation_subjects
    legacy = with_validation_subjects(defn, ["131", "5"])
    assert legacy.part_of(c("cmu_bvh", "131")) == "validation" and legacy.part_of(c("cc_bvh", "5")) == "validation"
    assert legacy.part_of(c("cc_bvh", "7")) == "test" and legacy.part_of(c("cc_bvh", "2")) == "train"
    # no clip name in both parts
    names = lambda part: {n for r in defn.rules[part] for n in r.get("clips", ())}  # noqa: E731
    assert not names("test") & names("validation")


# --------------------------------------------------------------------------- real archives

def _specs(source: str):
    root = default_mocap_root()
    if root is None:
        pytest.skip("mocap data absent (set VIDEO3D_MOCAP or provide ../shared/data/mocap)")
    specs = [s for s in mocap_specs(root, sources=[source]) if s.source == source]
    if not specs:
        pytest.skip(f"no {source} archive under {root}")
    return specs


def _check_body(lm, thigh, shin, upper_arm, forearm, hip_width, shoulder_width):
    assert lm.shape[1:] == (17, 3) and np.isfinite(lm).all()
    for (a, b), rng in {("left_hip", "left_knee"): thigh, ("right_hip", "right_knee"): thigh,
                        ("left_knee", "left_ankle"): shin, ("left_shoulder", "left_elbow"): upper_arm,
                        ("left_elbow", "left_wrist"): forearm, ("left_hip", "right_hip"): hip_width,
                        ("left_shoulder", "right_shoulder"): shoulder_width}.items():
        assert rng[0] < _len(lm, a, b) < rng[1], (a, b, _len(lm, a, b))
    # rigid bones: length std over the clip < 1 mm
    assert np.std(np.linalg.norm(lm[:, C["left_hip"]] - lm[:, C["left_knee"]], axis=-1)) < 1e-3
    # z up, head above hips above ankles; left is the person's left (forward = left x up along the toes
    # cannot be checked without toes: use the nose, in front of the ears)
    assert np.median(lm[:, C["nose"], 2]) > np.median(lm[:, C["left_hip"], 2]) > np.median(lm[:, C["left_ankle"], 2])
    left = lm[:, C["left_hip"]] - lm[:, C["right_hip"]]
    fwd = np.cross(left, [0, 0, 1.0])
    nose = lm[:, C["nose"]] - 0.5 * (lm[:, C["left_ear"]] + lm[:, C["right_ear"]])
    assert np.mean(np.sum(fwd * nose, axis=-1) > 0) > 0.9


def test_real_daz():
    specs = _specs("daz_bvh")
    assert len(specs) == 43 and {s.action for s in specs} == {"salsa", "martial", "indian"}
    spec = next(s for s in specs if s.name == "daz-martial-03")
    lm, source = bvh_to_coco(read_bvh(spec.path))
    assert source == "daz_bvh"
    _check_body(lm[1:], (0.34, 0.40), (0.43, 0.48), (0.26, 0.30), (0.22, 0.26), (0.16, 0.19), (0.33, 0.36))
    # frame 1 is a T-pose (arms horizontal); it is dropped
    arm = lm[0, C["left_wrist"]] - lm[0, C["left_shoulder"]]
    assert abs(arm[2]) / np.linalg.norm(arm) < 0.1
    clip = load_clip(spec, fps=120.0)
    assert clip.num_frames == len(lm) - 1 and np.allclose(clip.landmarks_coco, lm[1:], atol=1e-5)
    salsa = next(s for s in specs if s.action == "salsa")
    assert salsa.fps == DAZ_FPS["salsa"] == 60.0


def test_real_expmap():
    specs = _specs("cmu_expmap")
    assert len(specs) == 96 and len({s.action for s in specs}) == 8
    spec = next(s for s in specs if s.name == "expmap-test-walking_1")
    sk = expmap.read_skeleton(spec.skeleton)
    lm = expmap_to_coco(expmap.read_expmap(spec.path), sk)
    _check_body(lm, (0.41, 0.45), (0.39, 0.43), (0.26, 0.29), (0.26, 0.30), (0.17, 0.20), (0.37, 0.42))
    # walks forward at ~1.2 m/s at 120 fps with a still stance foot (checks the root position order)
    mid = 0.5 * (lm[:, C["left_hip"]] + lm[:, C["right_hip"]])
    vel = np.diff(mid, axis=0) * 120
    fwd = np.cross(lm[:, C["left_hip"]] - lm[:, C["right_hip"]], [0, 0, 1.0])[1:]
    fwd /= np.linalg.norm(fwd, axis=-1, keepdims=True)
    assert 1.0 < np.median(np.sum(vel * fwd, axis=-1)) < 1.5
    feet = [np.linalg.norm(np.diff(lm[:, C[a], :2], axis=0), axis=-1) * 120 for a in ("left_ankle", "right_ankle")]
    assert np.median(np.minimum(*feet)) < 0.3
    # the repaired thorax: torso (mid-hip -> mid-shoulder) 0.45-0.55 m
    sh = 0.5 * (lm[:, C["left_shoulder"]] + lm[:, C["right_shoulder"]])
    assert 0.45 < np.median(np.linalg.norm(sh - mid, axis=-1)) < 0.55


def test_real_reactidle():
    specs = _specs("reactidle")
    assert len(specs) == 22 and len({s.subject for s in specs}) == 14
    spec = next(s for s in specs if s.name == "reactidle-001_acted")
    motion = read_bvh(spec.path)
    assert motion.fps == pytest.approx(24, abs=0.01)
    lm, source = bvh_to_coco(motion)
    assert source == "reactidle"
    _check_body(lm, (0.31, 0.40), (0.30, 0.36), (0.25, 0.30), (0.20, 0.25), (0.17, 0.24), (0.30, 0.40))
    assert 0.0 < np.median(lm[:, C["left_ankle"], 2]) < 0.12     # metres, feet near the floor
