"""Change the window length of a trained KTPFormer (progressive sequence length).

Only five tensors of KTPFormer depend on the window length T: the temporal
position embedding (1, T, C), and in each of the two TPA graph convolutions
the per-frame modulation M (T, C) and the learnable affinity Q (T, T). A model
trained on short windows (many more independent samples per FLOP, which is
what matters when compute is scarce) is turned into a long-window model by
linearly interpolating the embedding and the modulations along time and
re-initialising Q (whose learned values are ~1e-6-scale corrections of the
frame chain); the long model is then fine-tuned. Same idea as interpolating a
ViT's position embeddings to a new resolution.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

#: Suffixes of the T-dependent tensors and how each is resized.
TEMPORAL_TENSORS = {"tpa.pos_embed": "interpolate_dim1", ".gconv.M": "interpolate_dim0", ".gconv.adj2": "reinit"}


def _interpolate_time(x: torch.Tensor, length: int, dim: int) -> torch.Tensor:
    """Linear interpolation of ``x`` along ``dim`` to ``length`` samples (align_corners)."""
    moved = x.movedim(dim, -1)
    flat = moved.reshape(1, -1, moved.shape[-1]).float()
    out = F.interpolate(flat, size=length, mode="linear", align_corners=True)
    return out.reshape(*moved.shape[:-1], length).movedim(-1, dim).to(x.dtype)


def resize_ktpformer_state(state: dict[str, torch.Tensor], num_frames: int, affinity_init: float = 1e-6
                           ) -> dict[str, torch.Tensor]:
    """Return a copy of a KTPFormer state dict for windows of ``num_frames``.

    state: our KTPFormer state dict (video3d names) for any window length.
    """
    out = dict(state)
    for key, value in state.items():
        if key.endswith("tpa.pos_embed"):
            out[key] = _interpolate_time(value, num_frames, dim=1)
        elif key.startswith("tpa.") and key.endswith(".gconv.M"):
            out[key] = _interpolate_time(value, num_frames, dim=0)
        elif key.startswith("tpa.") and key.endswith(".gconv.adj2"):
            out[key] = torch.full((num_frames, num_frames), affinity_init, dtype=value.dtype)
    return out
