"""Procedural motions of a mannequin: the ground truth behind the demo video.

A :class:`Motion` is a small articulated body in the world frame (z up,
metres, soles on z = 0) built from per-frame *states* (root position, yaws,
torso lean, foot targets, arm angles) by forward kinematics for the torso and
arms and two-bone inverse kinematics for the legs, so planted feet stay put.

Kinds:

* ``'walk'``: a walk along a path that keeps turning, so a static camera sees
  the person from the side, the front and the back. Feet follow footprints
  (heel strike, flat stance, heel rise, swing with knee flexion), the pelvis
  bobs and sways, arms swing opposite to the legs.
* ``'arm_raise'``: standing, both arms up over the head, then one arm to the
  side and the other forward, while slowly turning.
* ``'squat'``: standing, squatting down and up (feet planted).
* ``'demo'``: a walk that slows to a stop and blends into arm raises.

Body proportions follow the Human3.6M mean bone lengths
(:data:`video3d.skeleton.MEAN_BONE_LENGTH_M`): about 1.75 m tall.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter1d, minimum_filter1d

from video3d.keypoints import coco_to_h36m

MotionKind = Literal["walk", "arm_raise", "squat", "demo"]
KINDS: tuple[str, ...] = ("walk", "arm_raise", "squat", "demo")

#: Joints of the mannequin skeleton ("left" is the person's left).
MANNEQUIN_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "spine", "chest", "neck", "head",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_toe",
    "right_hip", "right_knee", "right_ankle", "right_toe",
)
MANNEQUIN_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 3, 2, 5, 6, 7, 2, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)
J = {name: i for i, name in enumerate(MANNEQUIN_JOINT_NAMES)}

#: Landmarks on the head sphere, in the head frame (x forward, y left, z up), metres at scale 1.
HEAD_POINTS: dict[str, tuple[float, float, float]] = {
    "nose": (0.098, 0.0, -0.018),
    "left_eye": (0.074, 0.032, 0.018),
    "right_eye": (0.074, -0.032, 0.018),
    "left_ear": (-0.005, 0.085, 0.0),
    "right_ear": (-0.005, -0.085, 0.0),
}


@dataclass(frozen=True)
class Body:
    """Mannequin dimensions in metres (scale 1 = Human3.6M mean, ~1.75 m tall)."""

    hip_half_width: float = 0.11
    thigh: float = 0.440
    shin: float = 0.445
    ankle_height: float = 0.085
    toe_forward: float = 0.15
    heel_back: float = 0.05
    spine: float = 0.236
    thorax: float = 0.254
    shoulder_half_width: float = 0.15
    upper_arm: float = 0.280
    forearm: float = 0.248
    hand: float = 0.08
    neck: float = 0.10
    head_up: float = 0.10
    head_forward: float = 0.015
    foot_half_separation: float = 0.10

    def scaled(self, s: float) -> "Body":
        """All lengths multiplied by ``s``."""
        return replace(self, **{f.name: getattr(self, f.name) * s for f in fields(self)})

    @property
    def leg(self) -> float:
        return self.thigh + self.shin

    @property
    def standing_pelvis_height(self) -> float:
        """Pelvis (= hip) height with almost straight legs (knees bent ~6 deg) and flat feet."""
        return self.ankle_height + 0.9985 * self.leg


@dataclass(frozen=True)
class Motion:
    """A mannequin motion in the world frame (z up, metres, soles on z = 0).

    joints: (T, 21, 3) in :data:`MANNEQUIN_JOINT_NAMES` order.
    head_rotation: (T, 3, 3) head frame, columns = forward, left, up (world).
    heading: (T,) pelvis yaw in radians (0 = facing +x, counter-clockwise).
    landmarks_coco: (T, 17, 3) COCO-17 landmarks (face on the head surface,
    body landmarks at the joint centres).
    joints_h36m: (T, 17, 3) = ``keypoints.coco_to_h36m(landmarks_coco)``.
    body: the dimensions used; fps: frames per second; kind: the generator.
    """

    joints: np.ndarray
    head_rotation: np.ndarray
    heading: np.ndarray
    landmarks_coco: np.ndarray
    joints_h36m: np.ndarray
    body: Body
    fps: float
    kind: str

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])


@dataclass(frozen=True)
class _State:
    """Per-frame pose parameters, all arrays with leading dimension T.

    root (T, 3) pelvis; pelvis_yaw, chest_yaw, lean, head_yaw, head_pitch (T,)
    radians (head angles relative to the chest); ankle (T, 2, 3) ankle targets
    [left, right]; foot_yaw, foot_pitch (T, 2) (pitch > 0 = heel up);
    arm (T, 2, 3) [flexion, abduction, elbow flexion] radians [left, right].
    """

    root: np.ndarray
    pelvis_yaw: np.ndarray
    chest_yaw: np.ndarray
    lean: np.ndarray
    head_yaw: np.ndarray
    head_pitch: np.ndarray
    ankle: np.ndarray
    foot_yaw: np.ndarray
    foot_pitch: np.ndarray
    arm: np.ndarray


def _blend(a: _State, b: _State, w: np.ndarray) -> _State:
    """(1 - w) * a + w * b field by field; w: (T,) in [0, 1]."""
    out = {}
    for f in fields(_State):
        x, y = getattr(a, f.name), getattr(b, f.name)
        ww = w.reshape((-1,) + (1,) * (x.ndim - 1))
        out[f.name] = (1.0 - ww) * x + ww * y
    return _State(**out)


def _take(s: _State, idx: np.ndarray | slice) -> _State:
    return _State(**{f.name: getattr(s, f.name)[idx] for f in fields(_State)})


def _concat(parts: list[_State]) -> _State:
    return _State(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(_State)})


# ----------------------------------------------------------------------------- small math


def smoothstep(x: np.ndarray) -> np.ndarray:
    """C1 ease in/out on [0, 1] (clipped outside)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _rot_z(a: np.ndarray) -> np.ndarray:
    """Rotations about z, (...,) radians -> (..., 3, 3)."""
    a = np.asarray(a, np.float64)
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, o], -1), np.stack([s, c, o], -1), np.stack([o, o, i], -1)], -2)


def _rot_y(a: np.ndarray) -> np.ndarray:
    """Rotations about y (tilts +z towards +x), (...,) -> (..., 3, 3)."""
    a = np.asarray(a, np.float64)
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, o, s], -1), np.stack([o, i, o], -1), np.stack([-s, o, c], -1)], -2)


def _rot_x(a: np.ndarray) -> np.ndarray:
    """Rotations about x (turns +y towards +z), (...,) -> (..., 3, 3)."""
    a = np.asarray(a, np.float64)
    c, s, o, i = np.cos(a), np.sin(a), np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([i, o, o], -1), np.stack([o, c, -s], -1), np.stack([o, s, c], -1)], -2)


def _apply(R: np.ndarray, v: np.ndarray) -> np.ndarray:
    """R (..., 3, 3) @ v (..., 3) -> (..., 3)."""
    return np.einsum("...ij,...j->...i", R, v)


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _keyframes(u: np.ndarray, keys: list[tuple[float, float]]) -> np.ndarray:
    """Piecewise smoothstep through (time, value) keys; u (T,) -> (T,). Held outside."""
    ts = np.array([k[0] for k in keys], np.float64)
    vs = np.array([k[1] for k in keys], np.float64)
    i = np.clip(np.searchsorted(ts, u, side="right") - 1, 0, len(ts) - 2)
    span = np.maximum(ts[i + 1] - ts[i], 1e-9)
    w = smoothstep((u - ts[i]) / span)
    return vs[i] + w * (vs[i + 1] - vs[i])


def two_bone_ik(root: np.ndarray, target: np.ndarray, pole: np.ndarray, l1: float, l2: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Place a two-bone chain (hip-knee-ankle) reaching for ``target``.

    root, target, pole: (..., 3); the middle joint bends towards ``pole`` (a
    direction). Unreachable targets are clamped along root -> target.
    Returns (middle (..., 3), end (..., 3)).
    """
    d_vec = target - root
    d = np.linalg.norm(d_vec, axis=-1, keepdims=True)
    direction = d_vec / np.maximum(d, 1e-12)
    d = np.clip(d, abs(l1 - l2) + 1e-6, (l1 + l2) * (1.0 - 1e-7))
    cos_a = np.clip((l1 * l1 + d * d - l2 * l2) / (2.0 * l1 * d), -1.0, 1.0)
    perp = _normalize(pole - np.sum(pole * direction, axis=-1, keepdims=True) * direction)
    middle = root + l1 * (cos_a * direction + np.sqrt(1.0 - cos_a * cos_a) * perp)
    return middle, root + d * direction


# ----------------------------------------------------------------------------- feet


def _foot_vectors(body: Body) -> tuple[np.ndarray, np.ndarray]:
    """Ankle -> toe tip and ankle -> heel bottom in the flat foot frame, (3,) each."""
    return (np.array([body.toe_forward, 0.0, -body.ankle_height]),
            np.array([-body.heel_back, 0.0, -body.ankle_height]))


def _foot_ankle(ground: np.ndarray, yaw: np.ndarray, pitch: np.ndarray, body: Body) -> np.ndarray:
    """Ankle of a foot whose flat footprint has its ankle above ``ground``.

    ground: (..., 3) point on the floor under the ankle of the flat foot;
    yaw, pitch: (...,). Pitch > 0 rolls the foot about the toe tip (heel up),
    pitch < 0 about the heel (toes up). Returns (..., 3).
    """
    toe, heel = _foot_vectors(body)
    Rz = _rot_z(yaw)
    flat_ankle = ground + np.array([0.0, 0.0, body.ankle_height])
    pivot_local = np.where((pitch > 0)[..., None], toe, heel)
    pivot = flat_ankle + _apply(Rz, pivot_local)
    return pivot - _apply(Rz @ _rot_y(pitch), pivot_local)


# ----------------------------------------------------------------------------- generators


@dataclass(frozen=True)
class _Path:
    """A planar path sampled densely: arc length s -> (x, y) and heading."""

    s: np.ndarray
    xy: np.ndarray
    theta: np.ndarray

    def at(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(…,) arc lengths -> (xy (…, 2), heading (…,))."""
        x = np.interp(s, self.s, self.xy[:, 0])
        y = np.interp(s, self.s, self.xy[:, 1])
        return np.stack([x, y], -1), np.interp(s, self.s, self.theta)


def _curving_path(length: float, theta0: float, curvature: float, wobble: float) -> _Path:
    """A path from the origin with curvature ``curvature * (1 + wobble * sin)``, 2 m margin each side."""
    ds = 0.005
    s = np.arange(-2.5, length + 2.5, ds)
    kappa = curvature * (1.0 + wobble * np.sin(2.0 * np.pi * s / max(length, 1.0)))
    theta = theta0 + np.cumsum(kappa) * ds
    theta -= np.interp(0.0, s, theta) - theta0
    xy = np.cumsum(np.stack([np.cos(theta), np.sin(theta)], -1), axis=0) * ds
    xy -= np.array([np.interp(0.0, s, xy[:, 0]), np.interp(0.0, s, xy[:, 1])])
    return _Path(s, xy, theta)


def _arm_swing(phase: np.ndarray) -> np.ndarray:
    """Arm angles during the walk, phase (T,) in steps -> (T, 2, 3)."""
    swing = np.cos(np.pi * (phase + 0.6))  # +1 at left heel strike
    flex_l = np.radians(6.0) - np.radians(24.0) * swing
    flex_r = np.radians(6.0) + np.radians(24.0) * swing
    out = np.empty(phase.shape + (2, 3))
    for k, flex in enumerate((flex_l, flex_r)):
        out[:, k, 0] = flex
        out[:, k, 1] = np.radians(9.0)
        out[:, k, 2] = np.radians(14.0) + 0.6 * np.maximum(flex, 0.0)
    return out


def _fit_pelvis_height(root_xy: np.ndarray, pelvis_yaw: np.ndarray, ankle: np.ndarray,
                       body: Body, fps: float, nominal: np.ndarray) -> np.ndarray:
    """Pelvis height: ``nominal``, lowered so both ankles stay reachable, smoothed. -> (T,)."""
    left = np.stack([-np.sin(pelvis_yaw), np.cos(pelvis_yaw)], -1)
    limit = np.broadcast_to(nominal, root_xy.shape[:1]).astype(np.float64)
    reach = 0.997 * body.leg
    for k, side in enumerate((1.0, -1.0)):
        hip_xy = root_xy + side * body.hip_half_width * left
        dh = np.linalg.norm(ankle[:, k, :2] - hip_xy, axis=-1)
        limit = np.minimum(limit, ankle[:, k, 2] + np.sqrt(np.maximum(reach ** 2 - dh ** 2, 0.0)))
    # Smooth from below: erode first so the blur rarely rises above the limit.
    eroded = minimum_filter1d(limit, size=2 * int(round(0.05 * fps)) + 1, mode="nearest")
    smooth = gaussian_filter1d(eroded, sigma=max(0.05 * fps, 0.5), mode="nearest")
    return np.minimum(smooth, limit)


def _walk(times: np.ndarray, body: Body, rng: np.random.Generator | None, fps: float,
          scale: float) -> tuple[_State, _Path, float, float]:
    """Walk states at ``times`` (T,) seconds. Returns (state, path, speed, phase offset)."""
    if rng is None:
        speed, step, curvature, wobble, theta0, phase0, turn = 1.15, 0.62, 0.62, 0.35, 0.0, 0.3, 1.0
    else:
        speed = rng.uniform(1.0, 1.3)
        step = rng.uniform(0.58, 0.68)
        curvature, wobble = rng.uniform(0.45, 0.8), rng.uniform(0.0, 0.5)
        theta0, phase0 = rng.uniform(-np.pi, np.pi), rng.uniform(0.0, 2.0)
        turn = rng.choice([-1.0, 1.0])
    speed, step = speed * scale, step * scale
    s = speed * times
    path = _curving_path(float(s[-1]) + 1.0, theta0, turn * curvature / scale, wobble)
    phase = s / step + phase0
    root_xy, heading = path.at(s)
    normal = np.stack([-np.sin(heading), np.cos(heading)], -1)

    ankle = np.empty(times.shape + (2, 3))
    foot_yaw = np.empty(times.shape + (2,))
    foot_pitch = np.empty(times.shape + (2,))
    heel_strike, toe_off = np.radians(14.0), np.radians(32.0)
    stance, swing = 1.2, 0.8  # in steps: 60 % / 40 % of the stride

    def footprint(f: np.ndarray, side: float) -> tuple[np.ndarray, np.ndarray]:
        xy, yaw = path.at((f - phase0) * step)
        n = np.stack([-np.sin(yaw), np.cos(yaw)], -1)
        g = xy + side * body.foot_half_separation * n
        return np.concatenate([g, np.zeros(g.shape[:-1] + (1,))], -1), yaw + side * np.radians(4.0)

    for k, (side, offset) in enumerate(((1.0, 0.0), (-1.0, 1.0))):
        q = phase - offset + 0.5 * stance - 0.1
        cyc = np.floor(q / 2.0)
        c = q - 2.0 * cyc
        f_now = 2.0 * cyc + offset
        in_stance = c < stance
        sigma = np.clip(c / stance, 0.0, 1.0)
        ground, yaw = footprint(f_now, side)
        pitch = np.where(sigma < 0.15, -heel_strike * (1.0 - smoothstep(sigma / 0.15)),
                         toe_off * smoothstep((sigma - 0.55) / 0.45))
        a_stance = _foot_ankle(ground, yaw, pitch, body)
        # Swing: from this footprint's toe-off to the next one's heel strike.
        u = np.clip((c - stance) / swing, 0.0, 1.0)
        ground_next, yaw_next = footprint(f_now + 2.0, side)
        a0 = _foot_ankle(ground, yaw, np.full_like(u, toe_off), body)
        a1 = _foot_ankle(ground_next, yaw_next, np.full_like(u, -heel_strike), body)
        e = smoothstep(u)[..., None]
        a_swing = (1.0 - e) * a0 + e * a1
        a_swing[..., 2] += 0.07 * scale * np.sin(np.pi * u) ** 1.5
        p_swing = toe_off + (-heel_strike - toe_off) * smoothstep(u * 1.15)
        ankle[:, k] = np.where(in_stance[..., None], a_stance, a_swing)
        foot_yaw[:, k] = np.where(in_stance, yaw, yaw + smoothstep(u) * (yaw_next - yaw))
        foot_pitch[:, k] = np.where(in_stance, pitch, p_swing)

    twist = np.cos(np.pi * (phase + 0.6))  # +1 when the left leg is forward
    root_xy = root_xy + 0.022 * scale * np.cos(np.pi * phase)[:, None] * normal
    pelvis_yaw = heading - np.radians(6.0) * twist
    chest_yaw = heading + np.radians(4.0) * twist
    z = _fit_pelvis_height(root_xy, pelvis_yaw, ankle, body, fps,
                           nominal=body.standing_pelvis_height
                           + scale * (0.012 * np.cos(2.0 * np.pi * (phase - 0.1)) - 0.014))
    n = times.shape[0]
    state = _State(
        root=np.concatenate([root_xy, z[:, None]], -1),
        pelvis_yaw=pelvis_yaw, chest_yaw=chest_yaw,
        lean=np.full(n, np.radians(4.0)),
        head_yaw=heading - chest_yaw, head_pitch=np.full(n, np.radians(6.0)),
        ankle=ankle, foot_yaw=foot_yaw, foot_pitch=foot_pitch, arm=_arm_swing(phase),
    )
    return state, path, speed, phase0


def _standing(n: int, xy: np.ndarray, heading: float, body: Body) -> _State:
    """n frames of a relaxed standing pose at ``xy`` (2,) facing ``heading``."""
    yaw = np.full(n, heading)
    left = np.array([-np.sin(heading), np.cos(heading)])
    ankle = np.empty((n, 2, 3))
    foot_yaw = np.empty((n, 2))
    for k, side in enumerate((1.0, -1.0)):
        ankle[:, k, :2] = xy + side * body.foot_half_separation * left
        ankle[:, k, 2] = body.ankle_height
        foot_yaw[:, k] = heading + side * np.radians(8.0)
    rest = np.radians([3.0, 8.0, 12.0])
    root = np.concatenate([np.broadcast_to(xy, (n, 2)), np.full((n, 1), body.standing_pelvis_height)], -1)
    return _State(root=root, pelvis_yaw=yaw.copy(), chest_yaw=yaw.copy(), lean=np.full(n, np.radians(2.0)),
                  head_yaw=np.zeros(n), head_pitch=np.full(n, np.radians(3.0)), ankle=ankle,
                  foot_yaw=foot_yaw, foot_pitch=np.zeros((n, 2)), arm=np.broadcast_to(rest, (n, 2, 3)).copy())


def _arm_raise(times: np.ndarray, xy: np.ndarray, heading: float, body: Body,
               rng: np.random.Generator | None) -> _State:
    """Both arms up over the head, down, left arm to the side and right arm forward."""
    n = times.shape[0]
    st = _standing(n, xy, heading, body)
    u = (times - times[0]) / max(float(times[-1] - times[0]), 1e-9)
    jitter = 0.0 if rng is None else rng.uniform(-0.02, 0.02)
    k = [(0.0, 0.0), (0.08 + jitter, 0.0), (0.27, 1.0), (0.35, 1.0), (0.52, 0.0), (1.0, 0.0)]
    both_up = _keyframes(u, k)
    side = _keyframes(u, [(0.0, 0.0), (0.56, 0.0), (0.70, 1.0), (0.80, 1.0), (0.94, 0.0), (1.0, 0.0)])
    fwd = _keyframes(u, [(0.0, 0.0), (0.62, 0.0), (0.76, 1.0), (0.84, 1.0), (0.97, 0.0), (1.0, 0.0)])
    arm = st.arm.copy()
    d = np.radians
    for a in (0, 1):
        arm[:, a, 1] += both_up * (d(168.0) - arm[:, a, 1])
        arm[:, a, 2] += both_up * (d(8.0) - arm[:, a, 2])
    arm[:, 0, 1] += side * (d(90.0) - arm[:, 0, 1])
    arm[:, 0, 2] += side * (d(4.0) - arm[:, 0, 2])
    arm[:, 1, 0] += fwd * (d(88.0) - arm[:, 1, 0])
    arm[:, 1, 2] += fwd * (d(6.0) - arm[:, 1, 2])
    turn = _keyframes(u, [(0.0, 0.0), (0.45, d(22.0)), (1.0, d(-18.0))])
    yaw = heading + turn
    root = st.root.copy()
    root[:, 2] -= 0.01 * both_up
    chest = yaw + d(4.0) * np.sin(2.0 * np.pi * u)
    return replace(st, root=root, pelvis_yaw=yaw, chest_yaw=chest, arm=arm,
                   head_yaw=-d(4.0) * np.sin(2.0 * np.pi * u), head_pitch=d(3.0) - d(12.0) * both_up)


def _squat(times: np.ndarray, xy: np.ndarray, heading: float, body: Body) -> _State:
    """Squats (one per ~3 s) with arms reaching forward for balance; feet planted."""
    n = times.shape[0]
    st = _standing(n, xy, heading, body)
    dur = max(float(times[-1] - times[0]), 1e-9)
    reps = max(1, int(round(dur / 3.0)))
    u = ((times - times[0]) / dur * reps) % 1.0
    w = _keyframes(u, [(0.0, 0.0), (0.15, 0.0), (0.45, 1.0), (0.55, 1.0), (0.85, 0.0), (1.0, 0.0)])
    fwd = np.array([np.cos(heading), np.sin(heading)])
    root = st.root.copy()
    root[:, :2] -= 0.12 * body.leg * w[:, None] * fwd
    root[:, 2] -= 0.40 * body.leg * w
    arm = st.arm.copy()
    arm[:, :, 0] += w[:, None] * (np.radians(80.0) - arm[:, :, 0])
    arm[:, :, 2] += w[:, None] * (np.radians(8.0) - arm[:, :, 2])
    return replace(st, root=root, lean=st.lean + np.radians(38.0) * w, arm=arm,
                   head_pitch=st.head_pitch - np.radians(25.0) * w)


# ----------------------------------------------------------------------------- kinematics


def _pose(state: _State, body: Body) -> tuple[np.ndarray, np.ndarray]:
    """State -> (joints (T, 21, 3), head rotation (T, 3, 3))."""
    n = state.root.shape[0]
    out = np.empty((n, len(MANNEQUIN_JOINT_NAMES), 3))
    root = state.root
    out[:, J["pelvis"]] = root
    R_pelvis = _rot_z(state.pelvis_yaw)
    R_chest = _rot_z(state.chest_yaw) @ _rot_y(state.lean)
    R_mid = _rot_z(0.5 * (state.pelvis_yaw + state.chest_yaw)) @ _rot_y(0.6 * state.lean)
    up = np.array([0.0, 0.0, 1.0])
    spine = root + _apply(R_mid, body.spine * up)
    chest = spine + _apply(R_chest, body.thorax * up)
    neck = chest + _apply(R_chest, body.neck * up)
    R_head = R_chest @ _rot_z(state.head_yaw) @ _rot_y(state.head_pitch)
    head = neck + _apply(R_head, np.array([body.head_forward, 0.0, body.head_up]))
    out[:, J["spine"]], out[:, J["chest"]], out[:, J["neck"]], out[:, J["head"]] = spine, chest, neck, head

    down = np.array([0.0, 0.0, -1.0])
    for k, (side, name) in enumerate(((1.0, "left"), (-1.0, "right"))):
        shoulder = chest + _apply(R_chest, np.array([0.0, side * body.shoulder_half_width, 0.0]))
        flex, abd, elbow = state.arm[:, k, 0], state.arm[:, k, 1], state.arm[:, k, 2]
        R_upper = R_chest @ _rot_y(-flex) @ _rot_x(side * abd)
        e = shoulder + body.upper_arm * _apply(R_upper, down)
        fore_dir = _apply(R_upper @ _rot_y(-elbow), down)
        w = e + body.forearm * fore_dir
        out[:, J[f"{name}_shoulder"]], out[:, J[f"{name}_elbow"]] = shoulder, e
        out[:, J[f"{name}_wrist"]], out[:, J[f"{name}_hand"]] = w, w + body.hand * fore_dir

        hip = root + _apply(R_pelvis, np.array([0.0, side * body.hip_half_width, 0.0]))
        yaw = state.foot_yaw[:, k]
        pole = np.stack([np.cos(yaw), np.sin(yaw), np.zeros_like(yaw)], -1)
        knee, ankle = two_bone_ik(hip, state.ankle[:, k], pole, body.thigh, body.shin)
        toe_vec, _ = _foot_vectors(body)
        toe = ankle + _apply(_rot_z(yaw) @ _rot_y(state.foot_pitch[:, k]), toe_vec)
        out[:, J[f"{name}_hip"]], out[:, J[f"{name}_knee"]] = hip, knee
        out[:, J[f"{name}_ankle"]], out[:, J[f"{name}_toe"]] = ankle, toe
    return out, R_head


def coco_landmarks(joints: np.ndarray, head_rotation: np.ndarray, body: Body) -> np.ndarray:
    """COCO-17 landmarks of a mannequin pose.

    joints: (T, 21, 3); head_rotation: (T, 3, 3). Face points lie on the head
    surface (:data:`HEAD_POINTS`, scaled with the body), body points at joint
    centres. Returns (T, 17, 3).
    """
    s = body.thigh / Body().thigh
    head = joints[:, J["head"]]
    face = [head + s * _apply(head_rotation, np.array(HEAD_POINTS[k]))
            for k in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]
    body_names = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
    limbs = [joints[:, J[f"{side}_{name}"]] for name in body_names for side in ("left", "right")]
    return np.stack(face + limbs, axis=1)


def _motion_from_state(state: _State, body: Body, fps: float, kind: str) -> Motion:
    joints, R_head = _pose(state, body)
    coco = coco_landmarks(joints, R_head, body)
    h36m, _ = coco_to_h36m(coco)
    return Motion(joints=joints, head_rotation=R_head, heading=state.pelvis_yaw.copy(),
                  landmarks_coco=coco, joints_h36m=h36m, body=body, fps=float(fps), kind=kind)


def procedural_motion(kind: MotionKind, num_frames: int, fps: float = 30.0,
                      rng: np.random.Generator | None = None) -> Motion:
    """A procedural mannequin motion of ``num_frames`` frames at ``fps``.

    kind: 'walk' | 'arm_raise' | 'squat' | 'demo' (walk, stop, arm raises).
    rng: None gives the canonical motion; a generator varies body size
    (+-5 %), walking speed, step length, path curvature and start heading.
    Returns a :class:`Motion` (world frame, z up, metres, soles on z = 0).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown motion kind {kind!r}; expected one of {', '.join(KINDS)}")
    if num_frames < 2 or fps <= 0:
        raise ValueError(f"need num_frames >= 2 and fps > 0, got {num_frames} and {fps}")
    scale = 1.0 if rng is None else float(rng.uniform(0.95, 1.05))
    body = Body().scaled(scale)
    times = np.arange(num_frames, dtype=np.float64) / fps
    if kind == "walk":
        state = _walk(times, body, rng, fps, scale)[0]
    elif kind in ("arm_raise", "squat"):
        heading = 0.0 if rng is None else float(rng.uniform(-np.pi, np.pi))
        xy = np.zeros(2)
        state = _arm_raise(times, xy, heading, body, rng) if kind == "arm_raise" \
            else _squat(times, xy, heading, body)
    else:
        state = _demo(times, body, rng, fps, scale)
    return _motion_from_state(state, body, fps, kind)


def _demo(times: np.ndarray, body: Body, rng: np.random.Generator | None, fps: float,
          scale: float) -> _State:
    """A walk (~58 % of the time), a 0.8 s stop, then arm raises."""
    duration = float(times[-1])
    t_stop = 0.58 * duration
    blend_s = min(0.8, 0.15 * duration)
    walk, path, speed, _ = _walk(times, body, rng, fps, scale)
    s_end = speed * t_stop + 0.5 * speed * blend_s
    xy, heading = path.at(np.array(s_end))
    late = times >= t_stop
    arms = _arm_raise(times[late], xy, float(heading), body, rng)
    w = smoothstep((times[late] - t_stop) / blend_s)
    tail = _keep_soles_above_floor(_blend(_take(walk, late), arms, w), body)
    return _concat([_take(walk, ~late), tail])


def _keep_soles_above_floor(state: _State, body: Body) -> _State:
    """Raise ankle targets whose toe tip or heel would sink below z = 0 (after blending)."""
    toe, heel = _foot_vectors(body)
    R = _rot_z(state.foot_yaw) @ _rot_y(state.foot_pitch)
    lowest = np.minimum(_apply(R, toe)[..., 2], _apply(R, heel)[..., 2]) + state.ankle[..., 2]
    ankle = state.ankle.copy()
    ankle[..., 2] -= np.minimum(lowest, 0.0)
    return replace(state, ankle=ankle)
