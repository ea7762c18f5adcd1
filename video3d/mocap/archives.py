"""Compressed mocap archives (``*.tar.xz``) extracted once to the cache.

The shared mocap folder holds some sources as archives (``cmu-daz.tar.xz``,
``cmu-expmap.tar.xz``, ``reactidle.tar.xz``). Each is extracted on first use to
``<cache>/archives/<stem>-<key>/`` (outside the repository), where the key
hashes the archive's path, size and modification time, so a replaced archive
is extracted again. Extraction goes to a temporary folder renamed when
complete, so an interrupted run leaves no half-extracted tree behind.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
from os import PathLike
from pathlib import Path

from video3d.errors import UserError

ARCHIVE_SUFFIX = ".tar.xz"


def archive_key(path: Path) -> str:
    """Hex key of an archive: resolved path, size, mtime."""
    st = path.stat()
    return hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]


def find_archives(root: str | PathLike) -> list[Path]:
    """The ``*.tar.xz`` files directly in ``root`` (sorted)."""
    return sorted(p for p in Path(root).glob(f"*{ARCHIVE_SUFFIX}") if p.is_file())


def extract_archive(path: str | PathLike, cache_dir: str | PathLike) -> Path:
    """Extract ``path`` once under ``cache_dir/archives`` and return the folder holding its contents."""
    path = Path(path)
    stem = path.name[: -len(ARCHIVE_SUFFIX)] if path.name.endswith(ARCHIVE_SUFFIX) else path.stem
    base = Path(cache_dir) / "archives"
    dest = base / f"{stem}-{archive_key(path)}"
    if dest.is_dir():
        return dest
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".{dest.name}.{os.getpid()}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with tarfile.open(path, "r:xz") as tar:
            tar.extractall(tmp, filter="data")
        os.replace(tmp, dest)
    except (tarfile.TarError, OSError, EOFError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if dest.is_dir():   # another process finished first
            return dest
        raise UserError(f"{path}: cannot extract ({e})") from e
    return dest
