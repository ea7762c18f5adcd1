"""Child process detecting one segment of a clip (see :mod:`video3d.detect.segments`).

``python -m video3d.detect.worker`` reads a JSON job on stdin (video, run
options, first frame, stop, output path), prints
``frames N`` lines on stdout as it goes, and writes the segment's
:class:`~video3d.detect.stage.RawTrack` to the output path (atomically).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def _run(job: dict, parent_alive) -> None:
    from video3d.detect.segments import _SegmentRunner
    from video3d.io.atomic import atomic_file
    from video3d.io.video import probe
    from video3d.native_stderr import native_stderr_silenced
    from video3d.options import RunOptions

    options = RunOptions(**job["options"])
    pending = [0]

    def progress(n: int) -> None:
        parent_alive()
        pending[0] += n
        if pending[0] >= 10:
            print(f"frames {pending[0]}", flush=True)
            pending[0] = 0
    runner = _SegmentRunner(probe(job["video"]), options, progress)
    # The native libraries' messages would end up in the stderr the parent reads its error line from.
    with native_stderr_silenced():
        track = runner.here(int(job["first_frame"]), job["stop"], "auto")
    if pending[0]:
        print(f"frames {pending[0]}", flush=True)
    with atomic_file(Path(job["out"])) as tmp:
        track.save(tmp)


def main() -> int:
    from video3d.child import child_main, exit_with_parent

    parent_alive = exit_with_parent()
    data = sys.stdin.buffer.read()
    return child_main(lambda: _run(json.loads(data), parent_alive))


if __name__ == "__main__":
    sys.exit(main())
