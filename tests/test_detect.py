"""2D detection stage: tracker, stage (with a fake detector) and BlazePose."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from video3d import keypoints as kpfmt
from video3d.detect.base import PersonKeypoints, ScanningDetector, box_iou, keypoints_bbox
from video3d.detect.stage import DetectionStage, detect_video
from video3d.detect.tracking import PersonTracker, choose, parse_person
from video3d.errors import NoPersonError, UserError, VideoError

PARK = Path("/work/shared/media/street/park.mp4")

# A fixed layout of keypoints inside a unit box (corners included so the
# keypoints' bounding box is the person's box).
_LAYOUT = np.random.default_rng(0).uniform(0.1, 0.9, size=(33, 2))
_LAYOUT[:4] = [[0, 0], [1, 0], [0, 1], [1, 1]]


def person(cx: float, cy: float, w: float = 50, h: float = 100, fmt: str = "coco",
           score: float = 0.9) -> PersonKeypoints:
    """A synthetic person whose keypoints fill the box centred at (cx, cy)."""
    k = kpfmt.NUM_JOINTS_BY_FORMAT[fmt]
    kp = (np.array([cx - w / 2, cy - h / 2]) + _LAYOUT[:k] * [w, h]).astype(np.float32)
    return PersonKeypoints(keypoints=kp, scores=np.full(k, score, np.float32),
                           bbox=keypoints_bbox(kp), format=fmt)


def centre_x(p: PersonKeypoints | None) -> float | None:
    return None if p is None else float(0.5 * (p.bbox[0] + p.bbox[2]))


# --------------------------------------------------------------------- tracker

def test_parse_person() -> None:
    assert parse_person("auto") == "auto"
    assert parse_person(" Largest ") == "largest"
    assert parse_person("centre") == "center"
    assert parse_person("10, 20.5") == (10.0, 20.5)
    assert parse_person((3, 4)) == (3.0, 4.0)
    for bad in ("tallest", "1,2,3", "nan,1", "a,b", (1, 2, 3)):
        with pytest.raises(UserError):
            parse_person(bad)
    with pytest.raises(ValueError):
        PersonTracker("center")  # needs image_size


def test_choose_rules() -> None:
    small = person(100, 100, 40, 80)
    big = person(500, 300, 80, 160, score=0.3)
    middle = person(330, 240, 50, 100)
    people = [small, big, middle]
    assert choose([], "auto") is None
    assert choose(people, "largest") == 1
    assert choose(people, "auto") == 2          # area x mean score: big is unsure
    assert choose(people, "center", (640, 480)) == 2
    assert choose(people, (105, 90)) == 0       # inside the small box
    assert choose(people, (620, 460)) == 1      # nearest box
    overlapping = [person(100, 100, 200, 200), person(120, 100, 40, 80)]
    assert choose(overlapping, (118, 100)) == 1  # inside both: nearest centre


def test_tracker_follows_one_of_two_crossing_people() -> None:
    tracker = PersonTracker((100, 200), fps=30)
    for t in range(31):
        a = person(100 + 10 * t, 200, 50, 100)
        b = person(400 - 10 * t, 205, 52, 98)
        chosen = tracker.update([b, a] if t % 2 else [a, b])
        assert chosen is not None
        assert centre_x(chosen) == pytest.approx(100 + 10 * t, abs=1e-3), t
    assert tracker.rejected == 0


def test_tracker_rejects_switch_and_reacquires_near_last_position() -> None:
    tracker = PersonTracker("auto", fps=30)
    stranger = person(700, 220)
    for t in range(10):
        assert centre_x(tracker.update([person(100 + 2 * t, 200)])) == pytest.approx(100 + 2 * t, abs=1e-3)
    for t in range(10, 20):  # our person is hidden; someone far away is seen
        assert tracker.update([stranger]) is None
        box = tracker.expected_box()
        assert box is not None and box[0] < 100 < box[2]
    assert tracker.rejected == 10 and tracker.lost == 10
    back = tracker.update([stranger, person(140, 200)])
    assert centre_x(back) == pytest.approx(140, abs=1e-3)
    assert tracker.lost == 0


def test_tracker_rejects_one_frame_jump_to_neighbour() -> None:
    tracker = PersonTracker("auto", fps=30)
    tracker.update([person(100, 150)])
    # Box overlaps (IoU ~0.1) but every keypoint moved ~1.1 box sizes down.
    below = person(100, 230)
    assert box_iou(below.bbox, person(100, 150).bbox) >= 0.1
    assert tracker.update([below]) is None
    assert centre_x(tracker.update([person(101, 151)])) == pytest.approx(101, abs=1e-3)


def test_tracker_search_grows_while_lost() -> None:
    tracker = PersonTracker("auto", fps=30)
    tracker.update([person(100, 200)])
    far = person(100 + 5 * 70.7, 200)  # 5 box sizes away
    results = [tracker.update([far]) for _ in range(120)]
    first = next(i for i, r in enumerate(results) if r is not None)
    # accepted once 1 + 1.5 * t >= ~5 sizes (t seconds lost): t ~ 2.7 s
    assert 70 <= first <= 90


# ----------------------------------------------------------------------- stage

class FakeDetector:
    """Scripted detector: returns script[i] on the i-th call."""

    name = "fake"

    def __init__(self, script: list[list[PersonKeypoints]], fmt: str = "coco") -> None:
        self.script = script
        self.keypoint_format = fmt
        self.hints: list[np.ndarray | None] = []

    def detect(self, frame_rgb: np.ndarray, hint: np.ndarray | None = None) -> list[PersonKeypoints]:
        self.hints.append(hint)
        return self.script[len(self.hints) - 1]

    def close(self) -> None:
        pass


class FakeScanner(FakeDetector):
    """Favours the small person in ``detect``; ``detect_all`` sees everyone."""

    def __init__(self, script: list[list[PersonKeypoints]], everyone: list[PersonKeypoints]) -> None:
        super().__init__(script)
        self.everyone = everyone
        self.scans = 0

    def detect_all(self, frame_rgb: np.ndarray) -> list[PersonKeypoints]:
        self.scans += 1
        return self.everyone


def frames(n: int, size: tuple[int, int] = (64, 48)) -> list[np.ndarray]:
    return [np.zeros((size[1], size[0], 3), np.uint8) for _ in range(n)]


def random_people(n: int, fmt: str, rng: np.random.Generator) -> list[PersonKeypoints]:
    """n frames of one person jittering in place, scores >= 0.5."""
    out = []
    for _ in range(n):
        p = person(32, 24, 20, 30, fmt=fmt)
        p.keypoints = p.keypoints + rng.normal(0, 0.5, p.keypoints.shape).astype(np.float32)
        p.scores = rng.uniform(0.5, 1.0, p.scores.shape).astype(np.float32)
        p.bbox = keypoints_bbox(p.keypoints)
        out.append(p)
    return out


@pytest.mark.parametrize("fmt", ["coco", "blazepose"])
def test_stage_converts_with_to_h36m_and_survives_empty_first_frames(fmt: str) -> None:
    rng = np.random.default_rng(1)
    script = [[], [], []] + [[p] for p in random_people(9, fmt, rng)]
    calls = []
    seq = detect_video(frames(12), FakeDetector(script, fmt), fps=30.0, image_size=(64, 48),
                       progress=lambda n=1: calls.append(n))
    assert len(seq) == 12 and calls == [1] * 12
    assert seq.valid.tolist() == [False] * 3 + [True] * 9
    assert np.isnan(seq.keypoints_2d[:3]).all() and (seq.scores_2d[:3] == 0).all()
    raw_kp = np.stack([s[0].keypoints for s in script[3:]])
    raw_sc = np.stack([s[0].scores for s in script[3:]])
    want_kp, want_sc = kpfmt.to_h36m(raw_kp, raw_sc, fmt)
    np.testing.assert_allclose(seq.keypoints_2d[3:], want_kp, rtol=0, atol=1e-5)
    np.testing.assert_allclose(seq.scores_2d[3:], want_sc, rtol=0, atol=1e-6)
    if fmt == "blazepose":  # BlazePose -> COCO -> H36M through coco_to_h36m
        via_coco = kpfmt.coco_to_h36m(*kpfmt.blazepose_to_coco(raw_kp, raw_sc))[0]
        np.testing.assert_allclose(seq.keypoints_2d[3:], via_coco, atol=1e-5)
    k = kpfmt.NUM_JOINTS_BY_FORMAT[fmt]
    assert seq.keypoints_raw.shape == (12, k, 2) and seq.scores_raw.shape == (12, k)
    assert np.isnan(seq.keypoints_raw[:3]).all() and np.isnan(seq.scores_raw[:3]).all()
    np.testing.assert_array_equal(seq.keypoints_raw[3:], raw_kp)
    assert seq.raw_format == fmt and seq.num_detected == 9
    assert seq.detector_3d is None  # the fake detector gives no 3D
    assert seq.gaps == [(0, 2, 3, False)]
    assert seq.detector == "fake" and seq.fps == 30.0 and seq.image_size == (64, 48)


def test_stage_fills_short_gap_and_passes_hints() -> None:
    script = [[person(20 + t, 24, 10, 20)] for t in range(10)]
    script[4] = script[5] = []
    fake = FakeDetector(script)
    stage = DetectionStage(fake, fps=10.0, image_size=(64, 48), num_frames_hint=2, max_gap_s=0.5)
    outputs = [stage.push(f) for f in frames(10)]
    seq = stage.finish()
    assert outputs[4] is None and outputs[6] is not None
    assert seq.valid.all() and seq.interpolated.tolist() == [t in (4, 5) for t in range(10)]
    assert seq.gaps == [(4, 5, 2, True)] and seq.max_gap == 5
    assert seq.gap_summary == "1 gap: 1 filled (2 frames)"
    pelvis_x = seq.keypoints_2d[:, 0, 0]
    np.testing.assert_allclose(np.diff(pelvis_x), 1.0, atol=1e-4)  # linear through the gap
    assert fake.hints[0] is None and all(h is not None for h in fake.hints[1:])
    assert fake.hints[1][0] < 21 < fake.hints[1][2]


def test_stage_no_person_and_no_frames() -> None:
    with pytest.raises(NoPersonError, match="no person detected in 5 frames"):
        detect_video(frames(5), FakeDetector([[]] * 5), fps=25.0, image_size=(64, 48))
    with pytest.raises(VideoError):
        detect_video([], FakeDetector([]), fps=25.0, image_size=(64, 48))


def test_stage_checks_frames_and_keypoints() -> None:
    stage = DetectionStage(FakeDetector([[person(10, 10)]]), fps=25.0, image_size=(64, 48))
    with pytest.raises(ValueError, match="expected"):
        stage.push(np.zeros((10, 10, 3), np.uint8))
    wrong = FakeDetector([[person(30, 20, 10, 20, fmt="blazepose")]], fmt="coco")
    with pytest.raises(ValueError, match="33"):
        DetectionStage(wrong, fps=25.0, image_size=(64, 48)).push(frames(1)[0])


def test_stage_scans_until_chosen_then_tracks() -> None:
    small, large = person(15, 24, 8, 16), person(45, 24, 16, 32)
    scanner = FakeScanner([[small, large]] * 6, everyone=[small, large])
    assert isinstance(scanner, ScanningDetector)
    seq = detect_video(frames(6), scanner, fps=25.0, image_size=(64, 48), person="largest")
    assert scanner.scans == 1 and len(scanner.hints) == 5
    np.testing.assert_array_equal(seq.keypoints_raw, np.stack([large.keypoints] * 6))
    auto = FakeScanner([[small]] * 3, everyone=[small, large])
    detect_video(frames(3), auto, fps=25.0, image_size=(64, 48), person="auto")
    assert auto.scans == 0


# ------------------------------------------------------------------- BlazePose

def _park_frame(seconds: float = 3.3) -> np.ndarray:
    if not PARK.exists():
        pytest.skip(f"test clip {PARK} is not present")
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    reader = imageio_ffmpeg.read_frames(str(PARK), input_params=["-ss", str(seconds)])
    meta = next(reader)
    width, height = meta["size"]
    frame = np.frombuffer(next(reader), np.uint8).reshape(height, width, 3).copy()
    reader.close()
    return frame


@pytest.fixture(scope="module")
def blazepose():
    pytest.importorskip("mediapipe")
    from video3d.detect.blazepose import BlazePoseDetector
    detector = BlazePoseDetector()
    yield detector
    detector.close()


def test_blazepose_options_and_helpers() -> None:
    pytest.importorskip("mediapipe")
    from video3d.detect.blazepose import BlazePoseDetector, crop_around, tiles
    with pytest.raises(UserError, match="model_complexity"):
        BlazePoseDetector(model_complexity=2)
    assert crop_around(np.array([100, 100, 200, 300]), 0.5, 1000, 1000) == (50, 0, 250, 400)
    assert crop_around(np.array([-50, -50, 10, 10]), 0.5, 1000, 1000) == (0, 0, 40, 40)
    assert crop_around(np.array([np.nan, 0, 1, 1]), 0.5, 100, 100) is None
    grid = tiles(1768, 994)
    assert len(grid) == 6 and grid[0][:2] == (0, 0) and grid[-1][2:] == (1768, 994)


def test_blazepose_blank_frame_returns_nothing(blazepose) -> None:
    blank = np.zeros((240, 320, 3), np.uint8)
    assert blazepose.detect(blank) == []
    assert blazepose.detect(blank, hint=np.array([100.0, 50.0, 160.0, 200.0])) == []
    with pytest.raises(ValueError):
        blazepose.detect(blank.astype(np.float32))


def test_blazepose_detects_person_on_real_frame(blazepose) -> None:
    frame = _park_frame()
    height, width = frame.shape[:2]
    people = blazepose.detect(frame)
    assert len(people) >= 1
    p = people[0]
    assert p.format == "blazepose" and p.keypoints.shape == (33, 2) and p.scores.shape == (33,)
    assert np.isfinite(p.keypoints).all() and (0 <= p.scores).all() and (p.scores <= 1).all()
    assert p.scores.mean() > 0.5
    assert -50 <= p.bbox[0] < p.bbox[2] <= width + 50 and -50 <= p.bbox[1] < p.bbox[3] <= height + 50
    y = p.keypoints[:, 1]
    assert y[[11, 12]].mean() < y[[23, 24]].mean() < y[[27, 28]].mean()  # upright
    # MediaPipe's own metric 3D: hip-centred, metres, y down, an adult's size.
    assert p.world is not None and p.world.shape == (33, 3) and np.isfinite(p.world).all()
    assert np.abs(p.world[[23, 24]].mean(axis=0)).max() < 0.02
    assert p.world[[11, 12], 1].mean() < 0 < p.world[[27, 28], 1].mean()
    assert 1.2 < p.world[[27, 28], 1].mean() - p.world[0, 1] < 2.0  # nose to ankles
    # It is one of the two people of this frame (man on the box, walking woman).
    centre = 0.5 * (p.bbox[:2] + p.bbox[2:])
    assert min(np.linalg.norm(centre - [650, 280]), np.linalg.norm(centre - [1030, 720])) < 150


def test_blazepose_tiled_search_finds_both_people(blazepose) -> None:
    frame = _park_frame()
    people = blazepose.detect_all(frame)
    centres = np.array([0.5 * (p.bbox[:2] + p.bbox[2:]) for p in people])
    for where in ([650, 280], [1030, 720]):
        assert np.linalg.norm(centres - where, axis=1).min() < 150, centres


def test_blazepose_stage_on_real_clip() -> None:
    if not PARK.exists():
        pytest.skip(f"test clip {PARK} is not present")
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    pytest.importorskip("mediapipe")
    from video3d.detect.blazepose import BlazePoseDetector
    reader = imageio_ffmpeg.read_frames(str(PARK), input_params=["-ss", "3.3"])
    meta = next(reader)
    width, height = meta["size"]
    clip = (np.frombuffer(next(reader), np.uint8).reshape(height, width, 3) for _ in range(6))
    with BlazePoseDetector() as detector:
        seq = detect_video(clip, detector, fps=meta["fps"], image_size=(width, height), person="1030,720")
    reader.close()
    assert len(seq) == 6 and seq.valid.all() and seq.detector == "blazepose"
    assert seq.raw_format == "blazepose" and seq.keypoints_raw.shape == (6, 33, 2)
    world = seq.detector_3d
    assert world.shape == (6, 17, 3) and np.isfinite(world).all()
    assert np.abs(world[:, 0]).max() < 0.02  # H36M pelvis = MediaPipe's hip centre
    pelvis = seq.keypoints_2d[:, 0]
    assert np.linalg.norm(pelvis.mean(axis=0) - [1030, 700]) < 150  # the woman, as asked


def test_tracker_box_comes_from_confident_keypoints() -> None:
    from video3d.detect.tracking import track_box
    p = person(100, 100, 40, 80)
    p.bbox = np.array([0.0, 0.0, 500.0, 500.0])  # e.g. an expanded crop, not the person
    np.testing.assert_allclose(track_box(p), [80, 60, 120, 140], atol=1e-4)
    p.scores[:] = 0.1
    np.testing.assert_allclose(track_box(p), p.bbox)  # too few confident keypoints
    # A backend echoing the (expanded) hint as bbox must not inflate the track.
    tracker = PersonTracker("auto", fps=30)
    for _ in range(60):
        hint = tracker.expected_box()
        q = person(100, 100, 40, 80)
        if hint is not None:
            c, half = 0.5 * (hint[:2] + hint[2:]), 0.575 * (hint[2:] - hint[:2])
            q.bbox = np.concatenate([c - half, c + half])
        assert tracker.update([q]) is q
    box = tracker.expected_box()
    np.testing.assert_allclose(box[2:] - box[:2], [40, 80], rtol=1e-3)
