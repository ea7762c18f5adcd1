"""Tests for video3d.geometry.camera and video3d.data.virtual_camera: projection, transforms, look-at, random cameras."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tests.motions import standing_pose, walking_clip
from video3d.data.virtual_camera import CameraConfig, random_camera
from video3d.geometry.camera import Camera, camera_to_world, look_at, project, world_to_camera


def simple_camera(**kw) -> Camera:
    args = dict(R=np.eye(3), t=np.zeros(3), fx=1000.0, fy=800.0, cx=640.0, cy=360.0, width=1280, height=720)
    args.update(kw)
    return Camera(**args)


def test_project_known_points():
    cam = simple_camera()
    pts = np.array([[0.5, -0.2, 2.0], [0.0, 0.0, 5.0], [-1.0, 0.6, 4.0]])
    expected = np.array([[1000 * 0.25 + 640, 800 * -0.1 + 360],   # (890, 280)
                         [640.0, 360.0],
                         [1000 * -0.25 + 640, 800 * 0.15 + 360]])  # (390, 480)
    np.testing.assert_allclose(project(pts, cam), expected)
    np.testing.assert_allclose(cam.K, [[1000, 0, 640], [0, 800, 360], [0, 0, 1]])


def test_project_behind_camera_is_nan_and_shapes_broadcast():
    cam = simple_camera()
    pts = np.array([[[1.0, 1.0, -1.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]])  # (1, 3, 3)
    uv = project(pts, cam)
    assert uv.shape == (1, 3, 2)
    assert np.isnan(uv[0, :2]).all()
    np.testing.assert_allclose(uv[0, 2], [640, 360])


def test_world_camera_round_trip():
    rng = np.random.default_rng(0)
    R = look_at(np.array([3.0, -4.0, 1.5]), np.array([0.2, 0.1, 0.9]), roll=0.1)
    t = np.array([0.3, -0.2, 5.0])
    pts = rng.normal(size=(7, 17, 3))
    pc = world_to_camera(pts, R, t)
    assert pc.shape == pts.shape
    np.testing.assert_allclose(camera_to_world(pc, R, t), pts, atol=1e-12)
    np.testing.assert_allclose(pc[0, 0], R @ pts[0, 0] + t)


def test_camera_center():
    eye = np.array([1.0, -5.0, 1.6])
    R = look_at(eye, np.zeros(3))
    cam = simple_camera(R=R, t=-R @ eye)
    np.testing.assert_allclose(cam.center, eye, atol=1e-12)
    np.testing.assert_allclose(world_to_camera(eye, cam.R, cam.t), 0.0, atol=1e-12)


@pytest.mark.parametrize("roll", [0.0, 0.2])
def test_look_at_is_a_rotation_aiming_at_target(roll):
    eye, target = np.array([2.0, -6.0, 1.8]), np.array([0.5, 0.3, 1.0])
    R = look_at(eye, target, roll=roll)
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    cam = simple_camera(R=R, t=-R @ eye)
    np.testing.assert_allclose(project(world_to_camera(target, R, cam.t), cam), [cam.cx, cam.cy], atol=1e-9)


def test_look_at_up_is_up_and_right_is_right():
    eye, target = np.array([0.0, -5.0, 1.0]), np.array([0.0, 0.0, 1.0])  # looking along +y
    R = look_at(eye, target)
    cam = simple_camera(R=R, t=-R @ eye)
    above = project(world_to_camera(np.array([0.0, 0.0, 1.5]), R, cam.t), cam)
    right = project(world_to_camera(np.array([0.5, 0.0, 1.0]), R, cam.t), cam)  # +x is the viewer's right
    assert above[1] < cam.cy and above[0] == pytest.approx(cam.cx)
    assert right[0] > cam.cx and right[1] == pytest.approx(cam.cy)


def test_look_at_roll_turns_image_clockwise():
    eye, target = np.array([0.0, -5.0, 1.0]), np.array([0.0, 0.0, 1.0])
    roll = math.radians(10)
    R = look_at(eye, target, roll=roll)
    cam = simple_camera(R=R, t=-R @ eye, fy=1000.0)
    uv = project(world_to_camera(np.array([0.5, 0.0, 1.0]), R, cam.t), cam) - [cam.cx, cam.cy]
    assert math.atan2(uv[1], uv[0]) == pytest.approx(roll)


def test_look_at_straight_down_is_finite():
    R = look_at(np.array([0.0, 0.0, 3.0]), np.zeros(3))
    assert np.isfinite(R).all()
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(R[2], [0, 0, -1], atol=1e-12)
    with pytest.raises(ValueError):
        look_at(np.ones(3), np.ones(3))


def _draws(points: np.ndarray, n: int, seed: int, config: CameraConfig | None = None):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        cam = random_camera(rng, points, config)
        pc = world_to_camera(points, cam.R, cam.t)
        yield cam, pc, project(pc, cam)


def _inside(cam: Camera, uv: np.ndarray) -> np.ndarray:
    return (uv[..., 0] >= 0) & (uv[..., 0] < cam.width) & (uv[..., 1] >= 0) & (uv[..., 1] < cam.height)


@pytest.mark.parametrize("clip", ["walking", "standing"])
def test_random_camera_keeps_subject_in_frame(clip):
    points = walking_clip() if clip == "walking" else standing_pose()[None]
    floor = points[..., 2].min()
    inside, fully, sizes = [], 0, set()
    for cam, pc, uv in _draws(points, 300, seed=1):
        assert pc[..., 2].min() > 0.25, "every joint in front of the camera"
        assert floor + 0.3 - 1e-9 <= cam.center[2] <= floor + 2.5 + 1e-9, "camera above the floor"
        assert cam.fx == cam.fy
        assert np.isfinite(uv).all()
        ins = _inside(cam, uv)
        inside.append(ins.mean())
        fully += ins.all()
        sizes.add((cam.width, cam.height))
    assert np.mean(inside) > 0.95
    assert fully / 300 > 0.85
    assert any(h > w for w, h in sizes), "portrait sizes are drawn"
    assert any(w > h for w, h in sizes) and any(w == h for w, h in sizes)


def test_random_camera_fill_fov_and_placement():
    points = standing_pose()[None]
    fills, centres, fovs, upright = [], [], [], []
    for cam, _, uv in _draws(points, 400, seed=2):
        fills.append((uv[0, :, 1].max() - uv[0, :, 1].min()) / cam.height)
        centres.append(uv[0, :, 0].mean() / cam.width)
        fovs.append(math.degrees(2 * math.atan(0.5 * max(cam.width, cam.height) / cam.fx)))
        upright.append(uv[0, 0, 1] < uv[0, 15, 1])  # nose above the ankle in the image
        assert abs(cam.cx - cam.width / 2) < 0.05 * cam.width and abs(cam.cy - cam.height / 2) < 0.05 * cam.height
    fills, fovs = np.array(fills), np.array(fovs)
    assert np.mean((fills > 0.2) & (fills < 0.95)) > 0.8
    assert 0.4 < np.median(fills) < 0.7
    assert np.all((fovs > 15 - 1e-6) & (fovs < 90 + 1e-6))
    assert np.mean((fovs >= 40) & (fovs <= 90)) > 0.8
    assert np.std(centres) > 0.05, "the subject is not always centred"
    assert np.mean(upright) > 0.99


def test_random_camera_is_reproducible_and_validates():
    points = walking_clip(50)
    a = random_camera(np.random.default_rng(5), points)
    b = random_camera(np.random.default_rng(5), points)
    np.testing.assert_array_equal(a.R, b.R)
    assert (a.fx, a.width) == (b.fx, b.width)
    with pytest.raises(ValueError):
        random_camera(np.random.default_rng(0), points[0])


def test_random_camera_config_ranges_are_used():
    cfg = CameraConfig(image_sizes=((720, 1280),), image_size_weights=(1.0,), tele_prob=0.0,
                       fov_long_deg=(60.0, 60.0), height_m=(1.0, 1.0), roll_std_deg=0.0)
    points = standing_pose()[None]
    for cam, _, _ in _draws(points, 20, seed=3, config=cfg):
        assert (cam.width, cam.height) == (720, 1280)
        assert cam.fx == pytest.approx(640 / math.tan(math.radians(30)))
        assert cam.center[2] == pytest.approx(points[..., 2].min() + 1.0)
