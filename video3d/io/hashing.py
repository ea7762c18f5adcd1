"""Content hashes: one sha256 for files (weights, input videos) and one for settings."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from video3d.errors import UserError


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file's bytes. An unreadable file is one UserError line naming it."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(chunk), b""):
                h.update(block)
    except (PermissionError, IsADirectoryError) as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None
    return h.hexdigest()


def json_sha256(obj, length: int = 16) -> str:
    """Short hex sha256 of a JSON-serialisable object (keys sorted), e.g. a settings dict."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]
