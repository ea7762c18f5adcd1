"""The `video3d lift` file contract.

Input ``.npz``: ``keypoints`` (T, J, 2) pixels, ``image_size`` (w, h), optional
``scores`` (T, J) and ``fps``; J and joint order given by ``--format``.
Output ``<out>/<stem>.npz``: ``keypoints_3d`` (T, 17, 3) metres, camera
frame, root-relative (pelvis = 0), ``lifter``, ``weights_sha256`` (plus
``keypoints_2d`` in H36M order, ``fps`` and ``image_size`` for convenience).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from video3d.errors import UserError
from video3d.io.atomic import atomic_write
from video3d.io.npz import image_size, positive_scalar, read_npz, require
from video3d.keypoints import FORMATS, NUM_JOINTS_BY_FORMAT, to_h36m


@dataclass
class LiftInput:
    path: Path
    keypoints: np.ndarray  # (T, 17, 2) H36M order, pixels
    scores: np.ndarray | None  # (T, 17)
    image_size: tuple[int, int]
    fps: float | None


def read_lift_input(path: str | Path, fmt: str = "h36m") -> LiftInput:
    """Read and validate a lift input file; every problem is one UserError line."""
    path = Path(path)
    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}; expected one of {', '.join(FORMATS)}")
    if not path.is_file():
        raise UserError(f"input not found: {path}")
    data = read_npz(path)
    for key in ("keypoints", "image_size"):
        require(data, key, path)
    kp = np.asarray(data["keypoints"])
    n = NUM_JOINTS_BY_FORMAT[fmt]
    if kp.ndim != 3 or kp.shape[1:] != (n, 2) or len(kp) == 0:
        raise UserError(f"{path}: 'keypoints' must have shape (T, {n}, 2) for --format {fmt}, got {kp.shape}")
    if kp.dtype.kind not in "iuf":
        raise UserError(f"{path}: 'keypoints' must be numeric, got {kp.dtype}")
    if not np.isfinite(kp).all():
        bad = np.flatnonzero(~np.isfinite(kp).all(axis=(1, 2)))
        raise UserError(f"{path}: 'keypoints' contain NaN/inf in {len(bad)} frame(s) (first: {bad[0]}); "
                        "interpolate or drop missing frames first")
    size = image_size(data, "image_size", path)
    scores = None
    if "scores" in data:
        scores = np.asarray(data["scores"])
        if scores.dtype.kind not in "iuf":
            raise UserError(f"{path}: 'scores' must be numeric, got {scores.dtype}")
        scores = scores.astype(np.float32)
        if scores.shape != kp.shape[:2]:
            raise UserError(f"{path}: 'scores' must have shape {kp.shape[:2]}, got {scores.shape}")
    fps = positive_scalar(data, "fps", path) if "fps" in data else None
    kp_h36m, scores_h36m = to_h36m(kp.astype(np.float32), scores, fmt)
    return LiftInput(path, kp_h36m, scores_h36m, size, fps)


def write_lift_output(out_dir: str | Path, inp: LiftInput, keypoints_3d: np.ndarray, lifter: str,
                      weights_sha256: str) -> Path:
    """Write ``<out_dir>/<stem>.npz`` atomically (temp name, then rename)."""
    out_dir = Path(out_dir)
    out = out_dir / f"{inp.path.stem}.npz"
    payload = {"keypoints_3d": keypoints_3d.astype(np.float32), "lifter": np.asarray(lifter),
               "weights_sha256": np.asarray(weights_sha256), "keypoints_2d": inp.keypoints.astype(np.float32),
               "image_size": np.asarray(inp.image_size, dtype=np.int64)}
    if inp.fps is not None:
        payload["fps"] = np.float64(inp.fps)
    with atomic_write(out, "wb") as f:
        np.savez(f, **payload)
    return out
