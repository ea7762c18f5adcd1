"""Load time of viewer.html for a long result in headless Chromium (README "Viewer" numbers).

Builds a synthetic 10-minute result (18,000 frames at 30 fps, one person walking with a
trajectory and a few gaps, plus a small 10-minute overlay.mp4), writes its viewer.html,
then opens it from file:// several times in headless Chromium and reports the page
size, the build time and the time until the page is interactive.

    python scripts/viewer_load_time.py [--minutes 0.1 10] [--repeats 3] [--json out.json]

A short result is measured too: what does not grow with the length (starting WebGL,
which headless Chromium without a GPU does in software) shows in both.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.chromium import Chromium  # noqa: E402
from tests.videos import ffmpeg  # noqa: E402
from tests.viewer_results import make_result  # noqa: E402
from video3d.viewer import write_viewer  # noqa: E402


def measure(minutes: float, repeats: int) -> dict:
    """Build a result of ``minutes`` at 30 fps and time its page in headless Chromium."""
    fps, n = 30.0, int(minutes * 60 * 30)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "long"
        gaps = [t for start in range(1000, n, 3000) for t in range(start, min(n, start + 45))]
        make_result(folder, num_frames=n, fps=fps, invalid=gaps)
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={fps:g}", "-frames:v", str(n), "-c:v", "libx264",
               "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(folder / "overlay.mp4"))
        t = time.perf_counter()
        page = write_viewer(folder)
        build_s = time.perf_counter() - t
        size_mb = page.stat().st_size / 1e6
        ready, script, seek, parts = [], [], [], []
        errors = []
        for _ in range(repeats):  # a fresh browser each time, as when a user opens the file
            with Chromium() as browser:
                browser.open(page, timeout=300)
                browser.wait_for("window.video3d && window.video3d.ready", timeout=300)
                ready.append(browser.eval("video3d.readyMs()"))
                script.append(browser.eval("video3d.loadMs()"))
                parts.append(browser.eval("video3d.timings()"))
                seek.append(browser.eval(
                    "(() => { const t = performance.now(); for (let i = 0; i < 200; i++) "
                    f"video3d.seek(Math.floor(Math.random() * {n})); return (performance.now() - t) / 200; }})()"))
                errors += browser.errors()
    med = lambda xs: round(statistics.median(xs), 1)  # noqa: E731
    return {"frames": n, "minutes": minutes, "page_mb": round(size_mb, 2), "build_s": round(build_s, 2),
            "ready_ms": [round(v) for v in ready], "ready_ms_median": med(ready), "script_ms_median": med(script),
            "script_parts_ms_median": {k: med([p[k] for p in parts]) for k in parts[0]},
            "seek_ms_median": med(seek), "console_errors": errors}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[0.1, 10.0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = [measure(m, args.repeats) for m in args.minutes]
    res = {"results": results, "load_average": [round(v, 1) for v in os.getloadavg()], "cpus": os.cpu_count()}
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
