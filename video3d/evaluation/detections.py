"""BlazePose detections of a whole video, cached on disk by content hash.

Detection is the slow part of every real-video evaluation (~25-40 ms a frame
on a small CPU); the lifters are fast. :func:`cached_detections` runs the
normal detection stage once per (video content, person rule, detector
version) and stores the result as an ``.npz`` outside the repository, so
re-evaluating new weights takes seconds.

Cache folder: ``$VIDEO3D_CACHE/detections`` or ``~/.cache/video3d/detections``.
"""
from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from video3d import keypoints as kpfmt

log = logging.getLogger(__name__)

#: Bump when the detection stage or what is stored changes.
CACHE_VERSION = "blazepose-v1"


@dataclass
class Detections:
    """One person's BlazePose track over a video (H36M-17 unless noted).

    keypoints_2d: (T, 17, 2) pixels after gap filling (what the lifters get in a normal run).
    scores_2d: (T, 17); valid: (T,) bool.
    raw_2d: (T, 17, 2) pixels straight from the detector (NaN where not detected), no filling.
    raw_scores: (T, 17) their confidences (0 where not detected).
    world: (T, 17, 3) MediaPipe ``pose_world_landmarks`` (metres, hip-centred, camera-like
        axes x right, y down), NaN where not detected.
    fps, image_size (width, height).
    """

    keypoints_2d: np.ndarray
    scores_2d: np.ndarray
    valid: np.ndarray
    raw_2d: np.ndarray
    raw_scores: np.ndarray
    world: np.ndarray
    fps: float
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.keypoints_2d)


def cache_dir() -> Path:
    """Folder of the detection cache (created on use)."""
    root = os.environ.get("VIDEO3D_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "video3d") / "detections"


def content_hash(path: str | Path) -> str:
    """sha256 of the file's bytes (hex, first 20 characters)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:20]


def detect_blazepose(video: str | Path, person: str = "auto",
                     progress: Callable[[int], object] | None = None) -> Detections:
    """Run the normal BlazePose detection stage over ``video`` (no cache)."""
    from video3d.detect.blazepose import BlazePoseDetector
    from video3d.detect.stage import detect_video
    from video3d.io.video import iter_frames, probe
    from video3d.native_stderr import native_stderr_silenced

    info = probe(video)
    with native_stderr_silenced(True), BlazePoseDetector() as detector:
        seq = detect_video(iter_frames(video, info), detector, fps=info.fps, image_size=(info.width, info.height),
                           num_frames_hint=info.num_frames_header or None, person=person, progress=progress)
    raw_2d, raw_scores = kpfmt.to_h36m(seq.keypoints_raw, np.nan_to_num(seq.scores_raw), "blazepose")
    world = seq.detector_3d
    if world is None:
        world = np.full(raw_2d.shape[:-1] + (3,), np.nan, np.float32)
    return Detections(keypoints_2d=seq.keypoints_2d, scores_2d=seq.scores_2d, valid=seq.valid,
                      raw_2d=raw_2d.astype(np.float32), raw_scores=raw_scores.astype(np.float32),
                      world=np.asarray(world, np.float32), fps=seq.fps, image_size=seq.image_size)


def cached_detections(video: str | Path, person: str = "auto", cache: Path | None = None,
                      progress: Callable[[int], object] | None = None) -> Detections:
    """:func:`detect_blazepose`, read from / written to the cache when possible."""
    cache = cache or cache_dir()
    key = f"{Path(video).stem}-{content_hash(video)}-{CACHE_VERSION}-{person.replace(',', '_')}.npz"
    path = cache / key
    if path.is_file():
        try:
            with np.load(path) as z:
                return Detections(keypoints_2d=z["keypoints_2d"], scores_2d=z["scores_2d"], valid=z["valid"],
                                  raw_2d=z["raw_2d"], raw_scores=z["raw_scores"], world=z["world"],
                                  fps=float(z["fps"]), image_size=(int(z["image_size"][0]), int(z["image_size"][1])))
        except (OSError, KeyError, ValueError) as e:
            log.warning("ignoring unreadable detection cache %s (%s)", path, e)
    det = detect_blazepose(video, person, progress)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, keypoints_2d=det.keypoints_2d, scores_2d=det.scores_2d, valid=det.valid,
                        raw_2d=det.raw_2d, raw_scores=det.raw_scores, world=det.world, fps=det.fps,
                        image_size=np.asarray(det.image_size))
    os.replace(tmp, path)
    return det
