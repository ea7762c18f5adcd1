"""`video3d batch --ray`: the local batch's videos as Ray tasks.

Only the execution differs from :mod:`video3d.batch`: planning, the manifest
(content hash + settings + weights sha256), skip/redo rules, ``summary.csv``,
``index.html``, the folder lock and the exit code are the local batch's own
code (:func:`video3d.batch.run_batch` with :func:`ray_runner`).

* Each video is one Ray task running :func:`video3d.batch.process_video`,
  which stages the result folder and renames it into place; the lifter is
  cached per Ray worker process, so models load once per process.
* A worker process that dies mid-video (killed, out of memory) is retried by
  Ray ``max_retries`` times, then the video is marked failed. Its staging
  folder is removed once its process is gone (by the next video in that
  folder, or by the driver at the end).
* Ctrl-C / SIGTERM / SIGHUP: the driver cancels what is in flight (the
  workers are killed, their staging removed), writes ``summary.csv`` and
  exits; a re-run finishes the rest.
* Inputs and outputs are paths: every node must see them at the same path
  (a shared filesystem).
"""
from __future__ import annotations

import os
import re
import signal
from collections import deque
from dataclasses import asdict
from pathlib import Path

from video3d.batch import CRASH_RETRIES, JobResult, crashed_result, process_video
from video3d.errors import UserError
from video3d.options import RunOptions

#: ``--ray`` without an address: start a local Ray runtime on this machine.
LOCAL = "local"
#: Test hook: a marker file path; the first task to run creates it and SIGKILLs its own worker.
KILL_ONCE_ENV = "VIDEO3D_TEST_KILL_ONCE"
_ADDRESS = re.compile(r"^(auto|local|[a-z][a-z0-9+.-]*://\S+|[\w.-]+:\d+)$")

#: Per Ray worker process: loaded lifters keyed by (lifter, weights, device).
_cache: dict = {}


def is_address(text: str) -> bool:
    """True for what ``--ray`` takes as an address: auto, local, ray://host:port or host:port."""
    return bool(_ADDRESS.match(text))


def require_ray():
    """Import Ray, or one line telling how to install the extra."""
    try:
        import ray
    except ImportError:
        raise UserError("--ray needs Ray, which is not installed: pip install 'video3d[ray]'") from None
    return ray


def video_task(video: str, name: str, out: str, options: RunOptions) -> dict:
    """Body of the Ray task: one video into ``out/<name>/``; a small dict (a JobResult), never arrays."""
    hook = os.environ.get(KILL_ONCE_ENV)
    if hook:
        try:
            fd = os.open(hook, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            pass
        else:
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
    cache = _cache.setdefault((options.lifter, str(options.weights), options.device), {})
    if not cache:
        import torch

        from video3d.progress import setup_logging
        setup_logging(quiet=True)
        threads = _assigned_cpus()
        torch.set_num_threads(threads)
    return asdict(process_video(video, name, out, options, cache))


def _assigned_cpus() -> int:
    try:
        import ray
        return max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
    except Exception:  # outside a Ray task (direct call in tests)
        return 1


def connect(ray, address: str, workers: int | None) -> bool:
    """Start (``local``) or join (``auto``, ``ray://...``, ``host:port``) Ray; True if this call started it.

    Stop signals wait until Ray has started (no half-started runtime), and
    the handlers in place before (the CLI's: SIGTERM stops like Ctrl-C) are
    put back over any handler Ray's driver installs.
    """
    from video3d.interrupts import signals_deferred

    if ray.is_initialized():
        return False
    common = dict(log_to_driver=False, configure_logging=False)
    path = os.environ.get("PYTHONPATH")
    try:
        with signals_deferred():
            if address == LOCAL:  # local workers import this very video3d (a checkout, not another install)
                cpus = os.cpu_count() or 1
                here = str(Path(__file__).resolve().parents[1])
                os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (here, path) if p)
                # A local runtime stays on the loopback interface: nothing leaves this machine.
                ray.init(num_cpus=min(workers or cpus, cpus), include_dashboard=False,
                         object_store_memory=100 * 1024 ** 2, _node_ip_address="127.0.0.1", **common)
            else:
                ray.init(address=address, **common)
    except (ConnectionError, ValueError, RuntimeError) as e:
        raise UserError(f"cannot connect to the Ray cluster at {address}: {_first_line(e)}") from None
    finally:
        if path is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = path
    return True


def capacity(ray, gpus_per_video: float) -> int:
    """How many videos the cluster runs at once (1 CPU each, plus ``gpus_per_video`` GPUs)."""
    res = ray.cluster_resources()
    n = int(res.get("CPU", 1))
    if gpus_per_video > 0:
        n = min(n, int(res.get("GPU", 0) / gpus_per_video))
        if n < 1:
            raise UserError(f"--gpus-per-video {gpus_per_video}: the Ray cluster has {res.get('GPU', 0):g} GPU(s)")
    return max(1, n)


def ray_runner(address: str = LOCAL, gpus_per_video: float = 0.0, max_retries: int = CRASH_RETRIES,
               workers: int | None = None, poll_s: float = 0.5):
    """A runner for :func:`video3d.batch.run_batch` that executes each video as a Ray task.

    ``workers`` caps the videos in flight (default: what the cluster can run
    at once); a worker process that dies is retried ``max_retries`` times.
    """
    ray = require_ray()
    if gpus_per_video < 0:
        raise UserError("--gpus-per-video must be >= 0")

    def run(todo: deque, out: Path, _workers: int, options: RunOptions, finish, emit) -> None:
        started = connect(ray, address, workers)
        pending: dict = {}
        try:
            limit = workers or capacity(ray, gpus_per_video)
            task = ray.remote(video_task).options(num_cpus=1, num_gpus=gpus_per_video, max_retries=max_retries,
                                                  retry_exceptions=False)
            options_ref = ray.put(options)
            while todo or pending:
                while todo and len(pending) < limit:
                    job = todo.popleft()
                    pending[task.remote(str(job.video), job.name, str(out), options_ref)] = job
                    emit("start", job.name, None)
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=poll_s)
                for ref in ready:
                    job = pending.pop(ref)
                    finish(job, _result(ray, ref, job, max_retries))
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)
            if pending:  # let the killed workers die, so the driver's cleanup can remove their staging
                ray.wait(list(pending), num_returns=len(pending), timeout=10)
            if started:
                ray.shutdown()

    return run


def _result(ray, ref, job, max_retries: int) -> JobResult:
    try:
        return JobResult(**ray.get(ref))
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.OutOfMemoryError):
        return crashed_result(job, max_retries + 1)
    except ray.exceptions.RayError as e:  # node lost, task error outside process_video, ...
        return JobResult(job.name, str(job.video), "failed", error=f"ray: {type(e).__name__}: {_first_line(e)}")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
