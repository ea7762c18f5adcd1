"""`PoseSequence`: the one container passed between pipeline stages.

decode -> detect fills ``keypoints_2d``/``scores_2d``/``valid``; lift fills
``keypoints_3d_camera``/``keypoints_3d_world``; render and export read it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from video3d import skeleton


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
    meta: dict = field(default_factory=dict)
    root_translation: np.ndarray | None = None

    def __post_init__(self) -> None:
        t = len(self.keypoints_2d)
        if self.keypoints_2d.shape != (t, skeleton.NUM_JOINTS, 2):
            raise ValueError(f"keypoints_2d must be (T, 17, 2), got {self.keypoints_2d.shape}")
        if self.scores_2d.shape != (t, skeleton.NUM_JOINTS):
            raise ValueError(f"scores_2d must be (T, 17), got {self.scores_2d.shape}")
        if self.valid.shape != (t,):
            raise ValueError(f"valid must be (T,), got {self.valid.shape}")

    def __len__(self) -> int:
        return len(self.keypoints_2d)

    @property
    def num_frames(self) -> int:
        return len(self)
