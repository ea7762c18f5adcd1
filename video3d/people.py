"""``--person all``: everyone in the video, each with an identity, 3D and a trajectory.

Data flow (like :func:`video3d.pipeline.run_video`, per identity where it
matters): decode -> multi-person 2D (:class:`~video3d.detect.multi.MultiBlazePoseDetector`
or MMPose, which returns everyone) + identities (:mod:`video3d.detect.identity`)
-> one H36M-17 track per identity (:mod:`video3d.detect.people`) -> lift each
-> root trajectory -> files (``people.npz`` etc., and ``keypoints.npz`` for the
main person = the identity with most valid frames) -> overlay with every
person's skeleton, box and ID.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from video3d.errors import UserError
from video3d.export.people import shared_world
from video3d.export.files import write_pose_files
from video3d.io.atomic import atomic_dir
from video3d.io.video import VideoInfo, iter_frames
from video3d.lift.lifter import Lifter
from video3d.native_stderr import native_stderr_silenced
from video3d.pipeline import RunOptions, RunResult, lift_sequence, prepare_run, write_viewer_page
from video3d.pose import PoseSequence
from video3d.progress import StageProgress

log = logging.getLogger(__name__)


def make_multi_detector(options: RunOptions):
    """A detector returning everyone per frame for ``options.detector``."""
    if options.detector == "blazepose":
        from video3d.detect.multi import MultiBlazePoseDetector
        return MultiBlazePoseDetector()
    from video3d.options import make_detector
    return make_detector(options)  # MMPose is top-down over every detected person already


def detect_everyone(video: Path, info: VideoInfo, options: RunOptions, progress: StageProgress) -> list[PoseSequence]:
    from video3d.detect.people import detect_people

    quiet = not log.isEnabledFor(logging.DEBUG)
    with native_stderr_silenced(quiet):
        detector = make_multi_detector(options)
        try:
            progress.start("detect 2D (everyone)", info.num_frames_header or None)
            seqs = detect_people(iter_frames(video, info), detector, fps=info.fps,
                                 image_size=(info.width, info.height), max_gap_s=options.max_gap_s,
                                 progress=progress.advance)
            progress.finish()
        finally:
            detector.close()
    return seqs


def people_panel(world: np.ndarray, size: tuple[int, int]):
    """A 3D panel whose box holds everyone's whole trajectory: (SkeletonView3D, centre xy (2,)).

    world: (P, T, 17, 3) shared world frame (NaN where invalid).
    """
    from video3d.render.view3d import SkeletonView3D

    pelvis = world[:, :, 0, :2].reshape(-1, 2)
    pelvis = pelvis[np.isfinite(pelvis).all(axis=1)]
    if len(pelvis) == 0:
        return SkeletonView3D(size=size), np.zeros(2)
    lo, hi = pelvis.min(0), pelvis.max(0)
    radius = float(max(0.72, 0.5 * (hi - lo).max() + 0.6))
    top = np.nanmax(world[..., 2]) if np.isfinite(world[..., 2]).any() else 1.9
    height = float(max(1.9, min(top + 0.1, 4.0)))
    return SkeletonView3D(size=size, radius=radius, height=height, grid_step=0.2 if radius < 1.5 else 0.5), \
        0.5 * (lo + hi)


def render_people(video: Path, info: VideoInfo, seqs: list[PoseSequence], main: int, out_dir: Path,
                  options: RunOptions, progress: StageProgress) -> list[Path]:
    """overlay.mp4 (every person: skeleton, box, ID; 3D panel: everyone placed by their trajectories)
    and skeleton3d.mp4 (the main person)."""
    from video3d.io.writer import VideoWriter
    from video3d.render.composite import OverlayCompositor
    from video3d.render.people import draw_person

    comp = OverlayCompositor(frame_size=(info.width, info.height), max_height=options.max_render_height)
    world = shared_world(seqs)  # (P, T, 17, 3)
    world = np.where(np.stack([s.valid for s in seqs])[..., None, None], world, np.nan)
    panel, center = people_panel(world, comp.panel.size)
    lw = comp.left_size[0]
    overlay_path, skeleton_path = out_dir / "overlay.mp4", out_dir / "skeleton3d.mp4"
    main_seq = seqs[main]
    n = len(main_seq)
    progress.start("render", n)
    count = 0
    with VideoWriter(overlay_path, main_seq.fps, comp.output_size) as ov, \
            VideoWriter(skeleton_path, main_seq.fps, comp.skeleton_size) as sk:
        for t, frame in enumerate(iter_frames(video, info)):
            if t >= n:
                break
            frame = frame.copy()
            for p, s in enumerate(seqs):
                if s.valid[t]:
                    draw_person(frame, s.keypoints_2d[t], s.scores_2d[t], s.track_id,
                                annotator=comp.annotator, skeleton=p != main, min_score=comp.min_score)
            composed = comp.compose(frame, main_seq.keypoints_2d[t], main_seq.scores_2d[t], None)
            panel.render_many(world[:, t], center, title=comp.titles[1] or None, out=composed[:, lw:])
            ov.write(composed)
            sk.write(comp.skeleton_frame(main_seq.keypoints_3d_world[t]))
            progress.advance()
            count += 1
    progress.finish()
    if count != n:
        raise UserError(f"{video}: second decoding pass gave {count} frames, the first gave {n}")
    return [overlay_path, skeleton_path]


def run_people(video: str | Path, out: str | Path = "outputs", options: RunOptions | None = None,
               progress: StageProgress | None = None, lifter: Lifter | None = None,
               output_name: str | None = None) -> RunResult:
    """Everyone in ``video`` -> ``<out>/<stem>/`` with people.npz (+ keypoints.npz for the main person).

    Same staging/atomic rules as :func:`video3d.pipeline.run_video`.
    """
    from video3d.detect.people import main_person
    from video3d.export.people import write_people_files

    options = options or RunOptions(person="all")
    progress = progress or StageProgress(None)
    video = Path(video)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    info, final, lifter = prepare_run(video, out, options, progress, lifter, output_name)

    t = time.perf_counter()
    seqs = detect_everyone(video, info, options, progress)
    timings["decode+detect"] = time.perf_counter() - t
    t = time.perf_counter()
    for s in seqs:
        lift_sequence(s, lifter, options)
    timings["lift"] = time.perf_counter() - t
    main = main_person(seqs)
    log.info("%d people tracked (ids %s); main person: id %s", len(seqs),
             ", ".join(str(s.track_id) for s in seqs), seqs[main].track_id)

    with atomic_dir(final) as staging:
        t = time.perf_counter()
        files = write_pose_files(staging, seqs[main])
        files += write_people_files(staging, seqs, bvh=options.export_bvh)
        timings["export"] = time.perf_counter() - t
        if options.render:
            t = time.perf_counter()
            files += render_people(video, info, seqs, main, staging, options, progress)
            timings["decode+render"] = time.perf_counter() - t
        if options.viewer:
            files.append(write_viewer_page(staging, video, final))  # reads people.npz: every person
    timings["total"] = time.perf_counter() - t0
    summary = "; ".join(f"id {s.track_id}: {int(s.valid.sum())}/{len(s)} frames" for s in seqs)
    return RunResult(video=video, out_dir=final, num_frames=len(seqs[main]), fps=seqs[main].fps,
                     image_size=seqs[main].image_size, num_valid=int(seqs[main].valid.sum()), timings=timings,
                     files=[final / f.name for f in files], gaps=f"{len(seqs)} people: {summary}")
