"""Mocap readers, forward kinematics, landmark mapping, resampling and caching."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from video3d.errors import UserError
from video3d.keypoints import COCO_JOINT_NAMES
from video3d.mocap import clips as clips_mod
from video3d.mocap.asfamc import forward_kinematics as asf_fk, parse_asf, parse_amc, read_amc, read_asf
from video3d.formats.bvh import BvhMotion, BvhSkeleton, forward_kinematics, parse_bvh, read_bvh, write_bvh
from video3d.mocap.clips import (MocapClip, default_cache_dir, default_mocap_root, find_clip_files,
                                 load_clip, load_mocap_dir, resample, split_by_subject,
                                 subject_from_name)
from video3d.mocap.landmarks import (CMU_METRES_PER_UNIT, FACE_OFFSETS_M, amc_to_coco, bvh_to_coco,
                                     detect_source, head_frame_from_bone, head_frame_from_eyes,
                                     y_up_to_z_up)

C = {n: i for i, n in enumerate(COCO_JOINT_NAMES)}


def rx(a):
    c, s = np.cos(np.radians(a)), np.sin(np.radians(a))
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def ry(a):
    c, s = np.cos(np.radians(a)), np.sin(np.radians(a))
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rz(a):
    c, s = np.cos(np.radians(a)), np.sin(np.radians(a))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


ROT = {"X": rx, "Y": ry, "Z": rz}


# --------------------------------------------------------------------------- BVH

def _small_motion() -> BvhMotion:
    sk = BvhSkeleton(
        names=["root", "a", "b", "b_End", "c", "c_End"],
        parents=[-1, 0, 1, 2, 0, 4],
        offsets=np.array([[0, 0, 0], [0, 1, 0], [0, 2, 0], [0.5, 0, 0], [1, 0, 0], [0, 0, 1.0]]),
        channels=[["Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation"],
                  ["Xrotation", "Yrotation", "Zrotation"],
                  ["Yrotation", "Xposition", "Xrotation"],   # position channel on a non-root joint
                  [],
                  ["Zrotation"],
                  []])
    motion = np.array([[1, 2, 3, 10, 20, 30, 40, 50, 60, 15, 0.25, -35, 70],
                       [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                       [-1, 0.5, 2, -80, 33, 120, 5, -45, 90, 170, -0.5, 10, -20.0]])
    return BvhMotion(skeleton=sk, frame_time=1 / 30, motion=motion)


def _expected_positions(m: np.ndarray) -> np.ndarray:
    out = []
    for v in m:
        g0 = rz(v[3]) @ rx(v[4]) @ ry(v[5])
        p0 = v[:3]
        p_a = p0 + g0 @ [0, 1, 0]
        g_a = g0 @ rx(v[6]) @ ry(v[7]) @ rz(v[8])
        p_b = p_a + g_a @ (np.array([0, 2, 0]) + [v[10], 0, 0])
        g_b = g_a @ ry(v[9]) @ rx(v[11])
        p_be = p_b + g_b @ [0.5, 0, 0]
        p_c = p0 + g0 @ [1, 0, 0]
        p_ce = p_c + g0 @ rz(v[12]) @ [0, 0, 1]
        out.append([p0, p_a, p_b, p_be, p_c, p_ce])
    return np.array(out)


def test_bvh_roundtrip_and_fk(tmp_path: Path):
    motion = _small_motion()
    write_bvh(tmp_path / "s.bvh", motion)
    back = read_bvh(tmp_path / "s.bvh")
    assert back.skeleton.names == motion.skeleton.names
    assert back.skeleton.parents == motion.skeleton.parents
    assert back.skeleton.channels == motion.skeleton.channels
    np.testing.assert_allclose(back.skeleton.offsets, motion.skeleton.offsets)
    np.testing.assert_allclose(back.motion, motion.motion, atol=1e-6)
    assert back.fps == pytest.approx(30.0, rel=1e-6)
    pos = forward_kinematics(back)
    assert pos.shape == (3, 6, 3)
    np.testing.assert_allclose(pos, _expected_positions(motion.motion), atol=1e-5)
    sub = forward_kinematics(back, ["c_End", "b"])
    np.testing.assert_allclose(sub, pos[:, [5, 2]], atol=1e-12)


@pytest.mark.parametrize("order", ["XYZ", "ZXY", "YZX", "ZYX", "XZY", "YXZ"])
def test_bvh_channel_order_is_intrinsic(order: str):
    angles = (25.0, -40.0, 65.0)
    chans = " ".join(f"{a}rotation" for a in order)
    text = (f"HIERARCHY\nROOT r\n{{\n OFFSET 0 0 0\n CHANNELS 3 {chans}\n End Site\n {{\n"
            f"  OFFSET 1 2 3\n }}\n}}\nMOTION\nFrames: 1\nFrame Time: 0.01\n{angles[0]} {angles[1]} {angles[2]}\n")
    m = parse_bvh(text)
    rot = ROT[order[0]](angles[0]) @ ROT[order[1]](angles[1]) @ ROT[order[2]](angles[2])
    np.testing.assert_allclose(forward_kinematics(m)[0, 1], rot @ [1, 2, 3], atol=1e-9)


def test_bvh_tolerates_crlf_and_odd_whitespace():
    text = ("HIERARCHY\r\n  ROOT\tHips\r\n{\r\n\tOFFSET  0 0 0\r\n\tCHANNELS 6 Xposition Yposition "
            "Zposition Zrotation Yrotation Xrotation \r\n\tJOINT Spine\r\n\t{\r\n OFFSET 0 1 0\r\n"
            "CHANNELS 3 Zrotation Yrotation Xrotation\r\n\t\tEnd Site\r\n\t\t{ OFFSET 0 1 0 }\r\n\t}\r\n}"
            "\r\nMOTION\r\nFrames:\t2\r\nFrame Time: 0.0083333\r\n"
            "1 2 3 0 0 0 0 0 90\r\n\r\n 0 0 0  0 0 0 0 0 0 \r\n\r\n")
    m = parse_bvh(text)
    assert m.skeleton.names == ["Hips", "Spine", "Spine_End"]
    assert m.motion.shape == (2, 9)
    np.testing.assert_allclose(forward_kinematics(m)[0, 2], [1, 3, 4], atol=1e-9)


@pytest.mark.parametrize("text, match", [
    ("ROOT a { OFFSET 0 0 0 }\nMOTION\nFrames: 0\nFrame Time: 0.1\n", "HIERARCHY"),
    ("HIERARCHY\nROOT a { OFFSET 0 0 0 CHANNELS 1 Xrotation }\n", "MOTION"),
    ("HIERARCHY\nROOT a { OFFSET 0 0 0 CHANNELS 1 Wrotation }\nMOTION\nFrames: 0\nFrame Time: 0.1\n",
     "unknown channel"),
    ("HIERARCHY\nROOT a { OFFSET 0 0 0 CHANNELS 1 Xrotation\nMOTION\nFrames: 0\nFrame Time: 0.1\n",
     "unclosed"),
    ("HIERARCHY\nROOT a { OFFSET 0 0 0 CHANNELS 2 Xrotation Yrotation }\nMOTION\nFrames: 2\n"
     "Frame Time: 0.1\n1 2\n3\n", "expected 2 frames"),
    ("HIERARCHY\nROOT a { OFFSET 0 0 CHANNELS 1 Xrotation }\nMOTION\nFrames: 1\nFrame Time: 0.1\n1\n",
     "bad OFFSET"),
    ("HIERARCHY\nROOT a { OFFSET 0 0 0 CHANNELS 1 Xrotation }\nMOTION\nFrames: 1\nFrame Time: x\n1\n",
     "Frame Time"),
    ("HIERARCHY\nROOT a { OFFSET 0 0 0 CHANNELS 1 Xrotation }\nMOTION\nFrames: 1\nFrame Time: 0.1\nabc\n",
     "non-numeric"),
])
def test_bvh_malformed_raises(text: str, match: str):
    with pytest.raises(ValueError, match=match):
        parse_bvh(text)


# --------------------------------------------------------------------------- ASF/AMC

ASF = """# test skeleton
:version 1.10
:name TEST
:units
  mass 1.0
  length {length}
  angle {angle}
:documentation
  made for tests
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name a
     direction 0 1 0
     length 2
     axis 0 0 0  XYZ
    dof rx ry rz
    limits (-180 180)
           (-180 180)
           (-180 180)
  end
  begin
     id 2
     name b
     direction 1 0 0
     length 1
     axis 0 0 {b_axis} XYZ
    dof rz rx
  end
  begin
     id 3
     name c
     direction 0 -2 0
     length 1.5
     axis 0 0 0 XYZ
  end
:hierarchy
  begin
    root a c
    a b
  end
"""


def _amc(frames: list[tuple], scale: float = 1.0) -> str:
    lines = ["# test", ":FULLY-SPECIFIED", ":DEGREES" if scale == 1.0 else ":RADIANS"]
    for k, (root, a, b) in enumerate(frames, 1):
        r = list(root[:3]) + [v * scale for v in root[3:]]
        lines += [str(k), "root " + " ".join(map(str, r)),
                  "a " + " ".join(str(v * scale) for v in a), "b " + " ".join(str(v * scale) for v in b)]
    return "\r\n".join(lines) + "\r\n"


FRAMES = [((1, 2, 3, 10, 20, 30), (0, 0, 90), (15, 40)),
          ((0, 0, 0, 0, 0, 0), (0, 0, 0), (0, 0)),
          ((-2, 0.5, 1, -70, 45, 160), (30, -60, 10), (-100, 25))]


def _asf_expected(frames, b_axis: float) -> np.ndarray:
    out = []
    cb = rz(b_axis)
    for root, a, b in frames:
        g0 = rz(root[5]) @ ry(root[4]) @ rx(root[3])        # extrinsic X, then Y, then Z
        p0 = np.array(root[:3], float)
        g_a = g0 @ (rz(a[2]) @ ry(a[1]) @ rx(a[0]))
        p_a = p0 + 2 * g_a @ [0, 1, 0]
        g_b = g_a @ cb @ (rx(b[1]) @ rz(b[0])) @ cb.T          # dof "rz rx": rz first
        p_b = p_a + g_b @ [1, 0, 0]
        p_c = p0 + 1.5 * g0 @ [0, -1, 0]
        out.append([p0, p_a, p_b, p_c])
    return np.array(out)


@pytest.mark.parametrize("length", [0.45, 1.0])
def test_asf_amc_fk_matches_hand_computation(tmp_path: Path, length: float):
    (tmp_path / "07.asf").write_text(ASF.format(length=length, angle="deg", b_axis=90))
    (tmp_path / "07_02.amc").write_text(_amc(FRAMES))
    sk = read_asf(tmp_path / "07.asf")
    assert sk.joint_names == ["root", "a", "b", "c"]
    assert sk.metres_per_unit == pytest.approx(0.0254 / length)
    motion = read_amc(tmp_path / "07_02.amc", sk)
    assert motion.num_frames == 3
    pos = asf_fk(motion)
    np.testing.assert_allclose(pos, _asf_expected(FRAMES, 90) * 0.0254 / length, atol=1e-9)


def test_cmu_length_unit():
    sk = parse_asf(ASF.format(length=0.45, angle="deg", b_axis=0))
    assert sk.metres_per_unit == pytest.approx(0.05644, abs=1e-5)


def test_amc_radians_and_asf_rad_units():
    sk_deg = parse_asf(ASF.format(length=1.0, angle="deg", b_axis=30))
    sk_rad = parse_asf(ASF.format(length=1.0, angle="rad", b_axis=np.radians(30)))
    a = asf_fk(parse_amc(_amc(FRAMES), sk_deg))
    b = asf_fk(parse_amc(_amc(FRAMES, scale=np.pi / 180), sk_rad))
    np.testing.assert_allclose(a, b, atol=1e-9)
    np.testing.assert_allclose(a, _asf_expected(FRAMES, 30) * 0.0254, atol=1e-9)


def test_asf_amc_malformed():
    sk = parse_asf(ASF.format(length=1.0, angle="deg", b_axis=0))
    with pytest.raises(ValueError, match="lacks b"):
        parse_amc("1\nroot 0 0 0 0 0 0\na 0 0 0\n", sk)
    with pytest.raises(ValueError, match="needs 2"):
        parse_amc("1\nroot 0 0 0 0 0 0\na 0 0 0\nb 1\n", sk)
    with pytest.raises(ValueError, match="unknown bone"):
        parse_amc("1\nroot 0 0 0 0 0 0\nzz 0\n", sk)
    with pytest.raises(ValueError, match="hierarchy"):
        parse_asf(ASF.format(length=1.0, angle="deg", b_axis=0).split(":hierarchy")[0])


# --------------------------------------------------------------------------- landmarks

def _synthetic_cmu_bvh(frames: int = 4) -> BvhMotion:
    """A CMU-BVH-style rig (y up, facing +z, left = +x, thorax and wrist bones dropped)."""
    spec = [  # name, parent, offset
        ("Hips", None, (0, 0, 0)),
        ("LHipJoint", "Hips", (0, 0, 0)), ("LeftHip", "LHipJoint", (1.5, -1.5, 0)),
        ("LeftKnee", "LeftHip", (0, -7.5, 0)), ("LeftAnkle", "LeftKnee", (0, -7.5, 0)),
        ("LeftToe", "LeftAnkle", (0, -0.5, 2)),
        ("RHipJoint", "Hips", (0, 0, 0)), ("RightHip", "RHipJoint", (-1.5, -1.5, 0)),
        ("RightKnee", "RightHip", (0, -7.5, 0)), ("RightAnkle", "RightKnee", (0, -7.5, 0)),
        ("RightToe", "RightAnkle", (0, -0.5, 2)),
        ("lowerback", "Hips", (0, 0, 0)), ("Chest", "lowerback", (0, 2, 0)),
        ("Chest2", "Chest", (0, 2, 0)), ("lowerneck", "Chest2", (0, 0, 0)),
        ("Neck", "lowerneck", (0, 1.6, 0)), ("Head", "Neck", (0, 1.6, 0)),
        ("LeftCollar", "Chest2", (0, 0, 0)), ("LeftShoulder", "LeftCollar", (3, 1.4, 0)),
        ("LeftElbow", "LeftShoulder", (5, 0, 0)), ("LeftWrist", "LeftElbow", (3.5, 0, 0)),
        ("lhand", "LeftWrist", (0, 0, 0)),
        ("RightCollar", "Chest2", (0, 0, 0)), ("RightShoulder", "RightCollar", (-3, 1.4, 0)),
        ("RightElbow", "RightShoulder", (-5, 0, 0)), ("RightWrist", "RightElbow", (-3.5, 0, 0)),
        ("rhand", "RightWrist", (0, 0, 0)),
    ]
    names, parents, offsets, channels = [], [], [], []
    ends = {"LeftToe": (0, 0, 1), "RightToe": (0, 0, 1), "Head": (0, 1.7, 0),
            "lhand": (1, 0, 0), "rhand": (-1, 0, 0)}
    for name, parent, off in spec:
        names.append(name)
        parents.append(-1 if parent is None else names.index(parent))
        offsets.append(off)
        rot = ["Zrotation", "Yrotation", "Xrotation"]
        channels.append(["Xposition", "Yposition", "Zposition"] + rot if parent is None else rot)
        if name in ends:
            names.append(f"{name}_End")
            parents.append(names.index(name))
            offsets.append(ends[name])
            channels.append([])
    sk = BvhSkeleton(names=names, parents=parents, offsets=np.array(offsets, float), channels=channels)
    motion = np.zeros((frames, sk.num_channels))
    motion[:, 1] = 17.0
    motion[:, 0] = np.arange(frames) * 0.5         # walks along +x, no rotation
    return BvhMotion(skeleton=sk, frame_time=1 / 120, motion=motion)


def test_landmarks_on_synthetic_cmu_rig():
    motion = _synthetic_cmu_bvh()
    assert detect_source(motion.skeleton.names) == "cmu_bvh"
    lm, source = bvh_to_coco(motion)
    assert source == "cmu_bvh" and lm.shape == (4, 17, 3)
    u = CMU_METRES_PER_UNIT

    def z_up(p_yup_units):
        return y_up_to_z_up(np.asarray(p_yup_units, float) * u)

    np.testing.assert_allclose(lm[0, C["left_hip"]], z_up([1.5, 15.5, 0]), atol=1e-9)
    np.testing.assert_allclose(lm[0, C["right_knee"]], z_up([-1.5, 8.0, 0]), atol=1e-9)
    # thorax re-inserted (Chest2 offset), wrist bone re-inserted (x1.5 radius)
    np.testing.assert_allclose(lm[0, C["left_shoulder"]], z_up([3, 24.4, 0]), atol=1e-9)
    np.testing.assert_allclose(lm[0, C["left_wrist"]], z_up([3 + 5 + 5.25, 24.4, 0]), atol=1e-9)
    head_end = np.array([0, 27.9, 0]) * u
    f, l, up = FACE_OFFSETS_M["nose"]
    np.testing.assert_allclose(lm[0, C["nose"]], y_up_to_z_up(head_end + [0, up, 0.08 + f]), atol=1e-9)
    f, l, up = FACE_OFFSETS_M["left_ear"]
    np.testing.assert_allclose(lm[0, C["left_ear"]], y_up_to_z_up(head_end + [l, up, 0.08 + f]), atol=1e-9)
    # translation carried through, z up, person faces -y in the z-up world, left is +x
    np.testing.assert_allclose(lm[3] - lm[0], np.broadcast_to([1.5 * u, 0, 0], (17, 3)), atol=1e-9)
    assert lm[0, C["nose"], 2] > lm[0, C["left_shoulder"], 2] > lm[0, C["left_hip"], 2] > lm[0, C["left_ankle"], 2]
    assert lm[0, C["nose"], 1] < lm[0, C["left_eye"], 1] < lm[0, C["left_ear"], 1]
    for side in ("eye", "ear", "shoulder", "hip", "knee", "ankle", "wrist"):
        assert lm[0, C[f"left_{side}"], 0] > lm[0, C[f"right_{side}"], 0]
    raw, _ = bvh_to_coco(motion, repair=False)
    np.testing.assert_allclose(raw[0, C["left_wrist"]], z_up([3 + 5 + 3.5, 22.4, 0]), atol=1e-9)


def test_head_frames():
    # z-up world, person faces +y, so their left is -x
    f, l, u = np.array([0.0, 1, 0]), np.array([-1.0, 0, 0]), np.array([0.0, 0, 1])
    head = np.array([[0.3, 0.2, 1.5]])
    eye_mid = head + 0.116 * (np.cos(np.radians(45)) * f + np.sin(np.radians(45)) * u)
    origin, fwd, left, up = head_frame_from_eyes(head, eye_mid + 0.033 * l, eye_mid - 0.033 * l, 45.0)
    np.testing.assert_allclose(origin, eye_mid, atol=1e-12)
    np.testing.assert_allclose(np.r_[fwd, left, up], np.stack([f, l, u]), atol=1e-12)
    fwd, left, up = head_frame_from_bone(head, head + [[0.01, 0, 0.1]], head + [[-0.2, 0.05, -0.15]],
                                         head + [[0.2, 0.05, -0.15]])
    np.testing.assert_allclose(up, [[0.01 / np.hypot(0.01, 0.1), 0, 0.1 / np.hypot(0.01, 0.1)]], atol=1e-12)
    np.testing.assert_allclose(fwd, [f], atol=1e-12)
    assert abs(np.sum(left * up)) < 1e-12 and left[0, 0] < -0.99


def test_detect_source_rejects_unknown_rig():
    with pytest.raises(ValueError, match="unknown mocap rig"):
        detect_source(["pelvis", "spine"])


# --------------------------------------------------------------------------- clips

def test_resample_linear():
    t60 = np.arange(61) / 60.0
    track = np.stack([t60, 2 * t60 + 1], axis=1)[:, None, :]          # (61, 1, 2)
    out = resample(track, 60.0, 50.0)
    assert out.shape == (51, 1, 2)
    t50 = np.arange(51) / 50.0
    np.testing.assert_allclose(out[:, 0, 0], t50, atol=1e-12)
    np.testing.assert_allclose(out[:, 0, 1], 2 * t50 + 1, atol=1e-12)
    assert resample(track[:120], 120.0, 50.0).shape[0] == 26          # 60 frames at 120 fps: 0.5 s
    assert resample(track[:1], 60.0, 50.0).shape == (1, 1, 2)
    np.testing.assert_array_equal(resample(track, 50.0, 50.0), track)


def test_subject_from_name():
    assert subject_from_name("005_03") == "5"
    assert subject_from_name("01_01") == "1"
    assert subject_from_name("131_02") == "131"
    with pytest.raises(ValueError):
        subject_from_name("walk")


def test_split_by_subject():
    clips = [MocapClip(n, s, "cc_bvh", 50.0, np.zeros((2, 17, 3), np.float32))
             for n, s in (("005_01", "5"), ("007_01", "7"), ("131_01", "131"))]
    train, val = split_by_subject(clips, ["007", 131])
    assert [c.name for c in train] == ["005_01"]
    assert [c.name for c in val] == ["007_01", "131_01"]


def test_load_clip_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "mocap"
    (root / "raw").mkdir(parents=True)
    (root / "asf").mkdir()
    write_bvh(root / "raw" / "131_05.bvh", _synthetic_cmu_bvh(frames=25))
    (root / "asf" / "07.asf").write_text(ASF.format(length=0.45, angle="deg", b_axis=0))
    (root / "asf" / "07_02.amc").write_text(_amc(FRAMES))
    (root / "asf" / "09_01.amc").write_text(_amc(FRAMES))                # no 09.asf: skipped

    clip = load_clip(root / "raw" / "131_05.bvh")
    assert (clip.name, clip.subject, clip.source, clip.fps) == ("131_05", "131", "cmu_bvh", 50.0)
    assert clip.landmarks_coco.shape == (11, 17, 3) and clip.landmarks_coco.dtype == np.float32
    assert clip.joints_h36m.shape == (11, 17, 3)
    hips = clip.landmarks_coco[:, [C["left_hip"], C["right_hip"]]]
    np.testing.assert_allclose(clip.joints_h36m[:, 0], hips.mean(axis=1), atol=1e-6)
    with pytest.raises(UserError, match="lacks CMU bones"):
        load_clip(root / "asf" / "07_02.amc")                          # test ASF is not a CMU body

    # the body check only applies to real CMU ASF; use just the BVH for the directory test
    (root / "asf" / "07_02.amc").unlink()
    cache = tmp_path / "cache"
    with pytest.warns(UserWarning, match="09_01"):
        first = load_mocap_dir(root, cache_dir=cache)
    assert [c.name for c in first] == ["131_05"]
    assert len(list(cache.glob("*.npz"))) == 1

    def boom(*a, **k):
        raise AssertionError("should have been read from the cache")

    monkeypatch.setattr(clips_mod, "load_clip", boom)
    with pytest.warns(UserWarning):
        second = load_mocap_dir(root, cache_dir=cache)
    np.testing.assert_array_equal(second[0].landmarks_coco, first[0].landmarks_coco)
    assert (second[0].subject, second[0].source, second[0].fps) == ("131", "cmu_bvh", 50.0)

    # a changed file is converted again
    motion = _synthetic_cmu_bvh(frames=30)
    write_bvh(root / "raw" / "131_05.bvh", motion)
    os.utime(root / "raw" / "131_05.bvh", ns=(1, 1))
    with pytest.raises(AssertionError, match="cache"), pytest.warns(UserWarning):
        load_mocap_dir(root, cache_dir=cache)
    monkeypatch.undo()
    with pytest.warns(UserWarning):
        third = load_mocap_dir(root, cache_dir=cache)
    assert third[0].num_frames == 13


def test_default_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VIDEO3D_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c" / "mocap"
    monkeypatch.setenv("VIDEO3D_MOCAP", str(tmp_path))
    assert default_mocap_root() == tmp_path
    monkeypatch.setenv("VIDEO3D_MOCAP", str(tmp_path / "missing"))
    assert default_mocap_root() is None
    monkeypatch.delenv("VIDEO3D_CACHE")
    repo = Path(clips_mod.__file__).resolve().parents[2]
    assert repo not in default_cache_dir().parents


def test_load_clip_errors(tmp_path: Path):
    with pytest.raises(UserError, match="no such"):
        load_clip(tmp_path / "nope.bvh")
    (tmp_path / "01_01.amc").write_text(_amc(FRAMES))
    with pytest.raises(UserError, match="no skeleton"):
        load_clip(tmp_path / "01_01.amc")
    (tmp_path / "bad.bvh").write_text("HIERARCHY\nROOT a {\n")
    with pytest.raises(UserError, match="bad.bvh"):
        load_clip(tmp_path / "bad.bvh")


# --------------------------------------------------------------------------- real data

def _real_root() -> Path:
    root = default_mocap_root()
    if root is None:
        pytest.skip("real mocap data absent (set VIDEO3D_MOCAP or provide ../shared/data/mocap)")
    return root


def _check_real(lm: np.ndarray, thigh: tuple, shin: tuple, upper_arm: tuple, forearm: tuple):
    """Plausibility of real landmarks (T, 17, 3), metres, z up."""
    def length(a, b):
        return np.median(np.linalg.norm(lm[:, C[a]] - lm[:, C[b]], axis=-1))

    up = np.array([0.0, 0.0, 1.0])
    left = lm[:, C["left_hip"]] - lm[:, C["right_hip"]]
    body_fwd = np.cross(left, up)                      # forward = left x up
    eyes = 0.5 * (lm[:, C["left_eye"]] + lm[:, C["right_eye"]])
    ears = 0.5 * (lm[:, C["left_ear"]] + lm[:, C["right_ear"]])
    shoulders = 0.5 * (lm[:, C["left_shoulder"]] + lm[:, C["right_shoulder"]])
    ankles = 0.5 * (lm[:, C["left_ankle"]] + lm[:, C["right_ankle"]])
    assert np.mean(np.sum((eyes - ears) * body_fwd, axis=1) > 0) > 0.95          # eyes in front
    assert np.mean(eyes[:, 2] > shoulders[:, 2]) > 0.95                            # head above shoulders
    assert np.mean(shoulders[:, 2] > ankles[:, 2] + 0.8) > 0.9                     # z is up
    for side in ("eye", "ear", "shoulder"):                                        # left is left
        d = lm[:, C[f"left_{side}"]] - lm[:, C[f"right_{side}"]]
        assert np.mean(np.sum(d * left, axis=1) > 0) > 0.95
    assert thigh[0] < (length("left_hip", "left_knee") + length("right_hip", "right_knee")) / 2 < thigh[1]
    assert shin[0] < length("left_knee", "left_ankle") < shin[1]
    assert upper_arm[0] < length("left_shoulder", "left_elbow") < upper_arm[1]
    assert forearm[0] < length("left_elbow", "left_wrist") < forearm[1]
    assert 0.055 < length("left_eye", "right_eye") < 0.075


def test_real_cc_rig():
    root = _real_root()
    path = root / "cmu" / "002_03.bvh"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    lm, source = bvh_to_coco(read_bvh(path))
    assert source == "cc_bvh"
    _check_real(lm, (0.44, 0.50), (0.45, 0.52), (0.23, 0.28), (0.23, 0.28))


def test_real_cmu_bvh():
    root = _real_root()
    path = root / "cmu-bvh-raw" / "131_01.bvh"
    if not path.is_file():
        pytest.skip(f"{path} absent")
    lm, source = bvh_to_coco(read_bvh(path))
    assert source == "cmu_bvh"
    _check_real(lm, (0.38, 0.45), (0.36, 0.43), (0.22, 0.27), (0.25, 0.30))


def test_real_cmu_asf():
    root = _real_root()
    asf, amc = root / "cmu-asfamc" / "11.asf", root / "cmu-asfamc" / "11_01.amc"
    if not amc.is_file():
        pytest.skip(f"{amc} absent")
    lm = amc_to_coco(read_amc(amc, read_asf(asf)))
    _check_real(lm, (0.38, 0.45), (0.40, 0.48), (0.28, 0.34), (0.27, 0.32))


def test_real_layout_and_subjects():
    root = _real_root()
    files = find_clip_files(root)
    if len(files) != 66:
        pytest.skip(f"expected the 66-clip shared layout, found {len(files)} clips")
    subjects = sorted({subject_from_name(f.stem) for f in files}, key=int)
    assert subjects == ["1", "2", "3", "5", "6", "7", "11", "131"]
