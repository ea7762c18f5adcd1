"""Mocap clips as virtual COCO-17 landmark tracks, with a disk cache.

A clip is a (T, 17, 3) array of COCO landmarks in metres, world z up, at a
fixed rate (50 fps by default, Human3.6M's), made by
:mod:`video3d.mocap.landmarks` from a BVH or ASF/AMC file. Resampling is
linear interpolation of landmark positions over time (clip start at t = 0,
samples at k / fps up to the last source frame).
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from video3d.io.atomic import write_bytes_atomic
from video3d.errors import UserError
from video3d.keypoints import coco_to_h36m
from video3d.mocap.asfamc import read_amc, read_asf
from video3d.formats.bvh import read_bvh
from video3d.mocap.landmarks import MAPPING_VERSION, amc_to_coco, bvh_to_coco

DEFAULT_FPS = 50.0
CLIP_SUFFIXES = (".bvh", ".amc")
_NAME_RE = re.compile(r"^(\d+)_(\d+)")


@dataclass
class MocapClip:
    """One mocap trial.

    name: file stem (e.g. ``"005_03"``); subject: subject id as an int string
    (``"5"``); source: rig key (``"cc_bvh"``, ``"cmu_bvh"``, ``"cmu_asf"``);
    fps: frame rate of ``landmarks_coco`` (T, 17, 3), metres, world z up.
    """

    name: str
    subject: str
    source: str
    fps: float
    landmarks_coco: np.ndarray

    @property
    def joints_h36m(self) -> np.ndarray:
        """H36M-17 joints (T, 17, 3) = ``coco_to_h36m(landmarks_coco)``."""
        return coco_to_h36m(self.landmarks_coco)[0]

    @property
    def num_frames(self) -> int:
        return int(self.landmarks_coco.shape[0])

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return (self.num_frames - 1) / self.fps


def resample(positions: np.ndarray, src_fps: float, dst_fps: float) -> np.ndarray:
    """Linear-in-time resampling of a track.

    positions: (T, ...) sampled at ``src_fps``. Returns (T', ...) sampled at
    k / dst_fps for k = 0 .. floor((T - 1) * dst_fps / src_fps), so the output
    spans the same time and never extrapolates.
    """
    x = np.asarray(positions)
    if src_fps <= 0 or dst_fps <= 0:
        raise ValueError(f"frame rates must be > 0, got {src_fps}, {dst_fps}")
    t_len = x.shape[0]
    if t_len <= 1 or src_fps == dst_fps:
        return x.copy()
    n_out = int(np.floor((t_len - 1) * dst_fps / src_fps + 1e-6)) + 1
    src_idx = np.arange(n_out) * (src_fps / dst_fps)
    i0 = np.minimum(np.floor(src_idx + 1e-6).astype(np.int64), t_len - 1)
    i1 = np.minimum(i0 + 1, t_len - 1)
    w = np.clip(src_idx - i0, 0.0, 1.0).reshape((-1,) + (1,) * (x.ndim - 1))
    return ((1.0 - w) * x[i0] + w * x[i1]).astype(x.dtype, copy=False)


def subject_from_name(name: str) -> str:
    """Subject id from a CMU-style trial name: ``"005_03"`` -> ``"5"``, ``"131_01"`` -> ``"131"``."""
    m = _NAME_RE.match(name)
    if m is None:
        raise ValueError(f"cannot parse a subject from {name!r}: expected SUBJECT_TRIAL, e.g. 05_03")
    return str(int(m.group(1)))


def asf_for_amc(path: str | PathLike) -> Path:
    """The ASF beside an AMC file: ``NN_MM.amc`` -> ``NN.asf`` (or ``NN_MM.asf``)."""
    path = Path(path)
    m = _NAME_RE.match(path.stem)
    candidates = [path.with_suffix(".asf")]
    if m is not None:
        candidates.insert(0, path.with_name(f"{m.group(1)}.asf"))
    for c in candidates:
        if c.is_file():
            return c
    raise UserError(f"{path}: no skeleton file beside it (looked for {', '.join(c.name for c in candidates)})")


def _convert(path: Path) -> tuple[np.ndarray, float, str]:
    """(landmarks (F, 17, 3) at source rate, source fps, source key) of one file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".bvh":
            motion = read_bvh(path)
            landmarks, source = bvh_to_coco(motion)
            return landmarks, motion.fps, source
        if suffix == ".amc":
            skeleton = read_asf(asf_for_amc(path))
            motion = read_amc(path, skeleton)
            return amc_to_coco(motion), motion.fps, "cmu_asf"
    except (ValueError, KeyError) as e:
        raise UserError(f"{path}: {e}" if str(path) not in str(e) else str(e)) from e
    raise UserError(f"{path}: not a mocap clip (expected .bvh or .amc)")


def load_clip(path: str | PathLike, fps: float = DEFAULT_FPS) -> MocapClip:
    """Load a .bvh or .amc (with its .asf beside it) as a clip resampled to ``fps``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such mocap file")
    landmarks, src_fps, source = _convert(path)
    landmarks = resample(landmarks, src_fps, fps).astype(np.float32)
    try:
        subject = subject_from_name(path.stem)
    except ValueError:
        subject = path.stem
    return MocapClip(name=path.stem, subject=subject, source=source, fps=float(fps),
                     landmarks_coco=landmarks)


def default_cache_dir() -> Path:
    """``$VIDEO3D_CACHE/mocap`` if set, else ``~/.cache/video3d/mocap``."""
    env = os.environ.get("VIDEO3D_CACHE")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "video3d"
    return base / "mocap"


def default_mocap_root() -> Path | None:
    """``$VIDEO3D_MOCAP`` if set, else ``../shared/data/mocap`` beside the repository; None if absent."""
    env = os.environ.get("VIDEO3D_MOCAP")
    if env:
        p = Path(env).expanduser()
        return p if p.is_dir() else None
    p = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "mocap"
    return p if p.is_dir() else None


def find_clip_files(root: str | PathLike) -> list[Path]:
    """All .bvh and .amc files under ``root`` (recursive, sorted)."""
    root = Path(root)
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in CLIP_SUFFIXES)


def cache_key(path: Path, fps: float) -> str:
    """Hex key of a clip's converted form: path, size, mtime (and its ASF's), mapping version, fps."""
    parts = [str(path.resolve()), f"v{MAPPING_VERSION}", f"fps{fps:.6f}"]
    files = [path]
    if path.suffix.lower() == ".amc":
        files.append(asf_for_amc(path))
    for f in files:
        st = f.stat()
        parts += [str(st.st_size), str(st.st_mtime_ns)]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()[:20]


def _read_cached(file: Path) -> MocapClip | None:
    try:
        with np.load(file, allow_pickle=False) as z:
            return MocapClip(name=str(z["name"]), subject=str(z["subject"]), source=str(z["source"]),
                             fps=float(z["fps"]), landmarks_coco=z["landmarks_coco"].astype(np.float32))
    except (OSError, KeyError, ValueError):
        return None


def _write_cached(file: Path, clip: MocapClip) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, name=clip.name, subject=clip.subject, source=clip.source,
             fps=np.float64(clip.fps), landmarks_coco=clip.landmarks_coco)
    write_bytes_atomic(file, buf.getvalue())


def load_mocap_dir(root: str | PathLike, cache_dir: str | PathLike | None = None,
                   fps: float = DEFAULT_FPS, use_cache: bool = True) -> list[MocapClip]:
    """Load every clip under ``root`` (e.g. the layout cmu/, cmu-asfamc/, cmu-bvh-raw/).

    Converted clips are cached as .npz files in ``cache_dir`` (default
    :func:`default_cache_dir`), keyed by :func:`cache_key`, so a changed file or
    mapping version is converted again. AMC files without an ASF are skipped
    with a warning. Returns clips sorted by path.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: mocap directory not found")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    clips: list[MocapClip] = []
    for path in find_clip_files(root):
        if path.suffix.lower() == ".amc":
            try:
                asf_for_amc(path)
            except UserError as e:
                warnings.warn(f"skipping {e}", stacklevel=2)
                continue
        file = cache / f"{path.stem}-{cache_key(path, fps)}.npz" if use_cache else None
        clip = _read_cached(file) if file is not None and file.is_file() else None
        if clip is None:
            clip = load_clip(path, fps)
            if file is not None:
                _write_cached(file, clip)
        clips.append(clip)
    return clips


def split_by_subject(clips: Iterable[MocapClip], val_subjects: Sequence[str | int]
                     ) -> tuple[list[MocapClip], list[MocapClip]]:
    """(train, val): clips whose subject is in ``val_subjects`` go to val.

    Subjects compare as int strings, so ``5``, ``"5"`` and ``"005"`` are the same.
    """
    def norm(s: str | int) -> str:
        s = str(s).strip()
        return str(int(s)) if s.isdigit() else s

    val = {norm(s) for s in val_subjects}
    train_out, val_out = [], []
    for c in clips:
        (val_out if norm(c.subject) in val else train_out).append(c)
    return train_out, val_out
