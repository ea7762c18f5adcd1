"""A fast 3D skeleton panel that looks like matplotlib's mplot3d axes.

The reference implementations draw a new matplotlib figure per frame (about a
second each). Here the view is reproduced with numpy + OpenCV: matplotlib's
view geometry (box aspect normalised like mplot3d, eye 10 box units from the
box centre, focal length 1 perspective, ``elev``/``azim`` as in
``Axes3D.view_init``), white panes, grey grid lines and the three back panes'
edges, axis lines with ticks and no tick labels. Everything that does not move
is drawn once into a background image; a frame is a copy of it plus 16
depth-sorted anti-aliased bones (well under a millisecond at 720x720).

Input poses are in the world/display frame (CONVENTIONS): metres, z up,
lowest joint on z = 0. The axes box is centred on the pelvis in x and y
(root +- ``radius``) and spans z in [0, ``height``] so the figure stands on the
floor. Unlike the MHFormer figures (z squeezed by matplotlib's 4:4:3 box), the
box aspect is metric, so people keep their proportions.

The default view looks from the camera's side (``azim=-70``: the world's y
axis points away from the camera, so the viewer stands at -y, 20 degrees to
the camera's right): the person's right is on the same side of the panel as in
the picture. MHFormer's ``azim=70`` looked from behind the subject, a mirror
image of the input. Static extras: an L/R colour legend (top left) and a
0.5 m scale bar (bottom left); per frame an optional counter (bottom right).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from video3d import skeleton
from video3d.render import colors
from video3d.render.annotators import SHIFT, LabelAnnotator, to_fixed_point
from video3d.render.colors import Color

#: mplot3d normalises the box aspect to this length (Axes3D.set_box_aspect).
_MPL_BOX_NORM = 1.8294640721620434 * 25 / 24
#: mplot3d's eye distance from the box centre, in normalised box units.
_MPL_DIST = 10.0


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


class SkeletonView3D:
    """Renders (17, 3) world poses as matplotlib-style 3D skeleton images.

    Example::

        view = SkeletonView3D(size=(720, 720))
        image = view.render(pose_world, title="Reconstruction")  # (720, 720, 3) RGB
    """

    def __init__(self, size: tuple[int, int] = (720, 720), elev: float = 15.0, azim: float = -70.0,
                 radius: float = 0.72, height: float = 1.9, grid_step: float = 0.2,
                 bone_colors: tuple[Color, ...] | None = None, thickness: int | None = None,
                 shadow: bool = False, title_band: float = 0.07, legend: bool = True) -> None:
        """
        Args:
            size: (width, height) of the panel in pixels.
            elev, azim: view angles in degrees, as matplotlib's ``view_init``
                (default: from the camera's side, so the panel is not mirrored).
            radius: half-width of the box in x and y around the pelvis, metres.
            height: the box spans z in [0, height] metres.
            grid_step: grid spacing in metres (x/y lines centred on the pelvis,
                z lines from the floor up).
            bone_colors: one RGB colour per `skeleton.BONES` entry
                (default `colors.bone_colors_3d()`: left blue, right red, spine purple).
            thickness: bone thickness in px; None scales 3 px per 720 px.
            shadow: also draw the skeleton's grey shadow on the floor.
            title_band: fraction of the height kept free at the top for a title.
            legend: draw the L/R colour legend and the 0.5 m scale bar.
        """
        self.size = (int(size[0]), int(size[1]))
        self.elev, self.azim = float(elev), float(azim)
        self.radius, self.height, self.grid_step = float(radius), float(height), float(grid_step)
        self.bone_colors = bone_colors or colors.bone_colors_3d()
        w, h = self.size
        side = min(w, h)
        self.thickness = thickness or colors.scaled(3, side)
        self.shadow = shadow
        self.legend = legend
        self._parents = np.array([p for p, _ in skeleton.BONES])
        self._children = np.array([c for _, c in skeleton.BONES])
        self._label = LabelAnnotator(background=None, font_scale=0.8)
        self._muted = LabelAnnotator(text_color=colors.MUTED_GREY, background=None, font_scale=0.7)
        self._setup_camera()
        self._fit_to_panel(title_band)
        self.background = self._draw_background()
        self._titled: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------ geometry
    def _setup_camera(self) -> None:
        """World (relative to the box's low corner) -> camera coordinates (u right, v up, w out)."""
        extent = np.array([2 * self.radius, 2 * self.radius, self.height])
        aspect = extent / np.linalg.norm(extent) * _MPL_BOX_NORM  # metric box, mpl-sized
        self._extent = extent
        e, a = math.radians(self.elev), math.radians(self.azim)
        out = np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
        eye = aspect / 2 + _MPL_DIST * out
        w = _unit(out)
        u = _unit(np.cross([0.0, 0.0, 1.0], w))
        v = np.cross(w, u)
        rot = np.stack([u, v, w])                      # (3, 3) rows: screen right, up, out
        self._lin = rot @ np.diag(aspect / extent)     # metres -> camera axes
        self._off = -rot @ eye
        self._out_dir = out

    def _project(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Points (N, 3) relative to the box's low corner -> (screen xy (N, 2), depth (N,)).

        Screen coordinates are before the panel fit (perspective divided);
        larger depth = farther from the viewer.
        """
        q = p @ self._lin.T + self._off
        depth = -q[:, 2]
        return q[:, :2] / depth[:, None], depth

    def _to_pixels(self, xy: np.ndarray) -> np.ndarray:
        """Screen coordinates (N, 2) -> pixel coordinates (N, 2), corner-origin convention."""
        return np.stack([self._cx + self._scale * xy[:, 0], self._cy - self._scale * xy[:, 1]], axis=1)

    def _box_corners(self) -> np.ndarray:
        """The 8 corners (8, 3) relative to the low corner; index bits = (x, y, z) high."""
        e = self._extent
        return np.array([[(i & 1) * e[0], (i >> 1 & 1) * e[1], (i >> 2 & 1) * e[2]] for i in range(8)])

    def _fit_to_panel(self, title_band: float) -> None:
        w, h = self.size
        xy, _ = self._project(self._box_corners())
        lo, hi = xy.min(0), xy.max(0)
        top = h * title_band
        margin = 0.04 * min(w, h)
        self._scale = min((w - 2 * margin) / (hi[0] - lo[0]), (h - top - 2 * margin) / (hi[1] - lo[1]))
        mid = (lo + hi) / 2
        self._cx = w / 2 - self._scale * mid[0]
        self._cy = top + (h - top) / 2 + self._scale * mid[1]

    # ---------------------------------------------------------- background
    def _line(self, img: np.ndarray, a: np.ndarray, b: np.ndarray, color: Color, thickness: int = 1) -> None:
        pts = to_fixed_point(self._to_pixels(self._project(np.stack([a, b]))[0]))
        cv2.line(img, tuple(int(v) for v in pts[0]), tuple(int(v) for v in pts[1]),
                 color, thickness, cv2.LINE_AA, SHIFT)

    def _grid_values(self, axis: int) -> np.ndarray:
        """Grid line positions along ``axis`` relative to the low corner."""
        e, s = self._extent[axis], self.grid_step
        if axis == 2:
            vals = np.arange(0.0, e + 1e-9, s)
        else:
            k = math.floor(self.radius / s + 1e-9)
            vals = self.radius + s * np.arange(-k, k + 1)
        return vals[(vals > 1e-6) & (vals < e - 1e-6)]

    def _draw_background(self) -> np.ndarray:
        w, h = self.size
        img = np.full((h, w, 3), 255, np.uint8)
        e = self._extent
        # A pane sits on the side of the box facing away from the viewer.
        back = [0.0 if self._out_dir[i] > 0 else e[i] for i in range(3)]
        front = [e[i] - back[i] for i in range(3)]
        grid, edge = colors.GRID_GREY, colors.EDGE_GREY
        for axis in range(3):  # pane perpendicular to `axis`
            o1, o2 = [i for i in range(3) if i != axis]
            for other, along in ((o1, o2), (o2, o1)):
                for val in self._grid_values(other):
                    a = np.zeros(3)
                    a[axis], a[other] = back[axis], val
                    b = a.copy()
                    a[along], b[along] = 0.0, e[along]
                    self._line(img, a, b, grid)
        # Edges of the three back panes: the 3 lines from their common corner
        # and, from the far end of each, the panes' 6 outer edges.
        corner = np.array(back)
        for axis in range(3):
            far = corner.copy()
            far[axis] = front[axis]
            self._line(img, corner, far, edge)
            for other in range(3):
                if other == axis:
                    continue
                b = far.copy()
                b[other] = front[other]
                self._line(img, far, b, edge)
        self._draw_axes(img, back, front)
        if self.legend:
            self._draw_legend(img)
        return img

    def _text(self, img: np.ndarray, text: str, org: tuple[float, float], color: Color, scale: float = 0.55,
              align_right: bool = False) -> None:
        """Small text (``scale`` at 720 px) with its baseline-left (or -right) corner at ``org``."""
        k = min(self.size) / 720
        font, thick = cv2.FONT_HERSHEY_SIMPLEX, max(1, round(1.5 * k))
        x, y = org
        if align_right:
            x -= cv2.getTextSize(text, font, scale * k, thick)[0][0]
        cv2.putText(img, text, (int(round(x)), int(round(y))), font, scale * k, color, thick, cv2.LINE_AA)

    def scale_bar_pixels(self, metres: float = 0.5) -> float:
        """Pixel length of ``metres`` along x on the floor below the pelvis (box centre)."""
        c = np.array([self.radius, self.radius, 0.0])
        px = self._to_pixels(self._project(np.stack([c, c + [metres, 0.0, 0.0]]))[0])
        return float(np.linalg.norm(px[1] - px[0]))

    def _draw_legend(self, img: np.ndarray) -> None:
        """L/R colour legend at the top left, 0.5 m scale bar at the bottom left."""
        w, h = self.size
        k = min(w, h) / 720
        x0, line = 14 * k, 26 * k
        y = h * 0.07 + 22 * k
        for label, color in (("L", colors.BLUE), ("R", colors.RED)):
            cv2.line(img, (int(x0), int(y - 6 * k)), (int(x0 + 22 * k), int(y - 6 * k)), color,
                     self.thickness, cv2.LINE_AA)
            self._text(img, label, (x0 + 28 * k, y), colors.BLACK)
            y += line
        bar = self.scale_bar_pixels(0.5)
        yb = h - 16 * k
        a, b = (int(x0), int(yb)), (int(x0 + bar), int(yb))
        cv2.line(img, a, b, colors.BLACK, max(1, round(2 * k)), cv2.LINE_AA)
        for x in (a[0], b[0]):
            cv2.line(img, (x, int(yb - 5 * k)), (x, int(yb + 1)), colors.BLACK, max(1, round(2 * k)), cv2.LINE_AA)
        self._text(img, "0.5 m", (x0, yb - 9 * k), colors.BLACK)

    def _draw_axes(self, img: np.ndarray, back: list[float], front: list[float]) -> None:
        """matplotlib-like axis lines with tick marks (no labels)."""
        e = self._extent
        tick = 0.03 * max(e[0], e[1])
        # x and y axes run along the floor's front edges; the z axis up the
        # leftmost vertical back edge.
        lines = []
        for axis in (0, 1):
            other = 1 - axis
            a = np.zeros(3)
            a[other], a[2] = front[other], back[2]
            lines.append((axis, a, other, np.sign(front[other] - back[other] or 1.0)))
        candidates = [np.array([xv, yv, 0.0]) for xv in (0.0, e[0]) for yv in (0.0, e[1])
                      if xv == back[0] or yv == back[1]]  # vertical edges of the back panes
        screen_x = [self._to_pixels(self._project(p[None])[0])[0, 0] for p in candidates]
        base = candidates[int(np.argmin(screen_x))]
        out_axis = 0 if base[0] == front[0] and base[1] == back[1] else 1
        lines.append((2, base, out_axis, np.sign(base[out_axis] - e[out_axis] / 2 or 1.0)))
        for axis, start, out_axis, sign in lines:
            end = start.copy()
            end[axis] = e[axis]
            a = start.copy()
            a[axis] = 0.0
            self._line(img, a, end, colors.BLACK)
            for val in self._grid_values(axis):
                p = a.copy()
                p[axis] = val
                q = p.copy()
                q[out_axis] += sign * tick
                self._line(img, p, q, colors.BLACK)

    # -------------------------------------------------------------- render
    def low_corner(self, pose_world: np.ndarray) -> np.ndarray | None:
        """The box's low corner (3,) for a pose: (root_x - r, root_y - r, 0); None if no joint is finite."""
        pose = np.asarray(pose_world, np.float64)
        root = pose[skeleton.ROOT]
        if not np.isfinite(root).all():
            finite = np.isfinite(pose).all(axis=1)
            if not finite.any():
                return None
            root = pose[finite].mean(axis=0)
        return np.array([root[0] - self.radius, root[1] - self.radius, 0.0])

    def render(self, pose_world: np.ndarray | None, title: str | None = None,
               out: np.ndarray | None = None, counter: str | None = None) -> np.ndarray:
        """Draw one pose.

        Args:
            pose_world: (17, 3) metres in the world frame (z up); NaN joints
                are skipped with their bones; None or all-NaN draws the empty
                axes with "no detection".
            title: optional text at the top centre.
            out: optional (h, w, 3) uint8 array (may be a view into a larger
                image) to draw into instead of a new array.
            counter: optional text at the bottom right, e.g. "frame 12  0.48 s"
                (see :func:`frame_counter`).

        Returns:
            (h, w, 3) uint8 RGB image.
        """
        w, h = self.size
        background = self.background_with(title)
        if out is None:
            out = background.copy()
        else:
            if out.shape != (h, w, 3):
                raise ValueError(f"out must be ({h}, {w}, 3), got {out.shape}")
            np.copyto(out, background)
        low = None if pose_world is None else self.low_corner(pose_world)
        if low is None:
            self._muted.annotate(out, "no detection", top=int(h * 0.5))
        else:
            self._draw_pose(out, np.asarray(pose_world, np.float64) - low)
        if counter:
            k = min(w, h) / 720
            self._text(out, counter, (w - 14 * k, h - 16 * k), colors.MUTED_GREY, align_right=True)
        return out

    def render_many(self, poses_world: np.ndarray, center_xy: np.ndarray, title: str | None = None,
                    out: np.ndarray | None = None) -> np.ndarray:
        """Draw several people in one fixed box (``--person all``).

        poses_world: (P, 17, 3) metres, one shared world frame (z up, floor at
        z = 0); people with no finite joint are skipped. center_xy: (2,) the
        box's centre on the floor (its half-width is ``radius``). Returns (h, w, 3).
        """
        w, h = self.size
        background = self.background_with(title)
        if out is None:
            out = background.copy()
        else:
            np.copyto(out, background)
        low = np.array([center_xy[0] - self.radius, center_xy[1] - self.radius, 0.0])
        drawn = 0
        poses = np.asarray(poses_world, np.float64)
        # far people first (larger y = farther from the camera in the world frame)
        order = np.argsort([-np.nanmean(p[:, 1]) if np.isfinite(p).any() else 0.0 for p in poses])
        for i in order:
            if np.isfinite(poses[i]).all(axis=1).any():
                self._draw_pose(out, poses[i] - low)
                drawn += 1
        if not drawn:
            self._muted.annotate(out, "no detection", top=int(h * 0.5))
        return out

    def background_with(self, title: str | None) -> np.ndarray:
        """The static background (h, w, 3) with ``title`` drawn in (cached per title)."""
        if not title:
            return self.background
        if title not in self._titled:
            if len(self._titled) > 16:  # titles are normally constant; bound the cache anyway
                self._titled.clear()
            self._titled[title] = self._label.annotate(self.background, title, copy=True)
        return self._titled[title]

    def _draw_pose(self, img: np.ndarray, rel: np.ndarray) -> None:
        ok = np.isfinite(rel).all(axis=1)
        bones = np.flatnonzero(ok[self._parents] & ok[self._children])
        if bones.size == 0:
            return
        rel = np.where(ok[:, None], rel, 0.0)
        if self.shadow:
            floor = rel.copy()
            floor[:, 2] = 0.0
            sxy, _ = self._project(floor)
            spx = to_fixed_point(self._to_pixels(sxy))
            for b in bones:
                p, c = spx[self._parents[b]], spx[self._children[b]]
                cv2.line(img, (int(p[0]), int(p[1])), (int(c[0]), int(c[1])),
                         colors.SHADOW_GREY, self.thickness, cv2.LINE_AA, SHIFT)
        xy, depth = self._project(rel)
        px = to_fixed_point(self._to_pixels(xy))
        bone_depth = depth[self._parents[bones]] + depth[self._children[bones]]
        for b in bones[np.argsort(-bone_depth, kind="stable")]:  # far first, near on top
            p, c = px[self._parents[b]], px[self._children[b]]
            cv2.line(img, (int(p[0]), int(p[1])), (int(c[0]), int(c[1])),
                     self.bone_colors[b], self.thickness, cv2.LINE_AA, SHIFT)

    def project_pose(self, pose_world: np.ndarray) -> np.ndarray:
        """Pixel coordinates (17, 2) where `render` draws each joint (NaN if not drawn)."""
        low = self.low_corner(pose_world)
        if low is None:
            return np.full((skeleton.NUM_JOINTS, 2), np.nan)
        rel = np.asarray(pose_world, np.float64) - low
        ok = np.isfinite(rel).all(axis=1)
        xy, _ = self._project(np.where(ok[:, None], rel, 0.0))
        px = self._to_pixels(xy)
        px[~ok] = np.nan
        return px


def frame_counter(index: int, fps: float, total: int | None = None) -> str:
    """The panel's counter text: "frame 12/300  0.48 s" (0-based frame index, time = index / fps)."""
    of = f"/{total}" if total else ""
    return f"frame {index}{of}  {index / fps:.2f} s" if fps > 0 else f"frame {index}{of}"
