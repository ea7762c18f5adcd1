"""`video3d batch`: convert a folder of videos, isolated, resumable, in parallel.

* Each video runs in a worker process (one model load per worker); a failure
  marks that video failed and never stops the rest. A crashed worker (killed,
  out of memory) breaks the process pool: the pool is rebuilt and the videos
  that were in flight are retried once, then marked failed.
* A manifest (``<out>/.video3d-manifest.json``) keyed by the input's content
  hash plus the output-changing settings (the lifter weights by their sha256,
  not their path) records finished videos, so a re-run skips them (``--force``
  redoes them). Adding ``--export bvh`` to a finished batch writes the BVH
  from each saved ``keypoints.npz`` instead of recomputing.
* Outputs are written atomically by :func:`video3d.pipeline.run_video`; the
  staging folders of killed workers are removed once their process is gone.
* One batch per output folder at a time (an ``flock`` on the folder; a second
  one refuses with one line). ``video3d run`` may share the folder.
* Ctrl-C / SIGTERM / SIGHUP stop cleanly: workers are terminated, the manifest
  keeps what finished, ``summary.csv`` is written, and the next run completes
  only what is missing.
"""
from __future__ import annotations

import concurrent.futures as cf
import csv
import json
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from video3d.errors import UserError
from video3d.io.atomic import atomic_write, ensure_writable_dir, remove_stale, write_text_atomic
from video3d.io.hashing import file_sha256, json_sha256
from video3d.io.locks import exclusive_lock
from video3d.interrupts import signals_deferred
from video3d.options import RunOptions

log = logging.getLogger(__name__)

DEFAULT_PATTERNS = ("*.mp4", "*.mov", "*.avi", "*.mkv", "*.webm", "*.m4v", "*.mpg", "*.mpeg", "*.wmv")
MANIFEST = ".video3d-manifest.json"
#: Statuses that count as success (exit code 0).
SUCCESS = ("ok", "skipped", "exported")
#: How many times a video in flight on a crashed worker is tried again.
CRASH_RETRIES = 1


@dataclass
class VideoJob:
    video: Path
    name: str  # output folder name, unique within the batch
    key: str  # content hash + settings ("" when the video could not be read)
    error: str = ""  # set when the video cannot even be hashed (unreadable)


@dataclass
class JobResult:
    name: str
    video: str
    status: str  # ok | skipped | exported | failed | interrupted
    frames: int = 0
    seconds: float = 0.0
    error: str = ""


def content_hash(path: Path) -> str:
    """sha256 of the video's bytes (renaming or moving a video does not redo it)."""
    return file_sha256(path)


def settings_hash(options: RunOptions) -> str:
    """Hash of the options that change a video's results.

    The weights enter by their sha256 (new weights at the same path redo old
    results; the same weights at another path do not); ``--export bvh`` is
    not part of it (a BVH is added from the saved keypoints).
    """
    from video3d.lift.weights import resolve_weights

    key = options.settings_key()
    key.pop("export_bvh", None)
    key["weights"] = file_sha256(resolve_weights(options.lifter, options.weights))
    return json_sha256(key)


def find_videos(root: Path, patterns: tuple[str, ...] = DEFAULT_PATTERNS, recursive: bool = False) -> list[Path]:
    if not root.is_dir():
        raise UserError(f"input folder not found: {root}")
    if not os.access(root, os.R_OK | os.X_OK):
        raise UserError(f"cannot read input folder {root}: permission denied")
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
        data = json.loads((out / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def save_manifest(out: Path, manifest: dict) -> None:
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=1))


def record_done(out: Path, name: str, entry: dict) -> dict:
    """Read-modify-write one manifest entry (the caller holds the folder lock); returns the manifest."""
    manifest = load_manifest(out)
    manifest[name] = entry
    save_manifest(out, manifest)
    return manifest


def remove_stale_staging(out: Path) -> list[Path]:
    """Staging folders of killed runs and workers (only those whose process is gone)."""
    return remove_stale(out)


# ------------------------------------------------------------- worker side
_worker: dict = {}


def _init_worker(options: RunOptions, workers: int, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    from video3d.progress import setup_logging
    setup_logging(quiet=True)
    import torch
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, workers)))
    _worker["options"] = options
    _worker["lifter"] = None


def _exit_with_parent(parent: int) -> None:
    """A worker whose batch was killed (SIGKILL) must not go on writing: exit once orphaned.

    ``parent`` is the batch's PID as the batch itself saw it (asking getppid()
    here would be too late when the batch died while this worker started).
    """
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _process(video: str, name: str, out: str) -> JobResult:
    return process_video(video, name, out, _worker["options"], _worker)


def process_video(video: str, name: str, out: str, options: RunOptions, cache: dict) -> JobResult:
    """Run one video into ``out/<name>/`` (staged, renamed into place); never raises for a bad video.

    ``cache`` holds the worker's loaded lifter under ``"lifter"`` so that the
    models are loaded once per worker process (the local pool's worker state
    or the Ray worker's module-level cache).
    """
    from video3d.errors import UserError as _UserError
    from video3d.lift.lifter import Lifter
    from video3d.pipeline import run_video

    t0 = time.perf_counter()
    try:
        if cache.get("lifter") is None:
            cache["lifter"] = Lifter.load(options.lifter, options.weights, options.device)
        res = run_video(video, Path(out), options, lifter=cache["lifter"], output_name=name)
        return JobResult(name, video, "ok", res.num_frames, time.perf_counter() - t0)
    except _UserError as e:
        return JobResult(name, video, "failed", 0, time.perf_counter() - t0, str(e))
    except Exception as e:  # isolate unexpected bugs too: one line in the summary
        return JobResult(name, video, "failed", 0, time.perf_counter() - t0, f"unexpected {type(e).__name__}: {e}")


# ------------------------------------------------------------- parent side
def plan_jobs(root: Path, out: Path, options: RunOptions, patterns, recursive: bool) -> list[VideoJob]:
    videos = find_videos(root, patterns, recursive)
    settings = settings_hash(options)
    jobs = []
    for v in videos:
        try:
            jobs.append(VideoJob(v, output_name(v, root), f"{content_hash(v)}-{settings}"))
        except (UserError, OSError) as e:  # unreadable: that video fails, the others go on
            jobs.append(VideoJob(v, output_name(v, root), "", str(e) if isinstance(e, UserError)
                                 else f"cannot read {v}: {e.strerror or e}"))
    return jobs


def export_bvh_from_saved(folder: Path) -> int:
    """Write ``folder/skeleton.bvh`` from ``folder/keypoints.npz``; returns the frame count."""
    from video3d.export.bvh import BVH_NAME, export_bvh_file

    info = export_bvh_file(folder / "keypoints.npz", folder / BVH_NAME)
    return info.num_frames


def run_batch(root: Path, out: Path, options: RunOptions, patterns=DEFAULT_PATTERNS, recursive: bool = False,
              workers: int = 1, force: bool = False, on_event=None, runner=None) -> list[JobResult]:
    """Process every matching video under ``root`` into ``out/<name>/``.

    on_event(kind, job_name, result_or_None) is called with kind in
    {'start', 'done', 'skip'} for live displays. Returns one JobResult per
    video (in input order) and always writes ``out/summary.csv``, also when
    interrupted (the interrupt is re-raised after it). Raises UserError when
    another batch is writing to ``out``.

    ``runner(todo, out, workers, options, finish, emit)`` executes the videos
    that need work (default: :func:`run_local`, a process pool on this
    machine; :mod:`video3d.batch_ray` runs them on Ray). It calls
    ``emit("start", name, None)`` when a video starts and ``finish(job,
    JobResult)`` for every video it completes, and stops its workers in a
    ``finally`` when interrupted; manifest, skip rules and summary stay here.
    """
    out = Path(out)
    ensure_writable_dir(out)
    with exclusive_lock(out, blocking=False) as held:
        if not held:
            raise UserError(f"another video3d batch is already writing to {out}; "
                            "wait for it to finish or choose another --out")
        remove_stale(out)
        return _run_locked(root, out, options, patterns, recursive, max(1, workers), force, on_event,
                           runner or run_local)


def _run_locked(root, out, options, patterns, recursive, workers, force, on_event, runner) -> list[JobResult]:
    jobs = plan_jobs(root, out, options, patterns, recursive)
    if not jobs:
        raise UserError(f"no videos matching {', '.join(patterns)} in {root}")
    emit = on_event or (lambda *a: None)
    manifest = load_manifest(out)
    results: dict[str, JobResult] = {}
    todo: deque[VideoJob] = deque()

    def finish(job: VideoJob, res: JobResult) -> None:
        nonlocal manifest
        results[job.name] = res
        if res.status in ("ok", "exported"):
            entry = dict(manifest.get(job.name, {})) if res.status == "exported" else {}
            entry.update({"key": job.key, "video": str(job.video), "frames": res.frames})
            if res.status == "ok":
                entry.update({"seconds": round(res.seconds, 2), "completed_at": time.time()})
            entry["exports"] = ["bvh"] if (out / job.name / "skeleton.bvh").is_file() else []
            manifest = record_done(out, job.name, entry)
        emit("done", job.name, res)

    for job in jobs:
        done = manifest.get(job.name)
        if job.error:
            finish(job, JobResult(job.name, str(job.video), "failed", error=job.error))
        elif not force and done and done.get("key") == job.key and (out / job.name).is_dir():
            if options.export_bvh and not (out / job.name / "skeleton.bvh").is_file():
                t0 = time.perf_counter()
                emit("start", job.name, None)
                try:
                    frames = export_bvh_from_saved(out / job.name)
                    res = JobResult(job.name, str(job.video), "exported", frames, time.perf_counter() - t0)
                except UserError as e:
                    res = JobResult(job.name, str(job.video), "failed", 0, time.perf_counter() - t0, str(e))
                finish(job, res)
            else:
                results[job.name] = JobResult(job.name, str(job.video), "skipped", done.get("frames", 0), 0.0)
                emit("skip", job.name, results[job.name])
        else:
            todo.append(job)

    try:
        if todo:
            runner(todo, out, workers, options, finish, emit)
    finally:
        remove_stale(out)
        ordered = [results.get(j.name) or JobResult(j.name, str(j.video), "interrupted",
                                                    error="stopped before it finished") for j in jobs]
        write_summary(out / "summary.csv", ordered)
        if options.viewer:
            from video3d.viewer.index import write_index
            write_index(out, ordered)
    return ordered


def run_local(todo: deque, out: Path, workers: int, options: RunOptions, finish, emit) -> None:
    """The default runner: a process pool on this machine (see :func:`run_batch`)."""
    pools: list[cf.ProcessPoolExecutor] = []  # every pool started, so an interrupt stops them all
    try:
        _run_pool(pools, todo, out, workers, options, finish, emit)
    finally:
        for pool in pools:
            _terminate(pool)


def _run_pool(pools: list, todo: deque, out: Path, workers: int, options: RunOptions, finish, emit) -> None:
    """Feed ``todo`` to a process pool; survive crashed workers. Pools started are appended to ``pools``."""
    pool = _new_pool(pools, workers, options)
    crashes: dict[str, int] = {}
    pending: dict[cf.Future, VideoJob] = {}
    while todo or pending:
        while todo and len(pending) < workers:
            job = todo.popleft()
            try:
                with signals_deferred():  # never interrupt a worker's start half-way
                    fut = pool.submit(_process, str(job.video), job.name, str(out))
            except (cf.process.BrokenProcessPool, RuntimeError):
                todo.appendleft(job)
                pool = _restart(pools, pool, out, workers, options)
                continue
            pending[fut] = job
            emit("start", job.name, None)
        finished, _ = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
        broken = False
        for fut in finished:
            job = pending.pop(fut)
            exc = fut.exception()
            if isinstance(exc, cf.process.BrokenProcessPool):
                broken = True
                crashes[job.name] = crashes.get(job.name, 0) + 1
                _retry_or_fail(job, crashes, todo, finish)
            elif exc is not None:
                finish(job, JobResult(job.name, str(job.video), "failed",
                                      error=f"unexpected {type(exc).__name__}: {exc}"))
            else:
                finish(job, fut.result())
        if broken:  # every other in-flight video died with the pool: retry those too
            for fut, job in list(pending.items()):
                if fut.done() and fut.exception() is None:
                    finish(job, fut.result())
                else:
                    crashes[job.name] = crashes.get(job.name, 0) + 1
                    _retry_or_fail(job, crashes, todo, finish)
            pending.clear()
            log.warning("a worker process crashed; restarting the workers")
            pool = _restart(pools, pool, out, workers, options)


def _retry_or_fail(job: VideoJob, crashes: dict, todo: deque, finish) -> None:
    if crashes[job.name] <= CRASH_RETRIES:
        todo.appendleft(job)
    else:
        finish(job, crashed_result(job, crashes[job.name]))


def crashed_result(job: VideoJob, crashes: int) -> JobResult:
    """The failed row of a video whose worker process died every time it was tried."""
    return JobResult(job.name, str(job.video), "failed",
                     error=f"worker process crashed {crashes} times on this video (killed, or out of memory)")


def _new_pool(pools: list, workers: int, options: RunOptions) -> cf.ProcessPoolExecutor:
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                  initializer=_init_worker, initargs=(options, workers, os.getpid()))
    pools.append(pool)
    return pool


def _restart(pools: list, pool, out: Path, workers: int, options: RunOptions) -> cf.ProcessPoolExecutor:
    """Replace a broken pool and remove the staging its dead workers left."""
    _terminate(pool)
    remove_stale(out)
    return _new_pool(pools, workers, options)


def _terminate(pool: cf.ProcessPoolExecutor, timeout: float = 10.0) -> None:
    """Stop a pool now, never waiting forever (idempotent).

    ProcessPoolExecutor has no public "kill now": its processes (a private
    attribute, stable since 3.8) get SIGTERM, then SIGKILL after ``timeout``.
    """
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        if p.is_alive():
            p.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + timeout
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)
    thread = getattr(pool, "_executor_manager_thread", None)
    if thread is not None and thread.is_alive():
        thread.join(max(0.1, deadline - time.monotonic()))


def write_summary(path: Path, results: list[JobResult]) -> None:
    with atomic_write(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["video", "status", "frames", "seconds", "error"])
        for r in results:
            w.writerow([r.video, r.status, r.frames, f"{r.seconds:.2f}", r.error])
