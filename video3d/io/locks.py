"""Advisory file locks (``fcntl.flock``) for jobs sharing an output folder.

A lock is held by an open file descriptor, so the kernel releases it when the
process ends, however it ends (SIGKILL included): a lock can never go stale.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; jobs are not protected from each other there
    fcntl = None


@contextmanager
def exclusive_lock(path: str | Path, blocking: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock on ``path`` (created if needed) for the ``with`` block.

    Yields True when the lock is held; with ``blocking=False`` yields False
    at once when another process holds it. The holder's PID is written into
    the file so a refusal can name it.
    """
    path = Path(path)
    is_dir = path.is_dir()  # a folder can be locked too (nothing is written into it then)
    fd = os.open(path, os.O_RDONLY) if is_dir else os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            if not is_dir:
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
        yield True
    finally:
        os.close(fd)  # releases the lock


def lock_holder(path: str | Path) -> str:
    """The PID written by the current holder of ``path`` ('?' if unknown)."""
    try:
        return Path(path).read_text().strip() or "?"
    except OSError:
        return "?"
