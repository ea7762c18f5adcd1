"""Human3.6M loaders (VideoPose3D layout) and camera recovery, on generated files."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from video3d.data.h36m import (H36M_17_OF_32, load_cameras_json, load_h36m, load_positions_2d,
                               recover_cameras, save_cameras_json, split_h36m)
from video3d.geometry.calibrate import calibrate_camera, decompose_projection, dlt_projection_matrix
from video3d.geometry.camera import CalibratedCamera as Camera
from video3d.errors import UserError

SUBJECTS = ("S1", "S11")
ACTIONS = ("Directions", "Walking 1")
SIZES = ((1000, 1002), (1000, 1000), (1000, 1000), (1000, 1002))


def _camera(i: int, subject_shift: float) -> Camera:
    """A camera 4.5-5.5 m from the origin, 1.6 m high, looking at the capture volume."""
    ang = i * np.pi / 2 + 0.4 + subject_shift
    dist = 4.5 + 0.3 * i
    centre = np.array([dist * np.cos(ang), dist * np.sin(ang), 1.6 + 0.1 * i])
    z = np.array([0.0, 0.0, 0.9]) - centre
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x /= np.linalg.norm(x)
    R = np.stack([x, np.cross(z, x), z])
    return Camera(R=R, t=-R @ centre, fx=1145.0 + 3 * i, fy=1144.0 - 2 * i, cx=512.0 - i, cy=515.0 + i,
                  width=SIZES[i][0], height=SIZES[i][1], k=(-0.2 + 0.01 * i, 0.24), p=(0.0, 0.0))


def _motion(rng: np.random.Generator, frames: int) -> np.ndarray:
    """(T, 32, 3) world metres: a body-sized point cloud drifting around, z up."""
    base = rng.normal(size=(1, 32, 3)) * [0.25, 0.25, 0.45] + [0.0, 0.0, 0.95]
    wobble = 0.05 * np.sin(np.linspace(0, 6, frames))[:, None, None] * rng.normal(size=(1, 32, 3))
    drift = np.cumsum(rng.normal(scale=0.01, size=(frames, 1, 3)), axis=0) * [1, 1, 0.2]
    return base + wobble + drift


@pytest.fixture(scope="module")
def h36m_files(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("h36m")
    rng = np.random.default_rng(7)
    cams = {s: [_camera(i, 0.1 * k) for i in range(4)] for k, s in enumerate(SUBJECTS)}
    pos3d, pos2d = {}, {}
    for s in SUBJECTS:
        pos3d[s], pos2d[s] = {}, {}
        for a in ACTIONS:
            world = _motion(rng, 60)
            kp = [c.project(world[:, list(H36M_17_OF_32)]) for c in cams[s]]
            if a == "Walking 1":          # the known 2D/3D length mismatch: 2D has 3 extra frames
                kp = [np.concatenate([k, k[-3:]]) for k in kp]
            pos3d[s][a] = world
            pos2d[s][a] = kp
    del pos3d["S11"]["Directions"]      # broken in the public release
    meta = {"layout_name": "h36m", "num_joints": 17,
            "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    p3, p2 = tmp / "data_3d_h36m.npz", tmp / "data_2d_h36m_gt.npz"
    np.savez_compressed(p3, positions_3d=pos3d)
    np.savez_compressed(p2, positions_2d=pos2d, metadata=meta)
    return p3, p2, cams, pos3d


def _assert_camera_close(est: Camera, true: Camera):
    assert est.reprojection_error < 0.1
    assert np.degrees(Rotation.from_matrix(est.R @ true.R.T).magnitude()) < 0.01
    np.testing.assert_allclose(est.t, true.t, atol=1e-3)
    np.testing.assert_allclose([est.fx, est.fy, est.cx, est.cy], [true.fx, true.fy, true.cx, true.cy], atol=0.5)


def test_dlt_recovers_exact_pinhole():
    rng = np.random.default_rng(0)
    cam = _camera(1, 0.0)
    cam.k = (0.0, 0.0)
    X = rng.normal(size=(200, 3)) * 0.5 + [0, 0, 1]
    K, R, t = decompose_projection(dlt_projection_matrix(X, cam.project(X)))
    np.testing.assert_allclose(K, [[cam.fx, 0, cam.cx], [0, cam.fy, cam.cy], [0, 0, 1]], atol=1e-6)
    np.testing.assert_allclose(R, cam.R, atol=1e-9)
    np.testing.assert_allclose(t, cam.t, atol=1e-9)


@pytest.mark.parametrize("distortion", ["radial", "radial_tangential"])
def test_calibrate_camera_with_distortion(distortion: str):
    rng = np.random.default_rng(1)
    cam = _camera(2, 0.0)
    if distortion == "radial_tangential":
        cam.p = (1e-3, -5e-4)
    world = _motion(rng, 80)
    est = calibrate_camera(world.reshape(-1, 3), cam.project(world).reshape(-1, 2), cam.image_size,
                           distortion=distortion)
    _assert_camera_close(est, cam)
    np.testing.assert_allclose(est.k, cam.k, atol=1e-4)


def test_calibrate_camera_robust_to_outliers():
    rng = np.random.default_rng(2)
    cam = _camera(0, 0.0)
    world = _motion(rng, 40).reshape(-1, 3)
    px = cam.project(world) + rng.normal(scale=0.3, size=(len(world), 2))
    bad = rng.choice(len(px), size=len(px) // 50, replace=False)
    px[bad] += rng.uniform(-80, 80, size=(len(bad), 2))
    robust = calibrate_camera(world, px, cam.image_size, robust=True)
    plain = calibrate_camera(world, px, cam.image_size, robust=False)

    def angle(c: Camera) -> float:
        return float(np.degrees(Rotation.from_matrix(c.R @ cam.R.T).magnitude()))

    # 0.3 px noise on a 1-2 m cloud of 1000 points already limits accuracy to ~0.2 deg
    assert angle(robust) < 1.0 and np.linalg.norm(robust.t - cam.t) < 0.1
    assert angle(robust) < 0.5 * angle(plain)


def _check_sequences(seqs, cams, pos3d, exact: bool):
    keys = [(q.subject, q.action, q.camera_index) for q in seqs]
    expected = [(s, a, c) for s in SUBJECTS for a in sorted(pos3d[s]) for c in range(4)]
    assert keys == expected                        # S11 Directions skipped
    for q in seqs:
        world = pos3d[q.subject][q.action][:, list(H36M_17_OF_32)]
        t = len(world)
        assert q.keypoints_2d.shape == (t, 17, 2) and q.joints_3d_camera.shape == (t, 17, 3)
        assert q.fps == 50 and q.image_size == SIZES[q.camera_index]
        np.testing.assert_array_equal(q.joints_3d_camera[:, 0], 0.0)
        true = cams[q.subject][q.camera_index].world_to_camera(world)
        true = true - true[:, :1]
        np.testing.assert_allclose(q.joints_3d_camera, true, atol=1e-6 if exact else 2e-3)
        assert np.all(np.linalg.norm(q.joints_3d_camera, axis=-1) < 3.0)


def test_load_h36m_recovered_cameras(h36m_files):
    p3, p2, cams, pos3d = h36m_files
    pos2d, meta = load_positions_2d(p2)
    assert meta["num_joints"] == 17 and set(pos2d["S11"]) == set(ACTIONS)
    seqs = load_h36m(p3, p2)                       # cameras recovered by DLT + refinement
    _check_sequences(seqs, cams, pos3d, exact=False)
    for q in seqs:
        _assert_camera_close(q.camera, cams[q.subject][q.camera_index])
    assert recover_cameras(pos3d, pos2d, subjects=["S1"])["S1"][2].image_size == SIZES[2]
    train, test = split_h36m(seqs)
    assert {q.subject for q in train} == {"S1"} and {q.subject for q in test} == {"S11"}
    assert len(load_h36m(p3, p2, cameras=cams, subjects=["S11"])) == 4


def test_load_h36m_camera_json_round_trip(h36m_files, tmp_path: Path):
    p3, p2, cams, pos3d = h36m_files
    path = tmp_path / "cams.json"
    save_cameras_json(path, cams)
    raw = json.loads(path.read_text())
    assert set(raw["S1"][0]) >= {"R", "t", "fx", "fy", "cx", "cy", "width", "height"}
    back = load_cameras_json(path)
    np.testing.assert_allclose(back["S11"][3].R, cams["S11"][3].R)
    seqs = load_h36m(p3, p2, cameras=path)
    _check_sequences(seqs, cams, pos3d, exact=True)
    # dict-of-indices form is accepted too
    raw["S1"] = {str(i): c for i, c in enumerate(raw["S1"])}
    path.write_text(json.dumps(raw))
    assert len(load_cameras_json(path)["S1"]) == 4


def test_bad_inputs(h36m_files, tmp_path: Path):
    p3, p2, cams, _ = h36m_files
    with pytest.raises(UserError, match="not found"):
        load_h36m(tmp_path / "missing.npz", p2, cameras=cams)
    with pytest.raises(UserError, match="positions_3d"):
        load_h36m(p2, p2, cameras=cams)
    bad = tmp_path / "cams.json"
    bad.write_text(json.dumps({"S1": [{"R": [[1, 0, 0], [0, 1, 0], [0, 0, 2]], "t": [0, 0, 0],
                                       "fx": 1, "fy": 1, "cx": 0, "cy": 0, "width": 10, "height": 10}]}))
    with pytest.raises(UserError, match="rotation"):
        load_cameras_json(bad)
    bad.write_text(json.dumps({"S1": [{"R": np.eye(3).tolist()}]}))
    with pytest.raises(UserError, match="needs R, t"):
        load_cameras_json(bad)
    weird = tmp_path / "weird_2d.npz"
    np.savez(weird, positions_2d={"S1": {}}, metadata={"layout_name": "openpose", "num_joints": 18})
    with pytest.raises(UserError, match="layout"):
        load_h36m(p3, weird, cameras=cams)


def test_real_h36m_if_available():
    root = os.environ.get("VIDEO3D_H36M")
    if not root:
        pytest.skip("real Human3.6M files absent (set VIDEO3D_H36M to VideoPose3D's data/ directory)")
    p3, p2 = Path(root) / "data_3d_h36m.npz", Path(root) / "data_2d_h36m_gt.npz"
    if not (p3.is_file() and p2.is_file()):
        pytest.skip(f"{p3} or {p2} absent")
    seqs = load_h36m(p3, p2, subjects=["S9"])
    assert seqs and all(q.camera.reprojection_error < 1.0 for q in seqs)
