"""Multi-view: triangulation pipeline on synthetic rigs, the relational model, association,
the `multiview` command (stubbed 2D), one-line errors without partial output, the real 4-view clip."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.motions import walking_clip
from tests.videos import blank_video
from video3d.errors import UserError
from video3d.geometry.calibration import NamedCamera, write_toml
from video3d.geometry.camera import CalibratedCamera, look_at
from video3d.keypoints import coco_to_h36m
from video3d.models.multiview import MultiViewRelational
from video3d.multiview import learned
from video3d.multiview.association import Track2D, associate
from video3d.multiview.pipeline import MultiviewOptions, run_multiview, trc_text
from video3d.multiview.reconstruct import hampel, reconstruct

SIZE = (320, 240)
FPS = 25
T = 40
SHARED_MC = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "multicam"


def ring(n: int = 3, size=SIZE) -> list[NamedCamera]:
    cams = []
    for k in range(n):
        a = 2 * np.pi * k / n + 0.3
        eye = np.array([4.0 * np.cos(a), 0.6 + 4.0 * np.sin(a), 1.5 + 0.2 * k])
        R = look_at(eye, np.array([0.0, 0.6, 0.9]))
        cams.append(NamedCamera(f"cam{k + 1}", CalibratedCamera(R=R, t=-R @ eye, fx=260.0, fy=260.0, cx=size[0] / 2,
                                                                cy=size[1] / 2, width=size[0], height=size[1],
                                                                k=(0.01, -0.002), p=(0.0005, 0.0))))
    return cams


def truth() -> np.ndarray:
    """(T, 17, 3) H36M joints of a slow walk, world metres."""
    return coco_to_h36m(walking_clip(T, speed=0.5, fps=FPS))[0]


def project_all(cams, X, noise: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    pts = np.stack([c.camera.project(X) for c in cams])
    return pts + rng.normal(0, noise, pts.shape), np.full(pts.shape[:-1], 0.9)


@pytest.fixture()
def scene(tmp_path):
    cams = ring()
    write_toml(tmp_path / "Calib.toml", cams)
    videos = [blank_video(tmp_path / f"{c.name}.mp4", frames=T, size=SIZE, fps=FPS) for c in cams]
    return tmp_path, cams, videos


def stub_detect(cams, noise: float = 0.5, empty: set[str] = frozenset(), other: set[str] = frozenset(),
                calls: list | None = None):
    """Detector stand-in: projections of the truth (+ noise). Views in ``other`` follow a second
    person (1.5 m away) unless asked for an 'x,y' point."""
    pts, sc = project_all(cams, truth(), noise)
    pts_b, _ = project_all(cams, truth() + np.array([1.5, 0.8, 0.0]), noise, seed=3)
    index = {c.name: k for k, c in enumerate(cams)}

    def detect(view, n, progress, person="auto"):
        if calls is not None:
            calls.append((view.name, person))
        k = index[view.name]
        if view.name in empty:
            return []
        src = pts_b if view.name in other and "," not in person else pts
        return [Track2D(src[k, view.offset:view.offset + n], sc[k, view.offset:view.offset + n])]
    return detect


# ----------------------------------------------------------------------------- triangulation pipeline
def test_reconstruct_exact_points_sub_millimetre():
    cams = ring(4)
    X = truth()
    pts, sc = project_all(cams, X)
    rec = reconstruct(pts, sc, [c.camera for c in cams], FPS, smooth=False)
    assert np.abs(rec.points - X).max() < 1e-3
    assert rec.valid.all() and np.nanmax(rec.reprojection_error) < 1e-3


def test_reconstruct_noisy_outlier_view_is_dropped_and_smoothing_helps():
    cams = ring(4)
    X = truth()
    pts, sc = project_all(cams, X, noise=1.0, seed=1)
    pts[2, 10:20, 13] += 60.0  # one view's wrist jumps
    cam_list = [c.camera for c in cams]
    raw = reconstruct(pts, sc, cam_list, FPS, smooth=False)
    assert not raw.views_used[2, 10:20, 13].any()
    err_raw = np.linalg.norm(raw.points - X, axis=-1).mean()
    smooth = reconstruct(pts, sc, cam_list, FPS, smooth=True)
    err_smooth = np.linalg.norm(smooth.points - X, axis=-1).mean()
    assert err_raw < 0.02 and err_smooth < err_raw


def test_frames_where_a_view_follows_someone_else_are_ignored():
    cams = ring(4)
    X = truth()
    pts, sc = project_all(cams, X, noise=0.5)
    other, _ = project_all(cams, X + np.array([1.5, 0.8, 0.0]), noise=0.5)
    pts[1, 10:25] = other[1, 10:25]  # the tracker of view 1 switches people for 15 frames
    rec = reconstruct(pts, sc, [c.camera for c in cams], FPS, smooth=False)
    assert rec.ignored[1, 10:25].all() and rec.ignored.sum() == 15
    err = np.linalg.norm(rec.points - X, axis=-1)
    assert err.mean() < 0.01 and err.max() < 0.04  # 0.5 px noise ~ 1 cm at 4 m with f = 260 px


def test_hampel_removes_a_spike():
    x = np.sin(np.linspace(0, 3, 60))[:, None, None].repeat(3, 2)
    x[30, 0, 1] += 0.5
    y = hampel(x)
    assert abs(y[30, 0, 1] - x[30, 0, 0]) < 0.05
    np.testing.assert_array_equal(np.delete(y.reshape(60, -1), 1, axis=1), np.delete(x.reshape(60, -1), 1, axis=1))


def test_trc_is_y_up_metres():
    X = truth()[:3]
    text = trc_text(X, 25.0, [f"j{i}" for i in range(17)])
    lines = text.splitlines()
    assert lines[0].startswith("PathFileType\t4") and lines[2].split("\t")[:5] == ["25.00", "25.00", "3", "17", "m"]
    first = [float(v) for v in lines[6].split("\t")[2:5]]
    np.testing.assert_allclose(first, X[0, 0, [1, 2, 0]], atol=1e-5)  # Y_trc = z_world (up)


# ----------------------------------------------------------------------------- association
def test_association_matches_two_people_across_shuffled_views():
    cams = ring(3)
    A = truth()
    B = A + np.array([1.2, -0.5, 0.0])
    pa, sa = project_all(cams, A, 0.5, 1)
    pb, sb = project_all(cams, B, 0.5, 2)
    cands = [[Track2D(pa[0], sa[0]), Track2D(pb[0], sb[0])],
             [Track2D(pb[1], sb[1]), Track2D(pa[1], sa[1])],
             [Track2D(pa[2], sa[2]), Track2D(pb[2], sb[2])]]
    groups = associate(cands, [c.camera for c in cams])
    members = sorted(tuple(g.members) for g in groups)
    assert members == [(0, 1, 0), (1, 0, 1)]


def test_association_notes_a_view_showing_someone_else():
    cams = ring(3)
    pa, sa = project_all(cams, truth(), 0.5)
    pb, _ = project_all(cams, truth() + np.array([1.5, 0.8, 0.0]), 0.5)
    cands = [[Track2D(pa[0], sa[0])], [Track2D(pa[1], sa[1])], [Track2D(pb[2], sa[2])]]
    (g,) = associate(cands, [c.camera for c in cams])
    assert len(g.notes) == 1 and g.notes[0].startswith("view 2 ")


# ----------------------------------------------------------------------------- model
def _batch(B=2, Tw=9, V=4, seed=0):
    rng = np.random.default_rng(seed)
    from video3d.multiview.synth import make_sample, stack_samples

    X = walking_clip(Tw, fps=50)
    return learned.to_tensors(stack_samples([make_sample(rng, X, v, max_views=V) for v in (V, 2)][:B]))


def _random_head_model(seed: int = 0) -> MultiViewRelational:
    torch.manual_seed(seed)
    model = MultiViewRelational(num_frames=9, dim=32, depth=1).eval()
    for p in model.head.parameters():  # non-zero head so the tests see the network
        torch.nn.init.normal_(p, std=0.1)
    return model


def test_model_shapes_and_view_permutation_invariance():
    model = _random_head_model()
    b = _batch()
    with torch.no_grad():
        out = learned.predict(model, b)
        assert out.shape == (2, 9, 17, 3) and torch.isfinite(out).all()
        perm = torch.tensor([2, 0, 3, 1])
        pb = dict(b)
        for k in ("normalized", "scores", "rotations", "centers", "view_mask"):
            pb[k] = b[k][:, perm]
        torch.testing.assert_close(learned.predict(model, pb), out, atol=1e-5, rtol=1e-5)
        # A padded (absent) view changes nothing.
        pad = {k: v.clone() for k, v in b.items()}
        pad["normalized"][1, 2:] = torch.randn_like(pad["normalized"][1, 2:])
        pad["scores"][1, 2:] = torch.rand_like(pad["scores"][1, 2:])
        torch.testing.assert_close(learned.predict(model, pad)[1], out[1], atol=1e-5, rtol=1e-5)


def test_pool_draws_clips_by_the_given_weights():
    from types import SimpleNamespace

    walk = walking_clip(30, fps=50)
    clips = [SimpleNamespace(num_frames=30, landmarks_coco=walk),
             SimpleNamespace(num_frames=30, landmarks_coco=walk + np.array([50.0, 0.0, 0.0]))]
    pool = learned.make_pool(np.random.default_rng(0), clips, 6, 9, view_counts=(2, 3), clip_weights=np.array([0.0, 1.0]))
    assert pool["target"].shape == (6, 9, 17, 3) and set(pool["view_mask"].sum(1)) <= {2, 3}
    assert (pool["target"][..., 0] > 40).all()  # only the second clip (shifted 50 m along x) was drawn


def _pair_angles(rig, n: int = 200) -> np.ndarray:
    """Azimuth separation (degrees) of the two cameras of ``n`` random 2-camera rigs."""
    from video3d.multiview.synth import random_rig

    rng = np.random.default_rng(3)
    out = []
    for _ in range(n):
        a, b = (c.center[:2] for c in random_rig(rng, np.zeros(3), 2, rig))
        out.append(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))
    return np.array(out)


def test_rig_subsets_give_narrow_camera_pairs():
    from video3d.multiview.synth import RigConfig

    spread = _pair_angles(RigConfig())
    subset = _pair_angles(RigConfig(subset_prob=1.0))
    assert np.median(spread) > 150 and (spread < 90).mean() < 0.05  # evenly spread pairs face each other
    assert (subset < 90).mean() > 0.3 and np.median(subset) < 120  # pairs out of larger rigs often don't


def test_calibration_error_perturbs_only_what_dlt_and_the_model_see():
    from video3d.multiview.synth import RigConfig, make_sample, perturb_calibration, random_rig

    rng = np.random.default_rng(0)
    cam = random_rig(rng, np.zeros(3), 1)[0]
    same = perturb_calibration(rng, cam, (0.0, 0.0, 0.0))
    np.testing.assert_allclose(same.R, cam.R, atol=1e-12)
    np.testing.assert_allclose(same.t, cam.t, atol=1e-12)
    moved = [perturb_calibration(rng, cam, (0.1, 0.005, 0.003)) for _ in range(200)]
    for m in moved[:5]:
        np.testing.assert_allclose(m.R @ m.R.T, np.eye(3), atol=1e-9)
    angles = [np.degrees(np.arccos(np.clip((np.trace(m.R @ cam.R.T) - 1) / 2, -1, 1))) for m in moved]
    assert 0.05 < np.median(angles) < 0.2
    assert 0.002 < np.median([np.linalg.norm(m.center - cam.center) for m in moved]) < 0.015
    # Same seed: the filmed 2D and the target are identical; only the cameras (so the DLT) differ.
    X = walking_clip(9, fps=50)
    exact = make_sample(np.random.default_rng(5), X, 3, rig=RigConfig())
    noisy = make_sample(np.random.default_rng(5), X, 3, rig=RigConfig(calibration_error=(0.3, 0.02, 0.01)))
    np.testing.assert_array_equal(exact.target, noisy.target)
    np.testing.assert_array_equal(exact.scores, noisy.scores)
    assert not np.allclose(exact.rotations, noisy.rotations)
    err = np.nanmean(np.linalg.norm(noisy.dlt - noisy.target, axis=-1))
    assert err > np.nanmean(np.linalg.norm(exact.dlt - exact.target, axis=-1))


def test_scaling_the_world_leaves_every_image_unchanged():
    cam = ring(1)[0].camera
    X = walking_clip(5, fps=50)
    origin, f = np.array([0.2, 0.5, 0.9]), 1.37
    c2 = origin + (cam.center - origin) * f
    scaled = CalibratedCamera(R=cam.R, t=-cam.R @ c2, fx=cam.fx, fy=cam.fy, cx=cam.cx, cy=cam.cy,
                              width=cam.width, height=cam.height, k=cam.k, p=cam.p)
    np.testing.assert_allclose(scaled.project(origin + (X - origin) * f), cam.project(X), atol=1e-6)
    b = _batch(B=1)
    o = torch.tensor([[0.2, 0.5, 0.9]])
    s = learned.scale_scene(b, o, torch.tensor([f]))
    torch.testing.assert_close(s["centers"][0, 0], o[0] + (b["centers"][0, 0] - o[0]) * f)
    torch.testing.assert_close(s["normalized"], b["normalized"])


def test_subject_size_follows_the_body_scale_of_synthetic_samples():
    from video3d.multiview.features import subject_size
    from video3d.multiview.synth import RigConfig, make_sample

    X = walking_clip(20, fps=50)
    base = make_sample(np.random.default_rng(1), X, 3, noise=False)
    small = make_sample(np.random.default_rng(1), X, 3, noise=False, rig=RigConfig(body_scale=(0.7, 0.7)))
    lengths = lambda t: np.linalg.norm(t[:, 12] - t[:, 11], axis=-1)  # noqa: E731 - left upper arm
    np.testing.assert_allclose(lengths(small.target), 0.7 * lengths(base.target), rtol=1e-5)
    sizes = subject_size(torch.from_numpy(np.stack([base.target, small.target])))
    assert sizes[1] / sizes[0] == pytest.approx(0.7, rel=1e-4)
    assert subject_size(torch.full((1, 4, 17, 3), float("nan")))[0] == 1.0  # nothing seen: training size


def test_sequence_prediction_windows_overlap_and_size_normalisation():
    model = _random_head_model()
    b = _batch(B=1, Tw=13)
    with torch.no_grad():
        # Window = T: the same as one model call.
        first = {k: (v.narrow(learned.TIME_AXIS[k], 0, 9) if k in learned.TIME_AXIS else v) for k, v in b.items()}
        torch.testing.assert_close(learned.predict_sequence(model, first), learned.predict(model, first))
        seq = learned.predict_sequence(model, b, stride=1)
        assert seq.shape == (1, 13, 17, 3) and torch.isfinite(seq).all()
        # Frame 0 is only in the first window, frame 12 only in the last; frame 6 is the mean of 5 windows.
        torch.testing.assert_close(seq[:, 0], learned.predict(model, first)[:, 0])
        wins = [learned.predict(model, {k: (v.narrow(learned.TIME_AXIS[k], s, 9) if k in learned.TIME_AXIS else v)
                                        for k, v in b.items()})[:, 6 - s] for s in range(0, 5)]
        torch.testing.assert_close(seq[:, 6], torch.stack(wins).mean(0))
        # Size normalisation: the same scene at 0.7 x the size gives the same pose at 0.7 x the size.
        o = torch.tensor([[0.1, 0.6, 0.9]])
        small = learned.scale_scene(b, o, torch.tensor([0.7]))
        a = learned.predict_sequence(model, b, normalize_size=True)
        c = learned.predict_sequence(model, small, normalize_size=True)
        torch.testing.assert_close(c, o[:, None, None] + (a - o[:, None, None]) * 0.7, atol=1e-4, rtol=1e-4)


def test_yaw_averaging_is_exact_for_a_model_that_ignores_yaw():
    model = MultiViewRelational(num_frames=9, dim=32, depth=1).eval()  # zero head: returns the DLT
    b = _batch()
    with torch.no_grad():
        torch.testing.assert_close(learned.predict(model, b, yaws=4), learned.predict(model, b), atol=1e-5, rtol=1e-5)


def test_zero_head_model_returns_dlt_and_weights_round_trip(tmp_path):
    model = MultiViewRelational(num_frames=9, dim=32, depth=1).eval()
    b = _batch()
    with torch.no_grad():
        out = learned.predict(model, b)
    dlt = b["dlt"]
    ok = torch.isfinite(dlt)
    torch.testing.assert_close(out[ok], dlt[ok], atol=1e-5, rtol=1e-5)
    learned.save_model(model, tmp_path / "mv", {"name": "mv", "config": {"num_frames": 9, "dim": 32, "depth": 1}})
    loaded, card = learned.load_model(tmp_path / "mv.safetensors")
    assert card["arch"] == "mvrt" and len(card["sha256"]) == 64
    (tmp_path / "mv.safetensors").write_bytes(b"broken")
    with pytest.raises(UserError, match="sha256"):
        learned.load_model(tmp_path / "mv.safetensors")


def test_viewer_turns_a_y_up_calibration_world_upright(tmp_path):
    from video3d.viewer import load_result
    from video3d.viewer.result import upright_rotation

    z_up = truth()
    assert np.allclose(upright_rotation(z_up), np.eye(3))
    to_y_up = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # (x, y, z) -> (x, z, -y)
    y_up = z_up @ to_y_up.T
    up = upright_rotation(y_up)
    np.testing.assert_allclose(up @ up.T, np.eye(3), atol=1e-12)
    assert np.isclose(np.linalg.det(up), 1.0)
    head_minus_ankle = (y_up[:, 10] - y_up[:, 3]) @ up.T
    assert (head_minus_ankle[:, 2] > 1.0).all()  # standing again
    # A multi-view result in that frame: poses and camera centres turned alike.
    cams = ring()
    R = np.stack([c.camera.R @ to_y_up.T for c in cams])  # the same cameras expressed in the y-up world
    t = np.stack([c.camera.t for c in cams])
    np.savez(tmp_path / "keypoints.npz", keypoints_3d_world=y_up.astype(np.float32), valid=np.ones(T, bool),
             fps=np.float64(FPS), camera_R=R, camera_t=t, views=np.array(["cam1", "cam2", "cam3"]))
    shown = load_result(tmp_path)
    np.testing.assert_allclose(shown.people[0].poses @ up, y_up, atol=1e-5)
    for k, (c, named) in enumerate(zip(shown.cameras, cams)):
        np.testing.assert_allclose(up.T @ c.center, to_y_up @ named.camera.center, atol=1e-9)
        # Each turned camera sees the turned pose exactly as the original camera saw the original.
        seen = (shown.people[0].poses[5] - c.center) @ c.R.T
        np.testing.assert_allclose(seen, (y_up[5] - to_y_up @ named.camera.center) @ R[k].T, atol=1e-5)


# ----------------------------------------------------------------------------- the command
def test_multiview_command_on_synthetic_views(scene, tmp_path):
    folder, cams, videos = scene
    res = run_multiview(videos, folder / "Calib.toml", tmp_path / "out", "walk", MultiviewOptions(render=True),
                        detect=stub_detect(cams))
    z = np.load(res.out_dir / "keypoints.npz")
    assert z["keypoints_3d_world"].shape == (T, 17, 3) and z["keypoints_2d"].shape == (3, T, 17, 2)
    assert z["reprojection_error"].shape == (3, T, 17) and list(z["views"]) == ["cam1", "cam2", "cam3"]
    assert str(z["method"]) == "dlt" and float(z["fps"]) == FPS and z["valid"].all()
    err = np.linalg.norm(z["keypoints_3d_world"] - truth(), axis=-1)
    assert err.mean() < 0.01, err.mean()
    assert np.nanmean(z["reprojection_error"]) < 1.5
    names = {p.name for p in res.out_dir.iterdir()}
    assert names == {"keypoints.npz", "keypoints.json", "keypoints_3d.csv", "skeleton.trc", "skeleton.bvh",
                     "multiview.mp4", "viewer.html"}
    assert json.loads((res.out_dir / "keypoints.json").read_text())["views"] == ["cam1", "cam2", "cam3"]
    # The interactive viewer shows the cameras where the calibration puts them and plays multiview.mp4.
    from video3d.viewer import load_result

    shown = load_result(res.out_dir)
    assert [c.name for c in shown.cameras] == ["cam1", "cam2", "cam3"]
    for c, named in zip(shown.cameras, cams):
        np.testing.assert_allclose(c.center, named.camera.center, atol=1e-9)
    np.testing.assert_allclose(shown.people[0].poses, z["keypoints_3d_world"], atol=1e-6)
    page = (res.out_dir / "viewer.html").read_text()
    assert '"video":"multiview.mp4"' in page and str(tmp_path) not in page


def test_multiview_two_views_by_order_learned_method_and_person_all(scene, tmp_path):
    folder, cams, videos = scene
    torch.manual_seed(0)
    model = MultiViewRelational(num_frames=9, dim=32, depth=1)
    learned.save_model(model, tmp_path / "tiny", {"name": "tiny", "config": {"num_frames": 9, "dim": 32, "depth": 1}})
    # Two of the three views, renamed so names do not match: 2 videos vs 3 cameras cannot go by order.
    renamed = [videos[0].rename(folder / "left.mp4"), videos[1].rename(folder / "right.mp4")]
    with pytest.raises(UserError, match="cannot match 2 videos to the 3 cameras"):
        run_multiview(renamed, folder / "Calib.toml", tmp_path / "out", "x", MultiviewOptions(render=False),
                      detect=stub_detect(cams))
    assert not (tmp_path / "out" / "x").exists()
    two = [renamed[0].rename(folder / "take1_cam1.mp4"), renamed[1].rename(folder / "take1_cam2.mp4")]
    opts = MultiviewOptions(method="mvrt", weights=str(tmp_path / "tiny.safetensors"), person="all", render=False)
    res = run_multiview(two, folder / "Calib.toml", tmp_path / "out", "two", opts, detect=stub_detect(cams))
    z = np.load(res.out_dir / "keypoints.npz")
    assert str(z["method"]) == "tiny" and len(str(z["weights_sha256"])) == 64
    assert np.linalg.norm(z["keypoints_3d_world"] - truth(), axis=-1).mean() < 0.02  # zero head = DLT
    people = np.load(res.out_dir / "people.npz")
    assert people["keypoints_3d_world"].shape == (1, T, 17, 3)
    assert any("--person all" in n for n in res.notes)


def test_view_following_someone_else_is_detected_again(scene, tmp_path):
    folder, cams, videos = scene
    calls = []
    res = run_multiview(videos, folder / "Calib.toml", tmp_path / "out", "other", MultiviewOptions(render=False),
                        detect=stub_detect(cams, other={"cam2"}, calls=calls))
    assert [c for c in calls if c[0] == "cam2"][1][1].count(",") == 1  # asked again for a point
    assert any("view cam2 disagrees" in n for n in res.notes)
    z = np.load(res.out_dir / "keypoints.npz")
    assert np.linalg.norm(z["keypoints_3d_world"] - truth(), axis=-1).mean() < 0.01
    assert np.nanmean(z["reprojection_error"][1]) < 1.5  # the recovered view fits again


def test_offsets_shift_each_view(scene, tmp_path):
    folder, cams, videos = scene
    res = run_multiview(videos, folder / "Calib.toml", tmp_path / "out", "off",
                        MultiviewOptions(render=False, offsets=(2, 2, 2)), detect=stub_detect(cams))
    assert res.num_frames == T - 2
    with pytest.raises(UserError, match="--offset was given 2 times for 3 videos"):
        run_multiview(videos, folder / "Calib.toml", tmp_path / "out", "off2",
                      MultiviewOptions(render=False, offsets=(1, 2)), detect=stub_detect(cams))


@pytest.mark.parametrize("case", ["malformed_calib", "missing_calib", "size", "fps", "no_person", "one_video"])
def test_user_errors_are_one_line_without_output(scene, tmp_path, case):
    folder, cams, videos = scene
    calib = folder / "Calib.toml"
    detect = stub_detect(cams)
    expect = {"malformed_calib": "camera \\[cam2\\]", "missing_calib": "cannot read calibration",
              "size": "is 320x240 but camera cam2", "fps": "different frame rates",
              "no_person": "view cam3 .*no person detected", "one_video": "at least 2 videos"}[case]
    if case == "malformed_calib":
        text = calib.read_text()
        cut = text.index("[cam2]")
        calib.write_text(text[:cut] + text[cut:].replace("size =", "sizes =", 1))
    elif case == "missing_calib":
        calib = folder / "nope.toml"
    elif case == "size":
        bad = ring()
        bad[1].camera.width, bad[1].camera.height = 640, 480
        write_toml(calib, bad)
    elif case == "fps":
        blank_video(videos[2], frames=T, size=SIZE, fps=30)
    elif case == "no_person":
        detect = stub_detect(cams, empty={"cam3"})
    elif case == "one_video":
        videos = videos[:1]
    with pytest.raises(UserError, match=expect) as e:
        run_multiview(videos, calib, tmp_path / "out", "r", MultiviewOptions(render=False), detect=detect)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "out" / "r").exists()
    assert not any(p.name.startswith(".r") for p in (tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_cli_error_is_one_line(scene, tmp_path, capsys):
    from video3d.cli import main

    folder, _, videos = scene
    (folder / "bad.toml").write_text("[cam1\nname = ")
    rc = main(["multiview", "--calib", str(folder / "bad.toml"), *map(str, videos), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.startswith("error:") and "not valid TOML" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o" / "multiview").exists()


# ----------------------------------------------------------------------------- real clip
@pytest.mark.slow
@pytest.mark.parametrize("calib", ["Calib.toml", "Calib.qca.txt"])
def test_real_multicam_clip(tmp_path, calib):
    if not (SHARED_MC / "videos" / "cam01.mp4").is_file():
        pytest.skip(f"multi-view clip not available: {SHARED_MC} (../shared/media is absent on this machine)")
    videos = [SHARED_MC / "videos" / f"cam0{k}.mp4" for k in (1, 2, 3)]
    res = run_multiview(videos, SHARED_MC / "calibration" / calib, tmp_path, "real", MultiviewOptions(render=False))
    z = np.load(res.out_dir / "keypoints.npz")
    assert z["valid"].mean() > 0.8
    assert np.nanmedian(z["reprojection_error"]) < 25.0  # px at 1088x1920
    pelvis = z["keypoints_3d_world"][z["valid"], 0]
    assert np.all(np.abs(pelvis[:, :2]) < 4.0) and np.all((pelvis[:, 2] > 0.5) & (pelvis[:, 2] < 1.4))
    # The viewer page shows the three calibrated cameras and the person upright (this lab frame is z-up).
    from video3d.viewer import load_result
    from video3d.viewer.result import upright_rotation

    assert (res.out_dir / "viewer.html").is_file()
    assert np.allclose(upright_rotation(z["keypoints_3d_world"]), np.eye(3))
    assert [c.name for c in load_result(res.out_dir).cameras] == ["cam01", "cam02", "cam03"]


@pytest.mark.slow
def test_real_multicam_clip_everyone(tmp_path):
    """--person all: the multi-person 2D in every view gives both people of the shared clip."""
    pytest.importorskip("trackers")
    pytest.importorskip("ai_edge_litert")
    if not (SHARED_MC / "videos" / "cam01.mp4").is_file():
        pytest.skip(f"multi-view clip not available: {SHARED_MC} (../shared/media is absent on this machine)")
    videos = [SHARED_MC / "videos" / f"cam0{k}.mp4" for k in (1, 2, 3, 4)]
    res = run_multiview(videos, SHARED_MC / "calibration" / "Calib.toml", tmp_path, "all",
                        MultiviewOptions(render=False, person="all"))
    with np.load(res.out_dir / "people.npz") as z:
        assert z["keypoints_3d_world"].shape[:2] == (2, 100)
        assert (z["valid"].mean(axis=1) > 0.8).all()
        pelvis = z["keypoints_3d_world"][:, :, 0]
        both = z["valid"].all(axis=0)
        gap = np.linalg.norm(pelvis[0, both, :2] - pelvis[1, both, :2], axis=-1)
        assert np.median(gap) > 0.4  # two different people, not one seen twice


def test_real_detector_on_empty_views_is_a_one_line_error(scene, tmp_path):
    folder, _, videos = scene
    with pytest.raises(UserError, match=r"^view cam1 \(cam1.mp4\): no person detected in any frame$"):
        run_multiview(videos, folder / "Calib.toml", tmp_path / "out", "empty", MultiviewOptions(render=False))
    assert not (tmp_path / "out" / "empty").exists()


def test_shipped_weights_load_with_a_card():
    from video3d.lift.weights import weights_dir

    path = weights_dir() / f"{learned.DEFAULT_NAME}.safetensors"
    if not path.is_file():
        pytest.skip("multi-view weights not shipped in this checkout")
    model, card = learned.load_model()
    assert path.stat().st_size < 5 * 2 ** 20
    # Trained with the lifters' split; the card's test table meets the issue's target (>= 20 % at 2-4 cameras).
    assert card["data"]["split"]["file"] == "splits.json"
    # Both rig protocols: evenly spread rigs with exact calibration, and subsets of larger rigs with
    # calibration error.
    tables = card["metrics"]["synthetic_test"]
    assert set(tables) == {"spread", "subset"}
    for test in tables.values():
        assert set(test) == {"2", "3", "4", "8"}
        assert all(test[v]["improvement_pct"] >= 20 for v in ("2", "3", "4"))
    b = _batch()
    with torch.no_grad():
        out = learned.predict(model, b)
    assert out.shape == (2, 9, 17, 3) and torch.isfinite(out).all()


def test_shipped_weights_beat_dlt_on_noisy_synthetic_views():
    from video3d.lift.weights import weights_dir
    from types import SimpleNamespace

    if not (weights_dir() / f"{learned.DEFAULT_NAME}.safetensors").is_file():
        pytest.skip("multi-view weights not shipped in this checkout")
    torch.manual_seed(0)
    model, _ = learned.load_model()
    clip = SimpleNamespace(num_frames=120, landmarks_coco=walking_clip(120, fps=50))
    pool = learned.make_pool(np.random.default_rng(7), [clip], 24, 9, view_counts=(3,))
    m = learned.evaluate(model, pool)
    assert m["model_mm"] < 0.9 * m["dlt_mm"], m
