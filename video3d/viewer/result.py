"""Read a result folder into the arrays the viewer shows.

A result folder holds ``keypoints.npz`` (issue #3 contract: ``keypoints_3d_world``
(T,17,3) m, ``valid`` (T,), ``scores_2d`` (T,17), ``fps``, ...). Optional keys and
files are used when present:

* ``root_translation`` (T,3) m, camera frame: the pelvis trajectory. When the world
  poses are root-relative (pelvis at x = y = 0) it places them on the floor.
* ``people.npz`` beside it: a leading person axis (``track_ids`` (P,),
  ``keypoints_3d_world`` (P,T,17,3), ``valid`` (P,T), ``scores_2d`` (P,T,17),
  ``root_translation`` (P,T,3)); every person is shown.
* multi-view results: ``scores_2d`` (V,T,17) per view (averaged over views) and
  cameras as ``camera_R`` (V,3,3) world->camera with ``camera_t`` (V,3) (OpenCV,
  ``X_cam = R X_world + t``), named by ``views`` (V,). Their world is the
  calibration's: when its up axis is not +z (say a y-up lab frame), poses and
  cameras are turned so that the people stand upright (:func:`upright_rotation`).
"""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from video3d import skeleton
from video3d.errors import UserError
from video3d.lift.world import CAMERA_TO_WORLD

#: A pelvis further than this (metres) from the vertical axis means the world poses already move.
_ROOT_RELATIVE_TOL = 1e-3


@dataclass
class PersonTrack:
    """One person's poses as drawn.

    poses: (T, 17, 3) metres, world frame (z up), placed on the floor (trajectory added).
    valid: (T,) bool. scores: (T, 17) 2D confidence in [0, 1].
    trajectory: (T, 3) pelvis position per frame (NaN where unknown), or None.
    """

    track_id: int
    poses: np.ndarray
    valid: np.ndarray
    scores: np.ndarray
    trajectory: np.ndarray | None = None


@dataclass
class CameraPose:
    """A calibrated camera in the world frame: centre (3,), rotation R (3, 3) world->camera."""

    name: str
    center: np.ndarray
    R: np.ndarray


@dataclass
class ViewerResult:
    fps: float
    num_frames: int
    image_size: tuple[int, int]
    people: list[PersonTrack]
    cameras: list[CameraPose] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise UserError(f"{path} not found (is {path.parent} a video3d result folder?)")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path}: not a readable .npz file (not a zip archive: corrupt or truncated?)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise UserError(f"{path}: not a readable .npz file ({type(e).__name__}: {e})") from None


def _require(data: dict, key: str, path: Path) -> np.ndarray:
    if key not in data:
        raise UserError(f"{path}: missing key {key!r} (expected a keypoints.npz from video3d)")
    return data[key]


def trajectory_world(root_translation: np.ndarray) -> np.ndarray:
    """Camera-frame pelvis positions (..., 3) -> world axes (x right, y away from the camera, z up)."""
    return np.asarray(root_translation, np.float32) @ CAMERA_TO_WORLD.T.astype(np.float32)


def first_finite(points: np.ndarray) -> np.ndarray | None:
    """The first row of ``points`` (N, 3) without NaN, or None."""
    ok = np.isfinite(points).all(axis=1)
    return points[np.argmax(ok)] if ok.any() else None


def placed_poses(world: np.ndarray, root_translation: np.ndarray | None,
                 origin: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """World poses moved along their trajectory.

    world: (T, 17, 3) metres, z up. root_translation: (T, 3) metres, camera frame, or None.
    origin: (3,) world-axes trajectory point put above the world origin (shared by all
    people of a result so they keep their relative places); default: the first finite one.
    Returns (poses (T, 17, 3), trajectory (T, 3) or None). Root-relative world poses
    (pelvis on the vertical axis) get the trajectory's horizontal motion; poses that
    already move are kept and their pelvis path is the trajectory.
    """
    world = world.astype(np.float32)
    pelvis = world[:, skeleton.ROOT]
    finite = np.isfinite(pelvis).all(axis=1)
    moving = bool(finite.any() and np.abs(pelvis[finite, :2]).max() > _ROOT_RELATIVE_TOL)
    if moving:
        return world, pelvis.copy()
    if root_translation is None:
        return world, None
    tr = trajectory_world(root_translation)
    origin = first_finite(tr) if origin is None else origin
    if origin is None:
        return world, None
    offset = tr - origin
    offset[:, 2] = 0.0  # heights stay per frame (lowest joint on the floor)
    poses = world + offset[:, None, :]
    return poses, poses[:, skeleton.ROOT].copy()


def _scores(data: dict, shape_t: int) -> np.ndarray:
    s = data.get("scores_2d")
    if s is None:
        return np.ones((shape_t, skeleton.NUM_JOINTS), np.float32)
    s = np.asarray(s, np.float32)
    if s.ndim == 3:  # multi-view: (V, T, 17)
        s = np.nanmean(s, axis=0)
    return np.nan_to_num(np.clip(s, 0.0, 1.0))


def _check_poses(poses: np.ndarray, path: Path, lead: tuple[int, ...] = ()) -> None:
    if poses.ndim != len(lead) + 3 or poses.shape[-2:] != (skeleton.NUM_JOINTS, 3):
        want = "(" + "".join(f"{d}," for d in "P"[:len(lead)]) + "T,17,3)"
        raise UserError(f"{path}: keypoints_3d_world must be {want}, got {poses.shape}")


def _cameras(data: dict, up: np.ndarray) -> list[CameraPose]:
    """Cameras of a multi-view result in the viewer's world (``up`` (3, 3) applied to the calibration's)."""
    if "camera_R" not in data or "camera_t" not in data:
        return []
    rs, ts = np.asarray(data["camera_R"], np.float64), np.asarray(data["camera_t"], np.float64)
    names = [str(v) for v in data.get("views", [f"cam{i + 1}" for i in range(len(rs))])]
    return [CameraPose(n, up @ (-r.T @ t), r @ up.T) for n, r, t in zip(names, rs, ts)]


def upright_rotation(poses: np.ndarray) -> np.ndarray:
    """(3, 3) axis-permuting rotation that turns the body's up direction into +z.

    poses: (..., 17, 3). The body's up is the mean of head - mid-ankle over finite frames;
    the world axis (with sign) closest to it is mapped to +z. Identity when that is +z
    already or nothing is finite.
    """
    P = np.asarray(poses, np.float64).reshape(-1, skeleton.NUM_JOINTS, 3)
    v = P[:, skeleton.JOINT_NAMES.index("head")] - 0.5 * (
        P[:, skeleton.JOINT_NAMES.index("left_ankle")] + P[:, skeleton.JOINT_NAMES.index("right_ankle")])
    v = v[np.isfinite(v).all(axis=1)]
    if not len(v):
        return np.eye(3)
    m = v.mean(axis=0)
    axis = int(np.argmax(np.abs(m)))
    if axis == 2 and m[2] > 0:
        return np.eye(3)
    up = np.zeros(3)
    up[axis] = np.sign(m[axis])
    # Two other unit axes complete a right-handed frame whose third row is the old up.
    x = np.zeros(3)
    x[(axis + 1) % 3] = 1.0
    y = np.cross(up, x)
    return np.stack([x, y, up])


def load_result(folder: str | Path) -> ViewerResult:
    """Read ``folder/keypoints.npz`` (and ``people.npz`` when present).

    Raises UserError with one line when the folder or its keypoints are missing or unreadable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"result folder not found: {folder}")
    path = folder / "keypoints.npz"
    data = _load_npz(path)
    world = np.asarray(_require(data, "keypoints_3d_world", path), np.float32)
    _check_poses(world, path)
    t = len(world)
    valid = np.asarray(data.get("valid", np.isfinite(world).all(axis=(1, 2))), bool).reshape(-1)
    if len(valid) != t:
        raise UserError(f"{path}: valid has {len(valid)} frames, keypoints_3d_world {t}")
    try:
        fps = float(_require(data, "fps", path))
    except (TypeError, ValueError):
        raise UserError(f"{path}: fps is not a number") from None
    if not np.isfinite(fps) or fps <= 0:
        raise UserError(f"{path}: fps must be positive, got {fps}")
    size = tuple(int(v) for v in np.asarray(data.get("image_size", (0, 0))).reshape(-1)[:2])
    meta = {k: str(data[k]) for k in ("detector", "lifter", "method") if k in data and data[k].ndim == 0}
    # A calibrated multi-view world may have any up axis; monocular worlds are z-up by construction.
    up = upright_rotation(world) if "camera_R" in data else np.eye(3)
    world = (world @ up.T.astype(np.float32)).astype(np.float32)

    people_path = folder / "people.npz"
    if people_path.is_file():
        pdata = _load_npz(people_path)
        pw = np.asarray(_require(pdata, "keypoints_3d_world", people_path), np.float32)
        _check_poses(pw, people_path, lead=(1,))
        pw = (pw @ up.T.astype(np.float32)).astype(np.float32)
        n = len(pw)
        ids = np.asarray(pdata.get("track_ids", np.arange(n))).reshape(-1)
        pvalid = np.asarray(pdata.get("valid", np.isfinite(pw).all(axis=(2, 3))), bool)
        scores = pdata.get("scores_2d")
        roots = pdata.get("root_translation")
        origin = None if roots is None else first_finite(trajectory_world(roots).reshape(-1, 3))
        people = []
        for i in range(n):
            poses, traj = placed_poses(pw[i], None if roots is None else roots[i], origin)
            sc = _scores({"scores_2d": scores[i]} if scores is not None else {}, pw.shape[1])
            people.append(PersonTrack(int(ids[i]), poses, pvalid[i], sc, traj))
        t = pw.shape[1]
    else:
        poses, traj = placed_poses(world, data.get("root_translation"))
        people = [PersonTrack(0, poses, valid, _scores(data, t), traj)]
    return ViewerResult(fps=fps, num_frames=t, image_size=size, people=people, cameras=_cameras(data, up), meta=meta)
