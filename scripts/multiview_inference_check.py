"""Choose how the multi-view model is applied to a sequence, on synthetic validation (issue #11).

    PYTHONPATH=. python scripts/multiview_inference_check.py

Settings compared (the weights stay the same):
- ``stride``: the model sees windows of its length (9 frames); with stride = window they
  do not overlap (the first release), with a smaller stride each frame is the mean of the
  predictions of every window holding it;
- ``yaws``: test-time averaging over the scene turned about the vertical by evenly spaced
  angles (the model is trained under random yaw), each output turned back.

Validation windows are longer than the model's (``--frames``, default 27) so overlap matters;
they come from the split's validation clips with its validation camera seed, for the
"spread" and "subset" rig protocols of ``scripts/train_multiview.py`` and 2, 3, 4 cameras.
The setting with the lowest mean validation MPJPE is chosen; test windows (test clips, test
seed, 2/3/4/8 cameras) are only reported, for the first-release setting and the chosen one.
Writes docs/multiview_inference.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from video3d.multiview import learned
from video3d.multiview.synth import RigConfig
from video3d.train.datasets import load_mocap_parts
from video3d.train.samplers import source_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_multiview import EVAL_COUNTS, SELECT_COUNTS, cached_pool, rig_tag  # noqa: E402

SUBSET = RigConfig(subset_prob=0.5, calibration_error=(0.1, 0.005, 0.003))
PROTOCOLS = {"spread": RigConfig(), "subset": SUBSET, "sized": replace(SUBSET, body_scale=(0.6, 1.2))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None, help="multi-view weights (default: the shipped default)")
    ap.add_argument("--frames", type=int, default=27)
    ap.add_argument("--val-per-count", type=int, default=150)
    ap.add_argument("--test-per-count", type=int, default=200)
    ap.add_argument("--settings", default="9x1,3x1,3x4,9x1n,3x1n,3x4n",
                    help="comma-separated STRIDExYAWS settings, with a trailing n: subject size normalised; "
                         "the first is the reference (the first release)")
    ap.add_argument("--cache", default=str(Path.home() / ".cache" / "video3d" / "multiview_pools"))
    ap.add_argument("--report", default="docs/multiview_inference.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    log = lambda m: print(time.strftime("%H:%M:%S"), m, file=sys.stderr, flush=True)  # noqa: E731
    model, card = learned.load_model(args.weights)
    model.eval()
    parts, defn, _ = load_mocap_parts(None, "all", None)
    cache = Path(args.cache)

    def pools(part: str, n: int, counts) -> dict[str, dict[int, dict]]:
        clips = parts[part]
        out = {}
        for name, rig in PROTOCOLS.items():
            out[name] = {}
            for V in counts:
                rng = np.random.default_rng(defn.seeds[part] + V)
                path = cache / f"{part}-{V}-{n}-T{args.frames}{rig_tag(rig)}.npz"
                out[name][V] = cached_pool(path, lambda: learned.make_pool(
                    rng, clips, n, args.frames, view_counts=(V,), strides=(1,),
                    clip_weights=source_weights(clips)[0], rig=rig))
        return out

    val = pools("validation", args.val_per_count, SELECT_COUNTS)
    log("validation pools ready")

    def table(p, stride, yaws, normalize):
        t = {}
        for name, per in p.items():
            for V, pool in per.items():
                m = learned.evaluate(model, pool, stride=stride, yaws=yaws, normalize_size=normalize)
                t[f"{name}-{V}"] = {"dlt_mm": round(m["dlt_mm"], 2), "model_mm": round(m["model_mm"], 2),
                                    "improvement_pct": round(100 * (1 - m["model_mm"] / m["dlt_mm"]), 1)}
        return t

    results = []
    for item in args.settings.split(","):
        stride, yaws = (int(v) for v in item.rstrip("n").split("x"))
        normalize = item.endswith("n")
        t = table(val, stride, yaws, normalize)
        score = float(np.mean([m["model_mm"] for m in t.values()]))
        results.append({"stride": stride, "yaws": yaws, "normalize_size": normalize,
                        "validation_mean_model_mm": round(score, 2), "validation": t})
        log(f"stride {stride} yaws {yaws} normalize_size {normalize}: validation mean {score:.2f} mm")
    first = results[0]
    best = min(results, key=lambda r: r["validation_mean_model_mm"])
    test = pools("test", args.test_per_count, EVAL_COUNTS)
    log("test pools ready")
    report = {
        "weights": card.get("name"), "sha256": card.get("sha256"),
        "protocol": (f"MPJPE (mm, world frame) over the points DLT triangulated, windows of {args.frames} frames "
                     "(longer than the model's 9) from the split's clips and camera seeds, rig protocols 'spread' "
                     "and 'subset' as in docs/multiview.json; the setting is chosen on validation (2, 3, 4 "
                     "cameras), test is only reported"),
        "settings": results,
        "chosen": {k: best[k] for k in ("stride", "yaws", "normalize_size")},
        "test": {f"stride {r['stride']}, yaws {r['yaws']}, normalize_size {r['normalize_size']}":
                 table(test, r["stride"], r["yaws"], r["normalize_size"])
                 for r in ([first, best] if best is not first else [first])},
    }
    path = Path(args.report)
    path.write_text(json.dumps(report, indent=2) + "\n")
    log(f"chosen: {report['chosen']}; wrote {path}")


if __name__ == "__main__":
    main()
