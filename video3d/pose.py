"""`PoseSequence`: the one container passed between pipeline stages.

decode -> detect fills ``keypoints_2d``/``scores_2d``/``valid``; lift fills
``keypoints_3d_camera``/``keypoints_3d_world``; render and export read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from video3d import skeleton

#: A frame gap: (start, end inclusive, length, filled).
Gap = tuple[int, int, int, bool]


@dataclass
class PoseSequence:
    """A single person's poses over a video, in Human3.6M-17 joint order.

    Attributes:
        keypoints_2d: (T, 17, 2) pixel coordinates (x right, y down); NaN where missing.
        scores_2d: (T, 17) detector confidence in [0, 1]; 0 where missing.
        valid: (T,) bool, True where the frame has a (detected or interpolated) pose.
        fps: frames per second of the source.
        image_size: (width, height) of the frames in pixels, after rotation.
        keypoints_3d_camera: (T, 17, 3) metres, camera frame (x right, y down,
            z forward), root-relative (pelvis = 0). None before lifting.
        keypoints_3d_world: (T, 17, 3) metres, display/world frame (z up, lowest
            joint on z = 0). None before lifting.
        detector / lifter / weights_sha256: provenance strings.
        root_translation: (T, 3) metres, camera frame: the pelvis position per
            frame (video3d.lift.trajectory); NaN where unknown. None before lifting.

    Filled by the detection stage (defaults describe a track with no holes):
        interpolated: (T,) bool, True for frames filled from their neighbours
            (a subset of ``valid``). None on input -> all False.
        joint_filled: (T, 17) bool, True for every interpolated joint value
            (whole filled frames and low-score joints). None on input -> all False.
        gaps: frame gaps as (start, end inclusive, length, filled), in order
            (see :func:`video3d.detect.gaps.fill_gaps`).
        gap_summary: one human line about ``gaps`` ("" when not known).
        num_detected: frames in which the detector found the person (-1: not known).
        max_gap: longest hole (frames) that was interpolated.
        person: the person-selection rule used ('auto', 'largest', 'center' or an (x, y) pixel).
        rejected_frames: frames whose candidates were all rejected as other people.
        raw_format: joint layout of ``keypoints_raw`` ("coco", "blazepose", ...).
        keypoints_raw: (T, K, 2) the detector's own keypoints before conversion; NaN where missing.
        scores_raw: (T, K) their scores.
        implausible_frames: frames rejected as implausible (limbs on two people, body jumps).
        detector_3d: (T, 17, 3) the detector's own metric 3D of this person in H36M-17
            (BlazePose world landmarks, hip-centred, its own axes), NaN where missing;
            None when the detector gives none.
        track_id: identity of this person in a multi-person result (-1: single person).
    """

    keypoints_2d: np.ndarray
    scores_2d: np.ndarray
    valid: np.ndarray
    fps: float
    image_size: tuple[int, int]
    keypoints_3d_camera: np.ndarray | None = None
    keypoints_3d_world: np.ndarray | None = None
    detector: str = ""
    lifter: str = ""
    weights_sha256: str = ""
    root_translation: np.ndarray | None = None
    interpolated: np.ndarray | None = None
    joint_filled: np.ndarray | None = None
    gaps: list[Gap] = field(default_factory=list)
    gap_summary: str = ""
    num_detected: int = -1
    max_gap: int = 0
    person: str | tuple[float, float] = ""
    rejected_frames: int = 0
    raw_format: str = ""
    keypoints_raw: np.ndarray | None = None
    scores_raw: np.ndarray | None = None
    implausible_frames: int = 0
    detector_3d: np.ndarray | None = None
    track_id: int = -1

    def __post_init__(self) -> None:
        t = len(self.keypoints_2d)
        if self.keypoints_2d.shape != (t, skeleton.NUM_JOINTS, 2):
            raise ValueError(f"keypoints_2d must be (T, 17, 2), got {self.keypoints_2d.shape}")
        if self.scores_2d.shape != (t, skeleton.NUM_JOINTS):
            raise ValueError(f"scores_2d must be (T, 17), got {self.scores_2d.shape}")
        if self.valid.shape != (t,):
            raise ValueError(f"valid must be (T,), got {self.valid.shape}")
        if self.interpolated is None:
            self.interpolated = np.zeros(t, dtype=bool)
        if self.joint_filled is None:
            self.joint_filled = np.zeros((t, skeleton.NUM_JOINTS), dtype=bool)
        if self.interpolated.shape != (t,):
            raise ValueError(f"interpolated must be (T,), got {self.interpolated.shape}")
        if self.joint_filled.shape != (t, skeleton.NUM_JOINTS):
            raise ValueError(f"joint_filled must be (T, 17), got {self.joint_filled.shape}")

    def __len__(self) -> int:
        return len(self.keypoints_2d)

    @property
    def num_frames(self) -> int:
        return len(self)
