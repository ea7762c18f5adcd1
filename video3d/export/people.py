"""``--person all`` data files: ``people.npz``, ``people.json``, ``people_3d.csv`` and one BVH per person.

``people.npz`` keys (issue #10), P people, T frames:
track_ids (P,) int64, keypoints_2d (P,T,17,2) px, scores_2d (P,T,17),
keypoints_3d_camera (P,T,17,3) m root-relative, keypoints_3d_world (P,T,17,3) m,
root_translation (P,T,3) m camera frame, valid (P,T) bool, plus the metadata
keys of ``keypoints.npz``: fps, image_size, joint_names, parents, detector,
lifter, weights_sha256.

World frame of ``people.npz`` (unlike the single-person ``keypoints.npz``,
where every frame is centred on the pelvis): everyone shares one frame, so the
people stand where their trajectories put them. It is the camera frame turned
to z up (:data:`video3d.lift.world.CAMERA_TO_WORLD` plus the clip's up
correction, estimated from all people), origin on the floor below the camera:
x to the camera's right, y away from the camera, and the floor (z = 0) at the
lowest joint of all people over the clip (robust 2nd percentile).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from video3d import skeleton
from video3d.export.files import _jsonable, metadata_arrays
from video3d.lift.world import CAMERA_TO_WORLD, estimate_up_correction
from video3d.pose import PoseSequence


def shared_world(seqs: Sequence[PoseSequence]) -> np.ndarray:
    """(P, T, 17, 3) everyone's poses placed by ``root_translation`` in one z-up world frame (see module doc)."""
    return placed_world([s.keypoints_3d_camera for s in seqs], [s.root_translation for s in seqs])


def placed_world(cameras: Sequence[np.ndarray], roots: Sequence[np.ndarray | None]) -> np.ndarray:
    """:func:`shared_world` from arrays: root-relative camera-frame poses (T, 17, 3) and their
    ``root_translation`` (T, 3) (None: no trajectory, NaN) per person -> (P, T, 17, 3)."""
    cam = np.stack([c + (np.nan if r is None else np.asarray(r)[:, None]) for c, r in zip(cameras, roots)]
                   ).astype(np.float64)
    world = cam @ CAMERA_TO_WORLD.T
    rel = np.concatenate(list(cameras)) @ CAMERA_TO_WORLD.T
    world = world @ estimate_up_correction(rel).T
    z = world[..., 2][np.isfinite(world[..., 2])]
    if len(z):
        world[..., 2] -= np.percentile(z, 2)
    return world.astype(np.float32)


def people_arrays(seqs: Sequence[PoseSequence]) -> dict[str, np.ndarray]:
    """The people.npz payload of lifted sequences (one per identity, same length)."""
    if not seqs:
        raise ValueError("no people to export")
    for s in seqs:
        if s.keypoints_3d_camera is None:
            raise ValueError("sequence has not been lifted yet")
    first = seqs[0]
    t = len(first)
    root = np.stack([np.full((t, 3), np.nan) if s.root_translation is None else s.root_translation for s in seqs])
    return {
        "track_ids": np.asarray([int(s.track_id if s.track_id >= 0 else i) for i, s in enumerate(seqs)], np.int64),
        "keypoints_2d": np.stack([s.keypoints_2d for s in seqs]).astype(np.float32),
        "scores_2d": np.stack([s.scores_2d for s in seqs]).astype(np.float32),
        "keypoints_3d_camera": np.stack([s.keypoints_3d_camera for s in seqs]).astype(np.float32),
        "keypoints_3d_world": shared_world(seqs),
        "root_translation": root.astype(np.float32),
        "valid": np.stack([s.valid for s in seqs]).astype(bool),
        **metadata_arrays(first),
    }


def write_people_files(out_dir: Path, seqs: Sequence[PoseSequence], bvh: bool = False) -> list[Path]:
    """Write people.npz / people.json / people_3d.csv (and skeleton_<id>.bvh) into ``out_dir``."""
    arr = people_arrays(seqs)
    paths = [out_dir / "people.npz", out_dir / "people.json", out_dir / "people_3d.csv"]
    with open(paths[0], "wb") as f:
        np.savez_compressed(f, **arr)
    paths[1].write_text(json.dumps({k: _jsonable(v) for k, v in arr.items()}, separators=(",", ":")))
    with open(paths[2], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["track_id", "frame", "time_s", "joint", "x_cam", "y_cam", "z_cam", "x_world", "y_world", "z_world",
                    "u_px", "v_px", "score", "valid"])
        cam = arr["keypoints_3d_camera"] + arr["root_translation"][:, :, None]
        for p, tid in enumerate(arr["track_ids"]):
            for t in np.nonzero(arr["valid"][p])[0]:
                for j, name in enumerate(skeleton.JOINT_NAMES):
                    w.writerow([int(tid), int(t), f"{t / float(arr['fps']):.4f}", name,
                                *(f"{v:.5f}" if np.isfinite(v) else "" for v in (*cam[p, t, j],
                                                                                 *arr["keypoints_3d_world"][p, t, j])),
                                *(f"{v:.2f}" if np.isfinite(v) else "" for v in arr["keypoints_2d"][p, t, j]),
                                f"{arr['scores_2d'][p, t, j]:.3f}", 1])
    if bvh:
        from video3d.export.bvh import export_bvh
        for p, tid in enumerate(arr["track_ids"]):
            world = np.where(arr["valid"][p][:, None, None], arr["keypoints_3d_world"][p], np.nan)
            if np.isfinite(world).all(axis=(1, 2)).any():
                path = out_dir / f"skeleton_{int(tid)}.bvh"
                export_bvh(path, world, float(arr["fps"]))
                paths.append(path)
    return paths
