"""Keypoint-level multi-view relational transformer (REFERENCE §5).

One token per (frame, view, joint). A token describes the camera ray through
the 2D detection of that joint in that view, in Plücker coordinates
``(d, m = c x d)`` expressed in a *subject-centred* world frame (origin at the
window's triangulated pelvis, axes of the calibration/world frame, z up), plus
the detector's confidence and where the DLT estimate of the joint lies
relative to the ray (its perpendicular offset and depth along the ray).

Attention alternates across views (the set of cameras seeing one joint at
one frame), joints (one view, one frame) and time (one view, one joint).
There is no view-index embedding: views are an unordered set (any permutation
of the view axis permutes nothing in the output) and absent views are masked
out, so the same weights serve 2 to 8 cameras. After the blocks, views are
pooled by a masked attention pooling, a joint/time block mixes the pooled
features, and a linear head predicts a 3D correction (metres) added to the
DLT point.

Shapes: B batch, T frames, V views (padded), J = 17 joints, C width.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from video3d.models.layers import Mlp, init_transformer_weights

#: Per-token input features: d (3), m (3), confidence, perpendicular offset of
#: the DLT point from the ray (3), depth of the DLT point along the ray / 5 m.
TOKEN_FEATURES = 11


class SetAttention(nn.Module):
    """Multi-head self-attention over (N, L, C) with an optional key mask (N, L), True = attend."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, key_mask: Tensor | None = None) -> Tensor:
        N, L, C = x.shape
        q, k, v = self.qkv(x).reshape(N, L, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q * (C // self.heads) ** -0.5) @ k.transpose(-2, -1)  # (N, H, L, L)
        if key_mask is not None:
            attn = attn.masked_fill(~key_mask[:, None, None, :], float("-inf"))
        out = attn.softmax(dim=-1) @ v  # plain matmuls: faster than fused kernels for L <= 27 on CPU
        return self.proj(out.transpose(1, 2).reshape(N, L, C))


class AxisBlock(nn.Module):
    """Pre-norm transformer block attending along one axis of (B, T, V, J, C)."""

    def __init__(self, dim: int, heads: int, axis: str, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        if axis not in ("view", "joint", "time"):
            raise ValueError(f"axis must be view, joint or time, got {axis!r}")
        self.axis = axis
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SetAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, view_mask: Tensor) -> Tensor:
        """x: (B, T, V, J, C); view_mask: (B, T, V, J) bool, True = token present."""
        B, T, V, J, C = x.shape
        if self.axis == "view":
            seq = x.permute(0, 1, 3, 2, 4).reshape(B * T * J, V, C)
            mask = view_mask.permute(0, 1, 3, 2).reshape(B * T * J, V)
            # A (t, j) seen by no view attends to everything (its output is ignored).
            keep = mask | ~mask.any(dim=1, keepdim=True)
            seq = seq + self.attn(self.norm1(seq), keep)
            seq = seq + self.mlp(self.norm2(seq))
            return seq.reshape(B, T, J, V, C).permute(0, 1, 3, 2, 4)
        if self.axis == "joint":
            seq = x.reshape(B * T * V, J, C)
        else:
            seq = x.permute(0, 2, 3, 1, 4).reshape(B * V * J, T, C)
        seq = seq + self.attn(self.norm1(seq))
        seq = seq + self.mlp(self.norm2(seq))
        if self.axis == "joint":
            return seq.reshape(B, T, V, J, C)
        return seq.reshape(B, V, J, T, C).permute(0, 3, 1, 2, 4)


class PooledBlock(nn.Module):
    """Transformer block over the joints x frames of the view-pooled features (B, T, J, C)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SetAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        B, T, J, C = x.shape
        seq = x.reshape(B, T * J, C)
        seq = seq + self.attn(self.norm1(seq))
        seq = seq + self.mlp(self.norm2(seq))
        return seq.reshape(B, T, J, C)


def _sinusoid(num: int, dim: int) -> Tensor:
    pos = torch.arange(num, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(num, dim)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div[: dim // 2])
    return pe


class MultiViewRelational(nn.Module):
    """Multi-view relational transformer predicting a correction to the DLT pose.

    Args:
        num_joints: J (17).
        num_frames: window length T the model is trained for (temporal
            encoding is sinusoidal, so other lengths run too).
        dim: token width C. heads: attention heads. depth: number of
            (view, joint, time) block triples. pooled_depth: blocks after view pooling.
    """

    def __init__(self, num_joints: int = 17, num_frames: int = 9, dim: int = 48, heads: int = 4,
                 depth: int = 2, pooled_depth: int = 1) -> None:
        super().__init__()
        self.num_joints, self.num_frames, self.dim = num_joints, num_frames, dim
        self.embed = nn.Sequential(nn.Linear(TOKEN_FEATURES, dim), nn.GELU(), nn.Linear(dim, dim))
        self.dlt_embed = nn.Linear(4, dim)  # DLT point (3) + missing flag
        self.joint_embed = nn.Parameter(torch.zeros(num_joints, dim))
        self.blocks = nn.ModuleList(AxisBlock(dim, heads, axis) for _ in range(depth)
                                    for axis in ("view", "joint", "time"))
        self.pool_score = nn.Linear(dim, 1)
        self.pooled = nn.ModuleList(PooledBlock(dim, heads) for _ in range(pooled_depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 3)
        self.apply(init_transformer_weights)
        nn.init.trunc_normal_(self.joint_embed, std=0.02)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, tokens: Tensor, mask: Tensor, dlt: Tensor, dlt_missing: Tensor) -> Tensor:
        """Predict the corrected pose.

        tokens: (B, T, V, J, 11) features of :func:`video3d.multiview.features.ray_features`;
        mask: (B, T, V, J) bool, True where the view observed the joint;
        dlt: (B, T, J, 3) subject-centred DLT points (0 where missing);
        dlt_missing: (B, T, J) bool. Returns (B, T, J, 3) subject-centred metres.
        """
        B, T, V, J, _ = tokens.shape
        pe = _sinusoid(T, self.dim).to(tokens)
        ctx = self.dlt_embed(torch.cat([dlt, dlt_missing[..., None].to(dlt)], dim=-1))  # (B, T, J, C)
        ctx = ctx + self.joint_embed + pe[None, :, None]
        x = self.embed(tokens) + ctx[:, :, None]
        x = x * mask[..., None].to(x)
        for blk in self.blocks:
            x = blk(x, mask)
        score = self.pool_score(x).squeeze(-1).masked_fill(~mask, -1e4)  # (B, T, V, J)
        w = torch.softmax(score, dim=2) * mask.any(dim=2, keepdim=True).to(x)
        pooled = (w[..., None] * x).sum(dim=2) + ctx  # (B, T, J, C)
        for blk in self.pooled:
            pooled = blk(pooled)
        return dlt + self.head(self.norm(pooled))
