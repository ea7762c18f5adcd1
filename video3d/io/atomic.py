"""Atomic outputs: results appear complete or not at all.

Work happens in a hidden temporary sibling (same folder, so the final rename
never crosses file systems); on success it is renamed over the destination,
on any exception (Ctrl-C included) it is deleted and the destination is left
as it was.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from video3d.errors import UserError


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` (and parents) if needed and check files can be written in it.

    Returns the path. Raises UserError with one line if it cannot.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"output folder {path} is not writable: it is a file")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".video3d-write-test-"):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(f"output folder {path} is not writable: {reason}") from None
    return path


def _remove(path: Path) -> None:
    """Delete a file or folder tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Build a folder under a temporary name, then swap it in as ``final``.

    Yields the temporary folder ``<parent>/.<name>.partial-<pid>`` (created,
    empty). On success an existing ``final`` is renamed aside, the new folder
    renamed to ``final`` and the old one deleted; on exception the temporary
    folder is deleted and ``final`` is untouched.
    """
    final = Path(final)
    parent = ensure_writable_dir(final.parent)
    tmp = parent / f".{final.name}.partial-{os.getpid()}"
    _remove(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    old = parent / f".{final.name}.old-{os.getpid()}"
    if final.exists() or final.is_symlink():
        _remove(old)
        os.rename(final, old)
        try:
            os.rename(tmp, final)
        except BaseException:
            os.rename(old, final)  # put the previous result back
            _remove(tmp)
            raise
        _remove(old)
    else:
        try:
            os.rename(tmp, final)
        except BaseException:
            _remove(tmp)
            raise


@contextmanager
def atomic_file(final: str | Path) -> Iterator[Path]:
    """Write a file under a temporary name, then rename it to ``final``.

    Yields ``<parent>/.<stem>.partial-<pid><suffix>`` (the suffix is kept so
    writers that pick a format by extension still work). The caller must
    create it; on success it replaces ``final`` atomically, on exception it
    is deleted and ``final`` is untouched.
    """
    final = Path(final)
    parent = ensure_writable_dir(final.parent)
    tmp = parent / f".{final.stem}.partial-{os.getpid()}{final.suffix}"
    _remove(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"atomic_file: nothing was written to {tmp}")
        os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise
