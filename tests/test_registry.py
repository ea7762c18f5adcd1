"""The lifter registry: one spec per lifter, and `--lifter` vs the `--weights` card."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from video3d.errors import UserError, WeightsError
from video3d.lift.lifter import Lifter
from video3d.lift.weights import save_weights
from video3d.models import registry
from video3d.models.registry import LIFTERS, LifterSpec, get_lifter


class LinearLifter(torch.nn.Module):
    """A third lifter for the test: per-frame linear map over a fixed window.

    (B, T, 17, 2) -> (B, T, 17, 3) with T == ``frames``.
    """

    def __init__(self, frames: int = 5, width: int = 8):
        super().__init__()
        self.frames = frames
        self.net = torch.nn.Sequential(torch.nn.Linear(2, width), torch.nn.Linear(width, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-3] == self.frames, "the Lifter must cut windows of the spec's length"
        return self.net(x)


@pytest.fixture
def dummy_spec(monkeypatch):
    """Register a third lifter for one test (removed afterwards)."""
    monkeypatch.setattr(registry, "LIFTERS", dict(LIFTERS))
    return registry.register(LifterSpec(
        name="linear", model=LinearLifter, presets={"tiny": {"frames": 5, "width": 8}, "wide": {"frames": 7, "width": 32}},
        default_preset="tiny", default_weights="linear-none", summary="linear: a test lifter",
        loss=lambda p, t: ((p - t) ** 2).mean(), loss_label="MSE",
        training={"preset": "tiny", "optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0, "lr_decay": 1.0,
                  "batch_size": 4},
        window_arg="frames"))


def test_shipped_specs_are_complete():
    assert list(LIFTERS)[:2] == ["ktpformer", "ampose"]
    assert registry.DEFAULT_LIFTER in LIFTERS
    for name, spec in LIFTERS.items():
        assert spec.name == name and spec.default_preset in spec.presets
        assert {"preset", "optimizer", "lr", "weight_decay", "lr_decay", "batch_size"} <= set(spec.training)
        assert spec.training["preset"] in spec.presets
    assert get_lifter("ktpformer").window() == 243 and get_lifter("ktpformer").window({"num_frames": 27}) == 27
    assert get_lifter("ampose").window({"embed_dim": 32}) == 1
    assert get_lifter("KTPFormer") is LIFTERS["ktpformer"]


def test_unknown_names_have_one_message():
    with pytest.raises(UserError, match=r"unknown lifter 'nope'; choose one of ktpformer, ampose"):
        get_lifter("nope")
    with pytest.raises(UserError, match=r"unknown preset 'huge' for ampose; choose one of paper, small"):
        get_lifter("ampose").config("huge")


def test_registry_does_not_import_torch_or_training():
    code = ("import sys, video3d.models.registry, video3d.cli; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('video3d.train')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_third_lifter_end_to_end_through_the_lifter_api(dummy_spec, tmp_path):
    # build from the registry, save like shipped weights, load through Lifter.load and lift pixels
    model = registry.build_model("linear", "wide")
    assert isinstance(model, LinearLifter) and model.frames == 7
    card = {"name": "linear-test", "arch": "linear", "preset": "wide", "config": dummy_spec.config("wide"),
            "training": {}, "metrics": {}}
    path = tmp_path / "linear-test.safetensors"
    save_weights(model, path, card)

    lifter = Lifter.load(weights=path, device="cpu")  # the card decides
    assert lifter.name == "linear" and lifter.window == 7 and lifter.spec is dummy_spec
    rng = np.random.default_rng(0)
    kp = rng.uniform(100, 500, size=(20, 17, 2)).astype(np.float32)
    valid = np.ones(20, bool)
    valid[[3, 4]] = False
    pose = lifter.lift(kp, (640, 480), valid=valid, flip=False)
    assert pose.shape == (20, 17, 3)
    assert np.isnan(pose[[3, 4]]).all() and np.isfinite(pose[valid]).all()
    assert np.allclose(pose[valid][:, 0], 0.0)  # root-relative

    same = Lifter.load("linear", path, "cpu")  # explicit and agreeing
    assert np.allclose(same.lift(kp, (640, 480), valid=valid, flip=False), pose, equal_nan=True)
    with pytest.raises(UserError, match="--lifter ktpformer disagrees with --weights linear-test.safetensors"):
        Lifter.load("ktpformer", path, "cpu")
    with pytest.raises(WeightsError, match="weights file not found: .*linear-none.safetensors"):
        Lifter.load("linear", None, "cpu")  # its default weights are not shipped


def test_lifter_and_weights_card_never_silently_disagree(tiny_weights):
    assert Lifter.load(None, tiny_weights["ampose"], "cpu").name == "ampose"  # card decides
    assert Lifter.load("ampose", tiny_weights["ampose"], "cpu").name == "ampose"
    with pytest.raises(UserError, match="--lifter ktpformer disagrees with --weights ampose-test.safetensors, "
                                        "which holds a ampose model"):
        Lifter.load("ktpformer", tiny_weights["ampose"], "cpu")


def test_cli_lifter_weights_mismatch_is_one_line(tiny_weights, tmp_path, capsys):
    from video3d.cli import main

    path = tmp_path / "in.npz"
    np.savez(path, keypoints=np.full((4, 17, 2), 100.0), image_size=[640, 480])
    code = main(["lift", str(path), "--lifter", "ktpformer", "--weights", str(tiny_weights["ampose"]),
                 "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --lifter ktpformer disagrees"), err
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_card_with_unknown_arch_is_a_weights_error(tiny_weights, tmp_path):
    import json
    import shutil

    path = tmp_path / "odd.safetensors"
    shutil.copy(tiny_weights["ampose"], path)
    card = json.loads(tiny_weights["ampose"].with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**card, "arch": "mystery"}))
    with pytest.raises(WeightsError, match="unknown lifter 'mystery'"):
        Lifter.load(None, path, "cpu")


def test_cli_choices_come_from_the_registry():
    from video3d import cli
    from video3d.filters import SMOOTHING_METHODS

    assert [e.value for e in cli.LifterName] == list(LIFTERS)
    assert set(LIFTERS["ktpformer"].presets) | set(LIFTERS["ampose"].presets) == {e.value for e in cli.PresetName}
    assert cli.SMOOTHING_CHOICES == SMOOTHING_METHODS
