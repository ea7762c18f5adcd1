"""Reliability under faults (issue #14): crashed workers, signals, shared output folders,
results in the way, disk full, malformed inputs. Each test reproduces one defect class."""
from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_tiny_weights
from tests.videos import person_clip
from video3d.batch import MANIFEST
from video3d.cli import main
from video3d.errors import UserError
from video3d.io import atomic
from video3d.io.atomic import atomic_dir, host_token, owner_token, remove_stale

CLI = [sys.executable, "-m", "video3d.cli"]


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return person_clip(tmp_path_factory.mktemp("clips") / "walk.mp4", frames=12, width=160, height=120)[0]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """Long enough (rendered) that a signal reliably lands while the staging folder exists."""
    return person_clip(tmp_path_factory.mktemp("clips") / "long.mp4", frames=60, width=160, height=120)[0]


def run_main(capsys, *args) -> tuple[int, str]:
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err and "unexpected" not in err, err
    return lines[0]


def summary(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv") as f:
        return {Path(r["video"]).name: r for r in csv.DictReader(f)}


def staging(out: Path) -> list[Path]:
    return [p for p in out.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def wait_for(cond, timeout=180.0, step=0.02) -> bool:
    t0 = time.time()
    while time.time() - t0 < timeout:
        if cond():
            return True
        time.sleep(step)
    return False


def spawn_workers(pid: int) -> list[int]:
    """PIDs of the pool workers (not the resource tracker) under process ``pid``."""
    found = []
    for child in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split():
        try:
            cmd = Path(f"/proc/{child}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in cmd:
            found.append(int(child))
    return found


def manifest(out: Path) -> dict:
    try:
        return json.loads((out / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


# ------------------------------------------------------------------ 1. crashed worker
def test_killed_worker_with_two_workers_does_not_end_the_batch(tmp_path, clip, tiny_weights):
    src = tmp_path / "videos"
    src.mkdir()
    for n in "abcd":
        shutil.copy(clip, src / f"{n}.mp4")
    out = tmp_path / "out"
    cmd = CLI + ["batch", str(src), "--out", str(out), "--weights", str(tiny_weights["ktpformer"]),
                 "--workers", "2", "--no-render"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: len(manifest(out)) >= 1, step=0.05), "first video never finished"
        workers = spawn_workers(proc.pid)
        assert workers, "no worker processes found"
        os.kill(workers[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err  # the videos in flight were retried and succeeded
    assert "unexpected" not in err and "Traceback" not in err, err
    s = summary(out)
    assert sorted(s) == [f"{n}.mp4" for n in "abcd"] and all(r["status"] == "ok" for r in s.values()), s
    assert sorted(manifest(out)) == list("abcd")
    assert not staging(out)


def test_a_video_that_always_crashes_its_worker_is_marked_failed(tmp_path, monkeypatch):
    """Retry once, then fail that video; the others finish and summary.csv is written."""
    import concurrent.futures as cf

    from video3d import batch
    from video3d.pipeline import RunOptions

    src = tmp_path / "videos"
    src.mkdir()
    for n in ("good", "crash"):
        (src / f"{n}.mp4").write_bytes(n.encode())

    class FakePool:  # stands in for the process pool: "crash" kills its worker every time
        submitted: list[str] = []

        def __init__(self, *a, **k):
            self._processes = {}

        def submit(self, fn, video, name, out):
            FakePool.submitted.append(name)
            fut = cf.Future()
            if name == "crash":
                fut.set_exception(cf.process.BrokenProcessPool("a worker died"))
            else:
                (Path(out) / name).mkdir(exist_ok=True)
                fut.set_result(batch.JobResult(name, video, "ok", 3, 0.1))
            return fut

        def shutdown(self, wait=True, cancel_futures=False):
            pass

    monkeypatch.setattr(batch.cf, "ProcessPoolExecutor", FakePool)
    monkeypatch.setattr(batch, "settings_hash", lambda options: "s")
    out = tmp_path / "out"
    results = {r.name: r for r in batch.run_batch(src, out, RunOptions(), workers=2)}
    assert results["good"].status == "ok"
    assert results["crash"].status == "failed" and "crashed 2 times" in results["crash"].error
    assert FakePool.submitted.count("crash") == 2  # tried, then retried once
    assert summary(out)["crash.mp4"]["status"] == "failed"


# ------------------------------------------------------------------ 2. signals during run
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_during_run_clean_up_like_ctrl_c(tmp_path, long_clip, tiny_weights, sig):
    out = tmp_path / "out"
    previous = out / "long"
    previous.mkdir(parents=True)
    (previous / "keypoints.npz").write_text("earlier result")
    cmd = CLI + ["run", str(long_clip), "--out", str(out), "--weights", str(tiny_weights["ktpformer"])]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # wait until the render has started writing into the staging folder
        assert wait_for(lambda: any(p.is_dir() and any(p.glob("*.mp4")) for p in out.glob(".long.partial-*"))), \
            "the run never reached its staging folder"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    lines = [line for line in err.splitlines() if line.strip() and "interrupted" in line]
    assert len(lines) == 1 and signal.Signals(sig).name in lines[0], err
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["long"]  # staging removed
    assert (previous / "keypoints.npz").read_text() == "earlier result"  # previous result kept


# ------------------------------------------------------------------ 3. staging of live jobs
def _dead_process_token() -> str:
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    token = owner_token(p.pid)
    p.wait()
    return token


def test_stale_staging_is_removed_only_when_its_owner_is_dead(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        time.sleep(0.1)
        dead = _dead_process_token()
        live_token = owner_token(live.pid)
        pid_start, host = live_token.split("@")
        assert host == host_token() and "." not in host and "-" not in host
        reused = f"{live.pid}-{int(pid_start.split('-')[1]) - 1}@{host}"  # same PID, another start time
        legacy = dead.split("@")[0]  # written before hosts were recorded: this machine's
        elsewhere = f"{dead.split('@')[0]}@{host}_node2"  # a dead PID here says nothing about another host
        entries = {
            f".a.partial-{dead}": "dead", f".b.partial-{live_token}": "live", f".c.partial-{reused}": "dead",
            f".d.partial-{owner_token()}.mp4": "live", f".e.old-{dead}": "restored", "f": "user",
            f".g.partial-{legacy}.mp4": "dead", f".h.partial-{elsewhere}": "other host",
            f".i.partial-{elsewhere}.npz": "other host",
        }
        for name in entries:
            (tmp_path / name).mkdir()
        removed = remove_stale(tmp_path)
    finally:
        live.kill()
        live.wait()
    left = sorted(p.name for p in tmp_path.iterdir())
    assert sorted(p.name for p in removed) == sorted(n for n, k in entries.items() if k == "dead")
    assert left == sorted([f".b.partial-{live_token}", f".d.partial-{owner_token()}.mp4", "e", "f",
                           f".h.partial-{elsewhere}", f".i.partial-{elsewhere}.npz"])


def test_batch_keeps_a_live_runs_staging_and_refuses_a_second_batch(tmp_path, clip, tiny_weights, capsys):
    from video3d.io.locks import exclusive_lock

    src = tmp_path / "videos"
    src.mkdir()
    shutil.copy(clip, src / "a.mp4")
    out = tmp_path / "out"
    out.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        run_staging = out / f".other.partial-{owner_token(live.pid)}"
        run_staging.mkdir()
        (run_staging / "overlay.mp4").write_bytes(b"a live run renders here")
        dead_staging = out / f".old.partial-{_dead_process_token()}"
        dead_staging.mkdir()
        args = ["batch", src, "--out", out, "--weights", tiny_weights["ktpformer"], "--no-render"]
        with exclusive_lock(out):  # another batch is running in this folder
            code, err = run_main(capsys, *args)
            assert code == 1 and "another video3d batch is already writing to" in one_error_line(err)
        code, err = run_main(capsys, *args)
        assert code == 0, err
        assert run_staging.is_dir() and not dead_staging.exists()
    finally:
        live.kill()
        live.wait()
    assert summary(out)["a.mp4"]["status"] == "ok"


def test_manifest_updates_are_merged(tmp_path):
    from video3d.batch import load_manifest, record_done, save_manifest

    save_manifest(tmp_path, {"a": {"key": "1"}})
    stale_view = load_manifest(tmp_path)
    save_manifest(tmp_path, {**load_manifest(tmp_path), "b": {"key": "2"}})  # someone else's update
    record_done(tmp_path, "c", {"key": "3"})  # must not write back the stale view
    assert sorted(load_manifest(tmp_path)) == ["a", "b", "c"] and "b" not in stale_view
    assert stat.S_IMODE((tmp_path / MANIFEST).stat().st_mode) == 0o666 & ~_umask()


# ------------------------------------------------------------------ 4./5. results in the way
def test_a_regular_file_at_the_result_path_is_refused_and_kept(tmp_path, clip, tiny_weights, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "walk").write_text("my notes")
    code, err = run_main(capsys, "run", clip, "--out", out, "--weights", tiny_weights["ktpformer"], "--no-render")
    assert code == 1 and "exists and is not a folder" in one_error_line(err)
    assert (out / "walk").read_text() == "my notes" and sorted(p.name for p in out.iterdir()) == ["walk"]


def test_failure_to_move_the_earlier_result_aside_is_one_line_and_cleans_staging(tmp_path, monkeypatch):
    final = tmp_path / "result"
    final.mkdir()
    (final / "old.txt").write_text("old")
    real_rename = os.rename

    def rename(src, dst):
        if Path(src) == final:
            raise PermissionError(errno.EACCES, "Permission denied", str(src))
        return real_rename(src, dst)

    monkeypatch.setattr(atomic.os, "rename", rename)
    with pytest.raises(UserError, match="cannot move the earlier result .* aside.*Permission denied"):
        with atomic_dir(final) as tmp:
            (tmp / "new.txt").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]
    assert (final / "old.txt").read_text() == "old"


# ------------------------------------------------------------------ 6. user errors
def test_disk_full_while_writing_data_is_one_line_naming_the_file(tmp_path, clip, tiny_weights, capsys,
                                                                   monkeypatch):
    from video3d.export import files

    def full(path, seq):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files, "write_csv", full)
    out = tmp_path / "out"
    code, err = run_main(capsys, "run", clip, "--out", out, "--weights", tiny_weights["ktpformer"], "--no-render")
    line = one_error_line(err)
    assert code == 1 and "No space left on device" in line and str(out / "walk" / "keypoints_3d.csv") in line
    assert list(out.iterdir()) == []


@pytest.fixture()
def bad_weights(tmp_path, tiny_weights):
    def make(kind: str) -> Path:
        w = tmp_path / "w" / "ktpformer-test.safetensors"
        w.parent.mkdir(exist_ok=True)
        shutil.copy(tiny_weights["ktpformer"], w)
        card = json.loads(tiny_weights["ktpformer"].with_suffix(".json").read_text())
        if kind == "mismatch":
            card["config"]["embed_dim"] = card["config"].get("embed_dim", 32) * 2
        elif kind == "no_arch":
            del card["arch"]
        elif kind == "list":
            card = [card]
        w.with_suffix(".json").write_text(json.dumps(card))
        return w
    return make


@pytest.mark.parametrize("kind,needle", [("mismatch", "do not match the config in"),
                                         ("no_arch", "has no 'arch'"), ("list", "must be a JSON object")])
def test_bad_weights_cards_are_one_line(tmp_path, bad_weights, capsys, kind, needle):
    npz = tmp_path / "in.npz"
    np.savez(npz, keypoints=np.zeros((5, 17, 2)) + 100, image_size=[640, 480])
    w = bad_weights(kind)
    code, err = run_main(capsys, "lift", npz, "--weights", w, "--out", tmp_path / "o")
    line = one_error_line(err)
    assert code == 1 and needle in line and str(w.with_suffix(".json")) in line
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


NPZ_CASES = {
    "lift image_size text": ("lift", dict(keypoints=np.zeros((5, 17, 2)), image_size=np.array(["640", "480"])),
                             "'image_size' must be (width, height)"),
    "lift image_size scalar": ("lift", dict(keypoints=np.zeros((5, 17, 2)), image_size=np.array(640)),
                               "'image_size' must be (width, height)"),
    "lift fps text": ("lift", dict(keypoints=np.zeros((5, 17, 2)), image_size=[640, 480], fps=np.array("fast")),
                      "'fps' must be one positive number"),
    "lift fps pair": ("lift", dict(keypoints=np.zeros((5, 17, 2)), image_size=[640, 480], fps=[25, 30]),
                      "'fps' must be one positive number"),
    "bvh fps text": ("bvh", dict(keypoints_3d_world=np.zeros((5, 17, 3)), fps=np.array("fast")),
                     "'fps' must be one positive number"),
    "bvh fps missing": ("bvh", dict(keypoints_3d_world=np.zeros((5, 17, 3))), "missing key 'fps'"),
    "bvh joints text": ("bvh", dict(keypoints_3d_world=np.array(["a"]), fps=25.0), "'keypoints_3d_world' must be"),
}


@pytest.mark.parametrize("case", list(NPZ_CASES) + ["lift npy renamed", "bvh npy renamed"])
def test_malformed_npz_inputs_are_one_line(tmp_path, tiny_weights, capsys, case):
    if case.endswith("npy renamed"):
        command = case.split()[0]
        path = tmp_path / "keypoints.npz"
        with open(path, "wb") as f:
            np.save(f, np.zeros((5, 17, 2)))
        needle = "single .npy array, not an .npz"
    else:
        command, arrays, needle = NPZ_CASES[case]
        path = _npz(tmp_path / "keypoints.npz", **arrays)
    if command == "lift":
        args = ["lift", path, "--weights", tiny_weights["ktpformer"], "--out", tmp_path / "o"]
    else:
        args = ["export", "bvh", path]
    code, err = run_main(capsys, *args)
    line = one_error_line(err)
    assert code == 1 and needle in line and str(path) in line, line
    assert "is not a file in the archive" not in line
    assert not (tmp_path / "skeleton.bvh").exists() and not (tmp_path / "o").exists()


def test_unreadable_input_folder_and_file_are_one_line(tmp_path, capsys, monkeypatch):
    from video3d.io.hashing import file_sha256

    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(b"x")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m, **k: False if Path(p) == folder else real_access(p, m, **k))
    code, err = run_main(capsys, "batch", folder, "--out", tmp_path / "out")
    assert code == 1 and f"cannot read input folder {folder}" in one_error_line(err)
    code, err = run_main(capsys, "lift", folder, "--out", tmp_path / "o")
    assert code == 1 and f"cannot read input folder {folder}" in one_error_line(err)
    video = folder / "a.mp4"
    monkeypatch.setattr(os, "access", lambda p, m, **k: False if Path(p) == video else real_access(p, m, **k))
    code, err = run_main(capsys, "run", video, "--out", tmp_path / "out")
    assert code == 1 and f"cannot read video {video}: permission denied" in one_error_line(err)
    monkeypatch.undo()

    real_open = open

    def deny(path, *a, **k):
        if Path(path) == folder / "a.mp4":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, *a, **k)

    monkeypatch.setattr("builtins.open", deny)
    with pytest.raises(UserError, match=f"cannot read {folder / 'a.mp4'}: Permission denied"):
        file_sha256(folder / "a.mp4")


# ------------------------------------------------------------------ 7. progress for long lifts
def test_lift_reports_progress(tiny_weights):
    from video3d.lift.lifter import Lifter

    model = Lifter.load("ktpformer", tiny_weights["ktpformer"], "cpu")
    calls = []
    kp = np.random.default_rng(0).uniform(100, 500, (300, 17, 2)).astype(np.float32)
    model.lift(kp, (640, 480), flip=False, progress=lambda done, total: calls.append((done, total)))
    assert len(calls) >= 2 and calls[-1][0] == calls[-1][1] and [d for d, _ in calls] == sorted(d for d, _ in calls)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_signals_deferred_delivers_after_the_critical_section():
    from video3d.interrupts import Interrupted, signals_deferred, signals_interrupt

    steps = []
    with pytest.raises(Interrupted) as e:
        with signals_interrupt():
            with signals_deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)
                steps.append("critical section finished")
            steps.append("not reached")
    assert steps == ["critical section finished"] and e.value.exit_code == 143
