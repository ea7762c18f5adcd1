"""Training samples: (2D input window, 3D target window) pairs.

* :class:`MocapSampler` synthesises samples from mocap clips: 3D augmentation
  in the world frame, a random static virtual camera per sample, projection,
  detector-like 2D noise, then the same COCO->H36M conversion and screen
  normalisation used at inference (docs/training_data.md).
* :class:`SequenceSampler` cuts windows from sequences that already have 2D
  (e.g. Human3.6M in the VideoPose3D layout), with mirroring.

Both return ``inputs`` (B, T, 17, 2) float32 screen-normalised and
``targets`` (B, T, 17, 3) float32, camera frame, metres, pelvis = 0.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from video3d import skeleton
from video3d.data import augment, noise
from video3d.data.virtual_camera import CameraConfig, random_camera
from video3d.geometry.camera import project, world_to_camera
from video3d.keypoints import coco_to_h36m, normalize_screen
from video3d.lift.windows import pad_edges


#: Training weight of a source = its minutes, capped at these values (minutes;
#: "default" for sources not listed). ReActIdle (47 min of people standing)
#: would otherwise dominate; docs/training_data.md.
DEFAULT_SOURCE_CAPS: dict[str, float] = {"default": 12.0, "reactidle": 4.0}


def source_weights(clips: list, caps: dict[str, float] | None = None) -> tuple[np.ndarray, dict[str, dict]]:
    """Per-clip sampling probabilities: source weight min(minutes, cap), shared by frames within a source.

    clips: objects with ``source``, ``fps`` and ``landmarks_coco`` (T, 17, 3).
    Returns (p (N,) summing to 1, {source: {"minutes", "weight_minutes", "share"}}).
    """
    caps = dict(DEFAULT_SOURCE_CAPS if caps is None else caps)
    frames = np.array([len(c.landmarks_coco) for c in clips], dtype=np.float64)
    minutes: dict[str, float] = {}
    for c, n in zip(clips, frames):
        minutes[c.source] = minutes.get(c.source, 0.0) + n / c.fps / 60.0
    weight = {s: min(m, caps.get(s, caps.get("default", np.inf))) for s, m in minutes.items()}
    src_frames = {s: sum(n for c, n in zip(clips, frames) if c.source == s) for s in minutes}
    p = np.array([weight[c.source] * n / src_frames[c.source] for c, n in zip(clips, frames)])
    total = p.sum()
    p = p / total
    info = {s: {"minutes": round(minutes[s], 2), "weight_minutes": round(weight[s], 2),
                "share": round(weight[s] / total, 3)} for s in minutes}
    return p, info


@dataclass
class SynthesisConfig:
    """How mocap becomes training samples (all distributions in docs/training_data.md)."""

    camera: CameraConfig = field(default_factory=CameraConfig)
    noise: noise.DetectorNoiseConfig = field(default_factory=noise.DetectorNoiseConfig)
    augment: augment.AugmentConfig = field(default_factory=augment.AugmentConfig)
    #: fraction of samples with perfect (ground-truth) 2D.
    clean_fraction: float = 0.3
    #: per-source caps of the sampling weight in minutes (:func:`source_weights`).
    source_cap_minutes: dict = field(default_factory=lambda: dict(DEFAULT_SOURCE_CAPS))


def film(landmarks_world: np.ndarray, rng: np.random.Generator, cfg: SynthesisConfig, noisy: bool
         ) -> tuple[np.ndarray, tuple[int, int], np.ndarray]:
    """Film a landmark window with a random static camera.

    landmarks_world: (T, 17, 3) COCO landmarks, metres, z up. Returns
    (2D H36M-17 keypoints (T, 17, 2) in pixels, image size (w, h), 3D target
    (T, 17, 3) camera frame, root-relative), both through ``coco_to_h36m``.
    """
    cam = random_camera(rng, landmarks_world, cfg.camera)
    lm_cam = world_to_camera(landmarks_world, cam.R, cam.t)
    kp2d = project(lm_cam, cam)
    if noisy:
        kp2d, _ = noise.detector_noise(kp2d, rng, cfg.noise)
    kp2d_h36m, _ = coco_to_h36m(kp2d)
    target, _ = coco_to_h36m(lm_cam)
    return kp2d_h36m, (cam.width, cam.height), target - target[:, :1]


def synthesize_window(landmarks_world: np.ndarray, rng: np.random.Generator, cfg: SynthesisConfig,
                      noisy: bool) -> tuple[np.ndarray, np.ndarray]:
    """One training sample: (input (T, 17, 2) screen-normalised, target (T, 17, 3))."""
    kp2d, size, target = film(landmarks_world, rng, cfg, noisy)
    return normalize_screen(kp2d, *size).astype(np.float32), target.astype(np.float32)


class MocapSampler:
    """Random training windows synthesised from mocap clips (50 fps)."""

    def __init__(self, clips: list, window: int, cfg: SynthesisConfig | None = None, seed: int = 0):
        if not clips:
            raise ValueError("no mocap clips to train on")
        self.clips = [c.landmarks_coco.astype(np.float64) for c in clips]
        self.window = window
        self.cfg = cfg or SynthesisConfig()
        self.rng = np.random.default_rng(seed)
        if all(hasattr(c, "source") for c in clips):
            self.p, self.sources = source_weights(clips, self.cfg.source_cap_minutes)
        else:
            lengths = np.array([len(c) for c in self.clips], dtype=np.float64)
            self.p, self.sources = lengths / lengths.sum(), {}

    def _motion(self) -> np.ndarray:
        """An augmented (window, 17, 3) world-frame landmark window (docs/training_data.md)."""
        pick = lambda: self.clips[self.rng.choice(len(self.clips), p=self.p)]  # noqa: E731
        return augment.augment_clip_window(pick(), self.rng, self.cfg.augment, length=self.window, partner=pick())

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for _ in range(batch_size):
            noisy = self.rng.random() >= self.cfg.clean_fraction
            x, y = synthesize_window(self._motion(), self.rng, self.cfg, noisy)
            xs.append(x)
            ys.append(y)
        return np.stack(xs), np.stack(ys)


class SequenceSampler:
    """Windows from sequences with given 2D (e.g. Human3.6M), mirrored half the time.

    sequences: objects with ``keypoints_2d`` (T, 17, 2) pixels, ``image_size``
    (w, h) and ``joints_3d_camera`` (T, 17, 3) metres.
    """

    def __init__(self, sequences: list, window: int, seed: int = 0, mirror_prob: float = 0.5):
        if not sequences:
            raise ValueError("no sequences to train on")
        self.inputs = [normalize_screen(s.keypoints_2d, *s.image_size) for s in sequences]
        self.targets = [s.joints_3d_camera - s.joints_3d_camera[:, :1] for s in sequences]
        self.window = window
        self.mirror_prob = mirror_prob
        self.rng = np.random.default_rng(seed)
        lengths = np.array([len(x) for x in self.inputs], dtype=np.float64)
        self.p = lengths / lengths.sum()

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        T = self.window
        for _ in range(batch_size):
            i = self.rng.choice(len(self.inputs), p=self.p)
            x, y = self.inputs[i], self.targets[i]
            if len(x) <= T:
                left = (T - len(x)) // 2
                x, y = pad_edges(x, left, T - len(x) - left), pad_edges(y, left, T - len(y) - left)
            else:
                s = self.rng.integers(0, len(x) - T + 1)
                x, y = x[s:s + T], y[s:s + T]
            if self.rng.random() < self.mirror_prob:
                x, y = skeleton.mirror(x), skeleton.mirror(y)
            xs.append(x)
            ys.append(y)
        return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32)


@dataclass
class EvalSequence:
    """A fixed validation sequence: 2D input (pixels) and 3D truth (camera frame)."""

    name: str
    group: str
    keypoints_2d: np.ndarray
    image_size: tuple[int, int]
    joints_3d_camera: np.ndarray
    source: str = ""
    action: str = ""


def make_eval_sequences(clips: list, cameras_per_clip: int, noisy: bool, seed: int = 1234,
                        cfg: SynthesisConfig | None = None, max_frames: int | None = None,
                        segment_frames: int = 500) -> list[EvalSequence]:
    """Fixed validation sequences from held-out clips.

    Each clip (optionally cut to ``max_frames``) is split into segments of at
    most ``segment_frames`` frames (10 s at 50 fps, like a typical video), and
    each segment is seen by ``cameras_per_clip`` random, unseen static cameras,
    with ground-truth (``noisy=False``) or detector-like 2D. Deterministic for a
    given seed. ``group`` is the clip name, for per-clip tables.
    """
    cfg = cfg or SynthesisConfig()
    rng = np.random.default_rng(seed)
    out = []
    for clip in clips:
        lm_all = clip.landmarks_coco.astype(np.float64)[:max_frames]
        n_seg = max(1, int(np.ceil(len(lm_all) / segment_frames)))
        for seg, lm in enumerate(np.array_split(lm_all, n_seg)):
            for k in range(cameras_per_clip):
                kp, size, target = film(lm, rng, cfg, noisy)
                out.append(EvalSequence(f"{clip.name}/seg{seg}/cam{k}", clip.name, kp.astype(np.float32), size,
                                        target.astype(np.float32), getattr(clip, "source", ""),
                                        getattr(clip, "action", "")))
    return out
