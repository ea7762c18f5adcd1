"""The demo mannequin: procedural motion, renderer, video writer and BlazePose on it."""
from __future__ import annotations

import numpy as np
import pytest

from video3d.geometry.camera import project, world_to_camera
from video3d.demo.make_demo import (blazepose_agreement, demo_camera, frame_camera, framing_points,
                                    read_video, render_ground_truth_clip)
from video3d.demo.mannequin import (SHIRT, TROUSERS, BELT, Look, intersect_round_cone, render_frame,
                                    render_mannequin, round_cone_normal)
from video3d.demo.motion import J, KINDS, MANNEQUIN_PARENTS, procedural_motion
from video3d.keypoints import coco_to_h36m
from video3d.skeleton import MEAN_BONE_LENGTH_M, bone_lengths, BONES


@pytest.fixture(scope="module")
def motions():
    """Every kind, canonical and randomised, 90 frames at 30 fps."""
    out = {}
    for kind in KINDS:
        out[kind, None] = procedural_motion(kind, 90, 30.0)
        out[kind, 7] = procedural_motion(kind, 90, 30.0, np.random.default_rng(7))
    return out


def _sole_heights(m) -> np.ndarray:
    """Lowest point of each shoe per frame (toe tip or heel), (T, 2)."""
    toes = m.joints[:, [J["left_toe"], J["right_toe"]], 2]
    heels = m.joints[:, [J["left_ankle"], J["right_ankle"]], 2] - m.body.ankle_height
    return np.minimum(toes, heels)


def test_proportions_match_h36m():
    m = procedural_motion("walk", 60, 30.0)
    lengths = bone_lengths(m.joints_h36m).mean(axis=0)
    for (_, child), length in zip(BONES, lengths):
        ref = MEAN_BONE_LENGTH_M[child]
        if child in (2, 3, 5, 6, 11, 12, 13, 14, 15, 16):  # limbs and shoulders: H36M means
            assert length == pytest.approx(ref, rel=0.02), child
        elif child in (1, 4, 7, 8):  # hips (anatomical, narrower than H36M) and spine
            assert length == pytest.approx(ref, rel=0.25), child
    top = m.joints[:, J["head"], 2].max() + 0.12
    assert 1.68 < top < 1.82


def test_bone_lengths_are_constant(motions):
    for (kind, seed), m in motions.items():
        j = m.joints
        lengths = np.stack([np.linalg.norm(j[:, c] - j[:, p], axis=-1)
                            for c, p in enumerate(MANNEQUIN_PARENTS) if p >= 0], axis=-1)
        assert np.ptp(lengths, axis=0).max() < 1e-9, (kind, seed)
        assert np.isfinite(m.landmarks_coco).all()


def test_feet_touch_the_floor(motions):
    for (kind, seed), m in motions.items():
        lowest = _sole_heights(m).min(axis=1)
        assert lowest.min() == pytest.approx(0.0, abs=0.003), (kind, seed)
        assert lowest.max() < 0.005, (kind, seed)  # never airborne


def test_walk_turns_and_plants_feet(motions):
    for seed in (None, 7):
        m = motions["walk", seed]
        assert np.ptp(np.unwrap(m.heading)) > np.radians(60)  # the path turns: several views
        speed = np.linalg.norm(np.diff(m.joints[:, 0, :2], axis=0), axis=-1).mean() * m.fps
        assert 0.9 < speed < 1.5
        toes = m.joints[:, [J["left_toe"], J["right_toe"]], :2]
        slide = np.linalg.norm(np.diff(toes, axis=0), axis=-1).min(axis=1) * m.fps
        assert np.median(slide) < 0.02  # a planted foot does not skate
        knee = m.joints[:, [J["left_knee"], J["right_knee"]]]
        hip = m.joints[:, [J["left_hip"], J["right_hip"]]]
        ankle = m.joints[:, [J["left_ankle"], J["right_ankle"]]]
        a, b = hip - knee, ankle - knee
        cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        flexion = 180.0 - np.degrees(np.arccos(np.clip(cos, -1, 1)))
        assert flexion.max() > 40.0  # swing-phase knee flexion


def test_arm_raise_goes_over_the_head(motions):
    m = motions["arm_raise", None]
    head = m.joints[:, J["head"], 2]
    wrists = m.joints[:, [J["left_wrist"], J["right_wrist"]], 2]
    assert (wrists.min(axis=1) > head + 0.1).any()


def test_landmarks_and_h36m(motions):
    m = motions["demo", 7]
    np.testing.assert_allclose(m.joints_h36m, coco_to_h36m(m.landmarks_coco)[0])
    forward = m.head_rotation[:, :, 0]
    nose_dir = m.landmarks_coco[:, 0] - m.joints[:, J["head"]]
    assert (np.sum(forward * nose_dir, -1) > 0.08).all()


def test_round_cone_intersection():
    rd = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    t = intersect_round_cone(rd[:3], np.array([0.0, 0.0, 3.0]), np.array([0.0, 0.0, 3.0]), 0.5, 0.5)
    assert t[0] == pytest.approx(2.5) and np.isinf(t[1:]).all()
    pa, pb = np.array([-1.0, 0.0, 4.0]), np.array([1.0, 0.0, 4.0])  # capsule across the view
    t = intersect_round_cone(rd[3:], pa, pb, 0.3, 0.2)
    assert 3.7 < t[0] < 3.8
    n = round_cone_normal(rd[3:] * t[0], pa, pb, 0.3, 0.2)
    assert n[0, 2] < -0.99


@pytest.fixture(scope="module")
def walk_scene():
    m = procedural_motion("walk", 30, 30.0)
    return m, demo_camera(m, 640, 480)


def test_camera_keeps_the_motion_in_view(walk_scene):
    m, cam = walk_scene
    uv = project(world_to_camera(framing_points(m), cam.R, cam.t), cam)
    assert (uv >= 0).all() and (uv[..., 0] <= cam.width).all() and (uv[..., 1] <= cam.height).all()
    wide = frame_camera(m, 480, 640, azimuth=1.0)
    assert (wide.width, wide.height) == (480, 640)


def test_renderer_is_deterministic_and_draws_where_projected(walk_scene):
    m, cam = walk_scene
    a = render_frame(m, 5, cam)
    b = next(iter(render_mannequin(m, cam)))
    assert a.shape == (480, 640, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, render_frame(m, 5, cam))
    np.testing.assert_array_equal(b, render_frame(m, 0, cam))
    look = Look()
    body_colors = np.array([look.colors[k] for k in (SHIRT, TROUSERS, BELT)], np.float64)
    bg = np.array(look.wall + look.floor, np.float64).reshape(2, 3)
    uv = project(world_to_camera(m.joints[5], cam.R, cam.t), cam)
    for name in ("pelvis", "spine", "chest"):
        x, y = uv[J[name]].astype(int)
        px = a[y, x].astype(np.float64)
        # A shaded body colour: close in hue to shirt/trousers, far from the backdrop.
        hue = px / max(px.sum(), 1.0)
        assert np.min(np.abs(body_colors / body_colors.sum(1, keepdims=True) - hue).sum(1)) < 0.12, name
        assert np.min(np.abs(bg - px).sum(1)) > 60, name
    corner = a[:8, :8].reshape(-1, 3).astype(np.float64)
    assert np.abs(corner - np.array(look.wall)).max() < 20  # plain background away from the figure


def test_ground_truth_clip_writes_a_playable_mp4(tmp_path):
    path, truth = render_ground_truth_clip(tmp_path / "clip.mp4", "arm_raise", 6, width=320, height=240,
                                           seed=3, portrait=True, supersample=1)
    frames = list(read_video(path))
    assert len(frames) == 6 and frames[0].shape == (320, 240, 3)
    cam = truth["camera"]
    assert (cam.width, cam.height) == (240, 320)
    assert truth["joints_h36m_world"].shape == truth["joints_h36m_camera"].shape == (6, 17, 3)
    assert truth["landmarks_coco_2d"].shape == (6, 17, 2)
    np.testing.assert_allclose(truth["joints_h36m_camera"],
                               world_to_camera(truth["joints_h36m_world"], cam.R, cam.t))
    assert not list(tmp_path.glob(".*partial*"))


@pytest.mark.slow
def test_blazepose_detects_the_mannequin(walk_scene):
    """Measured on this clip: 100 % detected, median error 5.3 px = 1.6 % of the landmark box height."""
    m, cam = walk_scene
    truth = project(world_to_camera(m.landmarks_coco, cam.R, cam.t), cam)
    res = blazepose_agreement(render_mannequin(m, cam), truth)
    assert res["detection_rate"] >= 0.9
    assert res["median_px"] < 10.0
    assert res["median_rel"] < 0.03
