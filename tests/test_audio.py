"""overlay.mp4 keeps the source's audio track (muxed by the writer with the bundled ffmpeg)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.videos import FFMPEG, blank_video, ffmpeg, person_clip
from video3d.io.video import probe
from video3d.io.writer import VideoWriter


def with_sine(src: Path, dst: Path, hz: int = 440) -> Path:
    """``src``'s video with a sine tone as its audio track (AAC, as long as the video)."""
    ffmpeg("-i", str(src), "-f", "lavfi", "-i", f"sine=frequency={hz}:sample_rate=16000:duration=30",
           "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-shortest", str(dst))
    return dst


def dominant_hz(path: Path, rate: int = 8000) -> tuple[float, float]:
    """(strongest frequency in Hz, duration in s) of the first audio track, decoded to mono."""
    raw = subprocess.run([FFMPEG, "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "s16le", "-ac", "1",
                          "-ar", str(rate), "pipe:1"], capture_output=True, check=True, timeout=60).stdout
    x = np.frombuffer(raw, np.int16).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spectrum)]), len(x) / rate


def write(path: Path, n: int, audio_from: Path | None) -> Path:
    with VideoWriter(path, 25, (64, 48), audio_from=audio_from) as w:
        for i in range(n):
            w.write(np.full((48, 64, 3), 10 * i, np.uint8))
    return path


def test_writer_muxes_the_source_audio_cut_to_the_video(tmp_path):
    src = with_sine(blank_video(tmp_path / "v.mp4", frames=40, fps=25), tmp_path / "sine.mp4")
    assert probe(src).has_audio
    out = write(tmp_path / "out.mp4", 25, src)  # 1 s of video from a 1.6 s source
    info = probe(out)
    assert info.has_audio and info.codec == "h264" and info.fps == pytest.approx(25)
    hz, seconds = dominant_hz(out)
    assert hz == pytest.approx(440, abs=5)
    assert seconds == pytest.approx(1.0, abs=0.1)


def test_writer_without_audio_in_the_source_writes_none(tmp_path):
    silent = blank_video(tmp_path / "v.mp4", frames=10, fps=25)
    assert not probe(write(tmp_path / "a.mp4", 5, silent)).has_audio
    assert not probe(write(tmp_path / "b.mp4", 5, None)).has_audio


@pytest.mark.slow
def test_run_overlay_keeps_the_audio_track(tmp_path, tiny_weights):
    from video3d.pipeline import RunOptions, run_video

    clip, _ = person_clip(tmp_path / "walker.mp4", frames=20, fps=25.0)
    src = with_sine(clip, tmp_path / "walker_sound.mp4", hz=660)
    res = run_video(src, tmp_path / "out", RunOptions(weights=str(tiny_weights["ktpformer"])))
    assert probe(res.out_dir / "overlay.mp4").has_audio
    assert dominant_hz(res.out_dir / "overlay.mp4")[0] == pytest.approx(660, abs=5)
    assert not probe(res.out_dir / "skeleton3d.mp4").has_audio
