"""What every 2D detector returns, the protocol it implements, and box geometry.

A detector looks at one RGB frame and returns zero or more
:class:`PersonKeypoints` in its own keypoint format ('blazepose' = 33
landmarks, 'coco' = 17 joints). Choosing *which* person to follow is not the
detector's job: :mod:`video3d.detect.tracking` does it the same way for every
backend. Conversion to Human3.6M-17 happens once, in
:mod:`video3d.detect.stage`, through :func:`video3d.keypoints.to_h36m`.

Boxes are ``(4,)`` float arrays ``x0, y0, x1, y1`` in pixels (x right, y down,
origin at the top-left corner of the top-left pixel).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class PersonKeypoints:
    """One person in one frame, in the detector's own keypoint format.

    Attributes:
        keypoints: (K, 2) pixel coordinates; K = 33 for 'blazepose', 17 for 'coco'.
        scores: (K,) confidences in [0, 1].
        bbox: (4,) x0, y0, x1, y1 in pixels.
        format: 'blazepose' or 'coco' (a :data:`video3d.keypoints.FORMATS` name).
        world: optional (K, 3) metric 3D from the detector itself, same joints as
            ``keypoints`` (BlazePose's ``pose_world_landmarks``: metres, origin at
            the hip centre, x right, y down, z away from the camera); None otherwise.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    bbox: np.ndarray
    format: str
    world: np.ndarray | None = None


@runtime_checkable
class Detector(Protocol):
    """A 2D keypoint detector (BlazePose, MMPose top-down, or a test fake).

    ``detect`` is called once per frame, in order (backends may track between
    calls). ``hint`` is the box where the tracked person is expected, or None
    while no one is tracked; a backend may use it to look harder there (crop,
    re-detect) and then return that extra candidate alongside the others.
    """

    name: str
    keypoint_format: str

    def detect(self, frame_rgb: np.ndarray, hint: np.ndarray | None = None) -> list[PersonKeypoints]:
        """frame_rgb: (H, W, 3) uint8 RGB. hint: (4,) box or None. Returns people (maybe [])."""
        ...

    def close(self) -> None:
        """Release models and native resources."""
        ...


@runtime_checkable
class ScanningDetector(Protocol):
    """Optional extra for single-person backends: an exhaustive, slower search.

    ``detect_all`` looks for every person in the frame (e.g. by running on tiles)
    so that a person other than the backend's favourite can be chosen. It is only
    called while a ``person=`` rule other than 'auto' has not yet picked someone.
    Multi-person backends do not need it: their ``detect`` already returns everyone.
    """

    def detect_all(self, frame_rgb: np.ndarray) -> list[PersonKeypoints]:
        """frame_rgb: (H, W, 3) uint8 RGB. Returns every person found (maybe [])."""
        ...


def keypoints_bbox(keypoints: np.ndarray) -> np.ndarray:
    """Tight box around keypoints (K, 2) -> (4,) x0, y0, x1, y1; ignores NaN rows."""
    kp = np.asarray(keypoints, dtype=np.float64)
    kp = kp[np.isfinite(kp).all(axis=1)]
    if len(kp) == 0:
        return np.full(4, np.nan)
    return np.concatenate([kp.min(axis=0), kp.max(axis=0)])


def box_center(box: np.ndarray) -> np.ndarray:
    """(..., 4) boxes -> (..., 2) centres."""
    b = np.asarray(box, dtype=np.float64)
    return 0.5 * (b[..., :2] + b[..., 2:])


def box_size(box: np.ndarray) -> np.ndarray:
    """(..., 4) boxes -> (...,) size = sqrt(width * height) in pixels (>= 1)."""
    b = np.asarray(box, dtype=np.float64)
    wh = np.maximum(b[..., 2:] - b[..., :2], 1.0)
    return np.sqrt(wh[..., 0] * wh[..., 1])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (4,) boxes; 0 for empty or degenerate boxes."""
    ix = min(a[2], b[2]) - max(a[0], b[0])
    iy = min(a[3], b[3]) - max(a[1], b[1])
    if not (ix > 0 and iy > 0):
        return 0.0
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0
