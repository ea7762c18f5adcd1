"""Temporal smoothing, gap filling and jitter metrics for keypoint sequences.

All functions take arrays of shape (T, J, D) (any (T, ...) works) with time
on axis 0 and NaN marking missing values. Filtering is NaN-aware: every
channel is split into its contiguous runs of finite samples, each run is
filtered on its own, and NaN stays NaN (use :func:`fill_gaps_linear` first
to bridge short gaps). Units are whatever the input uses (pixels for 2D,
metres for 3D); see ``docs/smoothing.md`` for the defaults and their
measured jitter reduction and lag.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from video3d.errors import UserError


def _signal():
    """``scipy.signal``, imported on first use: ~1.5 s, and only smoothing needs it."""
    from scipy import signal

    return signal


#: Method names accepted by :func:`smooth` (and the CLI's ``--smooth-*``).
SMOOTHING_METHODS: tuple[str, ...] = ("none", "oneeuro", "savgol", "butterworth")

#: One-euro defaults. ``beta`` is relative to the body size (see ``one_euro``).
ONE_EURO_MIN_CUTOFF_HZ = 1.0
ONE_EURO_BETA = 20.0
ONE_EURO_D_CUTOFF_HZ = 1.0
#: Savitzky-Golay defaults: a 0.25 s window, quadratic fit.
SAVGOL_WINDOW_S = 0.25
SAVGOL_POLYORDER = 2
#: Butterworth defaults (as Pose2Sim): 4th order, 6 Hz, applied forward-backward.
BUTTERWORTH_CUTOFF_HZ = 6.0
BUTTERWORTH_ORDER = 4

_Kernel = Callable[[np.ndarray], np.ndarray]


def smooth(x: np.ndarray, fps: float, method: str, **params) -> np.ndarray:
    """Smooth a keypoint sequence along time with the named method.

    Args:
        x: (T, J, D) positions (pixels or metres); NaN where missing.
        fps: frame rate of ``x`` in Hz.
        method: one of ``SMOOTHING_METHODS``.
        **params: keyword arguments of the chosen filter (``one_euro``,
            ``savgol`` or ``butterworth``); defaults are used when omitted.

    Returns:
        (T, J, D) float64 smoothed copy; NaN exactly where ``x`` is NaN.
    """
    if method == "none":
        if params:
            raise UserError(f"smoothing method 'none' takes no parameters, got {sorted(params)}")
        return np.array(x, dtype=np.float64)
    filters = {"oneeuro": one_euro, "savgol": savgol, "butterworth": butterworth}
    if method not in filters:
        raise UserError(f"unknown smoothing method {method!r}; choose one of {', '.join(SMOOTHING_METHODS)}")
    return filters[method](x, fps, **params)


def one_euro(x: np.ndarray, fps: float, min_cutoff: float = ONE_EURO_MIN_CUTOFF_HZ,
             beta: float = ONE_EURO_BETA, d_cutoff: float = ONE_EURO_D_CUTOFF_HZ,
             scale: float | None = None) -> np.ndarray:
    """Causal one-euro filter (Casiez, Roussel & Vogel, CHI 2012), per scalar channel.

    At each step the cutoff is ``min_cutoff + beta * |dx/dt| / scale`` Hz, with
    ``dx/dt`` the speed (low-passed at ``d_cutoff`` Hz) measured against the
    previous filtered value, as in the paper's pseudo-code. Dividing by
    ``scale`` makes ``beta`` unit-free: it is in 1 / (body sizes per second),
    so the same default works for pixels and metres.

    Args:
        x: (T, J, D) positions; NaN where missing (each finite run restarts the filter).
        fps: frame rate in Hz.
        min_cutoff: cutoff at rest, Hz (lower = smoother, more lag when slow).
        beta: speed coefficient (higher = less lag when fast, more jitter).
        d_cutoff: cutoff of the speed estimate, Hz.
        scale: body size in the units of ``x``. None: the median over frames
            of the largest side of the per-frame bounding box of the J points
            (about 1.7 for a standing person in metres, the person's height
            in pixels for 2D); 1.0 when that is not positive (e.g. J = 1).

    Returns:
        (T, J, D) float64; output at frame t depends only on frames <= t.
    """
    fps = _check_fps(fps)
    _check_positive(min_cutoff=min_cutoff, d_cutoff=d_cutoff)
    if beta < 0:
        raise UserError(f"one-euro beta must be >= 0, got {beta}")
    x = np.asarray(x, dtype=np.float64)
    if scale is None:
        scale = body_scale(x)
    elif not scale > 0:
        raise UserError(f"one-euro scale must be > 0, got {scale}")
    return _per_segment(x, lambda seg: _one_euro_run(seg, fps, min_cutoff, beta / scale, d_cutoff))


def savgol(x: np.ndarray, fps: float, window_s: float = SAVGOL_WINDOW_S,
           polyorder: int = SAVGOL_POLYORDER) -> np.ndarray:
    """Zero-phase Savitzky-Golay smoothing (``scipy.signal.savgol_filter``).

    The window is ``window_s`` seconds in frames, rounded up to odd and to
    more than ``polyorder``; runs shorter than the window use the longest
    odd window that fits, and runs too short for the polynomial are returned
    unchanged.

    Args:
        x: (T, J, D) positions; NaN where missing.
        fps: frame rate in Hz.
        window_s: window length in seconds.
        polyorder: degree of the local polynomial.

    Returns:
        (T, J, D) float64.
    """
    fps = _check_fps(fps)
    _check_positive(window_s=window_s)
    if int(polyorder) != polyorder or polyorder < 0:
        raise UserError(f"savgol polyorder must be a non-negative integer, got {polyorder}")
    window = savgol_window_frames(window_s, fps, int(polyorder))
    return _per_segment(np.asarray(x, dtype=np.float64), lambda seg: _savgol_run(seg, window, int(polyorder)))


def savgol_window_frames(window_s: float, fps: float, polyorder: int) -> int:
    """Window of ``window_s`` seconds in frames: odd and > ``polyorder`` (e.g. 0.25 s, 30 fps -> 9)."""
    n = max(int(round(window_s * fps)), polyorder + 1, 3)
    return n if n % 2 else n + 1


def butterworth(x: np.ndarray, fps: float, cutoff_hz: float = BUTTERWORTH_CUTOFF_HZ,
                order: int = BUTTERWORTH_ORDER) -> np.ndarray:
    """Zero-phase low-pass Butterworth (``butter`` + ``sosfiltfilt``).

    The ``order``-th order filter runs forward and backward, so the response
    is squared (-6 dB at ``cutoff_hz``) and there is no lag. Short runs use a
    shorter edge padding; runs of fewer than 4 frames are returned unchanged,
    as is everything when ``cutoff_hz`` is not below the Nyquist rate
    ``fps / 2`` (nothing to remove).

    Args:
        x: (T, J, D) positions; NaN where missing.
        fps: frame rate in Hz.
        cutoff_hz: cutoff frequency in Hz.
        order: filter order (per pass).

    Returns:
        (T, J, D) float64.
    """
    fps = _check_fps(fps)
    _check_positive(cutoff_hz=cutoff_hz)
    if int(order) != order or order < 1:
        raise UserError(f"butterworth order must be a positive integer, got {order}")
    x = np.asarray(x, dtype=np.float64)
    if cutoff_hz >= fps / 2:
        return x.copy()
    sos = _signal().butter(int(order), cutoff_hz, btype="low", fs=fps, output="sos")
    return _per_segment(x, lambda seg: _sosfiltfilt_run(seg, sos))


def fill_gaps_linear(x: np.ndarray, max_gap: int) -> np.ndarray:
    """Linearly interpolate interior NaN gaps of at most ``max_gap`` frames.

    Each channel is treated on its own. Gaps longer than ``max_gap`` and NaN
    before the first / after the last finite sample are left NaN.

    Args:
        x: (T, J, D) (or any (T, ...)) array; NaN where missing.
        max_gap: longest gap to fill, in frames (0 fills nothing).

    Returns:
        Float64 copy of ``x`` with the short gaps filled.
    """
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    out = np.array(x, dtype=np.float64)
    flat = out.reshape(len(out), -1)
    t = np.arange(len(out))
    for c in range(flat.shape[1]):
        col = flat[:, c]
        ok = np.isfinite(col)
        if ok.all() or ok.sum() < 2:
            continue
        for start, stop in _runs(~ok):
            if start > 0 and stop < len(col) and stop - start <= max_gap:
                a, b = start - 1, stop
                col[start:stop] = col[a] + (col[b] - col[a]) * (t[start:stop] - a) / (b - a)
    return out


def jitter(x: np.ndarray, fps: float) -> float:
    """Mean joint acceleration magnitude, in units/s^2.

    Args:
        x: (T, J, D) positions; NaN where missing (accelerations touching a
            NaN sample are skipped).
        fps: frame rate in Hz.

    Returns:
        Mean over frames and joints of ``|x[t+1] - 2 x[t] + x[t-1]| * fps^2``;
        NaN when fewer than 3 consecutive finite frames exist.
    """
    x = np.asarray(x, dtype=np.float64)
    if len(x) < 3:
        return float("nan")
    acc = np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1) * fps ** 2
    acc = acc[np.isfinite(acc)]
    return float(acc.mean()) if acc.size else float("nan")


def lag_frames(raw: np.ndarray, filtered: np.ndarray, max_lag: int = 15, band: float | None = 0.2) -> float:
    """Delay of ``filtered`` behind ``raw`` in frames, from the cross-correlation of velocities.

    Both sequences are first low-passed by the same zero-phase filter (2nd
    order Butterworth at ``band`` x Nyquist, run forward-backward, so their
    relative timing is kept) to keep white noise in ``raw`` from pulling the
    estimate towards 0. Their frame-to-frame velocities (all channels
    pooled, NaN treated as 0) are then correlated at integer shifts ``k`` in
    ``[-max_lag, max_lag]`` (mean over the overlap) and the peak is refined
    by a parabola through its neighbours. Positive = ``filtered`` lags
    behind (what a causal filter does); ~0 for zero-phase filters.

    Args:
        raw: (T, J, D) reference sequence (the unfiltered input, or the clean truth).
        filtered: (T, J, D) filtered sequence.
        max_lag: largest shift searched, frames.
        band: pre-smoothing cutoff as a fraction of Nyquist (0.2 = 3 Hz at
            30 fps), or None for none.

    Returns:
        Lag in frames (float); NaN if the sequences are too short.
    """
    raw = np.asarray(raw, dtype=np.float64)
    filtered = np.asarray(filtered, dtype=np.float64)
    if raw.shape != filtered.shape:
        raise ValueError(f"raw {raw.shape} and filtered {filtered.shape} must have the same shape")
    if band is not None:
        sos = _signal().butter(2, band, output="sos")
        raw = _per_segment(raw, lambda seg: _sosfiltfilt_run(seg, sos))
        filtered = _per_segment(filtered, lambda seg: _sosfiltfilt_run(seg, sos))
    n = len(raw) - 1
    vr = np.nan_to_num(np.diff(raw, axis=0).reshape(n, -1), nan=0.0)
    vf = np.nan_to_num(np.diff(filtered, axis=0).reshape(n, -1), nan=0.0)
    max_lag = min(max_lag, n - 2)
    if max_lag < 1:
        return float("nan")
    lags = np.arange(-max_lag, max_lag + 1)
    corr = np.array([np.mean(np.sum(vr[: n - k] * vf[k:], axis=1)) if k >= 0
                     else np.mean(np.sum(vr[-k:] * vf[: n + k], axis=1)) for k in lags])
    i = int(np.argmax(corr))
    if 0 < i < len(lags) - 1:
        c0, c1, c2 = corr[i - 1], corr[i], corr[i + 1]
        den = c0 - 2 * c1 + c2
        return float(lags[i] + (0.5 * (c0 - c2) / den if den < 0 else 0.0))
    return float(lags[i])


def body_scale(x: np.ndarray) -> float:
    """Median over frames of the largest bounding-box side of the J points, (T, J, D) -> float.

    Missing (NaN) points are ignored, as are frames with fewer than 2 finite
    points; returns 1.0 when no frame gives a positive size.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3 or x.shape[1] < 2 or len(x) == 0:
        return 1.0
    finite = np.isfinite(x).all(axis=-1)                       # (T, J)
    ok = finite.sum(axis=1) >= 2
    if not ok.any():
        return 1.0
    mask = finite[ok][..., None]
    hi = np.where(mask, x[ok], -np.inf).max(axis=1)
    lo = np.where(mask, x[ok], np.inf).min(axis=1)
    size = float(np.median((hi - lo).max(axis=-1)))
    return size if size > 0 else 1.0


# ---------------------------------------------------------------- internals
def _check_fps(fps: float) -> float:
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise UserError(f"frame rate must be a positive number, got {fps}")
    return fps


def _check_positive(**values: float) -> None:
    for name, v in values.items():
        if not (np.isfinite(v) and v > 0):
            raise UserError(f"smoothing parameter {name} must be > 0, got {v}")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index pairs of the True runs of a 1D bool array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _per_segment(x: np.ndarray, kernel: _Kernel) -> np.ndarray:
    """Apply ``kernel`` ((n, C) -> (n, C), finite input) to each finite run of each channel.

    Channels sharing the same NaN pattern (the usual case: whole frames
    missing) are filtered together.
    """
    out = np.full(x.shape, np.nan)
    if x.size == 0:
        return out
    flat_in = x.reshape(len(x), -1)
    flat_out = out.reshape(len(x), -1)
    ok = np.isfinite(flat_in)
    patterns, inverse = np.unique(ok, axis=1, return_inverse=True)
    for p in range(patterns.shape[1]):
        cols = np.flatnonzero(inverse.ravel() == p)
        for start, stop in _runs(patterns[:, p]):
            flat_out[start:stop, cols] = kernel(flat_in[start:stop, cols])
    return out


def _one_euro_run(x: np.ndarray, fps: float, min_cutoff: float, beta: float, d_cutoff: float) -> np.ndarray:
    """One-euro over a finite (n, C) run; ``beta`` already divided by the scale."""

    def alpha(cutoff):
        return 1.0 / (1.0 + fps / (2 * np.pi * cutoff))

    a_d = alpha(d_cutoff)
    out = np.empty_like(x)
    out[0] = prev = x[0]
    dx_hat = np.zeros(x.shape[1])
    for t in range(1, len(x)):
        dx_hat = dx_hat + a_d * ((x[t] - prev) * fps - dx_hat)
        a = alpha(min_cutoff + beta * np.abs(dx_hat))
        prev = prev + a * (x[t] - prev)
        out[t] = prev
    return out


def _savgol_run(x: np.ndarray, window: int, polyorder: int) -> np.ndarray:
    n = len(x)
    if n < window:
        window = n if n % 2 else n - 1
    if window <= polyorder:
        return x.copy()
    return _signal().savgol_filter(x, window, polyorder, axis=0, mode="interp")


def _sosfiltfilt_run(x: np.ndarray, sos: np.ndarray) -> np.ndarray:
    n = len(x)
    if n < 4:
        return x.copy()
    default_pad = 3 * (2 * len(sos) + 1)
    return _signal().sosfiltfilt(sos, x, axis=0, padtype="odd", padlen=min(default_pad, n - 1))
