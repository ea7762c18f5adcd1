"""Concurrent render (3D animation in a child process): same files as the sequential path, clean failure."""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.processes import assert_gone, interrupt_run
from tests.videos import person_clip
from video3d.errors import UserError
from video3d.io.video import iter_frames, probe
from video3d.pipeline import RunOptions, run_video



@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return person_clip(tmp_path_factory.mktemp("clip") / "walker.mp4", frames=30, fps=25.0)


def _frames(path: Path) -> np.ndarray:
    return np.stack(list(iter_frames(path, probe(path))))


def test_concurrent_equals_sequential(clip, tiny_weights, tmp_path):
    w = str(tiny_weights["ktpformer"])
    seq = run_video(clip[0], tmp_path / "seq", RunOptions(weights=w, sequential=True, viewer=False))
    con = run_video(clip[0], tmp_path / "con", RunOptions(weights=w, sequential=False, viewer=False))
    names = sorted(p.name for p in seq.out_dir.iterdir())
    assert names == sorted(p.name for p in con.out_dir.iterdir())
    assert {"overlay.mp4", "skeleton3d.mp4", "keypoints.npz"} <= set(names)
    assert (seq.out_dir / "keypoints.npz").read_bytes() == (con.out_dir / "keypoints.npz").read_bytes()
    for name in ("overlay.mp4", "skeleton3d.mp4"):
        a, b = _frames(seq.out_dir / name), _frames(con.out_dir / name)
        assert a.shape == b.shape and a.shape[0] == 30
        np.testing.assert_array_equal(a, b)  # decoded frames identical
        assert (seq.out_dir / name).read_bytes() == (con.out_dir / name).read_bytes()  # even the encoded bytes


def test_child_failure_is_one_user_error_and_leaves_nothing(clip, tiny_weights, tmp_path, monkeypatch):
    # A pose array the child cannot render (wrong joint count) makes it fail after it started.
    import video3d.render.worker as worker

    real = worker.SkeletonRenderProcess.__init__

    def bad_init(self, path, fps, poses, *a, **k):
        real(self, path, fps, np.zeros((len(poses), 5, 3)), *a, **k)
    monkeypatch.setattr(worker.SkeletonRenderProcess, "__init__", bad_init)
    with pytest.raises(UserError, match="3D animation render process failed"):
        run_video(clip[0], tmp_path, RunOptions(weights=str(tiny_weights["ktpformer"]), viewer=False))
    assert list(tmp_path.iterdir()) == []  # no staging folder, no partial videos


def test_parent_error_terminates_child(tmp_path, monkeypatch):
    from video3d.render.worker import SkeletonRenderProcess

    poses = np.zeros((2000, 17, 3))  # long enough to still be running when we fail
    with pytest.raises(RuntimeError):
        with SkeletonRenderProcess(tmp_path / "s.mp4", 25.0, poses, 240, (320, 240)) as child:
            pid = child.pid
            raise RuntimeError("overlay failed")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped, not an orphan or zombie
    assert not (tmp_path / "s.mp4").exists()


_RUN = """
import signal, sys
from video3d.pipeline import RunOptions, run_video
def _term(signum, frame):  # what the CLI does with SIGTERM: unwind like Ctrl-C
    raise KeyboardInterrupt
signal.signal(signal.SIGTERM, _term)
import video3d.render.composite as c
orig = c.OverlayCompositor.compose
import time
def compose(self, *a, **k):
    print("RENDERING", flush=True)
    time.sleep(0.2)
    return orig(self, *a, **k)
c.OverlayCompositor.compose = compose
run_video(sys.argv[1], sys.argv[2], RunOptions(weights=sys.argv[3], viewer=False))
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_mid_render_leaves_no_staging_and_no_child(clip, tiny_weights, tmp_path, sig):
    out = tmp_path / "out"

    def render_child(pid: int) -> list[str]:
        return subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    rc, children = interrupt_run(_RUN, [str(clip[0]), str(out), str(tiny_weights["ktpformer"])], b"RENDERING",
                                 render_child, sig)
    assert rc != 0
    assert_gone(children, out)
