"""Nearest valid frame: the one rule used wherever a missing frame borrows a neighbour's pose."""
from __future__ import annotations

import numpy as np

__all__ = ["nearest_valid_index"]


def nearest_valid_index(valid: np.ndarray) -> np.ndarray:
    """For every frame, the index of the nearest valid frame; the earlier one on ties.

    valid: (T,) bool with at least one True. Returns (T,) int64; valid frames map
    to themselves. Raises ValueError when no frame is valid.
    """
    valid = np.asarray(valid, dtype=bool)
    idx = np.flatnonzero(valid)
    if len(idx) == 0:
        raise ValueError("no valid frame to take the nearest of")
    t = np.arange(len(valid))
    after = np.clip(np.searchsorted(idx, t), 0, len(idx) - 1)
    before = np.clip(after - 1, 0, len(idx) - 1)
    return np.where(np.abs(idx[before] - t) <= np.abs(idx[after] - t), idx[before], idx[after]).astype(np.int64)
