"""Reject 2D skeletons that cannot be one person: limbs spanning two people, whole-body jumps.

When two people overlap, a detector may return a skeleton whose arms or legs
belong to the neighbour (a limb suddenly two or three times its usual length),
or the track may hop to the neighbour for a frame (every joint moves by a
body size at once). Both are detected on the Human3.6M-17 track, relative to
the track's own typical limb lengths, so no absolute size is assumed.
"""
from __future__ import annotations

import numpy as np

from video3d import skeleton

#: Limbs checked (child joints of :data:`video3d.skeleton.PARENTS`): legs, arms, torso sides.
LIMB_CHILDREN: tuple[int, ...] = (2, 3, 5, 6, 12, 13, 15, 16, 8)


def implausible_frames(keypoints: np.ndarray, detected: np.ndarray, max_limb_ratio: float = 2.2,
                       max_body_jump: float = 0.6) -> np.ndarray:
    """Frames whose skeleton is not plausibly the same single person.

    Args:
        keypoints: (T, 17, 2) H36M-17 pixels (NaN where missing).
        detected: (T,) bool, frames that hold a detection.
        max_limb_ratio: a limb longer than this times its median length over the
            track rejects the frame (only "longer" is checked: foreshortening
            legitimately shortens limbs).
        max_body_jump: median joint displacement from the previous detected
            frame (at most 2 frames back), in body heights (3 x the median
            pelvis-thorax length), above which the frame is rejected when the
            next frame is back near the previous one (a one-frame excursion).

    Returns:
        (T,) bool, True = reject. Needs >= 5 detected frames to judge; otherwise all False.
    """
    kp = np.asarray(keypoints, np.float64)
    det = np.asarray(detected, bool) & np.isfinite(kp).all(axis=(1, 2))
    bad = np.zeros(len(kp), bool)
    if det.sum() < 5:
        return bad
    parents = np.asarray(skeleton.PARENTS)
    children = np.asarray(LIMB_CHILDREN)
    lengths = np.linalg.norm(kp[:, children] - kp[:, parents[children]], axis=-1)  # (T, L)
    typical = np.median(lengths[det], axis=0)  # (L,)
    ok_typ = typical > 1.0
    ratio = lengths[:, ok_typ] / typical[ok_typ]
    bad |= det & (ratio > max_limb_ratio).any(axis=1)
    # Whole-body jumps: body height ~ 3 x median pelvis->thorax length.
    torso = np.linalg.norm(kp[:, 8] - kp[:, 0], axis=-1)
    body = 3.0 * max(float(np.median(torso[det])), 1.0)
    idx = np.nonzero(det & ~bad)[0]
    if len(idx) < 3:
        return bad
    prev, cur, nxt = idx[:-2], idx[1:-1], idx[2:]
    jump = np.median(np.linalg.norm(kp[cur] - kp[prev], axis=-1), axis=-1) / body
    back = np.median(np.linalg.norm(kp[nxt] - kp[prev], axis=-1), axis=-1) / body
    # a one-frame excursion: far from the previous frame, and the next frame is back where we were
    bad[cur[(cur - prev <= 2) & (jump > max_body_jump) & (back < 0.5 * jump)]] = True
    return bad
