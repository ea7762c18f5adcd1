"""Two mannequins crossing paths in front of a static camera: a clip with known identities.

Person 0 walks left -> right near the camera, person 1 walks right -> left
further back, so they overlap in the image half-way (the near one occludes the
far one). Each walk is the procedural walk "straightened" onto a line: every
frame is moved into the body's own frame (pelvis at the origin, facing +x)
and placed on the line, so the gait is natural and the path straight.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from video3d.demo.make_demo import write_video
from video3d.demo.mannequin import Look, _background, render_frame
from video3d.demo.motion import Motion, procedural_motion
from video3d.geometry.camera import Camera, look_at, project, world_to_camera
from video3d.keypoints import coco_to_h36m


def _rot_z(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    R = np.zeros(np.shape(a) + (3, 3))
    R[..., 0, 0], R[..., 0, 1], R[..., 1, 0], R[..., 1, 1], R[..., 2, 2] = c, -s, s, c, 1.0
    return R


def straight_walk(num_frames: int, fps: float, start: tuple[float, float], end: tuple[float, float],
                  seed: int = 0) -> Motion:
    """A walk from ``start`` to ``end`` (world xy, metres) in ``num_frames`` frames (gait from the procedural walk)."""
    m = procedural_motion("walk", num_frames, fps, np.random.default_rng(seed))
    root = m.joints_h36m[:, 0].copy()
    root[:, 2] = 0.0
    u = np.linspace(0.0, 1.0, num_frames)[:, None]
    new_xy = np.asarray(start) * (1 - u) + np.asarray(end) * u
    new_root = np.concatenate([new_xy, np.zeros((num_frames, 1))], 1)
    d = np.asarray(end, float) - np.asarray(start, float)
    new_heading = np.full(num_frames, np.arctan2(d[1], d[0]))
    R = _rot_z(new_heading - m.heading)  # (T, 3, 3)

    def move(p: np.ndarray) -> np.ndarray:
        return np.einsum("tij,tkj->tki", R, p - root[:, None]) + new_root[:, None]

    coco = move(m.landmarks_coco)
    return replace(m, joints=move(m.joints), head_rotation=R @ m.head_rotation, heading=new_heading,
                   landmarks_coco=coco, joints_h36m=coco_to_h36m(coco)[0])


def crossing_scene(num_frames: int = 45, fps: float = 15.0, width: int = 640, height: int = 360
                   ) -> tuple[list[Motion], Camera]:
    """Two straight walks that cross in the image, and the camera filming them (fov 60 deg long side)."""
    a = straight_walk(num_frames, fps, (-1.6, -0.6), (1.6, 0.2), seed=1)
    b = straight_walk(num_frames, fps, (1.6, 0.6), (-1.6, 1.4), seed=2)
    eye, target = np.array([0.0, -4.5, 1.4]), np.array([0.0, 0.4, 0.9])
    R = look_at(eye, target)
    f = 0.5 * width / np.tan(np.radians(60.0) / 2)
    cam = Camera(R, -R @ eye, float(f), float(f), width / 2.0, height / 2.0, width, height)
    return [a, b], cam


def render_scene(motions: list[Motion], camera: Camera, supersample: int = 1):
    """Frames (H, W, 3) uint8 with every mannequin drawn, far ones first."""
    look = Look()
    bg, floor_xy, is_floor = _background(camera, look)
    for i in range(motions[0].num_frames):
        depth = [float(world_to_camera(m.joints_h36m[i, :1], camera.R, camera.t)[0, 2]) for m in motions]
        img = bg
        for k in np.argsort(depth)[::-1]:
            img = render_frame(motions[k], i, camera, supersample, look, (img.astype(np.float32), floor_xy, is_floor))
        yield img


def truth_2d(motions: list[Motion], camera: Camera) -> np.ndarray:
    """(P, T, 17, 2) H36M-17 pixel positions of each mannequin."""
    return np.stack([project(world_to_camera(m.joints_h36m, camera.R, camera.t), camera) for m in motions])


def make_crossing_clip(path: str | Path, num_frames: int = 45, fps: float = 15.0, width: int = 640,
                       height: int = 360) -> tuple[Path, list[Motion], Camera]:
    """Render the crossing scene to ``path``; returns (path, motions, camera)."""
    motions, cam = crossing_scene(num_frames, fps, width, height)
    video = write_video(path, render_scene(motions, cam), fps, width, height)
    return Path(video), motions, cam
