"""Synthetic multi-view training/evaluation samples from mocap.

A sample is one window of a mocap clip filmed by a random rig of 2-8
calibrated pinhole cameras (REFERENCE §5: 2.5-7 m from the subject, focal
0.6-1.6 x image width), with detector-like 2D noise per view
(:func:`video3d.data.noise.detector_noise`, in COCO space, then
``coco_to_h36m`` exactly as at inference), extra occlusions, views that lose
the person for a while, and the confidence-weighted DLT of
:func:`video3d.geometry.triangulation.triangulate` on the noisy 2D.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial.transform import Rotation

from video3d.data.noise import detector_noise
from video3d.geometry.camera import CalibratedCamera, look_at
from video3d.geometry.triangulation import triangulate, undistort_points
from video3d.keypoints import coco_to_h36m

#: (width, height) of the synthetic cameras.
IMAGE_SIZES = ((1920, 1080), (1280, 720), (1080, 1920), (720, 1280), (1088, 1920), (640, 480))


@dataclass
class RigConfig:
    """Distributions of :func:`random_rig` (uniform (low, high) pairs)."""

    distance_m: tuple[float, float] = (2.5, 7.0)
    height_m: tuple[float, float] = (0.4, 2.8)
    focal_over_width: tuple[float, float] = (0.6, 1.6)
    target_jitter_m: float = 0.3
    #: Largest person height / image height; the focal is lowered to keep it.
    max_fill: float = 0.95
    #: Probability that the rig is a random subset of a larger evenly spread rig (up to
    #: ``max_rig_views`` cameras), as when some cameras of a real rig lose the person: two
    #: remaining views are then often 45-90 degrees apart rather than facing each other.
    subset_prob: float = 0.0
    max_rig_views: int = 8
    #: Calibration error (standard deviations): rotation (degrees), camera centre (metres) and
    #: relative focal length. The 2D is filmed with the true cameras; DLT and the model are
    #: given the perturbed ones, as with a real calibration.
    calibration_error: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: Person size: the mocap body is scaled about its mean pelvis by a factor drawn
    #: uniformly from this range (the mocap actors are adults of similar size; people
    #: filmed are not, and detectors place joints differently, e.g. limbs ~25 % shorter
    #: on the shared multicam clip).
    body_scale: tuple[float, float] = (1.0, 1.0)


def random_rig(rng: np.random.Generator, center: np.ndarray, num_views: int,
               config: RigConfig | None = None) -> list[CalibratedCamera]:
    """``num_views`` cameras around ``center`` (3,) world metres (z up), looking at the subject."""
    cfg = config or RigConfig()
    cams = []
    az0 = rng.uniform(0, 2 * math.pi)
    slots, rig_size = list(range(num_views)), num_views
    if cfg.subset_prob > 0 and num_views < cfg.max_rig_views and rng.random() < cfg.subset_prob:
        rig_size = int(rng.integers(num_views + 1, cfg.max_rig_views + 1))
        slots = sorted(rng.choice(rig_size, size=num_views, replace=False).tolist())
    for v in slots:
        # Spread azimuths like a real rig: evenly spaced, then jittered.
        az = az0 + 2 * math.pi * v / rig_size + rng.normal(0, 0.6 / rig_size ** 0.5)
        dist = rng.uniform(*cfg.distance_m)
        eye = np.array([center[0] + dist * math.cos(az), center[1] + dist * math.sin(az), rng.uniform(*cfg.height_m)])
        target = center + rng.normal(0, cfg.target_jitter_m, 3) * np.array([1, 1, 0.5])
        R = look_at(eye, target, roll=rng.normal(0, math.radians(2)))
        w, h = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
        f = rng.uniform(*cfg.focal_over_width) * w
        f = min(f, cfg.max_fill * h * dist / 2.0)  # a 2 m tall extent fits in the image height
        cams.append(CalibratedCamera(R=R, t=-R @ eye, fx=f, fy=f, cx=w / 2 + rng.normal(0, 0.01 * w),
                                     cy=h / 2 + rng.normal(0, 0.01 * h), width=w, height=h))
    return cams


@dataclass
class Sample:
    """One multi-view window, views padded to ``max_views``.

    normalized: (V, T, J, 2) undistorted normalised coordinates (NaN = unseen);
    scores: (V, T, J); rotations: (V, 3, 3); centers: (V, 3); view_mask: (V,) bool;
    dlt: (T, J, 3) world metres (NaN where not triangulated); target: (T, J, 3).
    """

    normalized: np.ndarray
    scores: np.ndarray
    rotations: np.ndarray
    centers: np.ndarray
    view_mask: np.ndarray
    dlt: np.ndarray
    target: np.ndarray


def perturb_calibration(rng: np.random.Generator, cam: CalibratedCamera,
                        error: tuple[float, float, float]) -> CalibratedCamera:
    """A copy of ``cam`` as a calibration would estimate it: rotated by a random axis and a
    normal(0, error[0] degrees) angle, its centre moved by normal(0, error[1] m) per axis and
    its focal scaled by 1 + normal(0, error[2])."""
    rot_deg, centre_m, focal_rel = error
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    R = Rotation.from_rotvec(axis * math.radians(rng.normal(0, rot_deg))).as_matrix() @ cam.R
    centre = cam.center + rng.normal(0, centre_m, 3)
    scale = 1.0 + rng.normal(0, focal_rel)
    return replace(cam, R=R, t=-R @ centre, fx=cam.fx * scale, fy=cam.fy * scale)


def film(rng: np.random.Generator, landmarks_coco: np.ndarray, cameras: list[CalibratedCamera],
         noise: bool = True, occlusion: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Project COCO landmarks (T, 17, 3) into every camera and corrupt like a detector.

    Returns (H36M-17 pixels (V, T, 17, 2), scores (V, T, 17)).
    """
    T = landmarks_coco.shape[0]
    pts, scs = [], []
    for cam in cameras:
        uv = cam.project(landmarks_coco)
        if noise:
            uv, sc = detector_noise(uv, rng, image_size=(cam.width, cam.height))
        else:
            sc = np.ones(uv.shape[:2], np.float32)
        kp, sc = coco_to_h36m(uv, sc)
        sc = np.array(sc, np.float64)
        if occlusion:
            # Occluded body parts: a few joints get low confidence and drift for a while.
            for _ in range(rng.poisson(0.5)):
                j = rng.choice(17, size=rng.integers(1, 5), replace=False)
                t0 = rng.integers(T)
                t1 = min(T, t0 + rng.integers(1, T + 1))
                sc[t0:t1, j] *= rng.uniform(0.0, 0.4)
                kp[t0:t1, j] += rng.normal(0, 0.03 * cam.width, 2)
            # The whole person lost in this view for a while.
            if rng.random() < 0.1:
                t0 = rng.integers(T)
                t1 = min(T, t0 + rng.integers(1, T + 1))
                kp[t0:t1] = np.nan
                sc[t0:t1] = 0.0
        pts.append(kp)
        scs.append(sc)
    return np.stack(pts), np.stack(scs)


def make_sample(rng: np.random.Generator, landmarks_coco: np.ndarray, num_views: int, max_views: int = 8,
                noise: bool = True, rig: RigConfig | None = None) -> Sample:
    """Film one window (T, 17, 3) COCO landmarks with a random rig of ``num_views`` cameras.

    With ``rig.calibration_error`` set, the sample holds the perturbed cameras (what a
    calibration gives) while the 2D comes from the true ones.
    """
    rig = rig or RigConfig()
    target = coco_to_h36m(landmarks_coco)[0].astype(np.float64)
    center = np.nanmean(target[:, 0], axis=0)
    if tuple(rig.body_scale) != (1.0, 1.0):
        scale = rng.uniform(*rig.body_scale)
        landmarks_coco = center + (landmarks_coco - center) * scale
        target = center + (target - center) * scale
    true_cams = random_rig(rng, center, num_views, rig)
    pts, scs = film(rng, landmarks_coco, true_cams, noise=noise, occlusion=noise)
    cams = true_cams
    if any(rig.calibration_error):
        cams = [perturb_calibration(rng, c, rig.calibration_error) for c in true_cams]
    tri = triangulate(pts, scs, cams)
    V, T, J = pts.shape[:3]
    normalized = np.full((max_views, T, J, 2), np.nan, np.float32)
    scores = np.zeros((max_views, T, J), np.float32)
    rotations = np.tile(np.eye(3, dtype=np.float32), (max_views, 1, 1))
    centers = np.zeros((max_views, 3), np.float32)
    mask = np.zeros(max_views, bool)
    for v, cam in enumerate(cams):
        normalized[v] = undistort_points(pts[v], cam)
        scores[v] = scs[v]
        rotations[v] = cam.R
        centers[v] = cam.center
        mask[v] = True
    return Sample(normalized, scores, rotations, centers, mask, tri.points.astype(np.float32),
                  target.astype(np.float32))


def stack_samples(samples: list[Sample]) -> dict[str, np.ndarray]:
    """Samples -> dict of arrays with a leading batch axis."""
    return {k: np.stack([getattr(s, k) for s in samples]) for k in Sample.__dataclass_fields__}
