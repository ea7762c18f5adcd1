#!/usr/bin/env python
"""Stress test for `video3d batch`: crashes and signals at random moments, then resume.

Generates N tiny mannequin clips (plus one broken file), makes tiny random
lifter weights, then for each round starts ``video3d batch --workers 2``,
SIGKILLs one worker at a random moment, then stops the batch itself at a
random moment (SIGTERM, SIGHUP, SIGINT or SIGKILL, in turn), and checks:

* the batch never dies with a traceback; after a catchable signal it exits
  128+signal and ``summary.csv`` lists every video;
* no video recorded as done is ever redone (its manifest entry and its
  ``keypoints.npz`` stay untouched);
* after a final uninterrupted run every good video is done exactly once, the
  broken one is failed, ``summary.csv`` exists and no staging folder survives.

Usage: python scripts/stress_batch.py [--clips 20] [--rounds 4] [--seed 0] [--json result.json]
Exit code 0 when every check passed.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MANIFEST = ".video3d-manifest.json"
STOPS = [signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGKILL]


def make_inputs(root: Path, clips: int, frames: int, seed: int) -> tuple[Path, Path, list[str]]:
    import torch

    from video3d.demo.make_demo import render_ground_truth_clip
    from video3d.lift.weights import save_weights
    from video3d.models.registry import build_model, model_config

    torch.set_num_threads(1)
    src = root / "videos"
    src.mkdir(parents=True)
    kinds = ["walk", "arm_raise", "squat"]
    names = []
    for i in range(clips):
        name = f"clip{i:02d}"
        render_ground_truth_clip(src / f"{name}.mp4", kind=kinds[i % 3], num_frames=frames, width=160,
                                 height=120, fps=25.0, seed=seed + i)
        names.append(name)
    (src / "broken.mp4").write_text("not a video")
    torch.manual_seed(seed)
    model = build_model("ktpformer", "tiny", num_frames=27)
    card = {"name": "stress", "arch": "ktpformer", "preset": "tiny",
            "config": model_config("ktpformer", "tiny", num_frames=27), "training": {}, "metrics": {}}
    save_weights(model, root / "weights" / "stress", card)
    return src, root / "weights" / "stress.safetensors", names


def manifest(out: Path) -> dict:
    try:
        return json.loads((out / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def workers_of(pid: int) -> list[int]:
    found = []
    for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split():
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
        except OSError:
            pass
    return found


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if ".partial-" in p.name or ".old-" in p.name) if out.exists() else []


def wait_gone(pids: list[int], timeout: float = 30.0) -> None:
    t0 = time.time()
    while time.time() - t0 < timeout and any(Path(f"/proc/{p}").exists() for p in pids):
        time.sleep(0.2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--render", action="store_true", help="Also render the videos (slower).")
    ap.add_argument("--json", type=Path, default=None, help="Write the result here.")
    ap.add_argument("--workdir", type=Path, default=None, help="Keep the files here (default: a temp folder).")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="video3d-stress-"))
    t_start = time.time()
    src, weights, names = make_inputs(root, args.clips, args.frames, args.seed)
    out = root / "out"
    cmd = [sys.executable, "-m", "video3d.cli", "batch", str(src), "--out", str(out), "--weights", str(weights),
           "--workers", str(args.workers)] + ([] if args.render else ["--no-render"])
    problems: list[str] = []
    done_at: dict[str, float] = {}  # name -> completed_at when first seen done
    rounds = []

    def check_done_once(when: str) -> None:
        for name, entry in manifest(out).items():
            if name in done_at and entry.get("completed_at") != done_at[name]:
                problems.append(f"{when}: {name} was done twice")
            done_at.setdefault(name, entry.get("completed_at"))

    for r in range(args.rounds):
        stop = STOPS[r % len(STOPS)]
        before = len(manifest(out))
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        all_workers: set[int] = set()
        # kill one worker once this round has finished a video, after a random extra delay
        t0 = time.time()
        while proc.poll() is None and len(manifest(out)) <= before and time.time() - t0 < 300:
            all_workers.update(workers_of(proc.pid))
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 3.0))
        killed_worker = None
        live = workers_of(proc.pid)
        all_workers.update(live)
        if proc.poll() is None and live:
            killed_worker = rng.choice(live)
            os.kill(killed_worker, signal.SIGKILL)
        # then stop the batch at a random moment
        time.sleep(rng.uniform(1.0, 8.0))
        all_workers.update(workers_of(proc.pid))
        stopped = proc.poll() is None
        if stopped:
            proc.send_signal(stop)
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGUSR1)  # the CLI dumps every thread's stack on SIGUSR1
            time.sleep(3)
            proc.kill()
            _, err = proc.communicate()
            problems.append(f"round {r}: batch did not stop within 120 s of {stop.name}; stacks: {err[-3000:]}")
        wait_gone(list(all_workers))  # orphaned workers exit by themselves
        rc = proc.returncode
        if "Traceback" in err or "unexpected" in err:
            problems.append(f"round {r}: traceback or unexpected error: {err[-500:]}")
        if stopped and stop != signal.SIGKILL:
            if rc != 128 + stop:
                problems.append(f"round {r}: exit code {rc} after {stop.name}, expected {128 + stop}")
        if stop != signal.SIGKILL or not stopped:
            if not (out / "summary.csv").is_file():
                problems.append(f"round {r}: no summary.csv")
            else:
                with open(out / "summary.csv") as f:
                    rows = list(csv.DictReader(f))
                if len(rows) != args.clips + 1:
                    problems.append(f"round {r}: summary.csv has {len(rows)} rows, expected {args.clips + 1}")
        check_done_once(f"round {r}")
        rounds.append({"round": r, "killed_worker": killed_worker is not None, "stop": stop.name if stopped else None,
                       "exit_code": rc, "done": len(manifest(out)), "staging_left_for_next_job": len(leftovers(out))})
        print(f"round {r}: killed worker={killed_worker is not None}, stopped with "
              f"{stop.name if stopped else '(finished first)'}, exit {rc}, done {len(manifest(out))}/{args.clips}, "
              f"staging left {len(leftovers(out))}", flush=True)

    final = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1800)
    check_done_once("final run")
    m = manifest(out)
    if final.returncode != 1:  # the broken file fails, so 1
        problems.append(f"final run: exit code {final.returncode}, expected 1 (one broken input)")
    if sorted(m) != sorted(names):
        problems.append(f"final run: done {sorted(m)} != {sorted(names)}")
    if not (out / "summary.csv").is_file():
        problems.append("final run: no summary.csv")
    else:
        with open(out / "summary.csv") as f:
            status = {Path(row["video"]).stem: row["status"] for row in csv.DictReader(f)}
        if status.get("broken") != "failed" or any(status.get(n) not in ("ok", "skipped") for n in names):
            problems.append(f"final run: statuses {status}")
    if leftovers(out):
        problems.append(f"final run: staging left: {leftovers(out)}")
    result = {"clips": args.clips, "frames": args.frames, "workers": args.workers, "rounds": rounds,
              "done_exactly_once": len(m), "problems": problems, "seconds": round(time.time() - t_start, 1),
              "workdir": str(root)}
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    print("PASS" if not problems else f"FAIL: {len(problems)} problem(s)")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
