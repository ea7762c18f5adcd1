"""Rendering: colours, the 2D annotator, titles, the fast 3D panel and the composite."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from video3d import skeleton
from video3d.render import colors
from video3d.render.annotators import LabelAnnotator, SkeletonAnnotator, draw_title
from video3d.render.composite import OverlayCompositor, composite_layout
from video3d.render.view3d import SkeletonView3D

# A standing person in the world frame (metres, z up, feet on z = 0), right arm raised.
POSE_WORLD = np.array([
    [0, 0, 0.95], [-0.13, 0, 0.95], [-0.13, 0, 0.5], [-0.13, 0.05, 0.06],
    [0.13, 0, 0.95], [0.15, 0.05, 0.52], [0.16, 0.1, 0.07],
    [0, 0, 1.18], [0, 0, 1.43], [0, -0.03, 1.55], [0, -0.02, 1.68],
    [0.17, 0, 1.43], [0.2, 0, 1.15], [0.22, -0.1, 0.92],
    [-0.17, 0, 1.43], [-0.35, -0.05, 1.3], [-0.5, -0.1, 1.5]])
POSE_WORLD[:, 2] -= POSE_WORLD[:, 2].min()


def keypoints_2d(w: int, h: int) -> np.ndarray:
    """The pose seen from the front, as (17, 2) pixels filling most of a (w, h) image."""
    s = 0.8 * h / 1.7
    return np.stack([w / 2 + POSE_WORLD[:, 0] * s, 0.9 * h - POSE_WORLD[:, 2] * s], axis=1)


def mid(kp: np.ndarray, a: int, b: int) -> tuple[int, int]:
    """Pixel (row, col) at the middle of the bone a-b (corner-origin coordinates)."""
    x, y = (kp[a] + kp[b]) / 2
    return int(y), int(x)


def near(pixel: np.ndarray, color) -> bool:
    return int(np.abs(pixel.astype(int) - color).max()) < 60


# ---------------------------------------------------------------------- colors

def test_bone_colors():
    c2, c3 = colors.bone_colors_2d(), colors.bone_colors_3d()
    by_child2 = {c: col for (_, c), col in zip(skeleton.BONES, c2)}
    by_child3 = {c: col for (_, c), col in zip(skeleton.BONES, c3)}
    for j in skeleton.RIGHT_JOINTS:
        assert by_child2[j] == colors.RED and by_child3[j] == colors.RED
    for j in skeleton.LEFT_JOINTS:
        assert by_child2[j] == colors.BLUE and by_child3[j] == colors.BLUE
    for j in (7, 8, 9, 10):  # spine and head: the same colour in both panels, neither side's
        assert by_child2[j] == by_child3[j] == colors.CENTRE_PURPLE


def test_sizes_scale_with_image_height():
    assert [colors.scaled(3, h) for h in (480, 720, 1080, 2160)] == [2, 3, 4, 9]


# ------------------------------------------------------------------ annotators

def test_skeleton_annotator_draws_sides_and_joints():
    img = np.zeros((240, 320, 3), np.uint8)
    kp = keypoints_2d(320, 240)
    out = SkeletonAnnotator().annotate(img, kp)
    assert out is img  # in place by default
    assert near(img[mid(kp, 15, 16)], colors.RED)    # right forearm
    assert near(img[mid(kp, 2, 3)], colors.RED)      # right shin
    assert near(img[mid(kp, 12, 13)], colors.BLUE)   # left forearm
    assert near(img[mid(kp, 7, 8)], colors.CENTRE_PURPLE)  # spine
    x, y = kp[16]
    assert near(img[int(y), int(x)], colors.GREEN)   # joint dot on top
    assert img[5, 5].max() == 0


def test_skeleton_annotator_skips_missing_and_unconfident_joints():
    full = keypoints_2d(320, 240)
    kp = full.copy()
    kp[16] = np.nan
    scores = np.ones(17)
    scores[13] = 0.1
    img = np.zeros((240, 320, 3), np.uint8)
    original = img.copy()
    out = SkeletonAnnotator().annotate(img, kp, scores, min_score=0.5, copy=True)
    assert np.array_equal(img, original)  # copy=True leaves the input alone
    assert out[mid(full, 15, 16)].max() == 0   # missing wrist: no forearm
    assert out[mid(full, 12, 13)].max() == 0   # unconfident wrist: no forearm
    assert near(out[mid(kp, 14, 15)], colors.RED)  # upper arm still drawn
    assert SkeletonAnnotator().annotate(img, np.full((17, 2), np.nan)) is img
    with pytest.raises(ValueError):
        SkeletonAnnotator().annotate(img, np.zeros((16, 2)))


def test_line_thickness_scales_for_4k():
    def width(h: int) -> int:
        img = np.zeros((h, h, 3), np.uint8)
        kp = np.full((17, 2), np.nan)
        kp[14], kp[15] = (h / 2, h * 0.2), (h / 2, h * 0.8)  # vertical right upper arm
        SkeletonAnnotator(joint_color=None).annotate(img, kp)
        return int((img[h // 2, :, 0] > 128).sum())

    w480, w720, w2160 = width(480), width(720), width(2160)
    assert 2 <= w480 < w720 and w2160 >= 2 * w720


def test_titles():
    img = np.zeros((720, 400, 3), np.uint8)
    draw_title(img, "Input")
    top = img[:60, 150:250]
    assert (top == 255).all(axis=2).mean() > 0.3 and (top < 80).all(axis=2).any()  # black text, white box
    assert img[100:].max() == 0
    label = LabelAnnotator(background=None)
    clean = np.full((400, 400, 3), 255, np.uint8)
    assert label.annotate(clean, "Hi", copy=True).min() < 100 and clean.min() == 255
    label.annotate(clean, "a long label that does not fit", center_x=0)  # clipped, no error


# -------------------------------------------------------------------- 3D panel

def test_view3d_draws_a_known_pose():
    view = SkeletonView3D(size=(360, 360))
    img = view.render(POSE_WORLD)
    assert img.shape == (360, 360, 3) and img.dtype == np.uint8
    px = view.project_pose(POSE_WORLD)
    assert near(img[mid(px, 15, 16)], colors.RED)   # right forearm
    assert near(img[mid(px, 5, 6)], colors.BLUE)    # left shin
    assert near(img[mid(px, 7, 8)], colors.CENTRE_PURPLE)  # spine: as in 2D
    assert (img[3, 3] == 255).all()                 # white background outside the box
    greys = (img[..., 0] == img[..., 1]) & (img[..., 1] == img[..., 2]) & (img[..., 0] < 250)
    assert greys.mean() > 0.01                      # grid lines and pane edges
    # Standing on the floor: the feet project below the pelvis, the head above it.
    assert px[3, 1] > px[0, 1] > px[10, 1]


def test_view3d_is_not_a_mirror_image_of_the_input():
    """A person facing the camera has their right wrist on the image's left: so must the 3D panel."""
    from video3d.lift.world import camera_to_display_world

    kp = keypoints_2d(640, 480)
    assert kp[16, 0] < 320 < kp[13, 0]  # right wrist left in the picture, left wrist right
    # the same pose in the camera frame (x right, y down, z forward), then as the pipeline displays it
    camera = np.stack([POSE_WORLD[:, 0], -POSE_WORLD[:, 2], POSE_WORLD[:, 1]], axis=1)
    world = camera_to_display_world((camera - camera[:1])[None])[0]
    view = SkeletonView3D(size=(360, 360))
    px = view.project_pose(world)
    assert px[16, 0] < 180 < px[13, 0]
    assert px[15, 0] < px[0, 0] < px[12, 0]  # right elbow, pelvis, left elbow: left to right
    img = view.render(world)
    assert near(img[mid(px, 15, 16)], colors.RED) and mid(px, 15, 16)[1] < 180


def test_view3d_legend_scale_and_counter():
    from video3d.render.view3d import frame_counter

    view = SkeletonView3D(size=(360, 360))
    bg = view.background
    top_left, bottom_left = bg[:90, :60], bg[-40:, :120]
    assert (np.abs(top_left.astype(int) - colors.BLUE).max(axis=2) < 40).sum() > 10  # "L" swatch
    assert (np.abs(top_left.astype(int) - colors.RED).max(axis=2) < 40).sum() > 10   # "R" swatch
    assert (bottom_left.max(axis=2) < 60).sum() > 30                                  # scale bar + "0.5 m"
    # 0.5 m on the floor is 2.5 grid cells of 0.2 m: compare with the projected grid spacing
    c = np.array([view.radius, view.radius, 0.0])
    grid = view._to_pixels(view._project(np.stack([c, c + [0.2, 0, 0]]))[0])
    assert view.scale_bar_pixels(0.5) == pytest.approx(2.5 * np.linalg.norm(grid[1] - grid[0]), rel=0.02)
    assert frame_counter(12, 25.0, 300) == "frame 12/300  0.48 s"
    plain, counted = view.render(POSE_WORLD), view.render(POSE_WORLD, counter="frame 12/300  0.48 s")
    diff = np.abs(plain.astype(int) - counted).max(axis=2) > 0
    rows, cols = np.nonzero(diff)
    assert rows.size and rows.min() > 300 and cols.min() > 180  # bottom right only
    bare = SkeletonView3D(size=(360, 360), legend=False).background[:90, :60]
    assert not (np.abs(bare.astype(int) - colors.BLUE).max(axis=2) < 40).any()


def test_view3d_draws_nearer_bones_on_top():
    view = SkeletonView3D(size=(360, 360))
    e, a = math.radians(view.elev), math.radians(view.azim)
    toward_viewer = np.array([math.cos(e) * math.cos(a), math.cos(e) * math.sin(a), math.sin(e)])
    right = np.array([-math.sin(a), math.cos(a), 0.0])
    up = np.cross(toward_viewer, right)
    centre = np.array([0.0, 0.0, 1.0])

    def crossing(red_in_front: bool) -> np.ndarray:
        d = 0.25 if red_in_front else -0.25
        pose = np.full((17, 3), np.nan)
        pose[15], pose[16] = centre - 0.2 * right + 0.2 * up + d * toward_viewer, centre + 0.2 * right - 0.2 * up + d * toward_viewer
        pose[12], pose[13] = centre - 0.2 * right - 0.2 * up - d * toward_viewer, centre + 0.2 * right + 0.2 * up - d * toward_viewer
        px = view.project_pose(pose)
        (x1, y1), (x2, y2), (x3, y3), (x4, y4) = px[15], px[16], px[12], px[13]
        den = (x1 - x2) * (y3 - y4) - (y1 - y2) * (x3 - x4)
        t = ((x1 - x3) * (y3 - y4) - (y1 - y3) * (x3 - x4)) / den
        x, y = x1 + t * (x2 - x1), y1 + t * (y2 - y1)
        return view.render(pose)[int(y), int(x)]

    assert near(crossing(True), colors.RED)
    assert near(crossing(False), colors.BLUE)


def test_view3d_without_a_pose_draws_empty_axes():
    view = SkeletonView3D(size=(300, 300))
    for pose in (None, np.full((17, 3), np.nan)):
        img = view.render(pose, title="Reconstruction")
        changed = np.abs(img.astype(int) - view.background_with("Reconstruction")).max(axis=2) > 0
        rows = np.flatnonzero(changed.any(axis=1))
        assert rows.size and 120 < rows.mean() < 190  # only the "no detection" text mid-panel
        assert not ((img[..., 0] > 200) & (img[..., 1] < 100))[changed].any()  # no bone drawn


def test_view3d_renders_into_a_view_and_is_fast():
    view = SkeletonView3D(size=(720, 720))
    canvas = np.zeros((720, 1000, 3), np.uint8)
    view.render(POSE_WORLD, title="Reconstruction", out=canvas[:, 280:])
    assert np.array_equal(canvas[:, 280:], view.render(POSE_WORLD, title="Reconstruction"))
    assert canvas[:, :280].max() == 0
    n = 50
    start = time.perf_counter()
    for _ in range(n):
        view.render(POSE_WORLD, title="Reconstruction", out=canvas[:, 280:])
    print(f"\nview3d 720x720: {1000 * (time.perf_counter() - start) / n:.2f} ms/frame")


# ------------------------------------------------------------------- composite

@pytest.mark.parametrize("size, expected", [
    ((1280, 720), ((1280, 720), 720)),
    ((1088, 1920), ((408, 720), 720)),      # portrait keeps its aspect
    ((3840, 2160), ((1280, 720), 720)),
    ((641, 359), ((640, 358), 358)),        # odd: cropped to even height and total width
    ((1921, 1081), ((1278, 720), 720)),
    ((320, 240), ((320, 240), 240)),
])
def test_composite_layout(size, expected):
    (lw, h), side = composite_layout(size)
    assert ((lw, h), side) == expected
    assert h % 2 == 0 and (lw + side) % 2 == 0 and side == h


def test_compose_landscape_and_portrait():
    pose = POSE_WORLD
    for w, h in ((640, 360), (360, 640)):
        frame = np.full((h, w, 3), 90, np.uint8)
        comp = OverlayCompositor((w, h), max_height=320)
        kp = keypoints_2d(w, h)
        out = comp.compose(frame, kp, np.ones(17), pose)
        W, H = comp.output_size
        assert out.shape == (H, W, 3) and H == 320 and W % 2 == 0
        lw = comp.left_size[0]
        assert lw == round(w * 320 / h) - ((round(w * 320 / h) + 320) % 2)
        assert np.array_equal(out[:, lw:], comp.panel.render(pose, title="Reconstruction"))
        k = kp * (lw / w, 320 / h)  # keypoints follow the downscale
        assert near(out[mid(k, 15, 16)], colors.RED) and near(out[mid(k, 12, 13)], colors.BLUE)
        assert (out[-2, 2] == 90).all()  # untouched frame pixel
        buf = np.empty_like(out)
        assert comp.compose(frame, kp, None, pose, out=buf) is buf
    with pytest.raises(ValueError):
        comp.compose(np.zeros((10, 10, 3), np.uint8), None, None, None)


def test_compose_without_detection_and_skeleton_frame():
    comp = OverlayCompositor((320, 240))
    frame = np.full((240, 320, 3), 7, np.uint8)
    out = comp.compose(frame, None, None, None)
    assert out.shape == (240, 560, 3)
    assert (out[120:, :320] == 7).all()
    solo = comp.skeleton_frame(POSE_WORLD)
    assert solo.shape == (720, 720, 3) and comp.skeleton_size == (720, 720)
    assert comp.skeleton_frame(None).shape == (720, 720, 3)
