"""Colours and size rules of the MHFormer look (REFERENCE section 6).

All colours are RGB tuples: every image in video3d is RGB.
2D overlay: right limbs red, left limbs and the spine/head blue, joints green.
3D panel: left limbs blue, right limbs and the spine/head red.
"""
from __future__ import annotations

from video3d import skeleton

Color = tuple[int, int, int]

RED: Color = (255, 0, 0)
BLUE: Color = (0, 0, 255)
GREEN: Color = (0, 255, 0)
BLACK: Color = (0, 0, 0)
WHITE: Color = (255, 255, 255)
#: matplotlib's default grid colour (#b0b0b0).
GRID_GREY: Color = (176, 176, 176)
#: pane edges, a little darker than the grid.
EDGE_GREY: Color = (140, 140, 140)
#: floor shadow of the 3D skeleton.
SHADOW_GREY: Color = (215, 215, 215)
#: "no detection" text.
MUTED_GREY: Color = (120, 120, 120)


def bone_colors_2d() -> tuple[Color, ...]:
    """One colour per `skeleton.BONES` entry for the 2D overlay.

    A bone takes the side of its child joint: right -> red, otherwise
    (left limbs, spine, neck, head) -> blue.
    """
    right = set(skeleton.RIGHT_JOINTS)
    return tuple(RED if child in right else BLUE for _, child in skeleton.BONES)


def bone_colors_3d() -> tuple[Color, ...]:
    """One colour per `skeleton.BONES` entry for the 3D panel.

    Left limbs (child joint on the left) -> blue, everything else -> red.
    """
    left = set(skeleton.LEFT_JOINTS)
    return tuple(BLUE if child in left else RED for _, child in skeleton.BONES)


def scaled(base: float, image_height: int, minimum: int = 2) -> int:
    """A pixel size defined for 720-pixel-high images, scaled to ``image_height``.

    ``scaled(3, 720) == 3``, ``scaled(3, 2160) == 9``, ``scaled(3, 480) == 2``.
    """
    return max(minimum, round(base * image_height / 720))
