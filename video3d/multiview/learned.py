"""The learned multi-view refinement: weights on disk, batching, training, evaluation, inference.

Weights: ``weights/<name>.safetensors`` + ``<name>.json`` model card (arch,
config, data, training settings, metrics, sha256 checked on load), as for the
lifters (:mod:`video3d.lift.weights`).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from video3d.errors import WeightsError
from video3d.geometry.camera import CalibratedCamera
from video3d.geometry.triangulation import undistort_points
from video3d.io.atomic import atomic_file, write_text_atomic
from video3d.lift.weights import file_sha256, find_weights_file, read_verified_card
from video3d.models.multiview import MultiViewRelational
from video3d.multiview.features import ray_features
from video3d.multiview.synth import RigConfig, make_sample, stack_samples

ARCH = "mvrt"
DEFAULT_NAME = "mvrt-mocap"
#: Linear learning-rate warm-up of :func:`train` (steps).
WARMUP_STEPS = 100
INPUT_CONVENTION = {
    "joints": "h36m-17 (video3d.keypoints.coco_to_h36m)",
    "input": "per view: undistorted normalised 2D (x/z, y/z) + confidence, calibrated cameras (R world->camera, centre)",
    "world": "calibration world frame, metres, z up (the model sees a frame translated to the window's DLT pelvis)",
    "output": "world metres: DLT point + predicted correction",
}


# ----------------------------------------------------------------------------- weights
def save_model(model: MultiViewRelational, path: str | Path, card: dict) -> dict:
    """Write ``path`` (.safetensors) and its .json card atomically; returns the card."""
    path = Path(path).with_suffix(".safetensors")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_file(path) as tmp:
        save_file(state, str(tmp), metadata={"arch": ARCH})
        card = {**card, "arch": ARCH, "input": INPUT_CONVENTION, "file": path.name, "sha256": file_sha256(tmp)}
    write_text_atomic(path.with_suffix(".json"), json.dumps(card, indent=2) + "\n")
    return card


def resolve_model_path(weights: str | Path | None = None) -> Path:
    """A .safetensors path, a name in the shipped weights folder, or None for the shipped default."""
    return find_weights_file(DEFAULT_NAME if weights is None else weights)


def load_model(weights: str | Path | None = None) -> tuple[MultiViewRelational, dict]:
    """Build the model from its card and load the weights (sha256-checked)."""
    path = resolve_model_path(weights)
    card = read_verified_card(path)
    if card.get("arch") != ARCH:
        raise WeightsError(f"{path}: not multi-view weights (arch {card.get('arch')!r})")
    model = MultiViewRelational(**card.get("config", {}))
    try:
        missing, unexpected = model.load_state_dict(load_file(str(path)), strict=False)
    except Exception as e:  # safetensors raises several types for damaged files
        raise WeightsError(f"cannot read weights {path}: {e}") from None
    if missing or unexpected:
        raise WeightsError(f"weights {path} do not match {ARCH}: {len(missing)} missing, {len(unexpected)} unexpected")
    return model.eval(), {**card, "path": str(path)}


# ----------------------------------------------------------------------------- batches
def to_tensors(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in batch.items()}


def random_yaw(batch: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Turn each sample's whole scene about the world z axis by a random angle (cameras and points)."""
    B = batch["dlt"].shape[0]
    a = torch.rand(B, generator=gen) * 2 * math.pi
    c, s = torch.cos(a), torch.sin(a)
    Rz = torch.zeros(B, 3, 3)
    Rz[:, 0, 0], Rz[:, 0, 1], Rz[:, 1, 0], Rz[:, 1, 1], Rz[:, 2, 2] = c, -s, s, c, 1.0
    out = dict(batch)
    out["rotations"] = batch["rotations"] @ Rz[:, None].transpose(-1, -2)
    out["centers"] = torch.einsum("bij,bvj->bvi", Rz, batch["centers"])
    out["dlt"] = torch.einsum("bij,btkj->btki", Rz, batch["dlt"])
    out["target"] = torch.einsum("bij,btkj->btki", Rz, batch["target"])
    return out


VIEW_KEYS = ("normalized", "scores", "rotations", "centers", "view_mask")


def permute_views(batch: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One random order of the view axis for the whole batch (views are a set)."""
    V = batch["view_mask"].shape[1]
    p = torch.randperm(V, generator=gen)
    out = dict(batch)
    for k in ("normalized", "scores", "rotations", "centers", "view_mask"):
        out[k] = batch[k][:, p]
    return out


def predict(model: MultiViewRelational, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Model output in world metres, (B, T, J, 3)."""
    tokens, mask, dlt_c, missing, origin = ray_features(batch["normalized"], batch["scores"], batch["rotations"],
                                                        batch["centers"], batch["view_mask"], batch["dlt"])
    return model(tokens, mask, dlt_c, missing) + origin[:, None, None]


# ----------------------------------------------------------------------------- data
def make_pool(rng: np.random.Generator, clips: Sequence, num: int, frames: int,
              view_counts: Sequence[int], strides: Sequence[int] = (1, 2),
              progress: Callable[[int], None] | None = None,
              clip_weights: np.ndarray | None = None, rig: RigConfig | None = None) -> dict[str, np.ndarray]:
    """``num`` random windows of ``frames`` frames from ``clips``, drawn with ``clip_weights`` (N,)
    (default: by length; e.g. :func:`video3d.train.samplers.source_weights` as for the lifters),
    filmed by rigs drawn from ``rig`` (default :class:`RigConfig`)."""
    lengths = np.array([c.num_frames for c in clips], np.float64)
    weights = lengths if clip_weights is None else np.asarray(clip_weights, np.float64)
    samples = []
    for i in range(num):
        stride = int(rng.choice(strides))
        span = (frames - 1) * stride + 1
        ok = lengths >= span
        c = clips[int(rng.choice(np.flatnonzero(ok), p=weights[ok] / weights[ok].sum()))]
        s0 = int(rng.integers(c.num_frames - span + 1))
        samples.append(make_sample(rng, c.landmarks_coco[s0:s0 + span:stride], int(rng.choice(view_counts)), rig=rig))
        if progress is not None and (i + 1) % 200 == 0:
            progress(i + 1)
    return stack_samples(samples)


def mpjpe_mm(pred: np.ndarray, target: np.ndarray, where: np.ndarray | None = None) -> float:
    """Mean joint position error (mm) over entries (..., 3), optionally only where ``where`` (...)."""
    e = np.linalg.norm(pred - target, axis=-1)
    if where is not None:
        e = e[where]
    return float(np.mean(e) * 1000.0)


def evaluate(model: MultiViewRelational, pool: dict[str, np.ndarray], batch_size: int = 32) -> dict:
    """MPJPE (mm) of DLT and of the model on a pool: DLT over its triangulated points, the model over
    the same points and over all points; plus the share of points DLT could not triangulate."""
    preds = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(pool["dlt"]), batch_size):
            b = to_tensors({k: v[i:i + batch_size] for k, v in pool.items()})
            preds.append(predict(model, b).numpy())
    pred = np.concatenate(preds)
    dlt, target = pool["dlt"], pool["target"]
    ok = np.isfinite(dlt).all(-1)
    return {"dlt_mm": mpjpe_mm(dlt, target, ok), "model_mm": mpjpe_mm(pred, target, ok),
            "model_all_mm": mpjpe_mm(pred, target), "dlt_missing_share": float(1 - ok.mean()),
            "windows": int(len(dlt))}


def train(model: MultiViewRelational, pool: dict[str, np.ndarray], cpu_seconds: float, batch_size: int = 16,
          lr: float = 1e-3, seed: int = 0, log: Callable[[str], None] = print, wall_deadline: float | None = None,
          every: int = 100, on_checkpoint: Callable[[int], None] | None = None) -> dict:
    """Train for ``cpu_seconds`` of this process's CPU time (or until the ``wall_deadline`` epoch time).

    AdamW; linear warm-up over ``WARMUP_STEPS``, then cosine decay over the step count estimated after 20 steps. ``on_checkpoint(step)``
    is called every ``every`` steps (e.g. to save and evaluate).
    """
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    # Batches of one camera count, cut to that many views: padding views costs as much as real ones.
    counts = pool["view_mask"].sum(axis=1)
    groups = {int(c): np.flatnonzero(counts == c) for c in np.unique(counts)}
    keys = sorted(groups)
    probs = np.array([len(groups[k]) for k in keys], np.float64)
    probs /= probs.sum()
    rng = np.random.default_rng(seed)
    c0, t0 = time.process_time(), time.time()
    step, est_steps, losses = 0, None, []
    model.train()
    while True:
        used = time.process_time() - c0
        if used > cpu_seconds or (wall_deadline is not None and time.time() > wall_deadline):
            break
        if step == 20:
            est_cpu = cpu_seconds / (used / 20)
            est_wall = (wall_deadline - t0) / ((time.time() - t0) / 20) if wall_deadline else est_cpu
            est_steps = int(min(est_cpu, est_wall))
        scale = min(1.0, (step + 1) / WARMUP_STEPS)
        if est_steps:
            frac = min(step / est_steps, 1.0)
            scale *= 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * frac))
        for g in opt.param_groups:
            g["lr"] = lr * scale
        nv = keys[int(rng.choice(len(keys), p=probs))]
        idx = rng.choice(groups[nv], batch_size)
        b = to_tensors({k: (v[idx][:, :nv] if k in VIEW_KEYS else v[idx]) for k, v in pool.items()})
        b = permute_views(random_yaw(b, gen), gen)
        pred = predict(model, b)
        loss = (pred - b["target"]).norm(dim=-1).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        step += 1
        if step % every == 0:
            log(f"step {step}/{est_steps} loss {np.mean(losses[-every:]) * 1000:.1f} mm  "
                f"cpu {time.process_time() - c0:.0f}s wall {time.time() - t0:.0f}s")
            if on_checkpoint is not None:
                model.eval()
                on_checkpoint(step)
                model.train()
    model.eval()
    return {"steps": step, "cpu_seconds": round(time.process_time() - c0, 1), "wall_seconds": round(time.time() - t0, 1),
            "final_loss_mm": float(np.mean(losses[-100:]) * 1000) if losses else None}


# ----------------------------------------------------------------------------- inference
def refine(model: MultiViewRelational, points: np.ndarray, scores: np.ndarray, cameras: Sequence[CalibratedCamera],
           dlt: np.ndarray, window: int | None = None) -> np.ndarray:
    """Refine a triangulated sequence with the model.

    points: (V, T, 17, 2) pixels (NaN = unseen); scores: (V, T, 17); dlt: (T, 17, 3)
    world metres (NaN where not triangulated). The sequence is cut into windows of the
    model's length (the last one aligned to the end; overlapping frames averaged).
    Returns (T, 17, 3) world metres.
    """
    V, T = points.shape[:2]
    W = min(window or model.num_frames, T)
    normalized = np.stack([undistort_points(points[v], cam) for v, cam in enumerate(cameras)]).astype(np.float32)
    rot = np.stack([np.asarray(c.R, np.float32) for c in cameras])
    cen = np.stack([np.asarray(c.center, np.float32) for c in cameras])
    starts = list(range(0, T - W + 1, W))
    if starts[-1] != T - W:
        starts.append(T - W)
    acc = np.zeros((T, 17, 3))
    cnt = np.zeros((T, 1, 1))
    with torch.no_grad():
        for i in range(0, len(starts), 16):
            ss = starts[i:i + 16]
            b = {"normalized": np.stack([normalized[:, s:s + W] for s in ss]),
                 "scores": np.stack([np.nan_to_num(scores[:, s:s + W]).astype(np.float32) for s in ss]),
                 "rotations": np.repeat(rot[None], len(ss), 0), "centers": np.repeat(cen[None], len(ss), 0),
                 "view_mask": np.ones((len(ss), V), bool),
                 "dlt": np.stack([dlt[s:s + W].astype(np.float32) for s in ss])}
            out = predict(model, to_tensors(b)).numpy()
            for s, o in zip(ss, out):
                acc[s:s + W] += o
                cnt[s:s + W] += 1
    return acc / cnt
