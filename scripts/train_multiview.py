"""Train and evaluate the multi-view relational transformer on synthetic rigs (issue #11).

    PYTHONPATH=. nice -n 15 python scripts/train_multiview.py --sources all --dim 64 --depth 2 \
        --pool 16000 --cpu-minutes 25 --out weights/mvrt-mocap

Data: every licence-clean mocap clip of ``--sources``, split by the lifters' split
definition (``video3d/train/splits.json``): train clips train, validation clips pick the
checkpoint (and any setting), test clips are only reported. Validation and test rigs are
drawn with the split's own camera seeds. Pools of synthetic windows are cached in chunks
(--cache, outside the repository) so reruns skip their generation.
Writes the weights + model card and the synthetic table of docs/multiview.json.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from video3d.models.multiview import MultiViewRelational
from video3d.multiview import learned
from video3d.multiview.synth import RigConfig
from video3d.train.datasets import CMU_ACKNOWLEDGEMENT, REACTIDLE_CITATION, load_mocap_parts
from video3d.train.samplers import source_weights

VIEW_COUNTS = (2, 2, 3, 3, 4, 4, 5, 6, 8)
EVAL_COUNTS = (2, 3, 4, 8)
SELECT_COUNTS = (2, 3, 4)
CHUNK = 4000


def cached_pool(path: Path, make):
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    pool = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".part.npz")
    np.savez(tmp, **pool)
    tmp.rename(path)
    return pool


def rig_tag(rig: RigConfig) -> str:
    """Cache-file tag of a rig protocol ("" for the default evenly spread rigs)."""
    if rig == RigConfig():
        return ""
    tag = f"-s{rig.subset_prob:g}-c{'_'.join(f'{x:g}' for x in rig.calibration_error)}"
    return tag + (f"-b{rig.body_scale[0]:g}_{rig.body_scale[1]:g}" if tuple(rig.body_scale) != (1.0, 1.0) else "")


def concat(pools: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in pools]) for k in pools[0]}


def table(model, pools: dict[int, dict]) -> dict[str, dict]:
    out = {}
    for V, p in pools.items():
        m = learned.evaluate(model, p)
        m["improvement_pct"] = round(100 * (1 - m["model_mm"] / m["dlt_mm"]), 1)
        out[str(V)] = m
    return out


def minutes(clips) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in clips:
        out[c.source] = out.get(c.source, 0.0) + c.num_frames / c.fps / 60
    return {k: round(v, 1) for k, v in sorted(out.items())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu-minutes", type=float, default=15.0, help="training CPU budget (validation included)")
    ap.add_argument("--lr", type=float, default=1.5e-3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--deadline", default=None, help="HH:MM (UTC) wall-clock end of training")
    ap.add_argument("--frames", type=int, default=9)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--pool", type=int, default=16000, help="training windows (generated in chunks of 4000)")
    ap.add_argument("--sources", default="all")
    ap.add_argument("--splits", default=None, help="split definition (default video3d/train/splits.json)")
    ap.add_argument("--val-per-count", type=int, default=150)
    ap.add_argument("--test-per-count", type=int, default=200)
    ap.add_argument("--every", type=int, default=300, help="validate (and keep the best) every N steps")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "video3d" / "multiview_pools"))
    ap.add_argument("--out", default="weights/mvrt-mocap")
    ap.add_argument("--report", default="docs/multiview.json")
    ap.add_argument("--compare", nargs="*", default=[], help="other weights evaluated on the same pools")
    ap.add_argument("--init", default=None, help="start from these weights (a checkpoint)")
    ap.add_argument("--rig-subset-prob", type=float, default=0.5,
                    help="share of training rigs that are a random subset of a larger rig")
    ap.add_argument("--calibration-error", default="0.1,0.005,0.003",
                    help="training calibration error: rotation deg, centre m, relative focal (std)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    log = lambda m: print(time.strftime("%H:%M:%S"), m, file=sys.stderr, flush=True)  # noqa: E731

    calib_error = tuple(float(x) for x in args.calibration_error.split(","))
    train_rig = RigConfig(subset_prob=args.rig_subset_prob, calibration_error=calib_error)
    # Held-out protocols: "spread" (evenly spread rigs, exact calibration: the original table) and
    # "subset" (the training distribution: subsets of larger rigs, calibration error).
    protocols = {"spread": RigConfig(), "subset": train_rig}
    parts, defn, root = load_mocap_parts(None, args.sources, args.splits)
    train_clips, val_clips, test_clips = parts["train"], parts["validation"], parts["test"]
    log(f"{len(train_clips)} train, {len(val_clips)} validation, {len(test_clips)} test clips")
    cache = Path(args.cache)
    c0 = time.process_time()
    train_p, sampling = source_weights(train_clips)
    chunks = []
    for i in range((args.pool + CHUNK - 1) // CHUNK):
        rng = np.random.default_rng(1000 + i)
        chunks.append(cached_pool(cache / f"train-{i}-{CHUNK}-T{args.frames}{rig_tag(train_rig)}.npz",
                                  lambda: learned.make_pool(
            rng, train_clips, CHUNK, args.frames, view_counts=VIEW_COUNTS,
            progress=lambda k: log(f"train chunk {i}: {k}/{CHUNK}"), clip_weights=train_p, rig=train_rig)))
        log(f"train chunk {i} ready ({time.process_time() - c0:.0f} CPU s)")
    pool = {k: v[:args.pool] for k, v in concat(chunks).items()}

    def held_out(part: str, clips, n: int, rig: RigConfig) -> dict[int, dict]:
        out = {}
        for V in EVAL_COUNTS:
            rng = np.random.default_rng(defn.seeds[part] + V)
            out[V] = cached_pool(cache / f"{part}-{V}-{n}-T{args.frames}{rig_tag(rig)}.npz", lambda: learned.make_pool(
                rng, clips, n, args.frames, view_counts=(V,), strides=(1,), clip_weights=source_weights(clips)[0],
                rig=rig))
        return out

    val = {name: held_out("validation", val_clips, args.val_per_count, r) for name, r in protocols.items()}
    test = {name: held_out("test", test_clips, args.test_per_count, r) for name, r in protocols.items()}
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
    select = {name: {V: val[name][V] for V in SELECT_COUNTS} for name in protocols}
    t_train = time.process_time()
    best = {"score": float("inf"), "step": 0, "state": copy.deepcopy(model.state_dict()), "curve": []}

    def checkpoint(step: int) -> None:
        t = {(name, V): m for name, pools in select.items() for V, m in table(model, pools).items()}
        score = float(np.mean([m["model_mm"] for m in t.values()]))
        cpu = round(time.process_time() - t_train, 1)
        best["curve"].append({"step": step, "cpu_s": cpu,
                              "val_model_mm": {f"{n}-{V}": round(m["model_mm"], 2) for (n, V), m in t.items()},
                              "val_improvement_pct": {f"{n}-{V}": m["improvement_pct"] for (n, V), m in t.items()}})
        log("  validation: " + ", ".join(f"{n} {V}v DLT {m['dlt_mm']:.1f} model {m['model_mm']:.1f} ({m['improvement_pct']}%)"
                                         for (n, V), m in t.items()))
        if score < best["score"]:
            best.update(score=score, step=step, state=copy.deepcopy(model.state_dict()))
            learned.save_model(model, cache / "checkpoint", {"name": "checkpoint", "config": config, "step": step})

    stats = learned.train(model, pool, args.cpu_minutes * 60, batch_size=args.batch_size, lr=args.lr, log=log,
                          wall_deadline=deadline, every=args.every, on_checkpoint=checkpoint)
    model.eval()
    checkpoint(stats["steps"])
    model.load_state_dict(best["state"])
    log(f"selected step {best['step']} by validation")
    val_metrics = {name: table(model, val[name]) for name in protocols}
    test_metrics = {name: table(model, test[name]) for name in protocols}
    for name, t in test_metrics.items():
        for V, m in t.items():
            log(f"test {name} {V} views: DLT {m['dlt_mm']:.1f} mm, model {m['model_mm']:.1f} mm "
                f"({m['improvement_pct']}%)")
    compare = {}
    for w in args.compare:
        other, card = learned.load_model(w)
        compare[card["name"]] = {"validation": {n: table(other, val[n]) for n in protocols},
                                 "test": {n: table(other, test[n]) for n in protocols}}
        log(f"{card['name']}: " + ", ".join(f"{n} {V}v val {m['improvement_pct']}%"
                                            for n, t in compare[card['name']]["validation"].items()
                                            for V, m in t.items()))
    protocol = ("MPJPE (mm, absolute, world frame) over the points DLT triangulated; windows of "
                f"{args.frames} frames (stride 1) per camera count from the split's {{part}} clips, rigs drawn "
                "with the split's camera seed of that part")
    card = {
        "name": Path(args.out).name, "config": config,
        "data": {"source": "mocap (video3d.train.datasets.load_mocap_parts, --sources " + args.sources + ")",
                 "sources": sorted({c.source for c in train_clips}),
                 "split": defn.card(),
                 "train_clips": len(train_clips), "train_minutes_per_source": minutes(train_clips),
                 "validation_clips": len(val_clips), "test_clips_never_used_in_training": len(test_clips),
                 "train_windows": len(pool["dlt"]),
                 "sampling_per_source": sampling,
                 "held_out_sampling": "windows drawn with the same per-source weights (video3d.train.samplers.source_weights)",
                 "window": f"{args.frames} frames, stride 1 or 2 at 50 fps",
                 "rigs": f"{min(VIEW_COUNTS)}-{max(VIEW_COUNTS)} cameras (drawn from {list(VIEW_COUNTS)}), 2.5-7 m, "
                         "height 0.4-2.8 m, focal 0.6-1.6 x width; a share "
                         f"{args.rig_subset_prob:g} of the rigs are random subsets of a larger evenly spread rig "
                         f"(up to {train_rig.max_rig_views} cameras)",
                 "calibration_error_std": {"rotation_deg": calib_error[0], "centre_m": calib_error[1],
                                           "focal_relative": calib_error[2]},
                 "noise": "video3d.data.noise.detector_noise per view + occluded joints + person lost for a while",
                 "acknowledgement": CMU_ACKNOWLEDGEMENT, "reactidle_citation": REACTIDLE_CITATION},
        "training": {**stats, "selected_step": best["step"], "batch_size": args.batch_size, "lr": args.lr,
                     "warmup_steps": learned.WARMUP_STEPS, "batches": "one camera count per batch",
                     "optimizer": "AdamW, warm-up then cosine", "threads": 1,
                     "pool_generation_cpu_s": round(gen_cpu, 1), "augmentation": "random yaw, view permutation",
                     "cpu_note": "cpu_seconds include the periodic validation",
                     "validation_curve": best["curve"]},
        "metrics": {"synthetic_test": test_metrics, "synthetic_validation": val_metrics,
                    "protocol": protocol.format(part="test") + f"; {args.test_per_count} test / "
                                f"{args.val_per_count} validation windows per camera count; 'spread': evenly spread "
                                "rigs, exact calibration; 'subset': rigs as in training (subsets of larger rigs, "
                                "calibration error)"},
    }
    if args.init:
        card["training"]["init"] = str(args.init)
    card = learned.save_model(model, args.out, card)
    report = {"synthetic_held_out": test_metrics, "synthetic_validation": val_metrics, "weights": card["file"],
              "sha256": card["sha256"], "protocol": card["metrics"]["protocol"], "split": "video3d/train/splits.json",
              "training": {k: v for k, v in card["training"].items() if k != "validation_curve"},
              "compared_on_same_pools": compare}
    path = Path(args.report)
    old = json.loads(path.read_text()) if path.is_file() else {}
    path.write_text(json.dumps({**old, **report}, indent=2) + "\n")
    (cache / f"{Path(args.out).name}-curve.json").write_text(json.dumps(
        {"curve": best["curve"], "compare": compare, "test": test_metrics, "validation": val_metrics}, indent=2))
    log(f"wrote {args.out}.safetensors and {path}")


if __name__ == "__main__":
    main()
