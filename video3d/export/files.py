"""Per-video data files: ``keypoints.npz``, ``keypoints.json``, ``keypoints_3d.csv``.

Key names are a contract other tools read (issue #3):
keypoints_2d (T,17,2) px, scores_2d (T,17), keypoints_3d_camera (T,17,3) m,
keypoints_3d_world (T,17,3) m, valid (T,), interpolated (T,), fps,
image_size (w,h), joint_names, parents, detector, lifter, weights_sha256,
gaps (a JSON string: list of {start, end, length, filled}), gap_summary;
root_translation (T,3) m, camera frame (pelvis position, issue #10; NaN where unknown).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from video3d import skeleton
from video3d.pose import PoseSequence


def metadata_arrays(seq: PoseSequence) -> dict[str, np.ndarray]:
    """The metadata keys keypoints.npz and people.npz share: fps, image_size, joint_names,
    parents, detector, lifter, weights_sha256."""
    return {
        "fps": np.float64(seq.fps),
        "image_size": np.asarray(seq.image_size, dtype=np.int64),
        "joint_names": np.asarray(skeleton.JOINT_NAMES),
        "parents": np.asarray(skeleton.PARENTS, dtype=np.int64),
        "detector": np.asarray(seq.detector),
        "lifter": np.asarray(seq.lifter),
        "weights_sha256": np.asarray(seq.weights_sha256),
    }


def pose_arrays(seq: PoseSequence) -> dict[str, np.ndarray]:
    """The npz payload of a lifted sequence."""
    if seq.keypoints_3d_camera is None or seq.keypoints_3d_world is None:
        raise ValueError("sequence has not been lifted yet")
    return {
        "keypoints_2d": seq.keypoints_2d.astype(np.float32),
        "scores_2d": seq.scores_2d.astype(np.float32),
        "keypoints_3d_camera": seq.keypoints_3d_camera.astype(np.float32),
        "keypoints_3d_world": seq.keypoints_3d_world.astype(np.float32),
        "valid": seq.valid.astype(bool),
        "interpolated": np.asarray(seq.interpolated, dtype=bool),
        **metadata_arrays(seq),
        "root_translation": (np.full((len(seq), 3), np.nan, np.float32) if seq.root_translation is None
                             else seq.root_translation.astype(np.float32)),
        "gaps": np.asarray(json.dumps(gap_records(seq.gaps))),
        "gap_summary": np.asarray(seq.gap_summary),
    }


def gap_records(gaps: list) -> list[dict]:
    """(start, end inclusive, length, filled) tuples -> JSON-ready dicts with those keys."""
    return [{"start": int(s), "end": int(e), "length": int(n), "filled": bool(f)} for s, e, n, f in gaps]


def _jsonable(a: np.ndarray):
    if a.dtype.kind == "f":
        return np.where(np.isfinite(a), np.round(a.astype(np.float64), 5), None).tolist() if a.ndim else float(a)
    return a.tolist()


def write_npz(path: Path, seq: PoseSequence) -> None:
    with open(path, "wb") as f:
        np.savez_compressed(f, **pose_arrays(seq))


def write_json(path: Path, seq: PoseSequence) -> None:
    """Same content as the npz; NaN (missing) becomes null."""
    data = {k: _jsonable(v) for k, v in pose_arrays(seq).items()}
    data["gaps"] = gap_records(seq.gaps)  # structured here, a JSON string in the npz
    path.write_text(json.dumps(data, separators=(",", ":")))


def write_csv(path: Path, seq: PoseSequence) -> None:
    """One row per frame and joint: frame, time_s, joint, x/y/z camera and world, 2D, score, valid."""
    arr = pose_arrays(seq)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "time_s", "joint_index", "joint", "x_cam", "y_cam", "z_cam",
                    "x_world", "y_world", "z_world", "u_px", "v_px", "score", "valid"])
        cam, world, kp, sc = arr["keypoints_3d_camera"], arr["keypoints_3d_world"], arr["keypoints_2d"], arr["scores_2d"]
        for t in range(len(cam)):
            for j, name in enumerate(skeleton.JOINT_NAMES):
                w.writerow([t, f"{t / seq.fps:.4f}", j, name,
                            *(f"{v:.5f}" if np.isfinite(v) else "" for v in (*cam[t, j], *world[t, j])),
                            *(f"{v:.2f}" if np.isfinite(v) else "" for v in kp[t, j]),
                            f"{sc[t, j]:.3f}", int(arr["valid"][t])])


def write_pose_files(out_dir: Path, seq: PoseSequence) -> list[Path]:
    """Write the three data files into ``out_dir`` (an atomic staging folder)."""
    paths = [out_dir / "keypoints.npz", out_dir / "keypoints.json", out_dir / "keypoints_3d.csv"]
    for path, write in zip(paths, (write_npz, write_json, write_csv)):
        try:
            write(path, seq)
        except OSError as e:  # disk full, quota...: name the file (the staging folder is then removed)
            raise OSError(e.errno, e.strerror or str(e), str(path)) from None
    return paths
