"""`video3d batch --ray`: same results and guarantees as the local batch, on a local Ray runtime (2 CPUs)."""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.videos import person_clip
from video3d.batch import MANIFEST, run_batch
from video3d.batch_ray import KILL_ONCE_ENV, LOCAL, is_address
from video3d.cli import _ray_flag, main

HAVE_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="the optional Ray extra is not installed "
                                                    "(pip install '.[ray]'); CI installs it")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("clips")
    return [person_clip(d / f"{n}.mp4", frames=12, width=160, height=120)[0] for n in "abc"]


@pytest.fixture(scope="module")
def ray_runtime(tmp_path_factory):
    """One local Ray runtime (2 CPUs) for the module; the kill hook starts disarmed (its marker exists)."""
    import ray

    from video3d.batch_ray import connect

    marker = tmp_path_factory.mktemp("hook") / "killed"
    marker.write_text("disarmed")
    os.environ[KILL_ONCE_ENV] = str(marker)  # inherited by the raylet, so by every worker
    try:
        connect(ray, LOCAL, 2)
        yield marker
    finally:
        ray.shutdown()
        os.environ.pop(KILL_ONCE_ENV, None)


def folder_with(tmp_path: Path, clips: list[Path], bad: bool = False) -> Path:
    d = tmp_path / "videos"
    d.mkdir()
    for c in clips:
        (d / c.name).write_bytes(c.read_bytes())
    if bad:
        (d / "broken.mp4").write_text("not a video")
    return d


def summary(out: Path) -> dict[str, dict]:
    with open(out / "summary.csv") as f:
        return {Path(r["video"]).name: r for r in csv.DictReader(f)}


def no_staging(out: Path) -> bool:
    return not [p for p in out.iterdir() if ".partial-" in p.name or ".old-" in p.name]


def test_ray_flag_takes_an_address_only_when_one_follows():
    assert _ray_flag(["batch", "v", "--ray"]) == ["batch", "v", "--ray=local"]
    assert _ray_flag(["batch", "--ray", "videos", "-o", "x"]) == ["batch", "--ray=local", "videos", "-o", "x"]
    assert _ray_flag(["batch", "--ray", "auto", "v"]) == ["batch", "--ray", "auto", "v"]
    assert _ray_flag(["batch", "v", "--ray", "ray://head:10001"])[-1] == "ray://head:10001"
    assert _ray_flag(["run", "--ray"]) == ["run", "--ray"]  # only batch has --ray
    assert is_address("10.0.0.5:6379") and not is_address("videos/") and not is_address("clips")


def test_missing_ray_is_one_line(tmp_path, clips, tiny_weights, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    src = folder_with(tmp_path, clips[:1])
    assert main(["batch", str(src), "--ray", "--out", str(tmp_path / "out"), "--weights",
                 str(tiny_weights["ktpformer"])]) == 1
    err = capsys.readouterr().err
    assert "error: --ray needs Ray" in err and "video3d[ray]" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@needs_ray
@pytest.mark.slow  # a local batch (a process pool) and a Ray batch of the same videos: about a minute
def test_same_keypoints_as_local_batch_failed_row_and_fast_skip(tmp_path, clips, tiny_weights, ray_runtime):
    src = folder_with(tmp_path, clips[:2], bad=True)
    common = ["--weights", str(tiny_weights["ktpformer"]), "--no-render"]
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert main(["batch", str(src), "--out", str(local), *common]) == 1
    assert main(["batch", str(src), "--ray", "--out", str(on_ray), *common]) == 1
    s = summary(on_ray)
    assert {k: v["status"] for k, v in s.items()} == {"a.mp4": "ok", "b.mp4": "ok", "broken.mp4": "failed"}
    assert {k: v["status"] for k, v in summary(local).items()} == {k: v["status"] for k, v in s.items()}
    assert "not a readable video" in s["broken.mp4"]["error"]
    for name in "ab":
        with np.load(local / name / "keypoints.npz") as a, np.load(on_ray / name / "keypoints.npz") as b:
            for key in ("keypoints_3d_camera", "keypoints_3d_world", "root_translation"):
                assert a[key].shape == b[key].shape and len(a[key]) == 12
                assert np.isfinite(b[key]).any() and np.nanmax(np.abs(a[key] - b[key])) < 1e-4  # metres
    assert (on_ray / "index.html").is_file() and (on_ray / "a" / "viewer.html").is_file()
    # the manifest is the local batch's: the same keys, so the local batch skips what Ray did and vice versa
    keys = lambda out: {k: v["key"] for k, v in json.loads((out / MANIFEST).read_text()).items()}  # noqa: E731
    assert keys(local) == keys(on_ray)
    stamp = (on_ray / "a" / "keypoints.npz").stat().st_mtime_ns
    t0 = time.perf_counter()
    assert main(["batch", str(src), "--ray", "--out", str(on_ray), *common]) == 1
    assert time.perf_counter() - t0 < 20
    assert {k: v["status"] for k, v in summary(on_ray).items()} == {"a.mp4": "skipped", "b.mp4": "skipped",
                                                                    "broken.mp4": "failed"}
    assert (on_ray / "a" / "keypoints.npz").stat().st_mtime_ns == stamp
    assert no_staging(on_ray)


@needs_ray
@pytest.mark.slow  # starts a local Ray runtime: kept out of the quick loop, run by CI
def test_killed_worker_is_retried_and_leaves_no_staging(tmp_path, clips, tiny_weights, ray_runtime):
    from video3d.batch_ray import ray_runner
    from video3d.pipeline import RunOptions

    src = folder_with(tmp_path, clips[:1])
    out = tmp_path / "out"
    options = RunOptions(weights=str(tiny_weights["ktpformer"]), render=False, viewer=False)
    ray_runtime.unlink()  # arm: the first task creates the marker and SIGKILLs its worker
    results = run_batch(src, out, options, runner=ray_runner(max_retries=1))
    assert [(r.name, r.status, r.frames) for r in results] == [("a", "ok", 12)]
    assert ray_runtime.read_text().isdigit()  # a worker was killed (its PID), the retry finished the video
    assert no_staging(out)

    ray_runtime.unlink()  # without retries the same kill fails the video: one failed row, nothing half-written
    results = run_batch(src, tmp_path / "out0", options, runner=ray_runner(max_retries=0))
    assert results[0].status == "failed" and "crashed" in results[0].error
    assert sorted(p.name for p in (tmp_path / "out0").iterdir()) == ["summary.csv"]


@needs_ray
@pytest.mark.slow  # starts a local Ray runtime: kept out of the quick loop, run by CI
def test_interrupted_ray_batch_resumes_every_video_exactly_once(tmp_path, clips, tiny_weights, ray_runtime):
    from video3d.batch_ray import ray_runner
    from video3d.pipeline import RunOptions

    src = folder_with(tmp_path, clips)
    out = tmp_path / "out"
    options = RunOptions(weights=str(tiny_weights["ktpformer"]), render=False, viewer=False)

    def stop_after_first(kind, name, result):  # Ctrl-C arrives as soon as one video is done
        if kind == "done":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_batch(src, out, options, on_event=stop_after_first, runner=ray_runner(workers=2))
    s = summary(out)
    done = [k for k, v in s.items() if v["status"] == "ok"]
    assert len(done) == 1 and sorted(v["status"] for v in s.values()) == ["interrupted", "interrupted", "ok"]
    assert no_staging(out)
    first = json.loads((out / MANIFEST).read_text())
    results = run_batch(src, out, options, runner=ray_runner())
    by_name = {r.video.split("/")[-1]: r.status for r in results}
    assert by_name[done[0]] == "skipped" and sorted(by_name.values()) == ["ok", "ok", "skipped"]
    manifest = json.loads((out / MANIFEST).read_text())
    name = Path(done[0]).stem
    assert manifest[name]["completed_at"] == first[name]["completed_at"]  # not redone
    assert sorted(manifest) == ["a", "b", "c"] and no_staging(out)
