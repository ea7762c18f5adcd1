"""Calibration readers: toml round trip, malformed files, toml vs Qualisys agreement."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from video3d.errors import UserError
from video3d.geometry.calibration import NamedCamera, read_calibration, read_qca, read_toml, write_toml
from video3d.geometry.camera import CalibratedCamera, look_at

CALIB = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "multicam" / "calibration"


def ring_cameras(n: int = 4, radius: float = 3.5) -> list[NamedCamera]:
    """n cameras on a circle around the origin at 1.8 m height, looking at (0, 0, 1)."""
    cams = []
    for i in range(n):
        a = 2 * np.pi * i / n + 0.3
        eye = np.array([radius * np.cos(a), radius * np.sin(a), 1.8 + 0.1 * i])
        R = look_at(eye, np.array([0.0, 0.0, 1.0]))
        cams.append(NamedCamera(f"cam{i + 1:02d}", CalibratedCamera(
            R=R, t=-R @ eye, fx=1600.0 + 10 * i, fy=1601.0 + 10 * i, cx=540.0 + i, cy=960.0 - i,
            width=1088, height=1920, k=(-0.04, 0.13), p=(6e-4, -5e-4))))
    return cams


def test_toml_round_trip(tmp_path):
    cams = ring_cameras()
    path = tmp_path / "Calib.toml"
    write_toml(path, cams)
    back = read_calibration(path)
    assert [c.name for c in back] == [c.name for c in cams]
    pts = np.random.default_rng(0).uniform([-1, -1, 0], [1, 1, 2], (50, 3))
    for a, b in zip(cams, back):
        np.testing.assert_allclose(b.camera.R, a.camera.R, atol=1e-12)
        np.testing.assert_allclose(b.camera.t, a.camera.t, atol=1e-12)
        assert (b.camera.width, b.camera.height) == (1088, 1920)
        assert b.camera.k == a.camera.k and b.camera.p == a.camera.p
        np.testing.assert_allclose(b.camera.project(pts), a.camera.project(pts), atol=1e-9)


@pytest.mark.parametrize("text, match", [
    ("[cam1\nname=", "not valid TOML"),
    ("[metadata]\nerror = 0.0\n", "no camera tables"),
    ('[cam1]\nmatrix = [[1,0,0],[0,1,0],[0,0,1]]\nsize = [10, 10]\nrotation = [0, 0]\ntranslation = [0,0,0]\n',
     r"camera \[cam1\]: rotation must be 3"),
    ('[cam1]\nmatrix = [[1,0,0],[0,1,0],[0,0,1]]\nsize = [10, 10]\nrotation = [0, 0, 0]\n',
     "missing key 'translation'"),
])
def test_malformed_toml_is_one_line_user_error(tmp_path, text, match):
    path = tmp_path / "Calib.toml"
    path.write_text(text)
    with pytest.raises(UserError, match=match) as e:
        read_toml(path)
    assert "\n" not in str(e.value)


def test_malformed_qca_and_missing_files(tmp_path):
    bad = tmp_path / "Calib.qca.txt"
    bad.write_text("<calibration><cameras><camera serial='c1'><transform x='1'/></camera></cameras></calibration>")
    with pytest.raises(UserError, match="camera 'c1'"):
        read_qca(bad)
    bad.write_text("<calibration><cameras>")
    with pytest.raises(UserError, match="not valid XML"):
        read_qca(bad)
    with pytest.raises(UserError, match="cannot read calibration"):
        read_toml(tmp_path / "absent.toml")
    with pytest.raises(UserError, match="unknown calibration format"):
        read_calibration(tmp_path / "calib.json")


@pytest.fixture(scope="module")
def shared_calibrations():
    toml, qca = CALIB / "Calib.toml", CALIB / "Calib.qca.txt"
    if not (toml.is_file() and qca.is_file()):
        pytest.skip(f"shared multicam calibration not available: {CALIB}")
    return read_toml(toml), read_qca(qca)


def test_shared_toml_and_qca_give_the_same_cameras(shared_calibrations):
    toml, qca = shared_calibrations
    assert [c.name for c in toml] == [c.name for c in qca] == ["cam01", "cam02", "cam03", "cam04"]
    rng = np.random.default_rng(1)
    pts = rng.uniform([-1.0, -1.0, 0.0], [1.0, 1.0, 1.8], (200, 3))  # a capture volume near the origin
    for a, b in zip(toml, qca):
        A, B = a.camera, b.camera
        np.testing.assert_allclose(B.R, A.R, atol=1e-6)
        np.testing.assert_allclose(B.center, A.center, atol=1e-3)  # < 1 mm
        assert (B.width, B.height) == (A.width, A.height) == (1088, 1920)
        for name in ("fx", "fy", "cx", "cy"):
            assert getattr(B, name) == pytest.approx(getattr(A, name), abs=1e-3)
        # Pose2Sim's converter divided the distortion by 64 as well: the only difference.
        np.testing.assert_allclose(np.array(B.k) / 64.0, A.k, rtol=1e-3)
        np.testing.assert_allclose(np.array(B.p) / 64.0, A.p, rtol=0.02, atol=1e-7)
        pinhole_a = CalibratedCamera(R=A.R, t=A.t, fx=A.fx, fy=A.fy, cx=A.cx, cy=A.cy, width=A.width, height=A.height)
        pinhole_b = CalibratedCamera(R=B.R, t=B.t, fx=B.fx, fy=B.fy, cx=B.cx, cy=B.cy, width=B.width, height=B.height)
        assert np.abs(pinhole_a.project(pts) - pinhole_b.project(pts)).max() < 0.05  # pixels
