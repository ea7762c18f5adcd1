"""Detection stage for everyone: frames -> one H36M-17 2D track per identity.

Per frame (streaming): the detector returns every person it finds, an
:class:`~video3d.detect.identity.IdentityTracker` (OC-SORT) gives each a
persistent id, and the raw keypoints are stored under that id. At the end each
identity (OC-SORT, ids from 0) becomes a :class:`~video3d.pose.PoseSequence` exactly as the
single-person stage builds one: conversion with
:func:`video3d.keypoints.to_h36m`, implausible skeletons rejected
(:func:`video3d.detect.plausible.implausible_frames`), holes up to
``max_gap`` interpolated (:func:`video3d.detect.gaps.fill_gaps`). Tracks seen
in fewer than ``min_frames`` frames are dropped (logged).
"""
from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np

from video3d import keypoints as kpfmt
from video3d.detect.base import Detector, PersonKeypoints
from video3d.detect.gaps import default_max_gap, fill_gaps, summarize_gaps
from video3d.detect.identity import IdentityTracker
from video3d.detect.plausible import implausible_frames
from video3d.errors import NoPersonError, VideoError
from video3d.pose import PoseSequence

log = logging.getLogger(__name__)


def track_sequence(raw_kp: np.ndarray, raw_sc: np.ndarray, detected: np.ndarray, fmt: str, *, fps: float,
                   image_size: tuple[int, int], max_gap: int, detector: str, min_joint_score: float = 0.1,
                   track_id: int = -1, person: str = "all") -> PoseSequence:
    """Raw per-frame keypoints of one identity -> PoseSequence (H36M-17, gaps filled).

    raw_kp (T, K, 2) pixels in ``fmt``; raw_sc (T, K); detected (T,) bool.
    """
    h36m_kp, h36m_sc = kpfmt.to_h36m(raw_kp, np.nan_to_num(raw_sc, nan=0.0), fmt)
    rejected = implausible_frames(h36m_kp, detected)
    detected = detected & ~rejected
    filled = fill_gaps(h36m_kp, h36m_sc, detected, max_gap, min_joint_score=min_joint_score)
    t = len(detected)
    return PoseSequence(keypoints_2d=filled.keypoints.astype(np.float32),
                        scores_2d=np.clip(filled.scores, 0.0, 1.0).astype(np.float32),
                        valid=filled.valid, fps=fps, image_size=image_size, detector=detector,
                        interpolated=filled.interpolated, joint_filled=filled.joint_filled, gaps=filled.gaps,
                        gap_summary=summarize_gaps(filled.gaps, t), num_detected=int(detected.sum()),
                        max_gap=max_gap, person=person, raw_format=fmt, keypoints_raw=raw_kp, scores_raw=raw_sc,
                        implausible_frames=int(rejected.sum()), track_id=track_id)


class PeopleStage:
    """Incremental multi-person detection: ``push`` each RGB frame, then ``finish``.

    Args:
        detector: a Detector returning everyone per frame (not closed here).
        fps, image_size: of the video ((width, height)).
        max_gap_s: longest hole (seconds) interpolated per identity.
        min_frames: identities detected in fewer frames are dropped (default:
            max(3, 0.25 s)).
        tracker: identity tracker (default :class:`IdentityTracker` at ``fps``).
        progress: optional ``advance(n)`` callable.
    """

    def __init__(self, detector: Detector, *, fps: float, image_size: tuple[int, int], max_gap_s: float = 0.5,
                 min_frames: int | None = None, tracker: IdentityTracker | None = None,
                 progress: Callable[[int], object] | None = None) -> None:
        fmt = detector.keypoint_format
        if fmt not in kpfmt.FORMATS:
            raise ValueError(f"detector {detector.name!r} has unknown keypoint format {fmt!r}")
        self.detector = detector
        self.fps = float(fps)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.max_gap = default_max_gap(fps, max_gap_s)
        self.min_frames = min_frames if min_frames is not None else max(3, int(round(0.25 * fps)))
        self.tracker = tracker or IdentityTracker(fps=fps)
        self.progress = progress
        self._format = fmt
        self._k = kpfmt.NUM_JOINTS_BY_FORMAT[fmt]
        self._tracks: dict[int, tuple[list[int], list[np.ndarray], list[np.ndarray]]] = {}
        self._count = 0

    @property
    def num_frames(self) -> int:
        return self._count

    def push(self, frame_rgb: np.ndarray) -> list[tuple[int, PersonKeypoints]]:
        """Detect and identify in one (H, W, 3) uint8 RGB frame -> [(track id, person)] (ids >= 0)."""
        frame = np.asarray(frame_rgb)
        w, h = self.image_size
        if frame.ndim != 3 or frame.shape[:2] != (h, w):
            raise ValueError(f"frame {self._count} has shape {frame.shape}, expected ({h}, {w}, 3)")
        people = self.detector.detect(frame, None)
        ids = self.tracker.update(people)
        out = []
        for tid, person in zip(ids.tolist(), people):
            if tid < 0:
                continue
            frames, kps, scs = self._tracks.setdefault(int(tid), ([], [], []))
            if frames and frames[-1] == self._count:
                continue  # one person per id and frame
            frames.append(self._count)
            kps.append(np.asarray(person.keypoints, np.float32))
            scs.append(np.asarray(person.scores, np.float32))
            out.append((int(tid), person))
        self._count += 1
        if self.progress is not None:
            self.progress(1)
        return out

    def finish(self) -> list[PoseSequence]:
        """One PoseSequence per identity kept (``track_id``), ordered by id.

        Raises VideoError when no frame was pushed and NoPersonError when no
        identity lasted ``min_frames`` frames.
        """
        t = self._count
        if t == 0:
            raise VideoError("no frames to detect people in")
        seqs = []
        short = 0
        for tid in sorted(self._tracks):
            frames, kps, scs = self._tracks[tid]
            if len(frames) < self.min_frames:
                short += 1
                continue
            raw_kp = np.full((t, self._k, 2), np.nan, np.float32)
            raw_sc = np.zeros((t, self._k), np.float32)
            detected = np.zeros(t, bool)
            raw_kp[frames], raw_sc[frames], detected[frames] = np.stack(kps), np.stack(scs), True
            seq = track_sequence(raw_kp, raw_sc, detected, self._format, fps=self.fps, image_size=self.image_size,
                                 max_gap=self.max_gap, detector=self.detector.name,
                                 track_id=int(tid))
            if seq.num_detected < self.min_frames:
                short += 1  # mostly implausible skeletons
                continue
            seqs.append(seq)
        if short:
            log.info("dropped %d identities seen in fewer than %d frames", short, self.min_frames)
        if not seqs:
            raise NoPersonError(f"no person tracked for at least {self.min_frames} frames in {t} frames")
        return seqs


def detect_people(frames, detector: Detector, *, fps: float, image_size: tuple[int, int], max_gap_s: float = 0.5,
                  min_frames: int | None = None, progress: Callable[[int], object] | None = None
                  ) -> list[PoseSequence]:
    """Run ``detector`` over ``frames`` ((H, W, 3) uint8 RGB) -> one PoseSequence per identity."""
    stage = PeopleStage(detector, fps=fps, image_size=image_size, max_gap_s=max_gap_s, min_frames=min_frames,
                        progress=progress)
    for frame in frames:
        stage.push(frame)
    return stage.finish()


def main_person(seqs: Sequence[PoseSequence]) -> int:
    """Index of the identity with the most valid frames (ties: larger mean box)."""
    def key(s: PoseSequence) -> tuple[int, float]:
        kp = s.keypoints_2d[s.valid]
        size = float(np.nanmean(np.nanmax(kp[..., 1], 1) - np.nanmin(kp[..., 1], 1))) if len(kp) else 0.0
        return int(s.valid.sum()), size
    return max(range(len(seqs)), key=lambda i: key(seqs[i]))
