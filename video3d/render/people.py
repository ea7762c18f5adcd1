"""Overlay helpers for ``--person all``: every person's skeleton, box and ID label."""
from __future__ import annotations

import cv2
import numpy as np

from video3d.render.annotators import SkeletonAnnotator

#: Box/label colours (RGB), cycled by track id.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (255, 196, 0), (0, 200, 255), (255, 80, 200), (120, 255, 80), (255, 140, 40), (160, 120, 255))


def id_color(track_id: int) -> tuple[int, int, int]:
    return PALETTE[int(track_id) % len(PALETTE)]


def draw_person(image: np.ndarray, keypoints: np.ndarray, scores: np.ndarray | None, track_id: int,
                annotator: SkeletonAnnotator | None = None, skeleton: bool = True, min_score: float = 0.0) -> None:
    """Draw one person into (H, W, 3) uint8 RGB ``image`` in place: skeleton, box, 'ID n' label.

    keypoints: (17, 2) pixels (NaN rows skipped); nothing is drawn when all are NaN.
    """
    kp = np.asarray(keypoints, np.float64)
    ok = np.isfinite(kp).all(axis=1)
    if not ok.any():
        return
    if skeleton:
        (annotator or SkeletonAnnotator()).annotate(image, kp, scores, min_score)
    h = image.shape[0]
    pad = max(4, h // 120)
    x0, y0 = np.floor(kp[ok].min(0) - pad).astype(int)
    x1, y1 = np.ceil(kp[ok].max(0) + pad).astype(int)
    color = id_color(track_id)
    thick = max(1, h // 360)
    cv2.rectangle(image, (int(x0), int(y0)), (int(x1), int(y1)), color, thick, cv2.LINE_AA)
    text = f"ID {int(track_id)}"
    scale = max(0.4, h / 1080.0)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    ty = max(int(y0), th + base + 2)
    cv2.rectangle(image, (int(x0), ty - th - base - 2), (int(x0) + tw + 4, ty), color, -1)
    cv2.putText(image, text, (int(x0) + 2, ty - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick,
                cv2.LINE_AA)
