"""Compact JSON payload of a result for the viewer page.

Arrays travel as base64 strings: poses and trajectories as little-endian float16
(NaN where missing; about 1 mm resolution at body scale), validity as uint8 and
2D confidences as uint8 in 1/255 steps. One minute at 30 fps is about 250 kB of
poses per person after base64.
"""
from __future__ import annotations

import base64

import numpy as np

from video3d import skeleton
from video3d.render import colors
from video3d.viewer.result import ViewerResult

#: Joint groups of the confidence plot: (label, joint indices).
JOINT_GROUPS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("torso+head", (0, 7, 8, 9, 10)),
    ("left arm", (11, 12, 13)),
    ("right arm", (14, 15, 16)),
    ("left leg", (4, 5, 6)),
    ("right leg", (1, 2, 3)),
)


def b64(array: np.ndarray) -> str:
    """Raw little-endian bytes of ``array`` as base64 text."""
    a = np.ascontiguousarray(array)
    if a.dtype.byteorder == ">":
        a = a.astype(a.dtype.newbyteorder("<"))
    return base64.b64encode(a.tobytes()).decode("ascii")


def f16(array: np.ndarray) -> str:
    """float array -> base64 of float16 (values beyond +-65504 become inf)."""
    with np.errstate(over="ignore"):
        return b64(np.asarray(array, np.float32).astype("<f2"))


def hex_color(c: colors.Color) -> str:
    return "#%02x%02x%02x" % c


def build_payload(result: ViewerResult, title: str, video: str | None) -> dict:
    """Everything the page draws, as a JSON-serialisable dict.

    video: the source/overlay video as a URL relative to the page, or None.
    """
    people = []
    for p in result.people:
        people.append({
            "id": p.track_id,
            "poses": f16(p.poses),
            "valid": b64(p.valid.astype(np.uint8)),
            "scores": b64(np.round(np.clip(p.scores, 0, 1) * 255).astype(np.uint8)),
            "trajectory": None if p.trajectory is None else f16(p.trajectory),
        })
    return {
        "version": 1,
        "title": title,
        "fps": result.fps,
        "numFrames": result.num_frames,
        "imageSize": list(result.image_size),
        "jointNames": list(skeleton.JOINT_NAMES),
        "bones": [list(b) for b in skeleton.BONES],
        "boneColors": [hex_color(c) for c in colors.bone_colors_3d()],
        "jointGroups": [{"name": n, "joints": list(j)} for n, j in JOINT_GROUPS],
        "people": people,
        "cameras": [{"name": c.name, "center": [round(float(v), 5) for v in c.center],
                     "R": [round(float(v), 6) for v in c.R.reshape(-1)]} for c in result.cameras],
        "video": video,
        "meta": result.meta,
    }
