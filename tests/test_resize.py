"""Progressive window length: resizing a KTPFormer's temporal tensors."""
import pytest
import torch

from video3d.models.registry import build_model
from video3d.models.resize import resize_ktpformer_state


def test_resize_loads_strictly_and_interpolates():
    short = build_model("ktpformer", "tiny", num_frames=9)
    long = build_model("ktpformer", "tiny", num_frames=27)
    state = resize_ktpformer_state(short.state_dict(), 27)
    long.load_state_dict(state, strict=True)
    pe_short, pe_long = short.state_dict()["tpa.pos_embed"][0], state["tpa.pos_embed"][0]
    torch.testing.assert_close(pe_long[0], pe_short[0])
    torch.testing.assert_close(pe_long[-1], pe_short[-1])
    torch.testing.assert_close(pe_long[13], pe_short[4])  # centre maps to centre (align_corners)
    torch.testing.assert_close(pe_long[1], pe_short[0] + (pe_short[1] - pe_short[0]) / 3.25)
    # Every tensor that does not depend on T is carried over unchanged.
    for k, v in short.state_dict().items():
        if 9 not in v.shape:
            torch.testing.assert_close(state[k], v)
    assert long(torch.zeros(1, 27, 17, 2)).shape == (1, 27, 17, 3)


def test_same_length_is_identity():
    m = build_model("ktpformer", "tiny", num_frames=9)
    state = resize_ktpformer_state(m.state_dict(), 9)
    for k, v in m.state_dict().items():
        if not k.endswith("adj2"):
            torch.testing.assert_close(state[k], v)


@pytest.mark.slow
def test_train_init_from_shorter_window(tmp_path, tiny_weights, mocap_root):
    """`video3d train --frames 27 --init <81-frame... here 27-frame test weights>` starts from them."""
    from video3d.cli import main
    from video3d.lift.weights import load_weights

    code = main(["train", "--arch", "ktpformer", "--preset", "tiny", "--frames", "54", "--init",
                 str(tiny_weights["ktpformer"]), "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "1",
                 "--val-cameras", "1", "--val-max-frames", "60", "--val-subjects", "131", "--sources", "cmu",
                 "--out", str(tmp_path)])
    assert code == 0
    model, card = load_weights(tmp_path / "ktpformer-tiny.safetensors")
    assert card["config"]["num_frames"] == 54
    assert card["training"]["initialised_from"]["config"]["num_frames"] == 27
