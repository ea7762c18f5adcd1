"""Root trajectory from root-relative 3D + 2D under perspective (video3d.lift.trajectory)."""
from __future__ import annotations

import numpy as np
import pytest

from video3d.lift.trajectory import focal_from_fov, root_trajectory, smooth_trajectory, solve_root_translation


def _pose(rng, T):
    base = rng.normal(0, 0.25, (17, 3))
    base[0] = 0
    return base[None] + rng.normal(0, 0.02, (T, 17, 3)) * (np.arange(17) > 0)[None, :, None]


def _project(P, f, c):
    return f * P[..., :2] / P[..., 2:3] + np.asarray(c)


def test_focal_from_fov():
    assert focal_from_fov((1920, 1080), 90.0) == pytest.approx(960.0)
    assert focal_from_fov((1080, 1920), 90.0) == pytest.approx(960.0)  # long side
    with pytest.raises(ValueError):
        focal_from_fov((640, 480), 0.0)


def test_exact_translation_recovered():
    rng = np.random.default_rng(0)
    T = 20
    pose = _pose(rng, T)
    truth = np.stack([np.linspace(-1, 1, T), np.full(T, 0.3), np.linspace(3, 8, T)], 1)
    f, c = 1000.0, (640.0, 360.0)
    kp = _project(pose + truth[:, None], f, c)
    t = solve_root_translation(pose, kp, f, c)
    np.testing.assert_allclose(t, truth, atol=1e-6)


def test_noise_and_missing_joints():
    rng = np.random.default_rng(1)
    T = 60
    pose = _pose(rng, T)
    truth = np.stack([np.zeros(T), np.full(T, 0.2), np.full(T, 5.0)], 1)
    f, c = 900.0, (480.0, 270.0)
    kp = _project(pose + truth[:, None], f, c) + rng.normal(0, 2.0, (T, 17, 2))
    kp[::3, :8] = np.nan  # half the joints missing every third frame
    valid = np.ones(T, bool)
    valid[10] = False
    t = root_trajectory(pose, kp, (960, 540), fps=30.0, focal=f, center=c, valid=valid)
    assert np.isnan(t[10]).all() and np.isfinite(t[np.arange(T) != 10]).all()
    err = np.linalg.norm(t - truth, axis=1)
    assert np.nanmedian(err) < 0.02 * 5.0


def test_unsolvable_frames_are_nan():
    pose = np.zeros((3, 17, 3))
    kp = np.full((3, 17, 2), np.nan)
    kp[1, :3] = [[100, 100], [110, 120], [90, 130]]
    pose[1, :3] = [[0, 0, 0], [0.1, 0.2, 0], [-0.1, 0.3, 0]]
    t = solve_root_translation(pose, kp, 500.0, (100.0, 100.0))
    assert np.isnan(t[0]).all() and np.isnan(t[2]).all() and np.isfinite(t[1]).all()


def test_smoothing_removes_spike_and_keeps_nan():
    x = np.zeros((30, 3))
    x[:, 2] = 4.0
    x[15, 2] = 9.0
    x[5] = np.nan
    s = smooth_trajectory(x, fps=30.0)
    assert np.isnan(s[5]).all()
    assert abs(s[15, 2] - 4.0) < 0.1
