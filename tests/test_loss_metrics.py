"""Tests for training losses (torch) and evaluation metrics (numpy) against
hand-computed values."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from video3d.train import loss as L
from video3d.train import metrics as M

W = np.array(L.JOINT_WEIGHTS, dtype=np.float64)


def _pose_seq(t=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=0.3, size=(t, 17, 3))


def _rotation(axis, angle):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


# --------------------------------------------------------------------------- losses
def test_joint_weights():
    assert len(L.JOINT_WEIGHTS) == 17
    w = L.joint_weights()
    assert w.shape == (17,) and w[12] == 4 and w[2] == 2.5 and w[10] == 1.5


def test_weighted_mpjpe_hand_values():
    target = torch.zeros(2, 4, 17, 3)
    pred = target + torch.tensor([0.003, 0.004, 0.0])  # 5 mm everywhere
    assert L.weighted_mpjpe(pred, target).item() == pytest.approx(0.005)
    assert L.weighted_mpjpe(pred, target, L.joint_weights()).item() == pytest.approx(0.005 * W.mean())
    with pytest.raises(ValueError):
        L.weighted_mpjpe(pred, target[:, :3])


def test_temporal_consistency_loss_hand_values():
    t = torch.arange(5, dtype=torch.float32)[None, :, None, None]
    pred = t * torch.tensor([1.0, 2.0, 2.0]) + torch.zeros(2, 5, 17, 3)  # step (1, 2, 2) per frame
    # squared components 1, 4, 4 -> mean 3 per joint, times its weight
    assert L.temporal_consistency_loss(pred).item() == pytest.approx(3.0)
    assert L.temporal_consistency_loss(pred, L.joint_weights()).item() == pytest.approx(3.0 * W.mean())
    assert L.temporal_consistency_loss(torch.ones(1, 3, 17, 3)).item() == 0.0


def test_mpjve_loss_hand_values():
    target = torch.randn(2, 6, 17, 3)
    assert L.mpjve_loss(target + 0.01, target).item() == pytest.approx(0.0, abs=1e-7)
    drift = torch.arange(6, dtype=torch.float32)[None, :, None, None] * torch.tensor([0.0, 0.003, 0.004])
    assert L.mpjve_loss(target + drift, target).item() == pytest.approx(0.005, rel=1e-4)


def test_ktpformer_loss_combination_and_grad():
    target = torch.zeros(1, 5, 17, 3)
    step = torch.tensor([0.003, 0.004, 0.0])
    pred = (torch.arange(5, dtype=torch.float32)[None, :, None, None] * step).expand(1, 5, 17, 3)
    pred = pred.clone().requires_grad_(True)
    # per frame t the error is 5t mm: Lw = mean_t(0.005 t) * mean(w)
    lw = 0.005 * 2.0 * W.mean()
    ltc = (0.003 ** 2 + 0.004 ** 2) / 3 * W.mean()
    lv = 0.005
    value = L.ktpformer_loss(pred, target)
    assert value.item() == pytest.approx(lw + 0.5 * ltc + 2.0 * lv, rel=1e-5)
    value.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all()


def test_mse_loss():
    a = torch.zeros(3, 17, 3)
    assert L.mse_loss(a + 2.0, a).item() == pytest.approx(4.0)


# --------------------------------------------------------------------------- metrics
def test_constant_offset():
    target = _pose_seq()
    pred = target + np.array([0.006, 0.0, 0.008])  # 10 mm
    assert M.mpjpe(pred, target) == pytest.approx(10.0)
    assert M.p_mpjpe(pred, target) == pytest.approx(0.0, abs=1e-9)
    assert M.mpjve(pred, target) == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(M.mpjpe_per_joint(pred, target), np.full(17, 10.0))
    assert M.pck(pred, target) == 100.0
    assert M.pck(pred, target, threshold=0.005) == 0.0


def test_similarity_copy_has_zero_p_mpjpe():
    target = _pose_seq(4, seed=1)
    rot = _rotation([0.3, -1.0, 0.5], 1.1)
    pred = 0.7 * target @ rot + np.array([0.5, -0.2, 3.0])
    assert M.mpjpe(pred, target) > 50
    assert M.p_mpjpe(pred, target) == pytest.approx(0.0, abs=1e-8)
    np.testing.assert_allclose(M.procrustes_align(pred, target), target, atol=1e-10)
    np.testing.assert_allclose(M.p_mpjpe_per_joint(pred, target), np.zeros(17), atol=1e-8)


def test_procrustes_uses_proper_rotation_only():
    target = _pose_seq(3, seed=2)
    mirrored = target * np.array([-1.0, 1.0, 1.0])  # a reflection, not a rotation
    aligned = M.procrustes_align(mirrored, target)
    assert M.p_mpjpe(mirrored, target) > 1.0
    for p, a in zip(mirrored, aligned):  # aligned = s * (p - mean) @ R + c with det(R) > 0
        pc, ac = p - p.mean(0), a - a.mean(0)
        lin, *_ = np.linalg.lstsq(pc, ac, rcond=None)
        assert np.linalg.det(lin) > 0
        s = np.cbrt(np.linalg.det(lin))
        np.testing.assert_allclose(lin.T @ lin, s * s * np.eye(3), atol=1e-9)


def test_procrustes_is_locally_optimal():
    rng = np.random.default_rng(3)
    target = _pose_seq(1, seed=4)[0]
    pred = target @ _rotation([1, 2, 3], 0.4) * 1.3 + rng.normal(scale=0.02, size=(17, 3))
    best = np.linalg.norm(M.procrustes_align(pred, target) - target, axis=-1).mean()
    aligned = M.procrustes_align(pred, target)
    centre = aligned.mean(0)
    for _ in range(20):  # perturb scale, rotation, translation: never better
        r = _rotation(rng.normal(size=3), 0.02)
        other = (aligned - centre) @ r * (1 + rng.normal(scale=0.01)) + centre + rng.normal(scale=0.002, size=3)
        assert np.square(other - target).sum() >= np.square(aligned - target).sum() - 1e-12
    assert best * 1000 == pytest.approx(M.p_mpjpe(pred, target))


def test_n_mpjpe_scaled_copy():
    target = _pose_seq(5, seed=5)
    scales = np.array([0.5, 0.9, 1.0, 1.5, 2.0])[:, None, None]
    pred = target * scales
    assert M.mpjpe(pred, target) > 10
    assert M.n_mpjpe(pred, target) == pytest.approx(0.0, abs=1e-9)
    # an offset is not removed by scaling: N-MPJPE stays positive, <= MPJPE
    shifted = target + 0.01
    assert 0 < M.n_mpjpe(shifted, target) <= M.mpjpe(shifted, target) + 1e-9


def test_pck_and_auc_known_distances():
    target = np.zeros((2, 17, 3))
    d = 0.01 * np.arange(17) + 0.005  # 5, 15, ..., 165 mm
    pred = target.copy()
    pred[..., 1] = d
    assert M.pck(pred, target) == pytest.approx(15 / 17 * 100)  # 5 .. 145 mm pass
    np.testing.assert_array_equal(M.pck_per_joint(pred, target), np.where(d < 0.15, 100.0, 0.0))
    # AUC of a perfect prediction: every threshold but 0 counts everything
    assert M.auc(target, target) == pytest.approx(30 / 31 * 100)
    uniform = target.copy()
    uniform[..., 0] = 0.0725  # passes thresholds 75, 80, ..., 150 mm: 16 of 31
    assert M.auc(uniform, target) == pytest.approx(16 / 31 * 100)


def test_mpjve_linear_drift():
    target = _pose_seq(7, seed=6)
    drift = np.arange(7)[:, None, None] * np.array([0.001, 0.0, 0.0])  # 1 mm per frame
    assert M.mpjve(target + drift, target) == pytest.approx(1.0)
    np.testing.assert_allclose(M.mpjve_per_joint(target + drift, target), np.ones(17))
    with pytest.raises(ValueError):
        M.mpjve(target[:1], target[:1])


def test_metrics_accept_torch_and_check_shapes():
    target = torch.zeros(3, 17, 3)
    pred = target + torch.tensor([0.0, 0.0, 0.02])
    assert M.mpjpe(pred, target) == pytest.approx(20.0)
    with pytest.raises(ValueError):
        M.mpjpe(pred, target[:2])
