"""Bad inputs: one clear error line, non-zero exit, no traceback, no partial output."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.videos import blank_video, person_clip, truncated_copy, zero_frame_video
from video3d.cli import main


def run_main(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def error_lines(err: str) -> list[str]:
    return [l for l in err.splitlines() if l.startswith("error:")]


def assert_clean_failure(code, err, out_dir: Path, needle: str):
    assert code == 1, err
    lines = error_lines(err)
    assert len(lines) == 1 and needle.lower() in lines[0].lower(), err
    assert "Traceback" not in err
    if out_dir.exists():  # nothing half-written: no result folders, no staging folders
        assert not [p for p in out_dir.iterdir() if p.name != "summary.csv"], list(out_dir.iterdir())


@pytest.fixture(scope="module")
def person_video(tmp_path_factory) -> Path:
    path, _ = person_clip(tmp_path_factory.mktemp("clips") / "person.mp4", frames=20)
    return path


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


CASES = {
    "missing path": (lambda d: d / "absent.mp4", "not found"),
    "a directory": (lambda d: d, "folder"),
    "empty file": (lambda d: write(d / "empty.mp4", b""), "empty"),
    "text named mp4": (lambda d: write(d / "notes.mp4", b"hello, not a video\n"), "not a readable video"),
    "zero-frame video": (lambda d: zero_frame_video(d / "audio_only.mp4"), "no video"),
    "no person": (lambda d: blank_video(d / "blank.mp4"), "no person"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_video_inputs(case, tmp_path, capsys, tiny_weights):
    make, needle = CASES[case]
    src = tmp_path / "in"
    src.mkdir()
    video = make(src)
    out = tmp_path / "out"
    code, err = run_main(capsys, "run", video, "--out", out, "--weights", tiny_weights["ktpformer"])
    assert_clean_failure(code, err, out, needle)


def test_truncated_video_decodes_what_is_there_or_fails_cleanly(tmp_path, capsys, tiny_weights, person_video):
    bad = truncated_copy(person_video, tmp_path / "truncated.mp4", keep=0.5)
    out = tmp_path / "out"
    code, err = run_main(capsys, "run", bad, "--out", out, "--weights", tiny_weights["ktpformer"], "--no-render")
    if code == 0:  # the decodable prefix was processed completely
        with np.load(out / "truncated" / "keypoints.npz") as z:
            assert 0 < len(z["keypoints_3d_camera"]) < 20
    else:
        assert_clean_failure(code, err, out, "truncated.mp4")
    cut = truncated_copy(person_video, tmp_path / "header_only.mp4", keep=0.02)
    code, err = run_main(capsys, "run", cut, "--out", out, "--weights", tiny_weights["ktpformer"])
    assert code == 1 and len(error_lines(err)) == 1 and "Traceback" not in err


def test_unwritable_output_folder(tmp_path, capsys, tiny_weights, person_video):
    blocker = tmp_path / "file_not_dir"
    blocker.write_text("x")
    code, err = run_main(capsys, "run", person_video, "--out", blocker / "sub", "--weights", tiny_weights["ktpformer"])
    assert code == 1 and len(error_lines(err)) == 1 and "writable" in err
    if os.geteuid() != 0:  # root ignores permission bits
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        code, err = run_main(capsys, "run", person_video, "--out", ro, "--weights", tiny_weights["ktpformer"])
        assert code == 1 and "writable" in err


def test_missing_and_corrupt_weights(tmp_path, capsys, tiny_weights, person_video):
    out = tmp_path / "out"
    code, err = run_main(capsys, "run", person_video, "--out", out, "--weights", tmp_path / "absent.safetensors")
    assert_clean_failure(code, err, out, "weights file not found")
    bad = tmp_path / "bad.safetensors"
    shutil.copy(tiny_weights["ktpformer"], bad)
    shutil.copy(tiny_weights["ktpformer"].with_suffix(".json"), bad.with_suffix(".json"))
    bad.write_bytes(bad.read_bytes()[:100])
    code, err = run_main(capsys, "run", person_video, "--out", out, "--weights", bad)
    assert_clean_failure(code, err, out, "corrupt")
    bad.with_suffix(".json").write_text("{not json")
    code, err = run_main(capsys, "run", person_video, "--out", out, "--weights", bad)
    assert_clean_failure(code, err, out, "model card")


def test_one_frame_video_with_a_person_works(tmp_path, capsys, tiny_weights):
    from tests.videos import write_frames
    from video3d.io.video import iter_frames

    two, _ = person_clip(tmp_path / "two.mp4", frames=2)
    video = write_frames(tmp_path / "one.mp4", [next(iter_frames(two))], 25.0)
    out = tmp_path / "out"
    code, err = run_main(capsys, "run", video, "--out", out, "--weights", tiny_weights["ktpformer"])
    assert code == 0, err
    with np.load(out / "one" / "keypoints.npz") as z:
        assert z["keypoints_3d_camera"].shape == (1, 17, 3)


def test_bad_options(tmp_path, capsys, tiny_weights, person_video):
    for args, needle in [(["--person", "left"], "person")]:
        code, err = run_main(capsys, "run", person_video, "--out", tmp_path / "o", "--weights",
                             tiny_weights["ktpformer"], *args)
        assert code == 1 and len(error_lines(err)) == 1 and needle in error_lines(err)[0], (args, err)
    # a value outside an option's choices is a usage error (exit 2) that names the option and the choices
    for args, choice in [(["--smooth-3d", "kalman"], "'oneeuro'"), (["--lifter", "mhformer"], "'ampose'"),
                         (["--export", "fbx"], "'bvh'"), (["--detector", "openpose"], "'mmpose'")]:
        code, err = run_main(capsys, "run", person_video, "--out", tmp_path / "o", "--weights",
                             tiny_weights["ktpformer"], *args)
        assert code == 2 and f"Invalid value for '{args[0]}'" in err and choice in err, (args, err)
        assert "Traceback" not in err and "unexpected" not in err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


@pytest.mark.slow
def test_debug_flag_shows_traceback_and_default_does_not(tmp_path):
    cmd = [sys.executable, "-m", "video3d.cli"]
    r = subprocess.run([*cmd, "run", str(tmp_path / "absent.mp4")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "Traceback" not in r.stderr and r.stderr.count("error:") == 1
    r = subprocess.run([*cmd, "--debug", "run", str(tmp_path / "absent.mp4")], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" in r.stderr
