"""Render the two result videos on two cores: overlay here, 3D animation in a child process.

`render_videos` (in `video3d.pipeline`) draws and encodes both videos in one
loop. Both only need per-frame data that is final once the whole-clip steps
(gap filling, smoothing, consistent bones, world levelling) are done, so the
standalone 3D animation (``skeleton3d.mp4``: needs only the (T, 17, 3) world
poses) is rendered and encoded in a second process while this process decodes
the video a second time and renders/encodes the overlay. Each video goes
through the same `VideoWriter` with the same settings as the sequential path,
so the files are byte-identical to it.

The child is a fresh ``python -m video3d.render.worker`` started through
:class:`video3d.child.PythonChild`. Errors in the child are re-raised here as one
`UserError`; when this process fails or is interrupted (KeyboardInterrupt,
SIGTERM turned into an exception by the caller) the child is terminated and
joined before the exception propagates, so no orphan process is left and the
caller's staging folder can be removed.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from video3d.child import PythonChild
from video3d.errors import UserError


def render_skeleton_video(path: Path, fps: float, poses_world: np.ndarray, max_height: int,
                          frame_size: tuple[int, int], check: Callable[[], None] | None = None) -> None:
    """Write the standalone 3D animation for ``poses_world`` (T, 17, 3) to ``path``.

    Uses the same `OverlayCompositor.skeleton_frame` as the sequential path.
    ``check`` is called before every frame and may raise to abort (the file is
    then not written).
    """
    from video3d.io.writer import VideoWriter
    from video3d.render.composite import OverlayCompositor
    from video3d.render.view3d import frame_counter

    comp = OverlayCompositor(frame_size=frame_size, max_height=max_height)
    with VideoWriter(path, fps, comp.skeleton_size) as sk:
        for t in range(len(poses_world)):
            if check is not None:
                check()
            sk.write(comp.skeleton_frame(poses_world[t], counter=frame_counter(t, fps, len(poses_world))))


def _main(argv: list[str]) -> int:
    """Child entry (``python -m video3d.render.worker PATH FPS MAX_HEIGHT W H``), poses as .npy on stdin."""
    from video3d.child import child_main, exit_with_parent

    parent_alive = exit_with_parent()
    path, fps, max_height, w, h = argv
    poses = np.load(io.BytesIO(sys.stdin.buffer.read()), allow_pickle=False)
    return child_main(lambda: render_skeleton_video(Path(path), float(fps), poses, int(max_height),
                                                    (int(w), int(h)), parent_alive))


class SkeletonRenderProcess(PythonChild):
    """`render_skeleton_video` in a child Python process (:class:`~video3d.child.PythonChild`).

    The poses go through its stdin as .npy.

    Example::

        with SkeletonRenderProcess(path, fps, world, 720, (w, h)) as child:
            ...render the overlay here...
            child.wait()      # raises UserError if the child failed

    Leaving the block with an exception terminates the child.
    """

    def __init__(self, path: Path, fps: float, poses_world: np.ndarray, max_height: int,
                 frame_size: tuple[int, int]) -> None:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(poses_world, np.float64), allow_pickle=False)
        super().__init__("video3d.render.worker",
                         [str(path), repr(float(fps)), str(int(max_height)), str(int(frame_size[0])),
                          str(int(frame_size[1]))],
                         buf.getvalue(), what="3D animation render process")


def render_videos_concurrent(video: Path, info, seq, out_dir: Path, options, progress) -> list[Path]:
    """Same files as `video3d.pipeline.render_videos`, the 3D animation rendered in a child process.

    Args:
        video, info: the source video and its probe (decoded a second time here).
        seq: the finished `PoseSequence` (keypoints_2d (T, 17, 2), scores_2d (T, 17),
            keypoints_3d_world (T, 17, 3)).
        out_dir: folder (the run's staging folder) for overlay.mp4 and skeleton3d.mp4.
    """
    from video3d.io.video import iter_frames
    from video3d.io.writer import VideoWriter
    from video3d.render.composite import OverlayCompositor
    from video3d.render.view3d import frame_counter

    comp = OverlayCompositor(frame_size=(info.width, info.height), max_height=options.max_render_height)
    overlay_path, skeleton_path = out_dir / "overlay.mp4", out_dir / "skeleton3d.mp4"
    audio = video if info.has_audio else None  # overlay.mp4 keeps the source's sound
    n = 0
    with SkeletonRenderProcess(skeleton_path, seq.fps, seq.keypoints_3d_world, options.max_render_height,
                               (info.width, info.height)) as child:
        progress.start("render", len(seq))
        with VideoWriter(overlay_path, seq.fps, comp.output_size, audio_from=audio) as ov:
            for t, frame in enumerate(iter_frames(video, info)):
                if t >= len(seq):
                    break
                ov.write(comp.compose(frame, seq.keypoints_2d[t], seq.scores_2d[t], seq.keypoints_3d_world[t],
                                      counter=frame_counter(t, seq.fps, len(seq))))
                progress.advance()
                n += 1
            if n != len(seq):
                raise UserError(f"{video}: second decoding pass gave {n} frames, the first gave {len(seq)}")
        child.wait()
        progress.finish()
    return [overlay_path, skeleton_path]


if __name__ == "__main__":
    import sys as _sys

    _sys.exit(_main(_sys.argv[1:]))
