"""Similarity (Procrustes) alignment of point sets: the Umeyama / Kabsch solution."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["procrustes_align"]


def procrustes_align(pred: Any, target: Any) -> np.ndarray:
    """Similarity-align every pose of ``pred`` to ``target``.

    For each pose, finds the scale s, proper rotation R (det +1; a
    reflection returned by the SVD is turned into the nearest rotation by
    flipping the sign of the smallest singular direction) and translation
    minimising ``||s * pred @ R + t - target||`` (Umeyama / Kabsch).
    (..., J, D) x2 -> aligned pred (..., J, D), float64.
    """
    p, t = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if p.shape != t.shape or p.ndim < 2:
        raise ValueError(f"pred {p.shape} and target {t.shape} must share a (..., J, D) shape")
    mu_p = p.mean(axis=-2, keepdims=True)
    mu_t = t.mean(axis=-2, keepdims=True)
    p0, t0 = p - mu_p, t - mu_t
    h = np.swapaxes(p0, -1, -2) @ t0  # (..., D, D) cross-covariance
    u, s, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(u @ vt))  # -1 where u @ vt is a reflection
    d = np.where(d == 0, 1.0, d)
    u[..., :, -1] *= d[..., None]
    s[..., -1] *= d
    rot = u @ vt  # pred @ rot ~ target
    var_p = (p0 ** 2).sum(axis=(-2, -1))
    scale = np.where(var_p > 0, s.sum(axis=-1) / np.where(var_p > 0, var_p, 1.0), 1.0)
    return scale[..., None, None] * (p0 @ rot) + mu_t
