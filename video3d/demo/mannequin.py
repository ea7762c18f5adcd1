"""Render a :class:`~video3d.demo.motion.Motion` as a shaded mannequin.

The figure is a union of round cones (capsules with different end radii) and
spheres: tapered limbs, a torso built from a few thick capsules, a head with
hair, eyes, a nose and ears. Each pixel's camera ray is intersected with every
primitive in numpy (a per-pixel z-buffer), shaded with Lambert light plus
ambient and a soft darkening towards silhouettes, supersampled and averaged
down for anti-aliasing, and composited over a plain wall and floor with a soft
contact shadow. Colours: shirt on torso and upper arms, trousers on legs,
shoes, skin on neck, face, forearms and hands.

Cameras are :class:`video3d.geometry.camera.Camera` (``X_cam = R @ X_world + t``,
OpenCV axes, pixel origin at the top-left corner of the top-left pixel).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import cv2
import numpy as np

from video3d.geometry.camera import Camera, world_to_camera
from video3d.demo.motion import HEAD_POINTS, J, Body, Motion

_BODY = Body()
SHIRT, TROUSERS, SKIN, SHOES, HAIR, EYES, BELT = range(7)


@dataclass(frozen=True)
class Look:
    """Colours (RGB 0-255) and lighting of the scene."""

    colors: dict[int, tuple[int, int, int]] = field(default_factory=lambda: {
        SHIRT: (196, 64, 52), TROUSERS: (48, 66, 112), SKIN: (226, 178, 146), SHOES: (36, 32, 30),
        HAIR: (70, 46, 30), EYES: (25, 22, 20), BELT: (40, 34, 30)})
    wall: tuple[int, int, int] = (206, 210, 214)
    floor: tuple[int, int, int] = (168, 160, 146)
    #: Direction towards the light in the camera frame (x right, y down, z forward).
    light_camera: tuple[float, float, float] = (-0.4, -0.75, -0.55)
    ambient: float = 0.38
    diffuse: float = 0.62
    #: Darkening of surfaces seen edge-on (0 = none): separates overlapping parts.
    edge_darkening: float = 0.28
    shadow_strength: float = 0.45


@dataclass(frozen=True)
class Primitives:
    """The shapes of one pose: N round cones a -> b with radii ra -> rb (spheres: a == b).

    a, b: (N, 3) metres; ra, rb: (N,) metres; mat: (N,) material ids (SHIRT, ...).
    """

    a: np.ndarray  # (N, 3)
    b: np.ndarray  # (N, 3)
    ra: np.ndarray  # (N,)
    rb: np.ndarray  # (N,)
    mat: np.ndarray  # (N,) int


def _foot_frame(ankle: np.ndarray, toe: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward and up axes of a foot (no roll) from ankle and toe tip, (3,) each."""
    g = toe - ankle
    g = g / np.linalg.norm(g)
    side = np.cross([0.0, 0.0, 1.0], g)
    side /= max(np.linalg.norm(side), 1e-9)
    # Turn g up by the rest angle of the ankle -> toe vector (it points down-forward).
    alpha = np.arctan2(_BODY.ankle_height, _BODY.toe_forward)
    forward = np.cos(alpha) * g - np.sin(alpha) * np.cross(side, g)
    up = np.cross(forward, side)
    return forward, up


def mannequin_primitives(joints: np.ndarray, head_rotation: np.ndarray, scale: float = 1.0) -> Primitives:
    """Round cones and spheres of one pose.

    joints: (21, 3) world mannequin joints; head_rotation: (3, 3) columns =
    head forward, left, up. Returns world-frame primitives.
    """
    s = scale
    items: list[tuple[np.ndarray, np.ndarray, float, float, int]] = []

    def add(a, b, ra, rb, mat):
        items.append((np.asarray(a, np.float64), np.asarray(b, np.float64), ra * s, rb * s, mat))

    p = {name: joints[i] for name, i in J.items()}
    pelvis, spine, chest, neck, head = p["pelvis"], p["spine"], p["chest"], p["neck"], p["head"]
    lat = p["left_shoulder"] - p["right_shoulder"]
    lat /= np.linalg.norm(lat)
    hip_lat = p["left_hip"] - p["right_hip"]
    hip_lat /= np.linalg.norm(hip_lat)
    up_t = chest - spine
    up_t /= np.linalg.norm(up_t)

    # Torso (shirt): a chest block, shoulder caps and a waist; a belt and trousers on the hips.
    add(chest - 0.09 * s * up_t + 0.06 * s * lat, chest - 0.09 * s * up_t - 0.06 * s * lat, 0.118, 0.118, SHIRT)
    add(p["left_shoulder"] - 0.03 * s * lat, p["right_shoulder"] + 0.03 * s * lat, 0.06, 0.06, SHIRT)
    for side in (1.0, -1.0):
        add(chest - 0.1 * s * up_t + 0.03 * s * side * lat,
            pelvis + 0.07 * s * up_t + 0.035 * s * side * hip_lat, 0.115, 0.112, SHIRT)
    add(pelvis + 0.05 * s * up_t + 0.045 * s * hip_lat, pelvis + 0.05 * s * up_t - 0.045 * s * hip_lat,
        0.112, 0.112, BELT)
    add(pelvis - 0.01 * s * up_t + 0.055 * s * hip_lat, pelvis - 0.01 * s * up_t - 0.055 * s * hip_lat,
        0.112, 0.112, TROUSERS)

    # Neck and head.
    R = head_rotation
    hf, hl, hu = R[:, 0], R[:, 1], R[:, 2]
    add(chest + 0.01 * s * up_t, head - 0.06 * s * hu, 0.052, 0.048, SKIN)
    add(head - 0.035 * s * hu, head + 0.035 * s * hu, 0.085, 0.085, SKIN)
    add(head + s * (-0.017 * hf + 0.047 * hu), head + s * (-0.030 * hf + 0.030 * hu), 0.088, 0.088, HAIR)
    for name in ("left_eye", "right_eye"):
        c = head + s * (R @ np.array(HEAD_POINTS[name])) - 0.002 * s * hf
        add(c, c, 0.012, 0.012, EYES)
    nose = head + s * (0.078 * hf - 0.015 * hu)
    add(nose, nose + s * (0.012 * hf - 0.008 * hu), 0.016, 0.011, SKIN)
    for side in (1.0, -1.0):
        c = head + s * (-0.008 * hf + side * 0.080 * hl)
        add(c, c, 0.022, 0.022, SKIN)

    # Limbs.
    for side in ("left", "right"):
        sh, el, wr, hd = p[f"{side}_shoulder"], p[f"{side}_elbow"], p[f"{side}_wrist"], p[f"{side}_hand"]
        add(sh, el, 0.054, 0.043, SHIRT)
        add(el, wr, 0.040, 0.030, SKIN)
        add(wr, hd, 0.033, 0.030, SKIN)
        hip, kn, an, toe = p[f"{side}_hip"], p[f"{side}_knee"], p[f"{side}_ankle"], p[f"{side}_toe"]
        add(hip, kn, 0.080, 0.056, TROUSERS)
        add(kn, an, 0.054, 0.040, TROUSERS)
        fwd, fup = _foot_frame(an, toe)
        heel = an + s * (-0.035 * fwd - 0.043 * fup)
        ball = toe + s * (-0.035 * fwd + 0.033 * fup)
        add(heel, ball, 0.042, 0.033, SHOES)
    a, b, ra, rb, mat = zip(*items)
    return Primitives(np.array(a), np.array(b), np.array(ra), np.array(rb), np.array(mat))


def intersect_round_cone(rd: np.ndarray, pa: np.ndarray, pb: np.ndarray, ra: float, rb: float) -> np.ndarray:
    """Distance to the first hit of rays from the origin with a round cone.

    A round cone is the convex hull of two spheres (a capsule with end radii
    ra, rb; a sphere when pa == pb). rd: (P, 3) unit ray directions; pa, pb:
    (3,) end centres. Returns t (P,), inf where the ray misses.
    """
    ba, oa, ob = pb - pa, -pa, -pb
    rr = ra - rb
    m0, m1, m5 = float(ba @ ba), float(ba @ oa), float(oa @ oa)
    m3, m6 = rd @ oa, rd @ ob
    t = np.full(rd.shape[0], np.inf, rd.dtype)
    body = np.zeros(rd.shape[0], bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        d2 = m0 - rr * rr
        if d2 > 1e-12:
            m2 = rd @ ba
            k2 = d2 - m2 * m2
            k1 = d2 * m3 - m1 * m2 + m2 * (rr * ra)
            k0 = d2 * m5 - m1 * m1 + 2.0 * m1 * rr * ra - m0 * ra * ra
            h = k1 * k1 - k0 * k2
            tb = (-np.sqrt(h) - k1) / k2
            y = (m1 - ra * rr) + tb * m2
            body = (h >= 0.0) & (y > 0.0) & (y < d2) & (tb > 0.0)
            t[body] = tb[body]
        for o, m, r in ((oa, m3, ra), (ob, m6, rb)):
            hc = m * m - float(o @ o) + r * r
            tc = -m - np.sqrt(hc)
            cap = ~body & (hc > 0.0) & (tc > 0.0) & (tc < t)
            t[cap] = tc[cap]
    return t


def round_cone_normal(p: np.ndarray, pa: np.ndarray, pb: np.ndarray, ra: float, rb: float) -> np.ndarray:
    """Outward unit normals at points ``p`` (P, 3) on the surface of a round cone. -> (P, 3)."""
    ba = pb - pa
    rr = ra - rb
    d2 = float(ba @ ba) - rr * rr
    pa_p = p - pa
    if d2 <= 1e-12:
        n = pa_p
    else:
        y = pa_p @ ba - ra * rr
        n = np.where((y <= 0.0)[:, None], pa_p,
                     np.where((y >= d2)[:, None], p - pb, d2 * pa_p - y[:, None] * ba))
    return n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)


def _bbox(pa: np.ndarray, pb: np.ndarray, r: float, cam: Camera) -> tuple[float, float, float, float] | None:
    """Conservative pixel box (u0, v0, u1, v1) of a round cone; None if it reaches behind the camera."""
    pts = np.stack([pa, pb])
    z_near = pts[:, 2] - r
    if z_near.min() < 0.05:
        return None
    zs = np.concatenate([z_near, pts[:, 2] + r])
    lo_x = np.concatenate([pts[:, 0] - r] * 2) / zs
    hi_x = np.concatenate([pts[:, 0] + r] * 2) / zs
    lo_y = np.concatenate([pts[:, 1] - r] * 2) / zs
    hi_y = np.concatenate([pts[:, 1] + r] * 2) / zs
    return (cam.fx * lo_x.min() + cam.cx, cam.fy * lo_y.min() + cam.cy,
            cam.fx * hi_x.max() + cam.cx, cam.fy * hi_y.max() + cam.cy)


def _background(cam: Camera, look: Look) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Wall-and-floor image (H, W, 3) float32, floor xy (H, W, 2) and floor mask (H, W)."""
    W, H = cam.width, cam.height
    u = (np.arange(W) + 0.5 - cam.cx) / cam.fx
    v = (np.arange(H) + 0.5 - cam.cy) / cam.fy
    rays = np.stack(np.broadcast_arrays(u[None, :], v[:, None], np.ones((H, W))), -1)
    R = np.asarray(cam.R, np.float64)
    d = rays @ R  # world directions (R.T @ ray)
    centre = -R.T @ np.asarray(cam.t, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        tf = -centre[2] / d[..., 2]
    is_floor = (d[..., 2] < 0.0) & (centre[2] > 0.0)
    tf = np.where(is_floor, tf, 0.0)
    floor_xy = centre[:2] + tf[..., None] * d[..., :2]
    dist = np.where(is_floor, np.linalg.norm(floor_xy - centre[:2], axis=-1), np.inf)
    fade = np.clip(dist / 25.0, 0.0, 1.0)[..., None]
    wall = np.asarray(look.wall, np.float32)
    elev = np.clip(d[..., 2] / np.linalg.norm(d, axis=-1), -1.0, 1.0)[..., None]
    sky = wall * (0.97 + 0.06 * elev)
    floor = np.asarray(look.floor, np.float32) * (1.0 - 0.12 * fade) + wall * 0.12 * fade
    img = np.where(is_floor[..., None], floor * (1 - 0.4 * fade) + sky * 0.4 * fade, sky)
    return img.astype(np.float32), floor_xy.astype(np.float32), is_floor


def _shadow(floor_xy: np.ndarray, is_floor: np.ndarray, joints: np.ndarray, scale: float) -> np.ndarray:
    """Soft contact shadow factor in [0, 1] (1 = fully dark) on the floor, (H, W) float32."""
    H, W = is_floor.shape
    step = 4
    xy = floor_xy[step // 2::step, step // 2::step]
    acc = np.zeros(xy.shape[:2], np.float32)
    blobs = [(joints[J["pelvis"]], 0.26, 0.55)]
    for side in ("left", "right"):
        foot = 0.5 * (joints[J[f"{side}_ankle"]] + joints[J[f"{side}_toe"]])
        blobs.append((foot, 0.09, 0.9 * np.exp(-max(foot[2] - 0.05 * scale, 0.0) / 0.12)))
    for centre, sigma, weight in blobs:
        d2 = np.sum((xy - centre[:2].astype(np.float32)) ** 2, axis=-1)
        acc += np.float32(weight) * np.exp(-d2 / np.float32(2.0 * (sigma * scale) ** 2))
    acc = np.clip(acc, 0.0, 1.0)
    return cv2.resize(acc, (W, H), interpolation=cv2.INTER_LINEAR) * is_floor


def _shade_body(cam: Camera, prims: Primitives, x0: int, y0: int, x1: int, y1: int, ss: int,
                look: Look) -> tuple[np.ndarray, np.ndarray]:
    """Render primitives (camera frame) in the base-pixel box; returns premultiplied RGB and coverage.

    Output shapes: (y1 - y0, x1 - x0, 3) and (y1 - y0, x1 - x0), float32.
    """
    w, h = (x1 - x0) * ss, (y1 - y0) * ss
    u = ((x0 * ss + np.arange(w) + 0.5) / ss - cam.cx) / cam.fx
    v = ((y0 * ss + np.arange(h) + 0.5) / ss - cam.cy) / cam.fy
    rays = np.stack(np.broadcast_arrays(u[None, :], v[:, None], np.ones((h, w))), -1)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    zbuf = np.full((h, w), np.inf)
    ibuf = np.full((h, w), -1, np.int64)
    for k in range(prims.a.shape[0]):
        box = _bbox(prims.a[k], prims.b[k], max(prims.ra[k], prims.rb[k]), cam)
        if box is None:
            continue
        i0 = max(int(np.floor(box[0] * ss)) - x0 * ss, 0)
        j0 = max(int(np.floor(box[1] * ss)) - y0 * ss, 0)
        i1 = min(int(np.ceil(box[2] * ss)) - x0 * ss + 1, w)
        j1 = min(int(np.ceil(box[3] * ss)) - y0 * ss + 1, h)
        if i1 <= i0 or j1 <= j0:
            continue
        rd = rays[j0:j1, i0:i1].reshape(-1, 3)
        t = intersect_round_cone(rd, prims.a[k], prims.b[k], float(prims.ra[k]), float(prims.rb[k]))
        t = t.reshape(j1 - j0, i1 - i0)
        zb = zbuf[j0:j1, i0:i1]
        closer = t < zb
        zb[closer] = t[closer]
        ibuf[j0:j1, i0:i1][closer] = k
    hit = ibuf >= 0
    nbuf = np.zeros((h, w, 3))
    flat = np.flatnonzero(hit)
    owner = ibuf.reshape(-1)[flat]
    order = np.argsort(owner, kind="stable")
    flat, owner = flat[order], owner[order]
    bounds = np.flatnonzero(np.diff(owner)) + 1
    for idx in np.split(flat, bounds):
        if idx.size == 0:
            continue
        k = ibuf.reshape(-1)[idx[0]]
        pts = rays.reshape(-1, 3)[idx] * zbuf.reshape(-1)[idx, None]
        nbuf.reshape(-1, 3)[idx] = round_cone_normal(pts, prims.a[k], prims.b[k], float(prims.ra[k]),
                                                     float(prims.rb[k]))
    mbuf = np.where(hit, prims.mat[np.maximum(ibuf, 0)], -1)
    light = np.asarray(look.light_camera, np.float64)
    light /= np.linalg.norm(light)
    lambert = np.clip(nbuf @ light, 0.0, 1.0)
    facing = np.clip(-np.sum(nbuf * rays, axis=-1), 0.0, 1.0)
    shade = (look.ambient + look.diffuse * lambert) * (1.0 - look.edge_darkening * (1.0 - facing) ** 2)
    palette = np.zeros((max(look.colors) + 1, 3))
    for key, col in look.colors.items():
        palette[key] = col
    rgb = palette[np.maximum(mbuf, 0)] * shade[..., None] * hit[..., None]
    cov = hit.astype(np.float32)
    if ss > 1:
        size = (x1 - x0, y1 - y0)
        rgb = cv2.resize(rgb.astype(np.float32), size, interpolation=cv2.INTER_AREA)
        cov = cv2.resize(cov, size, interpolation=cv2.INTER_AREA)
    return rgb.astype(np.float32), cov


def render_frame(motion: Motion, index: int, camera: Camera, supersample: int = 2,
                 look: Look | None = None, background: tuple | None = None) -> np.ndarray:
    """One frame of ``motion`` seen by ``camera``: (H, W, 3) uint8 RGB."""
    look = look or Look()
    bg, floor_xy, is_floor = background if background is not None else _background(camera, look)
    scale = motion.body.thigh / _BODY.thigh
    joints = motion.joints[index]
    img = bg * (1.0 - look.shadow_strength * _shadow(floor_xy, is_floor, joints, scale))[..., None]
    prims = mannequin_primitives(joints, motion.head_rotation[index], scale)
    R, t = np.asarray(camera.R, np.float64), np.asarray(camera.t, np.float64)
    prims = Primitives(world_to_camera(prims.a, R, t), world_to_camera(prims.b, R, t), prims.ra, prims.rb, prims.mat)
    boxes = [b for b in (_bbox(a, b_, max(r1, r2), camera)
                         for a, b_, r1, r2 in zip(prims.a, prims.b, prims.ra, prims.rb)) if b is not None]
    if boxes:
        arr = np.array(boxes)
        x0 = int(np.clip(np.floor(arr[:, 0].min()), 0, camera.width))
        y0 = int(np.clip(np.floor(arr[:, 1].min()), 0, camera.height))
        x1 = int(np.clip(np.ceil(arr[:, 2].max()) + 1, 0, camera.width))
        y1 = int(np.clip(np.ceil(arr[:, 3].max()) + 1, 0, camera.height))
        if x1 > x0 and y1 > y0:
            rgb, cov = _shade_body(camera, prims, x0, y0, x1, y1, max(1, int(supersample)), look)
            region = img[y0:y1, x0:x1]
            img[y0:y1, x0:x1] = region * (1.0 - cov[..., None]) + rgb
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def render_mannequin(motion: Motion, camera: Camera, supersample: int = 2,
                     look: Look | None = None) -> Iterator[np.ndarray]:
    """Yield every frame of ``motion`` seen by ``camera``: (H, W, 3) uint8 RGB each.

    Deterministic: the same motion and camera give the same pixels.
    supersample: rays per pixel along each axis (anti-aliasing).
    """
    look = look or Look()
    background = _background(camera, look)
    for i in range(motion.num_frames):
        yield render_frame(motion, i, camera, supersample, look, background)
