"""Training loop for the lifters: AdamW/Adam, exponential lr decay per epoch,
validation every epoch, resumable checkpoints, safetensors export of the best."""
from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from video3d.io.atomic import atomic_write
from video3d.lift.lifter import Lifter, select_device
from video3d.lift.weights import save_weights
from video3d.models.registry import get_lifter
from video3d.train.evaluate import evaluate

log = logging.getLogger(__name__)

@dataclass
class TrainConfig:
    arch: str = "ktpformer"
    preset: str = "small"
    model_overrides: dict = field(default_factory=dict)
    epochs: int = 10
    steps_per_epoch: int = 200
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    lr_decay: float | None = None
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # bf16 autocast on CUDA only
    out_dir: str = "runs/ktpformer"
    name: str = "ktpformer"
    resume: bool = False
    #: start from these weights (.safetensors); a KTPFormer trained on another
    #: window length is resized (video3d.models.resize) - progressive length training.
    init_weights: str | None = None

    def resolved(self) -> dict:
        d = get_lifter(self.arch).training  # per-architecture defaults (REFERENCE §3, §4)
        return {k: (getattr(self, k) if getattr(self, k) is not None else d[k])
                for k in ("lr", "weight_decay", "lr_decay", "batch_size")} | {"optimizer": d["optimizer"]}


def initial_state(cfg: TrainConfig, model: torch.nn.Module) -> dict:
    """State dict of ``cfg.init_weights`` fitted to ``model`` (window length resized for KTPFormer)."""
    from video3d.errors import WeightsError
    from video3d.lift.weights import load_weights

    init_model, card = load_weights(cfg.init_weights)
    if card["arch"] != cfg.arch:
        raise WeightsError(f"--init weights hold a {card['arch']} model, not {cfg.arch}")
    state = init_model.state_dict()
    spec = get_lifter(cfg.arch)
    window = spec.window(spec.config(cfg.preset, **cfg.model_overrides))
    if spec.resize_state is not None and spec.window(card["config"]) != window:
        state = spec.resize_state(state, window)
    return state


def train(cfg: TrainConfig, sampler, val_sequences: list, card_extra: dict | None = None,
          on_step: Callable[[int, int, float], None] | None = None,
          on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Train ``cfg.arch`` on windows from ``sampler`` and export the best weights.

    sampler: object with ``sample(batch_size) -> (inputs, targets)``.
    val_sequences: fixed sequences for :func:`video3d.train.evaluate.evaluate`.
    Returns the model card of the exported weights (``<out_dir>/<name>.safetensors``).
    """
    torch.manual_seed(cfg.seed)
    device = select_device(cfg.device)
    opt_cfg = cfg.resolved()
    spec = get_lifter(cfg.arch)
    mcfg = spec.config(cfg.preset, **cfg.model_overrides)
    model = spec.build(cfg.preset, **cfg.model_overrides)
    if cfg.init_weights and not (cfg.resume and (Path(cfg.out_dir) / "checkpoint.pt").exists()):
        model.load_state_dict(initial_state(cfg, model))
        log.info("initialised from %s", cfg.init_weights)
    model = model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    if opt_cfg["optimizer"] == "adamw":
        optimizer = torch.optim.AdamW(params, lr=opt_cfg["lr"], weight_decay=opt_cfg["weight_decay"])
    else:
        optimizer = torch.optim.Adam(params, lr=opt_cfg["lr"], weight_decay=opt_cfg["weight_decay"])
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=opt_cfg["lr_decay"])
    loss_fn = spec.loss
    use_amp = cfg.amp and device.type == "cuda"

    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt"
    start_epoch, best, history, train_seconds = 0, math.inf, [], 0.0
    if cfg.resume and ckpt_path.exists():
        # Our own checkpoint file, written below: trusted, so full unpickling is allowed.
        ck = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        start_epoch, best, history = ck["epoch"], ck["best"], ck["history"]
        train_seconds = ck.get("train_seconds", 0.0)
        sampler.rng.bit_generator.state = ck["sampler_rng"]
        if cfg.lr is not None:  # an explicit --lr on resume restarts the decay from that rate
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] = cfg.lr
            scheduler.base_lrs = [cfg.lr] * len(optimizer.param_groups)
        if cfg.lr_decay is not None:  # an explicit --lr-decay on resume applies from the next epoch
            scheduler.gamma = cfg.lr_decay
        log.info("resumed from %s at epoch %d (lr %.2e)", ckpt_path, start_epoch, optimizer.param_groups[0]["lr"])

    card_base = {
        "name": cfg.name, "arch": cfg.arch, "preset": cfg.preset, "config": mcfg,
        "training": {**(card_extra or {}), "optimizer": opt_cfg, "epochs": cfg.epochs,
                     "steps_per_epoch": cfg.steps_per_epoch, "seed": cfg.seed, "device": str(device),
                     "loss": spec.loss_label,
                     **({"initialised_from": _init_summary(cfg.init_weights)} if cfg.init_weights else {})},
    }
    card = None
    for epoch in range(start_epoch, cfg.epochs):
        model.train()
        t0, losses = time.perf_counter(), []
        for step in range(cfg.steps_per_epoch):
            x, y = sampler.sample(opt_cfg["batch_size"])
            x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_amp):
                pred = model(x)
            loss = loss_fn(pred.float(), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            losses.append(loss.item())
            if on_step:
                on_step(epoch, step, losses[-1])
        scheduler.step()
        train_seconds += time.perf_counter() - t0
        model.eval()
        lifter = Lifter(model, {**card_base, "sha256": ""}, device)
        val = evaluate(lifter, val_sequences) if val_sequences else {"overall": {"mpjpe": float("nan")}}
        record = {"epoch": epoch + 1, "loss": float(np.mean(losses)), **{f"val_{k}": v for k, v in val["overall"].items()},
                  **({"val_source_mean_mpjpe": val["source_mean"]["mpjpe"]} if "source_mean" in val else {}),
                  "lr": scheduler.get_last_lr()[0], "train_seconds": round(train_seconds, 1)}
        history.append(record)
        # model selection: validation only; the mean over sources when the sequences carry sources
        score = val.get("source_mean", val["overall"])["mpjpe"]
        if not math.isfinite(score) or score < best:
            best = score if math.isfinite(score) else best
            card = save_weights(model, out / cfg.name, {**card_base, "metrics": {"validation_during_training": {
                                    **val["overall"], "selected_on": "source_mean mpjpe" if "source_mean" in val else "mpjpe",
                                    **({"source_mean": val["source_mean"], "by_source": val["by_source"]}
                                       if "source_mean" in val else {})}},
                                                         "history": history})
        with atomic_write(ckpt_path, "wb") as f:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "epoch": epoch + 1, "best": best, "history": history,
                        "sampler_rng": sampler.rng.bit_generator.state, "config": asdict(cfg),
                        "train_seconds": train_seconds}, f)
        if on_epoch:
            on_epoch(epoch + 1, record)
    if card is None:  # resumed a finished run
        from video3d.lift.weights import read_card
        card = read_card(out / f"{cfg.name}.safetensors")
    return card


def _init_summary(path: str) -> dict:
    """What the model card records about the weights a run started from."""
    from video3d.lift.weights import read_card

    card = read_card(path)
    return {"file": Path(path).name, "sha256": card.get("sha256"), "config": card.get("config"),
            "training": card.get("training"), "metrics": card.get("metrics")}
