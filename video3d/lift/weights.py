"""Lifter weights on disk: ``<name>.safetensors`` plus a ``<name>.json`` model card.

The card records the architecture and its constructor arguments, the input
convention the weights expect, training data and settings, validation metrics
and the sha256 of the safetensors file (checked on load).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from video3d.errors import UserError, WeightsError
from video3d.io.atomic import atomic_file, atomic_write
from video3d.io.hashing import file_sha256  # noqa: F401  (re-exported: weights.file_sha256)

#: Input convention every shipped lifter is trained with.
INPUT_CONVENTION = {
    "joints": "h36m-17",
    "keypoint_mapping": "video3d.keypoints.coco_to_h36m (head extrapolation 0.75)",
    "normalization": "screen: x_n = 2x/w - 1, y_n = 2y/w - h/w",
    "output": "camera frame (x right, y down, z forward), metres, pelvis = 0",
}

def weights_dir() -> Path:
    """Folder of the shipped weights.

    Looked up in this order: the env variable ``VIDEO3D_WEIGHTS``; the
    ``weights/`` folder installed inside the package (``pip install .`` puts
    the repository's ``weights/`` there as package data); the repository's
    ``weights/`` folder (a checkout or an editable install). Every file is
    checked against the sha256 in its model card when loaded.
    """
    env = os.environ.get("VIDEO3D_WEIGHTS")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parents[1]
    installed = package / "weights"
    return installed if installed.is_dir() else package.parent / "weights"


def default_weights_path(lifter: str) -> Path:
    """The shipped weights of ``lifter`` (its registry entry's ``default_weights``)."""
    from video3d.models.registry import get_lifter

    return weights_dir() / f"{get_lifter(lifter).default_weights}.safetensors"


def resolve_weights(lifter: str, weights: str | Path | None = None) -> Path:
    """Path of the safetensors file for ``lifter`` (default shipped weights if None).

    ``weights`` may be a path to a .safetensors file (its .json card beside it)
    or the name of a file in :func:`weights_dir`.
    """
    return find_weights_file(default_weights_path(lifter) if weights is None else weights)


def find_weights_file(weights: str | Path) -> Path:
    """A .safetensors path, or the name of a file in :func:`weights_dir`; WeightsError if absent."""
    path = Path(weights)
    if not path.suffix and not path.exists():
        path = weights_dir() / f"{weights}.safetensors"
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    return path


def save_weights(model: torch.nn.Module, path: str | Path, card: dict) -> dict:
    """Write ``path`` (.safetensors) and its card (.json) atomically; returns the card."""
    path = Path(path).with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_file(path) as tmp:
        save_file(state, str(tmp), metadata={"arch": card["arch"]})
        card = {**card, "input": INPUT_CONVENTION, "file": path.name, "sha256": file_sha256(tmp)}
    with atomic_write(path.with_suffix(".json")) as f:
        f.write(json.dumps(card, indent=2) + "\n")
    return card


def read_card(path: str | Path) -> dict:
    card_path = Path(path).with_suffix(".json")
    if not card_path.is_file():
        raise WeightsError(f"model card not found beside the weights: {card_path}")
    try:
        card = json.loads(card_path.read_text())
    except json.JSONDecodeError as e:
        raise WeightsError(f"model card {card_path} is not valid JSON ({e.msg})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise WeightsError(f"cannot read model card {card_path}: {getattr(e, 'strerror', None) or e}") from None
    if not isinstance(card, dict):
        raise WeightsError(f"model card {card_path} must be a JSON object, got a {type(card).__name__}")
    if not isinstance(card.get("arch"), str):
        raise WeightsError(f"model card {card_path} has no 'arch' (the lifter architecture, e.g. \"ktpformer\")")
    if not isinstance(card.get("config", {}), dict):
        raise WeightsError(f"model card {card_path}: 'config' must be a JSON object")
    return card


def read_verified_card(path: str | Path) -> dict:
    """The model card of ``path`` (:func:`read_card`) with ``sha256`` set to the file's own,
    after checking it against the card's."""
    card = read_card(path)
    digest = file_sha256(path)
    if card.get("sha256") and card["sha256"] != digest:
        raise WeightsError(f"weights file {path} is corrupt or was changed (sha256 mismatch with its card)")
    return {**card, "sha256": digest}


def load_weights(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Build the model described by the card and load the weights (sha256-checked)."""
    from video3d.models.registry import get_lifter

    path = Path(path)
    card = read_verified_card(path)
    try:
        state = load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises several types for damaged files
        raise WeightsError(f"cannot read weights {path}: {e}") from None
    card_path = path.with_suffix(".json")
    try:
        spec = get_lifter(card.get("arch", "(none)"))
    except UserError as e:
        raise WeightsError(f"model card of {path}: {e}") from None
    try:
        model = spec.build(card.get("preset", spec.default_preset), **card.get("config", {}))
    except (TypeError, ValueError, KeyError) as e:
        raise WeightsError(f"model card {card_path} describes no buildable {card['arch']}: "
                           f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    expected = model.state_dict()
    wrong = [k for k, v in state.items() if k in expected and tuple(expected[k].shape) != tuple(v.shape)]
    if wrong:
        raise WeightsError(f"weights {path} do not match the config in {card_path}: {len(wrong)} tensor(s) "
                           f"have another shape (first: {wrong[0]} {tuple(state[wrong[0]].shape)} vs "
                           f"{tuple(expected[wrong[0]].shape)})")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise WeightsError(f"weights {path} do not match {card['arch']}: "
                           f"{len(missing)} missing, {len(unexpected)} unexpected tensors")
    model.eval().to(device)
    return model, {**card, "path": str(path)}
