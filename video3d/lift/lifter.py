"""`Lifter`: 2D keypoints (pixels) -> root-relative 3D poses in the camera frame."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from video3d import skeleton
from video3d.errors import UserError
from video3d.keypoints import normalize_screen
from video3d.lift.weights import load_weights, read_card, resolve_weights
from video3d.models.registry import DEFAULT_LIFTER, LifterSpec, get_lifter
from video3d.nearest import nearest_valid_index
from video3d.lift.windows import merge_windows, split_windows


def mirror_torch(x: torch.Tensor) -> torch.Tensor:
    """:func:`video3d.skeleton.mirror` on a tensor (..., 17, D), on its own device."""
    out = x[..., list(skeleton.FLIP_PERMUTATION), :].clone()
    out[..., 0] = -out[..., 0]
    return out


def select_device(device: str = "auto") -> torch.device:
    """'auto' -> cuda when available, else cpu; otherwise the named device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {device} requested but no CUDA GPU is available")
    return torch.device(device)


def hold_missing(keypoints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Fill frames that are not valid with the nearest valid frame (earlier on ties).

    keypoints: (T, 17, 2); valid: (T,) bool with at least one True. Any NaN
    joint left inside a valid frame is replaced by the pelvis of that frame.
    """
    if not np.any(valid):
        raise UserError("no valid 2D pose to lift")
    out = keypoints[nearest_valid_index(valid)].copy()
    bad = ~np.isfinite(out).all(axis=-1)
    if bad.any():
        root = np.nanmean(out, axis=1, keepdims=True)
        out = np.where(bad[..., None], np.broadcast_to(root, out.shape), out)
    return out


@dataclass
class Lifter:
    """A trained lifter with its model card.

    window: frames per model call (243 for KTPFormer, 1 for AMPose).
    """

    model: torch.nn.Module
    card: dict
    device: torch.device

    @classmethod
    def load(cls, lifter: str | None = None, weights: str | Path | None = None, device: str = "auto") -> "Lifter":
        """Load a lifter; which architecture follows one rule.

        * ``weights`` None: the shipped weights of ``lifter`` (default
          :data:`~video3d.models.registry.DEFAULT_LIFTER`).
        * ``weights`` given, ``lifter`` None: the weights' model card decides.
        * both given: they must agree, else a UserError (never silently one of them).
        """
        spec = get_lifter(lifter) if lifter is not None else None  # validates the name before any file work
        path = resolve_weights(spec.name if spec else DEFAULT_LIFTER, weights)
        if spec is not None and weights is not None:
            arch = read_card(path).get("arch")
            if arch != spec.name:
                raise UserError(f"--lifter {spec.name} disagrees with --weights {path.name}, which holds a {arch} "
                                f"model; drop --lifter (the weights' card decides) or pass {arch} weights")
        dev = select_device(device)
        model, card = load_weights(path, dev)
        if weights is None and card["arch"] != (spec.name if spec else DEFAULT_LIFTER):
            raise UserError(f"default weights for {spec.name if spec else DEFAULT_LIFTER} hold a {card['arch']} model")
        return cls(model, card, dev)

    @property
    def name(self) -> str:
        return self.card["arch"]

    @property
    def spec(self) -> LifterSpec:
        return get_lifter(self.card["arch"])

    @property
    def window(self) -> int:
        """Frames per model call, from the registry entry and the card's config."""
        return self.spec.window(self.card.get("config", {}))

    @property
    def sha256(self) -> str:
        return self.card["sha256"]

    @torch.inference_mode()
    def predict_normalized(self, x: np.ndarray, flip: bool = True, stride: int | None = None,
                           batch_size: int | None = None, progress=None) -> np.ndarray:
        """Screen-normalised 2D (L, 17, 2), all finite -> camera-frame 3D (L, 17, 3).

        ``progress(done, total)``, if given, is called after each model batch
        (``done``/``total`` count windows, or frames for a single-frame model).

        Test-time flip averaging: the mirrored input is lifted too and its
        mirrored output averaged in (both models are trained with mirroring).
        On CUDA the model runs under bf16 autocast (fp16 where the GPU has no
        bf16) in larger batches; on CPU in float32 (bit-stable results).
        """
        window = self.window
        stride = stride or max(1, window // 2)
        wins, starts, left = split_windows(x.astype(np.float32), window, stride)
        if window == 1:  # single-frame model: every frame is a batch item
            wins = wins.reshape(-1, 17, 2)
        cuda = self.device.type == "cuda"
        batch_size = batch_size or ((256 if cuda else 16) if window > 1 else (65536 if cuda else 2048))
        if cuda:
            half = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            autocast = torch.autocast("cuda", dtype=half)
        else:
            autocast = contextlib.nullcontext()
        preds = []
        for i in range(0, len(wins), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(wins[i:i + batch_size])).to(self.device)
            with autocast:  # not measured: no GPU was available when this was written
                out = self.model(batch).float()
                if flip:
                    out = 0.5 * (out + mirror_torch(self.model(mirror_torch(batch)).float()))
            preds.append(out.cpu().numpy())
            if progress is not None:
                progress(min(i + batch_size, len(wins)), len(wins))
        pred = np.concatenate(preds)
        if window == 1:
            pred = pred.reshape(len(pred), 1, 17, 3)
        pred = merge_windows(pred, starts, len(x), left)
        return pred - pred[:, :1]

    def warm_up(self) -> None:
        """Lift a few dummy frames: torch's one-time kernel set-up (~1-2 s on a CPU) happens here,
        e.g. while detection children finish, instead of inside the first real lift."""
        dummy = np.tile(np.linspace(-0.3, 0.3, 17 * 2, dtype=np.float32).reshape(1, 17, 2), (8, 1, 1))
        self.predict_normalized(dummy)

    def lift(self, keypoints_2d: np.ndarray, image_size: tuple[int, int], valid: np.ndarray | None = None,
             flip: bool = True, progress=None) -> np.ndarray:
        """Pixel 2D (T, 17, 2) -> camera-frame root-relative 3D (T, 17, 3), metres.

        ``progress(done, total)`` reports model batches (see :meth:`predict_normalized`).

        Frames that are not ``valid`` are lifted from the nearest valid frame
        (so windows stay continuous) and returned as NaN.
        """
        if valid is None:
            valid = np.isfinite(keypoints_2d).all(axis=(1, 2))
        filled = hold_missing(keypoints_2d, valid)
        x = normalize_screen(filled, *image_size)
        pose = self.predict_normalized(x, flip=flip, progress=progress)
        pose[~valid] = np.nan
        return pose
