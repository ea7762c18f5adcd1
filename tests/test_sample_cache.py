"""The precomputed training-sample pool (video3d/train/sample_cache.py)."""
from __future__ import annotations

import numpy as np

from video3d import skeleton
from video3d.mocap.clips import MocapClip
from video3d.train.sample_cache import CachedSampler
from video3d.train.samplers import MocapSampler
from tests.motions import walking_clip


def _clips():
    lm = walking_clip(120)
    return [MocapClip("walk", "1", "cc_bvh", 50.0, lm.astype(np.float32)),
            MocapClip("walk2", "2", "daz_bvh", 50.0, (lm * 1.05).astype(np.float32))]


def test_pool_built_once_and_drawn_from(tmp_path):
    clips = _clips()
    calls = []
    base = MocapSampler(clips, 9, seed=3)
    s = CachedSampler(base, clips, pool_size=40, seed=3, cache_dir=tmp_path,
                      on_progress=lambda d, n: calls.append(d))
    assert len(s) == 40 and calls[-1] == 40
    x, y = s.sample(16)
    assert x.shape == (16, 9, 17, 2) and y.shape == (16, 9, 17, 3) and x.dtype == np.float32
    assert np.allclose(y[:, :, 0], 0)                       # root-relative targets
    # every drawn sample is a pool sample or its mirror image, 2D and 3D together
    pool_x, pool_y = np.asarray(s.x), np.asarray(s.y)
    for xi, yi in zip(x, y):
        k = np.argmin(np.abs(pool_y - yi).reshape(40, -1).max(1))
        km = np.argmin(np.abs(pool_y - skeleton.mirror(yi)).reshape(40, -1).max(1))
        direct = np.allclose(pool_y[k], yi) and np.allclose(pool_x[k], xi, equal_nan=True)
        mirrored = np.allclose(pool_y[km], skeleton.mirror(yi)) and np.allclose(pool_x[km], skeleton.mirror(xi),
                                                                                 equal_nan=True)
        assert direct or mirrored
    # the same configuration reuses the pool (nothing synthesised); another builds another
    calls.clear()
    again = CachedSampler(MocapSampler(clips, 9, seed=3), clips, pool_size=40, seed=3, cache_dir=tmp_path,
                          on_progress=lambda d, n: calls.append(d))
    assert calls == [] and again.folder == s.folder and np.array_equal(np.asarray(again.x), pool_x, equal_nan=True)
    other = CachedSampler(MocapSampler(clips, 9, seed=4), clips, pool_size=40, seed=4, cache_dir=tmp_path)
    assert other.folder != s.folder
    assert not list(tmp_path.glob(".*partial"))
