"""The detection stage: frames -> one person's H36M-17 2D track (a PoseSequence).

Per frame (streaming, frames are never kept): the detector proposes people
(with the tracker's expected box as a hint), :class:`PersonTracker` keeps the
chosen one, and the raw keypoints are stored. At the end the raw track is
converted once with :func:`video3d.keypoints.to_h36m` (BlazePose -> COCO ->
H36M via ``coco_to_h36m``, the mapping the lifters are trained with), skeletons
that cannot be one person are dropped
(:func:`video3d.detect.plausible.implausible_frames`) and holes are filled by
:func:`video3d.detect.gaps.fill_gaps`.

:class:`DetectionStage` (``push`` / ``finish``) lets a caller do other work on
each decoded frame in the same pass; :func:`detect_video` is the loop over an
iterable.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from video3d import keypoints as kpfmt
from video3d.detect.base import Detector, PersonKeypoints, ScanningDetector
from video3d.detect.gaps import default_max_gap, fill_gaps, summarize_gaps
from video3d.detect.plausible import implausible_frames
from video3d.detect.tracking import PersonTracker
from video3d.errors import NoPersonError, VideoError
from video3d.pose import PoseSequence

#: Called once per processed frame as ``progress(1)`` (e.g. a rich progress bar's advance).
Progress = Callable[[int], object]


@dataclass
class RawTrack:
    """One person's per-frame detections in the detector's own format, before any conversion.

    Attributes:
        keypoints: (T, K, 2) float32 pixels, NaN where not detected.
        scores: (T, K) float32, NaN where not detected.
        detected: (T,) bool, frames where the tracked person was found.
        rejected: (T,) bool, frames whose candidates were all rejected as other people.
        world: (T, K, 3) float32 metres from the detector's own 3D, or None.
        first_frame: index in the video of row 0.
    """

    keypoints: np.ndarray
    scores: np.ndarray
    detected: np.ndarray
    rejected: np.ndarray
    world: np.ndarray | None = None
    first_frame: int = 0

    def __len__(self) -> int:
        return len(self.detected)

    @property
    def stop(self) -> int:
        """One past the video index of the last row."""
        return self.first_frame + len(self)

    def frames(self, start: int, stop: int | None = None) -> "RawTrack":
        """Rows for video frames [start, stop) (clipped to what this track holds)."""
        a = min(max(start - self.first_frame, 0), len(self))
        b = len(self) if stop is None else min(max(stop - self.first_frame, a), len(self))
        return RawTrack(self.keypoints[a:b], self.scores[a:b], self.detected[a:b], self.rejected[a:b],
                        None if self.world is None else self.world[a:b], self.first_frame + a)

    @staticmethod
    def concatenate(parts: Sequence["RawTrack"]) -> "RawTrack":
        """Consecutive parts joined in order (a missing ``world`` becomes NaN rows)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        for a, b in zip(parts, parts[1:]):
            if a.stop != b.first_frame:
                raise ValueError(f"parts are not consecutive: rows end at frame {a.stop}, next starts at {b.first_frame}")
        world = None
        if any(p.world is not None for p in parts):
            world = np.concatenate([p.world if p.world is not None
                                    else np.full(p.keypoints.shape[:2] + (3,), np.nan, np.float32) for p in parts])
        return RawTrack(np.concatenate([p.keypoints for p in parts]), np.concatenate([p.scores for p in parts]),
                        np.concatenate([p.detected for p in parts]), np.concatenate([p.rejected for p in parts]),
                        world, parts[0].first_frame)

    def save(self, path: str | Path) -> None:
        """Write to an .npz (read back with :meth:`load`)."""
        arrays = dict(keypoints=self.keypoints, scores=self.scores, detected=self.detected,
                      rejected=self.rejected, first_frame=np.int64(self.first_frame))
        if self.world is not None:
            arrays["world"] = self.world
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    @staticmethod
    def load(path: str | Path) -> "RawTrack":
        with np.load(path, allow_pickle=False) as z:
            return RawTrack(z["keypoints"], z["scores"], z["detected"], z["rejected"],
                            z["world"] if "world" in z.files else None, int(z["first_frame"]))


class DetectionStage:
    """Incremental detection: ``push`` each RGB frame in order, then ``finish``.

    Args:
        detector: any :class:`~video3d.detect.base.Detector` (not closed here).
        fps: frame rate of the video.
        image_size: (width, height) of the frames.
        num_frames_hint: expected frame count, to pre-allocate (optional).
        person: 'auto' | 'largest' | 'center' | 'x,y' | (x, y); see
            :mod:`video3d.detect.tracking`. Rules other than 'auto' use the
            detector's tiled ``detect_all`` (if it has one) until someone is chosen.
        max_gap_s: longest hole (seconds) filled by interpolation.
        min_joint_score: H36M joints scoring below this in a detected frame are
            re-interpolated in time where possible (see :func:`fill_gaps`).
        progress: optional ``advance(n)`` callable, called with 1 per frame.
    """

    def __init__(self, detector: Detector, *, fps: float, image_size: tuple[int, int],
                 num_frames_hint: int | None = None, person: str | Sequence[float] = "auto",
                 max_gap_s: float = 0.5, min_joint_score: float = 0.1,
                 progress: Progress | None = None) -> None:
        fmt = detector.keypoint_format
        if fmt not in kpfmt.FORMATS:
            raise ValueError(f"detector {detector.name!r} has unknown keypoint format {fmt!r}")
        width, height = (int(v) for v in image_size)
        self.detector = detector
        self.fps = float(fps)
        self.image_size = (width, height)
        self.max_gap = default_max_gap(fps, max_gap_s)
        self.min_joint_score = min_joint_score
        self.progress = progress
        self.tracker = PersonTracker(person, fps=fps, image_size=self.image_size)
        self._scan = self.tracker.rule != "auto" and isinstance(detector, ScanningDetector)
        self._format = fmt
        self._num_joints = kpfmt.NUM_JOINTS_BY_FORMAT[fmt]
        capacity = max(int(num_frames_hint or 0), 16)
        self._keypoints = np.full((capacity, self._num_joints, 2), np.nan, np.float32)
        self._scores = np.full((capacity, self._num_joints), np.nan, np.float32)
        self._detected = np.zeros(capacity, dtype=bool)
        self._rejected = np.zeros(capacity, dtype=bool)
        self._world: np.ndarray | None = None  # (capacity, K, 3), allocated when a detector gives 3D
        self._count = 0

    @property
    def num_frames(self) -> int:
        """Frames pushed so far."""
        return self._count

    def _grow(self) -> None:
        extra = len(self._keypoints)
        self._keypoints = np.concatenate(
            [self._keypoints, np.full((extra, self._num_joints, 2), np.nan, np.float32)])
        self._scores = np.concatenate([self._scores, np.full((extra, self._num_joints), np.nan, np.float32)])
        self._detected = np.concatenate([self._detected, np.zeros(extra, dtype=bool)])
        self._rejected = np.concatenate([self._rejected, np.zeros(extra, dtype=bool)])
        if self._world is not None:
            self._world = np.concatenate([self._world, np.full((extra, self._num_joints, 3), np.nan, np.float32)])

    def _check(self, frame: np.ndarray) -> None:
        width, height = self.image_size
        if frame.ndim != 3 or frame.shape[:2] != (height, width):
            raise ValueError(f"frame {self._count} has shape {frame.shape}, "
                             f"expected ({height}, {width}, 3) from image_size {self.image_size}")

    def _check_person(self, person: PersonKeypoints) -> None:
        if person.format != self._format or np.shape(person.keypoints) != (self._num_joints, 2):
            raise ValueError(f"detector {self.detector.name!r} returned {person.format!r} keypoints of shape "
                             f"{np.shape(person.keypoints)}, expected {self._format!r} ({self._num_joints}, 2)")

    def push(self, frame_rgb: np.ndarray) -> PersonKeypoints | None:
        """Detect in one (H, W, 3) uint8 RGB frame; return the tracked person (raw format) or None."""
        frame = np.asarray(frame_rgb)
        self._check(frame)
        if self._scan and not self.tracker.active:
            people = self.detector.detect_all(frame)  # type: ignore[attr-defined]
        else:
            people = self.detector.detect(frame, self.tracker.expected_box())
        rejected_before = self.tracker.rejected
        chosen = self.tracker.update(people)
        if self._count == len(self._keypoints):
            self._grow()
        self._rejected[self._count] = self.tracker.rejected > rejected_before
        if chosen is not None:
            self._check_person(chosen)
            self._keypoints[self._count] = chosen.keypoints
            self._scores[self._count] = chosen.scores
            self._detected[self._count] = True
            if chosen.world is not None:
                if self._world is None:
                    self._world = np.full((len(self._keypoints), self._num_joints, 3), np.nan, np.float32)
                self._world[self._count] = chosen.world
        self._count += 1
        if self.progress is not None:
            self.progress(1)
        return chosen

    def raw_track(self, first_frame: int = 0) -> RawTrack:
        """Copies of the per-frame detections pushed so far (row 0 = video frame ``first_frame``)."""
        t = self._count
        return RawTrack(self._keypoints[:t].copy(), self._scores[:t].copy(), self._detected[:t].copy(),
                        self._rejected[:t].copy(), None if self._world is None else self._world[:t].copy(),
                        first_frame)

    def finish(self) -> PoseSequence:
        """Convert to H36M-17, fill gaps, and return the :class:`PoseSequence`.

        Raises VideoError when no frame was pushed and NoPersonError when no
        frame had the person.
        """
        return finish_track(self.raw_track(), detector=self.detector.name, raw_format=self._format, fps=self.fps,
                            image_size=self.image_size, max_gap=self.max_gap,
                            min_joint_score=self.min_joint_score, person=self.tracker.rule)


def finish_track(raw: RawTrack, *, detector: str, raw_format: str, fps: float, image_size: tuple[int, int],
                 max_gap: int, min_joint_score: float = 0.1,
                 person: str | tuple[float, float] = "auto") -> PoseSequence:
    """A whole clip's raw track -> :class:`PoseSequence` (H36M-17, implausible frames dropped, gaps filled).

    Raises VideoError when the track is empty and NoPersonError when no frame had the person.
    """
    t = len(raw)
    if t == 0:
        raise VideoError("no frames to detect people in")
    raw_kp = raw.keypoints.copy()
    raw_sc = raw.scores.copy()
    detected = raw.detected.copy()
    num_detected = int(detected.sum())
    if num_detected == 0:
        raise NoPersonError(f"no person detected in {t} frames")
    h36m_kp, h36m_sc = kpfmt.to_h36m(raw_kp, np.nan_to_num(raw_sc, nan=0.0), raw_format)
    implausible = implausible_frames(h36m_kp, detected)  # limbs on two people, one-frame body jumps
    detected &= ~implausible
    filled = fill_gaps(h36m_kp, h36m_sc, detected, max_gap, min_joint_score=min_joint_score)
    detector_3d = None
    if raw.world is not None:
        # The detector's own metric 3D of the tracked person, converted with the same
        # mapping as the 2D; NaN where not detected.
        detector_3d = kpfmt.to_h36m(raw.world.copy(), None, raw_format)[0].astype(np.float32)
    return PoseSequence(keypoints_2d=filled.keypoints.astype(np.float32),
                        scores_2d=np.clip(filled.scores, 0.0, 1.0).astype(np.float32),
                        valid=filled.valid, fps=float(fps), image_size=tuple(image_size),
                        detector=detector, interpolated=filled.interpolated,
                        joint_filled=filled.joint_filled, gaps=filled.gaps,
                        gap_summary=summarize_gaps(filled.gaps, t), num_detected=num_detected,
                        max_gap=max_gap, person=person,
                        rejected_frames=int(raw.rejected.sum()), raw_format=raw_format,
                        keypoints_raw=raw_kp, scores_raw=raw_sc,
                        implausible_frames=int(implausible.sum()), detector_3d=detector_3d)


def detect_video(frames: Iterable[np.ndarray], detector: Detector, *, fps: float,
                 image_size: tuple[int, int], num_frames_hint: int | None = None,
                 person: str | Sequence[float] = "auto", max_gap_s: float = 0.5,
                 progress: Progress | None = None) -> PoseSequence:
    """Run ``detector`` over ``frames`` ((H, W, 3) uint8 RGB, streamed) -> PoseSequence (H36M-17).

    See :class:`DetectionStage` for the arguments. The detector is not closed.
    """
    stage = DetectionStage(detector, fps=fps, image_size=image_size, num_frames_hint=num_frames_hint,
                           person=person, max_gap_s=max_gap_s, progress=progress)
    for frame in frames:
        stage.push(frame)
    return stage.finish()
