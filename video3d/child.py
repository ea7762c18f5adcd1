"""Run a part of the job in a child Python process, and never leave one behind.

A plain subprocess (``python -m video3d.<module> ARGS``) rather than
multiprocessing: nothing of the parent (MediaPipe's threads, torch, the
caller's ``__main__``) is forked or re-imported, callers need no
``if __name__ == "__main__"`` guard, and start-up is about a second (a
'spawn' child re-imported torch and cost ~15 s here). Input goes through the
child's stdin; results go to files the caller names; the child's stdout is
read line by line (progress) and the tail of its stderr becomes the error.

Children ignore Ctrl-C (the parent handles it and terminates them) and stop
on their own when the parent dies outright (:func:`exit_with_parent`).
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

from video3d.errors import UserError

#: seconds to wait for a terminated child before killing it
JOIN_TIMEOUT_S = 5.0


class PythonChild:
    """Context manager running ``python -m MODULE *args`` with ``stdin_data`` on its stdin.

    Args:
        module: the module to run (``video3d.render.worker``...).
        args: its command-line arguments.
        stdin_data: bytes written to the child's stdin, which is then closed.
        what: how errors name the child ("3D animation render process").
        on_line: called with each line the child prints on stdout (from a
            reader thread); default: stdout is discarded.

    Example::

        with PythonChild("video3d.render.worker", args, data, "render process") as child:
            ...other work here...
            child.wait()      # raises UserError if the child failed

    Leaving the block with an exception terminates (then kills) the child.
    """

    def __init__(self, module: str, args: list[str], stdin_data: bytes = b"", what: str = "child process",
                 on_line: Callable[[str], None] | None = None) -> None:
        self.module = module
        self.args = [str(a) for a in args]
        self.stdin_data = stdin_data
        self.what = what
        self.on_line = on_line
        self._proc: subprocess.Popen | None = None
        self._err = None
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> "PythonChild":
        import video3d

        env = dict(os.environ)
        root = str(Path(video3d.__file__).resolve().parent.parent)  # import this very package in the child
        env["PYTHONPATH"] = os.pathsep.join([root] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        self._err = tempfile.TemporaryFile()
        self._proc = subprocess.Popen([sys.executable, "-m", self.module, *self.args], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE if self.on_line else subprocess.DEVNULL,
                                      stderr=self._err, env=env)
        if self.on_line is not None:
            self._reader = threading.Thread(target=self._read_lines, daemon=True)
            self._reader.start()
        try:
            self._proc.stdin.write(self.stdin_data)
            self._proc.stdin.close()
        except BrokenPipeError:
            pass  # reported by wait()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_lines(self) -> None:
        for raw in self._proc.stdout:
            try:
                self.on_line(raw.decode(errors="replace").rstrip("\n"))
            except Exception:  # noqa: BLE001 - a progress callback must not kill the reader
                pass

    def poll(self) -> int | None:
        return self._proc.poll()

    def wait(self) -> None:
        """Block until the child is done; UserError with its last stderr line if it failed or died."""
        rc = self._proc.wait()
        if self._reader is not None:
            self._reader.join()
        if rc != 0:
            self._err.seek(0)
            lines = self._err.read().decode(errors="replace").strip().splitlines()
            why = lines[-1] if lines else f"exit status {rc}"
            raise UserError(f"{self.what} failed: {why}")

    def stop(self) -> None:
        """Terminate (then kill) the child if it is still running, and reap it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(JOIN_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._reader is not None:
            self._reader.join(JOIN_TIMEOUT_S)
        if self._err is not None:
            self._err.close()
            self._err = None

    def __enter__(self) -> "PythonChild":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        self.stop()


def exit_with_parent() -> Callable[[], None]:
    """In a child: ignore Ctrl-C and return a check that raises once the parent is gone.

    Call the check once per unit of work, so a child whose parent was killed
    outright (SIGKILL) stops instead of finishing alone.
    """
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is handled by the parent, which terminates us
    parent = os.getppid()

    def check() -> None:
        if os.getppid() != parent:
            raise RuntimeError("parent process exited")
    return check


def child_main(body: Callable[[], None]) -> int:
    """Run a child's ``body``; any exception becomes one stderr line and exit status 1."""
    try:
        body()
    except Exception as exc:  # noqa: BLE001 - one line for the parent's error message
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0
