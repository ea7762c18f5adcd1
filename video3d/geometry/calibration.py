"""Multi-camera calibration files -> named :class:`~video3d.geometry.camera.CalibratedCamera` lists.

Two formats are read:

* **Pose2Sim / anipose ``Calib.toml``**: one table per camera with ``name``,
  ``size = [width, height]``, ``matrix`` (3x3 K), ``distortions = [k1, k2, p1, p2]``,
  ``rotation`` (Rodrigues vector, world -> camera, OpenCV) and ``translation``
  (metres, ``X_cam = R X_world + t``). Tables without ``matrix`` (``[metadata]``)
  are skipped. Fisheye cameras are refused (not modelled).
* **Qualisys ``.qca.txt``** (XML): per ``<camera serial=...>`` a ``<transform>``
  with the camera position ``x, y, z`` in **millimetres** (world) and a rotation
  ``r11..r33``, and an ``<intrinsic>`` in sensor sub-pixel units (64 per pixel).
  The rotation rows are the camera axes in a y-up, z-backward camera frame, so
  the OpenCV world -> camera rotation is ``diag(1, -1, -1) @ r`` and
  ``t = -R @ position``. Verified on the shared recording: both files give the
  same camera centres (< 1 mm) and rotations (< 1e-6).

  Distortion: Qualisys coefficients apply to normalised image coordinates and
  are kept as they are. Pose2Sim's converter divides them by 64 as well, so the
  ``.toml`` made from a ``.qca.txt`` has ~64x smaller ``k1, k2, p1, p2``; the
  two readers therefore agree on everything except the distortion.

Also :func:`write_toml` for round trips and tests.
"""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from video3d.errors import UserError
from video3d.geometry.camera import CalibratedCamera

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - python 3.10
    import tomli as tomllib

#: Qualisys stores intrinsics in sub-pixel units: 64 per pixel.
QUALISYS_SUBPIXELS = 64.0

#: Qualisys camera frame (y up, z backward) -> OpenCV camera frame (y down, z forward).
_QUALISYS_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


@dataclass
class NamedCamera:
    """A calibrated camera with the name its calibration file gives it."""

    name: str
    camera: CalibratedCamera


def _vector(value: object, n: int, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be {n} finite numbers")
    return arr


def _toml_camera(key: str, table: dict) -> NamedCamera:
    try:
        if table.get("fisheye", False):
            raise ValueError("fisheye cameras are not supported")
        K = np.asarray(table["matrix"], dtype=np.float64)
        if K.shape != (3, 3) or not np.all(np.isfinite(K)):
            raise ValueError("matrix must be 3x3")
        width, height = _vector(table["size"], 2, "size")
        dist = _vector(table.get("distortions", [0.0, 0.0, 0.0, 0.0]), 4, "distortions")
        rvec = _vector(table["rotation"], 3, "rotation")
        t = _vector(table["translation"], 3, "translation")
    except KeyError as e:
        raise ValueError(f"missing key {e.args[0]!r}") from None
    except (TypeError, ValueError) as e:
        raise ValueError(str(e)) from None
    R = Rotation.from_rotvec(rvec).as_matrix()
    cam = CalibratedCamera(R=R, t=t, fx=float(K[0, 0]), fy=float(K[1, 1]), cx=float(K[0, 2]),
                           cy=float(K[1, 2]), width=int(round(width)), height=int(round(height)),
                           k=(float(dist[0]), float(dist[1])), p=(float(dist[2]), float(dist[3])))
    return NamedCamera(str(table.get("name", key)), cam)


def read_toml(path: str | Path) -> list[NamedCamera]:
    """Read a Pose2Sim/anipose ``Calib.toml``; cameras in file order.

    Raises UserError (one line) for a missing, unparsable or malformed file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise UserError(f"cannot read calibration {path}: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{path}: not valid TOML ({e})") from None
    cameras = []
    for key, table in data.items():
        if not isinstance(table, dict) or "matrix" not in table:
            continue
        try:
            cameras.append(_toml_camera(key, table))
        except ValueError as e:
            raise UserError(f"{path}: camera [{key}]: {e}") from None
    if not cameras:
        raise UserError(f"{path}: no camera tables (with a 'matrix' key) found")
    return cameras


def _qca_camera(node: ET.Element) -> NamedCamera:
    name = node.get("serial") or f"cam{node.get('id', '')}"
    tr, intr = node.find("transform"), node.find("intrinsic")
    fov = node.find("fov_video")
    if tr is None or intr is None or fov is None:
        raise ValueError("needs <transform>, <intrinsic> and <fov_video>")
    try:
        r = np.array([[float(tr.attrib[f"r{i}{j}"]) for j in (1, 2, 3)] for i in (1, 2, 3)])
        position = np.array([float(tr.attrib[k]) for k in "xyz"]) / 1000.0
        s = QUALISYS_SUBPIXELS
        fx, fy = float(intr.attrib["focalLengthU"]) / s, float(intr.attrib["focalLengthV"]) / s
        cx, cy = float(intr.attrib["centerPointU"]) / s, float(intr.attrib["centerPointV"]) / s
        k = (float(intr.attrib["radialDistortion1"]), float(intr.attrib["radialDistortion2"]))
        p = (float(intr.attrib["tangentalDistortion1"]), float(intr.attrib["tangentalDistortion2"]))
        width = int(fov.attrib["right"]) - int(fov.attrib["left"]) + 1
        height = int(fov.attrib["bottom"]) - int(fov.attrib["top"]) + 1
    except KeyError as e:
        raise ValueError(f"missing attribute {e.args[0]!r}") from None
    except ValueError as e:
        raise ValueError(f"bad number ({e})") from None
    R = _QUALISYS_TO_OPENCV @ r
    if not (np.allclose(R @ R.T, np.eye(3), atol=1e-4) and abs(np.linalg.det(R) - 1.0) < 1e-4):
        raise ValueError("transform r11..r33 is not a rotation")
    cam = CalibratedCamera(R=R, t=-R @ position, fx=fx, fy=fy, cx=cx, cy=cy, width=width, height=height,
                           k=k, p=p)
    return NamedCamera(name, cam)


def read_qca(path: str | Path) -> list[NamedCamera]:
    """Read a Qualisys ``.qca.txt`` calibration (XML, millimetres -> metres); cameras in file order.

    Raises UserError (one line) for a missing, unparsable or malformed file.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except OSError as e:
        raise UserError(f"cannot read calibration {path}: {e.strerror or e}") from None
    except ET.ParseError as e:
        raise UserError(f"{path}: not valid XML ({e})") from None
    cameras = []
    for node in root.iter("camera"):
        if node.get("active", "1") == "0":
            continue
        try:
            cameras.append(_qca_camera(node))
        except ValueError as e:
            raise UserError(f"{path}: camera {node.get('serial')!r}: {e}") from None
    if not cameras:
        raise UserError(f"{path}: no active <camera> elements found")
    return cameras


def read_calibration(path: str | Path) -> list[NamedCamera]:
    """Read ``.toml`` or ``.qca.txt`` by file name."""
    name = Path(path).name.lower()
    if name.endswith(".toml"):
        return read_toml(path)
    if name.endswith(".qca.txt") or name.endswith(".qca"):
        return read_qca(path)
    raise UserError(f"{path}: unknown calibration format (expected Calib.toml or .qca.txt)")


def write_toml(path: str | Path, cameras: list[NamedCamera]) -> None:
    """Write cameras as a Pose2Sim-style ``Calib.toml`` (readable by :func:`read_toml`)."""
    def fmt(values: np.ndarray | list) -> str:
        return "[ " + ", ".join(repr(float(v)) for v in np.asarray(values).ravel()) + "]"

    lines = []
    for named in cameras:
        c = named.camera
        K = c.K
        rvec = Rotation.from_matrix(np.asarray(c.R)).as_rotvec()
        lines += [f"[{named.name}]", f'name = "{named.name}"', f"size = {fmt([c.width, c.height])}",
                  "matrix = [ " + ", ".join(fmt(row) for row in K) + "]",
                  f"distortions = {fmt([*c.k, *c.p])}", f"rotation = {fmt(rvec)}",
                  f"translation = {fmt(c.t)}", "fisheye = false", ""]
    lines += ["[metadata]", "adjusted = false", "error = 0.0", ""]
    Path(path).write_text("\n".join(lines))
