"""Train and evaluate the multi-view relational transformer on synthetic rigs (issue #11).

    PYTHONPATH=. python scripts/train_multiview.py --cpu-minutes 15 --out weights/mvrt-cmu

Pools of synthetic windows are cached (--cache) so reruns skip their generation.
Writes the weights + model card and docs/multiview.json (synthetic held-out table).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from video3d.models.multiview import MultiViewRelational
from video3d.multiview import learned
from video3d.train.datasets import CMU_ACKNOWLEDGEMENT, DEFAULT_VAL_SUBJECTS, load_mocap_split

VIEW_COUNTS = (2, 2, 3, 3, 4, 4, 5, 6, 8)
EVAL_COUNTS = (2, 3, 4, 8)


def cached_pool(path: Path, make):
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    pool = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **pool)
    return pool


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu-minutes", type=float, default=15.0)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--deadline", default=None, help="HH:MM (UTC) wall-clock end of training")
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--dim", type=int, default=32)
    ap.add_argument("--depth", type=int, default=1)
    ap.add_argument("--pool", type=int, default=2500)
    ap.add_argument("--val-per-count", type=int, default=100)
    ap.add_argument("--cache", default="/work/mvrun/pools")
    ap.add_argument("--out", default="weights/mvrt-cmu")
    ap.add_argument("--report", default="docs/multiview.json")
    ap.add_argument("--init", default=None, help="start from these weights (a checkpoint)")
    ap.add_argument("--previous-steps", type=int, default=0, help="steps already trained in --init (for the card)")
    ap.add_argument("--previous-cpu-s", type=float, default=0.0, help="CPU seconds already spent on --init")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    log = lambda m: print(time.strftime("%H:%M:%S"), m, file=sys.stderr, flush=True)  # noqa: E731

    train_clips, val_clips, root = load_mocap_split(None)
    cache = Path(args.cache)
    c0 = time.process_time()
    rng = np.random.default_rng(0)
    pool = cached_pool(cache / f"train-{args.pool}-T{args.frames}.npz", lambda: learned.make_pool(
        rng, train_clips, args.pool, args.frames, view_counts=VIEW_COUNTS,
        progress=lambda i: log(f"train pool {i}/{args.pool}")))
    vrng = np.random.default_rng(12345)
    val = {V: cached_pool(cache / f"val-{V}-{args.val_per_count}-T{args.frames}.npz", lambda: learned.make_pool(
        vrng, val_clips, args.val_per_count, args.frames, view_counts=(V,), strides=(1,))) for V in EVAL_COUNTS}
    gen_cpu = time.process_time() - c0
    log(f"pools ready ({gen_cpu:.0f} CPU s)")
    config = {"num_joints": 17, "num_frames": args.frames, "dim": args.dim, "heads": 4, "depth": args.depth,
              "pooled_depth": 1}
    model = MultiViewRelational(**config)
    if args.init:
        model, init_card = learned.load_model(args.init)
        model.train()
        config = {**config, **init_card["config"]}
    deadline = None
    if args.deadline:
        hh, mm = (int(x) for x in args.deadline.split(":"))
        now = time.gmtime()
        deadline = time.time() + ((hh * 60 + mm) - (now.tm_hour * 60 + now.tm_min)) * 60 - now.tm_sec
    quick = {V: {k: v[:40] for k, v in val[V].items()} for V in (2, 4)}

    def checkpoint(step: int) -> None:
        msg = ", ".join(f"{V}v DLT {m['dlt_mm']:.1f} model {m['model_mm']:.1f}"
                        for V, m in ((V, learned.evaluate(model, p)) for V, p in quick.items()))
        log(f"  quick val: {msg}")
        learned.save_model(model, cache / "checkpoint", {"name": "checkpoint", "config": config, "step": step})

    stats = learned.train(model, pool, args.cpu_minutes * 60, lr=args.lr, log=log, wall_deadline=deadline, every=100,
                          on_checkpoint=checkpoint)
    stats = {**stats, "resumed_from_steps": args.previous_steps, "resumed_cpu_s": args.previous_cpu_s,
             "total_steps": args.previous_steps + stats["steps"],
             "total_train_cpu_s": round(args.previous_cpu_s + stats["cpu_seconds"], 1)}
    metrics = {str(V): learned.evaluate(model, p) for V, p in val.items()}
    for V, m in metrics.items():
        m["improvement_pct"] = round(100 * (1 - m["model_mm"] / m["dlt_mm"]), 1)
        log(f"{V} views: DLT {m['dlt_mm']:.1f} mm, model {m['model_mm']:.1f} mm ({m['improvement_pct']}%)")
    card = {
        "name": Path(args.out).name, "config": config,
        "data": {"source": str(root.name), "train_subjects": sorted({c.subject for c in train_clips}, key=int),
                 "validation_subjects": list(DEFAULT_VAL_SUBJECTS), "train_windows": args.pool,
                 "window": f"{args.frames} frames, stride 1 or 2 at 50 fps",
                 "rigs": f"{min(VIEW_COUNTS)}-{max(VIEW_COUNTS)} cameras (drawn from {list(VIEW_COUNTS)}), 2.5-7 m, "
                         "height 0.4-2.8 m, focal 0.6-1.6 x width",
                 "noise": "video3d.data.noise.detector_noise per view + occluded joints + person lost for a while",
                 "acknowledgement": CMU_ACKNOWLEDGEMENT},
        "training": {**stats, "batch_size": 16, "lr": args.lr, "batches": "one camera count per batch", "optimizer": "AdamW, cosine", "threads": 1,
                     "pool_generation_cpu_s": round(gen_cpu, 1), "augmentation": "random yaw, view permutation"},
        "metrics": {"synthetic_held_out": metrics, "protocol": "MPJPE (mm, absolute, world frame) over the points "
                    f"DLT triangulated; {args.val_per_count} windows of {args.frames} frames per camera count, "
                    "held-out subjects"},
    }
    card = learned.save_model(model, args.out, card)
    report = {"synthetic_held_out": metrics, "weights": card["file"], "sha256": card["sha256"],
              "protocol": card["metrics"]["protocol"], "training": card["training"]}
    path = Path(args.report)
    old = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**old, **report}, indent=2) + "\n")
    log(f"wrote {args.out}.safetensors and {path}")


if __name__ == "__main__":
    main()
