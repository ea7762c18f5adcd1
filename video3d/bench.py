"""`video3d bench`: throughput per stage and end to end, on a real video.

Stages are measured inside one real `run_video` call (the same code users
run), plus a decode-only pass so decode cost can be separated from the
detection and rendering passes that include it.
"""
from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from video3d.io.video import iter_frames, probe
from video3d.lift.lifter import Lifter
from video3d.pipeline import RunOptions, detect_2d, run_video
from video3d.progress import StageProgress
from video3d.progress import report_console as console


def benchmark(video: Path, lifter: str = "ktpformer", device: str = "auto", max_frames: int | None = None,
              render: bool = True, sequential: bool = False) -> dict:
    """Returns frames/s per stage, end to end, and the machine it ran on.

    The reference is decode + BlazePose alone, the plain way: one process,
    one pass over the video (``decode+detect_alone``, measured before the run
    with the sequential detection path). ``ratio_to_decode_detect_alone`` =
    end-to-end seconds / those seconds. ``ratio_to_decode_detect`` divides by
    the run's own decode+detect stage instead (detection on all cores,
    :mod:`video3d.detect.segments`), i.e. what lifting, exports and rendering
    add after detection. The load average (1 min) is recorded before every
    measured pass.
    """
    info = probe(video)
    src = video
    tmp = tempfile.TemporaryDirectory(prefix="video3d-bench-")
    if max_frames:  # cut the clip so every stage sees the same frames
        from video3d.io.writer import VideoWriter
        src = Path(tmp.name) / f"{video.stem}_first{max_frames}.mp4"
        with VideoWriter(src, info.fps, (info.width, info.height)) as w:
            for i, f in enumerate(iter_frames(video, info)):
                if i >= max_frames:
                    break
                w.write(f)
        info = probe(src)
    load = {"before_decode": os.getloadavg()[0]}
    t0 = time.perf_counter()
    n = sum(1 for _ in iter_frames(src, info))
    decode_s = time.perf_counter() - t0
    options = RunOptions(lifter=lifter, device=device, render=render, sequential=sequential)
    load["before_detect_only"] = os.getloadavg()[0]
    t0 = time.perf_counter()
    detect_2d(info, RunOptions(lifter=lifter, device=device, sequential=True), StageProgress(None))
    detect_only_s = time.perf_counter() - t0
    model = Lifter.load(lifter, None, device)
    load["before_run"] = os.getloadavg()[0]
    res = run_video(src, Path(tmp.name) / "out", options, lifter=model)
    load["after_run"] = os.getloadavg()[0]
    t = res.timings
    end_to_end = t["total"]
    render_s = t.get("decode+render", 0.0)
    out = {
        "video": str(video), "frames": n, "resolution": f"{info.width}x{info.height}", "fps_source": info.fps,
        "lifter": model.name, "device": str(model.device), "render": render,
        "mode": "sequential" if sequential else "concurrent",
        "load_average_1min": load,
        "ratio_to_decode_detect_alone": end_to_end / detect_only_s,
        "ratio_to_decode_detect": end_to_end / t["decode+detect"],
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "processor": platform.processor() or platform.machine(), "torch": torch.__version__},
        "frames_per_s": {
            "decode": n / decode_s,
            "detect_2d": n / max(1e-9, t["decode+detect"] - decode_s),
            "decode+detect": n / t["decode+detect"],
            "decode+detect_alone": n / detect_only_s,
            "lift": n / t["lift"],
            "render+encode": n / max(1e-9, render_s - decode_s) if render else None,
            "decode+render+encode": n / render_s if render else None,
            "end_to_end": n / end_to_end,
        },
        "seconds": {**t, "decode_only": decode_s, "decode+detect_alone": detect_only_s},
    }
    tmp.cleanup()
    return out


def print_bench(res: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{Path(res['video']).name}: {res['frames']} frames {res['resolution']}, "
                        f"lifter {res['lifter']} on {res['device']} ({res['machine']['cpu_count']} CPUs)")
    table.add_column("stage")
    table.add_column("frames/s", justify="right")
    table.add_column("ms/frame", justify="right")
    for k, v in res["frames_per_s"].items():
        if v is not None:  # None: stage not run (--no-render)
            table.add_row(k, f"{v:.1f}", f"{1000 / v:.1f}")
    console.print(table)
    if "ratio_to_decode_detect_alone" in res:
        load = res["load_average_1min"]
        console.print(f"{res['mode']}, render {'on' if res['render'] else 'off'}: end to end = "
                      f"{res['ratio_to_decode_detect_alone']:.2f} x decode+BlazePose alone (one process), "
                      f"{res['ratio_to_decode_detect']:.2f} x the run's own detection stage; "
                      f"load average {load['before_run']:.1f} (machine has {res['machine']['cpu_count']} CPUs)")


def smoothing_benchmark(video: Path, lifter: str = "ktpformer", device: str = "auto",
                        max_frames: int | None = None) -> dict:
    """Jitter (mean 3D joint acceleration, m/s^2) and lag (frames) for every smoothing option.

    Detects once, then lifts with each option applied to 2D (before lifting)
    and to 3D (after), on the same 2D. Lag is measured against the unsmoothed
    3D of the same lifter.
    """
    import numpy as np

    from video3d.detect.blazepose import BlazePoseDetector
    from video3d.detect.stage import detect_video
    from video3d.filters import SMOOTHING_METHODS, jitter, lag_frames
    from video3d.pipeline import lift_sequence

    info = probe(video)
    frames = iter_frames(video, info)
    if max_frames:
        import itertools
        frames = itertools.islice(frames, max_frames)
    det = BlazePoseDetector()
    try:
        base = detect_video(frames, det, fps=info.fps, image_size=(info.width, info.height))
    finally:
        det.close()
    model = Lifter.load(lifter, None, device)
    rows, raw3d = [], None
    for where in ("none", "2d", "3d", "2d+3d"):
        for method in SMOOTHING_METHODS:
            if (where == "none") != (method == "none"):
                continue
            seq = type(base)(**{**base.__dict__, "keypoints_3d_camera": None, "keypoints_3d_world": None})
            opts = RunOptions(lifter=lifter, smooth_2d=method if "2d" in where else "none",
                              smooth_3d=method if "3d" in where else "none")
            lift_sequence(seq, model, opts)
            cam = seq.keypoints_3d_camera
            if raw3d is None:
                raw3d = cam
            rows.append({"smoothing": "none" if method == "none" else f"{method} on {where}",
                         "jitter_m_s2": float(jitter(cam, info.fps)),
                         "lag_frames": float(lag_frames(raw3d, cam)) if method != "none" else 0.0})
    base_j = rows[0]["jitter_m_s2"]
    for r in rows:
        r["jitter_removed_pct"] = 100.0 * (1 - r["jitter_m_s2"] / base_j)
    return {"video": str(video), "frames": len(base), "fps": info.fps, "lifter": model.name,
            "valid_frames": int(base.valid.sum()), "rows": rows}


def print_smoothing(res: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{Path(res['video']).name}: {res['frames']} frames at {res['fps']:.0f} fps, lifter {res['lifter']}")
    for col in ("smoothing", "jitter m/s²", "jitter removed", "lag (frames)"):
        table.add_column(col, justify="left" if col == "smoothing" else "right")
    for r in res["rows"]:
        table.add_row(r["smoothing"], f"{r['jitter_m_s2']:.2f}", f"{r['jitter_removed_pct']:.0f} %", f"{r['lag_frames']:.2f}")
    console.print(table)
