"""`video3d batch`: isolation, manifest-based resume, interruption."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.videos import blank_video, person_clip
from video3d.batch import MANIFEST
from video3d.cli import main

#: Whole batches of generated videos in worker processes, with interruptions.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("clips")
    first, _ = person_clip(d / "a.mp4", frames=12, width=160, height=120)
    return [first] + [person_clip(d / f"{n}.mp4", frames=12, width=160, height=120)[0] for n in "bc"]


def folder_with(tmp_path: Path, clips: list[Path], bad: bool = False) -> Path:
    d = tmp_path / "videos"
    (d / "sub").mkdir(parents=True)
    for c in clips:
        (d / c.name).write_bytes(c.read_bytes())
    if bad:
        (d / "broken.mp4").write_text("not a video")
        blank_video(d / "sub" / "empty_street.mp4")
    return d


def summary(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv") as f:
        return {Path(r["video"]).name: r for r in csv.DictReader(f)}


def test_mixed_folder_isolates_failures_and_resumes(tmp_path, clips, tiny_weights, capsys):
    src = folder_with(tmp_path, clips[:2], bad=True)
    out = tmp_path / "out"
    args = ["batch", str(src), "--out", str(out), "--weights", str(tiny_weights["ktpformer"]), "--recursive",
            "--no-render", "--workers", "2"]
    assert main(args) == 1  # some failed
    s = summary(out)
    assert {k: v["status"] for k, v in s.items()} == {"a.mp4": "ok", "b.mp4": "ok", "broken.mp4": "failed",
                                                     "empty_street.mp4": "failed"}
    assert "not a readable video" in s["broken.mp4"]["error"] and "no person" in s["empty_street.mp4"]["error"]
    assert int(s["a.mp4"]["frames"]) == 12
    assert sorted(p.name for p in out.iterdir()) == sorted(["a", "b", "summary.csv", "index.html", MANIFEST])
    stamp = (out / "a" / "keypoints.npz").stat().st_mtime_ns
    capsys.readouterr()
    assert main(args) == 1  # re-run: good ones skipped, bad ones retried and failing again
    s = summary(out)
    assert s["a.mp4"]["status"] == "skipped" and s["broken.mp4"]["status"] == "failed"
    assert (out / "a" / "keypoints.npz").stat().st_mtime_ns == stamp
    assert main(args + ["--force"]) == 1
    assert summary(out)["a.mp4"]["status"] == "ok"
    assert (out / "a" / "keypoints.npz").stat().st_mtime_ns != stamp


def test_all_good_exits_zero_and_settings_change_redoes(tmp_path, clips, tiny_weights):
    src = folder_with(tmp_path, clips[:1])
    out = tmp_path / "out"
    base = ["batch", str(src), "--out", str(out), "--weights", str(tiny_weights["ktpformer"]), "--no-render"]
    assert main(base) == 0
    assert main(base) == 0 and summary(out)["a.mp4"]["status"] == "skipped"
    assert main(base + ["--smooth-3d", "savgol"]) == 0 and summary(out)["a.mp4"]["status"] == "ok"


def wait_for(cond, timeout=240.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return True
        time.sleep(0.2)
    return False


def manifest_entries(out: Path) -> dict:
    try:
        return json.loads((out / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


@pytest.mark.parametrize("how", ["sigterm-batch", "kill-worker"])
def test_interrupted_batch_resumes_every_video_exactly_once(tmp_path, clips, tiny_weights, how):
    src = folder_with(tmp_path, clips)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "video3d.cli", "batch", str(src), "--out", str(out),
           "--weights", str(tiny_weights["ktpformer"]), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: len(manifest_entries(out)) >= 1), "first video never finished"
        if how == "sigterm-batch":
            proc.send_signal(signal.SIGTERM)
        else:  # SIGKILL the worker process(es) while they work on the next video
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
            for pid in children:
                os.kill(int(pid), signal.SIGKILL)
        _, err = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
    first_done = dict(manifest_entries(out))
    assert 1 <= len(first_done) <= 3
    if how == "sigterm-batch":
        assert proc.returncode != 0 and "Traceback" not in err
    assert not list(out.glob(".*.partial-*"))  # no half-written outputs
    stamps = {n: (out / n / "keypoints.npz").stat().st_mtime_ns for n in first_done}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    final = manifest_entries(out)
    assert sorted(final) == ["a", "b", "c"]
    for n, stamp in stamps.items():  # finished before the interruption: not redone
        assert (out / n / "keypoints.npz").stat().st_mtime_ns == stamp
        assert final[n]["completed_at"] == first_done[n]["completed_at"]
    s = summary(out)
    assert all(s[f"{n}.mp4"]["status"] == ("skipped" if n in first_done else "ok") for n in "abc")


def test_export_bvh_on_a_finished_batch_reuses_keypoints_and_weights_are_keyed_by_sha256(
        tmp_path, clips, capsys):
    """#8: adding --export bvh exports from the saved keypoints.npz (no detection, no lifting);
    the same weights at another path are the same results, new weights at the same path are not."""
    import shutil
    import stat

    from tests.conftest import make_tiny_weights

    src = folder_with(tmp_path, clips[:1])
    out = tmp_path / "out"
    first = make_tiny_weights(tmp_path / "w1", "ktpformer", num_frames=27)
    base = ["batch", str(src), "--out", str(out), "--no-render"]
    assert main(base + ["--weights", str(first)]) == 0
    npz = out / "a" / "keypoints.npz"
    stamp, done_at = npz.stat().st_mtime_ns, manifest_entries(out)["a"]["completed_at"]

    moved = tmp_path / "w2" / first.name  # same bytes, another path
    moved.parent.mkdir()
    shutil.copy(first, moved)
    shutil.copy(first.with_suffix(".json"), moved.with_suffix(".json"))
    assert main(base + ["--weights", str(moved), "--export", "bvh"]) == 0
    assert summary(out)["a.mp4"]["status"] == "exported"
    assert npz.stat().st_mtime_ns == stamp and manifest_entries(out)["a"]["completed_at"] == done_at
    bvh = out / "a" / "skeleton.bvh"
    assert bvh.read_text().startswith("HIERARCHY")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(bvh.stat().st_mode) == 0o666 & ~umask == stat.S_IMODE(npz.stat().st_mode) & 0o666
    assert manifest_entries(out)["a"]["exports"] == ["bvh"]
    assert main(base + ["--weights", str(moved), "--export", "bvh"]) == 0
    assert summary(out)["a.mp4"]["status"] == "skipped"

    # `video3d export bvh` names the file the same way and writes the same motion
    other = tmp_path / "copy"
    other.mkdir()
    shutil.copy(npz, other / "keypoints.npz")
    capsys.readouterr()
    assert main(["export", "bvh", str(other / "keypoints.npz")]) == 0
    assert (other / "skeleton.bvh").read_text() == bvh.read_text()
    assert stat.S_IMODE((other / "skeleton.bvh").stat().st_mode) == 0o666 & ~umask

    make_tiny_weights(tmp_path / "w2", "ktpformer", num_frames=27, depth=1)  # new weights, same path
    assert main(base + ["--weights", str(moved)]) == 0
    assert summary(out)["a.mp4"]["status"] == "ok" and npz.stat().st_mtime_ns != stamp
