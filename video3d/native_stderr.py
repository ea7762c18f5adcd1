"""Keep native libraries' console noise out of our stderr.

MediaPipe's C++ core prints INFO/WARNING lines (TFLite delegate creation,
absl pre-init notices, calculator warnings) directly to file descriptor 2,
before absl logging is initialised, so no environment variable silences them.
:func:`native_stderr_silenced` points descriptor 2 at /dev/null for the
duration of a block while Python's ``sys.stderr`` — our progress bars, logs
and error lines — keeps writing to the real stderr through a duplicate.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator, TextIO

_python_stderr: TextIO | None = None  # one long-lived duplicate of the real stderr


@contextmanager
def native_stderr_silenced(enabled: bool = True) -> Iterator[None]:
    if not enabled:
        yield
        return
    global _python_stderr
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):  # no real stderr (embedded, closed): nothing to do
        yield
        return
    if _python_stderr is None:
        _python_stderr = os.fdopen(os.dup(saved), "w", buffering=1)
    previous = sys.stderr
    redirect_python = getattr(previous, "fileno", None) is not None and _fileno(previous) == 2
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        if redirect_python:
            sys.stderr = _python_stderr
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        if redirect_python:
            _python_stderr.flush()
            sys.stderr = previous


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):
        return None
