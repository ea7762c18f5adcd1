"""Virtual COCO-17 3D landmarks from motion-capture rigs.

Each supported rig ("source") has a mapping table (:data:`MAPPINGS`) from
COCO body landmarks to rig joints, plus a recipe for a head frame in which the
face landmarks (nose, eyes, ears), which rigs lack, are placed with fixed
anthropometric offsets (:data:`FACE_OFFSETS_M`). Every H36M-17 joint is then
``keypoints.coco_to_h36m`` of these landmarks, exactly as for detector output.

Output frame (all sources): metres, world z up, right-handed, heights as in
the source file (not shifted to the floor). Sources:

* ``cc_bvh``: Character Creator rig (``CC_Base_*``), centimetres, y up in FK
  output (the bind-pose offsets are not world aligned; verified on FK).
* ``cmu_bvh``: the common BVH conversion of CMU ASF/AMC (``Hips``,
  ``LeftHip``, ``Chest2``, ...), CMU ASF length units (1 unit = 0.0254/0.45 m,
  checked from bone lengths), y up. These drop the thorax and wrist bones;
  see :func:`repair_cmu_bvh`.
* ``cmu_asf``: original CMU ASF/AMC, units from the ASF, y up.

Head frames are (origin, forward, left, up), unit axes, ``left = up x forward``;
the origin is the midpoint of the eyeball centres. The CC rig has eye joints
(:func:`head_frame_from_eyes`); for the eyeless CMU rigs the head joint's
global rotation gives the axes (:func:`head_frame_from_rotation`), which keeps
head turns that a frame built from the head bone and the shoulder line
(:func:`head_frame_from_bone`) would miss (their forward axes differ by a
median 5-24 deg per clip, up to 54 deg at the 90th percentile).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from video3d.keypoints import COCO_JOINT_NAMES
from video3d.mocap.asfamc import AmcMotion, global_transforms as asf_transforms
from video3d.formats.bvh import BvhMotion, BvhSkeleton, global_transforms as bvh_transforms
from video3d.mocap import expmap as _expmap

#: Bump when any mapping, offset or unit changes: invalidates landmark caches.
MAPPING_VERSION = 4

CMU_METRES_PER_UNIT = 0.0254 / 0.45

#: Face landmarks relative to the eyeball-centre midpoint, in the head frame,
#: metres, as (forward, left, up). Adult anthropometric averages: eyes =
#: pupils on the cornea (~1 cm in front of the eyeball centre), interpupillary
#: distance 6.4 cm; nose = nose tip (pronasale), ~4 cm in front of and ~3.5 cm
#: below the eyeball centres; ears = middle of the ear, ~8.5 cm behind and
#: 1 cm below the eyeball centres, head-width apart (bitragion breadth ~15 cm).
FACE_OFFSETS_M: dict[str, tuple[float, float, float]] = {
    "nose": (0.040, 0.0, -0.035),
    "left_eye": (0.010, 0.032, 0.0),
    "right_eye": (0.010, -0.032, 0.0),
    "left_ear": (-0.085, 0.075, -0.010),
    "right_ear": (-0.085, -0.075, -0.010),
}

#: How far forward the CC eyes are pushed from the eyeball-centre joints to the cornea.
CC_EYE_FORWARD_M = 0.010

#: Angle (degrees) of the CC_Base_Head -> eye-midpoint vector above the head's
#: forward axis (the eyes are ~11.6 cm from CC_Base_Head). Two independent
#: measurements agree: (1) in the rig's bind pose the eyes sit at
#: (8.19 up, 8.22 forward) cm from the head joint, atan2 = 44.9 deg, and the
#: resulting frame coincides with CC_Base_Head's own local axes; (2) it makes the
#: CC head frame equal to the head frame of the original CMU ASF/AMC of the same
#: trial (cmu/001_01.bvh vs cmu-asfamc/01_01.amc: pitch differs by a constant,
#: 44.8 deg gives zero offset; per-frame correlation 0.998).
CC_EYE_ELEVATION_DEG = 45.0

#: Eyeball-centre midpoint relative to the distal end of the CMU ``head`` bone,
#: in the head frame (forward, left, up), metres. The CMU head bone runs from
#: the top of the neck up to about eye height, above the ears; the eyes lie
#: ~8 cm in front of its end. Check on the same trial in both rigs (01_01):
#: eyes 21 cm above / 11 cm in front of the shoulder-joint centre here, vs.
#: 21 cm / 12 cm for the CC rig's real eye joints.
CMU_EYES_FROM_HEAD_END_M: tuple[float, float, float] = (0.080, 0.0, 0.0)


@dataclass(frozen=True)
class RigMapping:
    """How to read COCO-17 landmarks off one rig.

    body: COCO body landmark -> rig joint (BVH joint, or ASF bone whose
        *distal end* is meant; ``"root"`` is the ASF root).
    head / head_end: joints at the start and end of the head bone (for ASF:
        the bones ending there, ``upperneck`` and ``head``). The head bone's
        global rotation orients eyeless heads.
    eyes: (left, right) eye joints if the rig has them.
    metres_per_unit: file unit -> metres (None: taken from the file, ASF).
    rest_forward / rest_left / rest_up: head-joint axes in its rest frame
        (for eyeless rigs the head frame is the head joint's global rotation
        applied to them); y-up file coordinates.
    """

    source: str
    body: dict[str, str]
    head: str
    head_end: str | None
    eyes: tuple[str, str] | None
    metres_per_unit: float | None
    rest_forward: tuple[float, float, float] = (0.0, 0.0, 1.0)
    rest_left: tuple[float, float, float] = (1.0, 0.0, 0.0)
    rest_up: tuple[float, float, float] = (0.0, 1.0, 0.0)
    #: rigs with eye joints: angle of head joint -> eye midpoint above forward.
    eye_elevation_deg: float = CC_EYE_ELEVATION_DEG
    #: rigs with eye joints: use them (pushed to the cornea) as the eye
    #: landmarks; False places the eyes with FACE_OFFSETS_M like the other face points.
    eye_joints_are_landmarks: bool = True
    #: eyeless rigs: eyeball-centre midpoint relative to ``head_end`` (forward, left, up), metres.
    eyes_from_head_end_m: tuple[float, float, float] = CMU_EYES_FROM_HEAD_END_M


CC_MAPPING = RigMapping(
    source="cc_bvh",
    body={
        "left_shoulder": "CC_Base_L_Upperarm", "right_shoulder": "CC_Base_R_Upperarm",
        "left_elbow": "CC_Base_L_Forearm", "right_elbow": "CC_Base_R_Forearm",
        "left_wrist": "CC_Base_L_Hand", "right_wrist": "CC_Base_R_Hand",
        "left_hip": "CC_Base_L_Thigh", "right_hip": "CC_Base_R_Thigh",
        "left_knee": "CC_Base_L_Calf", "right_knee": "CC_Base_R_Calf",
        "left_ankle": "CC_Base_L_Foot", "right_ankle": "CC_Base_R_Foot",
    },
    head="CC_Base_Head", head_end=None, eyes=("CC_Base_L_Eye", "CC_Base_R_Eye"),
    metres_per_unit=0.01,
)

CMU_BVH_MAPPING = RigMapping(
    source="cmu_bvh",
    body={
        "left_shoulder": "LeftShoulder", "right_shoulder": "RightShoulder",
        "left_elbow": "LeftElbow", "right_elbow": "RightElbow",
        "left_wrist": "LeftWrist", "right_wrist": "RightWrist",
        "left_hip": "LeftHip", "right_hip": "RightHip",
        "left_knee": "LeftKnee", "right_knee": "RightKnee",
        "left_ankle": "LeftAnkle", "right_ankle": "RightAnkle",
    },
    head="Head", head_end="Head_End", eyes=None, metres_per_unit=CMU_METRES_PER_UNIT,
)

CMU_ASF_MAPPING = RigMapping(
    source="cmu_asf",
    body={  # distal ends of ASF bones
        "left_shoulder": "lclavicle", "right_shoulder": "rclavicle",
        "left_elbow": "lhumerus", "right_elbow": "rhumerus",
        "left_wrist": "lwrist", "right_wrist": "rwrist",
        "left_hip": "lhipjoint", "right_hip": "rhipjoint",
        "left_knee": "lfemur", "right_knee": "rfemur",
        "left_ankle": "ltibia", "right_ankle": "rtibia",
    },
    head="upperneck", head_end="head", eyes=None, metres_per_unit=None,
)

#: cgspeed's "DAZ-friendly" CMU conversion (salsa, martial arts, Indian dance):
#: centimetres, y up, faces +z at rest. Joint centres; the eye joints are
#: 7.8 cm apart (a generic figure), so only their midpoint and the head frame
#: are used. The head -> eye-midpoint rest offset is (8.05 up, 8.05 forward)
#: cm, 45.0 deg above forward (measured in standard.bvh and every file).
DAZ_MAPPING = RigMapping(
    source="daz_bvh",
    body={
        "left_shoulder": "lShldr", "right_shoulder": "rShldr",
        "left_elbow": "lForeArm", "right_elbow": "rForeArm",
        "left_wrist": "lHand", "right_wrist": "rHand",
        "left_hip": "lThigh", "right_hip": "rThigh",
        "left_knee": "lShin", "right_knee": "rShin",
        "left_ankle": "lFoot", "right_ankle": "rFoot",
    },
    head="head", head_end=None, eyes=("leftEye", "rightEye"), metres_per_unit=0.01,
    eye_elevation_deg=45.0, eye_joints_are_landmarks=False,
)

#: ReActIdle (Blender export): metres, y up, faces +z at rest. Wrists are the
#: forearms' End Sites. ``face`` sits 0.18-0.21 m above the shoulder line (at
#: about eye height, see docs/mocap.md) and its rotation orients the head
#: (its End Site points forward); the eyes are placed 7 cm in front of it.
REACTIDLE_MAPPING = RigMapping(
    source="reactidle",
    body={
        "left_shoulder": "upper_arm.L", "right_shoulder": "upper_arm.R",
        "left_elbow": "forearm.L", "right_elbow": "forearm.R",
        "left_wrist": "forearm.L_End", "right_wrist": "forearm.R_End",
        "left_hip": "thigh.L", "right_hip": "thigh.R",
        "left_knee": "shin.L", "right_knee": "shin.R",
        "left_ankle": "foot.L", "right_ankle": "foot.R",
    },
    head="face", head_end="face", eyes=None, metres_per_unit=1.0,
    eyes_from_head_end_m=(0.070, 0.0, 0.050),
)

#: The CMU 8-action set in exponential maps (:mod:`video3d.mocap.expmap`):
#: body landmarks are skeleton joint indices (as strings), the head frame is
#: the rotation of joint 18 (head bone, upper-neck end -> head end).
CMU_EXPMAP_MAPPING = RigMapping(
    source="cmu_expmap",
    body={k: str(v) for k, v in _expmap.JOINTS.items() if k in {
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle"}}
    | {"left_wrist": str(_expmap.JOINTS["left_hand_pivot"]), "right_wrist": str(_expmap.JOINTS["right_hand_pivot"])},
    head=str(_expmap.JOINTS["upperneck_end"]), head_end=str(_expmap.JOINTS["head_end"]), eyes=None,
    metres_per_unit=None,
)

MAPPINGS: dict[str, RigMapping] = {m.source: m for m in (CC_MAPPING, CMU_BVH_MAPPING, CMU_ASF_MAPPING,
                                                          DAZ_MAPPING, REACTIDLE_MAPPING)}

#: File y-up -> world z-up: (x, y, z) -> (x, -z, y), a proper rotation (det +1).
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def detect_source(joint_names: list[str]) -> str:
    """Source key of a BVH/ASF rig from its joint names: 'cc_bvh' | 'cmu_bvh' | 'cmu_asf' | 'daz_bvh' | 'reactidle'.

    Raises ValueError for an unknown rig.
    """
    names = set(joint_names)
    for m in MAPPINGS.values():
        needed = set(m.body.values()) | {m.head} | set(m.eyes or ()) | ({m.head_end} - {None})
        if needed <= names:
            return m.source
    raise ValueError("unknown mocap rig: expected Character Creator (CC_Base_*), CMU BVH "
                     "(Hips, LeftHip, Head, ...), CMU ASF (lfemur, upperneck, head, ...), DAZ "
                     "(lShldr, lThigh, leftEye, ...) or ReActIdle (upper_arm.L, thigh.L, face, ...) joints")


def y_up_to_z_up(points: np.ndarray) -> np.ndarray:
    """(..., 3) y-up coordinates -> z-up: (x, y, z) -> (x, -z, y)."""
    p = np.asarray(points)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def head_frame_from_eyes(head: np.ndarray, left_eye: np.ndarray, right_eye: np.ndarray,
                         elevation_deg: float = CC_EYE_ELEVATION_DEG
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Head frame from a head joint and two eye joints.

    head, left_eye, right_eye: (T, 3). left = unit(left_eye - right_eye); the
    head->eyes vector (made orthogonal to left) lies ``elevation_deg`` above
    forward. Returns (origin = eye midpoint, forward, left, up), each (T, 3).
    """
    origin = 0.5 * (left_eye + right_eye)
    left = _unit(left_eye - right_eye)
    v = origin - head
    f0 = _unit(v - np.sum(v * left, axis=-1, keepdims=True) * left)
    u0 = np.cross(f0, left)
    a = np.radians(elevation_deg)
    forward = np.cos(a) * f0 - np.sin(a) * u0
    up = np.sin(a) * f0 + np.cos(a) * u0
    return origin, forward, left, up


def head_frame_from_rotation(rotation: np.ndarray, mapping: RigMapping
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head axes from the head joint's global rotation (T, 3, 3) and its rest axes.

    Returns (forward, left, up), each (T, 3), re-orthonormalised.
    """
    up = _unit(rotation @ np.asarray(mapping.rest_up))
    fwd0 = rotation @ np.asarray(mapping.rest_forward)
    left = _unit(np.cross(up, fwd0))
    forward = np.cross(left, up)
    return forward, left, up


def head_frame_from_bone(head: np.ndarray, head_end: np.ndarray, left_shoulder: np.ndarray,
                         right_shoulder: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Head axes for a rig with neither eyes nor usable joint rotations.

    up = head bone direction; left = shoulder line made orthogonal to up;
    forward = left x up (points where the body faces when left is the
    person's left). Inputs (T, 3); returns (forward, left, up). Ignores head
    yaw relative to the shoulders, so :func:`head_frame_from_rotation` is
    preferred when rotations are known.
    """
    up = _unit(head_end - head)
    lat = left_shoulder - right_shoulder
    left = _unit(lat - np.sum(lat * up, axis=-1, keepdims=True) * up)
    return np.cross(left, up), left, up


def face_landmarks(origin: np.ndarray, forward: np.ndarray, left: np.ndarray, up: np.ndarray
                   ) -> dict[str, np.ndarray]:
    """Nose, eyes and ears from a head frame: name -> (T, 3), per FACE_OFFSETS_M."""
    return {name: origin + f * forward + lt * left + u * up
            for name, (f, lt, u) in FACE_OFFSETS_M.items()}


def assemble_coco(points: dict[str, np.ndarray]) -> np.ndarray:
    """COCO landmark name -> (T, 3) dict to an array (T, 17, 3) in COCO order."""
    missing = [n for n in COCO_JOINT_NAMES if n not in points]
    if missing:
        raise ValueError(f"missing COCO landmarks: {', '.join(missing)}")
    return np.stack([points[n] for n in COCO_JOINT_NAMES], axis=1)


def _cmu_eye_origin(head_end: np.ndarray, forward: np.ndarray, left: np.ndarray, up: np.ndarray,
                    offset: tuple[float, float, float] = CMU_EYES_FROM_HEAD_END_M) -> np.ndarray:
    f, lt, u = offset
    return head_end + f * forward + lt * left + u * up


def fix_absolute_translations(motion: BvhMotion) -> BvhMotion:
    """Zero the OFFSET of non-root joints whose position channels hold the full local translation.

    Some exporters (ReActIdle, from Blender) write 6 channels on every joint
    with position values equal to the OFFSET (not a displacement from it):
    adding them, as the BVH convention asks, doubles every bone. The file is
    treated that way when, on the first frame, at least 80 % of the non-root
    joints with a non-zero OFFSET and 3 position channels have channel values
    within 10 % of the OFFSET length (+ 2 mm) of it; then every such joint's
    OFFSET is zeroed (small per-frame translations, e.g. ReActIdle's thighs,
    are kept). Returns a new motion; others are returned unchanged.
    """
    sk = motion.skeleton
    slices = sk.channel_slices()
    tol_unit = 0.002 * _unit_scale(sk)
    joints, matches = [], []
    for j, (p, ch) in enumerate(zip(sk.parents, sk.channels)):
        cols = [k for k, c in enumerate(ch) if c[1:].lower() == "position"]
        if p < 0 or len(cols) != 3:
            continue
        joints.append(j)
        if np.any(sk.offsets[j]):
            vec = np.zeros(3)
            vec[["XYZ".index(ch[k][0].upper()) for k in cols]] = motion.motion[0, slices[j]][cols]
            norm = float(np.linalg.norm(sk.offsets[j]))
            matches.append(float(np.linalg.norm(vec - sk.offsets[j])) <= 0.1 * norm + tol_unit)
    if not matches or np.mean(matches) < 0.8:
        return motion
    offsets = sk.offsets.copy()
    offsets[joints] = 0.0
    skeleton = BvhSkeleton(names=list(sk.names), parents=list(sk.parents), offsets=offsets,
                           channels=[list(c) for c in sk.channels])
    return BvhMotion(skeleton=skeleton, frame_time=motion.frame_time, motion=motion.motion)


#: Per side, how far (metres) the DAZ shoulder joints are moved outwards
#: (:func:`widen_daz_shoulders`).
DAZ_SHOULDER_WIDEN_M = 0.058


def widen_daz_shoulders(motion: BvhMotion, per_side_m: float = DAZ_SHOULDER_WIDEN_M) -> BvhMotion:
    """Move the DAZ shoulder joints outwards along the (motionless) collar's x axis.

    The DAZ figure puts its shoulder joints 0.229 m apart (shoulder width /
    mid-hip-to-mid-shoulder = 0.49), against 0.71-0.80 for every other source
    here (CC 0.74, CMU ASF 0.71, expmap 0.80); 0.058 m per side brings it to
    0.74. The collars carry no motion (channels < 1e-9), so this is a fixed
    lateral shift in the chest frame. Returns a new motion.
    """
    sk = motion.skeleton
    offsets = sk.offsets.copy()
    for name, sign in (("lShldr", 1.0), ("rShldr", -1.0)):
        offsets[sk.index(name), 0] += sign * per_side_m * 100.0   # file units: cm
    skeleton = BvhSkeleton(names=list(sk.names), parents=list(sk.parents), offsets=offsets,
                           channels=[list(c) for c in sk.channels])
    return BvhMotion(skeleton=skeleton, frame_time=motion.frame_time, motion=motion.motion)


def _unit_scale(sk: BvhSkeleton) -> float:
    """Rough file units per metre from the largest offset (a bone is ~0.2-0.5 m)."""
    big = float(np.max(np.linalg.norm(sk.offsets, axis=-1)))
    return 1.0 if big < 2.0 else 100.0


def repair_cmu_bvh(motion: BvhMotion) -> BvhMotion:
    """Re-insert the thorax and wrist bones that CMU BVH conversions drop.

    Thorax: those files give ``lowerneck``, ``LeftCollar`` and ``RightCollar``
    a zero OFFSET under ``Chest2`` (which carries the thorax rotation), so the
    neck, head and shoulder girdle sit one thorax length (~0.12 m) too low on
    the spine. The thorax vector is estimated by the ``Chest2`` OFFSET (the
    upper-back bone; thorax/upper-back length ratio 1.01 and 1.04 in the CMU
    ASF subjects 01 and 11).

    Wrists: CMU ASF forearms are two bones, ``radius`` and ``wrist`` (the
    distal third; wrist/radius length ratio 0.50 in every CMU ASF), and the
    hand flexes at the end of ``wrist``. The conversions keep only the radius
    (``LeftWrist`` OFFSET), give ``lhand`` a zero OFFSET and put the hand
    rotation on ``LeftWrist``, so the wrist sits ~0.10 m too close to the
    elbow. The ``LeftWrist``/``RightWrist`` OFFSET is scaled by 1.5 when the
    ``lhand``/``rhand`` OFFSET is zero.

    Returns a new motion (the input is not modified); files without these
    signatures are returned unchanged.
    """
    sk = motion.skeleton
    offsets = sk.offsets.copy()
    children: dict[str, dict[str, int]] = {}
    for j, p in enumerate(sk.parents):
        if p >= 0:
            children.setdefault(sk.names[p], {})[sk.names[j]] = j

    def is_zero(parent: str, child: str) -> bool:
        j = children.get(parent, {}).get(child)
        return j is not None and float(np.linalg.norm(sk.offsets[j])) < 1e-9

    if "Chest2" in sk.names:
        for kid in ("lowerneck", "LeftCollar", "RightCollar"):
            if is_zero("Chest2", kid):
                offsets[children["Chest2"][kid]] = sk.offsets[sk.index("Chest2")]
    for wrist, hand in (("LeftWrist", "lhand"), ("RightWrist", "rhand")):
        if is_zero(wrist, hand):
            offsets[sk.index(wrist)] = 1.5 * sk.offsets[sk.index(wrist)]
    skeleton = BvhSkeleton(names=list(sk.names), parents=list(sk.parents), offsets=offsets,
                           channels=[list(c) for c in sk.channels])
    return BvhMotion(skeleton=skeleton, frame_time=motion.frame_time, motion=motion.motion)


def bvh_to_coco(motion: BvhMotion, repair: bool = True) -> tuple[np.ndarray, str]:
    """Virtual COCO-17 landmarks of a BVH motion.

    Returns (landmarks (F, 17, 3) metres, world z up, source key). For
    ``cmu_bvh`` files the dropped thorax and wrist bones are re-inserted first
    unless ``repair`` is False (:func:`repair_cmu_bvh`).
    """
    source = detect_source(motion.skeleton.names)
    m = MAPPINGS[source]
    if m.metres_per_unit is None:
        raise ValueError(f"BVH file with {source} joint names: units unknown, not supported")
    if source == "cmu_bvh" and repair:
        motion = repair_cmu_bvh(motion)
    if source == "reactidle":
        motion = fix_absolute_translations(motion)
    if source == "daz_bvh" and repair:
        motion = widen_daz_shoulders(motion)
    body_names = list(m.body.values())
    extra = [m.head] + ([m.head_end] if m.head_end else []) + list(m.eyes or ())
    pos, rot = bvh_transforms(motion, body_names + extra)
    pos = pos * m.metres_per_unit
    named = {n: pos[:, k] for k, n in enumerate(body_names + extra)}
    if m.eyes is not None:
        origin, fwd, left, up = head_frame_from_eyes(named[m.head], named[m.eyes[0]], named[m.eyes[1]],
                                                     m.eye_elevation_deg)
        points = face_landmarks(origin, fwd, left, up)
        if m.eye_joints_are_landmarks:
            points["left_eye"] = named[m.eyes[0]] + CC_EYE_FORWARD_M * fwd
            points["right_eye"] = named[m.eyes[1]] + CC_EYE_FORWARD_M * fwd
    else:
        fwd, left, up = head_frame_from_rotation(rot[:, len(body_names)], m)
        points = face_landmarks(_cmu_eye_origin(named[m.head_end], fwd, left, up, m.eyes_from_head_end_m),
                                fwd, left, up)
    points.update({c: named[j] for c, j in m.body.items()})
    return y_up_to_z_up(assemble_coco(points)), source


def amc_to_coco(motion: AmcMotion) -> np.ndarray:
    """Virtual COCO-17 landmarks (F, 17, 3) of a CMU ASF/AMC motion, metres, world z up."""
    m = CMU_ASF_MAPPING
    names = motion.skeleton.joint_names
    missing = [n for n in list(m.body.values()) + [m.head, m.head_end] if n not in names]
    if missing:
        raise ValueError(f"ASF skeleton lacks CMU bones: {', '.join(missing)}")
    pos, rot = asf_transforms(motion)
    named = {n: pos[:, names.index(n)] for n in list(m.body.values()) + [m.head, m.head_end]}
    fwd, left, up = head_frame_from_rotation(rot[:, names.index(m.head_end)], m)
    points = face_landmarks(_cmu_eye_origin(named[m.head_end], fwd, left, up), fwd, left, up)
    points.update({c: named[j] for c, j in m.body.items()})
    return y_up_to_z_up(assemble_coco(points))


def expmap_to_coco(values: np.ndarray, skeleton: "_expmap.ExpmapSkeleton", repair: bool = True) -> np.ndarray:
    """Virtual COCO-17 landmarks (F, 17, 3) of a CMU expmap motion, metres, world z up.

    values: (F, 117) rows of the motion file. The zero-length thorax and wrist
    bones are re-inserted first unless ``repair`` is False
    (:func:`video3d.mocap.expmap.repair_skeleton`). The head frame is the
    global rotation of the head bone (rest: forward +z, up +y), the eyes 8 cm
    in front of its end, as for the other CMU rigs.
    """
    m = CMU_EXPMAP_MAPPING
    sk = _expmap.repair_skeleton(skeleton) if repair else skeleton
    pos, rot = _expmap.forward_kinematics(values, sk)
    pos = pos * sk.metres_per_unit
    named = {c: pos[:, int(j)] for c, j in m.body.items()}
    head_rot = np.swapaxes(rot[:, int(m.head)], -1, -2)   # row-vector -> column-vector convention
    fwd, left, up = head_frame_from_rotation(head_rot, m)
    points = face_landmarks(_cmu_eye_origin(pos[:, int(m.head_end)], fwd, left, up), fwd, left, up)
    points.update(named)
    return y_up_to_z_up(assemble_coco(points))
