"""Identities over time for several people: a thin adapter over Roboflow's ``trackers``.

The association itself is OC-SORT (Cao et al. 2023) from Roboflow's maintained
``trackers`` library (the home of ``supervision``'s trackers since
supervision 0.27 dropped ByteTrack): Kalman-predicted boxes matched by IoU
plus a direction-consistency term, and "observation-centric re-update" that
re-fits a track's motion from its last observation when it is found again
after an occlusion. This module only turns
:class:`~video3d.detect.base.PersonKeypoints` into the boxes and scores it
needs and hands back one track id per person.

Why OC-SORT: on the crossing-mannequin clip (the far walker hidden for about
half a second behind the near one) ``trackers``' ByteTrack gave the far walker
a new id after the occlusion, OC-SORT gave back the old one (0 switches, 0
new ids; tests/test_people.py). Both are maintained implementations, so no
home-made matcher is needed. Boxes are the keypoint boxes of
:func:`video3d.detect.tracking.track_box` (the same quantity every frame).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from video3d.detect.base import PersonKeypoints
from video3d.detect.tracking import track_box
from video3d.errors import UserError


class IdentityTracker:
    """Assign a persistent integer id (>= 0) to each person, frame by frame.

    Args:
        fps: frame rate (for the lost-track buffer).
        lost_s: how long a person may be unseen and keep their id, seconds.
        min_iou: smallest IoU between a predicted and a detected box that can match.
        confirm_frames: detections needed before a new track gets an id.
    """

    def __init__(self, fps: float = 30.0, lost_s: float = 1.0, min_iou: float = 0.1,
                 confirm_frames: int = 2) -> None:
        try:
            from trackers import OCSORTTracker
        except ImportError as exc:
            raise UserError("--person all needs the 'trackers' package: pip install 'video3d[people]'") from exc
        self._tracker = OCSORTTracker(lost_track_buffer=max(1, int(round(lost_s * fps))), frame_rate=float(fps),
                                      minimum_consecutive_frames=confirm_frames, minimum_iou_threshold=min_iou,
                                      high_conf_det_threshold=0.4)

    def update(self, people: Sequence[PersonKeypoints]) -> np.ndarray:
        """This frame's people -> (N,) int track ids, in the same order; -1 = no id yet."""
        import supervision as sv

        n = len(people)
        ids = np.full(n, -1, dtype=np.int64)
        if n == 0:
            self._tracker.update(sv.Detections.empty())
            return ids
        boxes = np.stack([track_box(p) for p in people]).astype(np.float32)
        conf = np.array([float(np.mean(p.scores)) if len(p.scores) else 0.0 for p in people], dtype=np.float32)
        dets = sv.Detections(xyxy=boxes, confidence=conf, class_id=np.zeros(n, dtype=int),
                             data={"index": np.arange(n)})
        out = self._tracker.update(dets)
        if len(out):
            ids[np.asarray(out.data["index"], dtype=int)] = np.asarray(out.tracker_id, dtype=np.int64)
        return ids
