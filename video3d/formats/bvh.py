"""Biovision hierarchy (BVH) files: reading, writing and forward kinematics.

A BVH file has a HIERARCHY section (a tree of joints, each with an OFFSET from
its parent and a list of CHANNELS) and a MOTION section (one line of channel
values per frame, joints in file order, each joint's channels in the order it
lists them).

Conventions used here (the common reading of the format):

* Rotation channels are Euler angles in degrees, intrinsic, in the listed
  order: ``CHANNELS 3 Zrotation Yrotation Xrotation`` means
  ``R = Rz @ Ry @ Rx`` (column vectors, rotating child offsets into the
  parent's frame).
* Position channels are added to the joint's OFFSET (the root of most files
  has OFFSET 0 0 0, so there the channels are the absolute position).
* ``End Site`` blocks become joints named ``f"{parent_name}_End"`` with no
  channels (a second end site under the same joint gets ``_End1`` etc.).
* Joints are stored in file (depth-first) order, so ``parents[j] < j``.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

_AXES = "XYZ"
_CHANNEL_RE = re.compile(r"^([XYZ])(position|rotation)$", re.IGNORECASE)


@dataclass
class BvhSkeleton:
    """A BVH joint tree.

    names: J joint names (end sites included as ``<parent>_End``).
    parents: J parent indices, -1 for a root; ``parents[j] < j``.
    offsets: (J, 3) offset of each joint from its parent, file units.
    channels: J lists of channel names as written in the file
        (e.g. ``["Xposition", "Yposition", "Zposition", "Zrotation", ...]``).
    """

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[list[str]] = field(default_factory=list)

    @property
    def num_channels(self) -> int:
        """Total number of motion channels (columns of the motion matrix)."""
        return sum(len(c) for c in self.channels)

    def index(self, name: str) -> int:
        """Index of the joint called ``name`` (KeyError if absent)."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"no joint named {name!r} in BVH skeleton") from None

    def channel_slices(self) -> list[slice]:
        """Column range of each joint's channels in the motion matrix."""
        out, start = [], 0
        for ch in self.channels:
            out.append(slice(start, start + len(ch)))
            start += len(ch)
        return out


@dataclass
class BvhMotion:
    """A skeleton plus per-frame channel values.

    frame_time: seconds per frame.
    motion: (F, C) channel values, C = ``skeleton.num_channels``; angles in
        degrees, positions in file units.
    """

    skeleton: BvhSkeleton
    frame_time: float
    motion: np.ndarray

    @property
    def fps(self) -> float:
        """Frames per second, ``1 / frame_time``."""
        return 1.0 / self.frame_time

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])


# --------------------------------------------------------------------------- reading

def _parse_hierarchy(tokens: list[str], where: str) -> BvhSkeleton:
    """Parse the whitespace tokens of a HIERARCHY section (keyword excluded)."""
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    stack: list[int] = []          # open joint blocks
    end_sites: set[int] = set()
    pending: int | None = None     # joint declared, waiting for its "{"
    i, n = 0, len(tokens)

    def need(count: int, what: str) -> list[str]:
        if i + count > n:
            raise ValueError(f"{where}: file ends inside {what}")
        return tokens[i:i + count]

    while i < n:
        tok = tokens[i]
        key = tok.upper()
        if key in ("ROOT", "JOINT"):
            if pending is not None:
                raise ValueError(f"{where}: expected '{{' after joint {names[pending]!r}, got {tok!r}")
            if key == "JOINT" and not stack:
                raise ValueError(f"{where}: JOINT outside of any ROOT block")
            if key == "ROOT" and stack:
                raise ValueError(f"{where}: ROOT inside another joint block")
            if stack and stack[-1] in end_sites:
                raise ValueError(f"{where}: JOINT inside an End Site block")
            name = need(2, f"{tok} declaration")[1]
            if name in ("{", "}"):
                raise ValueError(f"{where}: {tok} without a name")
            names.append(name)
            parents.append(stack[-1] if key == "JOINT" else -1)
            offsets.append([np.nan, np.nan, np.nan])
            channels.append([])
            pending = len(names) - 1
            i += 2
        elif key == "END":
            if not stack or stack[-1] in end_sites:
                raise ValueError(f"{where}: End Site outside of a joint block")
            if pending is not None:
                raise ValueError(f"{where}: expected '{{' after joint {names[pending]!r}, got {tok!r}")
            if need(2, "End Site")[1].upper() != "SITE":
                raise ValueError(f"{where}: expected 'End Site', got 'End {tokens[i + 1]}'")
            parent = stack[-1]
            base = f"{names[parent]}_End"
            name, k = base, 1
            while name in names:
                name, k = f"{base}{k}", k + 1
            names.append(name)
            parents.append(parent)
            offsets.append([np.nan, np.nan, np.nan])
            channels.append([])
            pending = len(names) - 1
            end_sites.add(pending)
            i += 2
        elif tok == "{":
            if pending is None:
                raise ValueError(f"{where}: unexpected '{{'")
            stack.append(pending)
            pending = None
            i += 1
        elif tok == "}":
            if not stack or pending is not None:
                raise ValueError(f"{where}: unbalanced '}}'")
            j = stack.pop()
            if np.isnan(offsets[j][0]):
                raise ValueError(f"{where}: joint {names[j]!r} has no OFFSET")
            i += 1
        elif key == "OFFSET":
            if not stack or pending is not None:
                raise ValueError(f"{where}: OFFSET outside of a joint block")
            vals = need(4, "OFFSET")[1:]
            try:
                offsets[stack[-1]] = [float(v) for v in vals]
            except ValueError:
                raise ValueError(f"{where}: bad OFFSET values {vals} for joint {names[stack[-1]]!r}") from None
            i += 4
        elif key == "CHANNELS":
            if not stack or pending is not None:
                raise ValueError(f"{where}: CHANNELS outside of a joint block")
            j = stack[-1]
            if j in end_sites:
                raise ValueError(f"{where}: End Site of {names[parents[j]]!r} has CHANNELS")
            try:
                count = int(need(2, "CHANNELS")[1])
            except ValueError:
                raise ValueError(f"{where}: bad channel count {tokens[i + 1]!r} for joint {names[j]!r}") from None
            chans = need(2 + count, "CHANNELS")[2:]
            for c in chans:
                if not _CHANNEL_RE.match(c):
                    raise ValueError(f"{where}: unknown channel {c!r} for joint {names[j]!r}")
            channels[j] = list(chans)
            i += 2 + count
        else:
            raise ValueError(f"{where}: unexpected token {tok!r} in HIERARCHY")
    if stack or pending is not None:
        raise ValueError(f"{where}: HIERARCHY ends with unclosed joint blocks")
    if not names:
        raise ValueError(f"{where}: HIERARCHY has no ROOT")
    return BvhSkeleton(names=names, parents=parents,
                       offsets=np.asarray(offsets, np.float64).reshape(-1, 3), channels=channels)


def parse_bvh(text: str, where: str = "<string>") -> BvhMotion:
    """Parse BVH text (see :func:`read_bvh`). ``where`` names the source in errors."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    m = re.search(r"^\s*MOTION\s*$", text, re.MULTILINE | re.IGNORECASE)
    if m is None:
        raise ValueError(f"{where}: not a BVH file (no MOTION section)")
    head, body = text[:m.start()], text[m.end():]
    tokens = head.split()
    if not tokens or tokens[0].upper() != "HIERARCHY":
        raise ValueError(f"{where}: not a BVH file (must start with HIERARCHY)")
    skeleton = _parse_hierarchy(tokens[1:], where)

    fm = re.match(r"\s*Frames\s*:\s*(\S+)\s*\n\s*Frame\s+Time\s*:\s*(\S+)[^\S\n]*(?:\n|$)",
                  body, re.IGNORECASE)
    if fm is None:
        raise ValueError(f"{where}: MOTION section needs 'Frames: N' and 'Frame Time: T' lines")
    try:
        frames = int(fm.group(1))
        frame_time = float(fm.group(2))
    except ValueError:
        raise ValueError(f"{where}: bad 'Frames'/'Frame Time' values "
                         f"{fm.group(1)!r}/{fm.group(2)!r}") from None
    if frames < 0 or not frame_time > 0:
        raise ValueError(f"{where}: need Frames >= 0 and Frame Time > 0, got {frames}, {frame_time}")
    values = body[fm.end():].split()
    nch = skeleton.num_channels
    if len(values) != frames * nch:
        raise ValueError(f"{where}: MOTION has {len(values)} values, expected "
                         f"{frames} frames x {nch} channels = {frames * nch}")
    try:
        data = np.array(values, dtype=np.float64).reshape(frames, nch)
    except ValueError:
        raise ValueError(f"{where}: MOTION contains non-numeric values") from None
    return BvhMotion(skeleton=skeleton, frame_time=frame_time, motion=data)


def read_bvh(path: str | PathLike) -> BvhMotion:
    """Read a BVH file.

    Any hierarchy and any per-joint channel order are accepted (6-channel
    roots, position channels on non-root joints, several roots). Tolerant of
    any whitespace and CRLF line ends. Raises ValueError on malformed files.
    """
    path = Path(path)
    return parse_bvh(path.read_text(encoding="utf-8", errors="replace"), where=str(path))


# --------------------------------------------------------------------------- writing

def format_bvh(motion: BvhMotion, precision: int = 6) -> str:
    """BVH text for ``motion`` (see :func:`write_bvh`)."""
    sk = motion.skeleton
    nj = len(sk.names)
    if len(sk.parents) != nj or len(sk.channels) != nj or np.shape(sk.offsets) != (nj, 3):
        raise ValueError("BvhSkeleton fields have inconsistent lengths")
    if motion.motion.ndim != 2 or motion.motion.shape[1] != sk.num_channels:
        raise ValueError(f"motion has shape {motion.motion.shape}, expected (F, {sk.num_channels})")
    children: list[list[int]] = [[] for _ in range(nj)]
    for j, p in enumerate(sk.parents):
        if p >= 0:
            children[p].append(j)
    slices = sk.channel_slices()
    columns: list[int] = []
    lines = ["HIERARCHY"]

    def is_end_site(j: int) -> bool:
        p = sk.parents[j]
        return (p >= 0 and not sk.channels[j] and not children[j]
                and re.fullmatch(re.escape(sk.names[p]) + r"_End\d*", sk.names[j]) is not None)

    def emit(j: int, depth: int) -> None:
        pad = "\t" * depth
        off = " ".join(f"{v:.{precision}f}" for v in sk.offsets[j])
        if is_end_site(j):
            lines.extend([f"{pad}End Site", f"{pad}{{", f"{pad}\tOFFSET {off}", f"{pad}}}"])
            return
        lines.append(f"{pad}{'ROOT' if sk.parents[j] < 0 else 'JOINT'} {sk.names[j]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}\tOFFSET {off}")
        lines.append(f"{pad}\tCHANNELS {len(sk.channels[j])} {' '.join(sk.channels[j])}".rstrip())
        columns.extend(range(slices[j].start, slices[j].stop))
        for c in children[j]:
            emit(c, depth + 1)
        lines.append(f"{pad}}}")

    for r in (j for j in range(nj) if sk.parents[j] < 0):
        emit(r, 0)
    lines += ["MOTION", f"Frames: {motion.motion.shape[0]}", f"Frame Time: {motion.frame_time:.10f}"]
    buf = io.StringIO()
    if motion.motion.shape[0] and columns:
        np.savetxt(buf, motion.motion[:, columns], fmt=f"%.{precision}f", delimiter=" ")
    elif motion.motion.shape[0]:
        buf.write("\n" * motion.motion.shape[0])
    return "\n".join(lines) + "\n" + buf.getvalue()


def write_bvh(path: str | PathLike, motion: BvhMotion, precision: int = 6) -> None:
    """Write ``motion`` as a BVH file (tab-indented, ``precision`` decimals).

    Joints without channels or children named ``<parent>_End`` are written as
    ``End Site`` blocks; joints are written depth-first from each root, and the
    motion columns are reordered to match if needed.
    """
    Path(path).write_text(format_bvh(motion, precision), encoding="utf-8")


# --------------------------------------------------------------------------- kinematics

def joint_rotations(channels: list[str], values: np.ndarray) -> np.ndarray:
    """Local rotation matrices of one joint.

    channels: the joint's channel names; values: (F, len(channels)) channel
    values (degrees for rotations). Rotation channels are composed intrinsically
    in listed order (R = R_first @ R_second @ R_third).
    Returns (F, 3, 3); identity when the joint has no rotation channels.
    """
    f = values.shape[0]
    rot_cols = [k for k, c in enumerate(channels) if c[1:].lower() == "rotation"]
    out = np.broadcast_to(np.eye(3), (f, 3, 3)).copy()
    for start in range(0, len(rot_cols), 3):   # >3 rotation channels: compose in groups
        cols = rot_cols[start:start + 3]
        seq = "".join(channels[k][0].upper() for k in cols)
        r = Rotation.from_euler(seq, values[:, cols], degrees=True).as_matrix()
        out = out @ r if start else r
    return out


def joint_translations(channels: list[str], values: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Local translations of one joint: OFFSET plus its position channels.

    values: (F, len(channels)); offset: (3,). Returns (F, 3).
    """
    out = np.broadcast_to(np.asarray(offset, np.float64), (values.shape[0], 3)).copy()
    for k, c in enumerate(channels):
        if c[1:].lower() == "position":
            out[:, _AXES.index(c[0].upper())] += values[:, k]
    return out


def global_transforms(motion: BvhMotion, joints: list[str] | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Global positions and orientations of joints, vectorised over frames.

    Returns (positions (F, K, 3) in file units, rotations (F, K, 3, 3)) for all
    K = J joints, or for the named ``joints`` only (then only their ancestors
    are evaluated). ``rotations[f, k]`` maps the joint's local (rest) axes to
    world axes: a child offset ``o`` lands at ``position + rotation @ o``.
    """
    sk = motion.skeleton
    nj = len(sk.names)
    wanted = list(range(nj)) if joints is None else [sk.index(n) for n in joints]
    needed = np.zeros(nj, bool)
    for j in wanted:
        while j >= 0 and not needed[j]:
            needed[j] = True
            j = sk.parents[j]
    f = motion.motion.shape[0]
    slices = sk.channel_slices()
    rot = np.full((f, nj, 3, 3), np.nan)
    pos = np.full((f, nj, 3), np.nan)
    for j in range(nj):                       # parents come before children
        if not needed[j]:
            continue
        vals = motion.motion[:, slices[j]]
        local_r = joint_rotations(sk.channels[j], vals)
        local_t = joint_translations(sk.channels[j], vals, sk.offsets[j])
        p = sk.parents[j]
        if p < 0:
            pos[:, j] = local_t
            rot[:, j] = local_r
        else:
            if p >= j:
                raise ValueError("BVH skeleton joints must be ordered parents first")
            pos[:, j] = pos[:, p] + np.einsum("fij,fj->fi", rot[:, p], local_t)
            rot[:, j] = rot[:, p] @ local_r
    return pos[:, wanted], rot[:, wanted]


def forward_kinematics(motion: BvhMotion, joints: list[str] | None = None) -> np.ndarray:
    """Global joint positions, vectorised over frames.

    Returns (F, J, 3) positions in file units for every joint of the skeleton
    (end sites included), or (F, len(joints), 3) for the named ``joints`` only
    (then only their ancestors are evaluated, which is faster on big rigs).
    """
    return global_transforms(motion, joints)[0]
