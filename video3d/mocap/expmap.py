"""CMU motions stored as exponential maps (the "CMU 8-action" set) and their FK.

One frame per line, comma-separated: the root position (3 numbers) then one
exponential-map rotation (3 numbers) per joint of the skeleton in
``cmu-expmap-skeleton.json`` (38 joints: 117 numbers). The skeleton holds no
offsets in the motion files: ``parent`` (0-based, -1 root) and
``offset_asf_units`` (CMU ASF length units, 1 unit = 0.05644 m).

Forward kinematics follows its authors' code, with row vectors:
``R_i = expmap(r_i) @ R_parent`` and ``p_i = offset_i @ R_parent + p_parent``;
joint i's rotation is ``a[3 + 3i : 6 + 3i]``. The root position is
``(a[0], a[1], a[2])`` in the same (y-up) frame: the order ``(a[2], a[1], a[0])``
found in some notes moves the walker sideways (root velocity 1.26 m/s across
its facing direction, stance foot sliding at 1.6 m/s on ``walking_1``), while
``(a[0], a[1], a[2])`` moves it forward with a still stance foot (0.16 m/s). The result is in the ASF frame, **y up** (legs along
-y, the person faces +z in the rest pose, left is +x). The authors then
reorder the axes to (x, z, y), a reflection; video3d instead applies its usual
proper rotation y-up -> z-up (:func:`video3d.mocap.landmarks.y_up_to_z_up`),
which keeps the person's left on the left.

The skeleton has a zero-length thorax (the arms and neck attach at the end of
the upper back) and a zero-length wrist bone (the hand hangs at the end of the
radius), like the raw CMU BVH conversions; :func:`repair_skeleton` re-inserts
both (docs/mocap.md).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

#: Joint indices (0-based) in ``cmu-expmap-skeleton.json``, checked on the data:
#: hips/knees/ankles are the distal ends of the ASF hipjoint/femur/tibia bones,
#: shoulders/elbows the ends of clavicle/humerus, 23/32 the end of the radius,
#: 15 the end of the upper back, 16 the zero-length thorax, 18/19 the ends of
#: the upper neck and head bones.
JOINTS = {
    "left_hip": 2, "left_knee": 3, "left_ankle": 4, "left_toe": 5,
    "right_hip": 8, "right_knee": 9, "right_ankle": 10, "right_toe": 11,
    "upperback_end": 15, "thorax": 16, "upperneck_end": 18, "head_end": 19,
    "left_clavicle_pivot": 20, "left_shoulder": 21, "left_elbow": 22, "left_radius_end": 23,
    "left_hand_pivot": 24,
    "right_clavicle_pivot": 29, "right_shoulder": 30, "right_elbow": 31, "right_radius_end": 32,
    "right_hand_pivot": 33,
}


@dataclass(frozen=True)
class ExpmapSkeleton:
    """parents: J parent indices (-1 root); offsets: (J, 3) ASF units; names: J guessed names."""

    parents: tuple[int, ...]
    offsets: np.ndarray
    names: tuple[str, ...]
    metres_per_unit: float = 0.05644

    @property
    def num_joints(self) -> int:
        return len(self.parents)


def read_skeleton(path: str | PathLike) -> ExpmapSkeleton:
    """Read ``cmu-expmap-skeleton.json``. Raises ValueError when malformed."""
    try:
        d = json.loads(Path(path).read_text())
        parents = tuple(int(p) for p in d["parent"])
        offsets = np.asarray(d["offset_asf_units"], dtype=np.float64)
        names = tuple(d.get("joint_names_guessed_from_structure", [f"j{i}" for i in range(len(parents))]))
        unit = float(d.get("asf_unit_m", 0.05644))
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not an expmap skeleton ({e})") from e
    if offsets.shape != (len(parents), 3) or any(p >= i for i, p in enumerate(parents)):
        raise ValueError(f"{path}: expected parents before children and (J, 3) offsets")
    return ExpmapSkeleton(parents, offsets, names, unit)


def repair_skeleton(sk: ExpmapSkeleton) -> ExpmapSkeleton:
    """Re-insert the thorax and wrist bones the skeleton drops.

    Thorax: joints 16 (neck chain) and 20/29 (clavicles) sit at the end of the
    upper back with zero offsets; they get the upper-back offset (joint 15),
    as :func:`video3d.mocap.landmarks.repair_cmu_bvh` does (thorax/upper-back
    length ratio 1.01-1.04 in CMU ASF files). Wrists: the hand pivot (24/33)
    gets half the radius offset (wrist/radius = 0.50 in every CMU ASF; radius
    3.36 units here vs 3.48 in ASF 01, hand 0.66 vs 0.72). Returns a new skeleton.
    """
    off = sk.offsets.copy()
    j = JOINTS
    if np.allclose(off[j["thorax"]], 0):
        for k in ("thorax", "left_clavicle_pivot", "right_clavicle_pivot"):
            off[j[k]] = sk.offsets[j["upperback_end"]]
    for side in ("left", "right"):
        if np.allclose(off[j[f"{side}_hand_pivot"]], 0):
            off[j[f"{side}_hand_pivot"]] = 0.5 * sk.offsets[j[f"{side}_radius_end"]]
    return ExpmapSkeleton(sk.parents, off, sk.names, sk.metres_per_unit)


def read_expmap(path: str | PathLike, num_joints: int = 38) -> np.ndarray:
    """Read one motion file: (F, 3 + 3 * num_joints) float64. Raises ValueError when malformed."""
    try:
        a = np.loadtxt(path, delimiter=",", dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot read expmap motion ({e})") from e
    if a.shape[1] != 3 + 3 * num_joints or len(a) == 0:
        raise ValueError(f"{path}: expected rows of {3 + 3 * num_joints} numbers, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{path}: non-finite values")
    return a


def expmap_to_rotmat(r: np.ndarray) -> np.ndarray:
    """Rodrigues: (..., 3) axis * angle -> (..., 3, 3), as the authors' ``expmap2rotmat``."""
    r = np.asarray(r, dtype=np.float64)
    theta = np.linalg.norm(r, axis=-1)[..., None, None]
    k = r / np.maximum(np.linalg.norm(r, axis=-1, keepdims=True), 1e-12)
    kx = np.zeros(r.shape[:-1] + (3, 3))
    kx[..., 0, 1], kx[..., 0, 2], kx[..., 1, 2] = -k[..., 2], k[..., 1], -k[..., 0]
    kx = kx - np.swapaxes(kx, -1, -2)
    eye = np.broadcast_to(np.eye(3), kx.shape)
    return eye + np.sin(theta) * kx + (1.0 - np.cos(theta)) * (kx @ kx)


def forward_kinematics(values: np.ndarray, sk: ExpmapSkeleton) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions and global rotations of an expmap motion.

    values: (F, 3 + 3J). Returns (positions (F, J, 3) in ASF units, y up,
    rotations (F, J, 3, 3)) with ``rotations[f, i]`` in the row-vector
    convention of the authors (a child offset ``o`` lands at ``p + o @ R``;
    its transpose maps rest axes to world axes for column vectors).
    """
    f, nj = values.shape[0], sk.num_joints
    if values.shape[1] != 3 + 3 * nj:
        raise ValueError(f"expected (F, {3 + 3 * nj}) values, got {values.shape}")
    local = expmap_to_rotmat(values[:, 3:].reshape(f, nj, 3))
    pos = np.zeros((f, nj, 3))
    rot = np.zeros((f, nj, 3, 3))
    for i, p in enumerate(sk.parents):
        if p < 0:
            pos[:, i] = values[:, 0:3] + sk.offsets[i]
            rot[:, i] = local[:, i]
        else:
            pos[:, i] = sk.offsets[i] @ rot[:, p] + pos[:, p]
            rot[:, i] = local[:, i] @ rot[:, p]
    return pos, rot
