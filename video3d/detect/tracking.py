"""Choosing one person and following them across frames, for any backend.

:class:`PersonTracker` receives, frame by frame, the people a detector found
(:class:`~video3d.detect.base.PersonKeypoints`, any keypoint format) and
returns the one it follows, or None. It uses geometry only (no appearance):

* **Selection.** In the first frame with anyone in it, a rule picks the person:
  'auto' (most prominent: box area x mean score), 'largest' (box area),
  'center' (box centre nearest the image centre) or a pixel point ``(x, y)``
  (the box containing it, else the nearest box).
* **Matching.** Afterwards a candidate is accepted when (a) its box overlaps
  the predicted box (IoU >= ``min_iou``) or its centre lies within
  ``max_jump`` box sizes of the predicted centre, (b) its size is within
  ``max_size_ratio`` of the tracked size and (c) its keypoints moved, median
  over keypoints, by at most ``max_pose_jump`` box sizes from the last
  tracked keypoints. (c) catches a switch to a person right next to the
  tracked one, whose box still overlaps. Predictions use a damped constant
  velocity. Among accepted candidates the lowest cost (centre distance +
  keypoint motion, in box sizes, + log size change - IoU) wins. A candidate
  outside the gate is a possible identity switch and is rejected (the frame
  then has no pose).
* **Lost track.** While nobody matches, the gate grows by ``reacquire_speed``
  box sizes per second (and the size tolerance widens), so the person is
  re-acquired near where they were last seen; after a long absence the gate
  covers the whole frame.

"Box size" is sqrt(width * height) of the tracked box (smoothed). The box the
tracker uses is the one around the person's keypoints, not the backend's
``bbox`` (backends build ``bbox`` differently: detector box, expanded hint
crop, all landmarks), so that it is the same quantity in every frame and the
size and motion gates stay meaningful. Which keypoints count depends on what
the format's scores mean (:data:`KEYPOINT_BOX_SCORE`): BlazePose regresses a
position for every landmark and its score is a visibility (occlusion)
estimate, so all landmarks count; heatmap (COCO) scores are localisation
confidence, so only keypoints scoring >= 0.3 count. With fewer than 4 such
keypoints the backend's ``bbox`` is used.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from video3d.detect.base import PersonKeypoints, box_center, box_iou, box_size
from video3d.errors import UserError

#: A parsed ``person=`` rule: 'auto' | 'largest' | 'center' | (x, y) pixels.
Selection = str | tuple[float, float]
RULES: tuple[str, ...] = ("auto", "largest", "center")
#: Per keypoint format, the score from which a keypoint defines the tracker's box.
KEYPOINT_BOX_SCORE: dict[str, float] = {"blazepose": 0.0, "coco": 0.3, "h36m": 0.3}


def track_box(person: PersonKeypoints, min_score: float | None = None) -> np.ndarray:
    """(4,) box around the person's keypoints scoring >= ``min_score``.

    min_score defaults to :data:`KEYPOINT_BOX_SCORE` for the person's format.
    Falls back to ``person.bbox`` with fewer than 4 such keypoints.
    """
    if min_score is None:
        min_score = KEYPOINT_BOX_SCORE.get(person.format, 0.3)
    kp = np.asarray(person.keypoints, dtype=np.float64)
    keep = (np.asarray(person.scores) >= min_score) & np.isfinite(kp).all(axis=1)
    if keep.sum() < 4:
        return np.asarray(person.bbox, dtype=np.float64)
    return np.concatenate([kp[keep].min(axis=0), kp[keep].max(axis=0)])


def parse_person(person: str | Sequence[float]) -> Selection:
    """Parse a ``person=`` value: 'auto', 'largest', 'center'/'centre', 'x,y' or (x, y).

    Raises UserError on anything else.
    """
    if isinstance(person, str):
        text = person.strip().lower()
        if text == "centre":
            text = "center"
        if text in RULES:
            return text
        parts = text.split(",")
        if len(parts) == 2:
            try:
                x, y = float(parts[0]), float(parts[1])
            except ValueError:
                pass
            else:
                if math.isfinite(x) and math.isfinite(y):
                    return (x, y)
        raise UserError(f"person must be 'auto', 'largest', 'center', an 'x,y' pixel point or 'all' (everyone), "
                        f"got {person!r}")
    values = tuple(person)
    if len(values) != 2 or not all(math.isfinite(float(v)) for v in values):
        raise UserError(f"person point must be two finite pixel coordinates (x, y), got {person!r}")
    return (float(values[0]), float(values[1]))


def choose(people: Sequence[PersonKeypoints], rule: Selection,
           image_size: tuple[int, int] | None = None) -> int | None:
    """Index of the person ``rule`` picks among ``people`` (None if empty).

    image_size: (width, height), needed for 'center'.
    """
    if not people:
        return None
    boxes = np.stack([track_box(p) for p in people])
    area = np.prod(np.maximum(boxes[:, 2:] - boxes[:, :2], 0.0), axis=1)
    if rule == "auto":
        mean_score = np.array([float(np.mean(p.scores)) if len(p.scores) else 0.0 for p in people])
        return int(np.argmax(area * np.maximum(mean_score, 1e-3)))
    if rule == "largest":
        return int(np.argmax(area))
    if rule == "center":
        if image_size is None:
            raise ValueError("person='center' needs image_size")
        target = 0.5 * np.asarray(image_size, dtype=np.float64)
        return int(np.argmin(np.linalg.norm(box_center(boxes) - target, axis=1)))
    point = np.asarray(rule, dtype=np.float64)
    # Distance from the point to each box (0 inside); ties (several boxes
    # contain it) go to the box whose centre is nearest.
    outside = np.maximum(np.maximum(boxes[:, :2] - point, point - boxes[:, 2:]), 0.0)
    to_box = np.linalg.norm(outside, axis=1)
    to_centre = np.linalg.norm(box_center(boxes) - point, axis=1)
    return int(np.lexsort((to_centre, to_box))[0])


class PersonTracker:
    """Follow one person through per-frame detections (backend-independent).

    Call :meth:`update` once per frame, in order, with that frame's candidates.
    Before each call, :meth:`expected_box` says where the person should be (pass
    it to the detector as ``hint``).

    Args:
        select: 'auto' | 'largest' | 'center' | 'x,y' | (x, y), see :func:`choose`.
        fps: frame rate, to express the re-acquisition growth per second.
        image_size: (width, height); required for 'center'.
        min_iou: overlap with the predicted box that always counts as a match.
        max_jump: centre distance, in box sizes, accepted between consecutive frames.
        reacquire_speed: growth of the search radius, box sizes per second lost.
        max_size_ratio: accepted size change (either way) between consecutive frames.
        max_pose_jump: accepted median keypoint motion, in box sizes, between
            consecutive frames (BlazePose on a backflip: <= 0.4).
    """

    def __init__(self, select: str | Sequence[float] = "auto", *, fps: float = 30.0,
                 image_size: tuple[int, int] | None = None, min_iou: float = 0.1,
                 max_jump: float = 1.0, reacquire_speed: float = 1.5,
                 max_size_ratio: float = 2.0, max_pose_jump: float = 0.75) -> None:
        self.rule: Selection = parse_person(select)
        if self.rule == "center" and image_size is None:
            raise ValueError("person='center' needs image_size")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        self.image_size = image_size
        self.min_iou = min_iou
        self.max_jump = max_jump
        self.reacquire_speed = reacquire_speed
        self.max_size_ratio = max_size_ratio
        self.max_pose_jump = max_pose_jump
        self._center: np.ndarray | None = None   # (2,) last matched centre
        self._wh = np.zeros(2)                    # (2,) smoothed width, height
        self._velocity = np.zeros(2)              # (2,) pixels per frame
        self._keypoints: np.ndarray | None = None  # (K, 2) last matched keypoints
        self.lost = 0            # frames since the last match (0 while tracking)
        self.rejected = 0        # frames whose candidates were all rejected as other people

    @property
    def active(self) -> bool:
        """True once someone has been selected."""
        return self._center is not None

    def _steps(self) -> int:
        """Frames between the last match and the frame about to be updated."""
        return self.lost + 1

    def _predicted_center(self) -> np.ndarray:
        # Damped extrapolation: at most 3 frames of the current velocity.
        return self._center + self._velocity * min(self._steps(), 3)

    def _size(self) -> float:
        return float(math.sqrt(max(self._wh[0], 1.0) * max(self._wh[1], 1.0)))

    def _allowance(self) -> float:
        """Extra search radius while lost, in box sizes."""
        return self.reacquire_speed * (self._steps() - 1) / self.fps

    def _predicted_box(self) -> np.ndarray:
        c = self._predicted_center()
        return np.concatenate([c - 0.5 * self._wh, c + 0.5 * self._wh])

    def expected_box(self) -> np.ndarray | None:
        """(4,) box where the person should be in the next frame, or None before selection.

        While tracking this is the predicted box; while lost it is grown by the
        re-acquisition radius, i.e. the region searched.
        """
        if not self.active:
            return None
        extra = self._allowance() * self._size()
        box = self._predicted_box()
        return box + np.array([-extra, -extra, extra, extra])

    def _pose_motion(self, person: PersonKeypoints) -> float:
        """Median keypoint distance to the predicted keypoints, in box sizes (0 if not comparable)."""
        kp = np.asarray(person.keypoints, dtype=np.float64)
        if self._keypoints is None or kp.shape != self._keypoints.shape:
            return 0.0
        predicted = self._keypoints + self._velocity * min(self._steps(), 3)
        dist = np.linalg.norm(kp - predicted, axis=1)
        dist = dist[np.isfinite(dist)]
        return float(np.median(dist)) / self._size() if len(dist) else math.inf

    def _cost(self, person: PersonKeypoints) -> float | None:
        """Match cost of a candidate, or None when it falls outside the gate."""
        size = self._size()
        predicted = self._predicted_box()
        box = track_box(person)
        if not np.all(np.isfinite(box)):
            return None
        iou = box_iou(box, predicted)
        dist = float(np.linalg.norm(box_center(box) - self._predicted_center())) / size
        log_ratio = abs(math.log(float(box_size(box)) / size))
        size_tolerance = math.log(self.max_size_ratio) + 0.5 * (self._steps() - 1) / self.fps
        near = iou >= self.min_iou or dist <= self.max_jump + self._allowance()
        motion = self._pose_motion(person)
        if not near or log_ratio > size_tolerance or motion > self.max_pose_jump + self._allowance():
            return None
        return dist + motion + log_ratio - iou

    def _accept(self, person: PersonKeypoints) -> None:
        box = track_box(person)
        center = box_center(box)
        wh = np.maximum(box[2:] - box[:2], 1.0)
        if self._center is None:
            self._wh = wh
        else:
            if self._steps() <= 3:
                step = (center - self._center) / self._steps()
                self._velocity = 0.5 * self._velocity + 0.5 * step
            else:
                self._velocity = np.zeros(2)
            self._wh = 0.6 * self._wh + 0.4 * wh
        self._center = center
        self._keypoints = np.array(person.keypoints, dtype=np.float64)
        self.lost = 0

    def update(self, people: Sequence[PersonKeypoints]) -> PersonKeypoints | None:
        """Take this frame's candidates; return the tracked person or None."""
        if not self.active:
            index = choose(people, self.rule, self.image_size)
            if index is None:
                return None
            self._accept(people[index])
            return people[index]
        costs = [self._cost(p) for p in people]
        scored = [(c, i) for i, c in enumerate(costs) if c is not None]
        if not scored:
            if people:
                self.rejected += 1
            self.lost += 1
            return None
        best = people[min(scored)[1]]
        self._accept(best)
        return best
