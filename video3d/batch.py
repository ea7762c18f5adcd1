"""`video3d batch`: convert a folder of videos, isolated, resumable, in parallel.

* Each video runs in a worker process (one model load per worker); a failure
  (or a crashed worker) marks that video failed and never stops the rest.
* A manifest (``<out>/.video3d-manifest.json``) keyed by the input's content
  hash plus the output-changing settings records finished videos, so a re-run
  skips them (``--force`` redoes them). Outputs are written atomically by
  :func:`video3d.pipeline.run_video`, so an interrupted video leaves only a
  staging folder, which the next run removes.
* Ctrl-C / SIGTERM stop cleanly: workers are terminated, the manifest keeps
  what finished, and the next run completes only what is missing.
"""
from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import json
import logging
import multiprocessing as mp
import os
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from video3d.errors import UserError
from video3d.pipeline import RunOptions

log = logging.getLogger(__name__)

DEFAULT_PATTERNS = ("*.mp4", "*.mov", "*.avi", "*.mkv", "*.webm", "*.m4v", "*.mpg", "*.mpeg", "*.wmv")
MANIFEST = ".video3d-manifest.json"


@dataclass
class VideoJob:
    video: Path
    name: str  # output folder name, unique within the batch
    key: str  # content hash + settings


@dataclass
class JobResult:
    name: str
    video: str
    status: str  # ok | skipped | failed
    frames: int = 0
    seconds: float = 0.0
    error: str = ""


def content_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def settings_hash(options: RunOptions) -> str:
    return hashlib.sha256(json.dumps(options.settings_key(), sort_keys=True).encode()).hexdigest()[:16]


def find_videos(root: Path, patterns: tuple[str, ...] = DEFAULT_PATTERNS, recursive: bool = False) -> list[Path]:
    if not root.is_dir():
        raise UserError(f"input folder not found: {root}")
    found: set[Path] = set()
    for pat in patterns:
        found.update(p for p in (root.rglob(pat) if recursive else root.glob(pat)) if p.is_file())
    return sorted(found)


def output_name(video: Path, root: Path) -> str:
    """Unique output folder name: the stem, prefixed by sub-folders when recursive."""
    rel = video.relative_to(root).with_suffix("")
    return "__".join(rel.parts)


def load_manifest(out: Path) -> dict:
    try:
        return json.loads((out / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def save_manifest(out: Path, manifest: dict) -> None:
    tmp = out / (MANIFEST + ".partial")
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, out / MANIFEST)


def remove_stale_staging(out: Path) -> None:
    """Staging folders of interrupted runs (`.<name>.partial-<pid>`)."""
    for p in out.glob(".*.partial-*"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


# ------------------------------------------------------------- worker side
_worker: dict = {}


def _init_worker(options: RunOptions) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    from video3d.progress import setup_logging
    setup_logging(quiet=True)
    import torch
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, int(os.environ.get("VIDEO3D_WORKERS", "1")))))
    _worker["options"] = options
    _worker["lifter"] = None


def _process(video: str, name: str, out: str) -> JobResult:
    from video3d.errors import UserError as _UserError
    from video3d.lift.lifter import Lifter
    from video3d.pipeline import run_video

    options: RunOptions = _worker["options"]
    t0 = time.perf_counter()
    try:
        if _worker["lifter"] is None:
            _worker["lifter"] = Lifter.load(options.lifter, options.weights, options.device)
        res = run_video(video, Path(out), options, lifter=_worker["lifter"], output_name=name)
        return JobResult(name, video, "ok", res.num_frames, time.perf_counter() - t0)
    except _UserError as e:
        return JobResult(name, video, "failed", 0, time.perf_counter() - t0, str(e))
    except Exception as e:  # isolate unexpected bugs too: one line in the summary
        return JobResult(name, video, "failed", 0, time.perf_counter() - t0, f"unexpected {type(e).__name__}: {e}")


# ------------------------------------------------------------- parent side
def plan_jobs(root: Path, out: Path, options: RunOptions, patterns, recursive: bool) -> list[VideoJob]:
    videos = find_videos(root, patterns, recursive)
    settings = settings_hash(options)
    return [VideoJob(v, output_name(v, root), f"{content_hash(v)}-{settings}") for v in videos]


def run_batch(root: Path, out: Path, options: RunOptions, patterns=DEFAULT_PATTERNS, recursive: bool = False,
              workers: int = 1, force: bool = False, on_event=None) -> list[JobResult]:
    """Process every matching video under ``root`` into ``out/<name>/``.

    on_event(kind, job_name, result_or_None) is called with kind in
    {'start', 'done', 'skip'} for live displays. Returns one JobResult per
    video (in input order); writes ``out/summary.csv``.
    """
    from video3d.io.atomic import ensure_writable_dir

    ensure_writable_dir(out)
    remove_stale_staging(out)
    jobs = plan_jobs(root, out, options, patterns, recursive)
    if not jobs:
        raise UserError(f"no videos matching {', '.join(patterns)} in {root}")
    manifest = load_manifest(out)
    results: dict[str, JobResult] = {}
    todo = []
    for job in jobs:
        done = manifest.get(job.name)
        if not force and done and done.get("key") == job.key and (out / job.name).is_dir():
            results[job.name] = JobResult(job.name, str(job.video), "skipped", done.get("frames", 0), 0.0)
            on_event and on_event("skip", job.name, results[job.name])
        else:
            todo.append(job)

    interrupted = False
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    os.environ["VIDEO3D_WORKERS"] = str(workers)
    pool = cf.ProcessPoolExecutor(max_workers=max(1, workers), mp_context=mp.get_context("spawn"),
                                  initializer=_init_worker, initargs=(options,))
    try:
        pending = {}
        queue = list(todo)
        while queue or pending:
            while queue and len(pending) < max(1, workers):
                job = queue.pop(0)
                try:
                    fut = pool.submit(_process, str(job.video), job.name, str(out))
                except cf.process.BrokenProcessPool:
                    pool = _new_pool(pool, workers, options)
                    fut = pool.submit(_process, str(job.video), job.name, str(out))
                pending[fut] = job
                on_event and on_event("start", job.name, None)
            finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                job = pending.pop(fut)
                try:
                    res = fut.result()
                except cf.process.BrokenProcessPool:
                    res = JobResult(job.name, str(job.video), "failed", error="worker process crashed")
                    pool = _new_pool(pool, workers, options, requeue=pending, queue=queue)
                results[job.name] = res
                if res.status == "ok":
                    manifest[job.name] = {"key": job.key, "video": str(job.video), "frames": res.frames,
                                          "seconds": round(res.seconds, 2), "completed_at": time.time()}
                    save_manifest(out, manifest)
                on_event and on_event("done", job.name, res)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGTERM, previous)
        _terminate(pool)
        remove_stale_staging(out)
    ordered = [results[j.name] for j in jobs if j.name in results]
    write_summary(out / "summary.csv", ordered)
    if options.viewer:
        from video3d.viewer.index import write_index
        write_index(out, ordered)
    if interrupted:
        raise KeyboardInterrupt
    return ordered


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _new_pool(pool, workers, options, requeue=None, queue=None):
    """Replace a broken pool; jobs that were in flight on it go back to the queue."""
    _terminate(pool)
    if requeue is not None and queue is not None:
        queue[:0] = list(requeue.values())
        requeue.clear()
    return cf.ProcessPoolExecutor(max_workers=max(1, workers), mp_context=mp.get_context("spawn"),
                                  initializer=_init_worker, initargs=(options,))


def _terminate(pool: cf.ProcessPoolExecutor) -> None:
    # ProcessPoolExecutor has no public "kill now": terminate its processes
    # (private attribute, stable since 3.8) so an interrupt stops at once.
    for p in list(getattr(pool, "_processes", {}).values()):
        if p.is_alive():
            p.terminate()
    pool.shutdown(wait=True, cancel_futures=True)


def write_summary(path: Path, results: list[JobResult]) -> None:
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "status", "frames", "seconds", "error"])
        for r in results:
            w.writerow([r.video, r.status, r.frames, f"{r.seconds:.2f}", r.error])
    os.replace(tmp, path)
