"""Detection on several cores (video3d.detect.segments): plan, stitching, same outputs as one process, clean failure."""
from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

import video3d.detect.segments as segments
from tests.processes import assert_gone, interrupt_run
from tests.videos import person_clip, write_frames
from video3d.detect.base import PersonKeypoints, keypoints_bbox
from video3d.detect.segments import Segment, detect_segments, plan_segments, stitch
from video3d.detect.stage import RawTrack
from video3d.errors import UserError
from video3d.io.video import EndOfVideo, iter_frames, probe
from video3d.options import RunOptions



# ------------------------------------------------------------------------ plan

@pytest.mark.parametrize("frames,count", [(0, 1), (100, 1), (299, 1), (300, 2), (599, 2), (600, 4), (18000, 4)])
def test_plan_covers_the_clip_once_with_equal_work(frames, count):
    plan = plan_segments(frames, 30.0)
    assert len(plan) == count
    assert plan[0].warmup == plan[0].start == 0 and plan[-1].stop is None
    for a, b in zip(plan, plan[1:]):
        assert a.stop == b.start  # kept ranges are consecutive: every frame kept exactly once
        assert b.start - b.warmup == 30  # one second of warm-up at 30 fps
    if count > 1:
        detected = [(s.stop if s.stop is not None else frames) - s.warmup for s in plan]
        lead = segments.LEAD_FRAMES
        assert abs(detected[0] - detected[1] - lead) <= 1  # the parent's head start for the children
        assert max(detected[1:]) - min(detected[1:]) <= 1  # the children detect the same number of frames
    assert plan_segments(frames, 30.0) == plan  # depends on the video only


def test_plan_does_not_depend_on_the_machine(monkeypatch):
    plan = plan_segments(900, 25.0)
    monkeypatch.setattr(segments, "usable_cores", lambda: 16)
    assert plan_segments(900, 25.0) == plan


# ------------------------------------------------------------------- raw track

def _track(first: int, n: int, x: float | np.ndarray, detected=None) -> RawTrack:
    xs = np.broadcast_to(np.asarray(x, np.float32), (n,))
    kp = np.zeros((n, 33, 2), np.float32)
    kp[:, :, 0] = xs[:, None] + np.linspace(0, 40, 33)
    kp[:, :, 1] = np.linspace(10, 110, 33)
    det = np.ones(n, bool) if detected is None else np.asarray(detected)
    kp[~det] = np.nan
    return RawTrack(kp, np.where(det[:, None], 0.9, np.nan).astype(np.float32), det, np.zeros(n, bool),
                    np.zeros((n, 33, 3), np.float32), first)


def test_raw_track_slices_joins_and_round_trips(tmp_path):
    a, b = _track(0, 10, 5.0), _track(10, 6, 50.0)
    both = RawTrack.concatenate([a, b])
    assert len(both) == 16 and both.first_frame == 0 and both.stop == 16
    part = both.frames(8, 12)
    assert part.first_frame == 8 and len(part) == 4
    np.testing.assert_array_equal(part.keypoints[2:], b.keypoints[:2])
    with pytest.raises(ValueError, match="consecutive"):
        RawTrack.concatenate([a, _track(11, 3, 0.0)])
    both.save(tmp_path / "t.npz")
    back = RawTrack.load(tmp_path / "t.npz")
    for name in ("keypoints", "scores", "detected", "rejected", "world"):
        np.testing.assert_array_equal(getattr(back, name), getattr(both, name))
    assert back.first_frame == 0


def test_stitch_accepts_the_same_person_and_names_the_other():
    seg = Segment(warmup=20, start=30, stop=None)
    previous = _track(0, 30, 100.0)
    assert stitch(previous, _track(20, 40, 101.0), seg)[0]
    same, frame, box = stitch(previous, _track(20, 40, 400.0), seg)
    assert not same and frame == 20
    np.testing.assert_allclose(box[[0, 2]], [100.0, 140.0])
    # Nobody in the overlap on one side: nothing contradicts the segment.
    assert stitch(previous, _track(20, 40, 400.0, detected=np.arange(40) >= 10), seg) == (True, None, None)


# ------------------------------------------- stitching with a scripted detector

def _coded_clip(path: Path, n: int) -> Path:
    """Frames whose index is written as 8 black/white blocks (survives H.264)."""
    frames = []
    for i in range(n):
        f = np.full((64, 320, 3), 128, np.uint8)
        for bit in range(8):
            f[8:56, 8 + 38 * bit:38 + 38 * bit] = 255 if (i >> bit) & 1 else 0
        frames.append(f)
    return write_frames(path, frames, 30.0)


def _frame_index(frame: np.ndarray) -> int:
    return sum(1 << bit for bit in range(8) if frame[32, 23 + 38 * bit, 0] > 128)


def _person(x: float, size: float) -> PersonKeypoints:
    kp = np.stack([x + np.linspace(0, size, 33), np.linspace(2, 2 + size, 33)], 1).astype(np.float32)
    return PersonKeypoints(kp, np.full(33, 0.9, np.float32), keypoints_bbox(kp), "blazepose")


class TwoPeople:
    """A left person (always there) and a right one that grows from frame 40, so a fresh
    'auto' start after frame 40 picks the right one while a running track keeps the left."""

    name, keypoint_format = "scripted", "blazepose"

    def detect(self, frame, hint=None):
        i = _frame_index(frame)
        return [_person(20.0, 40.0), _person(200.0, 20.0 if i < 40 else 60.0)]

    def close(self):
        pass


def test_a_segment_that_started_on_someone_else_is_detected_again(tmp_path, monkeypatch):
    clip = _coded_clip(tmp_path / "coded.mp4", 100)
    monkeypatch.setattr("video3d.options.make_detector", lambda options: TwoPeople())
    plan = [Segment(0, 0, 50), Segment(45, 50, None)]
    raw, name, fmt = detect_segments(probe(clip), RunOptions(), plan, workers=1)
    assert (name, fmt, len(raw)) == ("scripted", "blazepose", 100) and raw.detected.all()
    assert np.nanmax(raw.keypoints[:, :, 0]) < 100  # the left person throughout, both segments
    # Without the stitch check the second segment would have followed the right person:
    fresh = segments._SegmentRunner(probe(clip), RunOptions(), None).here(45, None, "auto")
    assert np.nanmin(fresh.keypoints[:, :, 0]) >= 200


def test_a_header_longer_than_the_stream_is_not_an_error(tmp_path, monkeypatch):
    clip = _coded_clip(tmp_path / "coded.mp4", 60)
    with pytest.raises(EndOfVideo):
        next(iter_frames(clip, start=80))
    monkeypatch.setattr("video3d.options.make_detector", lambda options: TwoPeople())
    plan = plan_segments(400, 30.0, min_frames=100)  # the header says 400 frames; there are 60
    raw, _, _ = detect_segments(probe(clip), RunOptions(), plan, workers=1)
    assert len(raw) == 60 and raw.first_frame == 0


def test_start_frame_decodes_the_same_pixels(tmp_path):
    clip = _coded_clip(tmp_path / "coded.mp4", 40)
    full = list(iter_frames(clip))
    tail = list(iter_frames(clip, start=25))
    assert len(tail) == 15 and [_frame_index(f) for f in tail] == list(range(25, 40))
    for a, b in zip(full[25:], tail):
        np.testing.assert_array_equal(a, b)


# ------------------------------------- child processes: same outputs, clean failure

@pytest.fixture(scope="module")
def walker(tmp_path_factory):
    return person_clip(tmp_path_factory.mktemp("seg") / "walker.mp4", frames=72, fps=25.0)[0]


def test_children_give_the_same_keypoints_as_one_process(walker, tiny_weights, tmp_path, monkeypatch):
    from video3d.pipeline import run_video

    monkeypatch.setattr(segments, "MIN_SEGMENT_FRAMES", 30)  # 72 frames -> 2 segments
    assert len(plan_segments(72, 25.0)) == 2
    weights = str(tiny_weights["ampose"])
    one = run_video(walker, tmp_path / "one", RunOptions(weights=weights, sequential=True, render=False,
                                                          viewer=False))
    two = run_video(walker, tmp_path / "two", RunOptions(weights=weights, detect_workers=2, render=False,
                                                          viewer=False))
    a, b = np.load(one.out_dir / "keypoints.npz"), np.load(two.out_dir / "keypoints.npz")
    assert set(a.files) == set(b.files)
    for key in a.files:
        assert np.array_equal(a[key], b[key], equal_nan=a[key].dtype.kind == "f"), key
    assert a["valid"].sum() >= 60  # the mannequin was found in both segments
    assert (one.out_dir / "keypoints.npz").read_bytes() == (two.out_dir / "keypoints.npz").read_bytes()


def test_a_failing_child_is_one_error_and_leaves_nothing(walker, tiny_weights, tmp_path, monkeypatch):
    from video3d.child import PythonChild
    from video3d.pipeline import run_video

    monkeypatch.setattr(segments, "MIN_SEGMENT_FRAMES", 30)

    def broken_child(self, first_frame, stop, out):  # a job the worker cannot read
        return PythonChild("video3d.detect.worker", [], b"{not json", what="detection process")
    monkeypatch.setattr(segments._SegmentRunner, "child", broken_child)
    with pytest.raises(UserError, match="detection process failed: JSONDecodeError"):
        run_video(walker, tmp_path, RunOptions(weights=str(tiny_weights["ampose"]), detect_workers=2))
    assert list(tmp_path.iterdir()) == []


_RUN = """
import signal, sys
import video3d.detect.segments as segments
segments.MIN_SEGMENT_FRAMES = 30
import video3d.detect.stage as stage
orig = stage.DetectionStage.push
import time
def push(self, frame):  # slow detection in this process, so the child is still running
    print("DETECTING", flush=True)
    time.sleep(0.2)
    return orig(self, frame)
stage.DetectionStage.push = push
from video3d.pipeline import RunOptions, run_video
def _term(signum, frame):  # what the CLI does with SIGTERM: unwind like Ctrl-C
    raise KeyboardInterrupt
signal.signal(signal.SIGTERM, _term)
run_video(sys.argv[1], sys.argv[2], RunOptions(weights=sys.argv[3], detect_workers=2))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_during_detection_leaves_no_child_and_no_staging(walker, tiny_weights, tmp_path, sig):
    out = tmp_path / "out"

    def detection_child(pid: int) -> list[str]:
        return subprocess.run(["pgrep", "-P", str(pid), "-f", "video3d.detect.worker"],
                              capture_output=True, text=True).stdout.split()
    rc, children = interrupt_run(_RUN, [str(walker), str(out), str(tiny_weights["ampose"])], b"DETECTING",
                                 detection_child, sig)
    assert rc != 0
    assert_gone(children, out)
