"""SIGTERM and SIGHUP behave like Ctrl-C.

:func:`signals_interrupt` makes them raise :class:`Interrupted` (a
``KeyboardInterrupt``), so the same ``except``/``finally`` blocks that clean up
after Ctrl-C (staging folders, worker pools) run for ``kill`` and a closed
terminal too. A second signal during that cleanup is ignored.
"""
from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator

HANDLED = tuple(s for s in (signal.SIGINT, getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None))
                if s is not None)


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread when a stop signal arrives; ``signum`` says which."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """128 + signal number, as shells report: 130 (Ctrl-C), 143 (SIGTERM), 129 (SIGHUP)."""
        return 128 + int(self.signum)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


class StopRecord:
    """What :func:`signals_interrupt` saw: ``signal`` is the Interrupted raised, or None."""

    def __init__(self):
        self.signal: Interrupted | None = None


@contextmanager
def signals_interrupt() -> Iterator[StopRecord]:
    """Within the block, SIGINT/SIGTERM/SIGHUP raise :class:`Interrupted` (main thread only).

    Yields a :class:`StopRecord`, so a caller whose library swallowed the
    exception (typer turns KeyboardInterrupt into exit code 130) still knows
    which signal stopped the work.
    """
    record = StopRecord()

    def _raise(signum, frame):
        for s in HANDLED:  # clean up in peace
            signal.signal(s, signal.SIG_IGN)
        record.signal = Interrupted(signum)
        raise record.signal

    try:
        previous = {s: signal.signal(s, _raise) for s in HANDLED}
    except ValueError:  # not the main thread: leave signals alone
        yield record
        return
    try:
        yield record
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT/SIGTERM/SIGHUP back during a short critical section, then deliver them.

    Used around starting worker processes: an exception raised half-way
    through a spawn leaves a child that dies with a traceback on the shared
    stderr. A signal that arrives inside the block is passed to the handler
    that was in place (or re-raised) as soon as the block ends. Main thread only.
    """
    caught: list[int] = []
    try:
        previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in HANDLED}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        if caught:
            signum = caught[0]
            handler = previous[signum]
            if callable(handler):
                handler(signum, None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(signum)
