"""Live display and final table for `video3d batch`."""
from __future__ import annotations

from pathlib import Path

from rich.live import Live
from rich.table import Table

from video3d.batch import SUCCESS, run_batch
from video3d.options import RunOptions
from video3d.progress import console, make_progress


def run_batch_with_display(root: Path, out: Path, options: RunOptions, patterns, recursive: bool, workers: int,
                           force: bool, runner=None) -> bool:
    """Run the batch with an overall bar plus one line per running video; True if all succeeded."""
    progress = make_progress()
    overall = progress.add_task("videos", total=None, rate="")
    running: dict[str, int] = {}

    def on_event(kind, name, result):
        if progress.tasks[overall].total is None:
            progress.update(overall, total=0)
        if kind == "start":
            if name in running:  # retried after a worker crash: same line, same count
                return
            running[name] = progress.add_task(f"  {name[:30]}", total=None, rate="running")
            progress.update(overall, total=progress.tasks[overall].total + 1)
        elif kind == "skip":
            progress.update(overall, total=progress.tasks[overall].total + 1, advance=1)
        else:
            task = running.pop(name, None)
            if task is not None:
                progress.remove_task(task)
            progress.advance(overall)
            if result.status == "failed":
                progress.console.print(f"[red]failed[/] {name}: {result.error}", highlight=False)

    with Live(progress, console=console, refresh_per_second=4, transient=True):  # the table below stays
        results = run_batch(root, out, options, patterns, recursive, workers, force, on_event=on_event,
                            runner=runner)
    return show_results(results, out, options.viewer)


def show_results(results, out: Path, viewer: bool = False) -> bool:
    """Final table on stderr; True if every video succeeded (ok, skipped or exported)."""
    table = Table(title=f"batch: {len(results)} videos -> {out}")
    for col in ("video", "status", "frames", "seconds", "error"):
        table.add_column(col)
    for r in results:
        colour = {"ok": "green", "skipped": "cyan", "exported": "green"}.get(r.status, "red")
        table.add_row(Path(r.video).name, f"[{colour}]{r.status}[/]", str(r.frames), f"{r.seconds:.1f}", r.error)
    console.print(table)
    console.print(f"summary: {out / 'summary.csv'}")
    if viewer:
        console.print(f"viewers: {out / 'index.html'}")
    return all(r.status in SUCCESS for r in results)
