"""Colours and size rules of the MHFormer look (REFERENCE section 6).

All colours are RGB tuples: every image in video3d is RGB.
Both panels: right limbs red, left limbs blue, the spine/neck/head purple
(one colour for the centre line in both, so the L/R legend is unambiguous;
MHFormer drew it blue in 2D and red in 3D). 2D joints are green.
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
#: spine, neck and head (neither side): between the two side colours.
CENTRE_PURPLE: Color = (150, 0, 200)


def bone_colors() -> tuple[Color, ...]:
    """One colour per `skeleton.BONES` entry: the side of its child joint
    (right -> red, left -> blue, spine/neck/head -> purple)."""
    right, left = set(skeleton.RIGHT_JOINTS), set(skeleton.LEFT_JOINTS)
    return tuple(RED if child in right else BLUE if child in left else CENTRE_PURPLE
                 for _, child in skeleton.BONES)


def bone_colors_2d() -> tuple[Color, ...]:
    """Bone colours of the 2D overlay: :func:`bone_colors`."""
    return bone_colors()


def bone_colors_3d() -> tuple[Color, ...]:
    """Bone colours of the 3D panel: :func:`bone_colors` (the same as in 2D)."""
    return bone_colors()


def scaled(base: float, image_height: int, minimum: int = 2) -> int:
    """A pixel size defined for 720-pixel-high images, scaled to ``image_height``.

    ``scaled(3, 720) == 3``, ``scaled(3, 2160) == 9``, ``scaled(3, 480) == 2``.
    """
    return max(minimum, round(base * image_height / 720))
