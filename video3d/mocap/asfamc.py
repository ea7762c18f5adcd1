"""Acclaim skeleton (ASF) and motion (AMC) files, as used by the CMU database.

ASF describes bones, each with a rest ``direction`` (unit vector in the world
frame), a ``length``, a local coordinate system ``axis a1 a2 a3 ORDER`` and the
rotational degrees of freedom ``dof`` it animates. AMC lists, frame by frame,
the root's values (in ``:root order``) and each bone's dof values (in its
``dof`` order).

Forward kinematics, column vectors (the Acclaim definition rewritten)::

    C_b  = axis rotation of bone b (Euler, extrinsic, in the axis order)
    M_b  = motion rotation of bone b (extrinsic, in dof order)
    G_b  = G_parent @ C_b @ M_b @ C_b^-1
    end_b = end_parent + length_b * G_b @ direction_b

The root has ``G_root = C_root @ M_root @ C_root^-1`` with ``C_root`` from
``:root orientation`` (in the ``axis`` order) and sits at ``position + T``.
"Extrinsic in the listed order" means the first listed axis is applied first:
``dof rx ry rz`` gives ``M = Rz @ Ry @ Rx``.

Units: ``:units length L`` means one file unit is ``1/L`` inches, i.e.
``0.0254 / L`` metres (CMU: L = 0.45, 1 unit = 0.05644 m). Angles follow
``:units angle`` (``deg`` or ``rad``); an AMC ``:RADIANS`` line overrides it.
The world frame of CMU files is y up.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

INCH_M = 0.0254
_ROT_DOFS = ("rx", "ry", "rz")
_TRANS_DOFS = ("tx", "ty", "tz")


@dataclass
class AsfBone:
    """One ASF bone.

    direction: (3,) unit vector, rest pose, world frame.
    length: in file units.
    axis: (3,) angles (file angle unit) of the bone's local frame.
    axis_order: e.g. ``"XYZ"``; dofs: e.g. ``["rx", "ry", "rz"]`` (may be empty).
    """

    name: str
    direction: np.ndarray
    length: float
    axis: np.ndarray
    axis_order: str = "XYZ"
    dofs: list[str] = field(default_factory=list)


@dataclass
class AsfSkeleton:
    """A parsed ASF file.

    bones: in topological order (every parent before its children).
    parents: index of each bone's parent in ``bones``; -1 = attached to the root.
    root_order: AMC root value order, e.g. ``["tx","ty","tz","rx","ry","rz"]``.
    """

    name: str
    length_unit: float
    angle_unit: str
    root_order: list[str]
    root_axis_order: str
    root_position: np.ndarray
    root_orientation: np.ndarray
    bones: list[AsfBone]
    parents: list[int]

    @property
    def metres_per_unit(self) -> float:
        """Metres per file length unit: ``0.0254 / length_unit``."""
        return INCH_M / self.length_unit

    @property
    def joint_names(self) -> list[str]:
        """Names of the FK output joints: ``"root"`` then each bone (its distal end)."""
        return ["root"] + [b.name for b in self.bones]

    def bone_index(self, name: str) -> int:
        for k, b in enumerate(self.bones):
            if b.name == name:
                return k
        raise KeyError(f"no bone named {name!r} in ASF skeleton {self.name!r}")


@dataclass
class AmcMotion:
    """AMC motion bound to its skeleton.

    root: (F, len(root_order)) root values; bones: name -> (F, len(dofs)).
    Angles in the skeleton's angle unit (``angle_unit`` here after AMC overrides).
    fps: AMC files do not store it; CMU captures are 120 fps.
    """

    skeleton: AsfSkeleton
    root: np.ndarray
    bones: dict[str, np.ndarray]
    fps: float = 120.0
    angle_unit: str = "deg"

    @property
    def num_frames(self) -> int:
        return int(self.root.shape[0])


# --------------------------------------------------------------------------- parsing

def _sections(text: str) -> dict[str, list[list[str]]]:
    """Split ASF text into ``:keyword`` sections of tokenised, comment-free lines."""
    out: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for raw in text.replace("\r", "\n").split("\n"):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(":"):
            toks = line.split()
            key = toks[0][1:].lower()
            current = out.setdefault(key, [])
            if len(toks) > 1:
                current.append(toks[1:])
        elif current is not None:
            current.append(line.split())
    return out


def _floats(tokens: list[str], n: int, what: str, where: str) -> np.ndarray:
    try:
        vals = [float(t) for t in tokens[:n]]
    except ValueError:
        raise ValueError(f"{where}: bad numbers in {what}: {' '.join(tokens)}") from None
    if len(vals) != n:
        raise ValueError(f"{where}: {what} needs {n} numbers, got {' '.join(tokens)}")
    return np.asarray(vals, np.float64)


def _parse_bones(lines: list[list[str]], where: str) -> list[AsfBone]:
    bones: list[AsfBone] = []
    cur: dict | None = None
    for toks in lines:
        key = toks[0].lower()
        if key == "begin":
            cur = {"dofs": [], "axis": np.zeros(3), "axis_order": "XYZ"}
        elif key == "end":
            if cur is None:
                raise ValueError(f"{where}: 'end' without 'begin' in :bonedata")
            for req in ("name", "direction", "length"):
                if req not in cur:
                    raise ValueError(f"{where}: bone {cur.get('name', '?')!r} has no {req}")
            d = cur["direction"]
            norm = np.linalg.norm(d)
            bones.append(AsfBone(name=cur["name"], direction=d / norm if norm > 0 else d,
                                 length=cur["length"], axis=cur["axis"],
                                 axis_order=cur["axis_order"], dofs=cur["dofs"]))
            cur = None
        elif cur is None:
            continue
        elif key == "name":
            cur["name"] = toks[1]
        elif key == "direction":
            cur["direction"] = _floats(toks[1:], 3, "direction", where)
        elif key == "length":
            cur["length"] = float(_floats(toks[1:], 1, "length", where)[0])
        elif key == "axis":
            cur["axis"] = _floats(toks[1:], 3, "axis", where)
            order = toks[4].upper() if len(toks) > 4 else "XYZ"
            if sorted(order) != ["X", "Y", "Z"]:
                raise ValueError(f"{where}: bad axis order {order!r} for bone {cur.get('name')!r}")
            cur["axis_order"] = order
        elif key == "dof":
            dofs = [t.lower() for t in toks[1:]]
            for d in dofs:
                if d not in _ROT_DOFS + _TRANS_DOFS + ("l",):
                    raise ValueError(f"{where}: unknown dof {d!r} for bone {cur.get('name')!r}")
            cur["dofs"] = dofs
        # id, limits (and their continuation lines), bodymass, cofmass: ignored
    if cur is not None:
        raise ValueError(f"{where}: :bonedata ends inside a bone block")
    return bones


def parse_asf(text: str, where: str = "<string>") -> AsfSkeleton:
    """Parse ASF text (see :func:`read_asf`)."""
    sec = _sections(text)
    for req in ("root", "bonedata", "hierarchy"):
        if req not in sec:
            raise ValueError(f"{where}: not an ASF file (no :{req} section)")
    units = {t[0].lower(): t[1] for t in sec.get("units", []) if len(t) >= 2}
    try:
        length_unit = float(units.get("length", 1.0))
    except ValueError:
        raise ValueError(f"{where}: bad :units length {units['length']!r}") from None
    if not length_unit > 0:
        raise ValueError(f"{where}: :units length must be > 0")
    angle_unit = units.get("angle", "deg").lower()
    if angle_unit not in ("deg", "rad"):
        raise ValueError(f"{where}: :units angle must be deg or rad, got {angle_unit!r}")

    root = {t[0].lower(): t[1:] for t in sec["root"] if t}
    root_order = [t.lower() for t in root.get("order", ["tx", "ty", "tz", "rx", "ry", "rz"])]
    for t in root_order:
        if t not in _ROT_DOFS + _TRANS_DOFS:
            raise ValueError(f"{where}: bad :root order entry {t!r}")
    root_axis = (root.get("axis", ["XYZ"]) or ["XYZ"])[0].upper()
    if sorted(root_axis) != ["X", "Y", "Z"]:
        raise ValueError(f"{where}: bad :root axis {root_axis!r}")
    root_pos = _floats(root.get("position", ["0", "0", "0"]), 3, ":root position", where)
    root_ori = _floats(root.get("orientation", ["0", "0", "0"]), 3, ":root orientation", where)

    bones = _parse_bones(sec["bonedata"], where)
    by_name = {b.name: b for b in bones}
    if len(by_name) != len(bones):
        raise ValueError(f"{where}: duplicate bone names")
    children: dict[str, list[str]] = {}
    for toks in sec["hierarchy"]:
        if toks[0].lower() in ("begin", "end"):
            continue
        parent, kids = toks[0], toks[1:]
        for k in kids:
            if k not in by_name:
                raise ValueError(f"{where}: :hierarchy names unknown bone {k!r}")
        if parent != "root" and parent not in by_name:
            raise ValueError(f"{where}: :hierarchy names unknown bone {parent!r}")
        children.setdefault(parent, []).extend(kids)
    ordered: list[AsfBone] = []
    parents: list[int] = []
    stack = [(k, -1) for k in reversed(children.get("root", []))]
    while stack:                                   # depth-first, parents first
        name, p = stack.pop()
        if any(b.name == name for b in ordered):
            raise ValueError(f"{where}: bone {name!r} appears twice in :hierarchy")
        ordered.append(by_name[name])
        parents.append(p)
        idx = len(ordered) - 1
        stack.extend((k, idx) for k in reversed(children.get(name, [])))
    if len(ordered) != len(bones):
        missing = sorted(set(by_name) - {b.name for b in ordered})
        raise ValueError(f"{where}: bones not reachable from root: {', '.join(missing)}")
    name_tok = sec.get("name", [["?"]])
    return AsfSkeleton(name=name_tok[0][0] if name_tok and name_tok[0] else "?",
                       length_unit=length_unit, angle_unit=angle_unit, root_order=root_order,
                       root_axis_order=root_axis, root_position=root_pos,
                       root_orientation=root_ori, bones=ordered, parents=parents)


def read_asf(path: str | PathLike) -> AsfSkeleton:
    """Read an ASF skeleton file. Raises ValueError on malformed files."""
    path = Path(path)
    return parse_asf(path.read_text(encoding="utf-8", errors="replace"), where=str(path))


def parse_amc(text: str, skeleton: AsfSkeleton, where: str = "<string>", fps: float = 120.0
              ) -> AmcMotion:
    """Parse AMC text for ``skeleton`` (see :func:`read_amc`)."""
    angle_unit = skeleton.angle_unit
    dofs = {b.name: len(b.dofs) for b in skeleton.bones}
    dofs["root"] = len(skeleton.root_order)
    values: dict[str, list[str]] = {name: [] for name in dofs}
    required = {name for name, n in dofs.items() if n > 0}
    frames = 0
    seen: set[str] = set()

    def close_frame() -> None:
        if frames and not required <= seen:
            missing = sorted(required - seen)
            raise ValueError(f"{where}: frame {frames} lacks {', '.join(missing[:5])}")

    for raw in text.replace("\r", "\n").split("\n"):
        line = raw.strip()
        if not line or line[0] == "#":
            continue
        if line[0] == ":":
            key = line.split()[0].upper()
            if key == ":RADIANS":
                angle_unit = "rad"
            elif key == ":DEGREES":
                angle_unit = "deg"
            continue
        toks = line.split()
        if len(toks) == 1 and toks[0].isdigit():
            close_frame()
            frames += 1
            seen = set()
            continue
        name = toks[0]
        if frames == 0:
            raise ValueError(f"{where}: bone values before the first frame number")
        if name not in values:
            raise ValueError(f"{where}: frame {frames} names unknown bone {name!r}")
        if len(toks) - 1 != dofs[name]:
            raise ValueError(f"{where}: frame {frames}: {name} has {len(toks) - 1} values, "
                             f"its dof list needs {dofs[name]}")
        if name in seen:
            raise ValueError(f"{where}: frame {frames} gives {name!r} twice")
        seen.add(name)
        values[name].extend(toks[1:])
    close_frame()
    if frames == 0:
        raise ValueError(f"{where}: no frames in AMC file")
    try:
        arrays = {n: np.array(v, np.float64).reshape(frames, dofs[n]) for n, v in values.items()}
    except ValueError:
        raise ValueError(f"{where}: non-numeric values in AMC file") from None
    root = arrays.pop("root")
    return AmcMotion(skeleton=skeleton, root=root, bones=arrays, fps=fps, angle_unit=angle_unit)


def read_amc(path: str | PathLike, skeleton: AsfSkeleton, fps: float = 120.0) -> AmcMotion:
    """Read an AMC motion file for ``skeleton`` (every frame must give every bone with dofs).

    fps: capture rate (not stored in AMC; CMU = 120). Raises ValueError on malformed files.
    """
    path = Path(path)
    return parse_amc(path.read_text(encoding="utf-8", errors="replace"), skeleton,
                     where=str(path), fps=fps)


# --------------------------------------------------------------------------- kinematics

def _extrinsic(axes: str, angles: np.ndarray, degrees: bool) -> np.ndarray:
    """Rotation matrices, first listed axis applied first. angles: (..., len(axes)) -> (..., 3, 3)."""
    if not axes:
        return np.broadcast_to(np.eye(3), angles.shape[:-1] + (3, 3)).copy()
    return Rotation.from_euler(axes.lower(), angles.reshape(-1, len(axes)), degrees=degrees
                               ).as_matrix().reshape(angles.shape[:-1] + (3, 3))


def global_transforms(motion: AmcMotion, metres: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Global joint positions and bone orientations.

    Returns (positions (F, 1 + B, 3), rotations (F, 1 + B, 3, 3)) in the order
    of ``skeleton.joint_names``: the root, then every bone. Positions are the
    root position and each bone's distal end, in metres (file units if
    ``metres`` is False), in the file's world frame (y up for CMU).
    ``rotations[:, k]`` is ``G`` of the bone: it maps rest-pose world vectors
    attached to the bone to their current world direction.
    """
    sk = motion.skeleton
    deg = motion.angle_unit == "deg"
    f = motion.num_frames
    order = sk.root_order
    t = np.zeros((f, 3))
    for k, name in enumerate(order):
        if name in _TRANS_DOFS:
            t[:, _TRANS_DOFS.index(name)] = motion.root[:, k]
    rcols = [k for k, name in enumerate(order) if name in _ROT_DOFS]
    m_root = _extrinsic("".join(order[k][1] for k in rcols), motion.root[:, rcols], deg)
    c_root = _extrinsic(sk.root_axis_order, sk.root_orientation[None], deg)[0]
    g_root = c_root @ m_root @ c_root.T
    out = np.empty((f, 1 + len(sk.bones), 3))
    out[:, 0] = sk.root_position + t
    rots: list[np.ndarray] = [g_root]
    for b, (bone, p) in enumerate(zip(sk.bones, sk.parents)):
        c = _extrinsic(bone.axis_order, bone.axis[None], deg)[0]
        vals = motion.bones.get(bone.name, np.zeros((f, 0)))
        rc = [k for k, d in enumerate(bone.dofs) if d in _ROT_DOFS]
        m = _extrinsic("".join(bone.dofs[k][1] for k in rc), vals[:, rc], deg)
        g_parent = rots[p + 1]
        g = g_parent @ (c @ m @ c.T)
        rots.append(g)
        length = np.full(f, bone.length)
        local_t = np.zeros((f, 3))
        for k, d in enumerate(bone.dofs):
            if d == "l":
                length = length + vals[:, k]
            elif d in _TRANS_DOFS:        # translation along the bone's local axes
                local_t[:, _TRANS_DOFS.index(d)] = vals[:, k]
        start = out[:, 0] if p < 0 else out[:, 1 + p]
        vec = length[:, None] * bone.direction + np.einsum("ij,fj->fi", c, local_t)
        out[:, 1 + b] = start + np.einsum("fij,fj->fi", g, vec)
    return (out * sk.metres_per_unit if metres else out), np.stack(rots, axis=1)


def forward_kinematics(motion: AmcMotion, metres: bool = True) -> np.ndarray:
    """Global joint positions (F, 1 + B, 3), see :func:`global_transforms`."""
    return global_transforms(motion, metres)[0]
