"""How much does cutting a clip into detection segments change the 2D keypoints?

Detects a video twice with the sequential path: once with the segment plan
`video3d run` uses, once as one uninterrupted pass (plan forced to one
segment), and reports the per-frame keypoint difference in pixels (all
frames, and the first second after each segment boundary, where the fresh
detector's landmark filter differs most), as a fraction of the person's box
height too. Writes docs/segments.json.

    python scripts/segment_check.py VIDEO [--json docs/segments.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from video3d.detect import segments  # noqa: E402
from video3d.io.video import probe  # noqa: E402
from video3d.options import RunOptions  # noqa: E402
from video3d.pipeline import detect_2d  # noqa: E402
from video3d.progress import StageProgress  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--json", type=Path, default=Path("docs/segments.json"))
    args = ap.parse_args()
    info = probe(args.video)
    plan = segments.plan_segments(info.num_frames_header or 0, info.fps)
    t0 = time.perf_counter()
    cut = detect_2d(info, RunOptions(sequential=True), StageProgress(None))
    t_cut = time.perf_counter() - t0
    real_min = segments.MIN_SEGMENT_FRAMES
    segments.MIN_SEGMENT_FRAMES = 10 ** 9  # one uninterrupted pass
    try:
        t0 = time.perf_counter()
        whole = detect_2d(info, RunOptions(sequential=True), StageProgress(None))
        t_whole = time.perf_counter() - t0
    finally:
        segments.MIN_SEGMENT_FRAMES = real_min
    both = cut.valid & whole.valid & ~cut.interpolated & ~whole.interpolated
    d = np.linalg.norm(cut.keypoints_2d - whole.keypoints_2d, axis=-1)  # (T, 17) px
    height = np.nanmax(whole.keypoints_2d[..., 1], axis=1) - np.nanmin(whole.keypoints_2d[..., 1], axis=1)
    rel = d / np.maximum(height, 1.0)[:, None]
    near = np.zeros(len(d), bool)
    for seg in plan[1:]:
        near[seg.start:seg.start + int(round(info.fps))] = True

    def stats(mask: np.ndarray) -> dict:
        m = mask & both
        if not m.any():
            return {"frames": 0}
        return {"frames": int(m.sum()), "identical_frames": int((d[m].max(axis=1) == 0).sum()),
                "median_px": float(np.median(d[m])), "p95_px": float(np.percentile(d[m], 95)),
                "max_px": float(d[m].max()), "median_of_height_pct": float(100 * np.median(rel[m])),
                "p95_of_height_pct": float(100 * np.percentile(rel[m], 95))}
    res = {"video": args.video.name, "frames": len(d), "resolution": f"{info.width}x{info.height}",
           "plan": [s.__dict__ for s in plan],
           "detected_frames": {"segments": int(cut.valid.sum()), "one_pass": int(whole.valid.sum())},
           "all_frames": stats(np.ones(len(d), bool)), "first_second_after_boundaries": stats(near),
           "seconds_sequential": {"segments": t_cut, "one_pass": t_whole}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
