"""KTPFormer: kinematics and trajectory prior knowledge-enhanced transformer.

A seq2seq 2D->3D lifter (CVPR 2024, REFERENCE §3): a MixSTE backbone whose
first spatial/temporal layer pair is replaced by two prior-attention layers.

- KPA (kinematics prior attention, tokens = the 17 joints of one frame): a
  graph convolution 2 -> C over the bone graph + BatchNorm + ReLU is the
  joint embedding; add a learnable spatial position embedding; pre-norm MHSA;
  residual MLP.
- TPA (trajectory prior attention, tokens = the T frames of one joint): two
  [graph conv C -> C over the T x T frame chain, BatchNorm, ReLU] layers with
  a residual around the pair; add a learnable temporal position embedding;
  pre-norm MHSA; residual MLP.
- ``depth - 1`` more (spatial block -> temporal block) pairs of plain
  pre-norm blocks. One shared LayerNorm after every spatial block
  (``spatial_norm``) and one after every temporal block (``temporal_norm``).
- Head: LayerNorm -> Linear(C, 3), applied to every frame.

LayerNorm eps follows the released model (1e-6 in the blocks and the shared
norms, 1e-5 for the first norm of the two prior layers and the head), so a
converted official checkpoint (:mod:`video3d.models.official`) reproduces it.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import torch
from torch import Tensor, nn

from video3d.models.layers import (
    Attention,
    Block,
    DropPath,
    GraphConvBNReLU,
    Mlp,
    chain_adjacency,
    init_transformer_weights,
    skeleton_adjacency,
)

__all__ = ["KTPFormer", "PriorAttentionBlock", "ResidualGraphConvPair"]


class ResidualGraphConvPair(nn.Module):
    """``x + layer2(layer1(x))`` with two :class:`GraphConvBNReLU` layers over
    the same graph (the TPA embedding). (B, N, C) -> (B, N, C)."""

    def __init__(self, dim: int, adj: Tensor) -> None:
        super().__init__()
        self.layer1 = GraphConvBNReLU(dim, dim, adj)
        self.layer2 = GraphConvBNReLU(dim, dim, adj)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layer2(self.layer1(x))


class PriorAttentionBlock(nn.Module):
    """A prior-attention layer: graph embedding, position embedding, then a
    pre-norm transformer block.

    ``x = pos_drop(embed(x) + pos_embed)``;
    ``x = x + drop_path(attn(norm1(x)))``; ``x = x + drop_path(mlp(norm2(x)))``.

    Args:
        embed: graph module mapping (B, N, Cin) -> (B, N, dim).
        num_tokens: N (joints for KPA, frames for TPA); sizes ``pos_embed``.
        dim, num_heads, mlp_ratio, qkv_bias: transformer width/heads/MLP.
        drop, attn_drop, drop_path: dropout, attention dropout, stochastic depth.
        norm_layer: norm used for ``norm2``; ``norm1`` is LayerNorm(eps=1e-5)
            as in the released model.

    Shapes: (B, N, Cin) -> (B, N, dim).
    """

    def __init__(
        self,
        embed: nn.Module,
        num_tokens: int,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
    ) -> None:
        super().__init__()
        self.embed = embed
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens, dim))
        self.pos_drop = nn.Dropout(drop)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pos_drop(self.embed(x) + self.pos_embed)
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class KTPFormer(nn.Module):
    """KTPFormer 2D->3D lifter, seq2seq over a fixed window of frames.

    Args:
        num_frames: T, the window length (fixed: sizes the temporal graph
            and position embedding).
        num_joints: J (17, the Human3.6M skeleton; the bone graph is fixed).
        in_chans: input channels per joint (2: normalised screen x, y).
        embed_dim: C, the width of every token.
        depth: number of (spatial, temporal) layer pairs, the prior pair
            included (paper: 8).
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / C.
        qkv_bias: bias on the fused qkv projection.
        drop_rate: dropout after position embeddings, attention projection
            and MLP.
        attn_drop_rate: dropout on attention weights.
        drop_path_rate: stochastic depth, rising linearly from 0 at the
            first pair to this value at the last.

    Shapes: (B, T, J, in_chans) -> (B, T, J, 3) (root-relative camera-frame
    metres when trained as in video3d).
    """

    def __init__(
        self,
        num_frames: int = 243,
        num_joints: int = 17,
        in_chans: int = 2,
        embed_dim: int = 512,
        depth: int = 8,
        num_heads: int = 8,
        mlp_ratio: float = 2.0,
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        if num_joints != 17:
            raise ValueError("KTPFormer's bone graph is the Human3.6M-17 skeleton; num_joints must be 17")
        self.num_frames = num_frames
        self.num_joints = num_joints
        self.in_chans = in_chans
        self.embed_dim = embed_dim
        self.depth = depth

        norm_layer = partial(nn.LayerNorm, eps=1e-6)
        dpr = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # 0 -> rate, linear
        common = dict(num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                      drop=drop_rate, attn_drop=attn_drop_rate, norm_layer=norm_layer)

        self.kpa = PriorAttentionBlock(
            GraphConvBNReLU(in_chans, embed_dim, skeleton_adjacency()),
            num_joints, embed_dim, drop_path=dpr[0], **common)
        self.tpa = PriorAttentionBlock(
            ResidualGraphConvPair(embed_dim, chain_adjacency(num_frames)),
            num_frames, embed_dim, drop_path=dpr[0], **common)
        self.spatial_blocks = nn.ModuleList(
            [Block(embed_dim, drop_path=dpr[i], **common) for i in range(1, depth)])
        self.temporal_blocks = nn.ModuleList(
            [Block(embed_dim, drop_path=dpr[i], **common) for i in range(1, depth)])
        self.spatial_norm = norm_layer(embed_dim)
        self.temporal_norm = norm_layer(embed_dim)
        self.head_norm = nn.LayerNorm(embed_dim)
        self.head = nn.Linear(embed_dim, 3)

        self.apply(init_transformer_weights)
        nn.init.trunc_normal_(self.kpa.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.tpa.pos_embed, std=0.02)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[2] != self.num_joints or x.shape[3] != self.in_chans:
            raise ValueError(
                f"KTPFormer expects (B, T, {self.num_joints}, {self.in_chans}), got {tuple(x.shape)}")
        if x.shape[1] != self.num_frames:
            raise ValueError(
                f"KTPFormer was built for windows of exactly {self.num_frames} frames, got {x.shape[1]}; "
                "pad or crop the clip into windows of that length before calling the model")

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, T, J, in_chans) -> (B, T, J, C) after the last temporal norm."""
        self._check_input(x)
        b, t, j, _ = x.shape
        # Spatial: tokens are the joints of one frame.
        x = self.spatial_norm(self.kpa(x.reshape(b * t, j, -1)))
        # Temporal: tokens are the frames of one joint.
        x = x.reshape(b, t, j, -1).transpose(1, 2).reshape(b * j, t, -1)
        x = self.temporal_norm(self.tpa(x))
        for s_blk, t_blk in zip(self.spatial_blocks, self.temporal_blocks):
            x = x.reshape(b, j, t, -1).transpose(1, 2).reshape(b * t, j, -1)
            x = self.spatial_norm(s_blk(x))
            x = x.reshape(b, t, j, -1).transpose(1, 2).reshape(b * j, t, -1)
            x = self.temporal_norm(t_blk(x))
        return x.reshape(b, j, t, -1).transpose(1, 2)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, J, in_chans) 2D keypoints -> (B, T, J, 3) 3D joints."""
        return self.head(self.head_norm(self.forward_features(x)))
