"""AMPose: single-frame 2D->3D lifter alternating attention and graph convolution.

ICASSP 2023, REFERENCE §4 (no public code; implemented from the paper).
Tokens are the 17 joints of one frame:

- per-joint linear embedding of (x, y) + learnable position embedding;
- ``depth`` stages of [pre-norm transformer block, GCN block];
- GCN block = a plain graph convolution, then a graph convolution with a
  residual connection (the paper's best variant);
- a linear head on the last GCN feature gives (x, y, z) per joint.

Graph convolution (:class:`JointGroupGraphConv`): neighbours are split in 3
groups with separate weights -- (1) the joint itself, (2) neighbours closer
to the pelvis, (3) neighbours farther from it::

    Z = sum_j D_j^-1/2 A_j D_j^-1/2 X W_j,   A_1 + A_2 + A_3 = A + I.

A_2 and A_3 are directed (child -> parent and parent -> child), so their
row and column sums differ; we take D_j^-1/2 from the row sums on the left
and from the column sums on the right (out-/in-degree), which is the usual
symmetric normalisation for a symmetric A_j and stays finite for the pelvis,
which has no parent (zero degrees give zero rows/columns).

Choices the paper leaves open (documented here): inside the GCN block each
graph convolution is followed by LayerNorm then GELU (LayerNorm works for any
batch size, including single frames at inference; GELU matches the
transformer MLP); dropout ``drop_rate`` on the residual branch.

With width 512, depth 5 and ``mlp_ratio=2`` the model has 18.41 M
parameters, the closest to the paper's 18.3 M (``mlp_ratio=4`` gives 23.6 M,
1 gives 15.8 M).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from video3d import skeleton
from video3d.models.layers import Block, init_transformer_weights

__all__ = ["AMPose", "JointGroupGraphConv", "GCNBlock", "joint_group_adjacency"]


def joint_group_adjacency(normalize: bool = True) -> Tensor:
    """The three joint-group graphs of the H36M-17 skeleton, (3, 17, 17) float32.

    Group 0: self (identity); group 1: row i links joint i to its neighbour
    closer to the pelvis (its parent); group 2: to its neighbours farther
    from the pelvis (its children). The sum over groups is the bone
    adjacency with self loops. With ``normalize`` each group becomes
    ``D_out^-1/2 A_j D_in^-1/2`` (see module docstring).
    """
    adj = np.asarray(skeleton.adjacency(self_loops=False), dtype=np.float32)
    hops = skeleton.hops_from_root()
    closer = hops[None, :] < hops[:, None]
    farther = hops[None, :] > hops[:, None]
    groups = np.stack([np.eye(len(hops), dtype=np.float32), adj * closer, adj * farther])
    if normalize:
        d_out = groups.sum(axis=2)  # (3, N) row sums
        d_in = groups.sum(axis=1)  # (3, N) column sums
        inv_out = np.where(d_out > 0, 1.0 / np.sqrt(np.maximum(d_out, 1e-12)), 0.0)
        inv_in = np.where(d_in > 0, 1.0 / np.sqrt(np.maximum(d_in, 1e-12)), 0.0)
        groups = inv_out[:, :, None] * groups * inv_in[:, None, :]
    return torch.as_tensor(groups, dtype=torch.float32)


class JointGroupGraphConv(nn.Module):
    """Graph convolution with separate weights per joint group.

    ``Z = sum_j A_j X W_j + b`` with the normalised group graphs A_j
    (buffer ``adj``, (G, N, N), non-persistent) and weights ``W``
    (G, Cin, Cout), Xavier-uniform per group; bias init 0.

    Shapes: (B, N, Cin) -> (B, N, Cout).
    """

    def __init__(self, in_features: int, out_features: int, adj: Tensor | None = None, bias: bool = True) -> None:
        super().__init__()
        adj = joint_group_adjacency() if adj is None else torch.as_tensor(adj, dtype=torch.float32)
        if adj.ndim != 3 or adj.shape[1] != adj.shape[2]:
            raise ValueError(f"adj must be (G, N, N), got {tuple(adj.shape)}")
        self.in_features = in_features
        self.out_features = out_features
        self.register_buffer("adj", adj, persistent=False)
        self.W = nn.Parameter(torch.empty(adj.shape[0], in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = math.sqrt(6.0 / (self.in_features + self.out_features))
        nn.init.uniform_(self.W, -bound, bound)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        g, n, _ = self.adj.shape
        if x.shape[-2] != n:
            raise ValueError(f"expected {n} joints on dim -2, got shape {tuple(x.shape)}")
        agg = torch.matmul(self.adj, x.unsqueeze(-3))  # (B, G, N, Cin)
        agg = agg.movedim(-3, -2).reshape(*x.shape[:-1], g * self.in_features)  # (B, N, G*Cin)
        out = torch.matmul(agg, self.W.reshape(g * self.in_features, self.out_features))
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"groups={self.adj.shape[0]}, bias={self.bias is not None}")


class GCNBlock(nn.Module):
    """Plain graph conv, then a graph conv with a residual.

    ``h = act(norm1(gconv1(x)))``; ``out = h + drop(act(norm2(gconv2(h))))``.
    (B, N, dim) -> (B, N, dim).
    """

    def __init__(self, dim: int, drop: float = 0.0) -> None:
        super().__init__()
        self.gconv1 = JointGroupGraphConv(dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.gconv2 = JointGroupGraphConv(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.act = nn.GELU()
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        h = self.act(self.norm1(self.gconv1(x)))
        return h + self.drop(self.act(self.norm2(self.gconv2(h))))


class AMPose(nn.Module):
    """AMPose single-frame lifter.

    Args:
        num_joints: J (17; the joint-group graphs are the H36M skeleton's).
        in_chans: input channels per joint (2: normalised screen x, y).
        embed_dim: C, token width (paper 512).
        depth: number of [transformer block, GCN block] stages (paper 5).
        num_heads: attention heads.
        mlp_ratio: transformer MLP hidden width / C.
        drop_rate: dropout (position embedding, attention projection, MLP,
            GCN residual branch).
        drop_path_rate: stochastic depth of the transformer blocks, rising
            linearly from 0 to this value.

    Shapes: (B, J, in_chans) -> (B, J, 3), or (B, T, J, in_chans) ->
    (B, T, J, 3) with frames folded into the batch (each frame is lifted
    independently).
    """

    def __init__(
        self,
        num_joints: int = 17,
        in_chans: int = 2,
        embed_dim: int = 512,
        depth: int = 5,
        num_heads: int = 8,
        mlp_ratio: float = 2.0,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        if num_joints != 17:
            raise ValueError("AMPose's joint groups are the Human3.6M-17 skeleton's; num_joints must be 17")
        self.num_joints = num_joints
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.depth = depth
        self.embed = nn.Linear(in_chans, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_joints, embed_dim))
        self.pos_drop = nn.Dropout(drop_rate)
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio=mlp_ratio, qkv_bias=True, drop=drop_rate, drop_path=dpr[i])
            for i in range(depth)])
        self.gcn_blocks = nn.ModuleList([GCNBlock(embed_dim, drop=drop_rate) for _ in range(depth)])
        self.head = nn.Linear(embed_dim, 3)

        self.apply(init_transformer_weights)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)

    def forward(self, x: Tensor) -> Tensor:
        """(B, J, in_chans) or (B, T, J, in_chans) -> same leading shape + (J, 3)."""
        if x.ndim not in (3, 4) or x.shape[-2] != self.num_joints or x.shape[-1] != self.in_chans:
            raise ValueError(f"AMPose expects (B, {self.num_joints}, {self.in_chans}) or "
                             f"(B, T, {self.num_joints}, {self.in_chans}), got {tuple(x.shape)}")
        lead = x.shape[:-2]
        x = x.reshape(-1, self.num_joints, self.in_chans)
        x = self.pos_drop(self.embed(x) + self.pos_embed)
        for blk, gcn in zip(self.blocks, self.gcn_blocks):
            x = gcn(blk(x))
        return self.head(x).reshape(*lead, self.num_joints, 3)
