"""Atomic outputs: results appear complete or not at all.

Every file or folder video3d writes is built under a hidden temporary sibling
(same folder, so the final rename never crosses file systems) named

    ``.<name>.partial-<pid>-<start>@<host>[<suffix>]``

where ``<pid>``, ``<start>`` (the process start time in clock ticks, from
``/proc``) and ``<host>`` (this machine's name, letters, digits and ``_`` only)
identify the process that owns it. On success it is renamed over
the destination; on any exception (Ctrl-C and SIGTERM included) it is deleted
and the destination is left as it was. Leftovers of processes that were
killed (SIGKILL, power loss) are removed by :func:`remove_stale`, which only
touches entries whose owner is provably dead, so jobs sharing an output
folder never delete each other's work. A PID means nothing on another machine,
so on a shared file system (a Ray cluster writing to one folder) an entry
owned by another host is never removed here; the owner's host cleans it up.

Disk-full and permission errors while writing become one-line
:class:`~video3d.errors.UserError`\\ s naming the file.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

from video3d.errors import UserError

#: errno values that mean "the environment refused the write", not a bug.
_ENV_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}

_STAGING = re.compile(r"^\.(?P<name>.+?)\.(?P<kind>partial|old)-(?P<pid>\d+)(?:-(?P<start>\d+))?"
                      r"(?:@(?P<host>\w+))?(?P<suffix>\.\w+)?$")


# ------------------------------------------------------------ ownership
def process_start(pid: int) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux), None if unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])  # field 22; the name in (...) may hold spaces
    except (IndexError, ValueError):
        return None


def host_token() -> str:
    """This machine's name as it appears in staging names: letters, digits and ``_`` (at most 40)."""
    return re.sub(r"\W", "_", socket.gethostname(), flags=re.ASCII)[:40] or "host"


def owner_token(pid: int | None = None) -> str:
    """``<pid>-<start>@<host>`` of this (or the given local) process; without ``-<start>`` where
    /proc is absent."""
    pid = os.getpid() if pid is None else pid
    start = process_start(pid)
    return (f"{pid}" if start is None else f"{pid}-{start}") + f"@{host_token()}"


def owner_alive(pid: int, start: int | None, host: str | None = None) -> bool:
    """True unless process ``pid`` (started at ``start`` ticks, when known) of ``host`` (None:
    this machine, as in names written before hosts were recorded) is provably gone. A process
    of another host cannot be checked from here and counts as alive."""
    if host is not None and host != host_token():
        return True
    if pid == os.getpid() and (start is None or start == process_start(pid)):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    if start is None or not Path("/proc/self/stat").exists():
        return True  # cannot tell a reused PID apart: assume alive
    now = process_start(pid)
    return now is not None and now == start


def partial_path(final: str | Path) -> Path:
    """The staging name of ``final`` for this process (the suffix is kept for format sniffing)."""
    final = Path(final)
    if final.suffix and not final.name.startswith("."):
        return final.with_name(f".{final.stem}.partial-{owner_token()}{final.suffix}")
    return final.with_name(f".{final.name}.partial-{owner_token()}")


def remove_stale(folder: str | Path) -> list[Path]:
    """Delete staging leftovers in ``folder`` whose owning process is dead; returns what was removed.

    A result that was moved aside (``.<name>.old-...``) by a process killed
    before it could put the new one in place is restored when ``<name>`` is
    missing, and deleted otherwise. Entries of live processes are kept.
    """
    folder = Path(folder)
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for p in entries:
        m = _STAGING.match(p.name)
        if not m:
            continue
        start = int(m["start"]) if m["start"] else None
        if owner_alive(int(m["pid"]), start, m["host"]):
            continue
        if m["kind"] == "old":
            final = folder / m["name"]
            if not final.exists():
                try:
                    os.rename(p, final)
                    continue
                except OSError:
                    pass
        _remove(p)
        removed.append(p)
    return removed


# ------------------------------------------------------------ helpers
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


def check_destination(final: str | Path) -> Path:
    """Refuse (one line) when ``final`` exists but is not a folder: it is never deleted."""
    final = Path(final)
    if (final.exists() or final.is_symlink()) and not final.is_dir():
        raise UserError(f"{final} exists and is not a folder; move it away or choose another --out "
                        "(it was left as it is)")
    return final


def write_error(exc: OSError, path: str | Path) -> UserError | None:
    """The one-line UserError for an environment write failure (disk full, read-only, ...), else None."""
    if exc.errno not in _ENV_ERRNOS:
        return None
    return UserError(f"cannot write {exc.filename or path}: {exc.strerror or os.strerror(exc.errno)}")


def _remove(path: Path) -> None:
    """Delete a file or folder tree if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


# ------------------------------------------------------------ atomic writers
@contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Build a folder under a temporary name, then swap it in as ``final``.

    Yields the empty temporary folder ``<parent>/.<name>.partial-<pid>-<start>``.
    On success an existing ``final`` folder is renamed aside, the new folder
    renamed to ``final`` and the old one deleted; on exception the temporary
    folder is deleted and ``final`` is untouched. A regular file at ``final``
    is refused before anything is written.
    """
    final = check_destination(final)
    parent = ensure_writable_dir(final.parent)
    tmp = partial_path(final)
    _remove(tmp)
    tmp.mkdir()
    try:
        yield tmp
        check_destination(final)  # a file may have appeared meanwhile
    except OSError as e:
        _remove(tmp)
        name = str(e.filename or "")
        if name.startswith(str(tmp)):  # name the file as the user will look for it
            e.filename = str(final) + name[len(str(tmp)):]
        err = write_error(e, final)
        if err is None:
            raise
        raise err from None
    except BaseException:
        _remove(tmp)
        raise
    old = parent / f".{final.name}.old-{owner_token()}"
    if final.exists() or final.is_symlink():
        _remove(old)
        try:
            os.rename(final, old)
        except OSError as e:
            _remove(tmp)
            raise UserError(f"cannot move the earlier result {final} aside to replace it: "
                            f"{e.strerror or e}; nothing was changed") from None
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

    Yields ``<parent>/.<stem>.partial-<pid>-<start><suffix>`` (the suffix is
    kept so writers that pick a format by extension still work). The caller
    must create it; on success it replaces ``final`` atomically, on exception
    it is deleted and ``final`` is untouched. New files get the usual
    permissions (0666 minus the umask, so 0644 by default).
    """
    final = Path(final)
    tmp = partial_path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove(tmp)
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"atomic_file: nothing was written to {tmp}")
        os.replace(tmp, final)
    except OSError as e:
        _remove(tmp)
        err = write_error(e, final)
        if err is None:
            raise
        raise err from None
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def atomic_write(final: str | Path, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """``open(final, mode)`` that only appears under ``final`` once closed without error.

    ``mode`` is "w" or "wb"; text mode defaults to UTF-8 with "\\n" line ends.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', got {mode!r}")
    if mode == "w":
        open_kwargs.setdefault("encoding", "utf-8")
        open_kwargs.setdefault("newline", "\n")
    with atomic_file(final) as tmp:
        with open(tmp, mode, **open_kwargs) as f:
            yield f


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8); returns the path."""
    with atomic_write(path, "w") as f:
        f.write(text)
    return Path(path)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)
