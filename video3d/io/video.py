"""Read videos: `probe` their properties and stream upright RGB frames.

Decoding runs in an ffmpeg subprocess (the binary bundled with imageio-ffmpeg)
that writes raw RGB frames into a pipe, so it overlaps with the Python side on
a second core and memory does not grow with the video's length. ffmpeg applies
rotation metadata itself (portrait phone videos come out upright) and is told
to pass every decoded frame through unchanged (``-fps_mode passthrough``), so
variable-frame-rate videos give one frame per decoded frame, never duplicates.

Frames are (H, W, 3) uint8 RGB arrays with H, W after rotation.
"""
from __future__ import annotations

import fcntl
import logging
import math
import os
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from video3d.errors import VideoError

logger = logging.getLogger(__name__)

#: Sources up to this many pixels decode on one thread (the least CPU per
#: frame; the ffmpeg process already runs beside Python); larger ones on two.
SINGLE_THREAD_MAX_PIXELS = 1920 * 1088
_ERRLOG_TAIL = 64 * 1024  # bytes of ffmpeg's error report kept for messages
_PIPE_BYTES = 1 << 20  # larger pipe buffer: fewer context switches per frame
_F_SETPIPE_SZ = 1031  # Linux fcntl command (not exported by the fcntl module on 3.11)


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary bundled with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_path(path: Path) -> str:
    """A file path as an ffmpeg URL: names with ':' must not be read as protocols."""
    return f"file:{Path(path).resolve()}"


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` learns about a video without decoding it.

    Attributes:
        path: the video file.
        width, height: frame size in pixels after applying ``rotation``
            (the size of the frames `iter_frames` yields).
        fps: average frame rate (frames / second); NTSC rates are exact
            (29.97 -> 30000/1001).
        num_frames_header: frame count the container claims; may be wrong,
            or estimated from duration x fps, or 0 when unknown.
        rotation: clockwise degrees (0, 90, 180, 270) to turn the stored
            frames to display them upright.
        codec: video codec name as ffmpeg calls it ("h264", "vp9", ...).
        has_audio: True if the file has at least one audio stream.
        duration: seconds, 0.0 when unknown.
        stream_index: ffmpeg index of the video stream read (cover-art
            streams are skipped).
    """

    path: Path
    width: int
    height: int
    fps: float
    num_frames_header: int
    rotation: int
    codec: str
    has_audio: bool
    duration: float
    stream_index: int = 0

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames after rotation."""
        return self.width, self.height


# --------------------------------------------------------------------- probing

def _check_file(path: Path) -> None:
    """Raise VideoError for paths that cannot possibly be a video."""
    if not path.exists():
        raise VideoError(f"video not found: {path}")
    if path.is_dir():
        raise VideoError(f"expected a video file but got a folder: {path}")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise VideoError(f"cannot read video {path}: {exc.strerror or exc}") from None
    if size == 0:
        raise VideoError(f"video file is empty (0 bytes): {path}")
    if not os.access(path, os.R_OK):
        raise VideoError(f"cannot read video {path}: permission denied")


def _ffmpeg_error_line(text: str) -> str:
    """The most telling line of an ffmpeg error report, stripped of [tags]."""
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", ln).strip() for ln in text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("Input #", "Duration", "Stream"))]
    for key in ("Invalid data", "moov atom not found", "Permission denied", "End of file",
                "partial file", "Error"):
        for ln in lines:
            if key in ln:
                return ln
    return lines[-1] if lines else "unknown ffmpeg error"


def _parse_duration(text: str) -> float:
    m = re.search(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)", text)
    if not m:
        return 0.0
    h, mi, s = m.groups()
    return 3600 * int(h) + 60 * int(mi) + float(s)


def _parse_rate(value: str) -> float:
    """'25' -> 25.0, '29.97' -> 30000/1001, '1k' -> 1000.0."""
    if value.endswith("k"):
        return float(value[:-1]) * 1000.0
    fps = float(value)
    ntsc = round(fps * 1.001)
    if fps != int(fps) and ntsc > 0 and abs(ntsc / 1.001 - fps) < 0.006:
        return ntsc * 1000.0 / 1001.0  # ffmpeg prints 2 decimals; restore the exact rate
    return fps


def _parse_rotation(text: str) -> int:
    """Clockwise display rotation in degrees from ffmpeg's stream report."""
    m = re.search(r"rotation of (-?\d+(?:\.\d+)?) degrees", text, re.IGNORECASE)
    if m:  # display matrix angle is counter-clockwise
        return int(round(-float(m.group(1)))) % 360 // 90 * 90
    m = re.search(r"^\s*rotate\s*:\s*(-?\d+)", text, re.MULTILINE)  # old ffmpeg tag
    if m:
        return int(m.group(1)) % 360 // 90 * 90
    return 0


def _video_stream_block(text: str) -> tuple[int, str, str] | None:
    """(stream index, stream line, the stream's indented side data) of the
    first video stream that is not an attached picture (cover art)."""
    lines = text.splitlines()
    for i, ln in enumerate(lines):
        m = re.match(r"\s*Stream #\d+:(\d+).*?: Video: ", ln)
        if m and "(attached pic)" not in ln:
            block = []
            for nxt in lines[i + 1:]:
                if re.match(r"\s*Stream #", nxt) or not nxt.startswith("    "):
                    break
                block.append(nxt)
            return int(m.group(1)), ln, "\n".join(block)
    return None


def _header_frame_count(path: Path) -> int:
    """Frame count stored in the container (OpenCV reads it), or 0."""
    try:
        import cv2

        cap = cv2.VideoCapture(ffmpeg_path(path), cv2.CAP_FFMPEG)
        try:
            n = cap.get(cv2.CAP_PROP_FRAME_COUNT) if cap.isOpened() else 0.0
        finally:
            cap.release()
        return int(n) if n and n > 0 and math.isfinite(n) else 0
    except Exception:  # noqa: BLE001 - the header count is advisory only
        return 0


def probe(path: str | Path) -> VideoInfo:
    """Read a video's properties from its header (no decoding).

    Raises:
        VideoError: missing path, a folder, an empty file, not a video, or no
            video stream; the message is one line.
    """
    path = Path(path)
    _check_file(path)
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", ffmpeg_path(path)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    text = proc.stderr.decode("utf-8", "replace")
    if "Input #0" not in text:
        if "Invalid data found" in text or "moov atom not found" in text:
            raise VideoError(f"not a readable video (unknown format, truncated or corrupt): {path}")
        raise VideoError(f"cannot open video {path}: {_ffmpeg_error_line(text)}")
    found = _video_stream_block(text)
    if found is None:
        raise VideoError(f"file has no video stream: {path}")
    stream_index, line, side = found
    after = line.split(": Video: ", 1)[1]
    codec = after.split()[0].strip(",")
    size = re.search(r",\s*(\d+)x(\d+)(?=[\s,\[]|$)", after)
    if size is None or int(size.group(1)) == 0 or int(size.group(2)) == 0:
        raise VideoError(f"video stream has no frame size (truncated or corrupt?): {path}")
    w, h = int(size.group(1)), int(size.group(2))
    fps_m = re.search(r"([\d.]+k?) fps", after) or re.search(r"([\d.]+k?) tbr", after)
    fps = _parse_rate(fps_m.group(1)) if fps_m else 0.0
    rotation = _parse_rotation(side)
    if rotation in (90, 270):
        w, h = h, w
    duration = _parse_duration(text)
    has_audio = re.search(r"Stream #\d+:\d+.*?: Audio: ", text) is not None
    # OpenCV reads the container's count, but its ffmpeg logs damage to stderr:
    # ask it only when ffmpeg's own look at the file's start found no damage.
    damaged = re.search(r"^\[", text.split("Input #0", 1)[0], re.MULTILINE) is not None
    n_header = 0 if damaged else _header_frame_count(path)
    if n_header == 0 and duration > 0 and fps > 0:
        n_header = int(round(duration * fps))
    if fps <= 0:  # no rate in the header: average from the count, else assume 30
        fps = n_header / duration if n_header > 0 and duration > 0 else 30.0
        logger.warning("%s: frame rate unknown, using %.3f fps", path.name, fps)
    return VideoInfo(path=path, width=w, height=h, fps=fps, num_frames_header=n_header,
                     rotation=rotation, codec=codec, has_audio=has_audio, duration=duration,
                     stream_index=stream_index)


# -------------------------------------------------------------------- decoding

class EndOfVideo(VideoError):
    """`iter_frames` was asked to start past the last frame of a video that otherwise decodes."""


def _decode_threads(info: VideoInfo) -> int:
    return 1 if info.width * info.height <= SINGLE_THREAD_MAX_PIXELS else 2


def _decode_command(path: Path, info: VideoInfo, size: tuple[int, int], start: int = 0) -> list[str]:
    w, h = size
    # Frames before ``start`` are decoded (exact frame numbers, any timestamps) but dropped
    # inside ffmpeg before scaling and colour conversion, so they never cross the pipe.
    select = f"select=gte(n\\,{int(start)})," if start > 0 else ""
    return [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error",
        "-threads", str(_decode_threads(info)), "-i", ffmpeg_path(path),
        "-map", f"0:{info.stream_index}", "-an", "-sn", "-dn",
        "-fps_mode", "passthrough",
        # Fixed output size: also guards against mid-stream resolution changes.
        "-vf", f"{select}scale={w}:{h}:flags=bilinear",
        "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1",
    ]


def _read_exact(stream, buf: np.ndarray) -> int:
    """Fill ``buf`` from ``stream``; returns the number of bytes read (short at EOF)."""
    view = memoryview(buf).cast("B")
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def iter_frames(path: str | Path, info: VideoInfo | None = None,
                size: tuple[int, int] | None = None, start: int = 0) -> Iterator[np.ndarray]:
    """Yield every frame of a video as an upright RGB image.

    Args:
        path: the video file.
        info: its `probe` result (probed here when None).
        size: optional (width, height) to resize frames to inside ffmpeg
            (cheap downscaling of 4K input); default: ``info.size``.
        start: index of the first frame to yield (earlier frames are decoded
            and dropped inside ffmpeg: frame-exact, the same pixels as a full pass).

    Yields:
        (H, W, 3) uint8 RGB arrays, a fresh array per frame, in decode order,
        until the stream really ends (the header's frame count is ignored).

    Raises:
        VideoError: the file cannot be opened, or not a single frame decodes.
            Damage after the first frame only logs a warning.
    """
    path = Path(path)
    info = info or probe(path)
    w, h = size or info.size
    frame_bytes = w * h * 3
    with tempfile.TemporaryFile() as errlog:
        proc = subprocess.Popen(_decode_command(path, info, (w, h), start), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=errlog, bufsize=0,
                                start_new_session=True)  # Ctrl-C reaches Python only; it stops ffmpeg
        try:
            try:
                fcntl.fcntl(proc.stdout.fileno(), _F_SETPIPE_SZ, _PIPE_BYTES)
            except OSError:
                pass
            count = 0
            while True:
                frame = np.empty((h, w, 3), np.uint8)
                got = _read_exact(proc.stdout, frame)
                if got < frame_bytes:
                    if got:
                        logger.warning("%s: dropped an incomplete last frame", path.name)
                    break
                count += 1
                yield frame
            rc = proc.wait()
            errlog.seek(max(0, errlog.seek(0, 2) - _ERRLOG_TAIL))
            report = errlog.read().decode("utf-8", "replace").strip()
            if count == 0 and start > 0 and rc == 0:
                raise EndOfVideo(f"{path} has no frame {start} (fewer frames than its header said)")
            if count == 0:
                logger.debug("ffmpeg report for %s:\n%s", path, report)
                raise VideoError(f"no video frames could be decoded from {path} "
                                 "(empty, truncated or corrupt video)")
            if rc != 0 or report:
                logger.warning("%s: decoded %d frames; ffmpeg reported problems "
                               "(damaged or truncated video?): %s",
                               path.name, count, _ffmpeg_error_line(report) if report else f"exit {rc}")
        finally:
            proc.stdout.close()
            if proc.poll() is None:  # consumer stopped early
                proc.kill()
            proc.wait()


def count_frames(path: str | Path) -> int:
    """Number of frames `iter_frames` yields, by decoding the whole video.

    Decodes without colour conversion (ffmpeg's null output), so it is faster
    than iterating. Raises VideoError like `iter_frames` when nothing decodes.
    """
    path = Path(path)
    info = probe(path)
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-nostats",
         "-threads", str(_decode_threads(info)), "-i", ffmpeg_path(path), "-map", f"0:{info.stream_index}",
         "-fps_mode", "passthrough", "-f", "null", "-progress", "pipe:1", "-"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    frames = [int(m) for m in re.findall(rb"^frame=(\d+)", proc.stdout, re.MULTILINE)]
    n = frames[-1] if frames else 0
    if n == 0:
        raise VideoError(f"no video frames could be decoded from {path} "
                         "(empty, truncated or corrupt video)")
    return n
