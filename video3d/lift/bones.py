"""Per-clip bone-length consistency: people do not change size during a clip.

A monocular lifter predicts every frame (or window) on its own, so its bone
lengths drift from frame to frame. :func:`consistent_bones` estimates one
length per bone for the whole clip (the median over valid frames, robust to
bad frames; left and right bones averaged), then rebuilds every frame from the
root outward, keeping each bone's predicted *direction* and giving it the clip
length. The pelvis stays where it was; joint positions change only along the
kinematic chain. Bones are those of :data:`video3d.skeleton.BONES`.
"""
from __future__ import annotations

import numpy as np

from video3d import skeleton

#: Pairs of bone indices (into ``skeleton.BONES``) that mirror each other (left, right).
SYMMETRIC_BONES: tuple[tuple[int, int], ...] = tuple(
    (next(b for b, (_, c) in enumerate(skeleton.BONES) if c == left),
     next(b for b, (_, c) in enumerate(skeleton.BONES) if c == right))
    for left, right in zip(skeleton.LEFT_JOINTS, skeleton.RIGHT_JOINTS))

_PARENTS = np.array([p for p, _ in skeleton.BONES])
_CHILDREN = np.array([c for _, c in skeleton.BONES])


def bone_vectors(poses: np.ndarray) -> np.ndarray:
    """(..., 17, 3) joints -> (..., 16, 3) child - parent, in ``skeleton.BONES`` order."""
    p = np.asarray(poses)
    return p[..., _CHILDREN, :] - p[..., _PARENTS, :]


def bone_lengths(poses: np.ndarray) -> np.ndarray:
    """(..., 17, 3) joints -> (..., 16) bone lengths (same unit), NaN where a joint is NaN."""
    return np.linalg.norm(bone_vectors(poses), axis=-1)


def clip_bone_lengths(poses: np.ndarray, valid: np.ndarray | None = None, symmetric: bool = True) -> np.ndarray:
    """One length per bone for a clip: the median over valid frames.

    poses: (T, 17, 3); valid: optional (T,) bool (NaN frames are skipped anyway).
    symmetric: average each left/right pair. Returns (16,); NaN for a bone never seen.
    """
    lengths = bone_lengths(np.asarray(poses, np.float64))
    if valid is not None:
        lengths = np.where(np.asarray(valid, bool)[:, None], lengths, np.nan)
    ok = np.isfinite(lengths).any(axis=0)
    out = np.full(lengths.shape[1], np.nan)
    out[ok] = np.nanmedian(lengths[:, ok], axis=0)
    if symmetric:
        for left, right in SYMMETRIC_BONES:
            pair = out[[left, right]]
            if np.isfinite(pair).any():
                out[[left, right]] = np.nanmean(pair)
    return out


def enforce_bone_lengths(poses: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rebuild every pose from the root outward with the given bone lengths.

    poses: (..., 17, 3); lengths: (16,) in ``skeleton.BONES`` order (a NaN length
    keeps that bone as predicted). Each bone keeps its direction; a zero-length
    bone stays zero. The root joint is unchanged. Returns (..., 17, 3), same dtype.
    """
    p = np.asarray(poses)
    lengths = np.asarray(lengths, np.float64)
    if lengths.shape != (len(skeleton.BONES),):
        raise ValueError(f"lengths must be ({len(skeleton.BONES)},), got {lengths.shape}")
    vec = bone_vectors(p).astype(np.float64)
    norm = np.linalg.norm(vec, axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        scaled = np.where(norm > 1e-12, vec / norm * lengths[:, None], vec)
    scaled = np.where(np.isfinite(lengths)[:, None], scaled, vec)
    out = np.asarray(p, np.float64).copy()
    for b, (parent, child) in enumerate(skeleton.BONES):  # parents come before children
        out[..., child, :] = out[..., parent, :] + scaled[..., b, :]
    return out.astype(p.dtype)


def consistent_bones(poses: np.ndarray, valid: np.ndarray | None = None, symmetric: bool = True) -> np.ndarray:
    """Per-clip bone-length consistency: :func:`clip_bone_lengths` then :func:`enforce_bone_lengths`.

    poses: (T, 17, 3) one person's clip (any unit); NaN frames stay NaN.
    Returns (T, 17, 3) with every bone's length constant over the clip.
    """
    return enforce_bone_lengths(poses, clip_bone_lengths(poses, valid, symmetric))
