"""Step cadence and foot speed per mocap source: the evidence for the DAZ salsa frame rate.

Usage (from the repository root): python scripts/mocap_cadence.py [--mocap PATH]
Prints, per source/action (frame-weighted over clips): steps per second,
95th-percentile horizontal ankle speed and median swing duration, for the rate
each clip is loaded at (docs/mocap.md, "Salsa is 60 fps"). A "step" is a run
of >= 0.1 s with horizontal ankle speed > 0.5 m/s after a 0.1 s box filter.
Doubling a clip's assumed rate doubles its steps/s and speeds and halves its swings.
"""
from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from video3d.mocap.clips import default_mocap_root, load_mocap_dir


def gait_stats(landmarks: np.ndarray, fps: float) -> tuple[float, float, float]:
    """(steps/s, ankle speed p95 m/s, median swing s) of (T, 17, 3) COCO landmarks (ankles 15, 16)."""
    steps, peaks, swings = 0, [], []
    k = max(1, int(0.1 * fps))
    for j in (15, 16):
        v = np.linalg.norm(np.diff(landmarks[:, j, :2], axis=0), axis=1) * fps
        v = np.convolve(v, np.ones(k) / k, "same")
        edges = np.diff(np.r_[0, (v > 0.5).astype(int), 0])
        runs = np.where(edges == -1)[0] - np.where(edges == 1)[0]
        runs = runs[runs >= 0.1 * fps]
        steps += len(runs)
        swings += list(runs / fps)
        peaks.append(np.percentile(v, 95))
    duration = (len(landmarks) - 1) / fps
    return steps / duration, float(np.mean(peaks)), float(np.median(swings)) if swings else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mocap", default=None)
    args = ap.parse_args()
    clips = load_mocap_dir(args.mocap or default_mocap_root())
    groups = defaultdict(list)
    for c in clips:
        groups[f"{c.source}:{c.action}"].append(gait_stats(c.landmarks_coco.astype(np.float64), c.fps) + (c.duration,))
    print(f"{'source:action':40s} clips  min  steps/s  ankle-p95  swing-s")
    for g, v in sorted(groups.items()):
        v = np.array(v)
        w = v[:, 3]
        print(f"{g:40s} {len(v):5d} {w.sum() / 60:4.1f} {np.average(v[:, 0], weights=w):8.2f} "
              f"{np.average(v[:, 1], weights=w):10.2f} {np.nanmedian(v[:, 2]):8.2f}")


if __name__ == "__main__":
    main()
