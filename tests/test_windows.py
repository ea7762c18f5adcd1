"""Windowing: centred padding, overlap blending, frame alignment."""
import numpy as np
import pytest

from video3d.lift.windows import blend_weights, merge_windows, split_windows, window_starts


@pytest.mark.parametrize("length", [1, 50, 242, 243, 244, 1000])
def test_split_merge_is_frame_aligned(length):
    # A signal whose value is its frame index: any misalignment shows up.
    x = np.arange(length, dtype=np.float32)[:, None, None] * np.ones((1, 17, 3), np.float32)
    wins, starts, left = split_windows(x, 243, 121)
    assert wins.shape[1:] == (243, 17, 3)
    out = merge_windows(wins, starts, length, left)
    assert out.shape == x.shape
    np.testing.assert_allclose(out, x, atol=1e-4)


def test_short_clip_is_padded_centred_with_edge_frames():
    x = np.arange(50, dtype=np.float32)[:, None, None] * np.ones((1, 17, 2), np.float32)
    wins, starts, left = split_windows(x, 243, 121)
    assert left == (243 - 50) // 2 and len(wins) == 1
    np.testing.assert_array_equal(wins[0, :left], 0.0)  # first frame repeated
    np.testing.assert_array_equal(wins[0, left + 50:], 49.0)  # last frame repeated
    np.testing.assert_array_equal(wins[0, left:left + 50], x)


def test_reference_bug_would_be_caught():
    """The released KTPFormer right-pads and takes the last L frames: check we don't."""
    x = np.arange(50, dtype=np.float32)[:, None, None] * np.ones((1, 17, 2), np.float32)
    wins, starts, left = split_windows(x, 243, 121)
    buggy = wins[0, -50:]  # what the reference implementation would return
    assert not np.allclose(buggy, x)
    np.testing.assert_allclose(merge_windows(wins, starts, 50, left), x)


def test_window_starts_cover_and_end_aligned():
    s = window_starts(1000, 243, 121)
    assert s[0] == 0 and s[-1] == 1000 - 243
    assert np.all(np.diff(s) <= 121)
    assert list(window_starts(243, 243, 121)) == [0]
    assert list(window_starts(244, 243, 121)) == [0, 1]


def test_blending_has_no_jump_at_window_boundaries():
    # Windows that disagree by a constant offset: the blend must change smoothly.
    length, window, stride = 1000, 243, 121
    x = np.zeros((length, 1, 1), np.float32)
    wins, starts, left = split_windows(x, window, stride)
    wins = wins + np.arange(len(wins), dtype=np.float32)[:, None, None, None] * 0.01  # 10 mm disagreement
    out = merge_windows(wins, starts, length, left)[:, 0, 0]
    assert np.abs(np.diff(out)).max() < 0.002  # < 2 mm per frame: no visible jump


def test_blend_weights_positive():
    w = blend_weights(243)
    assert (w > 0).all() and w.argmax() in (120, 121, 122)
    assert blend_weights(1).tolist() == [1.0]


def test_empty_sequence_rejected():
    with pytest.raises(ValueError):
        split_windows(np.zeros((0, 17, 2)), 243, 121)
