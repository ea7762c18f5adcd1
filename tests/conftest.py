"""Shared fixtures: tiny lifter weights, generated clips, the shared-data paths."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PARK = SHARED / "media" / "street" / "park.mp4"
MOCAP = Path(os.environ.get("VIDEO3D_MOCAP", SHARED / "data" / "mocap"))

torch.set_num_threads(min(2, torch.get_num_threads()))


def make_tiny_weights(folder: Path, arch: str, preset: str = "tiny", **overrides) -> Path:
    """Random-weight lifter saved exactly like shipped weights (safetensors + card)."""
    from video3d.lift.weights import save_weights
    from video3d.models.registry import build_model, model_config

    torch.manual_seed(0)
    model = build_model(arch, preset, **overrides)
    card = {"name": f"{arch}-test", "arch": arch, "preset": preset, "config": model_config(arch, preset, **overrides),
            "training": {"data": "none (random weights for tests)"}, "metrics": {}}
    save_weights(model, folder / f"{arch}-test", card)
    return folder / f"{arch}-test.safetensors"


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> dict[str, Path]:
    """{'ktpformer': path (27-frame windows), 'ampose': path}."""
    folder = tmp_path_factory.mktemp("weights")
    return {"ktpformer": make_tiny_weights(folder, "ktpformer", num_frames=27),
            "ampose": make_tiny_weights(folder, "ampose", "small", embed_dim=32, depth=2, num_heads=4)}


@pytest.fixture(scope="session")
def park_video() -> Path:
    if not PARK.is_file():
        pytest.skip(f"real clip not available: {PARK} (../shared/media is absent on this machine)")
    return PARK


@pytest.fixture(scope="session")
def mocap_root() -> Path:
    if not (MOCAP / "cmu").is_dir():
        pytest.skip(f"mocap data not available: {MOCAP} (set VIDEO3D_MOCAP or provide ../shared/data/mocap)")
    return MOCAP
