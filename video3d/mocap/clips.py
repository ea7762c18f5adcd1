"""Mocap clips as virtual COCO-17 landmark tracks, with a disk cache.

A clip is a (T, 17, 3) array of COCO landmarks in metres, world z up, at a
fixed rate (50 fps by default, Human3.6M's), made by
:mod:`video3d.mocap.landmarks` from a BVH, ASF/AMC or expmap file. Resampling
is linear interpolation of landmark positions over time (clip start at t = 0,
samples at k / fps up to the last source frame).

Sources (docs/mocap.md): loose files under the mocap root (``cmu/``,
``cmu-asfamc/``, ``cmu-bvh-raw/``) and the archives beside them
(``cmu-daz.tar.xz``, ``cmu-expmap.tar.xz``, ``reactidle.tar.xz``), extracted
once to the cache (:mod:`video3d.mocap.archives`). :class:`ClipSpec` says how
each file is named and read (frame-rate override, frames to drop).
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
from video3d.mocap.landmarks import MAPPING_VERSION, amc_to_coco, bvh_to_coco, expmap_to_coco

DEFAULT_FPS = 50.0
CLIP_SUFFIXES = (".bvh", ".amc")
_NAME_RE = re.compile(r"^(\d+)_(\d+)")

#: Source keys, and the groups accepted by ``--sources``.
SOURCES = ("cc_bvh", "cmu_bvh", "cmu_asf", "daz_bvh", "cmu_expmap", "reactidle")
SOURCE_GROUPS: dict[str, tuple[str, ...]] = {
    "cmu": ("cc_bvh", "cmu_bvh", "cmu_asf"), "daz": ("daz_bvh",), "expmap": ("cmu_expmap",),
    "reactidle": ("reactidle",), "all": SOURCES, **{s: (s,) for s in SOURCES},
}

#: CMU subjects of the DAZ-friendly folders (salsa is a couple: both in every trial).
DAZ_SUBJECTS = {"salsa": "60+61", "martial": "135", "indian": "94"}
#: Frame rates of the DAZ folders. Every header says 120 fps; salsa was
#: captured at 60 fps: at 120 its steps would come at 3.9 per second and its
#: feet move 2x faster than in any other source (evidence in docs/mocap.md).
DAZ_FPS = {"salsa": 60.0, "martial": 120.0, "indian": 120.0}
#: The expmap files hold no frame rate: 120 fps (walking advances at 1.27 m/s, running at 2.8 m/s).
EXPMAP_FPS = 120.0
EXPMAP_SKELETON = "cmu-expmap-skeleton.json"


@dataclass(frozen=True)
class ClipSpec:
    """How one file becomes a clip.

    source: rig key, or None to detect it from the joint names; fps: rate
    overriding the file's; drop_first: leading frames to drop (DAZ T-pose);
    skeleton: the skeleton file of an expmap motion.
    """

    path: Path
    name: str
    subject: str
    action: str = ""
    source: str | None = None
    fps: float | None = None
    drop_first: int = 0
    skeleton: Path | None = None

    def key_parts(self) -> list[str]:
        return [f"src{self.source}", f"rate{self.fps}", f"drop{self.drop_first}", str(self.skeleton)]


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
    #: coarse action label for per-action reports ("salsa", "walking", "idle", ...).
    action: str = ""

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


def _find_expmap_skeleton(path: Path) -> Path:
    for d in path.resolve().parents:
        if (d / EXPMAP_SKELETON).is_file():
            return d / EXPMAP_SKELETON
    raise UserError(f"{path}: no {EXPMAP_SKELETON} in any folder above it")


def _convert(spec: ClipSpec) -> tuple[np.ndarray, float, str]:
    """(landmarks (F, 17, 3) at source rate, source fps, source key) of one file."""
    from video3d.mocap import expmap

    path = spec.path
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
        if suffix == ".txt":
            sk = expmap.read_skeleton(spec.skeleton or _find_expmap_skeleton(path))
            return expmap_to_coco(expmap.read_expmap(path, sk.num_joints), sk), EXPMAP_FPS, "cmu_expmap"
    except (ValueError, KeyError) as e:
        raise UserError(f"{path}: {e}" if str(path) not in str(e) else str(e)) from e
    raise UserError(f"{path}: not a mocap clip (expected .bvh, .amc or an expmap .txt)")


def default_spec(path: str | PathLike) -> ClipSpec:
    """Spec of a loose file: name = stem, subject from a CMU-style name (else the stem)."""
    path = Path(path)
    try:
        subject = subject_from_name(path.stem)
    except ValueError:
        subject = path.stem
    return ClipSpec(path=path, name=path.stem, subject=subject)


def load_clip(path: str | PathLike | ClipSpec, fps: float = DEFAULT_FPS) -> MocapClip:
    """Load a .bvh, .amc (with its .asf beside it) or expmap .txt as a clip resampled to ``fps``.

    ``path`` may be a :class:`ClipSpec` (name, subject, frame-rate override,
    frames to drop); a plain path gets :func:`default_spec`.
    """
    spec = path if isinstance(path, ClipSpec) else default_spec(path)
    if not spec.path.is_file():
        raise UserError(f"{spec.path}: no such mocap file")
    landmarks, src_fps, source = _convert(spec)
    if spec.source is not None and source != spec.source:
        raise UserError(f"{spec.path}: expected a {spec.source} rig, found {source}")
    landmarks = landmarks[spec.drop_first:]
    if len(landmarks) < 2:
        raise UserError(f"{spec.path}: fewer than 2 frames")
    landmarks = resample(landmarks, spec.fps or src_fps, fps).astype(np.float32)
    return MocapClip(name=spec.name, subject=spec.subject, source=source, fps=float(fps),
                     landmarks_coco=landmarks, action=spec.action)


def archive_specs(folder: Path, root: Path) -> list[ClipSpec]:
    """Clip specs of an extracted archive (``cmu-daz/``, ``cmu-expmap/`` or ``reactidle/`` inside ``folder``)."""
    specs: list[ClipSpec] = []
    daz = folder / "cmu-daz"
    for action, subject in DAZ_SUBJECTS.items():
        for p in sorted((daz / action).glob("*.bvh")):
            specs.append(ClipSpec(p, f"daz-{action}-{p.stem}", subject, action, "daz_bvh",
                                  DAZ_FPS[action], drop_first=1))
    ex = folder / "cmu-expmap"
    if ex.is_dir():
        skeleton = root / EXPMAP_SKELETON
        if not skeleton.is_file():
            raise UserError(f"{skeleton}: missing (needed by {ex.name})")
        for p in sorted(ex.glob("*/*/*.txt")):
            part, folder_action = p.parent.parent.name, p.parent.name
            action = "walking" if folder_action == "walking_extra" else folder_action
            specs.append(ClipSpec(p, f"expmap-{part}-{p.stem}", "expmap", action, "cmu_expmap",
                                  EXPMAP_FPS, skeleton=skeleton))
    for p in sorted((folder / "reactidle").glob("*/*.bvh")):
        person = p.stem.split("_")[0]
        specs.append(ClipSpec(p, f"reactidle-{p.stem}", f"reactidle-{person}", "idle", "reactidle"))
    return specs


def _cmu_actions(root: Path) -> dict[str, str]:
    """Trial name (``001_01``) -> coarse action from ``cmu/index.csv`` (the description up to " - " or ",")."""
    import csv

    index = root / "cmu" / "index.csv"
    out: dict[str, str] = {}
    if index.is_file():
        with index.open(newline="") as f:
            for row in csv.DictReader(f):
                try:
                    key = f"{int(row['Subject']):03d}_{int(row['Trial #']):02d}"
                except (KeyError, ValueError):
                    continue
                out[key] = re.split(r" - |,|\(", row.get("Motion Description", ""))[0].strip().lower()
    return out


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


def cache_key(path: Path, fps: float, spec: ClipSpec | None = None) -> str:
    """Hex key of a clip's converted form: path, size, mtime (and its ASF's), mapping version, fps, spec."""
    parts = [str(path.resolve()), f"v{MAPPING_VERSION}", f"fps{fps:.6f}"]
    if spec is not None:
        parts += spec.key_parts() + [spec.name, spec.subject, spec.action]
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
                             fps=float(z["fps"]), landmarks_coco=z["landmarks_coco"].astype(np.float32),
                             action=str(z["action"]) if "action" in z.files else "")
    except (OSError, KeyError, ValueError):
        return None


def _write_cached(file: Path, clip: MocapClip) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez(buf, name=clip.name, subject=clip.subject, source=clip.source, action=clip.action,
             fps=np.float64(clip.fps), landmarks_coco=clip.landmarks_coco)
    write_bytes_atomic(file, buf.getvalue())


#: Archive file name -> the source keys it holds.
ARCHIVE_SOURCES = {"cmu-daz.tar.xz": ("daz_bvh",), "cmu-expmap.tar.xz": ("cmu_expmap",),
                   "reactidle.tar.xz": ("reactidle",)}


def resolve_sources(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"cmu,daz"`` or a list of groups/keys -> source keys (None or "all": every source)."""
    if text is None:
        return SOURCES
    items = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    out: list[str] = []
    for t in items:
        if t not in SOURCE_GROUPS:
            raise UserError(f"unknown source {t!r}; expected a comma-separated list of "
                            f"{', '.join(k for k in SOURCE_GROUPS)}")
        out += [s for s in SOURCE_GROUPS[t] if s not in out]
    if not out:
        raise UserError("no sources selected")
    return tuple(out)


def mocap_specs(root: str | PathLike, cache_dir: str | PathLike | None = None,
                sources: Sequence[str] | None = None) -> list[ClipSpec]:
    """Specs of every clip under ``root``: loose .bvh/.amc files, then the known archives (extracted once)."""
    from video3d.mocap.archives import extract_archive

    root = Path(root)
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    wanted = set(sources or SOURCES)
    actions = _cmu_actions(root)
    specs = []
    for path in find_clip_files(root):
        if path.suffix.lower() == ".amc":
            try:
                asf_for_amc(path)
            except UserError as e:
                warnings.warn(f"skipping {e}", stacklevel=2)
                continue
        spec = default_spec(path)
        specs.append(ClipSpec(path, spec.name, spec.subject, actions.get(path.stem, "cmu")))
    for name, held in ARCHIVE_SOURCES.items():
        if (root / name).is_file() and wanted & set(held):
            specs += archive_specs(extract_archive(root / name, cache.parent), root)
    return specs


def load_mocap_dir(root: str | PathLike, cache_dir: str | PathLike | None = None,
                   fps: float = DEFAULT_FPS, use_cache: bool = True,
                   sources: Sequence[str] | None = None) -> list[MocapClip]:
    """Load every clip under ``root`` (loose cmu/, cmu-asfamc/, cmu-bvh-raw/ files and the archives).

    Converted clips are cached as .npz files in ``cache_dir`` (default
    :func:`default_cache_dir`), keyed by :func:`cache_key`, so a changed file or
    mapping version is converted again; archives are extracted once beside it
    (``<cache>/../archives``). AMC files without an ASF are skipped with a
    warning. ``sources``: keep only these source keys (default all). Returns
    loose clips sorted by path, then the archives' clips.
    """
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: mocap directory not found")
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    wanted = set(sources or SOURCES)
    clips: list[MocapClip] = []
    for spec in mocap_specs(root, cache, sources):
        if spec.source is not None and spec.source not in wanted:
            continue
        path = spec.path
        file = cache / f"{path.stem}-{cache_key(path, fps, spec)}.npz" if use_cache else None
        clip = _read_cached(file) if file is not None and file.is_file() else None
        if clip is None:
            clip = load_clip(spec, fps)
            if file is not None:
                _write_cached(file, clip)
        if clip.source in wanted:
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
