"""Tests for video3d.filters (smoothing, gap filling, jitter / lag metrics).

``python tests/test_filters.py`` prints the synthetic benchmark table that
docs/smoothing.md quotes.
"""
from __future__ import annotations

import numpy as np
import pytest

from video3d import filters
from video3d.errors import UserError

FPS = 30.0

#: A standing H36M-17 pose in metres (z up).
_BASE = np.array([[0, 0, 1.0], [-.13, 0, 1.0], [-.13, 0, .56], [-.13, 0, .11], [.13, 0, 1.0], [.13, 0, .56],
                  [.13, 0, .11], [0, 0, 1.24], [0, 0, 1.49], [0, 0, 1.6], [0, 0, 1.72], [.15, 0, 1.49],
                  [.43, 0, 1.49], [.68, 0, 1.49], [-.15, 0, 1.49], [-.43, 0, 1.49], [-.68, 0, 1.49]])
#: Motion amplitude per joint, metres (extremities move most).
_AMP = np.array([.03, .05, .15, .25, .05, .15, .25, .04, .06, .07, .08, .08, .2, .35, .08, .2, .35])


def clean_motion(frames: int = 300, fps: float = FPS, seed: int = 0, max_hz: float = 1.2) -> np.ndarray:
    """Smooth synthetic motion (frames, 17, 3) in metres: 3 sinusoids of 0.1..max_hz Hz per coordinate."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    x = np.repeat(_BASE[None], frames, axis=0)
    for j in range(17):
        for d in range(3):
            for _ in range(3):
                f, phase, a = rng.uniform(0.1, max_hz), rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 1.5)
                x[:, j, d] += _AMP[j] / 3 * a * np.sin(2 * np.pi * f * t + phase)
    return x


def detector_noise(shape: tuple, seed: int = 1) -> np.ndarray:
    """1 cm white noise + 1 cm AR(1) (rho 0.7) drift + 1 % spikes of 5 cm, per coordinate."""
    rng = np.random.default_rng(seed)
    white = 0.01 * rng.standard_normal(shape)
    drift = np.zeros(shape)
    drift[0] = 0.01 * rng.standard_normal(shape[1:])
    for t in range(1, shape[0]):
        drift[t] = 0.7 * drift[t - 1] + 0.01 * np.sqrt(1 - 0.7 ** 2) * rng.standard_normal(shape[1:])
    spikes = (rng.random(shape[:2]) < 0.01)[..., None] * 0.05 * rng.standard_normal(shape)
    return white + drift + spikes


def rms_error(x: np.ndarray, truth: np.ndarray) -> float:
    """Root mean square of the per-joint Euclidean error."""
    return float(np.sqrt(np.nanmean(np.sum((x - truth) ** 2, axis=-1))))


@pytest.fixture(scope="module")
def noisy_clip():
    clean = clean_motion()
    return clean, clean + detector_noise(clean.shape)


def benchmark(methods=(("butterworth", {}), ("savgol", {}), ("oneeuro", {}))) -> list[dict]:
    """RMS error, jitter and lag of each method on the synthetic clip (see docs/smoothing.md)."""
    clean = clean_motion()
    noisy = clean + detector_noise(clean.shape)
    rows = [dict(method="raw", params="", rms_mm=1000 * rms_error(noisy, clean),
                 jitter=filters.jitter(noisy, FPS), lag=0.0)]
    for method, params in methods:
        y = filters.smooth(noisy, FPS, method, **params)
        rows.append(dict(method=method, params=", ".join(f"{k}={v}" for k, v in params.items()) or "defaults",
                         rms_mm=1000 * rms_error(y, clean), jitter=filters.jitter(y, FPS),
                         lag=filters.lag_frames(noisy, y)))
    rows.append(dict(method="clean truth", params="", rms_mm=0.0, jitter=filters.jitter(clean, FPS), lag=0.0))
    return rows


# ---------------------------------------------------------------- quality on the synthetic clip
# (measured: raw 25.8 mm / 41 m/s^2; see docs/smoothing.md for the full table)
@pytest.mark.parametrize("method, max_rms_ratio, max_jitter_ratio", [
    ("butterworth", 0.85, 0.30),
    ("savgol", 0.80, 0.30),
    ("oneeuro", 0.97, 0.45),
])
def test_filters_reduce_error_and_jitter(noisy_clip, method, max_rms_ratio, max_jitter_ratio):
    clean, noisy = noisy_clip
    y = filters.smooth(noisy, FPS, method)
    assert rms_error(y, clean) < max_rms_ratio * rms_error(noisy, clean)
    assert filters.jitter(y, FPS) < max_jitter_ratio * filters.jitter(noisy, FPS)


@pytest.mark.parametrize("method", ["butterworth", "savgol"])
def test_zero_phase_filters_have_no_lag(noisy_clip, method):
    clean, noisy = noisy_clip
    assert abs(filters.lag_frames(clean, filters.smooth(noisy, FPS, method))) < 0.2


def test_one_euro_lags_about_a_frame(noisy_clip):
    clean, noisy = noisy_clip
    y = filters.smooth(noisy, FPS, "oneeuro")
    assert 0.3 < filters.lag_frames(clean, y) < 1.5
    # the pre-smoothed estimate from the noisy input agrees with the one from the truth
    assert filters.lag_frames(noisy, y) == pytest.approx(filters.lag_frames(clean, y), abs=0.2)
    # a lower speed coefficient smooths more and lags more
    assert filters.lag_frames(clean, filters.one_euro(noisy, FPS, beta=1.0)) > filters.lag_frames(clean, y) + 0.5


# ---------------------------------------------------------------- NaN handling and short runs
@pytest.mark.parametrize("method", ["oneeuro", "savgol", "butterworth"])
def test_nan_runs_are_kept_and_segments_filtered_separately(noisy_clip, method):
    _, noisy = noisy_clip
    x = noisy[:120].copy()
    x[40:50] = np.nan              # whole frames missing
    x[80:83, 13] = np.nan          # one joint missing
    x[100, 3, 2] = np.nan          # one coordinate missing
    params = {"scale": 1.7} if method == "oneeuro" else {}     # the same scale for the whole and the parts
    y = filters.smooth(x, FPS, method, **params)
    assert np.array_equal(np.isnan(y), np.isnan(x))
    np.testing.assert_allclose(y[:40], filters.smooth(x[:40], FPS, method, **params), atol=1e-12)
    np.testing.assert_allclose(y[50:, 0], filters.smooth(x[50:, :1], FPS, method, **params)[:, 0], atol=1e-12)


@pytest.mark.parametrize("method", ["oneeuro", "savgol", "butterworth"])
@pytest.mark.parametrize("length", [1, 2, 3, 4, 5, 8, 12])
def test_short_segments(method, length):
    rng = np.random.default_rng(length)
    x = np.full((30, 17, 2), np.nan)
    x[5:5 + length] = 300 + 10 * rng.standard_normal((length, 17, 2))      # pixels
    y = filters.smooth(x, FPS, method)
    assert np.array_equal(np.isnan(y), np.isnan(x))
    if length == 1:
        np.testing.assert_array_equal(y[5], x[5])
    assert np.nanmax(np.abs(y - x)) < 40.0


def test_all_nan_and_empty_inputs():
    for method in filters.SMOOTHING_METHODS:
        assert np.isnan(filters.smooth(np.full((10, 17, 3), np.nan), FPS, method)).all()
        assert filters.smooth(np.zeros((0, 17, 3)), FPS, method).shape == (0, 17, 3)


# ---------------------------------------------------------------- individual properties
def test_none_is_identity(noisy_clip):
    _, noisy = noisy_clip
    x = noisy.copy()
    x[3:7] = np.nan
    y = filters.smooth(x, FPS, "none")
    np.testing.assert_array_equal(y, x)
    assert y is not x


def test_one_euro_is_causal(noisy_clip):
    _, noisy = noisy_clip
    x = noisy[:100]
    changed = x.copy()
    changed[60:] += 0.5
    a, b = filters.one_euro(x, FPS, scale=1.7), filters.one_euro(changed, FPS, scale=1.7)
    np.testing.assert_array_equal(a[:60], b[:60])
    assert not np.allclose(a[60:], b[60:])


def test_one_euro_is_unit_free(noisy_clip):
    # default scale = body size, so pixels (x 500) and metres give the same result
    _, noisy = noisy_clip
    np.testing.assert_allclose(filters.one_euro(500 * noisy, FPS) / 500, filters.one_euro(noisy, FPS), atol=1e-9)
    assert filters.body_scale(noisy) == pytest.approx(1.75, abs=0.15)
    holes = noisy.copy()
    holes[:, 10] = np.nan                      # a joint never detected: still measured on the others
    assert filters.body_scale(holes) == pytest.approx(filters.body_scale(noisy), rel=0.1)
    assert filters.body_scale(noisy[:, :1]) == 1.0


def test_constant_signal_is_unchanged():
    x = np.ones((50, 17, 3)) * np.arange(3)
    for method in ("oneeuro", "savgol", "butterworth"):
        np.testing.assert_allclose(filters.smooth(x, FPS, method), x, atol=1e-9)


def test_savgol_window_frames():
    assert filters.savgol_window_frames(0.25, 30, 2) == 9      # 7.5 -> 8 -> odd 9
    assert filters.savgol_window_frames(0.25, 60, 2) == 15
    assert filters.savgol_window_frames(0.01, 30, 2) == 3
    assert filters.savgol_window_frames(0.01, 30, 3) == 5


def test_butterworth_above_nyquist_is_a_no_op(noisy_clip):
    _, noisy = noisy_clip
    np.testing.assert_array_equal(filters.butterworth(noisy, 10.0, cutoff_hz=6.0), noisy)


def test_bad_arguments_are_user_errors(noisy_clip):
    _, noisy = noisy_clip
    with pytest.raises(UserError, match="unknown smoothing method"):
        filters.smooth(noisy, FPS, "kalman")
    with pytest.raises(UserError, match="frame rate"):
        filters.smooth(noisy, 0.0, "savgol")
    with pytest.raises(UserError, match="cutoff_hz"):
        filters.smooth(noisy, FPS, "butterworth", cutoff_hz=-1)
    with pytest.raises(TypeError):
        filters.smooth(noisy, FPS, "savgol", cutoff_hz=3)
    assert set(filters.SMOOTHING_METHODS) == {"none", "oneeuro", "savgol", "butterworth"}


# ---------------------------------------------------------------- gap filling and metrics
def test_fill_gaps_linear():
    x = np.arange(20.0)[:, None, None] * np.array([1.0, 2.0])        # (20, 1, 2) ramps
    holes = x.copy()
    holes[3:5] = np.nan          # gap of 2: filled
    holes[8:13, 0, 1] = np.nan   # gap of 5 in one channel: too long
    holes[:2] = np.nan           # leading NaN: kept
    holes[19] = np.nan           # trailing NaN: kept
    y = filters.fill_gaps_linear(holes, max_gap=3)
    np.testing.assert_allclose(y[3:5], x[3:5])
    assert np.isnan(y[8:13, 0, 1]).all() and np.isfinite(y[8:13, 0, 0]).all()
    assert np.isnan(y[:2]).all() and np.isnan(y[19]).all()
    np.testing.assert_allclose(filters.fill_gaps_linear(holes, max_gap=5)[8:13], x[8:13])
    assert np.isnan(filters.fill_gaps_linear(holes, max_gap=0)[3:5]).all()


def test_jitter_of_constant_acceleration():
    t = np.arange(40) / FPS
    x = np.zeros((40, 2, 3))
    x[:, :, 2] = 0.5 * 9.81 * t[:, None] ** 2
    assert filters.jitter(x, FPS) == pytest.approx(9.81)
    x[10] = np.nan
    assert filters.jitter(x, FPS) == pytest.approx(9.81)
    assert np.isnan(filters.jitter(x[:2], FPS))


@pytest.mark.parametrize("shift", [0, 2, 5])
def test_lag_frames_recovers_a_delay(noisy_clip, shift):
    clean, _ = noisy_clip
    delayed = np.concatenate([np.repeat(clean[:1], shift, axis=0), clean[: len(clean) - shift]])
    assert filters.lag_frames(clean, delayed) == pytest.approx(shift, abs=0.1)
    assert filters.lag_frames(delayed, clean) == pytest.approx(-shift, abs=0.1)


if __name__ == "__main__":
    print("| method | params | RMS error (mm) | jitter (m/s^2) | lag (frames) |")
    print("|---|---|---|---|---|")
    for row in benchmark((("butterworth", {}), ("savgol", {}), ("oneeuro", {}),
                          ("oneeuro", {"beta": 5.0}), ("oneeuro", {"beta": 50.0}),
                          ("oneeuro", {"min_cutoff": 0.3, "beta": 10.0}),
                          ("butterworth", {"cutoff_hz": 3.0}), ("savgol", {"window_s": 0.5}))):
        print(f"| {row['method']} | {row['params']} | {row['rms_mm']:.1f} | {row['jitter']:.1f} | {row['lag']:.2f} |")
