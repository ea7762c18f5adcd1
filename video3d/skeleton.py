"""The Human3.6M 17-joint skeleton, video3d's canonical body model.

Every stage after 2D detection speaks this joint order. "Left" is the
person's left. Arrays of poses have shape (..., 17, D) with D = 2 or 3.
"""
from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "spine", "thorax", "neck", "head",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_shoulder", "right_elbow", "right_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)
PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
LEFT_JOINTS: tuple[int, ...] = (4, 5, 6, 11, 12, 13)
RIGHT_JOINTS: tuple[int, ...] = (1, 2, 3, 14, 15, 16)
ROOT = 0

#: (parent, child) pairs, one per bone, in joint order.
BONES: tuple[tuple[int, int], ...] = tuple((p, c) for c, p in enumerate(PARENTS) if p >= 0)

#: Index permutation that swaps left and right joints.
FLIP_PERMUTATION: tuple[int, ...] = tuple(
    {**{l: r for l, r in zip(LEFT_JOINTS, RIGHT_JOINTS)},
     **{r: l for l, r in zip(LEFT_JOINTS, RIGHT_JOINTS)}}.get(j, j)
    for j in range(NUM_JOINTS)
)

#: Mean Human3.6M bone lengths in metres, keyed by child joint (REFERENCE §1).
MEAN_BONE_LENGTH_M: dict[int, float] = {
    1: 0.134, 2: 0.440, 3: 0.445, 4: 0.134, 5: 0.440, 6: 0.445,
    7: 0.236, 8: 0.254, 9: 0.116, 10: 0.115,
    11: 0.150, 12: 0.280, 13: 0.248, 14: 0.150, 15: 0.280, 16: 0.248,
}


def adjacency(self_loops: bool = False) -> np.ndarray:
    """Symmetric bone adjacency matrix, shape (17, 17), float32."""
    a = np.zeros((NUM_JOINTS, NUM_JOINTS), np.float32)
    for p, c in BONES:
        a[p, c] = a[c, p] = 1.0
    if self_loops:
        a += np.eye(NUM_JOINTS, dtype=np.float32)
    return a


def hops_from_root() -> np.ndarray:
    """Number of bones between each joint and the pelvis, shape (17,)."""
    depth = np.zeros(NUM_JOINTS, np.int64)
    for j in range(1, NUM_JOINTS):
        depth[j] = depth[PARENTS[j]] + 1
    return depth


def mirror(pose: np.ndarray) -> np.ndarray:
    """Mirror poses: negate x and swap left/right joints.

    pose: (..., 17, D) with x in channel 0, already centred on the mirror axis
    (for screen-normalised 2D, x_n in [-1, 1] is centred; for camera-frame 3D,
    x = 0 is the optical axis). Returns a new array of the same shape.
    """
    out = pose[..., FLIP_PERMUTATION, :].copy()
    out[..., 0] *= -1
    return out


def bone_lengths(pose: np.ndarray) -> np.ndarray:
    """Bone lengths, (..., 17, D) -> (..., 16), in the order of ``BONES``."""
    parents = [p for p, _ in BONES]
    children = [c for _, c in BONES]
    return np.linalg.norm(pose[..., children, :] - pose[..., parents, :], axis=-1)
