"""Keypoint formats and their conversion to Human3.6M-17.

One conversion, :func:`coco_to_h36m`, is used everywhere: on detector output at
inference, on projected virtual landmarks when synthesising the lifters' 2D
training inputs, and on 3D mocap landmarks to define the 3D training targets.
Because every H36M joint is an affine combination of COCO joints, applying it
before or after a (near-affine) projection gives the same geometry, so the
lifter sees at inference exactly the joint definitions it was trained on.

Definitions (COCO indices: 0 nose, 1/2 eyes, 3/4 ears, 5/6 shoulders,
11/12 hips, L before R):

* pelvis = mid hips; thorax = mid shoulders; spine = mid(pelvis, thorax)
* neck/nose (H36M 9) = nose
* head (H36M 10) = mid ears + HEAD_EXTRAPOLATION * (mid ears - thorax)
* limbs are copied.

This is the "simpler variant" of REFERENCE §2 (mmpose-like) with a head point
extrapolated along the neck axis, which is rotation invariant in the image
(the MHFormer formula assumes an upright head).
"""
from __future__ import annotations

from typing import Literal

import numpy as np

KeypointFormat = Literal["h36m", "coco", "blazepose"]
FORMATS: tuple[str, ...] = ("h36m", "coco", "blazepose")
NUM_JOINTS_BY_FORMAT = {"h36m": 17, "coco": 17, "blazepose": 33}

COCO_JOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

#: BlazePose-33 landmark index for each COCO-17 joint (REFERENCE §2).
BLAZEPOSE_TO_COCO: tuple[int, ...] = (0, 2, 5, 7, 8, 11, 12, 13, 14, 15, 16, 23, 24, 25, 26, 27, 28)

#: How far above the ears the head point lies, as a fraction of ears-thorax.
HEAD_EXTRAPOLATION = 0.75

# H36M joint <- COCO joint for the joints that are copied.
_COPIED = {1: 12, 2: 14, 3: 16, 4: 11, 5: 13, 6: 15, 9: 0,
           11: 5, 12: 7, 13: 9, 14: 6, 15: 8, 16: 10}


def coco_to_h36m(keypoints: np.ndarray, scores: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray | None]:
    """COCO-17 -> H36M-17.

    keypoints: (..., 17, D), any D (2D pixels, normalised 2D or 3D metres).
    scores: optional (..., 17) confidences.
    Returns (keypoints (..., 17, D), scores (..., 17) or None). NaNs propagate.
    """
    kp = np.asarray(keypoints, dtype=np.float64 if np.asarray(keypoints).dtype == np.float64 else np.float32)
    if kp.shape[-2] != 17:
        raise ValueError(f"COCO keypoints need 17 joints, got shape {kp.shape}")
    out = np.empty_like(kp)
    for h, c in _COPIED.items():
        out[..., h, :] = kp[..., c, :]
    pelvis = 0.5 * (kp[..., 11, :] + kp[..., 12, :])
    thorax = 0.5 * (kp[..., 5, :] + kp[..., 6, :])
    ears = 0.5 * (kp[..., 3, :] + kp[..., 4, :])
    out[..., 0, :] = pelvis
    out[..., 8, :] = thorax
    out[..., 7, :] = 0.5 * (pelvis + thorax)
    out[..., 10, :] = ears + HEAD_EXTRAPOLATION * (ears - thorax)
    if scores is None:
        return out, None
    s = np.asarray(scores, dtype=np.float32)
    so = np.empty_like(s)
    for h, c in _COPIED.items():
        so[..., h] = s[..., c]
    so[..., 0] = np.minimum(s[..., 11], s[..., 12])
    so[..., 8] = np.minimum(s[..., 5], s[..., 6])
    so[..., 7] = np.minimum(so[..., 0], so[..., 8])
    so[..., 10] = np.minimum.reduce([s[..., 3], s[..., 4], s[..., 5], s[..., 6]])
    return out, so


def blazepose_to_coco(keypoints: np.ndarray, scores: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray | None]:
    """BlazePose-33 (..., 33, D) -> COCO-17 (..., 17, D); scores (..., 33) -> (..., 17)."""
    kp = np.asarray(keypoints)
    if kp.shape[-2] != 33:
        raise ValueError(f"BlazePose keypoints need 33 landmarks, got shape {kp.shape}")
    idx = list(BLAZEPOSE_TO_COCO)
    return kp[..., idx, :], (None if scores is None else np.asarray(scores)[..., idx])


def to_h36m(keypoints: np.ndarray, scores: np.ndarray | None, fmt: str
            ) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert keypoints in format ``fmt`` ('h36m' | 'coco' | 'blazepose') to H36M-17."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown keypoint format {fmt!r}; expected one of {', '.join(FORMATS)}")
    n = NUM_JOINTS_BY_FORMAT[fmt]
    if np.asarray(keypoints).shape[-2] != n:
        raise ValueError(f"format {fmt!r} has {n} joints, got keypoints of shape {np.asarray(keypoints).shape}")
    if fmt == "h36m":
        return np.asarray(keypoints), (None if scores is None else np.asarray(scores))
    if fmt == "blazepose":
        keypoints, scores = blazepose_to_coco(keypoints, scores)
    return coco_to_h36m(keypoints, scores)


def normalize_screen(keypoints: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixels -> screen-normalised coordinates (REFERENCE §2).

    x_n = 2x/w - 1, y_n = 2y/w - h/w. keypoints: (..., 2). Aspect is kept.
    """
    kp = np.asarray(keypoints, dtype=np.float32)
    out = kp / np.float32(width) * 2.0
    out[..., 0] -= 1.0
    out[..., 1] -= np.float32(height / width)
    return out


def denormalize_screen(keypoints: np.ndarray, width: float, height: float) -> np.ndarray:
    """Inverse of :func:`normalize_screen`. keypoints: (..., 2)."""
    kp = np.asarray(keypoints, dtype=np.float32).copy()
    kp[..., 0] += 1.0
    kp[..., 1] += np.float32(height / width)
    return kp * np.float32(width) / 2.0
