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
from video3d.pipeline import RunOptions, run_video
from video3d.progress import console


def benchmark(video: Path, lifter: str = "ktpformer", device: str = "auto", max_frames: int | None = None) -> dict:
    """Returns frames/s per stage, end to end, and the machine it ran on."""
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
    t0 = time.perf_counter()
    n = sum(1 for _ in iter_frames(src, info))
    decode_s = time.perf_counter() - t0
    model = Lifter.load(lifter, None, device)
    res = run_video(src, Path(tmp.name) / "out", RunOptions(lifter=lifter, device=device), lifter=model)
    t = res.timings
    end_to_end = t["total"]
    out = {
        "video": str(video), "frames": n, "resolution": f"{info.width}x{info.height}", "fps_source": info.fps,
        "lifter": model.name, "device": str(model.device),
        "machine": {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "processor": platform.processor() or platform.machine(), "torch": torch.__version__},
        "frames_per_s": {
            "decode": n / decode_s,
            "detect_2d": n / max(1e-9, t["decode+detect"] - decode_s),
            "decode+detect": n / t["decode+detect"],
            "lift": n / t["lift"],
            "render+encode": n / max(1e-9, t["decode+render"] - decode_s),
            "decode+render+encode": n / t["decode+render"],
            "end_to_end": n / end_to_end,
        },
        "seconds": {**t, "decode_only": decode_s},
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
        table.add_row(k, f"{v:.1f}", f"{1000 / v:.1f}")
    console.print(table)
