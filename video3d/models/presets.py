"""Lifter configurations as data, and a factory that builds them.

``PRESETS[arch][preset]`` holds constructor keyword arguments. ``paper``
reproduces the published model; ``small`` / ``tiny`` are sized to train and
run on a 2-core CPU (measured figures in docs/models.md).
"""
from __future__ import annotations

import copy
from typing import Any

from torch import nn

from video3d.errors import UserError
from video3d.models.ampose import AMPose
from video3d.models.ktpformer import KTPFormer

__all__ = ["PRESETS", "ARCHITECTURES", "model_config", "build_model"]

ARCHITECTURES: dict[str, type[nn.Module]] = {"ktpformer": KTPFormer, "ampose": AMPose}

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "ktpformer": {
        # CVPR 2024 release: 35.2 M parameters, ~153 G MACs per 243-frame window.
        "paper": dict(num_frames=243, embed_dim=512, depth=8, num_heads=8, mlp_ratio=2.0,
                      qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.1),
        # Full 243-frame context at 1/8 of the width: CPU training.
        "small": dict(num_frames=243, embed_dim=64, depth=4, num_heads=4, mlp_ratio=2.0,
                      qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.05),
        # Full 243-frame context, width 48, 3 pairs: what trains well in about an
        # hour on a 2-core CPU (the shipped weights); ~3x cheaper per step than "small".
        "cpu": dict(num_frames=243, embed_dim=48, depth=3, num_heads=4, mlp_ratio=2.0,
                    qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0),
        # Short windows, fastest to train and run; for quick experiments.
        "tiny": dict(num_frames=81, embed_dim=32, depth=3, num_heads=4, mlp_ratio=2.0,
                     qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0),
    },
    "ampose": {
        # ICASSP 2023: width 512, 5 stages; 18.4 M parameters (paper: 18.3 M).
        "paper": dict(embed_dim=512, depth=5, num_heads=8, mlp_ratio=2.0,
                      drop_rate=0.0, drop_path_rate=0.0),
        "small": dict(embed_dim=128, depth=4, num_heads=8, mlp_ratio=2.0,
                      drop_rate=0.0, drop_path_rate=0.0),
    },
}


def model_config(arch: str, preset: str, **overrides: Any) -> dict[str, Any]:
    """Constructor kwargs of ``PRESETS[arch][preset]`` updated with ``overrides``
    (a fresh dict). Raises :class:`~video3d.errors.UserError` for an unknown
    architecture, preset or argument."""
    arch_l, preset_l = arch.lower(), preset.lower()
    if arch_l not in PRESETS:
        raise UserError(f"unknown lifter architecture {arch!r}; choose one of {sorted(PRESETS)}")
    if preset_l not in PRESETS[arch_l]:
        raise UserError(f"unknown preset {preset!r} for {arch_l}; choose one of {sorted(PRESETS[arch_l])}")
    config = copy.deepcopy(PRESETS[arch_l][preset_l])
    config.update(overrides)
    return config


def build_model(arch: str, preset: str, **overrides: Any) -> nn.Module:
    """Build ``arch`` ("ktpformer" | "ampose") with ``PRESETS[arch][preset]``
    and keyword ``overrides`` (e.g. ``num_frames=27``)."""
    config = model_config(arch, preset, **overrides)
    try:
        return ARCHITECTURES[arch.lower()](**config)
    except TypeError as err:  # an override the constructor does not take
        raise UserError(f"bad argument for {arch.lower()}: {err}") from None
