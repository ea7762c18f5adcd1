"""3D motion augmentation of mocap landmark windows (world frame, COCO-17).

Motion capture is scarce (minutes), so each training window is varied before
a virtual camera films it: mirroring, heading, bone lengths, upper/lower body
recombination across clips and playback speed. All functions take and return
``landmarks`` of shape (T, 17, 3): COCO-17 order
(:data:`video3d.keypoints.COCO_JOINT_NAMES`), metres, world frame with z up and
the floor near z = 0. They are pure numpy; randomness comes only from an
explicit ``rng``. See docs/training_data.md for the distributions and why each
augmentation keeps the motion plausible.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: (left, right) COCO-17 index pairs: eyes, ears, shoulders, elbows, wrists, hips, knees, ankles.
COCO_LEFT_RIGHT_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16))

#: Index permutation that swaps every COCO-17 left/right pair.
COCO_FLIP_PERMUTATION: tuple[int, ...] = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)

#: COCO-17 joints taken from the upper-body clip in :func:`recombine_parts`
#: (head landmarks, shoulders, elbows, wrists); the rest (hips, knees, ankles)
#: come from the lower-body clip.
UPPER_BODY: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
LOWER_BODY: tuple[int, ...] = (11, 12, 13, 14, 15, 16)

#: Segments of the kinematic tree used by :func:`scale_segments`, root =
#: mid-hip. Symmetric segments have one factor (so mid-hip and mid-shoulder
#: stay midpoints); limb segments have one factor per side.
SEGMENTS: tuple[str, ...] = (
    "pelvis",        # mid-hip -> hips (hip width)
    "torso",         # mid-hip -> mid-shoulder
    "shoulders",     # mid-shoulder -> shoulders (shoulder width)
    "neck",          # mid-shoulder -> head centre (head landmarks ride along rigidly)
    "thigh_left", "thigh_right",          # hip -> knee
    "shin_left", "shin_right",            # knee -> ankle
    "upper_arm_left", "upper_arm_right",  # shoulder -> elbow
    "forearm_left", "forearm_right",      # elbow -> wrist
)
_LIMBS = (  # (segment, parent joint, child joint)
    ("thigh_left", 11, 13), ("thigh_right", 12, 14),
    ("shin_left", 13, 15), ("shin_right", 14, 16),
    ("upper_arm_left", 5, 7), ("upper_arm_right", 6, 8),
    ("forearm_left", 7, 9), ("forearm_right", 8, 10),
)
_HEAD = (0, 1, 2, 3, 4)


def _check(landmarks: np.ndarray) -> np.ndarray:
    x = np.asarray(landmarks, np.float64)
    if x.ndim != 3 or x.shape[1:] != (17, 3):
        raise ValueError(f"landmarks must be (T, 17, 3), got {x.shape}")
    return x


def mirror_world(landmarks: np.ndarray) -> np.ndarray:
    """Mirror a motion across the world plane x = 0 and swap left/right joints.

    landmarks: (T, 17, 3). Returns a new (T, 17, 3) array: a valid motion of
    the mirror-image person (a right-handed throw becomes a left-handed one).
    Applying it twice gives the input back.
    """
    out = _check(landmarks)[:, COCO_FLIP_PERMUTATION].copy()
    out[..., 0] *= -1.0
    return out


def rotate_z(landmarks: np.ndarray, angle: float, centre: np.ndarray | None = None) -> np.ndarray:
    """Rotate a motion by ``angle`` radians (counter-clockwise seen from above) about a vertical axis.

    landmarks: (T, 17, 3). centre: (2,) or (3,) point the axis passes through
    (x, y used); default the mean mid-hip over the window. Returns (T, 17, 3).
    """
    x = _check(landmarks)
    if centre is None:
        centre = 0.5 * (x[:, 11, :2] + x[:, 12, :2]).mean(axis=0)
    cxy = np.asarray(centre, np.float64)[:2]
    c, s = math.cos(angle), math.sin(angle)
    out = x.copy()
    dx, dy = x[..., 0] - cxy[0], x[..., 1] - cxy[1]
    out[..., 0] = cxy[0] + c * dx - s * dy
    out[..., 1] = cxy[1] + s * dx + c * dy
    return out


def random_rotation_z(landmarks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random heading: :func:`rotate_z` by U(0, 2 pi) about the vertical through the mean pelvis.

    landmarks: (T, 17, 3). Returns (T, 17, 3).
    """
    return rotate_z(landmarks, 2.0 * math.pi * float(rng.random()))


def scale_segments(landmarks: np.ndarray, factors: dict[str, float], global_scale: float = 1.0
                   ) -> np.ndarray:
    """Change segment lengths along the COCO-17 kinematic tree (:data:`SEGMENTS`).

    landmarks: (T, 17, 3). factors: segment name -> length factor (missing
    names keep 1). Each frame is rebuilt from the mid-hip outwards with every
    segment vector multiplied by its factor, so joint angles are unchanged;
    the head landmarks move rigidly with the head centre. The body is then
    shifted vertically (once for the window) so its typical lowest point stays
    on the floor, and the whole motion is scaled by ``global_scale`` about the
    point (mean mid-hip x, y, window floor) so feet stay on the floor and
    strides scale with the body. Returns (T, 17, 3).
    """
    unknown = set(factors) - set(SEGMENTS)
    if unknown:
        raise ValueError(f"unknown segment(s) {sorted(unknown)}; expected names from {SEGMENTS}")
    x = _check(landmarks)
    k = {name: float(factors.get(name, 1.0)) for name in SEGMENTS}
    out = np.empty_like(x)
    root = 0.5 * (x[:, 11] + x[:, 12])
    for j in (11, 12):
        out[:, j] = root + k["pelvis"] * (x[:, j] - root)
    top = 0.5 * (x[:, 5] + x[:, 6])
    new_top = root + k["torso"] * (top - root)
    for j in (5, 6):
        out[:, j] = new_top + k["shoulders"] * (x[:, j] - top)
    for name, p, c in _LIMBS:  # parents come before children in _LIMBS
        out[:, c] = out[:, p] + k[name] * (x[:, c] - x[:, p])
    head = x[:, _HEAD].mean(axis=1)
    new_head = new_top + k["neck"] * (head - top)
    out[:, _HEAD] = x[:, _HEAD] + (new_head - head)[:, None]
    floor = x[..., 2].min()
    out[..., 2] += np.median(x[..., 2].min(axis=1) - out[..., 2].min(axis=1))
    if global_scale != 1.0:
        anchor = np.array([*root[:, :2].mean(axis=0), floor])
        out = anchor + global_scale * (out - anchor)
    return out


def sample_bone_factors(rng: np.random.Generator, sigma: float = 0.05, asymmetry: float = 0.01
                        ) -> dict[str, float]:
    """Random segment factors for :func:`scale_segments`.

    Each segment (one per left/right pair) gets exp(sigma * N(0, 1)); each side
    of a pair is then multiplied by exp(asymmetry * N(0, 1)), so left and right
    stay nearly symmetric. Returns {segment name: factor}.
    """
    sym = [name for name in SEGMENTS if not name.endswith(("_left", "_right"))]
    pairs = [name[:-5] for name in SEGMENTS if name.endswith("_left")]
    n = rng.standard_normal(len(sym) + 3 * len(pairs)).tolist()
    out = {name: math.exp(sigma * n[i]) for i, name in enumerate(sym)}
    k = len(sym)
    for name in pairs:
        common, left, right = n[k:k + 3]
        k += 3
        out[name + "_left"] = math.exp(sigma * common + asymmetry * left)
        out[name + "_right"] = math.exp(sigma * common + asymmetry * right)
    return out


def scale_bones(landmarks: np.ndarray, rng: np.random.Generator, sigma: float = 0.05,
                asymmetry: float = 0.01, height_range: tuple[float, float] = (0.85, 1.15)) -> np.ndarray:
    """Random body proportions and size.

    landmarks: (T, 17, 3). Per-segment factors from :func:`sample_bone_factors`
    (sigma, asymmetry) and a global height scale U(height_range), applied by
    :func:`scale_segments`. Returns (T, 17, 3).
    """
    factors = sample_bone_factors(rng, sigma, asymmetry)
    g = height_range[0] + (height_range[1] - height_range[0]) * float(rng.random())
    return scale_segments(landmarks, factors, g)


def pelvis_frames(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame pelvis frame: (origin (T, 3) = mid-hip, basis (T, 3, 3)).

    Basis columns: u = right hip -> left hip (unit), w = world up made
    orthogonal to u (so the frame tilts with the hip axis but its forward lean
    follows gravity; pelvis pitch is not observable from two hip points),
    v = w x u (the body's forward direction). If the hip axis is vertical the
    torso direction replaces world up.
    """
    x = _check(landmarks)
    origin = 0.5 * (x[:, 11] + x[:, 12])
    u = x[:, 11] - x[:, 12]
    u /= np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-9)
    up = np.broadcast_to(np.array([0.0, 0.0, 1.0]), u.shape).copy()
    w = up - np.sum(up * u, axis=-1, keepdims=True) * u
    bad = np.linalg.norm(w, axis=-1) < 1e-3
    if bad.any():
        torso = 0.5 * (x[bad, 5] + x[bad, 6]) - origin[bad]
        w[bad] = torso - np.sum(torso * u[bad], axis=-1, keepdims=True) * u[bad]
    w /= np.maximum(np.linalg.norm(w, axis=-1, keepdims=True), 1e-9)
    v = np.cross(w, u)
    return origin, np.stack([u, v, w], axis=-1)


def recombine_parts(a: np.ndarray, b: np.ndarray, rng: np.random.Generator,
                    twist_std_deg: float = 10.0) -> np.ndarray:
    """Legs and pelvis of clip ``a`` with the upper body of clip ``b``.

    a, b: (T, 17, 3) windows of equal length. b's upper body (head, shoulders,
    arms; :data:`UPPER_BODY`) is expressed in b's pelvis frame
    (:func:`pelvis_frames`), scaled by the ratio of the median torso lengths
    (mid-hip -> mid-shoulder) of a and b, turned about the pelvis up axis by a
    small random trunk twist N(0, twist_std_deg) (clipped to 2.5 std), and
    placed in a's pelvis frame at a's mid-hip. Hips, knees and ankles are a's,
    untouched. Returns (T, 17, 3).

    Plausibility: the upper body keeps its pose relative to the pelvis (trunk
    twist and side bend relative to the hips, lean relative to gravity, every
    arm and head angle) from a real frame of b, so joint limits hold; the legs
    and their ground contacts are a's, unchanged. What is lost is the coupling
    between the halves (arm swing phase, balance of the centre of mass), which
    a lifter should not rely on anyway.
    """
    xa, xb = _check(a), _check(b)
    if xa.shape != xb.shape:
        raise ValueError(f"recombine_parts needs windows of equal shape, got {xa.shape} and {xb.shape}")
    oa, Ba = pelvis_frames(xa)
    ob, Bb = pelvis_frames(xb)
    upper = list(UPPER_BODY)
    local = np.einsum("tjk,tkl->tjl", xb[:, upper] - ob[:, None], Bb)  # coordinates in b's pelvis frame
    torso_a = np.median(np.linalg.norm(0.5 * (xa[:, 5] + xa[:, 6]) - oa, axis=-1))
    torso_b = np.median(np.linalg.norm(0.5 * (xb[:, 5] + xb[:, 6]) - ob, axis=-1))
    if torso_b > 1e-6:
        local *= torso_a / torso_b
    if twist_std_deg > 0:
        ang = math.radians(twist_std_deg) * float(np.clip(rng.standard_normal(), -2.5, 2.5))
        c, s = math.cos(ang), math.sin(ang)
        lx, ly = local[..., 0].copy(), local[..., 1].copy()
        local[..., 0], local[..., 1] = c * lx - s * ly, s * lx + c * ly
    out = xa.copy()
    out[:, upper] = oa[:, None] + np.einsum("tjl,tkl->tjk", local, Ba)
    return out


def change_speed(landmarks: np.ndarray, factor: float) -> np.ndarray:
    """Play a motion ``factor`` times faster by linear interpolation in time.

    landmarks: (T, 17, 3) (any (T, ...) works). factor > 0 (typically 0.5-2;
    2 = twice as fast, half as many frames). Output frame k samples input time
    k * factor (clamped to the last frame). Returns (max(1, round(T / factor)), 17, 3).
    """
    x = np.asarray(landmarks, np.float64)
    if not factor > 0:
        raise ValueError(f"speed factor must be > 0, got {factor}")
    T = x.shape[0]
    n = max(1, int(round(T / factor)))
    t = np.minimum(np.arange(n) * factor, T - 1)
    i0 = np.minimum(np.floor(t).astype(np.int64), max(T - 2, 0))
    i1 = np.minimum(i0 + 1, T - 1)
    w = (t - i0).reshape((-1,) + (1,) * (x.ndim - 1))
    return (1.0 - w) * x[i0] + w * x[i1]


@dataclass
class AugmentConfig:
    """Probabilities and ranges of the 3D augmentations (docs/training_data.md)."""

    #: Playback speed: probability of a change and factor range (drawn
    #: log-uniformly by :func:`augment_clip_window`: slower and faster equally often).
    speed_prob: float = 0.5
    speed_range: tuple[float, float] = (0.5, 2.0)
    #: Probability of replacing the upper body with another clip's (needs a partner).
    recombine_prob: float = 0.3
    twist_std_deg: float = 10.0
    #: Probability of mirroring.
    mirror_prob: float = 0.5
    #: Probability of bone-length scaling, its per-segment log-std, left/right
    #: asymmetry log-std and global height scale range.
    bone_scale_prob: float = 0.8
    bone_sigma: float = 0.05
    bone_asymmetry: float = 0.01
    height_range: tuple[float, float] = (0.85, 1.15)
    #: Probability of a random heading (1: always; camera azimuth is random too).
    rotate_prob: float = 1.0


def _window(clip: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``length``-frame window of clip (N, ...); shorter clips are edge-padded, centred."""
    n = clip.shape[0]
    if n >= length:
        s = int(rng.integers(0, n - length + 1))
        return clip[s:s + length]
    left = (length - n) // 2
    return np.concatenate([np.repeat(clip[:1], left, 0), clip, np.repeat(clip[-1:], length - n - left, 0)])


def augment_clip_window(clip: np.ndarray, rng: np.random.Generator, config: AugmentConfig | None = None,
                        length: int = 243, partner: np.ndarray | None = None) -> np.ndarray:
    """One augmented training window from a whole clip.

    clip: (N, 17, 3) world-frame COCO landmarks at the training frame rate
    (50 fps). partner: optional (M, 17, 3) clip lending its upper body.
    Steps: speed factor (log-uniform, with speed_prob) -> random window of
    round(length * factor) frames (edge-padded if the clip is shorter) ->
    recombination with a partner window (recombine_prob) -> resampling to
    ``length`` frames -> heading (rotate_prob) -> mirror (mirror_prob) -> bone
    scaling (bone_scale_prob). Returns (length, 17, 3).
    """
    cfg = config if config is not None else AugmentConfig()
    x = _check(clip)
    if length < 1:
        raise ValueError("length must be >= 1")
    factor = 1.0
    if length > 1 and rng.random() < cfg.speed_prob:
        lo, hi = math.log(cfg.speed_range[0]), math.log(cfg.speed_range[1])
        factor = math.exp(lo + (hi - lo) * float(rng.random()))
    span = max(1, int(round(length * factor)))
    win = _window(x, span, rng)
    if partner is not None and rng.random() < cfg.recombine_prob:
        win = recombine_parts(win, _window(_check(partner), span, rng), rng, cfg.twist_std_deg)
    if span != length:
        win = change_speed(win, span / length)
        if win.shape[0] >= length:
            win = win[:length]
        else:
            win = np.concatenate([win, np.repeat(win[-1:], length - win.shape[0], 0)])
    if rng.random() < cfg.rotate_prob:
        win = random_rotation_z(win, rng)
    if rng.random() < cfg.mirror_prob:
        win = mirror_world(win)
    if rng.random() < cfg.bone_scale_prob:
        win = scale_bones(win, rng, cfg.bone_sigma, cfg.bone_asymmetry, cfg.height_range)
    return np.ascontiguousarray(win)
