"""Gap filling of 2D keypoint tracks (video3d.detect.gaps)."""
from __future__ import annotations

import numpy as np
import pytest

from video3d.detect.gaps import default_max_gap, fill_gaps, runs, summarize_gaps


def _track(t: int = 20, j: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints moving linearly: joint k at (10 t + k, 2 t - k); scores 0.9."""
    frames = np.arange(t, dtype=np.float32)[:, None]
    joints = np.arange(j, dtype=np.float32)[None, :]
    kp = np.stack([10 * frames + joints, 2 * frames - joints], axis=-1)
    return kp, np.full((t, j), 0.9, np.float32)


def test_runs_and_default_max_gap() -> None:
    mask = np.array([1, 1, 0, 1, 0, 0, 1], bool)
    assert runs(mask).tolist() == [[0, 1], [3, 3], [6, 6]]
    assert runs(~mask).tolist() == [[2, 2], [4, 5]]
    assert runs(np.zeros(0, bool)).shape == (0, 2)
    assert default_max_gap(30.0) == 15
    assert default_max_gap(25.0) == 12  # round half to even: 12.5 -> 12
    assert default_max_gap(60.0, seconds=0.25) == 15


def test_middle_gap_is_interpolated_linearly() -> None:
    kp, sc = _track()
    sc[4] = 0.6
    detected = np.ones(20, bool)
    detected[5:8] = False
    garbage = kp.copy()
    garbage[5:8] = 1e6  # values in undetected frames must be ignored
    res = fill_gaps(garbage, sc, detected, max_gap=5)
    np.testing.assert_allclose(res.keypoints, kp, rtol=0, atol=1e-4)
    assert res.valid.all()
    assert res.interpolated.tolist() == [5 <= i < 8 for i in range(20)]
    np.testing.assert_allclose(res.scores[5:8], 0.5 * 0.6)  # 0.5 * min(neighbours)
    assert res.joint_filled[5:8].all() and not res.joint_filled[:5].any()
    assert res.gaps == [(5, 7, 3, True)]
    assert garbage[5, 0, 0] == 1e6  # input untouched


def test_start_end_and_long_gaps_stay_missing() -> None:
    kp, sc = _track(30)
    detected = np.ones(30, bool)
    detected[:2] = False       # leading
    detected[10:14] = False    # long (4 > max_gap 3)
    detected[20:23] = False    # short (3 == max_gap)
    detected[27:] = False      # trailing
    res = fill_gaps(kp, sc, detected, max_gap=3)
    missing = np.r_[0:2, 10:14, 27:30]
    assert np.isnan(res.keypoints[missing]).all()
    assert (res.scores[missing] == 0).all()
    assert not res.valid[missing].any()
    assert res.valid[20:23].all() and res.interpolated[20:23].all()
    np.testing.assert_allclose(res.keypoints[20:23], kp[20:23], atol=1e-4)
    assert res.gaps == [(0, 1, 2, False), (10, 13, 4, False), (20, 22, 3, True), (27, 29, 3, False)]
    assert res.valid.sum() == 30 - len(missing)


def test_max_gap_zero_fills_nothing() -> None:
    kp, sc = _track()
    detected = np.ones(20, bool)
    detected[9] = False
    res = fill_gaps(kp, sc, detected, max_gap=0)
    assert not res.valid[9] and np.isnan(res.keypoints[9]).all()
    assert res.gaps == [(9, 9, 1, False)]


def test_low_score_joint_is_interpolated_in_time() -> None:
    kp, sc = _track()
    noisy = kp.copy()
    noisy[8:10, 1] += 500.0   # a glitch on joint 1 ...
    sc[8:10, 1] = 0.05        # ... that the detector flags as unsure
    sc[7, 1], sc[10, 1] = 0.8, 0.7
    res = fill_gaps(noisy, sc, np.ones(20, bool), max_gap=5, min_joint_score=0.3)
    np.testing.assert_allclose(res.keypoints[8:10, 1], kp[8:10, 1], atol=1e-4)
    np.testing.assert_allclose(res.scores[8:10, 1], 0.35)
    assert res.joint_filled[8:10, 1].all() and res.joint_filled.sum() == 2
    assert not res.interpolated.any() and res.gaps == []
    # Other joints of those frames are untouched.
    np.testing.assert_array_equal(res.keypoints[8:10, [0, 2]], kp[8:10, [0, 2]])


def test_low_score_joint_without_anchor_keeps_detector_guess() -> None:
    kp, sc = _track()
    sc[:3, 2] = 0.01          # unsure from the very first frame: nothing before it
    sc[10:18, 0] = 0.01       # unsure for longer than max_gap
    res = fill_gaps(kp, sc, np.ones(20, bool), max_gap=5, min_joint_score=0.3)
    np.testing.assert_array_equal(res.keypoints, kp)
    np.testing.assert_array_equal(res.scores, sc)
    assert not res.joint_filled.any()


def test_joint_hole_spanning_a_frame_gap() -> None:
    kp, sc = _track()
    detected = np.ones(20, bool)
    detected[6:8] = False
    sc[8, 2] = 0.0            # the joint is unsure in the frame after the gap too
    res = fill_gaps(kp, sc, detected, max_gap=5, min_joint_score=0.3)
    np.testing.assert_allclose(res.keypoints[6:9], kp[6:9], atol=1e-4)
    assert res.joint_filled[8, 2] and not res.joint_filled[8, :2].any()
    assert res.interpolated[6:8].all() and not res.interpolated[8]


def test_shape_errors() -> None:
    kp, sc = _track()
    with pytest.raises(ValueError):
        fill_gaps(kp[:, :2], sc, np.ones(20, bool), 3)
    with pytest.raises(ValueError):
        fill_gaps(kp, sc, np.ones(20, bool), -1)


def test_summary_text() -> None:
    gaps = [(10, 12, 3, True), (20, 21, 2, True), (120, 180, 61, False)]
    assert summarize_gaps(gaps, 230) == "3 gaps: 2 filled (5 frames), 1 long gap at frames 120-180 left missing"
    assert summarize_gaps([], 10) == "no gaps"
    text = summarize_gaps([(0, 4, 5, False), (50, 50, 1, True), (225, 229, 5, False)], 230)
    assert text == "3 gaps: 1 filled (1 frame), frames 0-4 missing at the start, frames 225-229 missing at the end"
    assert summarize_gaps([(7, 7, 1, False)], 20) == "1 gap: 1 long gap at frame 7 left missing"
    assert summarize_gaps([(0, 9, 10, False)], 10) == "1 gap: no pose in any of the 10 frames"
    res = fill_gaps(*_track(), np.r_[np.ones(5, bool), np.zeros(15, bool)], 3)
    assert summarize_gaps(res.gaps, 20) == "1 gap: frames 5-19 missing at the end"
