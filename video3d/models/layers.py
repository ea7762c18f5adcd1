"""Building blocks shared by the lifter families (KTPFormer, AMPose).

Transformer pieces follow the usual pre-norm ViT layout (``norm1 -> attn``,
``norm2 -> mlp``, both with residuals and stochastic depth); graph pieces
follow the modulated-GCN family (REFERENCE §3). Tensors are batch-first:
tokens are (B, N, C) with N = joints or frames.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from video3d import skeleton

__all__ = [
    "DropPath",
    "Mlp",
    "Attention",
    "Block",
    "ModulatedGraphConv",
    "GraphConvBNReLU",
    "chain_adjacency",
    "skeleton_adjacency",
    "normalize_adjacency",
    "init_transformer_weights",
]


# --------------------------------------------------------------------------- #
# Regularisation
# --------------------------------------------------------------------------- #
def drop_path(x: Tensor, drop_prob: float = 0.0, training: bool = False) -> Tensor:
    """Stochastic depth: zero whole samples of a residual branch.

    x: (B, ...) residual-branch output. Each sample is kept with probability
    ``1 - drop_prob`` and rescaled by ``1 / (1 - drop_prob)`` so the
    expectation is unchanged. Identity when not training or ``drop_prob == 0``.
    """
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    mask_shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    mask = x.new_empty(mask_shape).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    """Stochastic depth per sample (module form of :func:`drop_path`)."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: Tensor) -> Tensor:
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob:.3f}"


# --------------------------------------------------------------------------- #
# Transformer
# --------------------------------------------------------------------------- #
class Mlp(nn.Module):
    """Two-layer feed-forward network ``fc1 -> act -> drop -> fc2 -> drop``.

    (..., in_features) -> (..., out_features).
    """

    def __init__(
        self,
        in_features: int,
        hidden_features: int | None = None,
        out_features: int | None = None,
        act_layer: Callable[[], nn.Module] = nn.GELU,
        drop: float = 0.0,
    ) -> None:
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        x = self.drop(self.act(self.fc1(x)))
        return self.drop(self.fc2(x))


class Attention(nn.Module):
    """Multi-head self-attention with one fused ``qkv`` projection.

    (B, N, dim) -> (B, N, dim). Uses
    :func:`torch.nn.functional.scaled_dot_product_attention` (softmax scale
    ``head_dim ** -0.5``).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        qkv_bias: bool = False,
        attn_drop: float = 0.0,
        proj_drop: float = 0.0,
    ) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim ({dim}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.attn_drop = float(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)  # each (B, heads, N, head_dim)
        x = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.attn_drop if self.training else 0.0
        )
        x = x.transpose(1, 2).reshape(b, n, c)
        return self.proj_drop(self.proj(x))


class Block(nn.Module):
    """Pre-norm transformer encoder block.

    ``x = x + drop_path(attn(norm1(x)))``; ``x = x + drop_path(mlp(norm2(x)))``.
    (B, N, dim) -> (B, N, dim).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = False,
        drop: float = 0.0,
        attn_drop: float = 0.0,
        drop_path: float = 0.0,
        act_layer: Callable[[], nn.Module] = nn.GELU,
        norm_layer: Callable[[int], nn.Module] = nn.LayerNorm,
    ) -> None:
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


def init_transformer_weights(module: nn.Module) -> None:
    """Initialise Linear (truncated normal, std 0.02, zero bias) and LayerNorm
    (weight 1, bias 0), the usual ViT scheme. Use with ``model.apply``; it
    leaves every other module (graph convolutions, BatchNorm) untouched."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        if module.weight is not None:
            nn.init.ones_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


# --------------------------------------------------------------------------- #
# Graphs
# --------------------------------------------------------------------------- #
def skeleton_adjacency() -> Tensor:
    """Binary bone adjacency of the Human3.6M-17 skeleton, (17, 17) float32,
    symmetric, zero diagonal (from :func:`video3d.skeleton.adjacency`)."""
    return torch.as_tensor(np.asarray(skeleton.adjacency(self_loops=False)), dtype=torch.float32)


def chain_adjacency(num_frames: int) -> Tensor:
    """Binary temporal chain adjacency, (T, T) float32: frame t is linked to
    t - 1 and t + 1 (symmetric, zero diagonal)."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    idx = torch.arange(num_frames - 1)
    adj = torch.zeros(num_frames, num_frames, dtype=torch.float32)
    adj[idx, idx + 1] = 1.0
    adj[idx + 1, idx] = 1.0
    return adj


def normalize_adjacency(adj: Tensor) -> Tensor:
    """Modulated-GCN normalisation of a binary graph, (N, N) -> (N, N).

    Off-diagonal entries of row i are divided by the neighbour count of node
    i (self excluded; rows without neighbours stay zero), then the diagonal
    is set to 1. The result is generally *not* symmetric; the graph
    convolution symmetrises ``A + Q`` itself.
    """
    adj = adj.to(torch.float32)
    eye = torch.eye(adj.shape[0], dtype=adj.dtype, device=adj.device)
    off = adj * (1.0 - eye)
    deg = off.sum(dim=1, keepdim=True)
    off = torch.where(deg > 0, off / deg.clamp_min(1e-12), torch.zeros_like(off))
    return off + eye


class ModulatedGraphConv(nn.Module):
    """Graph convolution with weight modulation and a learnable affinity.

    With normalised adjacency A (:func:`normalize_adjacency`), learnable
    affinity Q (``adj2``) and ``A_hat = ((A + Q) + (A + Q)^T) / 2``::

        out = (A_hat * I) (M * X W0) + (A_hat * (1 - I)) (M * X W1) + b

    i.e. a node's own feature goes through ``W0`` and its neighbours' through
    ``W1``; ``M`` modulates every output channel per node.

    Args:
        in_features: Cin.
        out_features: Cout.
        adj: (N, N) binary graph (diagonal ignored), or an already normalised
            one with ``normalize=False``. Stored as the non-persistent buffer
            ``adj`` (it is rebuilt from the graph, never saved).
        bias: add a learnable bias ``b`` (Cout,).
        normalize: apply :func:`normalize_adjacency` to ``adj``.

    Parameters: ``W`` (2, Cin, Cout) = [W0, W1], Xavier-uniform with gain
    1.414; ``M`` (N, Cout) init 1; ``adj2`` = Q (N, N) init 1e-6; ``bias``
    (Cout,) uniform in +-1/sqrt(Cout). These are the modulated-GCN family's
    initialisations.

    Shapes: (B, N, Cin) -> (B, N, Cout).
    """

    def __init__(
        self, in_features: int, out_features: int, adj: Tensor, bias: bool = True, normalize: bool = True
    ) -> None:
        super().__init__()
        adj = torch.as_tensor(adj, dtype=torch.float32)
        if adj.ndim != 2 or adj.shape[0] != adj.shape[1]:
            raise ValueError(f"adj must be square (N, N), got {tuple(adj.shape)}")
        n = adj.shape[0]
        self.in_features = in_features
        self.out_features = out_features
        self.register_buffer("adj", normalize_adjacency(adj) if normalize else adj.clone(), persistent=False)
        self.W = nn.Parameter(torch.empty(2, in_features, out_features))
        self.M = nn.Parameter(torch.empty(n, out_features))
        self.adj2 = nn.Parameter(torch.empty(n, n))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    @property
    def num_nodes(self) -> int:
        return self.M.shape[0]

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.W, gain=1.414)
        nn.init.ones_(self.M)
        nn.init.constant_(self.adj2, 1e-6)
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.out_features)
            nn.init.uniform_(self.bias, -bound, bound)

    def affinity(self) -> Tensor:
        """The learned topology ``A_hat = ((A + Q) + (A + Q)^T) / 2``, (N, N)."""
        a = self.adj + self.adj2
        return (a + a.transpose(0, 1)) * 0.5

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2] != self.num_nodes:
            raise ValueError(f"expected {self.num_nodes} nodes on dim -2, got shape {tuple(x.shape)}")
        a_hat = self.affinity()
        self_w = torch.diagonal(a_hat)  # (N,): (A_hat * I) is diagonal
        off = a_hat - torch.diag_embed(self_w)  # A_hat * (1 - I)
        h0 = self.M * torch.matmul(x, self.W[0])  # (B, N, Cout)
        h1 = self.M * torch.matmul(x, self.W[1])
        out = self_w.unsqueeze(-1) * h0 + torch.matmul(off, h1)
        if self.bias is not None:
            out = out + self.bias
        return out

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"num_nodes={self.num_nodes}, bias={self.bias is not None}")


class GraphConvBNReLU(nn.Module):
    """``ModulatedGraphConv -> BatchNorm1d (over channels) -> ReLU``.

    (B, N, Cin) -> (B, N, Cout). Submodules ``gconv`` and ``bn``.
    """

    def __init__(self, in_features: int, out_features: int, adj: Tensor) -> None:
        super().__init__()
        self.gconv = ModulatedGraphConv(in_features, out_features, adj)
        self.bn = nn.BatchNorm1d(out_features)
        self.act = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        x = self.gconv(x)
        x = self.bn(x.transpose(1, 2)).transpose(1, 2)
        return self.act(x)
