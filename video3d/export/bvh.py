"""BVH export: fit joint rotations to Human3.6M-17 world joints.

The skeleton has fixed bone lengths (the median of each bone over the clip)
and a T-pose rest pose; every frame, each BVH joint gets the global rotation
that points its bone at the target child joint, with the twist about the
bone taken from a secondary direction (hip / shoulder axis, limb bend
plane), so the forward kinematics of the file reproduces the
bone-length-normalised input joints (see ``normalize_bone_lengths``). The
file is Y-up, in centimetres, with ZXY Euler channels; see ``docs/bvh.md``.
"""
from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np

from video3d import skeleton
from video3d.errors import UserError
from video3d.io.atomic import write_text_atomic
from video3d.formats.bvh import BvhMotion, BvhSkeleton, forward_kinematics, format_bvh
from video3d.nearest import nearest_valid_index

#: The one name of the BVH in a result folder, whichever route writes it
#: (``run --export bvh``, ``batch --export bvh``, ``export bvh keypoints.npz``).
BVH_NAME = "skeleton.bvh"

ROTATION_CHANNELS = ["Zrotation", "Xrotation", "Yrotation"]
ROOT_CHANNELS = ["Xposition", "Yposition", "Zposition", *ROTATION_CHANNELS]

#: World (z up, metres) -> BVH (Y up, centimetres): X = x, Y = z, Z = -y.
WORLD_TO_BVH = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]) * 100.0

# Rest-pose axes in the BVH frame: the T-pose faces +Z, +X is the person's left.
_L, _R, _UP, _DOWN = (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, -1.0, 0.0)


@dataclass(frozen=True)
class _Joint:
    name: str
    parent: int        # index into _JOINTS, -1 for the root
    at: int            # H36M joint at this BVH joint's position
    child: int         # H36M joint at the end of the bone this joint rotates
    rest_dir: tuple    # rest direction of that bone (BVH frame, unit)
    rest_ref: tuple    # rest twist reference, perpendicular to rest_dir
    twist: str         # which target direction sets the twist (see _reference)


#: BVH joints in file (depth-first) order. Zero-offset "branch" joints
#: (RHipJoint, LHipJoint, LeftShoulder, RightShoulder) give every bone that
#: leaves the pelvis or the thorax its own rotation, so the bones of those
#: 3-child joints need not keep a rigid layout. Leaf H36M joints (ankles,
#: head top, wrists) are End Sites.
_JOINTS: tuple[_Joint, ...] = (
    _Joint("Hips", -1, 0, 7, _UP, _L, "hips"),
    _Joint("RHipJoint", 0, 0, 1, _R, _UP, "up"),
    _Joint("RightUpLeg", 1, 1, 2, _DOWN, _L, "right_leg"),
    _Joint("RightLeg", 2, 2, 3, _DOWN, _L, "right_leg"),
    _Joint("LHipJoint", 0, 0, 4, _L, _UP, "up"),
    _Joint("LeftUpLeg", 4, 4, 5, _DOWN, _L, "left_leg"),
    _Joint("LeftLeg", 5, 5, 6, _DOWN, _L, "left_leg"),
    _Joint("Spine", 0, 7, 8, _UP, _L, "torso"),
    _Joint("Spine1", 7, 8, 9, _UP, _L, "shoulders"),
    _Joint("Neck", 8, 9, 10, _UP, _L, "shoulders"),
    _Joint("LeftShoulder", 8, 8, 11, _L, _UP, "neck"),
    _Joint("LeftArm", 10, 11, 12, _L, _DOWN, "left_arm"),
    _Joint("LeftForeArm", 11, 12, 13, _L, _DOWN, "left_arm"),
    _Joint("RightShoulder", 8, 8, 14, _R, _UP, "neck"),
    _Joint("RightArm", 13, 14, 15, _R, _UP, "right_arm"),
    _Joint("RightForeArm", 14, 15, 16, _R, _UP, "right_arm"),
)

#: BVH joint names in file order (without End Sites).
BVH_JOINT_NAMES: tuple[str, ...] = tuple(j.name for j in _JOINTS)

#: For each H36M joint, the BVH joint (or End Site, named ``<parent>_End`` as
#: ``video3d.formats.bvh`` reads it) at its position.
H36M_BVH_NAMES: tuple[str, ...] = (
    "Hips", "RightUpLeg", "RightLeg", "RightLeg_End", "LeftUpLeg", "LeftLeg", "LeftLeg_End",
    "Spine", "Spine1", "Neck", "Neck_End",
    "LeftArm", "LeftForeArm", "LeftForeArm_End", "RightArm", "RightForeArm", "RightForeArm_End",
)

#: Limb chains (upper joint, middle joint, end joint) whose bend plane sets the twist.
_LIMBS = {"right_leg": (1, 2, 3), "left_leg": (4, 5, 6), "left_arm": (11, 12, 13), "right_arm": (14, 15, 16)}

#: sin(bend) below which a limb counts as straight (bend plane ignored) and
#: above which the bend plane alone sets its twist (~11.5 and 23.6 degrees).
_STRAIGHT_SIN = (0.2, 0.4)
#: Half-width (frames) of the averaging window for the normal of slightly bent limbs.
_HINGE_WINDOW = 3
#: Decay per bent frame of the memory that signs the bend normals.
_SIGN_MEMORY = 0.7
_EPS = 1e-9


@dataclass(frozen=True)
class BvhExportInfo:
    """What ``export_bvh`` wrote.

    path: the BVH file. num_frames / fps / frame_time: its timing.
    joint_names: BVH joints in file order (End Sites excluded).
    bone_lengths_m: (16,) fixed bone lengths in metres, in ``skeleton.BONES`` order.
    filled_frames: input frames with NaN that were replaced by the nearest valid pose.
    max_fit_error_m: largest distance between the file's forward kinematics
        and the bone-length-normalised input joints, metres.
    """

    path: Path
    num_frames: int
    fps: float
    frame_time: float
    joint_names: tuple[str, ...]
    bone_lengths_m: np.ndarray
    filled_frames: int
    max_fit_error_m: float


def export_bvh(path: str | PathLike, joints_world: np.ndarray, fps: float) -> BvhExportInfo:
    """Write a BVH animation fitted to world-frame H36M-17 joints.

    Args:
        path: output ``.bvh`` file (written to a temp file, then renamed).
        joints_world: (T, 17, 3) metres, world frame (z up). Frames with any
            NaN are replaced by the nearest valid frame.
        fps: frames per second (``Frame Time = 1 / fps``).

    Returns:
        ``BvhExportInfo``. Root translation = the pelvis positions as given.

    Raises:
        UserError: wrong shape, no valid frame, bad fps or unwritable path.
    """
    joints = np.asarray(joints_world, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[1:] != (skeleton.NUM_JOINTS, 3) or len(joints) == 0:
        raise UserError(f"BVH export needs 3D joints of shape (T>0, 17, 3), got {joints.shape}")
    if not (np.isfinite(fps) and fps > 0):
        raise UserError(f"BVH export needs a positive frame rate, got {fps}")
    filled, num_filled = fill_invalid_frames(joints)
    lengths = np.nanmedian(skeleton.bone_lengths(joints), axis=0)
    target_cm = world_to_bvh(normalize_bone_lengths(filled, lengths))
    motion = BvhMotion(skeleton=bvh_skeleton(lengths), frame_time=1.0 / fps,
                       motion=motion_channels(target_cm))
    fk = forward_kinematics(motion, list(H36M_BVH_NAMES))
    error_m = float(np.abs(fk - target_cm).max() / 100.0) if len(fk) else 0.0
    path = Path(path)
    _write_atomic(path, format_bvh(motion))
    return BvhExportInfo(path=path, num_frames=len(joints), fps=float(fps), frame_time=1.0 / fps,
                         joint_names=BVH_JOINT_NAMES, bone_lengths_m=lengths, filled_frames=num_filled,
                         max_fit_error_m=error_m)


def normalize_bone_lengths(joints: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Rescale every bone to a fixed length, keeping its direction and the root.

    Args:
        joints: (T, 17, 3) positions.
        lengths: (16,) bone lengths in ``skeleton.BONES`` order, same units.

    Returns:
        (T, 17, 3) float64 rebuilt from the pelvis outwards. A zero-length
        bone takes its direction from the nearest earlier frame (else later,
        else +z); NaN frames stay NaN.
    """
    joints = np.asarray(joints, dtype=np.float64)
    lengths = np.asarray(lengths, dtype=np.float64)
    if lengths.shape != (len(skeleton.BONES),):
        raise ValueError(f"lengths must be (16,), got {lengths.shape}")
    out = np.empty_like(joints)
    out[:, skeleton.ROOT] = joints[:, skeleton.ROOT]
    for b, (p, c) in enumerate(skeleton.BONES):       # parents come before children
        out[:, c] = out[:, p] + lengths[b] * _unit_directions(joints[:, c] - joints[:, p])
    return out


def fill_invalid_frames(joints: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace frames with any NaN by the nearest fully finite frame (earlier on ties).

    Args:
        joints: (T, J, D).

    Returns:
        ((T, J, D) float64 copy, number of frames replaced).

    Raises:
        UserError: no frame is fully finite.
    """
    joints = np.asarray(joints, dtype=np.float64)
    valid = np.isfinite(joints).reshape(len(joints), -1).all(axis=1)
    if not valid.any():
        raise UserError("BVH export: no frame has all 17 joints (every frame contains NaN)")
    return joints[nearest_valid_index(valid)], int((~valid).sum())


def world_to_bvh(points: np.ndarray) -> np.ndarray:
    """World (z up, metres) -> BVH frame (Y up, centimetres), (..., 3) -> (..., 3)."""
    return np.asarray(points, dtype=np.float64) @ WORLD_TO_BVH.T


def bvh_to_world(points: np.ndarray) -> np.ndarray:
    """BVH frame (Y up, centimetres) -> world (z up, metres), (..., 3) -> (..., 3)."""
    return np.asarray(points, dtype=np.float64) @ np.linalg.inv(WORLD_TO_BVH).T  # (3, 3): cheap


def bvh_skeleton(lengths_m: np.ndarray) -> BvhSkeleton:
    """The T-pose hierarchy with the given bone lengths.

    Args:
        lengths_m: (16,) bone lengths in metres, ``skeleton.BONES`` order.

    Returns:
        ``BvhSkeleton`` in centimetres: the 16 joints of ``BVH_JOINT_NAMES``
        plus 5 End Sites (``<parent>_End``), in file order.
    """
    length_cm = {c: 100.0 * float(l) for (_, c), l in zip(skeleton.BONES, lengths_m)}
    names, parents, offsets, channels = [], [], [], []
    for j in _JOINTS:
        names.append(j.name)
        parents.append(names.index(_JOINTS[j.parent].name) if j.parent >= 0 else -1)
        if j.parent < 0 or _JOINTS[j.parent].at == j.at:
            offsets.append(np.zeros(3))
        else:
            parent = _JOINTS[j.parent]
            offsets.append(np.asarray(parent.rest_dir) * length_cm[parent.child])
        channels.append(list(ROOT_CHANNELS if j.parent < 0 else ROTATION_CHANNELS))
        if j.child not in skeleton.PARENTS:   # a leaf: End Site (its owner has no other child)
            names.append(f"{j.name}_End")
            parents.append(names.index(j.name))
            offsets.append(np.asarray(j.rest_dir) * length_cm[j.child])
            channels.append([])
    return BvhSkeleton(names=names, parents=parents, offsets=np.array(offsets), channels=channels)


def motion_channels(target_cm: np.ndarray) -> np.ndarray:
    """Channel values that pose the T-pose skeleton on the targets.

    Args:
        target_cm: (T, 17, 3) bone-length-normalised joints in the BVH frame (cm).

    Returns:
        (T, 6 + 3 * 15) root position (cm) then ZXY Euler angles (degrees)
        per joint in file order, unwrapped to be continuous in time.
    """
    glob = global_rotations(target_cm)
    local = glob.copy()
    for k, j in enumerate(_JOINTS):
        if j.parent >= 0:
            local[:, k] = np.swapaxes(glob[:, j.parent], -1, -2) @ glob[:, k]
    euler = euler_zxy_continuous(local)
    return np.concatenate([target_cm[:, skeleton.ROOT], euler.reshape(len(euler), -1)], axis=1)


def global_rotations(target: np.ndarray) -> np.ndarray:
    """Global rotation of every BVH joint, (T, 17, 3) BVH-frame joints -> (T, 16, 3, 3).

    Each rotation maps the joint's rest bone direction onto the target bone
    direction and its rest twist reference onto the target reference
    (projected perpendicular to the bone); limbs use ``hinge_axes``.
    """
    t = len(target)
    out = np.empty((t, len(_JOINTS), 3, 3))
    hinges: dict[str, np.ndarray] = {}
    for k, j in enumerate(_JOINTS):
        bone = target[:, j.child] - target[:, j.at]
        if j.twist in _LIMBS:
            if j.twist not in hinges:
                a, b, c = _LIMBS[j.twist]
                upper = target[:, b] - target[:, a]
                parent = out[:, j.parent]
                # the rest twist carried by the parent and swung onto the upper bone
                fallback = _swing(parent @ np.asarray(j.rest_dir), upper) @ parent @ np.asarray(j.rest_ref)
                hinges[j.twist] = hinge_axes(upper, target[:, c] - target[:, b], parent, fallback)
            ref = hinges[j.twist]
        else:
            ref = _reference(target, j.twist)
        out[:, k] = _frames(bone, ref) @ _frames(np.asarray(j.rest_dir)[None], np.asarray(j.rest_ref)[None])[0].T
    return out


def hinge_axes(upper: np.ndarray, lower: np.ndarray, parent_rot: np.ndarray, fallback: np.ndarray,
               straight: tuple[float, float] = _STRAIGHT_SIN) -> np.ndarray:
    """Bend axis of a two-bone limb, continuous in time, without flips.

    Worked in the parent's frame. The bend normal ``upper x lower`` of every
    frame bent by sin(bend) >= ``straight[0]`` is signed to agree with the
    recent such frames (a decaying sin^2-weighted sum, so a noisy, barely
    bent frame cannot flip it; the first one agrees with ``fallback``).
    Where the limb is clearly bent (sin(bend) >= ``straight[1]``) the axis is that
    normal, so the middle joint is an exact hinge; below, it blends into a
    short sin^2-weighted average over neighbouring frames (the normal of a
    slightly bent limb is noisy). Where the limb is (nearly) straight the
    bend plane is undefined, so the axis is interpolated (slerp) between the
    frames around the straight stretch. A limb never bent uses ``fallback``.

    Args:
        upper: (T, 3) upper bone vectors (hip -> knee, shoulder -> elbow).
        lower: (T, 3) lower bone vectors (knee -> ankle, elbow -> wrist).
        parent_rot: (T, 3, 3) global rotation of the limb's parent joint.
        fallback: (T, 3) axis for a limb with no bend information (the rest
            twist carried by the parent and swung onto ``upper``).
        straight: sin(bend) below which the bend plane is ignored, and above
            which it is used alone.

    Returns:
        (T, 3) unit axes perpendicular to ``upper``.
    """
    to_local = np.swapaxes(parent_rot, -1, -2)
    u = np.einsum("tij,tj->ti", to_local, _unit_directions(upper))
    c = np.cross(u, np.einsum("tij,tj->ti", to_local, _unit_directions(lower)))
    sin = np.linalg.norm(c, axis=-1)
    normal = c / np.maximum(sin, _EPS)[:, None]
    usable = np.flatnonzero(sin >= straight[0])
    axis = np.einsum("tij,tj->ti", to_local, fallback)
    if usable.size:
        memory = 1e-3 * axis[usable[0]]
        for i in usable:                   # agree with the recent normals, weighted by sin^2
            if np.dot(normal[i], memory) < 0:
                normal[i] = -normal[i]
            memory = _SIGN_MEMORY * memory + sin[i] ** 2 * normal[i]
        weighted = np.where((sin >= straight[0])[:, None], sin[:, None] ** 2 * normal, 0.0)
        average = np.zeros_like(weighted)
        for k in range(-min(_HINGE_WINDOW, len(u) - 1), min(_HINGE_WINDOW, len(u) - 1) + 1):
            g = np.exp(-0.5 * (k / (_HINGE_WINDOW / 2)) ** 2)
            src = slice(max(k, 0), len(u) + min(k, 0))
            dst = slice(max(-k, 0), len(u) + min(-k, 0))
            average[dst] += g * weighted[src]
        average /= np.maximum(np.linalg.norm(average, axis=-1), _EPS)[:, None]
        w = np.clip((sin - straight[0]) / (straight[1] - straight[0]), 0.0, 1.0)[:, None]
        w = w * w * (3 - 2 * w)
        known = w * normal + (1 - w) * average
        known /= np.maximum(np.linalg.norm(known, axis=-1), _EPS)[:, None]
        t = np.arange(len(u))
        nxt = np.clip(np.searchsorted(usable, t), 0, len(usable) - 1)
        prv = np.where(usable[nxt] > t, np.clip(nxt - 1, 0, None), nxt)
        span = usable[nxt] - usable[prv]
        frac = np.where(span > 0, (t - usable[prv]) / np.maximum(span, 1), 0.0)
        axis = _slerp(known[usable[prv]], known[usable[nxt]], frac)
    h = axis - np.sum(axis * u, axis=-1, keepdims=True) * u
    n = np.linalg.norm(h, axis=-1)
    for t in np.flatnonzero(n <= 1e-6):
        h[t], n[t] = _any_perpendicular(u[t]), 1.0
    return np.einsum("tij,tj->ti", parent_rot, h / n[:, None])


def euler_zxy_continuous(rot: np.ndarray) -> np.ndarray:
    """Rotation matrices -> intrinsic ZXY Euler angles (R = Rz @ Rx @ Ry), continuous in time.

    Args:
        rot: (T, J, 3, 3).

    Returns:
        (T, J, 3) degrees in channel order (z, x, y). Of the two equivalent
        triples (z, x, y) and (z + 180, 180 - x, y + 180), each frame takes the
        one nearer the previous frame (nearer zero at frame 0), then every
        channel is unwrapped (no 360 jumps). At gimbal lock (x = +-90) only
        z +- y is defined; y keeps the last unlocked value.
    """
    r = np.asarray(rot, dtype=np.float64)
    x = np.arcsin(np.clip(r[..., 2, 1], -1.0, 1.0))
    z = np.arctan2(-r[..., 0, 1], r[..., 1, 1])
    y = np.arctan2(-r[..., 2, 0], r[..., 2, 2])
    locked = np.hypot(r[..., 0, 1], r[..., 1, 1]) < 1e-8
    if locked.any():
        frames = np.arange(len(r))[:, None]
        last = np.maximum.accumulate(np.where(locked, -1, frames), axis=0)
        y = np.where(locked, np.where(last >= 0, np.take_along_axis(y, np.maximum(last, 0), axis=0), 0.0), y)
        z = np.where(locked, np.arctan2(r[..., 1, 0], r[..., 0, 0]) - np.sign(x) * y, z)  # z + y or z - y
    a = np.stack([z, x, y], axis=-1)
    b = np.stack([z + np.pi, np.pi - x, y + np.pi], axis=-1)
    # the map a -> b preserves wrapped distances, so whether to switch branch
    # between two frames does not depend on the branch already chosen
    switch = _wrapped_l1(b[1:] - a[:-1]) < _wrapped_l1(a[1:] - a[:-1])
    start = _wrapped_l1(b[:1]) < _wrapped_l1(a[:1])
    branch = np.concatenate([start, start ^ (np.cumsum(switch, axis=0) % 2).astype(bool)])
    out = _wrap(np.where(branch[..., None], b, a))
    return np.degrees(np.unwrap(out, axis=0))


# ---------------------------------------------------------------- internals
def _reference(target: np.ndarray, kind: str) -> np.ndarray:
    """Twist reference direction of a torso joint, (T, 17, 3) -> (T, 3)."""
    if kind == "hips":
        return target[:, 4] - target[:, 1]
    if kind == "shoulders":
        return target[:, 11] - target[:, 14]
    if kind == "torso":
        return _unit_directions(target[:, 4] - target[:, 1]) + _unit_directions(target[:, 11] - target[:, 14])
    if kind == "up":
        return target[:, 7] - target[:, 0]
    if kind == "neck":
        return target[:, 9] - target[:, 8]
    raise ValueError(f"unknown twist reference {kind!r}")


def _frames(direction: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Orthonormal frames [d, r_perp, d x r_perp] as columns, (T, 3), (T, 3) -> (T, 3, 3).

    Where the reference is (nearly) parallel to the direction, the frame's
    second axis comes from the nearest earlier frame (else any perpendicular).
    """
    d = _unit_directions(direction)
    r = reference - np.sum(reference * d, axis=-1, keepdims=True) * d
    n = np.linalg.norm(r, axis=-1)
    bad = ~(n > 1e-6 * np.maximum(np.linalg.norm(reference, axis=-1), _EPS))
    r = r / np.where(bad, 1.0, n)[:, None]
    if bad.any():
        for t in np.flatnonzero(bad):
            prev = r[t - 1] if t > 0 else _any_perpendicular(d[t])
            prev = prev - np.dot(prev, d[t]) * d[t]
            m = np.linalg.norm(prev)
            r[t] = prev / m if m > _EPS else _any_perpendicular(d[t])
    return np.stack([d, r, np.cross(d, r)], axis=-1)


def _unit_directions(v: np.ndarray) -> np.ndarray:
    """Unit vectors, (T, 3) -> (T, 3); zero vectors copy the nearest earlier (else later, else +z) one."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    zero = (n[:, 0] <= _EPS) & np.isfinite(n[:, 0])
    d = v / np.where(zero[:, None], 1.0, n)
    if zero.any():
        good = np.flatnonzero(~zero)
        if good.size == 0:
            d[:] = (0.0, 0.0, 1.0)
        else:
            t = np.arange(len(v))
            src = good[np.clip(np.searchsorted(good, t, side="right") - 1, 0, None)]
            src = np.where(src > t, good[0], src)
            d = d[np.where(zero, src, t)]
    return d


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotations turning directions ``a`` onto ``b``, (T, 3), (T, 3) -> (T, 3, 3)."""
    a, b = _unit_directions(a), _unit_directions(b)
    axis, cos = np.cross(a, b), np.sum(a * b, axis=-1)
    k = np.zeros(a.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -axis[..., 2], axis[..., 1], -axis[..., 0]
    k = k - np.swapaxes(k, -1, -2)
    out = np.eye(3) + k + k @ k / np.maximum(1 + cos, _EPS)[..., None, None]
    for t in np.flatnonzero(cos < -1 + 1e-9):                # opposite: half turn about a perpendicular
        p = _any_perpendicular(a[t])
        out[t] = 2 * np.outer(p, p) - np.eye(3)
    return out


def _slerp(a: np.ndarray, b: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """Spherical interpolation of unit vectors, (T, 3), (T, 3), (T,) -> (T, 3) (lerp when close)."""
    cos = np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)
    ang = np.arccos(cos)
    small = ang < 1e-6
    sin = np.where(small, 1.0, np.sin(ang))
    wa = np.where(small, 1 - frac, np.sin((1 - frac) * ang) / sin)
    wb = np.where(small, frac, np.sin(frac * ang) / sin)
    return wa[:, None] * a + wb[:, None] * b


def _any_perpendicular(d: np.ndarray) -> np.ndarray:
    a = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    p = a - np.dot(a, d) * d
    return p / np.linalg.norm(p)


def _wrap(angles: np.ndarray) -> np.ndarray:
    """Angles (radians) wrapped to [-pi, pi), any shape."""
    return (angles + np.pi) % (2 * np.pi) - np.pi


def _wrapped_l1(diff: np.ndarray) -> np.ndarray:
    """Sum over the last axis of absolute wrapped angle differences, (..., 3) -> (...)."""
    return np.abs(_wrap(diff)).sum(axis=-1)


def _write_atomic(path: Path, text: str) -> None:
    """Atomic write (0666 minus umask, like every other output); failures are one line."""
    try:
        write_text_atomic(path, text)  # disk full, read-only: "cannot write <path>: <reason>"
    except OSError as e:
        raise UserError(f"cannot write BVH file {path}: {e.strerror or e}") from None


def default_bvh_path(keypoints: str | PathLike) -> Path:
    """Where ``export bvh`` writes by default: ``skeleton.bvh`` beside a result's ``keypoints.npz``
    (the name ``run --export bvh`` uses), ``<stem>.bvh`` beside any other file."""
    keypoints = Path(keypoints)
    return keypoints.with_name(BVH_NAME) if keypoints.name == "keypoints.npz" else keypoints.with_suffix(".bvh")


def export_bvh_file(keypoints: str | PathLike, path: str | PathLike | None = None) -> BvhExportInfo:
    """BVH from a saved ``keypoints.npz``; one-line errors.

    With ``keypoints_3d_camera`` and ``root_translation`` (files written by
    `video3d run`) the root moves along the trajectory exactly as
    ``run --export bvh`` writes it; otherwise ``keypoints_3d_world`` is used
    (pelvis-centred, no root motion).
    """
    from video3d.io.npz import positive_scalar, read_npz, require

    keypoints = Path(keypoints)
    data = read_npz(keypoints)
    expected = "expected a keypoints.npz written by `video3d run`"
    world = np.asarray(require(data, "keypoints_3d_world", keypoints, expected))
    require(data, "fps", keypoints, expected)
    fps = positive_scalar(data, "fps", keypoints)
    if world.dtype.kind not in "iuf" or world.ndim != 3 or world.shape[1:] != (skeleton.NUM_JOINTS, 3):
        raise UserError(f"{keypoints}: 'keypoints_3d_world' must be numbers of shape (T, 17, 3), "
                        f"got {world.dtype} {world.shape}")
    cam, root = data.get("keypoints_3d_camera"), data.get("root_translation")
    if cam is not None and root is not None and np.shape(cam) == world.shape and np.shape(root) == (len(world), 3):
        from video3d.export.people import placed_world
        world = placed_world([np.asarray(cam, np.float32)], [np.asarray(root, np.float32)])[0]
    return export_bvh(path or default_bvh_path(keypoints), world, fps)
