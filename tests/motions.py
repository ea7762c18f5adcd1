"""Synthetic COCO-17 motions shared by the synthesis tests (world frame, z up, metres)."""
from __future__ import annotations

import numpy as np


def standing_pose() -> np.ndarray:
    """A COCO-17 standing person, (17, 3) metres, world z up, facing +y, feet at z = 0.08."""
    return np.array([
        [0.0, 0.10, 1.62],                          # nose
        [-0.03, 0.08, 1.66], [0.03, 0.08, 1.66],    # eyes (left = -x when facing +y)
        [-0.075, 0.0, 1.63], [0.075, 0.0, 1.63],    # ears
        [-0.18, 0.0, 1.42], [0.18, 0.0, 1.42],      # shoulders
        [-0.20, 0.0, 1.13], [0.20, 0.0, 1.13],      # elbows
        [-0.21, 0.05, 0.87], [0.21, 0.05, 0.87],    # wrists
        [-0.10, 0.0, 0.95], [0.10, 0.0, 0.95],      # hips
        [-0.10, 0.02, 0.52], [0.10, 0.02, 0.52],    # knees
        [-0.10, 0.0, 0.08], [0.10, 0.0, 0.08],      # ankles
    ])


def walking_clip(T: int = 243, speed: float = 1.3, fps: float = 50.0) -> np.ndarray:
    """(T, 17, 3): the standing pose walking along +y with swinging legs and arms."""
    t = np.arange(T) / fps
    x = np.repeat(standing_pose()[None], T, axis=0)
    swing = 0.25 * np.sin(2 * np.pi * t)[:, None]
    x[:, [13, 15], 1] += swing * [0.5, 1.0]
    x[:, [14, 16], 1] -= swing * [0.5, 1.0]
    x[:, [7, 9], 1] -= 0.8 * swing * [0.5, 1.0]
    x[:, [8, 10], 1] += 0.8 * swing * [0.5, 1.0]
    x[..., 1] += speed * t[:, None]
    return x
