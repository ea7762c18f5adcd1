"""Real-data evidence for issue #11 on ../shared/media/multicam (4 synchronised views).

1. Detect 2D in every view once (BlazePose, cached in --cache).
2. Per-view reprojection error of the 4-view reconstruction (DLT and the learned model).
3. Leave-one-view-out: reconstruct from the other 3 views, project into the held-out
   view, compare with that view's own 2D detections (joints with score >= 0.5).
Writes the "real" section of docs/multiview.json.

    PYTHONPATH=. python scripts/multiview_real_check.py
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from video3d.geometry.calibration import read_calibration
from video3d.io.video import probe
from video3d.multiview.features import subject_size
from video3d.multiview.learned import load_model
from video3d.multiview.pipeline import MultiviewOptions, match_views, people_2d
from video3d.multiview.reconstruct import reconstruct
from video3d.progress import StageProgress

ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "multicam"


def detections(views, cache: Path):
    """Group-0 2D of every view (as `video3d multiview` finds it), cached: (V, T, 17, 2), (V, T, 17), notes."""
    if cache.is_file():
        z = np.load(cache)
        return z["points"], z["scores"], list(z["notes"])
    n = min(v.info.num_frames_header for v in views)
    cands, groups, notes = people_2d(views, n, MultiviewOptions(), StageProgress(None))
    g = groups[0]
    T = len(cands[0][0].keypoints)
    pts = np.full((len(views), T, 17, 2), np.nan)
    scs = np.zeros((len(views), T, 17))
    for v, m in enumerate(g.members):
        if m is not None:
            pts[v], scs[v] = cands[v][m].keypoints, cands[v][m].scores
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, points=pts, scores=scs, notes=np.asarray(notes, dtype=str))
    return pts, scs, notes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calib", default=str(ROOT / "calibration" / "Calib.toml"))
    ap.add_argument("--cache", default="outputs/multicam_2d_cache.npz")
    ap.add_argument("--weights", action="append", default=None,
                    help="multi-view weights to compare with DLT (repeatable; default: the shipped default)")
    ap.add_argument("--report", default="docs/multiview.json")
    ap.add_argument("--min-score", type=float, default=0.5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    videos = sorted((ROOT / "videos").glob("cam*.mp4"))
    named = read_calibration(args.calib)
    infos = [probe(v) for v in videos]
    views = match_views(videos, named, infos)
    cams = [v.camera for v in views]
    fps = infos[0].fps
    pts, scs, notes = detections(views, Path(args.cache))
    methods = {"dlt": None}
    for w in args.weights or [None]:
        model, card = load_model(w)
        methods[card.get("name", "mvrt")] = model
    V = len(cams)
    out = {"clip": "../shared/media/multicam (4 views, 1088x1920, 60 fps)", "calibration": Path(args.calib).name,
           "frames": int(pts.shape[1]), "min_score": args.min_score, "per_view_reprojection_px": {},
           "leave_one_view_out_px": {}, "association_notes": notes}
    out["ignored_view_frames"] = {}
    dlt4 = reconstruct(pts, scs, cams, fps)
    # The person's limb lengths against the training bodies' (4-view DLT): the model is applied
    # far outside the body sizes it was trained on when this is far from 1.
    out["subject_size_vs_training"] = round(float(subject_size(torch.from_numpy(dlt4.points[None]))[0]), 3)
    # Held-out detections count where confident and of the same person (not gated by the 4-view check);
    # the gate is the same for every method (it runs before the refinement).
    ok = (scs >= args.min_score) & ~dlt4.ignored[..., None]
    ok_count = ok.sum(axis=(1, 2))
    # Leave-one-view-out: reconstruct from the other views, project into the held-out one. Every
    # method is scored on the same points (those every method gives, as the synthetic table scores
    # the points DLT triangulated); how many held-out detections each method covers, and its error
    # over all the points it gives, are reported beside.
    lovo_err: dict[str, dict[int, np.ndarray]] = {}
    for name, m in methods.items():
        rec = dlt4 if m is None else reconstruct(pts, scs, cams, fps, method=name, model=m)
        out["per_view_reprojection_px"][name] = {
            views[k].name: round(float(np.nanmean(np.where(ok[k], rec.reprojection_error[k], np.nan))), 2)
            for k in range(V)}
        out["ignored_view_frames"][name] = {views[k].name: int(rec.ignored[k].sum()) for k in range(V)}
        lovo_err[name] = {}
        for k in range(V):
            keep = [i for i in range(V) if i != k]
            r = reconstruct(pts[keep], scs[keep], [cams[i] for i in keep], fps,
                            method="dlt" if m is None else name, model=m)
            err = np.linalg.norm(cams[k].project(r.points) - pts[k], axis=-1)
            lovo_err[name][k] = np.where(ok[k] & np.isfinite(err), err, np.nan)
    out["leave_one_view_out_all_points_px"] = {}
    for name, errs in lovo_err.items():
        common = {k: np.where(np.all([np.isfinite(e[k]) for e in lovo_err.values()], axis=0), errs[k], np.nan)
                  for k in range(V)}
        lovo = {views[k].name: {"mean": round(float(np.nanmean(common[k])), 2),
                                "median": round(float(np.nanmedian(common[k])), 2),
                                "points": int(np.isfinite(common[k]).sum())} for k in range(V)}
        lovo["mean_over_views"] = round(float(np.mean([lovo[v.name]["mean"] for v in views])), 2)
        out["leave_one_view_out_px"][name] = lovo
        every = {views[k].name: {"mean": round(float(np.nanmean(errs[k])), 2),
                                 "coverage": round(float(np.isfinite(errs[k]).sum() / max(1, ok_count[k])), 3)}
                 for k in range(V)}
        every["mean_over_views"] = round(float(np.mean([every[v.name]["mean"] for v in views])), 2)
        out["leave_one_view_out_all_points_px"][name] = every
        print(name, json.dumps(out["per_view_reprojection_px"][name]), json.dumps(lovo), json.dumps(every),
              file=sys.stderr)
    out["leave_one_view_out_note"] = (
        "leave_one_view_out_px: mean pixel distance over the held-out detections every method gives a point for "
        "(like for like); leave_one_view_out_all_points_px: each method over all the points it gives, with the "
        "share of held-out detections it covers (DLT leaves a joint empty where fewer than two views see it; "
        "the learned model fills it)")
    path = Path(args.report)
    old = json.loads(path.read_text()) if path.is_file() else {}
    old["real"] = out
    path.write_text(json.dumps(old, indent=2) + "\n")


if __name__ == "__main__":
    main()
