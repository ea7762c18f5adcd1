"""Video reading/writing and atomic outputs, on tiny videos made with the bundled ffmpeg.

Frame i of a generated video is grey level BASE + STEP * i (plus, where
noted, a little texture or a red corner marker), so decoded frames reveal
their index and order.
"""
from __future__ import annotations

import logging
import os
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from video3d.errors import UserError, VideoError
from video3d.io.atomic import atomic_dir, atomic_file, ensure_writable_dir
from video3d.io.video import VideoInfo, count_frames, iter_frames, probe
from video3d.io.writer import VideoWriter, exact_fps

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
BASE, STEP = 20, 8


def ffmpeg(*args: str, stdin: bytes | None = None) -> None:
    quiet = ["-hide_banner", "-v", "error", "-y"] + (["-nostdin"] if stdin is None else [])
    subprocess.run([FFMPEG, *quiet, *args], input=stdin, check=True, capture_output=True)


def index_frames(n: int, w: int = 64, h: int = 48, marker: bool = False, texture: bool = False) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        f = np.full((h, w, 3), BASE + STEP * i, np.uint8)
        if texture:
            f = np.clip(f.astype(np.int16) + rng.integers(-12, 13, f.shape), 0, 255).astype(np.uint8)
        if marker:
            f[: h // 2, : w // 2] = (255, 0, 0)
        frames.append(f)
    return frames


def frame_index(frame: np.ndarray) -> int:
    return int(round((float(frame[-8:, -8:].mean()) - BASE) / STEP))


def encode(path: Path, frames: list[np.ndarray], fps: str = "25", codec: list[str] | None = None,
           extra_in: list[str] | None = None, extra_out: list[str] | None = None, audio: bool = False) -> Path:
    h, w = frames[0].shape[:2]
    codec = codec or ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
    cmd = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", fps, *(extra_in or []), "-i", "pipe:0"]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:duration=0.4", "-map", "0:v", "-map", "1:a"]
    cmd += [*codec, *(extra_out or []), str(path)]
    ffmpeg(*cmd, stdin=b"".join(f.tobytes() for f in frames))
    return path


def patch_avi_frame_count(src: Path, dst: Path, count: int) -> Path:
    """Copy an AVI, overwriting the frame counts in its main and stream headers."""
    b = bytearray(src.read_bytes())
    avih, strh = b.find(b"avih"), b.find(b"strh")
    struct.pack_into("<I", b, avih + 8 + 16, count)  # avih.dwTotalFrames
    struct.pack_into("<I", b, strh + 8 + 32, count)  # strh.dwLength
    dst.write_bytes(bytes(b))
    return dst


def strip_avi_frames(src: Path, dst: Path) -> Path:
    """Copy an AVI keeping its headers (one video stream) but no frames at all."""
    b = bytearray(src.read_bytes())
    pos = 12
    while pos < len(b):
        cid, size = bytes(b[pos:pos + 4]), struct.unpack_from("<I", b, pos + 4)[0]
        if cid == b"LIST" and b[pos + 8:pos + 12] == b"movi":
            out = b[:pos + 12]
            struct.pack_into("<I", out, pos + 4, 4)
            struct.pack_into("<I", out, 4, len(out) - 8)
            dst.write_bytes(bytes(out))
            return patch_avi_frame_count(dst, dst, 0)
        pos += 8 + size + (size & 1)
    raise AssertionError("no movi list")


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("videos")
    v: dict[str, Path] = {}
    frames12 = index_frames(12, marker=True)
    v["mp4"] = encode(d / "h264.mp4", frames12)
    v["mp4_audio"] = encode(d / "h264_audio.mp4", frames12, audio=True, extra_out=["-c:a", "aac"])
    v["webm_odd_audio"] = encode(d / "vp9_odd.webm", index_frames(10, 65, 49),
                                 codec=["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                                        "-pix_fmt", "yuv420p"], audio=True, extra_out=["-c:a", "libopus"])
    v["mkv"] = encode(d / "h264.mkv", frames12)
    # Phone-style portrait: stored landscape, displayed turned 90 degrees clockwise.
    ffmpeg("-display_rotation", "-90", "-i", str(v["mp4"]), "-c", "copy", str(d / "rot90.mp4"))
    v["rot90"] = d / "rot90.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(v["mp4"]), "-c", "copy", str(d / "rot270.mp4"))
    v["rot270"] = d / "rot270.mp4"
    # Variable frame rate: irregular timestamps, 20 frames.
    v["vfr"] = encode(d / "vfr.mp4", index_frames(20),
                      extra_out=["-vf", "setpts='(N*0.04+if(gte(N,10),0.5,0)+if(gte(N,15),0.013*(N-15),0))/TB'",
                                 "-fps_mode", "vfr"])
    v["avi"] = encode(d / "mjpeg.avi", frames12, codec=["-c:v", "mjpeg", "-q:v", "3"])
    v["avi_says_99"] = patch_avi_frame_count(v["avi"], d / "says99.avi", 99)
    v["avi_says_3"] = patch_avi_frame_count(v["avi"], d / "says3.avi", 3)
    v["zero_frames"] = strip_avi_frames(v["avi"], d / "zero.avi")
    textured = encode(d / "textured.mkv", index_frames(24, texture=True), extra_out=["-g", "4"])
    data = textured.read_bytes()
    v["truncated_partial"] = d / "truncated.mkv"
    v["truncated_partial"].write_bytes(data[: int(len(data) * 0.6)])
    v["garbage_tail"] = d / "garbage.mp4"
    v["garbage_tail"].write_bytes(v["mp4"].read_bytes() + np.random.default_rng(1).bytes(3000))
    v["no_moov"] = d / "no_moov.mp4"
    v["no_moov"].write_bytes(v["mp4"].read_bytes()[:-600])  # moov atom sits at the end
    v["audio_only"] = d / "audio.m4a"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=0.5", "-c:a", "aac", str(v["audio_only"]))
    v["text"] = d / "notes.mp4"
    v["text"].write_text("this is not a video\n")
    v["empty"] = d / "empty.mp4"
    v["empty"].write_bytes(b"")
    v["folder"] = d / "folder.mp4"
    v["folder"].mkdir()
    v["missing"] = d / "missing.mp4"
    return v


def ffmpeg_report(path: Path) -> str:
    return subprocess.run([FFMPEG, "-hide_banner", "-i", str(path)], capture_output=True).stderr.decode()


# --------------------------------------------------------------------- reading

@pytest.mark.parametrize("key, codec, has_audio", [("mp4", "h264", False), ("mp4_audio", "h264", True),
                                                    ("mkv", "h264", False)])
def test_probe_and_decode_h264(videos, key, codec, has_audio):
    info = probe(videos[key])
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height, info.rotation, info.codec, info.has_audio) == (64, 48, 0, codec, has_audio)
    assert info.fps == 25.0 and info.num_frames_header == 12
    assert info.duration == pytest.approx(0.48, abs=0.05)
    frames = list(iter_frames(videos[key], info))
    assert [f.shape for f in frames] == [(48, 64, 3)] * 12
    assert all(f.dtype == np.uint8 and f.flags.c_contiguous for f in frames)
    assert [frame_index(f) for f in frames] == list(range(12))
    assert np.abs(frames[0][5, 5].astype(int) - (255, 0, 0)).max() < 40  # RGB order: marker is red
    assert count_frames(videos[key]) == 12


def test_vp9_webm_odd_size_with_audio(videos):
    info = probe(videos["webm_odd_audio"])
    assert (info.width, info.height, info.codec, info.has_audio) == (65, 49, "vp9", True)
    frames = list(iter_frames(videos["webm_odd_audio"]))
    assert [f.shape for f in frames] == [(49, 65, 3)] * 10
    assert [frame_index(f) for f in frames] == list(range(10))


@pytest.mark.parametrize("key, rotation, k", [("rot90", 90, -1), ("rot270", 270, 1)])
def test_rotation_metadata_gives_upright_portrait_frames(videos, key, rotation, k):
    info = probe(videos[key])
    assert info.rotation == rotation
    assert (info.width, info.height) == (48, 64)
    stored = list(iter_frames(videos["mp4"]))
    frames = list(iter_frames(videos[key], info))
    assert len(frames) == 12 and frames[0].shape == (64, 48, 3)
    for f, s in zip(frames, stored):  # np.rot90 with k=-1 turns clockwise
        assert np.abs(f.astype(int) - np.rot90(s, k)).mean() < 3


def test_variable_frame_rate_gives_one_frame_per_decoded_frame(videos):
    info = probe(videos["vfr"])
    frames = list(iter_frames(videos["vfr"], info))
    assert [frame_index(f) for f in frames] == list(range(20))  # no duplicates, none dropped
    assert info.fps == pytest.approx(20 / info.duration, rel=0.05)
    assert count_frames(videos["vfr"]) == 20


@pytest.mark.parametrize("key, claimed", [("avi_says_99", 99), ("avi_says_3", 3)])
def test_decoding_ignores_a_lying_frame_count(videos, key, claimed):
    info = probe(videos[key])
    assert info.num_frames_header == claimed
    assert [frame_index(f) for f in iter_frames(videos[key], info)] == list(range(12))
    assert count_frames(videos[key]) == 12


def test_truncated_file_yields_its_intact_frames_and_warns(videos, caplog):
    with caplog.at_level(logging.WARNING, logger="video3d.io.video"):
        frames = list(iter_frames(videos["truncated_partial"]))
    assert 0 < len(frames) < 24
    assert [frame_index(f) for f in frames] == list(range(len(frames)))
    assert any("decoded" in r.getMessage() for r in caplog.records)


def test_trailing_garbage_is_ignored(videos):
    assert [frame_index(f) for f in iter_frames(videos["garbage_tail"])] == list(range(12))


def test_stopping_early_ends_ffmpeg(videos):
    gen = iter_frames(videos["mp4"])
    first = next(gen)
    gen.close()
    assert frame_index(first) == 0


def test_resize_while_decoding(videos):
    frames = list(iter_frames(videos["mp4"], size=(32, 24)))
    assert len(frames) == 12 and frames[0].shape == (24, 32, 3)


@pytest.mark.parametrize("key", ["missing", "folder", "empty", "text", "no_moov", "zero_frames", "audio_only"])
def test_bad_inputs_raise_one_line_video_error(videos, key):
    def first_error(fn) -> VideoError:
        with pytest.raises(VideoError) as e:
            fn()
        return e.value

    errors = [first_error(lambda: list(iter_frames(videos[key]))),
              first_error(lambda: count_frames(videos[key]))]
    if key != "zero_frames":  # its header is readable; it fails only when decoding
        errors.append(first_error(lambda: probe(videos[key])))
    for err in errors:
        assert isinstance(err, UserError)
        message = str(err)
        assert message and "\n" not in message and len(message) < 300
        assert videos[key].name in message


# --------------------------------------------------------------------- writing

def test_writer_round_trip_exact_ntsc_fps(tmp_path):
    out = tmp_path / "out.mp4"
    frames = index_frames(10, marker=True)
    with VideoWriter(out, fps=30000 / 1001, size=(64, 48)) as writer:
        for f in frames:
            writer.write(f)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]
    info = probe(out)
    assert exact_fps(info.fps) == Fraction(30000, 1001)
    assert (info.codec, info.width, info.height, info.has_audio) == ("h264", 64, 48, False)
    report = ffmpeg_report(out)
    assert "yuv420p" in report
    data = out.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # +faststart: playable while downloading
    decoded = list(iter_frames(out, info))
    assert [frame_index(f) for f in decoded] == list(range(10))
    assert np.abs(decoded[3].astype(int) - frames[3]).mean() < 4


def test_writer_integer_fps_and_odd_size_padded(tmp_path):
    out = tmp_path / "odd.mp4"
    frames = index_frames(6, 65, 49)
    with VideoWriter(out, fps=25, size=(65, 49)) as writer:
        for f in frames:
            writer.write(f)
    info = probe(out)
    assert (info.width, info.height, info.fps) == (66, 50, 25.0)
    decoded = list(iter_frames(out, info))
    assert len(decoded) == 6
    assert np.abs(decoded[5][:49, :65].astype(int) - frames[5]).mean() < 4
    assert np.abs(decoded[5][49, :65].astype(int) - frames[5][48]).mean() < 6  # edge replicated


def test_writer_failure_leaves_nothing_behind(tmp_path):
    out = tmp_path / "result.mp4"
    out.write_bytes(b"previous result")
    with pytest.raises(RuntimeError, match="boom"):
        with VideoWriter(out, fps=25, size=(64, 48)) as writer:
            writer.write(index_frames(1)[0])
            raise RuntimeError("boom")
    assert out.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.mp4"]


def test_writer_rejects_wrong_frames_and_empty_videos(tmp_path):
    with pytest.raises(ValueError):
        with VideoWriter(tmp_path / "a.mp4", fps=25, size=(64, 48)) as writer:
            writer.write(np.zeros((48, 63, 3), np.uint8))
    with pytest.raises(UserError, match="no frames"):
        with VideoWriter(tmp_path / "b.mp4", fps=25, size=(64, 48)):
            pass
    with pytest.raises(UserError, match="does not exist"):
        VideoWriter(tmp_path / "nope" / "c.mp4", fps=25, size=(64, 48)).open()
    assert list(tmp_path.iterdir()) == []


def test_exact_fps():
    assert exact_fps(29.97002997002997) == Fraction(30000, 1001)
    assert exact_fps(25) == 25 and exact_fps(Fraction(24000, 1001)) == Fraction(24000, 1001)
    with pytest.raises(ValueError):
        exact_fps(0)


# ---------------------------------------------------------------------- atomic

def test_ensure_writable_dir(tmp_path):
    target = tmp_path / "a" / "b"
    assert ensure_writable_dir(target) == target and target.is_dir()
    assert list(target.iterdir()) == []  # the write probe cleans up
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for bad in (blocker, blocker / "sub"):
        with pytest.raises(UserError) as e:
            ensure_writable_dir(bad)
        assert "is not writable" in str(e.value) and "\n" not in str(e.value)


def test_atomic_dir_success_replaces_old_result(tmp_path):
    final = tmp_path / "results"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with atomic_dir(final) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".results.partial-")
        assert not final.joinpath("new.txt").exists()
        (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in final.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]
    with atomic_dir(tmp_path / "fresh") as tmp:
        (tmp / "x").write_text("x")
    assert (tmp_path / "fresh" / "x").read_text() == "x"


def test_atomic_dir_failure_keeps_old_result(tmp_path):
    final = tmp_path / "results"
    final.mkdir()
    (final / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(final) as tmp:
            (tmp / "half.txt").write_text("half")
            raise KeyboardInterrupt
    assert sorted(p.name for p in final.iterdir()) == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_atomic_file_success_and_failure(tmp_path):
    final = tmp_path / "sub" / "poses.json"
    with atomic_file(final) as tmp:
        assert tmp.suffix == ".json" and tmp.parent == final.parent
        tmp.write_text("v1")
    assert final.read_text() == "v1"
    with pytest.raises(ValueError):
        with atomic_file(final) as tmp:
            tmp.write_text("partial")
            raise ValueError
    assert final.read_text() == "v1"
    with pytest.raises(FileNotFoundError):
        with atomic_file(tmp_path / "sub" / "never.json"):
            pass
    assert sorted(p.name for p in final.parent.iterdir()) == ["poses.json"]
    assert not any(n.startswith(".") for n in os.listdir(tmp_path))


def test_header_parsing_helpers():
    from video3d.io.video import _parse_rate, _parse_rotation

    assert _parse_rate("29.97") == pytest.approx(30000 / 1001, abs=1e-12)
    assert _parse_rate("23.98") == pytest.approx(24000 / 1001, abs=1e-12)
    assert _parse_rate("25") == 25.0 and _parse_rate("15.15") == 15.15 and _parse_rate("1k") == 1000.0
    assert _parse_rotation("      Display Matrix: rotation of -90.00 degrees") == 90
    assert _parse_rotation("      displaymatrix: rotation of 90.00 degrees") == 270
    assert _parse_rotation("      rotate          : 180") == 180
    assert _parse_rotation("      handler_name    : VideoHandler") == 0


def test_file_names_that_look_like_urls(videos, tmp_path):
    odd = tmp_path / "clip:1 (copy).mp4"
    odd.write_bytes(videos["mp4"].read_bytes())
    info = probe(odd)
    assert info.num_frames_header == 12 and count_frames(odd) == 12
    out = tmp_path / "out:1.mp4"
    with VideoWriter(out, fps=25, size=(64, 48)) as writer:
        for f in iter_frames(odd, info):
            writer.write(f)
    assert count_frames(out) == 12
