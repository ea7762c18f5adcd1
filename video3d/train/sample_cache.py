"""A precomputed pool of synthesised training samples, memory-mapped from the cache.

Synthesising a sample (augmentation, camera fit, projection, detector noise;
docs/training_data.md) costs ~2.3 ms of CPU per single-frame sample, about a
third of an AMPose training step on a 2-core CPU. :class:`CachedSampler`
synthesises ``pool_size`` samples once with a :class:`~video3d.train.samplers.MocapSampler`,
stores them as ``.npy`` files under ``<cache>/samples/<key>/`` (outside the
repository; ``<cache>`` = ``$VIDEO3D_CACHE`` or ``~/.cache/video3d``) and then
draws batches from the pool, mirrored with probability 1/2 (mirroring a
filmed sample, 2D and camera-frame 3D together, is another valid sample).
The key hashes the training clips, window, synthesis settings, pool size and
seed, so another configuration builds another pool and a rerun reuses it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import numpy as np

from video3d import skeleton

CACHE_VERSION = 1


def default_sample_cache_dir() -> Path:
    """``$VIDEO3D_CACHE/samples`` if set, else ``~/.cache/video3d/samples``."""
    env = os.environ.get("VIDEO3D_CACHE")
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "video3d"
    return base / "samples"


def pool_key(clips: list, window: int, synthesis, pool_size: int, seed: int) -> str:
    """Hex key of a pool: clip names/sources/frames/landmark checksums, window, settings, size, seed."""
    from video3d.mocap.landmarks import MAPPING_VERSION

    h = hashlib.sha1()
    h.update(json.dumps({"v": CACHE_VERSION, "mapping": MAPPING_VERSION, "window": window, "pool": pool_size,
                         "seed": seed, "synthesis": asdict(synthesis)}, sort_keys=True, default=str).encode())
    for c in clips:
        lm = np.ascontiguousarray(c.landmarks_coco, dtype=np.float32)
        h.update(f"{c.source}|{c.name}|{lm.shape}".encode())
        h.update(hashlib.sha1(lm.tobytes()).digest())
    return h.hexdigest()[:20]


def build_pool(sampler, pool_size: int, folder: Path, chunk: int = 256,
               on_progress: Callable[[int, int], None] | None = None) -> Path:
    """Synthesise ``pool_size`` samples with ``sampler.sample`` into ``folder/{x,y}.npy`` (atomic)."""
    if folder.is_dir():
        return folder
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        x0, y0 = sampler.sample(1)
        xs = np.lib.format.open_memmap(tmp / "x.npy", mode="w+", dtype=np.float32, shape=(pool_size,) + x0.shape[1:])
        ys = np.lib.format.open_memmap(tmp / "y.npy", mode="w+", dtype=np.float32, shape=(pool_size,) + y0.shape[1:])
        done = 0
        while done < pool_size:
            n = min(chunk, pool_size - done)
            x, y = sampler.sample(n)
            xs[done:done + n], ys[done:done + n] = x, y
            done += n
            if on_progress:
                on_progress(done, pool_size)
        xs.flush()
        ys.flush()
        del xs, ys
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


class CachedSampler:
    """Batches drawn with replacement from a precomputed pool, mirrored half the time.

    base: the MocapSampler that synthesises the pool (used only when the pool
    is missing). Same interface as the other samplers: ``sample(batch_size)``
    -> (inputs (B, T, 17, 2), targets (B, T, 17, 3)) float32, and ``rng``.
    """

    def __init__(self, base, clips: list, pool_size: int, seed: int = 0, cache_dir: str | Path | None = None,
                 mirror_prob: float = 0.5, on_progress: Callable[[int, int], None] | None = None):
        if pool_size < 1:
            raise ValueError("pool_size must be >= 1")
        self.key = pool_key(clips, base.window, base.cfg, pool_size, seed)
        root = Path(cache_dir) if cache_dir is not None else default_sample_cache_dir()
        self.folder = build_pool(base, pool_size, root / self.key, on_progress=on_progress)
        self.x = np.load(self.folder / "x.npy", mmap_mode="r")
        self.y = np.load(self.folder / "y.npy", mmap_mode="r")
        self.window = base.window
        self.sources = getattr(base, "sources", {})
        self.mirror_prob = mirror_prob
        self.rng = np.random.default_rng(seed + 7919)

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.sort(self.rng.integers(0, len(self), batch_size))
        x, y = np.array(self.x[idx]), np.array(self.y[idx])
        flip = self.rng.random(batch_size) < self.mirror_prob
        if flip.any():
            x[flip], y[flip] = skeleton.mirror(x[flip]), skeleton.mirror(y[flip])
        order = self.rng.permutation(batch_size)
        return x[order], y[order]

    def card(self) -> dict:
        return {"pool_samples": len(self), "key": self.key, "mirror_prob": self.mirror_prob,
                "folder": "<cache>/samples/" + self.key}
