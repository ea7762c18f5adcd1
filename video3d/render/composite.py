"""Side-by-side result frames: the input with its 2D skeleton | the 3D skeleton.

MHFormer's layout ("Input" left, "Reconstruction" right) without its faults:
no square crop (portrait videos keep their aspect), sizes and resize targets
are computed once, and drawing goes straight into the output buffer.

Output layout for an input of (w, h) pixels and ``max_height`` M:
height H = h if h <= M (then the frame is only cropped, by at most one row and
one column, to make H and the total width even), else M rounded down to even
with the frame scaled to height H (width rounded, minus one pixel if the total
width would be odd); right = a square H x H 3D panel.
"""
from __future__ import annotations

import cv2
import numpy as np

from video3d.render.annotators import LabelAnnotator, SkeletonAnnotator
from video3d.render.view3d import SkeletonView3D

INPUT_TITLE = "Input"
PANEL_TITLE = "Reconstruction"


def composite_layout(frame_size: tuple[int, int], max_height: int = 720) -> tuple[tuple[int, int], int]:
    """((left_w, H), panel side H) for frames of ``frame_size`` = (w, h).

    H is even and <= max_height; left_w + H is even.
    """
    w, h = int(frame_size[0]), int(frame_size[1])
    if w < 2 or h < 2:
        raise ValueError(f"frame size too small: {frame_size}")
    if h <= max_height:  # no scaling: at most one row and one column are cropped
        out_h = h - h % 2
        left_w = w
    else:
        out_h = int(max_height) - int(max_height) % 2
        left_w = max(2, round(w * out_h / h))
    if (left_w + out_h) % 2:
        left_w -= 1
    return (left_w, out_h), out_h


class OverlayCompositor:
    """Builds the side-by-side result frames and the standalone 3D frames.

    Example::

        comp = OverlayCompositor(frame_size=info.size)
        with VideoWriter(path, info.fps, comp.output_size) as writer:
            for frame, kp, sc, pose in ...:
                writer.write(comp.compose(frame, kp, sc, pose))
    """

    def __init__(self, frame_size: tuple[int, int], panel: SkeletonView3D | None = None,
                 max_height: int = 720, annotator: SkeletonAnnotator | None = None,
                 min_score: float = 0.0, titles: tuple[str, str] = (INPUT_TITLE, PANEL_TITLE)) -> None:
        """
        Args:
            frame_size: (width, height) of the input frames passed to `compose`.
            panel: the 3D view for the right half; must be H x H (see
                `composite_layout`). Default: `SkeletonView3D` with the MHFormer view.
            max_height: larger inputs are downscaled so the output is at most this high.
            annotator: 2D skeleton drawer (default `SkeletonAnnotator()`).
            min_score: 2D joints below this confidence are not drawn.
            titles: (left, right) panel titles; empty strings draw none.
        """
        self.frame_size = (int(frame_size[0]), int(frame_size[1]))
        self.max_height = int(max_height)
        self.left_size, side = composite_layout(self.frame_size, max_height)
        self.output_size = (self.left_size[0] + side, side)
        if panel is None:
            panel = SkeletonView3D(size=(side, side))
        if panel.size != (side, side):
            raise ValueError(f"panel must be {side}x{side} for this layout, got {panel.size}")
        self.panel = panel
        self.annotator = annotator or SkeletonAnnotator()
        self.min_score = min_score
        self.titles = titles
        self._label = LabelAnnotator()
        w, h = self.frame_size
        lw, lh = self.left_size
        self._kp_scale = np.array([lw / w, lh / h])
        # No downscaling needed: at most a 1-pixel crop; otherwise one resize.
        self._crop = h <= self.max_height
        if self._crop:
            self._kp_scale[:] = 1.0
        self._standalone: SkeletonView3D | None = None

    def compose(self, frame_rgb: np.ndarray, keypoints_2d: np.ndarray | None,
                scores: np.ndarray | None, pose_world: np.ndarray | None,
                out: np.ndarray | None = None, counter: str | None = None) -> np.ndarray:
        """One side-by-side frame.

        Args:
            frame_rgb: (h, w, 3) uint8 RGB input frame, (w, h) == ``frame_size``.
            keypoints_2d: (17, 2) pixels in the frame's coordinates, NaN where
                missing; None draws no 2D skeleton.
            scores: (17,) confidences or None.
            pose_world: (17, 3) world-frame pose (metres, z up) or None/NaN
                for "no detection".
            out: optional reusable (H, W_out, 3) uint8 buffer (saves an allocation).
            counter: optional frame/time text for the 3D panel's bottom right.

        Returns:
            (H, W_out, 3) uint8 RGB with (W_out, H) == ``output_size`` (both even).
        """
        w, h = self.frame_size
        if frame_rgb.shape[:2] != (h, w):
            raise ValueError(f"frame must be ({h}, {w}, 3), got {frame_rgb.shape}")
        W, H = self.output_size
        if out is None:
            out = np.empty((H, W, 3), np.uint8)
        elif out.shape != (H, W, 3):
            raise ValueError(f"out must be ({H}, {W}, 3), got {out.shape}")
        lw = self.left_size[0]
        left = out[:, :lw]
        if self._crop:
            np.copyto(left, frame_rgb[:H, :lw])
        else:
            cv2.resize(frame_rgb, self.left_size, dst=left, interpolation=cv2.INTER_LINEAR)
        if keypoints_2d is not None:
            self.annotator.annotate(left, np.asarray(keypoints_2d, np.float64) * self._kp_scale,
                                    scores, self.min_score)
        if self.titles[0]:
            self._label.annotate(left, self.titles[0])
        self.panel.render(pose_world, title=self.titles[1] or None, out=out[:, lw:], counter=counter)
        return out

    @property
    def skeleton_size(self) -> tuple[int, int]:
        """(side, side) of `skeleton_frame` images: ``max_height`` rounded down to even."""
        side = self.max_height - self.max_height % 2
        return side, side

    def skeleton_frame(self, pose_world: np.ndarray | None, title: str | None = None,
                       out: np.ndarray | None = None, counter: str | None = None) -> np.ndarray:
        """A square frame of the 3D skeleton alone, for the standalone 3D animation.

        Same view as the composite's panel, ``skeleton_size`` pixels.
        Returns (side, side, 3) uint8 RGB.
        """
        if self._standalone is None:
            p = self.panel
            if p.size == self.skeleton_size:
                self._standalone = p
            else:
                self._standalone = SkeletonView3D(
                    size=self.skeleton_size, elev=p.elev, azim=p.azim, radius=p.radius,
                    height=p.height, grid_step=p.grid_step, bone_colors=p.bone_colors,
                    shadow=p.shadow, legend=p.legend)
        return self._standalone.render(pose_world, title=title, out=out, counter=counter)
