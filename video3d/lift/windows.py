"""Fixed-length windows for seq2seq lifters, with centred padding and blending.

A seq2seq lifter such as KTPFormer maps a window of exactly ``window`` frames
to the same number of 3D poses. A clip of length L is processed as follows:

* L < window: the clip is padded on both sides by repeating its first and last
  frame (``left = (window - L) // 2``), lifted once, and the output is cropped
  back to ``[left, left + L)`` so output frame i belongs to input frame i.
  (The reference implementation right-pads and then takes the *last* L
  frames, which desynchronises 2D and 3D; see REFERENCE §3.)
* L >= window: overlapping windows start every ``stride`` frames, the last
  one is aligned with the clip's end, and overlapping predictions are averaged
  with a smooth taper so there is no visible jump at window boundaries.
"""
from __future__ import annotations

import numpy as np


def window_starts(length: int, window: int, stride: int) -> np.ndarray:
    """Start indices of windows covering ``length`` frames (length >= window).

    Windows start at 0, stride, 2*stride, ... and one more window ends exactly at
    the last frame if needed. Returns (N,) int64.
    """
    if length < window:
        raise ValueError(f"length {length} < window {window}; pad first")
    if stride < 1:
        raise ValueError("stride must be >= 1")
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return np.asarray(starts, dtype=np.int64)


def pad_edges(x: np.ndarray, left: int, right: int) -> np.ndarray:
    """Repeat the first frame ``left`` times and the last ``right`` times. x: (L, ...)."""
    if left == 0 and right == 0:
        return x
    return np.concatenate([np.repeat(x[:1], left, 0), x, np.repeat(x[-1:], right, 0)], axis=0)


def blend_weights(window: int) -> np.ndarray:
    """Per-frame weights of one window, (window,) float64, > 0 everywhere.

    A raised-cosine taper: frames near a window's centre (where the model sees
    context on both sides) count most; edges still count a little so that the
    clip's first and last frames, covered by one window only, stay defined.
    """
    if window == 1:
        return np.ones(1)
    i = np.arange(window)
    return 0.05 + np.sin(np.pi * (i + 0.5) / window) ** 2


def split_windows(x: np.ndarray, window: int, stride: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Cut a sequence into windows.

    x: (L, ...) with L >= 1.
    Returns (windows (N, window, ...), starts (N,) in padded coordinates,
    left padding). When L < window the sequence is first edge-padded, centred.
    """
    length = len(x)
    if length == 0:
        raise ValueError("cannot lift an empty sequence")
    left = 0
    if length < window:
        left = (window - length) // 2
        x = pad_edges(x, left, window - length - left)
    starts = window_starts(len(x), window, stride)
    windows = np.stack([x[s:s + window] for s in starts])
    return windows, starts, left


def merge_windows(predictions: np.ndarray, starts: np.ndarray, length: int, left: int) -> np.ndarray:
    """Blend window predictions back to one sequence.

    predictions: (N, window, ...) outputs of the windows from :func:`split_windows`.
    starts, left: as returned by :func:`split_windows`; length: the original L.
    Returns (L, ...), frame-aligned with the input.
    """
    n, window = predictions.shape[:2]
    padded_len = max(length, window) if left == 0 else window
    w = blend_weights(window).reshape((window,) + (1,) * (predictions.ndim - 2))
    acc = np.zeros((padded_len,) + predictions.shape[2:], dtype=np.float64)
    wsum = np.zeros((padded_len,) + (1,) * (predictions.ndim - 2), dtype=np.float64)
    for p, s in zip(predictions, starts):
        acc[s:s + window] += p * w
        wsum[s:s + window] += w
    out = acc / wsum
    return out[left:left + length].astype(predictions.dtype)
