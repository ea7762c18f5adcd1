"""Filling short holes in a 2D keypoint track (pure numpy).

Two kinds of hole:

* **frame gaps**: runs of frames without a detection. Interior gaps of at most
  ``max_gap`` frames are linearly interpolated per joint between the detected
  frames on either side; their frames become valid and are marked
  ``interpolated``. Longer gaps, and gaps at the start or end (nothing to
  interpolate towards), stay NaN with ``valid=False``.
* **joint gaps**: inside detected frames, a joint whose score is below
  ``min_joint_score`` is treated as missing and interpolated in time between
  that joint's confident samples when the hole is interior and at most
  ``max_gap`` frames long; otherwise the detector's own (low-score) guess is kept.

Every interpolated value gets score 0.5 x min(score before, score after).
Frames without a pose have score 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video3d.pose import Gap  # (start, end inclusive, length, filled)


@dataclass
class GapResult:
    """Output of :func:`fill_gaps`.

    Attributes:
        keypoints: (T, J, 2) with gaps filled; NaN in frames left missing.
        scores: (T, J); 0 in frames left missing.
        valid: (T,) bool, True for detected or interpolated frames.
        interpolated: (T,) bool, True for frames filled from their neighbours.
        joint_filled: (T, J) bool, True for every interpolated joint value
            (whole filled frames and low-score joints alike).
        gaps: frame gaps as (start, end inclusive, length, filled), in order.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    valid: np.ndarray
    interpolated: np.ndarray
    joint_filled: np.ndarray
    gaps: list[Gap]


def default_max_gap(fps: float, seconds: float = 0.5) -> int:
    """Longest gap (frames) to interpolate: round(seconds * fps), at least 0."""
    return max(0, int(round(seconds * fps)))


def runs(mask: np.ndarray) -> np.ndarray:
    """Runs of True in a (T,) bool mask -> (N, 2) int array of [start, end] (end inclusive)."""
    m = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]]).astype(np.int8)
    edges = np.diff(m)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return np.stack([starts, ends], axis=1)


def _fillable(holes: np.ndarray, num_frames: int, max_gap: int) -> np.ndarray:
    """(N, 2) runs -> (N,) bool: interior (has samples on both sides) and short enough."""
    if len(holes) == 0:
        return np.zeros(0, dtype=bool)
    length = holes[:, 1] - holes[:, 0] + 1
    return (holes[:, 0] > 0) & (holes[:, 1] < num_frames - 1) & (length <= max_gap)


def _interpolate_joint(keypoints: np.ndarray, scores: np.ndarray, good: np.ndarray,
                       targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of one joint over time.

    keypoints: (T, 2); scores: (T,); good: (T,) bool samples to trust;
    targets: (M,) frame indices, each with good samples before and after.
    Returns (values (M, 2), scores (M,)).
    """
    known = np.flatnonzero(good)
    values = np.stack([np.interp(targets, known, keypoints[known, d]) for d in range(2)], axis=1)
    after = known[np.searchsorted(known, targets)]
    before = known[np.searchsorted(known, targets) - 1]
    return values, 0.5 * np.minimum(scores[before], scores[after])


def fill_gaps(keypoints: np.ndarray, scores: np.ndarray, detected: np.ndarray, max_gap: int,
              *, min_joint_score: float = 0.0) -> GapResult:
    """Interpolate short frame gaps and low-confidence joints; leave the rest missing.

    keypoints: (T, J, 2) pixels (values in undetected frames are ignored).
    scores: (T, J) in [0, 1].
    detected: (T,) bool, True where the detector returned the person.
    max_gap: longest hole, in frames, that is interpolated (0 disables filling).
    min_joint_score: joints scoring below this in detected frames count as missing.
    Returns a :class:`GapResult`; inputs are not modified.
    """
    kp = np.array(keypoints, dtype=np.float32)
    sc = np.array(scores, dtype=np.float32)
    det = np.asarray(detected, dtype=bool)
    t, j = sc.shape
    if kp.shape != (t, j, 2) or det.shape != (t,):
        raise ValueError(f"fill_gaps needs keypoints (T, J, 2), scores (T, J), detected (T,); "
                         f"got {kp.shape}, {sc.shape}, {det.shape}")
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    kp[~det] = np.nan
    sc[~det] = 0.0
    filled = np.zeros((t, j), dtype=bool)
    frame_index = np.arange(t)

    # Joint holes first (they may span undetected frames): interpolate between
    # each joint's own confident samples.
    for joint in range(j):
        good = det & (sc[:, joint] >= min_joint_score) & np.isfinite(kp[:, joint]).all(axis=1)
        holes = runs(~good)
        holes = holes[_fillable(holes, t, max_gap)]
        if len(holes) == 0:
            continue
        targets = np.concatenate([frame_index[s:e + 1] for s, e in holes])
        values, new_scores = _interpolate_joint(kp[:, joint], sc[:, joint], good, targets)
        kp[targets, joint] = values
        sc[targets, joint] = new_scores
        filled[targets, joint] = True

    # Frame gaps: whatever is still missing in a short interior gap is
    # interpolated between the detected frames on either side.
    frame_holes = runs(~det)
    frame_ok = _fillable(frame_holes, t, max_gap)
    interpolated = np.zeros(t, dtype=bool)
    for (start, end), ok in zip(frame_holes, frame_ok):
        if not ok:
            continue
        before, after = start - 1, end + 1
        alpha = ((frame_index[start:end + 1] - before) / (after - before))[:, None, None]
        line = (1.0 - alpha) * kp[before] + alpha * kp[after]
        missing = ~filled[start:end + 1]
        kp[start:end + 1][missing] = line[missing]
        sc[start:end + 1][missing] = np.broadcast_to(0.5 * np.minimum(sc[before], sc[after]),
                                                     missing.shape)[missing]
        filled[start:end + 1] = True
        interpolated[start:end + 1] = True

    gaps: list[Gap] = [(int(s), int(e), int(e - s + 1), bool(ok)) for (s, e), ok in zip(frame_holes, frame_ok)]
    return GapResult(keypoints=kp, scores=sc, valid=det | interpolated, interpolated=interpolated,
                     joint_filled=filled, gaps=gaps)


def summarize_gaps(gaps: list[Gap], num_frames: int) -> str:
    """One human line about frame gaps, e.g.
    "3 gaps: 2 filled (5 frames), 1 long gap at frames 120-180 left missing".

    gaps: as in :attr:`GapResult.gaps` (end inclusive); num_frames: T, to tell
    a gap at the end of the video from a long one.
    """
    if not gaps:
        return "no gaps"
    filled = [g for g in gaps if g[3]]
    parts = []
    if filled:
        count = sum(g[2] for g in filled)
        parts.append(f"{len(filled)} filled ({count} frame{'' if count == 1 else 's'})")
    long_gaps = []
    for start, end, length, ok in gaps:
        if ok:
            continue
        frames = f"frame {start}" if length == 1 else f"frames {start}-{end}"
        if start == 0 and end == num_frames - 1:
            parts.append(f"no pose in any of the {length} frames")
        elif start == 0:
            parts.append(f"{frames} missing at the start")
        elif end == num_frames - 1:
            parts.append(f"{frames} missing at the end")
        else:
            long_gaps.append(f"{start}-{end}" if length > 1 else f"{start}")
    if long_gaps:
        noun = "long gap" if len(long_gaps) == 1 else "long gaps"
        where = "frame" if len(long_gaps) == 1 and "-" not in long_gaps[0] else "frames"
        parts.insert(1 if filled else 0, f"{len(long_gaps)} {noun} at {where} {', '.join(long_gaps)} left missing")
    noun = "gap" if len(gaps) == 1 else "gaps"
    return f"{len(gaps)} {noun}: " + ", ".join(parts)
