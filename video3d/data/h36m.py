"""Human3.6M in the VideoPose3D file layout, and camera recovery from it.

Files (VideoPose3D's ``data/`` directory; load only files you trust: they are
pickled Python objects, read with ``allow_pickle=True``):

* ``data_3d_h36m.npz``: key ``positions_3d`` = {subject: {action: (T, 32, 3)}},
  world positions in metres, 50 fps. The 17 standard joints are
  :data:`H36M_17_OF_32` (same order as :mod:`video3d.skeleton`).
* ``data_2d_h36m_gt.npz`` / ``data_2d_h36m_cpn_ft_h36m_dbb.npz``: key
  ``positions_2d`` = {subject: {action: [4 x (T, 17, 2)]}} pixels, one array per
  camera; key ``metadata`` = {``layout_name``, ``num_joints``,
  ``keypoints_symmetry``}.

Cameras are either given (JSON, see :func:`load_cameras_json`) or recovered
from the data: per subject and camera, a DLT on all (world 3D, GT 2D)
correspondences followed by least-squares refinement of a pinhole model with
optional radial/tangential distortion (:func:`calibrate_camera`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from video3d.geometry.calibrate import calibrate_camera
from video3d.geometry.camera import CalibratedCamera as Camera
from video3d.errors import UserError
from video3d.keypoints import coco_to_h36m

#: Indices of the 17 standard joints among the 32 of ``positions_3d``.
H36M_17_OF_32: tuple[int, ...] = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)
TRAIN_SUBJECTS: tuple[str, ...] = ("S1", "S5", "S6", "S7", "S8")
TEST_SUBJECTS: tuple[str, ...] = ("S9", "S11")
FPS = 50.0
NUM_CAMERAS = 4
#: Image size (width, height) per camera index, as listed in VideoPose3D's
#: camera table (cameras 54138969, 55011271, 58860488, 60457274). Only used
#: when cameras are recovered from the data; a camera JSON overrides it.
DEFAULT_IMAGE_SIZES: tuple[tuple[int, int], ...] = ((1000, 1002), (1000, 1000), (1000, 1000), (1000, 1002))


@dataclass
class H36MSequence:
    """One (subject, action, camera) sequence.

    keypoints_2d: (T, 17, 2) pixels, H36M-17 order.
    joints_3d_camera: (T, 17, 3) metres in that camera's frame, root-relative
        (pelvis = 0).
    image_size: (width, height).
    """

    subject: str
    action: str
    camera_index: int
    keypoints_2d: np.ndarray
    joints_3d_camera: np.ndarray
    image_size: tuple[int, int]
    fps: float = FPS
    camera: Camera | None = field(default=None, repr=False)


# --------------------------------------------------------------------------- files

def _load_pickled(path: str | PathLike, key: str):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: file not found")
    try:
        with np.load(path, allow_pickle=True) as z:   # trusted input only: pickled objects
            if key not in z.files:
                raise UserError(f"{path}: no '{key}' entry (is this a VideoPose3D H36M file?)")
            obj = z[key]
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable .npz file ({e})") from e
    return obj.item() if obj.dtype == object and obj.shape == () else obj


def load_positions_3d(path: str | PathLike) -> dict[str, dict[str, np.ndarray]]:
    """``positions_3d`` of a VideoPose3D 3D file: {subject: {action: (T, 32, 3) metres}}."""
    data = _load_pickled(path, "positions_3d")
    if not isinstance(data, dict):
        raise UserError(f"{path}: positions_3d is not a dict of subjects")
    return data


def load_positions_2d(path: str | PathLike) -> tuple[dict[str, dict[str, list]], dict]:
    """(``positions_2d``, ``metadata``) of a VideoPose3D 2D file.

    positions_2d: {subject: {action: [per-camera (T, J, 2) pixels]}}.
    """
    data = _load_pickled(path, "positions_2d")
    if not isinstance(data, dict):
        raise UserError(f"{path}: positions_2d is not a dict of subjects")
    try:
        meta = _load_pickled(path, "metadata")
    except UserError:
        meta = {"layout_name": "h36m", "num_joints": 17}
    return data, dict(meta)


def load_cameras_json(path: str | PathLike) -> dict[str, list[Camera]]:
    """Cameras from JSON: ``{"S1": [cam0, cam1, cam2, cam3], ...}``.

    Each camera is ``{"R": 3x3 world->camera, "t": [3] metres, "fx", "fy", "cx",
    "cy" (pixels), "width", "height", optional "k": [k1, k2], "p": [p1, p2]}``,
    listed in the camera order of the 2D file. A subject may also map camera
    indices ("0".."3") to records.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: cannot read camera JSON ({e})") from e
    if not isinstance(raw, dict):
        raise UserError(f"{path}: camera JSON must map subjects to camera lists")
    out: dict[str, list[Camera]] = {}
    for subject, cams in raw.items():
        if isinstance(cams, dict):
            cams = [cams[k] for k in sorted(cams, key=int)]
        try:
            out[subject] = [Camera.from_dict(c) for c in cams]
        except ValueError as e:
            raise UserError(f"{path}: subject {subject}: {e}") from e
    return out


def save_cameras_json(path: str | PathLike, cameras: Mapping[str, Sequence[Camera]]) -> None:
    """Write cameras in the :func:`load_cameras_json` schema."""
    Path(path).write_text(json.dumps({s: [c.to_dict() for c in cams] for s, cams in cameras.items()},
                                     indent=1))


def _joints17(world: np.ndarray) -> np.ndarray:
    world = np.asarray(world, np.float64)
    if world.ndim != 3 or world.shape[-1] != 3 or world.shape[1] not in (17, 32):
        raise UserError(f"3D positions must be (T, 32, 3) or (T, 17, 3), got {world.shape}")
    return world[:, list(H36M_17_OF_32)] if world.shape[1] == 32 else world


def _keypoints17(kp: np.ndarray, layout: str) -> np.ndarray:
    kp = np.asarray(kp, np.float64)[..., :2]
    if layout == "coco":
        kp = coco_to_h36m(kp)[0]
    if kp.ndim != 3 or kp.shape[1] != 17:
        raise UserError(f"2D keypoints must be (T, 17, 2), got {kp.shape}")
    return kp


def _layout(meta: Mapping) -> str:
    layout = str(meta.get("layout_name", "h36m")).lower()
    if layout.startswith("h36m"):
        return "h36m"
    if layout.startswith("coco"):
        return "coco"
    raise UserError(f"unsupported 2D keypoint layout {layout!r} (expected h36m or coco)")


def recover_cameras(positions_3d: Mapping[str, Mapping[str, np.ndarray]],
                    positions_2d: Mapping[str, Mapping[str, Sequence[np.ndarray]]],
                    layout: str = "h36m", distortion: str = "radial",
                    image_sizes: Sequence[tuple[int, int]] = DEFAULT_IMAGE_SIZES,
                    subjects: Sequence[str] | None = None, robust: bool = False
                    ) -> dict[str, list[Camera]]:
    """Calibrate every (subject, camera) from the data (:func:`calibrate_camera`).

    Uses all actions present in both dicts, each cropped to the shorter of its
    3D and 2D lengths. Best with ground-truth 2D (``data_2d_h36m_gt.npz``).
    Returns {subject: [Camera per camera index]}.
    """
    out: dict[str, list[Camera]] = {}
    for subject in sorted(subjects if subjects is not None else positions_3d):
        if subject not in positions_3d or subject not in positions_2d:
            continue
        per_cam: dict[int, tuple[list, list]] = {}
        for action, world in positions_3d[subject].items():
            if action not in positions_2d[subject]:
                continue
            w17 = _joints17(world)
            for c, kp in enumerate(positions_2d[subject][action]):
                if kp is None or len(kp) == 0:
                    continue
                kp17 = _keypoints17(kp, layout)
                n = min(len(w17), len(kp17))
                X, x = per_cam.setdefault(c, ([], []))
                X.append(w17[:n].reshape(-1, 3))
                x.append(kp17[:n].reshape(-1, 2))
        cams = []
        for c in range(max(per_cam, default=-1) + 1):
            if c not in per_cam:
                raise UserError(f"subject {subject}: no 2D data for camera {c}")
            size = image_sizes[c] if c < len(image_sizes) else image_sizes[-1]
            cams.append(calibrate_camera(np.concatenate(per_cam[c][0]), np.concatenate(per_cam[c][1]),
                                         size, distortion=distortion, robust=robust))
        out[subject] = cams
    return out


def load_h36m(path_3d: str | PathLike, path_2d: str | PathLike,
              cameras: str | PathLike | Mapping[str, Sequence[Camera]] | None = None,
              subjects: Sequence[str] | None = None) -> list[H36MSequence]:
    """Load Human3.6M sequences in the VideoPose3D layout.

    cameras: a camera JSON path (:func:`load_cameras_json`), a ``.npz`` 2D file
    to calibrate from (e.g. ``data_2d_h36m_gt.npz`` when ``path_2d`` holds
    detections), a {subject: [Camera]} mapping, or None to calibrate from
    ``path_2d`` itself (:func:`recover_cameras`; save the result with
    :func:`save_cameras_json` to skip this next time).
    subjects: restrict to these (e.g. :data:`TEST_SUBJECTS`).

    One sequence per (subject, action, camera), sorted. Actions missing from
    either file (S11 'Directions' in the public release) are skipped; when 3D
    and 2D lengths differ both are cropped to the shorter, as VideoPose3D does.
    """
    pos3d = load_positions_3d(path_3d)
    pos2d, meta = load_positions_2d(path_2d)
    layout = _layout(meta)
    wanted = sorted(subjects) if subjects is not None else sorted(pos3d)
    if cameras is None:
        cams = recover_cameras(pos3d, pos2d, layout, subjects=wanted)
    elif isinstance(cameras, Mapping):
        cams = {s: list(c) for s, c in cameras.items()}
    elif Path(cameras).suffix.lower() == ".json":
        cams = load_cameras_json(cameras)
    else:
        gt2d, gt_meta = load_positions_2d(cameras)
        cams = recover_cameras(pos3d, gt2d, _layout(gt_meta), subjects=wanted)

    out: list[H36MSequence] = []
    for subject in wanted:
        if subject not in pos3d or subject not in pos2d:
            continue
        for action in sorted(pos3d[subject]):
            if action not in pos2d[subject]:
                continue
            world = _joints17(pos3d[subject][action])
            for c, kp in enumerate(pos2d[subject][action]):
                if kp is None or len(kp) == 0:
                    continue
                if subject not in cams or c >= len(cams[subject]):
                    raise UserError(f"no camera {c} for subject {subject}")
                cam = cams[subject][c]
                kp17 = _keypoints17(kp, layout)
                n = min(len(world), len(kp17))
                joints = cam.world_to_camera(world[:n])
                joints = joints - joints[:, :1]
                out.append(H36MSequence(subject=subject, action=action, camera_index=c,
                                        keypoints_2d=kp17[:n].astype(np.float32),
                                        joints_3d_camera=joints.astype(np.float32),
                                        image_size=cam.image_size, fps=FPS, camera=cam))
    return out


def split_h36m(sequences: Sequence[H36MSequence]) -> tuple[list[H36MSequence], list[H36MSequence]]:
    """(train, test) by the standard protocol: S1, S5, S6, S7, S8 / S9, S11."""
    return ([s for s in sequences if s.subject in TRAIN_SUBJECTS],
            [s for s in sequences if s.subject in TEST_SUBJECTS])
