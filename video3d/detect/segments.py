"""Detection on several cores: the clip cut into segments, detected side by side, stitched.

BlazePose runs on one core (26 ms per 720p frame, CPU time = wall time), and
everything after detection needs the whole clip (gap filling, consistent
bones, world levelling), so the only way to use a second core for the
largest cost is to detect different parts of the clip at the same time.

The plan depends on the video only (its frame count and rate), never on the
machine, so the same input gives the same keypoints on any machine and in
either mode (in-process one segment after another, or child processes side
by side; :func:`detect_segments`):

- ``len(plan)`` = the largest power of two <= ``num_frames // min_frames``,
  at most ``max_segments`` (1, 2 or 4: whole waves on 2- and 4-core
  machines); segment i keeps frames [start, stop), and every segment
  detects the same number of frames (warm-up included) except the first,
  which the parent detects while the children start up, and gets
  ``LEAD_FRAMES`` more.
- Every segment but the first starts its detector ``warmup_s`` (1 s) before
  ``start``: BlazePose finds its person, and its landmark filter settles,
  on frames the previous segment keeps.
- Stitching: on those overlap frames both segments saw the person; if their
  boxes agree (median IoU >= 0.5 where both detected) the segment followed
  the same person and is kept. Otherwise (BlazePose's fresh start picked
  someone else) the segment is detected again, in this process, from the
  first overlap frame with the previous segment's person (its box centre as
  the ``x,y`` selection rule). Segments are checked in order, each against
  the final version of the one before.

The difference from one uninterrupted pass is limited to the landmark
filter's state after the warm-up (docs/speed.md measures it).
"""
from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from video3d.detect.base import box_center, box_iou, keypoints_bbox
from video3d.detect.stage import DetectionStage, RawTrack

if TYPE_CHECKING:
    from video3d.io.video import VideoInfo

__all__ = ["Segment", "plan_segments", "detect_segment", "stitch", "detect_segments", "usable_cores",
           "MIN_SEGMENT_FRAMES", "MAX_SEGMENTS"]

#: Shortest segment: below twice this a clip is detected in one pass.
MIN_SEGMENT_FRAMES = 150
#: Most segments a clip is cut into (the plan must not depend on the machine).
MAX_SEGMENTS = 4
#: Extra frames for the first segment: the parent detects it while the children start
#: (~1.5 s: Python, NumPy, MediaPipe and its graph), ~45 BlazePose frames on a 2-core CPU.
LEAD_FRAMES = 45
#: Seconds each later segment is detected before the frames it keeps.
WARMUP_S = 1.0
#: Median box IoU over the overlap above which two segments followed the same person.
SAME_PERSON_IOU = 0.5


@dataclass(frozen=True)
class Segment:
    """Frames [start, stop) of the clip, detected from ``warmup`` (<= start); ``stop`` None = to the end."""

    warmup: int
    start: int
    stop: int | None


def plan_segments(num_frames: int, fps: float, *, min_frames: int | None = None,
                  max_segments: int = MAX_SEGMENTS, warmup_s: float = WARMUP_S) -> list[Segment]:
    """The segment plan for a clip of ``num_frames`` (header count) at ``fps``.

    Returns one segment ``Segment(0, 0, None)`` for short clips or an unknown
    count (``num_frames <= 0``). The last segment always runs to the end of
    the stream, whatever the header said.
    """
    min_frames = MIN_SEGMENT_FRAMES if min_frames is None else min_frames
    fit = min(int(num_frames) // max(int(min_frames), 1), int(max_segments)) if num_frames > 0 else 1
    count = 1 << (max(fit, 1).bit_length() - 1)  # largest power of two <= fit
    if count == 1:
        return [Segment(0, 0, None)]
    warmup = max(int(round(warmup_s * fps)), 1)
    # Every segment detects the same number of frames D (the later ones W of them warm-up),
    # except that the first, detected by the parent while the children start up, gets
    # LEAD_FRAMES more: it keeps D + LEAD (k - 1) / k frames, the others D - W - LEAD / k;
    # D = (T + (k - 1) W) / k.
    detected = (num_frames + (count - 1) * warmup) / count
    first = detected + LEAD_FRAMES * (count - 1) / count
    later = detected - warmup - LEAD_FRAMES / count
    bounds = [0] + [round(first + i * later) for i in range(count - 1)] + [None]
    return [Segment(max(0, bounds[i] - (warmup if i else 0)), bounds[i], bounds[i + 1]) for i in range(count)]


def detect_segment(frames, detector, *, fps: float, image_size: tuple[int, int], first_frame: int,
                   stop: int | None, person="auto", progress: Callable[[int], object] | None = None) -> RawTrack:
    """Raw detections of video frames [first_frame, stop) from ``frames`` (an iterator starting at first_frame)."""
    stage = DetectionStage(detector, fps=fps, image_size=image_size, person=person, progress=progress,
                           num_frames_hint=None if stop is None else stop - first_frame)
    for index, frame in enumerate(frames, start=first_frame):
        if stop is not None and index >= stop:
            break
        stage.push(frame)
    return stage.raw_track(first_frame)


def _boxes(track: RawTrack) -> np.ndarray:
    """(T, 4) boxes of the detected rows (NaN elsewhere)."""
    out = np.full((len(track), 4), np.nan)
    for i in np.flatnonzero(track.detected):
        out[i] = keypoints_bbox(track.keypoints[i])
    return out


def stitch(previous: RawTrack, current: RawTrack, segment: Segment) -> tuple[bool, int | None, np.ndarray | None]:
    """Did ``current`` (detected from ``segment.warmup``) follow ``previous``'s person?

    Returns (same person, first overlap frame where both detected, previous's box there).
    With no frame where both detected there is nothing to contradict: (True, None, None).
    """
    a = previous.frames(segment.warmup, segment.start)
    b = current.frames(segment.warmup, segment.start)
    n = min(len(a), len(b))
    both = np.flatnonzero(a.detected[:n] & b.detected[:n])
    if both.size == 0:
        return True, None, None
    boxes_a, boxes_b = _boxes(a), _boxes(b)
    ious = np.array([box_iou(boxes_a[i], boxes_b[i]) for i in both])
    first = int(both[0])
    return bool(np.median(ious) >= SAME_PERSON_IOU), a.first_frame + first, boxes_a[first]


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _SegmentRunner:
    """Detects one segment of ``info``'s video in this process, or starts a child that does."""

    def __init__(self, info: "VideoInfo", options, progress: Callable[[int], object] | None) -> None:
        self.info, self.options = info, options
        self.progress = progress
        self._lock = threading.Lock()
        self.detector_name: str | None = None     # set by the first segment detected here
        self.keypoint_format: str | None = None

    def advance(self, n: int) -> None:
        if self.progress is not None:
            with self._lock:
                self.progress(n)

    def here(self, first_frame: int, stop: int | None, person) -> RawTrack:
        from video3d.io.video import EndOfVideo, iter_frames
        from video3d.options import make_detector

        detector = make_detector(self.options)
        self.detector_name, self.keypoint_format = detector.name, detector.keypoint_format
        try:
            frames = iter_frames(self.info.path, self.info, start=first_frame)
            try:
                return detect_segment(frames, detector, fps=self.info.fps, image_size=self.info.size,
                                      first_frame=first_frame, stop=stop, person=person,
                                      progress=self.advance)
            except EndOfVideo:
                return _empty(first_frame)  # the stream ended before this segment (header count too high)
        finally:
            detector.close()

    def child(self, first_frame: int, stop: int | None, out: Path):
        from video3d.child import PythonChild

        job = {"video": str(self.info.path), "options": asdict(self.options), "first_frame": first_frame,
               "stop": stop, "out": str(out)}

        def on_line(line: str) -> None:
            if line.startswith("frames "):
                self.advance(int(line.split()[1]))
        return PythonChild("video3d.detect.worker", [], json.dumps(job).encode(), what="detection process",
                           on_line=on_line)


def _empty(first_frame: int) -> RawTrack:
    return RawTrack(np.zeros((0, 0, 2), np.float32), np.zeros((0, 0), np.float32), np.zeros(0, bool),
                    np.zeros(0, bool), None, first_frame)


def detect_segments(info: "VideoInfo", options, plan: Sequence[Segment], *, workers: int = 1,
                    progress: Callable[[int], object] | None = None,
                    while_waiting: Callable[[], None] | None = None) -> tuple[RawTrack, str, str]:
    """Detect every segment of ``plan`` and stitch them into one raw track of the whole clip.

    Returns (raw track of the whole clip, detector name, its keypoint format).

    Args:
        info: the video's :func:`~video3d.io.video.probe` (path, fps, size).
        options: the run's :class:`~video3d.pipeline.RunOptions` (detector, person).
        plan: from :func:`plan_segments`.
        workers: segments detected at the same time (1: all in this process,
            one after another; more: child processes). Outputs do not depend on it.
        progress: ``advance(n)`` callable; counts overlap frames too.
        while_waiting: called once, when this process has no segment left to
            detect (while children may still run): other work to overlap
            with detection. Called in every mode, so outputs cannot depend on it.
    """
    runner = _SegmentRunner(info, options, progress)
    first_person = options.person
    if len(plan) == 1 or workers <= 1:
        tracks = [runner.here(seg.warmup, seg.stop, first_person if i == 0 else "auto")
                  for i, seg in enumerate(plan)]
        if while_waiting is not None:
            while_waiting()
    else:
        tracks = _detect_in_children(runner, plan, workers, first_person, while_waiting)
    kept = [tracks[0].frames(plan[0].start, plan[0].stop)]
    previous = tracks[0]
    for seg, track in zip(plan[1:], tracks[1:]):
        same, frame, box = stitch(previous, track, seg)
        if not same:
            track = runner.here(frame, seg.stop, tuple(float(v) for v in box_center(box)))
        kept.append(track.frames(seg.start, seg.stop))
        previous = track
        if seg.stop is not None and track.stop < seg.stop:
            break  # the stream ended inside this segment
    kept = [k for k in kept if len(k)] or kept[:1]
    return RawTrack.concatenate(kept), runner.detector_name, runner.keypoint_format


def _detect_in_children(runner: _SegmentRunner, plan: Sequence[Segment], workers: int, first_person,
                        while_waiting: Callable[[], None] | None = None) -> list[RawTrack]:
    """Segment 0 in this process and the others in up to ``workers - 1`` child processes; this
    process also takes pending segments itself whenever it is free."""
    with tempfile.TemporaryDirectory(prefix="video3d-detect-") as tmp:
        outs = [Path(tmp) / f"segment{i}.npz" for i in range(len(plan))]
        pending = list(range(1, len(plan)))
        running: dict[int, object] = {}
        here: dict[int, RawTrack] = {}

        def reap_and_launch() -> bool:
            done = [i for i, child in running.items() if child.poll() is not None]
            for i in done:
                running[i].wait()  # UserError if it failed
                running.pop(i).stop()
            while pending and len(running) < workers - 1:
                i = pending.pop(0)
                running[i] = runner.child(plan[i].warmup, plan[i].stop, outs[i]).start()
            return bool(done)
        try:
            reap_and_launch()
            here[0] = runner.here(plan[0].warmup, plan[0].stop, first_person)
            while pending or running:
                reap_and_launch()
                if pending:
                    i = pending.pop(0)
                    here[i] = runner.here(plan[i].warmup, plan[i].stop, "auto")
                    continue
                if while_waiting is not None:
                    while_waiting()
                    while_waiting = None
                elif running and not reap_and_launch():
                    time.sleep(0.05)
            if while_waiting is not None:
                while_waiting()
        finally:
            for child in running.values():
                child.stop()
        return [here[i] if i in here else RawTrack.load(outs[i]) for i in range(len(plan))]
