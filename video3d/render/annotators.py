"""Composable image annotators (in the spirit of the ``supervision`` library).

Each annotator draws one kind of thing onto an RGB image (H, W, 3) uint8 and
returns the image. They draw in place unless ``copy=True``; drawing into a
view of a larger buffer (e.g. the left half of a composite) works.

Keypoints follow CONVENTIONS: pixels, x right, y down, origin at the top-left
corner of the top-left pixel; they are drawn anti-aliased with sub-pixel
precision (cv2 ``shift`` = 4 fractional bits).
"""
from __future__ import annotations

import cv2
import numpy as np

from video3d import skeleton
from video3d.render import colors
from video3d.render.colors import Color

SHIFT = 4
_ONE = 1 << SHIFT
_LIMIT = 1e6  # keep fixed-point coordinates well inside int32


def to_fixed_point(points: np.ndarray) -> np.ndarray:
    """Pixel coordinates (..., 2) in the corner-origin convention -> cv2 fixed point.

    cv2 puts pixel centres at integers, so 0.5 is subtracted first. Returns
    int32 (..., 2) for cv2 drawing calls with ``shift=SHIFT``; NaN -> 0
    (callers skip NaN points themselves).
    """
    p = np.nan_to_num(np.asarray(points, np.float64) - 0.5, nan=0.0)
    return np.rint(np.clip(p, -_LIMIT, _LIMIT) * _ONE).astype(np.int32)


class SkeletonAnnotator:
    """Draws a Human3.6M-17 skeleton: coloured bones, then green joint dots.

    Default MHFormer look: right limbs red, left limbs and spine/head blue,
    line thickness 3 and dot radius 3 at 720 px image height (scaled with the
    height, at least 2).
    """

    def __init__(self, bone_colors: tuple[Color, ...] | None = None,
                 joint_color: Color | None = colors.GREEN,
                 thickness: int | None = None, radius: int | None = None) -> None:
        """
        Args:
            bone_colors: one RGB colour per `skeleton.BONES` entry
                (default `colors.bone_colors_2d()`).
            joint_color: colour of the joint dots; None draws no dots.
            thickness, radius: fixed pixel sizes; None scales them with the
                image height (`colors.scaled(3, h)`).
        """
        self.bone_colors = bone_colors or colors.bone_colors_2d()
        if len(self.bone_colors) != len(skeleton.BONES):
            raise ValueError(f"need {len(skeleton.BONES)} bone colours, got {len(self.bone_colors)}")
        self.joint_color = joint_color
        self.thickness = thickness
        self.radius = radius
        self._parents = np.array([p for p, _ in skeleton.BONES])
        self._children = np.array([c for _, c in skeleton.BONES])

    def annotate(self, image: np.ndarray, keypoints: np.ndarray, scores: np.ndarray | None = None,
                 min_score: float = 0.0, copy: bool = False) -> np.ndarray:
        """Draw one skeleton.

        Args:
            image: (H, W, 3) uint8 RGB; drawn on in place unless ``copy``.
            keypoints: (17, 2) pixel coordinates; NaN joints are skipped with
                their bones.
            scores: (17,) confidences or None; joints with score < min_score
                are skipped with their bones.
            min_score: confidence threshold.
            copy: draw on a copy and leave ``image`` untouched.

        Returns:
            The annotated image, (H, W, 3) uint8.
        """
        if copy:
            image = image.copy()
        kp = np.asarray(keypoints, np.float64)
        if kp.shape != (skeleton.NUM_JOINTS, 2):
            raise ValueError(f"keypoints must be (17, 2), got {kp.shape}")
        ok = np.isfinite(kp).all(axis=1)
        if scores is not None:
            ok &= np.asarray(scores) >= min_score
        if not ok.any():
            return image
        h = image.shape[0]
        thickness = self.thickness or colors.scaled(3, h)
        radius = self.radius or colors.scaled(3, h)
        fixed = to_fixed_point(kp)
        bone_ok = ok[self._parents] & ok[self._children]
        for b in np.flatnonzero(bone_ok):
            p, c = fixed[self._parents[b]], fixed[self._children[b]]
            cv2.line(image, (int(p[0]), int(p[1])), (int(c[0]), int(c[1])),
                     self.bone_colors[b], thickness, cv2.LINE_AA, SHIFT)
        if self.joint_color is not None:
            for j in np.flatnonzero(ok):
                cv2.circle(image, (int(fixed[j, 0]), int(fixed[j, 1])), radius * _ONE,
                           self.joint_color, -1, cv2.LINE_AA, SHIFT)
        return image


class LabelAnnotator:
    """Draws short text labels (titles) in a box; rendered labels are cached.

    A label is rendered once per (text, image height) into a small patch with
    an alpha mask, then blended in per frame (a few microseconds).
    """

    def __init__(self, text_color: Color = colors.BLACK, background: Color | None = colors.WHITE,
                 font_scale: float = 0.8, padding: float = 8.0, margin: float = 6.0) -> None:
        """
        Args:
            text_color: RGB text colour.
            background: RGB box colour, or None for text only.
            font_scale, padding, margin: sizes for 720 px image height
                (scaled with the image height); ``margin`` is the gap between
                the box and the image's top edge.
        """
        self.text_color = text_color
        self.background = background
        self.font_scale = font_scale
        self.padding = padding
        self.margin = margin
        self._cache: dict[tuple[str, int], tuple[np.ndarray, np.ndarray | None]] = {}

    def render(self, text: str, image_height: int) -> tuple[np.ndarray, np.ndarray | None]:
        """The label as (patch (h, w, 3) uint8 RGB, alpha (h, w, 1) float32 or None if opaque)."""
        key = (text, image_height)
        if key in self._cache:
            return self._cache[key]
        k = image_height / 720
        font = cv2.FONT_HERSHEY_SIMPLEX
        scale = self.font_scale * k
        thick = max(1, round(2 * k))
        (tw, th), base = cv2.getTextSize(text, font, scale, thick)
        pad = max(2, round(self.padding * k))
        w, h = tw + 2 * pad, th + base + 2 * pad
        ink = np.zeros((h, w), np.uint8)
        cv2.putText(ink, text, (pad, pad + th), font, scale, 255, thick, cv2.LINE_AA)
        patch = np.empty((h, w, 3), np.uint8)
        patch[:] = self.text_color
        if self.background is None:
            alpha = (ink.astype(np.float32) / 255.0)[:, :, None]
        else:
            a = (ink.astype(np.float32) / 255.0)[:, :, None]
            patch = (a * np.float32(self.text_color) + (1 - a) * np.float32(self.background))
            patch = np.rint(patch).astype(np.uint8)
            alpha = None
        self._cache[key] = (patch, alpha)
        return patch, alpha

    def annotate(self, image: np.ndarray, text: str, center_x: float | None = None,
                 top: int | None = None, copy: bool = False) -> np.ndarray:
        """Draw ``text`` centred at ``center_x`` (default: image centre), ``top`` px from the top.

        Returns the image (a copy if ``copy``). Labels are clipped at the image border.
        """
        if copy:
            image = image.copy()
        if not text:
            return image
        H, W = image.shape[:2]
        patch, alpha = self.render(text, H)
        ph, pw = patch.shape[:2]
        cx = W / 2 if center_x is None else center_x
        x0 = int(round(cx - pw / 2))
        y0 = max(0, round(self.margin * H / 720)) if top is None else int(top)
        # clip to the image
        ix0, iy0 = max(x0, 0), max(y0, 0)
        ix1, iy1 = min(x0 + pw, W), min(y0 + ph, H)
        if ix1 <= ix0 or iy1 <= iy0:
            return image
        src = patch[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
        roi = image[iy0:iy1, ix0:ix1]
        if alpha is None:
            roi[:] = src
        else:
            a = alpha[iy0 - y0:iy1 - y0, ix0 - x0:ix1 - x0]
            roi[:] = np.rint(roi * (1 - a) + src * a).astype(np.uint8)
        return image


_TITLE = LabelAnnotator()


def draw_title(image: np.ndarray, text: str) -> np.ndarray:
    """Draw an MHFormer-style panel title (black on a white box, top centre), in place."""
    return _TITLE.annotate(image, text)
