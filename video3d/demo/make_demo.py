"""Make the bundled demo video and ground-truth clips for end-to-end tests.

``python -m video3d.demo.make_demo [OUT.mp4]`` regenerates
demo_videos/demo_walk.mp4 (1280x720, 30 fps, 8 s): the mannequin of
:mod:`video3d.demo.mannequin` performing the 'demo' motion of
:mod:`video3d.demo.motion` (a turning walk, a stop, arm raises), filmed by a
static virtual camera. :func:`render_ground_truth_clip` renders any motion
kind and returns the 3D/2D truth with it.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterable, Iterator

import imageio_ffmpeg
import numpy as np

from video3d.io.atomic import partial_path
from video3d.geometry.camera import Camera, look_at, project, world_to_camera
from video3d.demo.mannequin import render_mannequin
from video3d.demo.motion import J, Body, Motion, MotionKind, procedural_motion
from video3d.keypoints import blazepose_to_coco

#: Default output of :func:`main`, relative to the repository root.
DEMO_PATH = Path(__file__).resolve().parents[2] / "demo_videos" / "demo_walk.mp4"


def framing_points(motion: Motion) -> np.ndarray:
    """Points that must stay in view: joints plus head top and soles, (T, 23, 3)."""
    s = motion.body.thigh / Body().thigh
    top = motion.joints[:, J["head"]] + np.array([0.0, 0.0, 0.13 * s])
    soles = motion.joints[:, [J["left_toe"], J["right_toe"]]].copy()
    soles[..., 2] = 0.0
    return np.concatenate([motion.joints, top[:, None], soles], axis=1)


def frame_camera(motion: Motion, width: int, height: int, azimuth: float, eye_height: float = 1.35,
                 fov_long_deg: float = 55.0, margin: float = 0.06) -> Camera:
    """The closest static camera at ``azimuth`` that keeps the whole motion in view.

    The camera stands at ``eye_height`` metres, on the side of the motion's
    centre given by ``azimuth`` (radians, world xy; the person faces the
    camera when its heading equals ``azimuth``), and looks at the centre of
    the motion's bounding box. Its distance is the smallest that keeps every
    frame's :func:`framing_points` ``margin`` (fraction of the image size)
    inside the image. fx = fy from the long-side field of view.
    """
    pts = framing_points(motion).reshape(-1, 3)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    target = np.array([0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), 0.5 * (lo[2] + hi[2])])
    f = 0.5 * max(width, height) / np.tan(np.radians(fov_long_deg) / 2.0)
    cam = Camera(np.eye(3), np.zeros(3), float(f), float(f), width / 2.0, height / 2.0, int(width), int(height))
    direction = np.array([np.cos(azimuth), np.sin(azimuth), 0.0])

    def place(dist: float) -> bool:
        eye = target + dist * direction
        eye[2] = eye_height
        cam.R = look_at(eye, target)
        cam.t = -cam.R @ eye
        pc = world_to_camera(pts, cam.R, cam.t)
        if pc[:, 2].min() < 0.5:
            return False
        uv = project(pc, cam)
        return bool(uv[:, 0].min() >= margin * width and uv[:, 0].max() <= (1 - margin) * width
                    and uv[:, 1].min() >= margin * height and uv[:, 1].max() <= (1 - margin) * height)

    near, far = 0.5, 4.0
    while not place(far):
        near, far = far, far * 2.0
        if far > 1e3:
            raise ValueError("frame_camera: cannot fit the motion in view")
    for _ in range(40):
        mid = 0.5 * (near + far)
        near, far = (near, mid) if place(mid) else (mid, far)
    place(far)
    return cam


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float, width: int, height: int,
                crf: int = 23) -> Path:
    """Encode RGB frames (H, W, 3) uint8 as H.264 yuv420p mp4; written to a temp name, then renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = partial_path(path if path.suffix else path.with_suffix(".mp4"))
    writer = imageio_ffmpeg.write_frames(
        str(tmp), (width, height), fps=fps, codec="libx264", pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
        quality=None, macro_block_size=1, output_params=["-crf", str(crf), "-preset", "slow",
                                                         "-movflags", "+faststart"])
    writer.send(None)
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame, dtype=np.uint8))
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    writer.close()
    os.replace(tmp, path)
    return path


def demo_camera(motion: Motion, width: int, height: int, rng: np.random.Generator | None = None) -> Camera:
    """The camera used for a motion: in front of its last heading, rotated a little to one side."""
    offset = np.radians(25.0) if rng is None else rng.uniform(-1.0, 1.0) * np.radians(40.0)
    if motion.kind == "walk":
        offset = np.radians(80.0) if rng is None else rng.uniform(-np.pi, np.pi)
    return frame_camera(motion, width, height, float(motion.heading[-1]) + offset)


def ground_truth(motion: Motion, camera: Camera) -> dict:
    """The truth of a rendered motion.

    Returns joints_h36m_world (T, 17, 3), joints_h36m_camera (T, 17, 3),
    landmarks_coco_world (T, 17, 3), landmarks_coco_2d (T, 17, 2) pixels,
    camera, fps and the motion itself.
    """
    R, t = camera.R, camera.t
    return {
        "joints_h36m_world": motion.joints_h36m.copy(),
        "joints_h36m_camera": world_to_camera(motion.joints_h36m, R, t),
        "landmarks_coco_world": motion.landmarks_coco.copy(),
        "landmarks_coco_2d": project(world_to_camera(motion.landmarks_coco, R, t), camera),
        "camera": camera,
        "fps": motion.fps,
        "motion": motion,
    }


def render_ground_truth_clip(path: str | Path, kind: MotionKind, num_frames: int, width: int = 640,
                             height: int = 480, fps: float = 30.0, seed: int | None = 0,
                             portrait: bool = False, supersample: int = 2) -> tuple[Path, dict]:
    """Render a known motion to an mp4 and return (video path, truth).

    kind: motion kind ('walk' | 'arm_raise' | 'squat' | 'demo'); seed None
    gives the canonical motion and camera, an int a random variant of both.
    portrait: use the image size with its long side vertical. truth: see
    :func:`ground_truth` (camera-frame joints are in the OpenCV frame, metres).
    """
    if portrait and width > height or not portrait and height > width:
        width, height = height, width
    rng = None if seed is None else np.random.default_rng(seed)
    motion = procedural_motion(kind, num_frames, fps, rng)
    camera = demo_camera(motion, width, height, rng)
    video = write_video(path, render_mannequin(motion, camera, supersample), fps, width, height)
    return video, ground_truth(motion, camera)


def demo_scene(width: int = 1280, height: int = 720, fps: float = 30.0, seconds: float = 8.0,
               seed: int | None = 0) -> tuple[Motion, Camera]:
    """The motion and camera of the demo video (seed None: canonical motion and camera)."""
    rng = None if seed is None else np.random.default_rng(seed)
    motion = procedural_motion("demo", int(round(seconds * fps)), fps, rng)
    return motion, demo_camera(motion, width, height, rng)


def make_demo_video(path: str | Path = DEMO_PATH, width: int = 1280, height: int = 720, fps: float = 30.0,
                    seconds: float = 8.0, seed: int | None = 0) -> Path:
    """Write the demo video (the 'demo' motion) and return its path.

    seed 0 is the bundled video; None is the canonical (unrandomised) motion.
    """
    motion, camera = demo_scene(width, height, fps, seconds, seed)
    return write_video(path, render_mannequin(motion, camera), fps, width, height, crf=18)


def read_video(path: str | Path) -> Iterator[np.ndarray]:
    """Decode an mp4 to RGB frames (H, W, 3) uint8."""
    reader = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    meta = next(reader)
    width, height = meta["size"]
    for buf in reader:
        yield np.frombuffer(buf, np.uint8).reshape(height, width, 3)


def blazepose_agreement(frames: Iterable[np.ndarray], landmarks_coco_2d: np.ndarray,
                        model_complexity: int = 1) -> dict:
    """Run BlazePose (tracking mode) over frames and compare with the true COCO landmarks.

    frames: RGB (H, W, 3) uint8, one per row of ``landmarks_coco_2d`` (T, 17, 2)
    pixels. BlazePose landmarks are mapped with
    :func:`video3d.keypoints.blazepose_to_coco`. Returns detection_rate (0-1),
    median_px and median_rel (2D error / per-frame height of the true landmark
    box) over all joints of the detected frames, and per_frame_px (T,) median
    error per frame (NaN where nothing was detected).
    """
    import mediapipe as mp

    truth = np.asarray(landmarks_coco_2d, np.float64)
    per_frame = np.full(truth.shape[0], np.nan)
    errors, rel = [], []
    with mp.solutions.pose.Pose(static_image_mode=False, model_complexity=model_complexity) as pose:
        for i, frame in enumerate(frames):
            result = pose.process(np.ascontiguousarray(frame))
            if result.pose_landmarks is None:
                continue
            h, w = frame.shape[:2]
            lm = np.array([[p.x * w, p.y * h] for p in result.pose_landmarks.landmark])
            coco, _ = blazepose_to_coco(lm)
            err = np.linalg.norm(coco - truth[i], axis=-1)
            per_frame[i] = np.median(err)
            errors.append(err)
            rel.append(err / max(np.ptp(truth[i, :, 1]), 1.0))
    found = np.isfinite(per_frame)
    return {
        "detection_rate": float(found.mean()),
        "median_px": float(np.median(errors)) if errors else float("nan"),
        "median_rel": float(np.median(rel)) if rel else float("nan"),
        "per_frame_px": per_frame,
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m video3d.demo.make_demo [OUT.mp4] [--check]``: write the demo; --check measures BlazePose on it."""
    args = sys.argv[1:] if argv is None else argv
    check = "--check" in args
    paths = [a for a in args if a != "--check"]
    out = make_demo_video(paths[0] if paths else DEMO_PATH)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    if check:
        motion, camera = demo_scene()
        truth = ground_truth(motion, camera)["landmarks_coco_2d"]
        res = blazepose_agreement(read_video(out), truth)
        print(f"BlazePose: detected in {100 * res['detection_rate']:.1f}% of frames, median 2D error "
              f"{res['median_px']:.1f} px = {100 * res['median_rel']:.2f}% of the landmark box height")


if __name__ == "__main__":
    main()
