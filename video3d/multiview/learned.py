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
from torch import Tensor
from safetensors.torch import load_file, save_file

from video3d.errors import WeightsError
from video3d.geometry.camera import CalibratedCamera
from video3d.geometry.triangulation import undistort_points
from video3d.io.atomic import atomic_file, write_text_atomic
from video3d.lift.weights import file_sha256, find_weights_file, read_verified_card
from video3d.lift.windows import window_starts
from video3d.models.multiview import MultiViewRelational
from video3d.multiview.features import ray_features, subject_origin, subject_size
from video3d.multiview.synth import RigConfig, make_sample, stack_samples

ARCH = "mvrt"
DEFAULT_NAME = "mvrt-mocap"
#: Frames between the starts of the model's windows at inference (:func:`refine`): each frame is the
#: mean of the windows holding it. Chosen on synthetic validation (scripts/multiview_inference_check.py,
#: docs/multiview_inference.json): 3 beat 9 (no overlap) with 2-4 cameras.
INFERENCE_STRIDE = 3
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


def yaw_matrices(angles: torch.Tensor) -> torch.Tensor:
    """Rotations about the world z axis: angles (B,) radians -> (B, 3, 3)."""
    c, s = torch.cos(angles), torch.sin(angles)
    Rz = torch.zeros(len(angles), 3, 3, dtype=angles.dtype)
    Rz[:, 0, 0], Rz[:, 0, 1], Rz[:, 1, 0], Rz[:, 1, 1], Rz[:, 2, 2] = c, -s, s, c, 1.0
    return Rz


def turn_scene(batch: dict[str, torch.Tensor], Rz: torch.Tensor) -> dict[str, torch.Tensor]:
    """Turn each sample's whole scene (cameras and points) by Rz (B, 3, 3); 2D stays as it is."""
    out = dict(batch)
    out["rotations"] = batch["rotations"] @ Rz[:, None].transpose(-1, -2)
    out["centers"] = torch.einsum("bij,bvj->bvi", Rz, batch["centers"])
    for k in ("dlt", "target"):
        if k in batch:
            out[k] = torch.einsum("bij,btkj->btki", Rz, batch[k])
    return out


def random_yaw(batch: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Turn each sample's whole scene about the world z axis by a random angle (cameras and points)."""
    B = batch["dlt"].shape[0]
    return turn_scene(batch, yaw_matrices(torch.rand(B, generator=gen) * 2 * math.pi))


VIEW_KEYS = ("normalized", "scores", "rotations", "centers", "view_mask")


def permute_views(batch: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One random order of the view axis for the whole batch (views are a set)."""
    V = batch["view_mask"].shape[1]
    p = torch.randperm(V, generator=gen)
    out = dict(batch)
    for k in ("normalized", "scores", "rotations", "centers", "view_mask"):
        out[k] = batch[k][:, p]
    return out


def predict(model: MultiViewRelational, batch: dict[str, torch.Tensor], yaws: int = 1) -> torch.Tensor:
    """Model output in world metres, (B, T, J, 3).

    ``yaws`` > 1: test-time averaging over the scene turned about the vertical by
    ``yaws`` evenly spaced angles (the model is trained under random yaw; each
    output is turned back before averaging).
    """
    if yaws > 1:
        B = batch["dlt"].shape[0]
        out = 0.0
        for k in range(yaws):
            Rz = yaw_matrices(torch.full((B,), 2 * math.pi * k / yaws))
            out = out + torch.einsum("bji,btkj->btki", Rz, predict(model, turn_scene(batch, Rz)))
        return out / yaws
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


#: Batch keys with a time axis, and where it is.
TIME_AXIS = {"normalized": 2, "scores": 2, "dlt": 1, "target": 1}


def scale_scene(batch: dict[str, torch.Tensor], origin: Tensor, factor: Tensor) -> dict[str, torch.Tensor]:
    """Scale each sample's world (camera centres and 3D points) about ``origin`` (B, 3) by
    ``factor`` (B,). Every camera sees exactly the same image, so the 2D stays as it is."""
    out = dict(batch)
    f = factor[:, None]
    out["centers"] = origin[:, None] + (batch["centers"] - origin[:, None]) * f[..., None]
    for k in ("dlt", "target"):
        if k in batch:
            out[k] = origin[:, None, None] + (batch[k] - origin[:, None, None]) * f[..., None, None]
    return out


def predict_sequence(model: MultiViewRelational, batch: dict[str, torch.Tensor], stride: int | None = None,
                     yaws: int = 1, normalize_size: bool = False, max_batch: int = 256) -> torch.Tensor:
    """Model output for sequences of any length T >= 1, world metres (B, T, J, 3).

    The sequences are cut into windows of the model's length every ``stride`` frames
    (default: the window, i.e. no overlap); frames in several windows get the mean of
    their predictions. ``yaws``: see :func:`predict`. ``normalize_size``: the scene is
    first scaled so that the subject has the training bodies' size
    (:func:`~video3d.multiview.features.subject_size` of the whole sequence's DLT), the
    output scaled back; the images are unchanged by this, only the metric prior is.
    """
    if normalize_size:
        origin = subject_origin(batch["dlt"])
        size = subject_size(batch["dlt"])
        out = predict_sequence(model, scale_scene(batch, origin, 1.0 / size), stride=stride, yaws=yaws,
                               max_batch=max_batch)
        return origin[:, None, None] + (out - origin[:, None, None]) * size[:, None, None, None]
    T = batch["dlt"].shape[1]
    W = min(model.num_frames, T)
    starts = window_starts(T, W, stride or W).tolist()
    acc = torch.zeros(batch["dlt"].shape)
    cnt = torch.zeros(T)
    per = max(1, max_batch // max(1, batch["dlt"].shape[0]))
    for i in range(0, len(starts), per):
        ss = starts[i:i + per]
        wins = {k: torch.cat([v.narrow(TIME_AXIS[k], s, W) if k in TIME_AXIS else v for s in ss])
                for k, v in batch.items() if k != "target"}
        out = predict(model, wins, yaws=yaws).reshape(len(ss), -1, W, *acc.shape[2:])
        for s, o in zip(ss, out):
            acc[:, s:s + W] += o
            cnt[s:s + W] += 1
    return acc / cnt[None, :, None, None]


def evaluate(model: MultiViewRelational, pool: dict[str, np.ndarray], batch_size: int = 32,
             stride: int | None = None, yaws: int = 1, normalize_size: bool = False) -> dict:
    """MPJPE (mm) of DLT and of the model on a pool: DLT over its triangulated points, the model over
    the same points and over all points; plus the share of points DLT could not triangulate.
    Pools of windows longer than the model are predicted as in :func:`predict_sequence`."""
    preds = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(pool["dlt"]), batch_size):
            b = to_tensors({k: v[i:i + batch_size] for k, v in pool.items()})
            preds.append(predict_sequence(model, b, stride=stride, yaws=yaws, normalize_size=normalize_size).numpy())
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
           dlt: np.ndarray, stride: int = INFERENCE_STRIDE) -> np.ndarray:
    """Refine a triangulated sequence with the model.

    points: (V, T, 17, 2) pixels (NaN = unseen); scores: (V, T, 17); dlt: (T, 17, 3)
    world metres (NaN where not triangulated). Windows and averaging as in
    :func:`predict_sequence`. Returns (T, 17, 3) world metres.
    """
    V = points.shape[0]
    b = {"normalized": np.stack([undistort_points(points[v], cam) for v, cam in enumerate(cameras)])[None],
         "scores": np.nan_to_num(scores)[None], "view_mask": np.ones((1, V), bool), "dlt": dlt[None],
         "rotations": np.stack([np.asarray(c.R) for c in cameras])[None],
         "centers": np.stack([np.asarray(c.center) for c in cameras])[None]}
    b = {k: v if v.dtype == bool else v.astype(np.float32) for k, v in b.items()}
    with torch.no_grad():
        return predict_sequence(model, to_tensors(b), stride=stride)[0].numpy().astype(np.float64)
