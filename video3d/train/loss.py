"""Training losses for the lifters (torch, differentiable).

Poses are (B, T, 17, 3) in metres (time on dim -3); joint-only losses also
accept (..., 17, 3). KTPFormer trains with
``L = Lw + 0.5 * Ltc + 2.0 * Lv`` (REFERENCE §3); AMPose with plain MSE.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "JOINT_WEIGHTS",
    "joint_weights",
    "weighted_mpjpe",
    "temporal_consistency_loss",
    "mpjve_loss",
    "ktpformer_loss",
    "mse_loss",
]

#: Per-joint weights of KTPFormer's weighted MPJPE (H36M-17 order): limbs'
#: distal joints weigh most.
JOINT_WEIGHTS: tuple[float, ...] = (1, 1, 2.5, 2.5, 1, 2.5, 2.5, 1, 1, 1, 1.5, 1.5, 4, 4, 1.5, 4, 4)


def joint_weights(like: Tensor | None = None) -> Tensor:
    """:data:`JOINT_WEIGHTS` as a (17,) tensor on ``like``'s device/dtype."""
    kw = {} if like is None else dict(device=like.device, dtype=like.dtype)
    return torch.tensor(JOINT_WEIGHTS, **kw)


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")


def _weights(weights: Tensor | None, like: Tensor) -> Tensor:
    if weights is None:
        return torch.ones(like.shape[-2], device=like.device, dtype=like.dtype)
    w = torch.as_tensor(weights, device=like.device, dtype=like.dtype)
    if w.shape != (like.shape[-2],):
        raise ValueError(f"weights must be ({like.shape[-2]},), got {tuple(w.shape)}")
    return w


def weighted_mpjpe(pred: Tensor, target: Tensor, weights: Tensor | None = None) -> Tensor:
    """Weighted mean per-joint position error, ``mean(w_j * ||pred - target||)``.

    pred, target: (..., J, 3); weights: (J,) (default all 1 = plain MPJPE).
    The mean runs over every joint of every pose (weights are not
    renormalised, as in the reference implementation). Returns a scalar in
    the input unit.
    """
    _check_pair(pred, target)
    w = _weights(weights, pred)
    return (torch.linalg.vector_norm(pred - target, dim=-1) * w).mean()


def temporal_consistency_loss(pred: Tensor, weights: Tensor | None = None) -> Tensor:
    """Weighted mean of squared first differences of the prediction over time.

    pred: (..., T, J, 3), T >= 2; weights: (J,) (default all 1). Computes
    ``mean(w_j * (pred[t+1] - pred[t])^2)`` over every coordinate. Scalar
    (input unit squared).
    """
    if pred.ndim < 3 or pred.shape[-3] < 2:
        raise ValueError(f"need (..., T >= 2, J, 3), got {tuple(pred.shape)}")
    w = _weights(weights, pred)
    diff = pred[..., 1:, :, :] - pred[..., :-1, :, :]
    return (diff.square() * w[:, None]).mean()


def mpjve_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean per-joint velocity error: mean norm of the difference of the first
    time differences of ``pred`` and ``target``. (..., T, J, 3), T >= 2 ->
    scalar (input unit per frame)."""
    _check_pair(pred, target)
    if pred.ndim < 3 or pred.shape[-3] < 2:
        raise ValueError(f"need (..., T >= 2, J, 3), got {tuple(pred.shape)}")
    vel_err = torch.diff(pred, dim=-3) - torch.diff(target, dim=-3)
    return torch.linalg.vector_norm(vel_err, dim=-1).mean()


def ktpformer_loss(
    pred: Tensor, target: Tensor, tc_weight: float = 0.5, velocity_weight: float = 2.0
) -> Tensor:
    """KTPFormer's training loss ``Lw + 0.5 * Ltc + 2.0 * Lv``.

    Lw = :func:`weighted_mpjpe` and Ltc = :func:`temporal_consistency_loss`,
    both with :data:`JOINT_WEIGHTS`; Lv = :func:`mpjve_loss`.
    pred, target: (B, T, 17, 3) -> scalar.
    """
    w = joint_weights(pred)
    return (weighted_mpjpe(pred, target, w)
            + tc_weight * temporal_consistency_loss(pred, w)
            + velocity_weight * mpjve_loss(pred, target))


def mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over every coordinate (AMPose's loss).
    (..., J, 3) -> scalar."""
    _check_pair(pred, target)
    return F.mse_loss(pred, target)
