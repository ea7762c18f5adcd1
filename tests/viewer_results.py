"""Result folders for the viewer tests, built directly from synthetic arrays (no pipeline run)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from video3d.lift.world import CAMERA_TO_WORLD


def walk_world(num_frames: int, fps: float = 30.0) -> np.ndarray:
    """(T, 17, 3) H36M-17 world poses of the procedural walk (metres, z up, moving)."""
    from video3d.demo.motion import procedural_motion

    period = min(num_frames, 300)
    base = procedural_motion("walk", period, fps=fps).joints_h36m.astype(np.float32)
    reps = -(-num_frames // period)
    step = base[-1, 0, :2] - base[0, 0, :2]
    tiles = [base + np.array([*(step * r), 0], np.float32) for r in range(reps)]
    return np.concatenate(tiles)[:num_frames]


def root_relative(world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split moving world poses into video3d's root-relative world poses and a camera-frame root_translation.

    Returns (poses (T, 17, 3) with the pelvis at x = y = 0, root_translation (T, 3)).
    """
    rel = world.copy()
    rel[..., :2] -= world[:, :1, :2]
    root_world = world[:, 0].copy()
    root_world[:, 1] += 4.0  # 4 m in front of the camera
    return rel, (root_world @ CAMERA_TO_WORLD).astype(np.float32)  # world = cam @ C.T  =>  cam = world @ C


def make_result(folder: Path, num_frames: int = 40, fps: float = 30.0, invalid=(), trajectory: bool = True,
                people: int = 0, cameras: int = 0, seed: int = 0) -> dict:
    """Write ``folder/keypoints.npz`` (and ``people.npz`` when people > 0); return the truth.

    Truth keys: 'placed' (T,17,3) where the page should draw person 0, 'valid' (T,).
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    world = walk_world(num_frames, fps)
    rel, root = root_relative(world)
    valid = np.ones(num_frames, bool)
    valid[list(invalid)] = False
    scores = np.clip(rng.uniform(0.5, 1.0, (num_frames, 17)), 0, 1).astype(np.float32)
    scores[~valid] = 0.0
    data = {"keypoints_3d_world": rel, "keypoints_3d_camera": rel @ CAMERA_TO_WORLD.astype(np.float32),
            "keypoints_2d": rng.uniform(0, 320, (num_frames, 17, 2)).astype(np.float32),
            "scores_2d": scores, "valid": valid, "fps": np.float64(fps),
            "image_size": np.array([320, 240]), "detector": np.asarray("synthetic"), "lifter": np.asarray("none")}
    if trajectory:
        data["root_translation"] = root
    if cameras:
        angles = np.linspace(0, 2 * np.pi, cameras, endpoint=False)
        rs, ts = [], []
        for a in angles:
            centre = np.array([4 * np.cos(a), 4 * np.sin(a), 1.5])
            fwd = -centre / np.linalg.norm(centre)
            right = np.cross(fwd, [0, 0, 1.0])
            right /= np.linalg.norm(right)
            down = np.cross(fwd, right)
            r = np.stack([right, down, fwd])
            rs.append(r)
            ts.append(-r @ centre)
        data.update(camera_R=np.array(rs), camera_t=np.array(ts), views=np.array([f"cam{i + 1}" for i in range(cameras)]))
    np.savez_compressed(folder / "keypoints.npz", **data)
    placed = rel + (world[:, :1, :] - world[:1, :1, :]) * np.array([1, 1, 0], np.float32) if trajectory else rel
    truth = {"placed": placed, "valid": valid}
    if people:
        pw = np.stack([rel] * people)
        pv = np.ones((people, num_frames), bool)
        pv[0] = valid
        np.savez_compressed(folder / "people.npz", track_ids=np.arange(1, people + 1), keypoints_3d_world=pw,
                            valid=pv, scores_2d=np.repeat(scores[None], people, 0),
                            root_translation=np.stack([root + np.array([1.2 * p, 0, 0], np.float32)
                                                       for p in range(people)]))
        truth["people_placed"] = np.stack([placed + np.array([1.2 * p, 0, 0], np.float32) for p in range(people)])
    return truth


def frame_number_video(path: Path, num_frames: int, fps: float = 30.0, size=(320, 240)) -> Path:
    """An H.264 clip whose frame t is filled with grey level 4 * t (frame number readable from pixels)."""
    from tests.videos import write_frames

    frames = [np.full((size[1], size[0], 3), min(255, 4 * t), np.uint8) for t in range(num_frames)]
    return write_frames(path, frames, fps)
