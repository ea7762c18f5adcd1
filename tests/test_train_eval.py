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
                 "--out", str(out), "--name", "amp"])
    assert code == 0, capsys.readouterr().err
    card = json.loads((out / "amp.json").read_text())
    assert card["arch"] == "ampose" and len(card["history"]) >= 1
    assert "mocap.cs.cmu.edu" in card["training"]["acknowledgement"]
    assert card["training"]["validation_subjects"] == ["7", "11", "131"]
    assert "7" not in card["training"]["train_subjects"]
    # resume continues where it stopped
    code = main(["train", "--arch", "ampose", "--preset", "small", "--mocap", str(mocap_root), "--epochs", "3",
                 "--steps-per-epoch", "2", "--batch-size", "16", "--val-cameras", "1", "--val-max-frames", "50",
                 "--out", str(out), "--name", "amp", "--resume"])
    assert code == 0
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
