"""Multi-person BlazePose (LiteRT) cost for 1, 2 and 4 people -> docs/people_bench.json.

Frames: 1 person = demo_videos/demo_walk.mp4 (1280x720); 2 people =
../shared/media/multicam/videos/cam01.mp4 (portrait, 2 people) resized to
544x960; 4 people = a 2x2 mosaic of demo_walk frames (1280x720, each person
at half size, two of them mirrored). Each is timed over
N frames with the multi-person detector (default settings: detector every 4
frames + tiles) and, for reference, the single-person legacy BlazePose.
Wall time is contended on a shared 2-core machine; CPU time (process) is the
steadier figure. Usage: python scripts/bench_people.py [N]
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from video3d.detect.blazepose import BlazePoseDetector  # noqa: E402
from video3d.detect.multi import MultiBlazePoseDetector  # noqa: E402
from video3d.io.video import iter_frames, probe  # noqa: E402


def frames(path: Path, n: int):
    info = probe(path)
    out = []
    for t, f in enumerate(iter_frames(path, info)):
        if t >= n:
            break
        out.append(f)
    return out


def time_detector(make, clip) -> dict:
    det = make()
    counts, wall, cpu = [], [], []
    for f in clip:
        w0, c0 = time.perf_counter(), time.process_time()
        counts.append(len(det.detect(f)))
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    det.close()
    k = min(3, len(clip) - 1)
    return {"ms_wall_median": round(1e3 * float(np.median(wall[k:])), 1),
            "ms_cpu_mean": round(1e3 * float(np.mean(cpu[k:])), 1),
            "people_found_median": float(np.median(counts)), "frames": len(clip)}


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    cam01 = ROOT.parent / "shared" / "media" / "multicam" / "videos" / "cam01.mp4"
    clips = {"1": frames(ROOT / "demo_videos" / "demo_walk.mp4", n)}
    if cam01.is_file():
        two = [cv2.resize(f, (544, 960), interpolation=cv2.INTER_AREA) for f in frames(cam01, n)]
        clips["2"] = two
    small = [cv2.resize(f, (640, 360), interpolation=cv2.INTER_AREA) for f in clips["1"]]
    clips["4"] = [np.ascontiguousarray(np.concatenate([np.concatenate([f, f[:, ::-1]], 1),
                                                       np.concatenate([f[:, ::-1], f], 1)], 0)) for f in small]
    result = {"note": "ms per frame; shared 2-core CPU (other jobs running): CPU time is the steadier number",
              "people": {}}
    for k, clip in clips.items():
        result["people"][k] = {
            "image_size": list(clip[0].shape[1::-1]),
            "multi_blazepose_litert": time_detector(MultiBlazePoseDetector, clip),
            "multi_detector_every_frame": time_detector(lambda: MultiBlazePoseDetector(detect_every=1), clip),
            "legacy_single_blazepose": time_detector(BlazePoseDetector, clip),
        }
        print(k, json.dumps(result["people"][k]), flush=True)
    (ROOT / "docs" / "people_bench.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
