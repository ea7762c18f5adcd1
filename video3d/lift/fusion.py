"""Fusing the lifter's 3D with the 3D a detector returns for free.

BlazePose returns, besides its 2D landmarks, metric "world" landmarks
(hip-centred, in a frame of its own). Its errors and a lifter's are far from
identical, so their average is better than either (measured on real video in
docs/realvideo.md). Per frame, the detector's pose is similarity-aligned
(scale, rotation, translation; Umeyama) to the lifted pose over all 17 joints,
then the two are averaged with ``lifter_weight`` and re-rooted at the pelvis.
The result keeps the lifter's frame (camera frame, metres, pelvis = 0) and,
because the alignment takes the lifter's scale, its metric size.
"""
from __future__ import annotations

import numpy as np

from video3d.geometry.procrustes import procrustes_align

__all__ = ["DEFAULT_LIFTER_WEIGHT", "fuse_with_detector_3d"]

#: Equal weighting: fixed a priori (not tuned on the real-video check; see docs/realvideo.md).
DEFAULT_LIFTER_WEIGHT = 0.5


def fuse_with_detector_3d(lifted: np.ndarray, detector_3d: np.ndarray,
                          lifter_weight: float = DEFAULT_LIFTER_WEIGHT) -> np.ndarray:
    """Average the lifted poses with the detector's 3D aligned onto them.

    lifted: (T, 17, 3) camera frame, metres, root-relative (NaN frames allowed).
    detector_3d: (T, 17, 3) H36M-17 joints in any metric frame (NaN where the
        detector gave none). Returns (T, 17, 3) float64 in the lifter's frame,
        pelvis = 0; frames where either pose is missing keep ``lifted``.
    """
    if not 0.0 <= lifter_weight <= 1.0:
        raise ValueError(f"lifter_weight must be in [0, 1], got {lifter_weight}")
    lifted = np.asarray(lifted, np.float64)
    det = np.asarray(detector_3d, np.float64)
    if lifted.shape != det.shape or lifted.ndim != 3 or lifted.shape[-1] != 3:
        raise ValueError(f"lifted {lifted.shape} and detector_3d {det.shape} must both be (T, J, 3)")
    out = lifted.copy()
    ok = np.isfinite(lifted).all(axis=(1, 2)) & np.isfinite(det).all(axis=(1, 2))
    if ok.any():
        aligned = procrustes_align(det[ok], lifted[ok])
        fused = lifter_weight * lifted[ok] + (1.0 - lifter_weight) * aligned
        out[ok] = fused - fused[:, :1]
    return out
