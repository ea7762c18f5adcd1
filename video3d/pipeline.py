"""`run_video`: one video in, 2D + 3D keypoints, data files and renders out.

Data flow: decode -> detect (2D, person selection, gap filling) -> convert to
H36M-17 -> optional 2D smoothing -> lift (3D, camera frame) -> world frame ->
optional 3D smoothing -> export files -> render (second decoding pass).
Frames are streamed twice (detection, then rendering) instead of being held in
memory, so memory does not grow with video length.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from video3d.errors import UserError
from video3d.export.files import write_pose_files
from video3d.io.atomic import atomic_dir, check_destination, ensure_writable_dir, remove_stale
from video3d.io.video import VideoInfo, iter_frames, probe
from video3d.lift.lifter import Lifter
from video3d.lift.trajectory import root_trajectory
from video3d.lift.world import camera_to_display_world
from video3d.native_stderr import native_stderr_silenced
from video3d.options import RunOptions
from video3d.pose import PoseSequence
from video3d.progress import StageProgress

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    video: Path
    out_dir: Path
    num_frames: int
    fps: float
    image_size: tuple[int, int]
    num_valid: int
    timings: dict[str, float] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    gaps: str = ""

    def stage_fps(self) -> dict[str, float]:
        return {k: (self.num_frames / v if v > 0 else float("inf")) for k, v in self.timings.items()}


def detect_2d(info: VideoInfo, options: RunOptions, progress: StageProgress,
              while_waiting=None) -> PoseSequence:
    """Decode + 2D detection of the whole clip -> PoseSequence (H36M-17, gaps filled).

    BlazePose clips are cut into segments detected side by side on the
    machine's cores (:mod:`video3d.detect.segments`); the plan depends on the
    video only, so the keypoints are the same with any number of workers and
    with ``options.sequential``. ``while_waiting()`` is called once, when this
    process has detected its share (run_video warms the lifter up there while
    children finish).
    """
    from video3d.detect.gaps import default_max_gap
    from video3d.detect.segments import Segment, detect_segments, plan_segments, usable_cores
    from video3d.detect.stage import finish_track
    from video3d.detect.tracking import parse_person

    plan = [Segment(0, 0, None)]
    if options.detector == "blazepose":
        plan = plan_segments(info.num_frames_header or 0, info.fps)
    workers = 1 if options.sequential else min(options.detect_workers or usable_cores(), len(plan))
    quiet = not log.isEnabledFor(logging.DEBUG)  # --verbose shows the native libraries' own messages
    with native_stderr_silenced(quiet):
        progress.start("detect 2D", (info.num_frames_header or 0) + sum(s.start - s.warmup for s in plan) or None)
        raw, name, fmt = detect_segments(info, options, plan, workers=workers, progress=progress.advance,
                                         while_waiting=while_waiting)
        progress.finish()
    return finish_track(raw, detector=name, raw_format=fmt, fps=info.fps, image_size=info.size,
                        max_gap=default_max_gap(info.fps, options.max_gap_s), person=parse_person(options.person))


def lift_sequence(seq: PoseSequence, lifter: Lifter, options: RunOptions,
                  progress: StageProgress | None = None) -> PoseSequence:
    """Fill the 3D fields of ``seq`` (camera and world frames)."""
    kp2d = seq.keypoints_2d
    if options.smooth_2d != "none" or options.smooth_3d != "none":
        from video3d.filters import smooth  # scipy.signal: imported only when smoothing is asked for
    if options.smooth_2d != "none":
        kp2d = smooth(kp2d, seq.fps, options.smooth_2d)
    progress = progress or StageProgress(None)
    progress.status(f"lift 3D ({lifter.name})")
    cam = lifter.lift(kp2d, seq.image_size, valid=seq.valid, flip=options.flip)
    progress.finish()
    if options.fuse_detector_3d and seq.detector_3d is not None:
        from video3d.lift.fusion import fuse_with_detector_3d
        cam = fuse_with_detector_3d(cam, seq.detector_3d)
    if options.smooth_3d != "none":
        cam = smooth(cam, seq.fps, options.smooth_3d)
        cam = cam - cam[:, :1]
    if options.bones == "consistent":
        from video3d.lift.bones import consistent_bones
        cam = consistent_bones(cam, seq.valid)
    elif options.bones != "raw":
        raise UserError(f"--bones must be consistent or raw, got {options.bones!r}")
    seq.keypoints_3d_camera = cam
    seq.keypoints_3d_world = camera_to_display_world(cam)
    seq.root_translation = root_trajectory(cam, kp2d, seq.image_size, seq.fps, options.fov_deg,
                                           scores=seq.scores_2d, valid=seq.valid).astype(np.float32)
    seq.lifter = lifter.name
    seq.weights_sha256 = lifter.sha256
    return seq


def render_videos(video: Path, info: VideoInfo, seq: PoseSequence, out_dir: Path, options: RunOptions,
                  progress: StageProgress) -> list[Path]:
    """Second pass: MHFormer-style overlay (with the source's audio track) and the standalone 3D animation.

    Unless ``options.sequential``, the 3D animation is rendered in a child
    process at the same time (`video3d.render.worker`; identical files).
    """
    if not options.sequential:
        from video3d.render.worker import render_videos_concurrent
        return render_videos_concurrent(video, info, seq, out_dir, options, progress)
    from video3d.io.writer import VideoWriter
    from video3d.render.composite import OverlayCompositor
    from video3d.render.view3d import frame_counter

    comp = OverlayCompositor(frame_size=(info.width, info.height), max_height=options.max_render_height)
    overlay_path, skeleton_path = out_dir / "overlay.mp4", out_dir / "skeleton3d.mp4"
    progress.start("render", len(seq))
    n = 0
    audio = video if info.has_audio else None  # overlay.mp4 keeps the source's sound
    with VideoWriter(overlay_path, seq.fps, comp.output_size, audio_from=audio) as ov, \
            VideoWriter(skeleton_path, seq.fps, comp.skeleton_size) as sk:
        for t, frame in enumerate(iter_frames(video, info)):
            if t >= len(seq):
                break
            counter = frame_counter(t, seq.fps, len(seq))
            ov.write(comp.compose(frame, seq.keypoints_2d[t], seq.scores_2d[t], seq.keypoints_3d_world[t],
                                  counter=counter))
            sk.write(comp.skeleton_frame(seq.keypoints_3d_world[t], counter=counter))
            progress.advance()
            n += 1
    progress.finish()
    if n != len(seq):
        raise UserError(f"{video}: second decoding pass gave {n} frames, the first gave {len(seq)}")
    return [overlay_path, skeleton_path]


def prepare_run(video: Path, out: str | Path, options: RunOptions, progress: StageProgress,
                lifter: Lifter | None, output_name: str | None) -> tuple[VideoInfo, Path, Lifter]:
    """Checks and loads before any work: probe the video, make sure ``out`` is writable, remove
    staging left by killed jobs (only those whose process is gone), refuse a result path that
    is not ours (a regular file), and load the lifter unless one is given.

    Returns (video info, final result folder ``out/<name>``, lifter).
    """
    info = probe(video)
    out = Path(out)
    ensure_writable_dir(out)
    remove_stale(out)
    final = check_destination(out / (output_name or video.stem))
    if lifter is None:
        progress.status("load lifter")
        lifter = Lifter.load(options.lifter, options.weights, options.device)
        progress.finish()
    return info, final, lifter


def write_viewer_page(staging: Path, video: Path, final: Path) -> Path:
    """viewer.html in the staging folder (links resolved for its final place ``final``)."""
    from video3d.viewer import write_viewer

    return write_viewer(staging, source_video=video, page_dir=final)


def run_video(video: str | Path, out: str | Path = "outputs", options: RunOptions | None = None,
              progress: StageProgress | None = None, lifter: Lifter | None = None,
              output_name: str | None = None) -> RunResult:
    """Turn one video into 3D keypoints, data files and renders in ``<out>/<stem>/``.

    Everything is written into a staging folder renamed into place at the end,
    so a failed run leaves nothing half-written. ``lifter`` can be passed to
    reuse a loaded model across videos; ``output_name`` replaces the stem.
    """
    options = options or RunOptions()
    if options.person.strip().lower() == "all":
        from video3d.people import run_people
        return run_people(video, out, options, progress, lifter, output_name)
    progress = progress or StageProgress(None)
    video = Path(video)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    info, final, lifter = prepare_run(video, out, options, progress, lifter, output_name)

    t = time.perf_counter()
    seq = detect_2d(info, options, progress, while_waiting=lifter.warm_up)
    timings["decode+detect"] = time.perf_counter() - t
    t = time.perf_counter()
    lift_sequence(seq, lifter, options, progress)
    timings["lift"] = time.perf_counter() - t

    with atomic_dir(final) as staging:
        t = time.perf_counter()
        files = write_pose_files(staging, seq)
        if options.export_bvh:
            from video3d.export.bvh import BVH_NAME, export_bvh
            from video3d.export.people import shared_world
            export_bvh(staging / BVH_NAME, shared_world([seq])[0], seq.fps)  # root motion = trajectory
            files.append(staging / BVH_NAME)
        timings["export"] = time.perf_counter() - t
        if options.render:
            t = time.perf_counter()
            files += render_videos(video, info, seq, staging, options, progress)
            timings["decode+render"] = time.perf_counter() - t
        if options.viewer:
            files.append(write_viewer_page(staging, video, final))
    timings["total"] = time.perf_counter() - t0
    return RunResult(video=video, out_dir=final, num_frames=len(seq), fps=seq.fps, image_size=seq.image_size,
                     num_valid=int(seq.valid.sum()), timings=timings,
                     files=[final / f.name for f in files], gaps=seq.gap_summary)
