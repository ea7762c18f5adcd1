"""`Lifter` inference path and the `video3d lift` file contract."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from video3d import skeleton
from video3d.lift.lifter import Lifter, hold_missing
from video3d.lift.weights import file_sha256, load_weights

@pytest.fixture
def run_cli(capsys):
    """Run the CLI in-process (the subprocess path is covered in test_robustness.py)."""
    from video3d.cli import main

    def run(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out.out, stderr=out.err)
    return run


class FrameLocal(torch.nn.Module):
    """Stub seq2seq lifter whose output frame t depends only on input frame t."""

    def forward(self, x):  # (B, T, 17, 2) or (B, 17, 2)
        return torch.cat([x, (x[..., :1] * 3 + x[..., 1:]).clone()], dim=-1)


@pytest.mark.parametrize("length", [1, 50, 243, 244, 1000])
def test_lift_is_frame_aligned_for_any_length(length):
    """A synthetic motion whose 3D is known comes back frame-aligned."""
    rng = np.random.default_rng(length)
    t = np.linspace(0, 4 * np.pi, length)
    kp = 500 + 200 * np.stack([np.sin(t + j) for j in range(34)], 1).reshape(length, 17, 2) + rng.normal(size=(length, 17, 2))
    lifter = Lifter(FrameLocal(), {"arch": "ktpformer", "config": {"num_frames": 243}, "sha256": "x"}, torch.device("cpu"))
    out = lifter.lift(kp.astype(np.float32), (1000, 1000), flip=False)
    from video3d.keypoints import normalize_screen
    x = normalize_screen(kp, 1000, 1000)
    truth = np.concatenate([x, x[..., :1] * 3 + x[..., 1:]], -1)
    truth = truth - truth[:, :1]
    np.testing.assert_allclose(out, truth, atol=1e-4)


def test_flip_averaging_is_exactly_mirror_symmetric(tiny_weights):
    model, card = load_weights(tiny_weights["ktpformer"])
    lifter = Lifter(model, card, torch.device("cpu"))
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, size=(40, 17, 2)).astype(np.float32)
    a = lifter.predict_normalized(x, flip=True)
    b = lifter.predict_normalized(skeleton.mirror(x), flip=True)
    np.testing.assert_allclose(skeleton.mirror(a), b, atol=1e-5)
    assert not np.allclose(lifter.predict_normalized(x, flip=False), a)  # flip does something


def test_missing_frames_held_and_returned_as_nan(tiny_weights):
    lifter = Lifter.load("ampose", tiny_weights["ampose"], "cpu")
    kp = np.random.default_rng(1).uniform(100, 500, (10, 17, 2)).astype(np.float32)
    valid = np.ones(10, bool)
    valid[[0, 1, 7]] = False
    kp[~valid] = np.nan
    out = lifter.lift(kp, (640, 480), valid=valid)
    assert np.isnan(out[~valid]).all() and np.isfinite(out[valid]).all()
    np.testing.assert_allclose(out[valid][:, 0], 0.0, atol=1e-6)  # root-relative
    filled = hold_missing(kp, valid)
    np.testing.assert_array_equal(filled[0], kp[2])


def test_weights_card_sha_checked(tiny_weights, tmp_path):
    import shutil
    from video3d.errors import WeightsError
    src = tiny_weights["ampose"]
    dst = tmp_path / src.name
    shutil.copy(src, dst)
    shutil.copy(src.with_suffix(".json"), dst.with_suffix(".json"))
    load_weights(dst)
    with open(dst, "r+b") as f:
        f.seek(-8, 2)
        f.write(b"\x00" * 8)
    with pytest.raises(WeightsError, match="corrupt"):
        load_weights(dst)


def make_input(path, fmt="h36m", n=30, **extra):
    j = {"h36m": 17, "coco": 17, "blazepose": 33}[fmt]
    kp = np.random.default_rng(0).uniform(200, 600, (n, j, 2)).astype(np.float32)
    np.savez(path, **{"keypoints": kp, "image_size": np.array([1280, 720]), "fps": 30.0, **extra})
    return kp


@pytest.mark.parametrize("fmt", ["h36m", "coco", "blazepose"])
def test_lift_cli_contract(run_cli, tiny_weights, tmp_path, fmt):
    make_input(tmp_path / "walk.npz", fmt, scores=np.ones((30, 33 if fmt == "blazepose" else 17), np.float32))
    r = run_cli("lift", tmp_path / "walk.npz", "--format", fmt, "--weights", tiny_weights["ktpformer"], "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "o" / "walk.npz") as z:
        assert z["keypoints_3d"].shape == (30, 17, 3) and z["keypoints_3d"].dtype == np.float32
        np.testing.assert_allclose(z["keypoints_3d"][:, 0], 0.0, atol=1e-6)
        assert str(z["lifter"]) == "ktpformer"
        assert str(z["weights_sha256"]) == file_sha256(tiny_weights["ktpformer"])


def test_lift_cli_bones_consistent_by_default(run_cli, tiny_weights, tmp_path):
    make_input(tmp_path / "walk.npz")

    def bone_std(out: Path) -> float:
        with np.load(out / "walk.npz") as z:
            pose = z["keypoints_3d"]
        parent, child = np.array(skeleton.BONES).T
        lengths = np.linalg.norm(pose[:, child] - pose[:, parent], axis=-1)
        return float(lengths.std(axis=0).max())
    for mode in ("consistent", "raw"):
        r = run_cli("lift", tmp_path / "walk.npz", "--weights", tiny_weights["ampose"], "--bones", mode,
                    "--out", tmp_path / mode)
        assert r.returncode == 0, r.stderr
    assert bone_std(tmp_path / "consistent") < 1e-5  # one length per bone over the clip, as `run` gives
    assert bone_std(tmp_path / "raw") > 1e-3  # random 2D: raw lifted bones vary


def test_lift_cli_folder_and_ampose(run_cli, tiny_weights, tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("a", "b"):
        make_input(tmp_path / "in" / f"{name}.npz", n=5)
    r = run_cli("lift", tmp_path / "in", "--lifter", "ampose", "--weights", tiny_weights["ampose"], "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.npz", "b.npz"]


@pytest.mark.parametrize("case,message", [
    ("missing_key", "missing key 'image_size'"),
    ("wrong_shape", "must have shape (T, 17, 2)"),
    ("nan", "NaN"),
    ("not_npz", "not a readable .npz"),
    ("missing_file", "input not found"),
    ("bad_scores", "'scores' must have shape"),
    ("missing_weights", "weights file not found"),
])
def test_lift_cli_errors_are_one_line_and_write_nothing(run_cli, tiny_weights, tmp_path, case, message):
    path = tmp_path / "in.npz"
    args = ["--weights", tiny_weights["ktpformer"]]
    if case == "missing_key":
        np.savez(path, keypoints=np.zeros((5, 17, 2)))
    elif case == "wrong_shape":
        np.savez(path, keypoints=np.zeros((5, 16, 2)), image_size=[640, 480])
    elif case == "nan":
        kp = np.zeros((5, 17, 2))
        kp[3, 2] = np.nan
        np.savez(path, keypoints=kp, image_size=[640, 480])
    elif case == "not_npz":
        path.write_text("hello")
    elif case == "missing_file":
        path = tmp_path / "nope.npz"
    elif case == "bad_scores":
        make_input(path, scores=np.ones((4, 17)))
    elif case == "missing_weights":
        make_input(path)
        args = ["--weights", tmp_path / "absent.safetensors"]
    r = run_cli("lift", path, *args, "--out", tmp_path / "o")
    assert r.returncode == 1
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


@pytest.mark.parametrize("args", [["--format", "openpose"], ["--lifter", "nope"]])
def test_lift_cli_bad_choice_is_a_usage_error(run_cli, tiny_weights, tmp_path, args):
    """A value outside the choices (--format, --lifter) is a usage error: exit 2, the choices named."""
    path = tmp_path / "in.npz"
    make_input(path)
    r = run_cli("lift", path, "--weights", tiny_weights["ktpformer"], *args, "--out", tmp_path / "o")
    assert r.returncode == 2, r.stderr
    assert "is not one of" in r.stderr and "Traceback" not in r.stderr
    assert ("'coco'" in r.stderr) if args[0] == "--format" else ("'ampose'" in r.stderr)
    assert not (tmp_path / "o").exists()


def test_nearest_valid_index_one_tie_rule():
    """One helper, one rule (earlier frame on ties), used by the lifter's hold and the BVH exporter."""
    from video3d.export.bvh import fill_invalid_frames
    from video3d.nearest import nearest_valid_index

    valid = np.array([False, True, False, False, True, False, False, False, True, False])
    assert nearest_valid_index(valid).tolist() == [1, 1, 1, 4, 4, 4, 4, 8, 8, 8]
    with pytest.raises(ValueError):
        nearest_valid_index(np.zeros(3, bool))
    kp = np.arange(10, dtype=float)[:, None, None] * np.ones((1, 17, 2))
    held = hold_missing(kp, valid)
    assert held[:, 0, 0].tolist() == [1, 1, 1, 4, 4, 4, 4, 8, 8, 8]
    joints = kp[..., :1].repeat(3, axis=-1)
    joints[~valid] = np.nan
    filled, n = fill_invalid_frames(joints)
    assert n == 7 and filled[:, 0, 0].tolist() == held[:, 0, 0].tolist()
