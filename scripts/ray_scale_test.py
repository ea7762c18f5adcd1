#!/usr/bin/env python
"""Scale test for `video3d batch --ray` against the local batch.

Generates N tiny clips (10 % of them corrupt files), tiny random lifter
weights, then:

1. ``video3d batch`` (local process pool, ``--workers W``): wall time;
2. ``video3d batch --ray`` (local Ray runtime, ``--workers W``), uninterrupted: wall time;
3. ``video3d batch --ray`` into a fresh folder, SIGTERMed once about half the
   videos are done, then re-run to completion; checks that the stop exits 143
   with ``summary.csv`` listing every video and no staging left, that no video
   finished before the stop is redone (manifest entry and ``keypoints.npz``
   untouched), and that in the end every good video is done exactly once and
   every corrupt one is a failed row (exit code 1).

Usage: python scripts/ray_scale_test.py [--clips 50] [--frames 10] [--workers 2] [--json result.json]
Exit code 0 when every check passed.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stress_batch import REPO, leftovers, make_inputs, manifest  # noqa: E402


def batch(src: Path, out: Path, weights: Path, workers: int, ray: bool) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "video3d.cli", "batch", str(src), "--out", str(out), "--weights", str(weights),
           "--workers", str(workers), "--no-render", "--no-viewer"] + (["--ray"] if ray else [])
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"})


def timed(src, out, weights, workers, ray) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    p = batch(src, out, weights, workers, ray)
    _, err = p.communicate()
    return p.returncode, time.perf_counter() - t0, err


def statuses(out: Path) -> dict[str, str]:
    with open(out / "summary.csv") as f:
        return {Path(r["video"]).stem: r["status"] for r in csv.DictReader(f)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=50)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="video3d-ray-scale-"))
    n_bad = max(1, args.clips // 10)
    src, weights, good = make_inputs(root, args.clips - n_bad, args.frames, 0)  # writes broken.mp4 too
    for i in range(1, n_bad):
        (src / f"broken{i}.mp4").write_bytes(os.urandom(2048))
    failures: list[str] = []

    def check(ok: bool, what: str) -> None:
        print(("ok   " if ok else "FAIL ") + what, flush=True)
        if not ok:
            failures.append(what)

    rc, local_s, _ = timed(src, root / "local", weights, args.workers, ray=False)
    check(rc == 1, f"local batch exit code 1 (got {rc}), {local_s:.1f} s")
    rc, ray_s, err = timed(src, root / "ray_full", weights, args.workers, ray=True)
    check(rc == 1, f"ray batch exit code 1 (got {rc}), {ray_s:.1f} s" + ("" if rc == 1 else f": {err[-800:]}"))

    out = root / "ray"
    p = batch(src, out, weights, args.workers, ray=True)
    t0 = time.perf_counter()
    while len(manifest(out)) < len(good) // 2 and p.poll() is None:
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate()
    stopped_s = time.perf_counter() - t0
    before = manifest(out)
    stamps = {n: (out / n / "keypoints.npz").stat().st_mtime_ns for n in before}
    check(p.returncode == 143, f"SIGTERM exits 143 (got {p.returncode}) after {len(before)} done")
    check(len(statuses(out)) == args.clips, "summary.csv lists every video after the stop")
    check(not leftovers(out), f"no staging after the stop {leftovers(out)}")
    rc, resume_s, err = timed(src, out, weights, args.workers, ray=True)
    final = statuses(out)
    after = manifest(out)
    check(rc == 1, f"resume exit code 1 (got {rc}), {resume_s:.1f} s")
    check(sorted(after) == sorted(good), f"every good video done ({len(after)}/{len(good)})")
    check(all(after[n] == before[n] and (out / n / "keypoints.npz").stat().st_mtime_ns == stamps[n] for n in before),
          "no video finished before the stop was redone")
    check(sum(s == "ok" for s in final.values()) == len(good) - len(before)
          and sum(s == "skipped" for s in final.values()) == len(before), "the resume did only what was missing")
    check(sum(s == "failed" for s in final.values()) == n_bad, f"{n_bad} corrupt files are failed rows")
    check(not leftovers(out), "no staging at the end")
    result = {"clips": args.clips, "corrupt": n_bad, "frames": args.frames, "workers": args.workers,
              "cpus": os.cpu_count(), "load_avg": os.getloadavg()[0], "local_s": round(local_s, 1),
              "ray_s": round(ray_s, 1), "ray_interrupted_s": round(stopped_s, 1), "done_before_stop": len(before),
              "ray_resume_s": round(resume_s, 1), "failures": failures}
    print(json.dumps(result), flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
