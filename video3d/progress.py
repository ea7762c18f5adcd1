"""Rich progress bars and logging on stderr (data goes to files, never stdout noise)."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Iterator

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)
from rich.text import Text

console = Console(stderr=True)  # progress, logs, errors
report_console = Console()  # result tables a user may redirect (eval, bench)


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]", force=True,
                        handlers=[RichHandler(console=console, show_path=False, rich_tracebacks=False)])
    for noisy in ("matplotlib", "PIL", "absl"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


class _CountColumn(MofNCompleteColumn):
    """``done/total``, or nothing for a status line (a step without a count)."""

    def render(self, task):
        return Text("") if task.fields.get("status") else super().render(task)


def make_progress() -> Progress:
    return Progress(TextColumn("[bold]{task.description:<12}"), BarColumn(), _CountColumn(),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=console, transient=False)


class StageProgress:
    """Adapter giving pipeline stages a simple ``start(name, total)`` / ``advance()`` API."""

    def __init__(self, progress: Progress | None):
        self.progress = progress
        self.task = None

    def start(self, name: str, total: int | None) -> None:
        if self.progress is not None:
            self.task = self.progress.add_task(name, total=total, rate="")

    def status(self, name: str) -> None:
        """A step without a frame count (loading a model, lifting): a pulsing line until :meth:`finish`."""
        if self.progress is not None:
            self.task = self.progress.add_task(name, total=None, rate="", status=True)

    def advance(self, n: int = 1) -> None:
        if self.progress is not None and self.task is not None:
            self.progress.advance(self.task, n)
            t = self.progress.tasks[self.task]
            if t.elapsed:
                self.progress.update(self.task, rate=f"{t.completed / t.elapsed:5.1f} it/s")

    def update(self, done: int, total: int) -> None:
        """Absolute progress (``done`` of ``total``), for work that reports counts rather than steps."""
        if self.progress is not None and self.task is not None:
            self.progress.update(self.task, completed=done, total=total)

    def finish(self) -> None:
        if self.progress is not None and self.task is not None:
            t = self.progress.tasks[self.task]
            if t.fields.get("status"):
                self.progress.update(self.task, total=1, completed=1, rate="done")
            else:
                self.progress.update(self.task, total=t.completed)
        self.task = None


@contextmanager
def stage_progress(enabled: bool = True) -> Iterator[StageProgress]:
    if not enabled:
        yield StageProgress(None)
        return
    with make_progress() as p:
        yield StageProgress(p)
