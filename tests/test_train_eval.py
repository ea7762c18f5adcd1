"""`video3d train` and `video3d eval` on the shared mocap (skipped when it is absent)."""
import json

import pytest

from video3d.cli import main

#: Trains and evaluates on the mocap data.
pytestmark = pytest.mark.slow


def test_train_a_few_steps_then_eval(tmp_path, mocap_root, capsys):
    out = tmp_path / "run"
    code = main(["train", "--arch", "ampose", "--preset", "small", "--mocap", str(mocap_root), "--epochs", "2",
                 "--steps-per-epoch", "2", "--batch-size", "16", "--val-cameras", "1", "--val-max-frames", "50",
                 "--out", str(out), "--name", "amp", "--sources", "cmu"])
    assert code == 0, capsys.readouterr().err
    card = json.loads((out / "amp.json").read_text())
    assert set(card["training"]["sampling_per_source"]) == {"cc_bvh", "cmu_asf"}
    assert card["arch"] == "ampose" and len(card["history"]) >= 1
    assert "mocap.cs.cmu.edu" in card["training"]["acknowledgement"]
    split = card["training"]["split"]
    assert split["file"] == "splits.json" and split["seeds"]["validation"] != split["seeds"]["test"]
    assert card["training"]["validation_during_training"]["camera_seed"] == split["seeds"]["validation"]
    # validation (CC subject 2) and test (7, 11, 131) never train
    assert not {"cc_bvh:2", "cc_bvh:7", "cmu_asf:11", "cmu_bvh:131"} & set(card["training"]["train_subjects"])
    assert card["training"]["test_clips_never_used_in_training"] == 16
    # resume continues where it stopped
    code = main(["train", "--arch", "ampose", "--preset", "small", "--mocap", str(mocap_root), "--epochs", "3",
                 "--steps-per-epoch", "2", "--batch-size", "16", "--val-cameras", "1", "--val-max-frames", "50",
                 "--out", str(out), "--name", "amp", "--resume", "--sources", "cmu", "--lr-decay", "0.5"])
    assert code == 0
    lrs = [h["lr"] for h in json.loads((out / "amp.json").read_text())["history"]]
    assert len(lrs) == 3 and lrs[2] == pytest.approx(lrs[1] * 0.5)  # the new decay from the resumed epoch on
    capsys.readouterr()
    code = main(["eval", "--weights", str(out / "amp.safetensors"), "--mocap", str(mocap_root),
                 "--val-subjects", "131", "--cameras", "1", "--max-frames", "100", "--json", str(tmp_path / "m.json")])
    assert code == 0
    res = json.loads((tmp_path / "m.json").read_text())["results"]
    assert set(res) == {"gt 2D", "noisy 2D"}
    for suite in res.values():
        o = suite["overall"]
        assert o["mpjpe"] > 0 and o["p_mpjpe"] <= o["mpjpe"] and 0 <= o["pck150"] <= 100
        assert suite["frames"] == 300  # 3 clips of subject 131, 100 frames each, 1 camera
    assert "overall" in capsys.readouterr().out
    # default: the test part, per source and per action, with the test camera seed
    code = main(["eval", "--weights", str(out / "amp.safetensors"), "--mocap", str(mocap_root), "--sources", "cmu",
                 "--cameras", "1", "--max-frames", "40", "--inputs", "gt", "--no-per-clip",
                 "--json", str(tmp_path / "t.json")])
    assert code == 0
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["settings"]["split"] == "test" and doc["settings"]["camera_seed"] == split["seeds"]["test"]
    res = doc["results"]["gt 2D"]
    assert set(res["by_source"]) == {"cc_bvh", "cmu_asf", "cmu_bvh"}
    assert sum(v["frames"] for v in res["by_source"].values()) == res["frames"]
    assert all(k.split("/")[0] in res["by_source"] for k in res["by_action"])
    mean = sum(v["mpjpe"] for v in res["by_source"].values()) / 3
    assert abs(res["source_mean"]["mpjpe"] - mean) < 1e-6
    assert card["metrics"]["validation_during_training"]["selected_on"] == "source_mean mpjpe"
