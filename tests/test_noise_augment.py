"""Tests for video3d.data.noise (detector-like 2D noise) and video3d.data.augment (3D motion)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tests.motions import standing_pose, walking_clip
from video3d.data import augment as A
from video3d.data.noise import (SWAP_PERMUTATIONS, DetectorNoiseConfig, detector_noise, noise_free,
                                person_scale, sample_noise_level)

QUIET = dict(outlier_rate=0.0, swap_rate=0.0, drop_rate=0.0)


def keypoints_2d(T: int = 243, height_px: float = 400.0) -> np.ndarray:
    """Clean COCO-17 2D keypoints (T, 17, 2): the walking pose seen obliquely, ~height_px tall."""
    x = walking_clip(T)
    scale = height_px / (x[0, :, 2].max() - x[0, :, 2].min())
    across = x[..., 1] - x[:, :1, 1] + 0.5 * x[..., 0]  # left and right joints do not coincide
    return np.stack([600 + scale * across, 900 - scale * x[..., 2]], axis=-1)


def seg_len(x: np.ndarray, a: int, b: int) -> np.ndarray:
    return np.linalg.norm(x[:, a] - x[:, b], axis=-1)


# ----------------------------------------------------------------------------- noise


def jitter_std(kp: np.ndarray, cfg: DetectorNoiseConfig, level: float = 1.0, n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    d = np.stack([detector_noise(kp, rng, cfg, level=level)[0] - kp for _ in range(n)])
    return d.std(axis=(0, 1, 3))  # per joint, pixels


def test_noise_std_scales_with_bbox_config_and_level():
    cfg = DetectorNoiseConfig(**QUIET, joint_std_spread=0.0)
    small, big = keypoints_2d(height_px=100.0), keypoints_2d(height_px=400.0)
    s_small = jitter_std(small, cfg)
    s_big = jitter_std(big, cfg)
    np.testing.assert_allclose(s_big / s_small, 4.0, rtol=0.25)
    expected = np.array(cfg.joint_std) * person_scale(big).mean()
    np.testing.assert_allclose(s_big, expected, rtol=0.25)
    assert s_big[9] > s_big[11] and s_big[15] > s_big[11], "wrists and ankles noisier than hips"
    double = DetectorNoiseConfig(**QUIET, joint_std_spread=0.0, joint_std=tuple(2 * v for v in cfg.joint_std))
    np.testing.assert_allclose(jitter_std(big, double) / s_big, 2.0, rtol=0.25)
    np.testing.assert_allclose(jitter_std(big, cfg, level=2.0) / s_big, 2.0, rtol=0.25)
    # An explicit bbox height overrides the measured person scale.
    rng = np.random.default_rng(3)
    d = np.stack([detector_noise(big, rng, cfg, bbox_height=100.0, level=1.0)[0] - big for _ in range(40)])
    np.testing.assert_allclose(d.std(axis=(0, 1, 3)), np.array(cfg.joint_std) * 100.0, rtol=0.25)


def lag1_autocorrelation(d: np.ndarray) -> float:
    """d: (N, T, J) -> mean lag-1 autocorrelation along T."""
    d = d - d.mean(axis=1, keepdims=True)
    return float((d[:, 1:] * d[:, :-1]).mean() / (d * d).mean())


def test_noise_is_temporally_correlated():
    kp = keypoints_2d()
    rng = np.random.default_rng(1)
    acs = {}
    for corr in (2.0, 10.0):
        cfg = DetectorNoiseConfig(**QUIET, white_fraction=0.0, bias_fraction=0.0, corr_frames=(corr, corr))
        d = np.stack([detector_noise(kp, rng, cfg, level=1.0)[0][..., 0] - kp[..., 0] for _ in range(20)])
        acs[corr] = lag1_autocorrelation(d)
    assert acs[2.0] > 0.5 and acs[10.0] > acs[2.0] + 0.2
    assert acs[2.0] == pytest.approx(math.exp(-1 / 2), abs=0.06)
    d = np.stack([detector_noise(kp, rng, DetectorNoiseConfig(**QUIET), level=1.0)[0][..., 1] - kp[..., 1]
                  for _ in range(20)])
    assert lag1_autocorrelation(d) > 0.5, "default noise is correlated too"


def test_outlier_rate_and_size():
    kp = keypoints_2d()
    s = person_scale(kp)[:, None]
    cfg = DetectorNoiseConfig(outlier_rate=0.02, swap_rate=0.0, drop_rate=0.0, joint_std=(0.0,) * 17)
    rng = np.random.default_rng(2)
    errs, scores = [], []
    for _ in range(30):
        noisy, sc = detector_noise(kp, rng, cfg, level=1.0)
        errs.append(np.linalg.norm(noisy - kp, axis=-1) / s)
        scores.append(sc)
    e, sc = np.stack(errs), np.stack(scores)
    jumped = e > 1e-9
    assert jumped.mean() == pytest.approx(0.02, rel=0.25)
    assert e[jumped].min() >= 0.1 - 1e-9 and e[jumped].max() <= 0.3 + 1e-9
    assert sc[jumped].max() < 0.5 < sc[~jumped].min()
    # Events last 1-5 frames: a jumped joint is often jumped in the next frame too.
    assert (jumped[:, 1:] & jumped[:, :-1]).sum() > 0.3 * jumped.sum()
    # Rates scale with the level.
    e3 = [np.linalg.norm(detector_noise(kp, rng, cfg, level=2.0)[0] - kp, axis=-1) > 0 for _ in range(30)]
    assert np.mean(e3) == pytest.approx(0.04, rel=0.25)


def test_swap_rate_and_swapped_labels():
    kp = keypoints_2d()
    cfg = DetectorNoiseConfig(outlier_rate=0.0, swap_rate=0.05, drop_rate=0.0, joint_std=(0.0,) * 17)
    rng = np.random.default_rng(3)
    frames = 0
    seen = set()
    for _ in range(40):
        noisy, _ = detector_noise(kp, rng, cfg, level=1.0)
        changed = np.abs(noisy - kp).max(axis=(1, 2)) > 1e-9
        frames += changed.sum()
        for t in np.flatnonzero(changed):
            match = [k for k, perm in enumerate(SWAP_PERMUTATIONS) if np.allclose(noisy[t], kp[t][list(perm)])]
            assert match, "a changed frame is exactly one of the left/right swaps"
            seen.add(match[0])
    assert frames / (40 * len(kp)) == pytest.approx(0.05, rel=0.3)
    assert seen == {0, 1, 2}


def test_dropped_joints_have_low_scores():
    kp = keypoints_2d()
    cfg = DetectorNoiseConfig(outlier_rate=0.0, swap_rate=0.0, drop_rate=0.03, joint_std=(0.0,) * 17)
    rng = np.random.default_rng(4)
    low = []
    for _ in range(30):
        noisy, sc = detector_noise(kp, rng, cfg, level=1.0)
        dropped = sc <= 0.1
        low.append(dropped.mean())
        moved = np.abs(noisy - kp).max(axis=-1) > 1e-9
        assert not (moved & ~dropped).any(), "only dropped joints move when everything else is off"
        assert np.isfinite(noisy).all()
    assert np.mean(low) == pytest.approx(0.03, rel=0.3)


def test_scores_fall_with_noise():
    kp = keypoints_2d()
    s = person_scale(kp)[:, None]
    rng = np.random.default_rng(5)
    errs, scores = [], []
    for level in (0.5, 1.0, 2.0, 3.0):
        for _ in range(5):
            noisy, sc = detector_noise(kp, rng, level=level)
            errs.append(np.linalg.norm(noisy - kp, axis=-1) / s)
            scores.append(sc)
    e, sc = np.concatenate(errs).ravel(), np.concatenate(scores).ravel()
    assert sc.dtype == np.float32 and sc.min() >= 0.0 and sc.max() <= 1.0
    lo, hi = np.quantile(e, [0.2, 0.8])
    assert sc[e <= lo].mean() > 0.8
    assert sc[e >= hi].mean() < sc[e <= lo].mean() - 0.1
    assert np.corrcoef(e, sc)[0, 1] < -0.3


def test_noise_levels_clean_moderate_heavy():
    rng = np.random.default_rng(6)
    levels = np.array([sample_noise_level(rng) for _ in range(4000)])
    cfg = DetectorNoiseConfig()
    assert np.mean(levels == 0) == pytest.approx(cfg.clean_prob, abs=0.02)
    assert np.mean(levels > 1.5) == pytest.approx(cfg.heavy_prob, abs=0.02)
    assert np.mean((levels >= 0.5) & (levels <= 1.5)) > 0.7
    kp = keypoints_2d(50)
    noisy, sc = detector_noise(kp, rng, level=0.0)
    np.testing.assert_array_equal(noisy, kp)
    assert sc.min() >= 0.75
    same, ones = noise_free(kp)
    np.testing.assert_array_equal(same, kp)
    assert ones.shape == (50, 17) and (ones == 1).all()


def test_noise_single_frame_nan_outside_and_seed():
    kp = keypoints_2d(1)
    rng = np.random.default_rng(7)
    noisy, sc = detector_noise(kp, rng)
    assert noisy.shape == (1, 17, 2) and sc.shape == (1, 17)
    kp = keypoints_2d(60)
    kp[10, 3] = np.nan
    noisy, sc = detector_noise(kp, rng, level=2.0)
    assert np.isnan(noisy[10, 3]).all() and sc[10, 3] == 0
    assert np.isfinite(np.delete(noisy.reshape(-1, 2), 10 * 17 + 3, axis=0)).all()
    _, sc_in = detector_noise(keypoints_2d(60), np.random.default_rng(8), level=0.0)
    _, sc_out = detector_noise(keypoints_2d(60), np.random.default_rng(8), level=0.0, image_size=(2000, 700))
    below = keypoints_2d(60)[..., 1] >= 700
    assert below.any() and (sc_out[below] <= 0.5 * sc_in[below] + 1e-6).all()
    np.testing.assert_array_equal(sc_out[~below], sc_in[~below])
    a = detector_noise(kp, np.random.default_rng(9))
    b = detector_noise(kp, np.random.default_rng(9))
    np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(ValueError):
        detector_noise(kp[..., :1], rng)


# ----------------------------------------------------------------------------- augment


def test_mirror_world_twice_is_identity_and_swaps_sides():
    x = walking_clip(30)
    m = A.mirror_world(x)
    np.testing.assert_array_equal(A.mirror_world(m), x)
    # The mirrored person's left shoulder is the original right shoulder, reflected.
    np.testing.assert_allclose(m[:, 5], x[:, 6] * [-1, 1, 1])
    np.testing.assert_allclose(m[:, 15], x[:, 16] * [-1, 1, 1])
    np.testing.assert_allclose(m[:, 0], x[:, 0] * [-1, 1, 1])
    # Facing +y, the left shoulder is at -x; mirrored, it still is (the body is not turned around).
    assert (m[:, 5, 0] < m[:, 6, 0]).all()
    np.testing.assert_allclose(seg_len(m, 5, 7), seg_len(x, 6, 8))


def test_scale_segments_exact_factors():
    x = walking_clip(40)
    factors = {"thigh_left": 1.2, "thigh_right": 0.9, "shin_left": 1.1, "upper_arm_right": 0.8,
               "forearm_left": 1.3, "torso": 1.1, "pelvis": 1.25, "shoulders": 0.9, "neck": 1.5}
    g = 1.1
    y = A.scale_segments(x, factors, global_scale=g)
    for name, a, b in [("thigh_left", 11, 13), ("thigh_right", 12, 14), ("shin_left", 13, 15), ("shin_right", 14, 16),
                       ("upper_arm_right", 6, 8), ("upper_arm_left", 5, 7), ("forearm_left", 7, 9)]:
        np.testing.assert_allclose(seg_len(y, a, b) / seg_len(x, a, b), g * factors.get(name, 1.0), rtol=1e-9)
    np.testing.assert_allclose(seg_len(y, 11, 12) / seg_len(x, 11, 12), g * 1.25)
    np.testing.assert_allclose(seg_len(y, 5, 6) / seg_len(x, 5, 6), g * 0.9)
    mid = lambda p, a, b: 0.5 * (p[:, a] + p[:, b])  # noqa: E731
    torso = lambda p: np.linalg.norm(mid(p, 5, 6) - mid(p, 11, 12), axis=-1)  # noqa: E731
    np.testing.assert_allclose(torso(y) / torso(x), g * 1.1)
    # Head landmarks move rigidly (only the global scale changes their spacing).
    np.testing.assert_allclose(seg_len(y, 3, 4) / seg_len(x, 3, 4), g)
    # Segment directions (joint angles) are unchanged.
    d = lambda p, a, b: (p[:, b] - p[:, a]) / seg_len(p, a, b)[:, None]  # noqa: E731
    np.testing.assert_allclose(d(y, 13, 15), d(x, 13, 15), atol=1e-12)
    # Feet stay on the floor.
    assert y[..., 2].min() == pytest.approx(x[..., 2].min(), abs=0.01)
    with pytest.raises(ValueError):
        A.scale_segments(x, {"tail": 2.0})


def test_scale_bones_keeps_symmetry_and_height_range():
    x = walking_clip(20)
    rng = np.random.default_rng(10)
    f = A.sample_bone_factors(rng)
    assert set(f) == set(A.SEGMENTS)
    for _ in range(50):
        y = A.scale_bones(x, rng, sigma=0.05, asymmetry=0.01)
        left, right = seg_len(y, 11, 13) / seg_len(x, 11, 13), seg_len(y, 12, 14) / seg_len(x, 12, 14)
        assert abs(left[0] / right[0] - 1) < 0.06
        ratio = seg_len(y, 3, 4)[0] / seg_len(x, 3, 4)[0]  # head spacing = the global scale
        assert 0.85 - 1e-9 <= ratio <= 1.15 + 1e-9
        assert np.isfinite(y).all() and y.shape == x.shape
    spread = [A.sample_bone_factors(rng, 0.05, 0.0)["shin_left"] for _ in range(500)]
    assert np.std(np.log(spread)) == pytest.approx(0.05, rel=0.2)


def test_recombine_keeps_legs_of_a_and_arms_of_b():
    a = walking_clip(60)
    b = np.repeat(standing_pose()[None], 60, axis=0)
    b[:, 7:11:2, 2] = [1.70, 1.95]  # left arm raised
    b[:, 8:11:2, 0] += [0.25, 0.5]  # right arm out sideways
    b = A.rotate_z(b, 1.0) + [3.0, 2.0, 0.0]
    out = A.recombine_parts(a, b, np.random.default_rng(0), twist_std_deg=0.0)
    np.testing.assert_array_equal(out[:, A.LOWER_BODY], a[:, A.LOWER_BODY])
    # b's arm geometry: lengths and elbow angles.
    for s, e, w in [(5, 7, 9), (6, 8, 10)]:
        np.testing.assert_allclose(seg_len(out, s, e), seg_len(b, s, e), rtol=1e-9)
        np.testing.assert_allclose(seg_len(out, e, w), seg_len(b, e, w), rtol=1e-9)
        np.testing.assert_allclose(seg_len(out, s, w), seg_len(b, s, w), rtol=1e-9)
    assert (out[:, 9, 2] > out[:, 5, 2] + 0.4).all(), "the raised arm stays raised"
    # Plausible torso: a's pelvis, upright, shoulders parallel to a's hips as in b.
    hips = a[:, 11] - a[:, 12]
    shoulders = out[:, 5] - out[:, 6]
    cos = np.sum(hips * shoulders, -1) / np.linalg.norm(hips, axis=-1) / np.linalg.norm(shoulders, axis=-1)
    assert (cos > 0.999).all()
    top = 0.5 * (out[:, 5] + out[:, 6]) - 0.5 * (out[:, 11] + out[:, 12])
    np.testing.assert_allclose(top[:, :2], 0.0, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(top, axis=-1), 0.47, atol=1e-9)
    # Twist is random but small; different lengths are an error.
    twisted = A.recombine_parts(a, b, np.random.default_rng(1), twist_std_deg=10.0)
    sh = twisted[:, 5] - twisted[:, 6]
    cos = np.sum(hips * sh, -1) / np.linalg.norm(hips, axis=-1) / np.linalg.norm(sh, axis=-1)
    assert (cos > math.cos(math.radians(26))).all()
    with pytest.raises(ValueError):
        A.recombine_parts(a, b[:10], np.random.default_rng(0))


def test_recombine_scales_upper_body_to_a_torso():
    a = walking_clip(10)
    b = A.scale_segments(np.repeat(standing_pose()[None], 10, axis=0), {"torso": 1.2})
    out = A.recombine_parts(a, b, np.random.default_rng(0), twist_std_deg=0.0)
    torso = np.linalg.norm(0.5 * (out[:, 5] + out[:, 6]) - 0.5 * (out[:, 11] + out[:, 12]), axis=-1)
    np.testing.assert_allclose(torso, 0.47, rtol=1e-9)


def test_change_speed():
    x = walking_clip(243)
    assert A.change_speed(x, 2.0).shape == (122, 17, 3)
    assert A.change_speed(x, 0.5).shape == (486, 17, 3)
    assert A.change_speed(x[:1], 2.0).shape == (1, 17, 3)
    np.testing.assert_array_equal(A.change_speed(x, 1.0), x)
    slow = A.change_speed(x, 0.5)
    np.testing.assert_allclose(slow[::2][:242], x[:242])
    np.testing.assert_allclose(slow[1:484:2], 0.5 * (x[:-1] + x[1:])[:242])
    np.testing.assert_allclose(A.change_speed(x, 2.0)[:121], x[:242:2])
    with pytest.raises(ValueError):
        A.change_speed(x, 0.0)


def test_random_rotation_z_is_rigid_about_the_pelvis():
    x = walking_clip(30)
    y = A.random_rotation_z(x, np.random.default_rng(11))
    np.testing.assert_allclose(y[..., 2], x[..., 2])
    np.testing.assert_allclose(np.linalg.norm(y[:, 0] - y[:, 15], axis=-1), np.linalg.norm(x[:, 0] - x[:, 15], axis=-1))
    pelvis = lambda p: (0.5 * (p[:, 11] + p[:, 12]))[:, :2].mean(axis=0)  # noqa: E731
    np.testing.assert_allclose(pelvis(y), pelvis(x), atol=1e-12)
    np.testing.assert_allclose(A.rotate_z(x, 2 * math.pi), x, atol=1e-12)


@pytest.mark.parametrize("n,length", [(600, 243), (100, 243), (30, 1)])
def test_augment_clip_window_shapes(n, length):
    clip = walking_clip(n)
    cfg = A.AugmentConfig(speed_prob=1.0, recombine_prob=1.0, mirror_prob=0.5, bone_scale_prob=1.0)
    rng = np.random.default_rng(12)
    for _ in range(5):
        w = A.augment_clip_window(clip, rng, cfg, length=length, partner=walking_clip(80))
        assert w.shape == (length, 17, 3) and np.isfinite(w).all()


def test_augment_clip_window_identity_config_takes_a_window():
    clip = walking_clip(300)
    cfg = A.AugmentConfig(speed_prob=0.0, recombine_prob=0.0, mirror_prob=0.0, bone_scale_prob=0.0, rotate_prob=0.0)
    w = A.augment_clip_window(clip, np.random.default_rng(13), cfg, length=243)
    start = int(np.argmin(np.abs(clip[:, 0, 1] - w[0, 0, 1])))
    np.testing.assert_array_equal(w, clip[start:start + 243])
    a = A.augment_clip_window(clip, np.random.default_rng(14), length=243, partner=clip)
    b = A.augment_clip_window(clip, np.random.default_rng(14), length=243, partner=clip)
    np.testing.assert_array_equal(a, b)
