"""Reading the ``.npz`` files users hand to ``lift`` and ``export bvh``, with one-line errors.

Every problem (not a zip, a ``.npy`` renamed ``.npz``, pickled objects, a
missing key, a value of the wrong type or shape) is a :class:`UserError`
naming the file and the key.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from video3d.errors import UserError


def read_npz(path: str | Path) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` archive (never unpickles objects)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"input not found: {path}")
    try:
        z = np.load(path, allow_pickle=False)
    except PermissionError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise UserError(f"{path}: not a readable .npz file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise UserError(f"{path}: is a single .npy array, not an .npz archive of named arrays")
    try:
        with z:
            return {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise UserError(f"{path}: not a readable .npz file ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None


def require(data: dict, key: str, path: str | Path, expected: str = "") -> np.ndarray:
    """``data[key]``, or one line naming the missing key and what was found."""
    if key not in data:
        found = ", ".join(sorted(data)) or "none"
        hint = f" ({expected})" if expected else ""
        raise UserError(f"{path}: missing key {key!r}{hint}; found: {found}")
    return data[key]


def positive_scalar(data: dict, key: str, path: str | Path) -> float:
    """A finite number > 0 stored under ``key`` (e.g. fps)."""
    a = np.asarray(data[key])
    if a.size != 1 or a.dtype.kind not in "iuf":
        raise UserError(f"{path}: {key!r} must be one positive number, got {_show(a)}")
    v = float(a.reshape(-1)[0])
    if not (np.isfinite(v) and v > 0):
        raise UserError(f"{path}: {key!r} must be one positive number, got {v}")
    return v


def image_size(data: dict, key: str, path: str | Path) -> tuple[int, int]:
    """(width, height) > 0 stored under ``key``."""
    a = np.asarray(data[key])
    if a.dtype.kind not in "iuf" or a.size != 2:
        raise UserError(f"{path}: {key!r} must be (width, height) > 0, got {_show(a)}")
    a = a.reshape(-1).astype(np.float64)
    if not np.isfinite(a).all() or (a <= 0).any():
        raise UserError(f"{path}: {key!r} must be (width, height) > 0, got {a.tolist()}")
    return int(a[0]), int(a[1])


def _show(a: np.ndarray) -> str:
    text = np.array2string(a, threshold=6).replace("\n", " ")
    return f"{text} ({a.dtype}, shape {a.shape})"
