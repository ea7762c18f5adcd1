"""Small test videos generated with the bundled ffmpeg (no files in the repo)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg(*args: str) -> None:
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", *args], check=True, timeout=120)


def blank_video(path: Path, frames: int = 10, size=(160, 120), fps: int = 10) -> Path:
    """A video with no person (a moving colour gradient)."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size[0]}x{size[1]}:rate={fps}", "-frames:v", str(frames),
           "-pix_fmt", "yuv420p", "-c:v", "libx264", str(path))
    return path


def zero_frame_video(path: Path) -> Path:
    """An mp4 container with an audio track but no video frames."""
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=0.5", "-c:a", "aac", str(path))
    return path


def truncated_copy(src: Path, dst: Path, keep: float = 0.3) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def person_clip(path: Path, frames: int = 24, width: int = 320, height: int = 240, kind: str = "walk",
                portrait: bool = False, fps: float = 25.0):
    """A rendered mannequin clip BlazePose detects; returns (path, truth dict)."""
    from video3d.demo.make_demo import render_ground_truth_clip

    return render_ground_truth_clip(path, kind=kind, num_frames=frames, width=width, height=height,
                                    fps=fps, portrait=portrait)


def write_frames(path: Path, frames: list[np.ndarray], fps: float) -> Path:
    h, w = frames[0].shape[:2]
    gen = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                      macro_block_size=1, ffmpeg_log_level="error")
    gen.send(None)
    for f in frames:
        gen.send(np.ascontiguousarray(f))
    gen.close()
    return path
