"""Write RGB frames to a browser-playable H.264 MP4, atomically.

Frames are converted to YUV 4:2:0 in-process with OpenCV (BT.601, limited
range, the same matrix ffmpeg assumes when decoding) and piped to an ffmpeg
subprocess running libx264: half the pipe traffic of RGB and cheaper than
ffmpeg's own RGB->YUV conversion. The file is written under a temporary name in
the destination folder and renamed into place only when ffmpeg succeeds, so a
failed or interrupted run never leaves a half-written video behind.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from video3d.errors import UserError
from video3d.io.atomic import partial_path
from video3d.io.video import ffmpeg_exe, ffmpeg_path

#: libx264 speed preset; "ultrafast" costs ~half the CPU of "veryfast" (files ~4x larger).
DEFAULT_PRESET = "ultrafast"
#: Constant-rate-factor quality (lower = better, 18 is visually lossless).
DEFAULT_CRF = 23
_PIPE_BYTES = 1 << 20
_F_SETPIPE_SZ = 1031


def _write_all(stream, data: np.ndarray) -> None:
    """Write a whole contiguous array to an unbuffered pipe (raw writes may be partial)."""
    view = memoryview(data).cast("B")
    while len(view):
        n = stream.write(view)
        view = view[n:]


def exact_fps(fps: float | Fraction) -> Fraction:
    """A frame rate as the rational ffmpeg should use (29.97002997 -> 30000/1001)."""
    rate = fps if isinstance(fps, Fraction) else Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return rate


def even_size(size: tuple[int, int]) -> tuple[int, int]:
    """(w, h) rounded up to even numbers, as yuv420p H.264 requires."""
    w, h = size
    return w + (w & 1), h + (h & 1)


class VideoWriter:
    """Context manager that encodes RGB frames into an H.264 yuv420p MP4.

    Example::

        with VideoWriter("out.mp4", fps=info.fps, size=(w, h)) as writer:
            for frame in frames:          # (h, w, 3) uint8 RGB
                writer.write(frame)

    Odd frame sizes are padded by one pixel (edge replicated) to even sizes.
    On an exception inside the ``with`` block ffmpeg is stopped and the
    temporary file removed; the destination is left untouched.
    """

    def __init__(self, path: str | Path, fps: float | Fraction, size: tuple[int, int],
                 *, crf: int = DEFAULT_CRF, preset: str = DEFAULT_PRESET, threads: int = 1,
                 audio_from: str | Path | None = None) -> None:
        """
        Args:
            path: destination .mp4 file.
            fps: frame rate, written exactly (floats are snapped to a rational
                with denominator <= 1001).
            size: (width, height) of the frames passed to `write`.
            crf, preset: libx264 quality and speed settings.
            threads: libx264 threads; 1 uses the least CPU per frame.
            audio_from: a media file whose first audio track (if it has one) is
                muxed in, re-encoded as AAC and cut to the video's length.
        """
        self.path = Path(path)
        self.fps = exact_fps(fps)
        self.size = (int(size[0]), int(size[1]))
        if self.size[0] <= 0 or self.size[1] <= 0:
            raise ValueError(f"size must be positive, got {size}")
        self.out_size = even_size(self.size)
        self.crf, self.preset, self.threads = crf, preset, threads
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.frames_written = 0
        self._tmp = partial_path(self.path.with_suffix(".mp4"))
        self._proc: subprocess.Popen | None = None
        self._errlog = None
        self._pad: np.ndarray | None = None

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> "VideoWriter":
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _command(self) -> list[str]:
        w, h = self.out_size
        return [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{w}x{h}",
            "-r", str(self.fps), "-i", "pipe:0", *self._audio_args(),
            "-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf),
            "-threads", str(self.threads), "-pix_fmt", "yuv420p",
            "-colorspace", "smpte170m", "-color_range", "tv",
            "-movflags", "+faststart", "-f", "mp4", ffmpeg_path(self._tmp),
        ]

    def _audio_args(self) -> list[str]:
        """ffmpeg arguments that take the first audio track of ``audio_from`` (none: no audio)."""
        if self.audio_from is None:
            return ["-an"]
        return ["-i", ffmpeg_path(self.audio_from), "-map", "0:v:0", "-map", "1:a:0?",
                "-c:a", "aac", "-b:a", "128k", "-shortest"]

    def open(self) -> None:
        """Start ffmpeg (called by ``with``)."""
        if self._proc is not None:
            return
        if not self.path.parent.is_dir():
            raise UserError(f"output folder does not exist: {self.path.parent}")
        self._errlog = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(self._command(), stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, stderr=self._errlog, bufsize=0,
                                      start_new_session=True)  # Ctrl-C reaches Python only
        try:
            fcntl.fcntl(self._proc.stdin.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError:
            pass

    def _ffmpeg_message(self) -> str:
        if self._errlog is None:
            return ""
        self._errlog.seek(0)
        lines = self._errlog.read().decode("utf-8", "replace").strip().splitlines()
        return lines[-1].strip() if lines else ""

    def _cleanup(self) -> None:
        if self._errlog is not None:
            self._errlog.close()
            self._errlog = None
        self._proc = None

    def abort(self) -> None:
        """Stop ffmpeg and delete the temporary file (idempotent)."""
        proc = self._proc
        if proc is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        self._tmp.unlink(missing_ok=True)
        self._cleanup()

    def close(self) -> None:
        """Finish encoding and move the file into place.

        Raises:
            UserError: no frame was written, or ffmpeg failed (e.g. disk full).
        """
        proc = self._proc
        if proc is None:
            return
        if self.frames_written == 0:
            self.abort()
            raise UserError(f"no frames to write to {self.path}")
        try:
            proc.stdin.close()
        except OSError:
            pass
        rc = proc.wait()
        if rc != 0 or not self._tmp.exists():
            message = self._ffmpeg_message() or f"ffmpeg exit status {rc}"
            self.abort()
            raise UserError(f"could not write video {self.path}: {message}")
        os.replace(self._tmp, self.path)
        self._cleanup()

    # --------------------------------------------------------------- frames
    def _even(self, frame: np.ndarray) -> np.ndarray:
        """Pad an odd-sized (h, w, 3) frame by one edge-replicated row/column."""
        if self.out_size == self.size:
            return frame
        w, h = self.size
        if self._pad is None:
            self._pad = np.empty((self.out_size[1], self.out_size[0], 3), np.uint8)
        pad = self._pad
        pad[:h, :w] = frame
        if self.out_size[0] != w:
            pad[:h, w] = frame[:, w - 1]
        if self.out_size[1] != h:
            pad[h] = pad[h - 1]
        return pad

    def write(self, frame_rgb: np.ndarray) -> None:
        """Append one frame: (height, width, 3) uint8 RGB, matching ``size``."""
        if self._proc is None:
            self.open()
        w, h = self.size
        if frame_rgb.shape != (h, w, 3) or frame_rgb.dtype != np.uint8:
            raise ValueError(f"frame must be ({h}, {w}, 3) uint8, got {frame_rgb.shape} {frame_rgb.dtype}")
        yuv = cv2.cvtColor(self._even(frame_rgb), cv2.COLOR_RGB2YUV_I420)
        try:
            _write_all(self._proc.stdin, yuv)
        except (BrokenPipeError, OSError):
            self._proc.wait()
            message = self._ffmpeg_message() or "ffmpeg stopped"
            self.abort()
            raise UserError(f"could not write video {self.path}: {message}") from None
        self.frames_written += 1
