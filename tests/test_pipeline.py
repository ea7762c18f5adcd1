"""`video3d run` end to end on generated clips: output contract, renders, gaps, portrait, atomicity."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.videos import person_clip, write_frames
from video3d import skeleton
from video3d.io.video import count_frames, probe
from video3d.pipeline import RunOptions, run_video

NPZ_KEYS = {"keypoints_2d", "scores_2d", "keypoints_3d_camera", "keypoints_3d_world", "valid", "fps", "image_size",
            "joint_names", "parents", "detector", "lifter", "weights_sha256", "interpolated", "gaps", "gap_summary",
            "root_translation"}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return person_clip(tmp_path_factory.mktemp("clip") / "walker.mp4", frames=30, fps=25.0)


@pytest.fixture(scope="module")
def result(clip, tiny_weights, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return run_video(clip[0], out, RunOptions(weights=str(tiny_weights["ktpformer"]), export_bvh=True))


@pytest.mark.slow
def test_output_files_and_keys(result):
    d = result.out_dir
    assert sorted(p.name for p in d.iterdir()) == sorted(
        ["keypoints.npz", "keypoints.json", "keypoints_3d.csv", "overlay.mp4", "skeleton3d.mp4", "skeleton.bvh", "viewer.html"])
    with np.load(d / "keypoints.npz") as z:
        assert set(z.files) == NPZ_KEYS
        T = 30
        assert z["keypoints_2d"].shape == (T, 17, 2) and z["scores_2d"].shape == (T, 17)
        assert z["keypoints_3d_camera"].shape == (T, 17, 3) and z["keypoints_3d_world"].shape == (T, 17, 3)
        assert z["valid"].shape == (T,) and z["valid"].all()
        assert float(z["fps"]) == pytest.approx(25.0)
        assert z["image_size"].tolist() == [320, 240]
        assert tuple(z["joint_names"]) == skeleton.JOINT_NAMES and tuple(z["parents"]) == skeleton.PARENTS
        assert str(z["detector"]).startswith("blazepose") and str(z["lifter"]) == "ktpformer"
        np.testing.assert_allclose(z["keypoints_3d_camera"][:, 0], 0, atol=1e-6)  # root-relative
        root = z["root_translation"]  # pelvis, camera frame (issue #10); random weights: only "in front"
        assert root.shape == (T, 3) and np.isfinite(root).all() and (root[:, 2] >= 0.3 - 1e-6).all()
        assert np.allclose(np.nanmin(z["keypoints_3d_world"][..., 2], axis=1), 0, atol=1e-6)  # floor
        j = json.loads((d / "keypoints.json").read_text())
        assert set(NPZ_KEYS) <= set(j)
        np.testing.assert_allclose(np.array(j["keypoints_3d_camera"], float), z["keypoints_3d_camera"], atol=1e-4)
    rows = (d / "keypoints_3d.csv").read_text().strip().splitlines()
    assert len(rows) == 1 + 30 * 17 and rows[0].startswith("frame,time_s,joint_index,joint")


@pytest.mark.slow
def test_rendered_videos_match_source(result, clip):
    src = probe(clip[0])
    for name in ("overlay.mp4", "skeleton3d.mp4"):
        info = probe(result.out_dir / name)
        assert info.codec == "h264" and info.fps == pytest.approx(src.fps, rel=1e-3)
        assert count_frames(result.out_dir / name) == 30
    overlay = probe(result.out_dir / "overlay.mp4")
    assert overlay.height == 240 and overlay.width == 320 + 240  # frame + square 3D panel
    assert overlay.width % 2 == 0 and overlay.height % 2 == 0


@pytest.mark.slow
def test_failed_run_leaves_nothing_and_keeps_previous_output(clip, tiny_weights, tmp_path, monkeypatch):
    import video3d.pipeline as pipeline

    opts = RunOptions(weights=str(tiny_weights["ktpformer"]), render=False)
    run_video(clip[0], tmp_path, opts)
    before = (tmp_path / "walker" / "keypoints.npz").read_bytes()

    def boom(*a, **k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(pipeline, "render_videos", boom)
    with pytest.raises(RuntimeError):
        run_video(clip[0], tmp_path, RunOptions(weights=str(tiny_weights["ktpformer"])))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walker"]  # no staging folder left behind
    assert (tmp_path / "walker" / "keypoints.npz").read_bytes() == before


@pytest.mark.slow
def test_detection_gaps_at_start_middle_and_end(tmp_path, tiny_weights):
    path, truth = person_clip(tmp_path / "src.mp4", frames=40, fps=25.0)
    from video3d.io.video import iter_frames
    frames = list(iter_frames(path))
    background = frames[0].copy()
    background[:] = np.median(frames[0].reshape(-1, 3), axis=0).astype(np.uint8)  # nobody there
    gaps = list(range(0, 5)) + [20, 21] + list(range(36, 40))
    for t in gaps:
        frames[t] = background
    video = write_frames(tmp_path / "gappy.mp4", frames, 25.0)
    res = run_video(video, tmp_path / "out", RunOptions(weights=str(tiny_weights["ktpformer"]), render=True))
    with np.load(res.out_dir / "keypoints.npz") as z:
        valid, cam, interpolated = z["valid"], z["keypoints_3d_camera"], z["interpolated"]
        gaps, summary = json.loads(str(z["gaps"])), str(z["gap_summary"])
    assert interpolated.dtype == bool and interpolated.tolist() == [t in (20, 21) for t in range(40)]
    assert gaps == [{"start": 0, "end": 4, "length": 5, "filled": False},
                    {"start": 20, "end": 21, "length": 2, "filled": True},
                    {"start": 36, "end": 39, "length": 4, "filled": False}]
    assert summary == res.gaps
    j = json.loads((res.out_dir / "keypoints.json").read_text())
    assert j["gaps"] == gaps and j["interpolated"] == interpolated.tolist()
    assert len(valid) == 40
    assert not valid[:5].any() and not valid[36:].any()  # leading/trailing gaps: missing
    assert valid[20:22].all()  # short interior gap: interpolated
    assert np.isnan(cam[~valid]).all() and np.isfinite(cam[valid]).all()
    assert "gap" in res.gaps
    assert count_frames(res.out_dir / "overlay.mp4") == 40  # every frame rendered, missing ones too


def test_portrait_input(tmp_path, tiny_weights):
    path, _ = person_clip(tmp_path / "portrait.mp4", frames=12, width=240, height=320, portrait=True)
    res = run_video(path, tmp_path / "out", RunOptions(weights=str(tiny_weights["ktpformer"])))
    assert res.image_size == (240, 320)
    with np.load(res.out_dir / "keypoints.npz") as z:
        assert z["valid"].mean() > 0.8
        kp = z["keypoints_2d"][z["valid"]]
        assert (kp[..., 0] <= 240).all() and (kp[..., 1] <= 320).all()
    info = probe(res.out_dir / "overlay.mp4")
    assert info.height == 320 and info.width == 240 + 320  # no square crop of the portrait frame


def test_lying_frame_count_header(tmp_path, tiny_weights, clip):
    from tests.test_video_io import patch_avi_frame_count
    from video3d.io.video import iter_frames
    from tests.videos import ffmpeg

    avi = tmp_path / "clip.avi"
    ffmpeg("-i", str(clip[0]), "-c:v", "mjpeg", "-q:v", "3", str(avi))
    liar = patch_avi_frame_count(avi, tmp_path / "liar.avi", 7)
    assert sum(1 for _ in iter_frames(liar)) == 30
    res = run_video(liar, tmp_path / "out", RunOptions(weights=str(tiny_weights["ktpformer"]), render=False))
    assert res.num_frames == 30
