"""Triangulation: undistortion inverse, exact DLT, confidence and outlier handling."""
from __future__ import annotations

import numpy as np
import pytest

from tests.test_calibration import ring_cameras
from video3d.geometry.triangulation import triangulate, undistort_points


@pytest.fixture(scope="module")
def cams():
    return [c.camera for c in ring_cameras()]


@pytest.fixture(scope="module")
def points():
    rng = np.random.default_rng(0)
    return rng.uniform([-0.6, -0.6, 0.0], [0.6, 0.6, 1.9], (30, 17, 3))  # frames x joints


def test_undistort_inverts_projection(cams, points):
    cam = cams[0]
    pc = cam.world_to_camera(points)
    pix = cam.project(points)
    np.testing.assert_allclose(undistort_points(pix, cam), pc[..., :2] / pc[..., 2:], atol=1e-10)


def test_exact_points_triangulate_sub_millimetre(cams, points):
    obs = np.stack([c.project(points) for c in cams])  # (4, 30, 17, 2)
    tri = triangulate(obs, None, cams)
    assert tri.points.shape == (30, 17, 3) and tri.errors.shape == (4, 30, 17) and tri.used.shape == (4, 30, 17)
    assert np.abs(tri.points - points).max() < 1e-6  # far below a millimetre
    assert np.nanmax(tri.errors) < 1e-5 and tri.used.all()


def test_low_confidence_and_outlier_views_are_dropped(cams, points):
    obs = np.stack([c.project(points) for c in cams])
    rng = np.random.default_rng(2)
    obs = obs + rng.normal(0.0, 1.0, obs.shape)  # 1 px detector noise
    scores = np.full(obs.shape[:-1], 0.9)
    scores[0, :, 3] = 0.05          # view 0 unsure of joint 3: ignored
    obs[0, :, 3] += 300.0           # ... and wrong
    obs[2, :, 5] += [80.0, -60.0]   # view 2 confidently wrong on joint 5: dropped by reprojection
    obs[1, 4, :] = np.nan           # view 1 missing frame 4
    tri = triangulate(obs, scores, cams, min_score=0.3, max_error_px=15.0)
    assert not tri.used[0, :, 3].any()
    assert not tri.used[2, :, 5].any()
    assert not tri.used[1, 4].any()
    err_mm = 1000 * np.linalg.norm(tri.points - points, axis=-1)
    assert np.median(err_mm) < 3.0 and err_mm.max() < 15.0
    assert np.nanmedian(tri.errors[tri.used]) < 2.0


def test_fewer_than_two_views_is_nan(cams, points):
    obs = np.stack([c.project(points) for c in cams])
    scores = np.zeros(obs.shape[:-1])
    scores[0] = 1.0  # only one confident view
    tri = triangulate(obs, scores, cams)
    assert np.isnan(tri.points).all() and not tri.used.any()
    with pytest.raises(ValueError, match="points must be"):
        triangulate(obs[:3], None, cams)
