"""Evaluation metrics for 3D poses (numpy, float64).

Inputs are (..., 17, 3) poses in metres (torch tensors are accepted and
converted); errors are returned in millimetres, PCK / AUC in percent.
Every leading index is one pose (e.g. (T, 17, 3) or (N, T, 17, 3));
velocity metrics treat axis -3 as time.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from video3d.geometry import procrustes

__all__ = [
    "mpjpe", "mpjpe_per_joint",
    "procrustes_align", "p_mpjpe", "p_mpjpe_per_joint",
    "n_mpjpe",
    "mpjve", "mpjve_per_joint",
    "pck", "pck_per_joint", "auc",
    "PCK_THRESHOLD_M", "AUC_THRESHOLDS_M",
]

#: MPI-INF-3DHP conventions: PCK at 150 mm; AUC over 0..150 mm in 31 steps.
PCK_THRESHOLD_M = 0.15
AUC_THRESHOLDS_M: np.ndarray = np.linspace(0.0, 0.15, 31)


def _f64(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _pair(pred: Any, target: Any, min_ndim: int = 2) -> tuple[np.ndarray, np.ndarray]:
    p, t = _f64(pred), _f64(target)
    if p.shape != t.shape:
        raise ValueError(f"pred {p.shape} and target {t.shape} differ in shape")
    if p.ndim < min_ndim:
        raise ValueError(f"expected at least {min_ndim} dims (..., J, D), got {p.shape}")
    return p, t


def _errors_mm(p: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.linalg.norm(p - t, axis=-1) * 1000.0


def _per_joint(err: np.ndarray) -> np.ndarray:
    return err.reshape(-1, err.shape[-1]).mean(axis=0)


def mpjpe(pred: Any, target: Any) -> float:
    """Mean per-joint position error in mm. (..., J, 3) x2 -> float."""
    p, t = _pair(pred, target)
    return float(_errors_mm(p, t).mean())


def mpjpe_per_joint(pred: Any, target: Any) -> np.ndarray:
    """MPJPE of each joint in mm, averaged over poses. (..., J, 3) -> (J,)."""
    p, t = _pair(pred, target)
    return _per_joint(_errors_mm(p, t))


def procrustes_align(pred: Any, target: Any) -> np.ndarray:
    """:func:`video3d.geometry.procrustes.procrustes_align` accepting torch tensors too.
    (..., J, D) x2 -> aligned pred (..., J, D), float64."""
    return procrustes.procrustes_align(*_pair(pred, target))


def p_mpjpe(pred: Any, target: Any) -> float:
    """MPJPE after per-pose Procrustes alignment (scale, rotation,
    translation), in mm. (..., J, 3) x2 -> float."""
    p, t = _pair(pred, target)
    return float(_errors_mm(procrustes_align(p, t), t).mean())


def p_mpjpe_per_joint(pred: Any, target: Any) -> np.ndarray:
    """P-MPJPE of each joint in mm. (..., J, 3) -> (J,)."""
    p, t = _pair(pred, target)
    return _per_joint(_errors_mm(procrustes_align(p, t), t))


def n_mpjpe(pred: Any, target: Any) -> float:
    """MPJPE after the per-pose optimal scale of ``pred`` only (no rotation or
    translation): ``s = <pred, target> / <pred, pred>``. In mm.
    (..., J, 3) x2 -> float."""
    p, t = _pair(pred, target)
    num = (p * t).sum(axis=(-2, -1), keepdims=True)
    den = (p * p).sum(axis=(-2, -1), keepdims=True)
    scale = np.where(den > 0, num / np.where(den > 0, den, 1.0), 1.0)
    return float(_errors_mm(scale * p, t).mean())


def _velocity_errors_mm(pred: Any, target: Any) -> np.ndarray:
    p, t = _pair(pred, target, min_ndim=3)
    if p.shape[-3] < 2:
        raise ValueError(f"velocity metrics need >= 2 frames on axis -3, got {p.shape}")
    return _errors_mm(np.diff(p, axis=-3), np.diff(t, axis=-3))


def mpjve(pred: Any, target: Any) -> float:
    """Mean per-joint velocity error in mm per frame: the error of the first
    differences along time (axis -3). (..., T, J, 3) x2, T >= 2 -> float."""
    return float(_velocity_errors_mm(pred, target).mean())


def mpjve_per_joint(pred: Any, target: Any) -> np.ndarray:
    """MPJVE of each joint in mm per frame. (..., T, J, 3) -> (J,)."""
    return _per_joint(_velocity_errors_mm(pred, target))


def pck(pred: Any, target: Any, threshold: float = PCK_THRESHOLD_M) -> float:
    """Percentage of joints whose error is below ``threshold`` metres
    (strictly). (..., J, 3) x2 -> float in [0, 100]."""
    p, t = _pair(pred, target)
    return float((np.linalg.norm(p - t, axis=-1) < threshold).mean() * 100.0)


def pck_per_joint(pred: Any, target: Any, threshold: float = PCK_THRESHOLD_M) -> np.ndarray:
    """PCK of each joint in percent. (..., J, 3) -> (J,)."""
    p, t = _pair(pred, target)
    return _per_joint((np.linalg.norm(p - t, axis=-1) < threshold).astype(np.float64)) * 100.0


def auc(pred: Any, target: Any, thresholds: Any = AUC_THRESHOLDS_M) -> float:
    """Area under the PCK curve: mean PCK (percent) over ``thresholds``
    (metres; default 0..150 mm in 31 steps). (..., J, 3) x2 -> float."""
    p, t = _pair(pred, target)
    dist = np.linalg.norm(p - t, axis=-1)[..., None]
    thr = _f64(thresholds).reshape(-1)
    return float((dist < thr).mean() * 100.0)
