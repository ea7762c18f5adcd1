"""Random virtual cameras that film training windows.

:func:`random_camera` draws the static virtual camera that films one training
window; its distributions live in :class:`CameraConfig` and are tabulated in
docs/training_data.md. Geometry (the :class:`Camera` itself, projection,
look-at) is :mod:`video3d.geometry.camera`; screen normalisation is
:func:`video3d.keypoints.normalize_screen`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from video3d.geometry.camera import Camera, look_at, project, world_to_camera

@dataclass
class CameraConfig:
    """Distributions of :func:`random_camera` (tabulated in docs/training_data.md).

    Pairs are (low, high) of uniform distributions unless stated otherwise.
    """

    #: (width, height) in pixels: landscape, portrait and square video sizes.
    image_sizes: tuple[tuple[int, int], ...] = (
        (1920, 1080), (1280, 720), (854, 480), (640, 480), (1440, 1080), (3840, 2160),
        (1080, 1920), (720, 1280), (480, 854),
        (1080, 1080), (720, 720),
    )
    #: Relative frequency of each entry of ``image_sizes`` (normalised on use).
    image_size_weights: tuple[float, ...] = (
        0.25, 0.15, 0.05, 0.07, 0.03, 0.05,
        0.20, 0.08, 0.03,
        0.06, 0.03,
    )
    #: Field of view across the image's LONG side, degrees (phone main cameras
    #: and webcams). For landscape video this is the horizontal FOV, for
    #: portrait the vertical one: the same lens held either way.
    fov_long_deg: tuple[float, float] = (40.0, 90.0)
    #: Probability of a telephoto / zoomed-in view instead, and its long-side FOV.
    tele_prob: float = 0.1
    tele_fov_long_deg: tuple[float, float] = (15.0, 40.0)
    #: Std of the principal point around the image centre, fraction of width / height.
    principal_point_std: float = 0.01
    #: Camera height above the floor (the window's lowest joint), metres.
    height_m: tuple[float, float] = (0.3, 2.5)
    #: Azimuth of the camera around the subject, degrees.
    azimuth_deg: tuple[float, float] = (0.0, 360.0)
    #: Std of the roll about the optical axis, degrees (normal distribution).
    roll_std_deg: float = 3.0
    #: Target median per-frame person bbox height / image height.
    fill: tuple[float, float] = (0.25, 0.9)
    #: Probability of a far-away person instead, and its fill range.
    small_fill_prob: float = 0.1
    small_fill: tuple[float, float] = (0.1, 0.25)
    #: Free border kept around the whole window's 2D trajectory, fraction of
    #: the image size. The fill target gives way when the trajectory needs room.
    margin: tuple[float, float] = (0.02, 0.08)
    #: How much of the free space left around the trajectory is used to move
    #: the subject off-centre (0 = centred, 1 = anywhere it fits, uniformly).
    off_centre: float = 1.0
    #: Probability that the trajectory is pushed over one random image border,
    #: and by how much, as a fraction of the trajectory's 2D bbox size.
    truncation_prob: float = 0.05
    truncation: tuple[float, float] = (0.0, 0.15)
    #: Minimum horizontal distance camera <-> subject centre, and minimum depth
    #: of any joint in front of the camera, metres.
    min_distance_m: float = 0.5
    min_depth_m: float = 0.3
    #: Frames used to fit the distance (the window is subsampled to about this).
    fit_frames: int = 41

    def __post_init__(self) -> None:
        if len(self.image_sizes) != len(self.image_size_weights):
            raise ValueError("CameraConfig: image_sizes and image_size_weights differ in length")


def _lerp(bounds: tuple[float, float], u: float) -> float:
    """Map u in [0, 1) to the interval ``bounds`` (a uniform draw when u is)."""
    return bounds[0] + (bounds[1] - bounds[0]) * u


def _image_extents(pc: np.ndarray, f: float) -> tuple[float, float, float, float, float]:
    """Camera-frame points (T, J, 3) -> (mean per-frame bbox height, union u0, u1, v0, v1).

    Pixel coordinates relative to the principal point; all depths must be > 0.
    """
    inv = f / pc[..., 2]
    u = pc[..., 0] * inv
    v = pc[..., 1] * inv
    v_lo, v_hi = v.min(axis=1), v.max(axis=1)
    return float((v_hi - v_lo).mean()), float(u.min()), float(u.max()), float(v_lo.min()), float(v_hi.max())


def random_camera(rng: np.random.Generator, subject_points: np.ndarray,
                  config: CameraConfig | None = None) -> Camera:
    """A random static camera filming a whole window of motion.

    subject_points: (T, J, 3) world frame, metres, z up (e.g. COCO-17
    landmarks), finite. Draws the image size, focal length (from the long-side
    FOV), principal point, height above the floor (= the window's lowest
    joint), azimuth and roll; sets the distance so that the person's mean
    per-frame bbox height is a random fraction of the image height while the
    whole window's 2D trajectory fits inside the image with a random margin;
    then re-aims the camera so the subject sits at a random place in the free
    space left (for a few samples, pushed slightly over one border). Returns a
    :class:`Camera` with fx = fy, above the floor, every joint in front of it.
    """
    cfg = config if config is not None else CameraConfig()
    pts = np.asarray(subject_points, np.float64)
    if pts.ndim != 3 or pts.shape[-1] != 3 or pts.shape[0] < 1:
        raise ValueError(f"subject_points must be (T, J, 3), got {pts.shape}")
    n = pts.shape[0]
    step = max(1, -(-n // max(1, cfg.fit_frames)))
    fit = pts[::step] if (n - 1) % step == 0 else np.concatenate([pts[::step], pts[-1:]], axis=0)
    (u_size, u_tele, u_fov, u_height, u_az, u_small, u_fill, u_margin,
     u_ru, u_rv, u_trunc, u_over) = rng.random(12).tolist()
    n_pp_x, n_pp_y, n_roll = rng.standard_normal(3).tolist()

    # Intrinsics.
    cum = np.cumsum(np.asarray(cfg.image_size_weights, np.float64))
    idx = min(int(np.searchsorted(cum, u_size * cum[-1], side="right")), len(cum) - 1)
    width, height = cfg.image_sizes[idx]
    fov = _lerp(cfg.tele_fov_long_deg if u_tele < cfg.tele_prob else cfg.fov_long_deg, u_fov)
    f = 0.5 * max(width, height) / math.tan(math.radians(fov) / 2.0)
    cx = width * (0.5 + cfg.principal_point_std * n_pp_x)
    cy = height * (0.5 + cfg.principal_point_std * n_pp_y)

    # Placement around the subject.
    flat = fit.reshape(-1, 3)
    lo, hi = flat.min(axis=0), flat.max(axis=0)
    centre = 0.5 * (lo + hi)
    eye_z = float(pts[..., 2].min()) + _lerp(cfg.height_m, u_height)
    az = math.radians(_lerp(cfg.azimuth_deg, u_az))
    dir_x, dir_y = math.cos(az), math.sin(az)
    roll = math.radians(cfg.roll_std_deg * n_roll)
    fill = _lerp(cfg.small_fill if u_small < cfg.small_fill_prob else cfg.fill, u_fill)
    margin = _lerp(cfg.margin, u_margin)
    avail_w, avail_h = (1.0 - 2.0 * margin) * width, (1.0 - 2.0 * margin) * height
    dz = eye_z - float(centre[2])

    def look(dist: float, R: np.ndarray | None = None, shift: tuple[float, float] | None = None):
        """Camera at ``dist`` aimed at the centre, or R re-aimed by a pixel shift.

        Returns (eye, R, extents or None when a joint is too close / behind).
        """
        eye = np.array([centre[0] + dist * dir_x, centre[1] + dist * dir_y, eye_z])
        if shift is None:
            R = look_at(eye, centre, roll=roll)
        else:  # the ray imaged at (cx - du, cy - dv) becomes the optical axis
            R = look_at(eye, eye + R.T @ np.array([-shift[0] / f, -shift[1] / f, 1.0]), roll=roll)
        pc = (fit - eye) @ R.T
        if pc[..., 2].min() < cfg.min_depth_m:
            return eye, R, None
        h, a0, a1, b0, b1 = _image_extents(pc, f)
        return eye, R, (h, a0 + cx, a1 + cx, b0 + cy, b1 + cy)

    # Initial distance from the vertical extent; the subject's image size then
    # scales ~ 1 / (D - D0), D = eye-centre distance and D0 the depth offset of
    # whatever bounds the image (0 for a flat subject; the near end of a path
    # walked towards the camera). A secant step on two looks estimates D0.
    person_h = max(0.3, float((fit[..., 2].max(axis=1) - fit[..., 2].min(axis=1)).mean()))
    depth = f * person_h / (fill * height)
    dist = max(cfg.min_distance_m, math.sqrt(max(depth * depth - dz * dz, 0.0)))
    prev: tuple[float, float] | None = None
    for _ in range(10):
        eye, R, ext = look(dist)
        if ext is None:
            dist, prev = dist * 1.5 + 0.5, None
            continue
        h, u0, u1, v0, v1 = ext
        scale = max(h / (fill * height), (u1 - u0) / avail_w, (v1 - v0) / avail_h)
        if 0.97 < scale < 1.03 or (scale < 1.0 and dist <= cfg.min_distance_m):
            break
        D = math.sqrt(dist * dist + dz * dz)
        D_new = D * scale
        if prev is not None and abs(prev[1] - scale) > 1e-9:
            D0 = (prev[1] * prev[0] - scale * D) / (prev[1] - scale)
            if D0 < min(D, prev[0]):
                D_new = D0 + scale * (D - D0)
        prev = (D, scale)
        new = max(cfg.min_distance_m, math.sqrt(max(D_new * D_new - dz * dz, 0.0)))
        # Moving closer may bring a joint behind the camera: never step in more than halfway.
        dist = max(new, 0.5 * dist) if new < dist else new
    else:  # no convergence: the last step changed dist, look from there
        eye, R, ext = look(dist)
    while ext is None:  # safety net; rarely runs
        dist = dist * 1.5 + 0.5
        eye, R, ext = look(dist)

    # Re-aim (rotate about the camera centre) so the trajectory's bbox lands at
    # a random place where it fits. A rotation is a homography, not a shift,
    # so corrective steps measure where the bbox really went.
    lo_u, hi_u, lo_v, hi_v = margin * width, (1 - margin) * width, margin * height, (1 - margin) * height
    ru, rv = cfg.off_centre * (u_ru - 0.5), cfg.off_centre * (u_rv - 0.5)
    side, over = -1, 0.0
    if u_trunc < cfg.truncation_prob:
        side, over = int(4 * u_over) % 4, _lerp(cfg.truncation, (4 * u_over) % 1.0)
    ext0 = ext
    tol_px = 0.005 * max(width, height)
    for _attempt in range(3):
        R2, ext2 = R, ext0
        for _ in range(4):
            _, a0, a1, b0, b1 = ext2
            du = _shift_into(a0, a1, lo_u, hi_u, ru, over if side == 0 else 0.0, over if side == 1 else 0.0, width)
            dv = _shift_into(b0, b1, lo_v, hi_v, rv, over if side == 2 else 0.0, over if side == 3 else 0.0, height)
            if abs(du) < tol_px and abs(dv) < tol_px:
                break
            _, R2, ext2 = look(dist, R2, (du, dv))
            if ext2 is None:
                break
        if ext2 is not None:
            _, a0, a1, b0, b1 = ext2
            # Accept if it stays in the image (1% slack; more when truncating on purpose).
            tol_u = 0.01 * width + over * (a1 - a0)
            tol_v = 0.01 * height + over * (b1 - b0)
            if a0 >= -tol_u and a1 <= width + tol_u and b0 >= -tol_v and b1 <= height + tol_v:
                R = R2
                break
        ru, rv, over = 0.5 * ru, 0.5 * rv, 0.5 * over
    return Camera(R, -R @ eye, float(f), float(f), float(cx), float(cy), int(width), int(height))


def _shift_into(a0: float, a1: float, lo: float, hi: float, r: float, over_lo: float, over_hi: float,
                size: float) -> float:
    """Pixel shift that moves the interval [a0, a1] to its target inside [lo, hi].

    Without truncation the target centre is ``mid(lo, hi) + r * slack`` with
    ``r`` in [-0.5, 0.5] and ``slack`` the free length (an interval longer than
    [lo, hi] is centred). ``over_lo`` / ``over_hi`` > 0 instead push the
    interval over the image border 0 / ``size`` by that fraction of its length.
    """
    length = a1 - a0
    if over_lo > 0.0:
        return -over_lo * length - a0
    if over_hi > 0.0:
        return size + over_hi * length - a1
    slack = max(0.0, (hi - lo) - length)
    return 0.5 * (lo + hi) + r * slack - 0.5 * (a0 + a1)
