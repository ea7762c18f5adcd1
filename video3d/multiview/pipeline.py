"""`video3d multiview`: several calibrated videos of the same people -> metric 3D in the calibration frame.

Data flow: read the calibration and match videos to cameras (by name, else by
order) -> check sizes and frame rates -> per view 2D (a list of candidate
people per view; today one per view from the single-person detectors) ->
cross-view association (:mod:`video3d.multiview.association`) ->
triangulation baseline and optional learned refinement
(:mod:`video3d.multiview.reconstruct`) -> data files, TRC, BVH -> grid render.
Everything is written into a staging folder renamed into place at the end.
"""
from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from video3d.errors import NoPersonError, UserError
from video3d.geometry.calibration import NamedCamera, read_calibration
from video3d.io.atomic import atomic_dir, ensure_writable_dir
from video3d.io.video import VideoInfo, iter_frames, probe
from video3d.multiview.association import PersonGroup, Track2D, associate
from video3d.multiview.reconstruct import Reconstruction, reconstruct
from video3d.progress import StageProgress

log = logging.getLogger(__name__)

METHODS = ("mvrt", "dlt")


@dataclass
class MultiviewOptions:
    """Everything `video3d multiview` can be told (CLI flags map 1:1)."""

    method: str = "dlt"
    weights: str | None = None
    detector: str = "blazepose"
    person: str = "auto"
    offsets: Sequence[int] = ()
    render: bool = True
    smooth: bool = True
    min_score: float = 0.3
    max_error_px: float = 20.0
    max_gap_s: float = 0.5
    max_render_height: int = 960
    viewer: bool = True


@dataclass
class View:
    """One input video matched to its calibrated camera."""

    name: str
    video: Path
    info: VideoInfo
    camera: object  # CalibratedCamera
    offset: int = 0


@dataclass
class MultiviewResult:
    out_dir: Path
    views: list[str]
    num_frames: int
    num_valid: int
    fps: float
    method: str
    people: int
    mean_reprojection_px: dict[str, float]
    notes: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


# ----------------------------------------------------------------------------- views
def match_views(videos: Sequence[Path], cameras: Sequence[NamedCamera], infos: Sequence[VideoInfo],
                offsets: Sequence[int] = ()) -> list[View]:
    """Pair each video with a camera: by camera name in the file name, else by order (equal counts).

    Raises UserError for too few videos, ambiguous/missing names, count, size or frame-rate mismatches.
    """
    if len(videos) < 2:
        raise UserError(f"multiview needs at least 2 videos, got {len(videos)}")
    if offsets and len(offsets) != len(videos):
        raise UserError(f"--offset was given {len(offsets)} times for {len(videos)} videos; give one per video or none")
    if any(o < 0 for o in offsets):
        raise UserError("--offset values are frames to skip at the start and must be >= 0")
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise UserError(f"calibration has duplicate camera names: {', '.join(names)}")
    chosen: list[int] = []
    for video in videos:
        stem = Path(video).stem.lower()
        exact = [i for i, n in enumerate(names) if n.lower() == stem]
        inside = [i for i, n in enumerate(names) if n.lower() in stem]
        hits = exact or ([max(inside, key=lambda i: len(names[i]))] if inside else [])
        chosen.append(hits[0] if hits else -1)
    by_name = -1 not in chosen and len(set(chosen)) == len(chosen)
    if not by_name:
        if len(videos) != len(cameras):
            raise UserError(f"cannot match {len(videos)} videos to the {len(cameras)} cameras of the calibration "
                            f"({', '.join(names)}): name each video after its camera, or give one video per camera in order")
        log.info("videos matched to cameras by order (%s)", ", ".join(names))
        chosen = list(range(len(videos)))
    views = []
    for k, (video, info, ci) in enumerate(zip(videos, infos, chosen)):
        cam = cameras[ci].camera
        if (info.width, info.height) != (cam.width, cam.height):
            raise UserError(f"{Path(video).name} is {info.width}x{info.height} but camera {names[ci]} of the "
                            f"calibration is {cam.width}x{cam.height}")
        views.append(View(names[ci], Path(video), info, cam, int(offsets[k]) if offsets else 0))
    fps = [v.info.fps for v in views]
    if max(fps) - min(fps) > 1e-3 * max(fps):
        raise UserError("videos have different frame rates (" + ", ".join(f"{v.video.name} {v.info.fps:g}"
                        for v in views) + "); multiview needs synchronised videos at one rate")
    return views


# ----------------------------------------------------------------------------- 2D
#: ``detect(view, num_frames, progress, person)`` -> candidate tracks of one view.
Detect = Callable[[View, int, StageProgress, str], list[Track2D]]


def make_detector(name: str):
    if name == "blazepose":
        from video3d.detect.blazepose import BlazePoseDetector
        return BlazePoseDetector()
    if name == "mmpose":
        from video3d.detect.mmpose import MMPoseDetector
        return MMPoseDetector()
    raise UserError(f"unknown --detector {name!r}; expected blazepose or mmpose")


def detect_view_candidates(view: View, num_frames: int, progress: StageProgress, *, detector_name: str = "blazepose",
                           person: str = "auto", max_gap_s: float = 0.5, detector=None) -> list[Track2D]:
    """Candidate people of one view over ``num_frames`` frames after its offset.

    With ``person == "all"`` and no detector given, the multi-person detector and identity
    tracker of `video3d run --person all` return one track per person (views then get
    matched across by reprojection); otherwise one track, the person ``person`` selects.
    """
    from video3d.detect.stage import detect_video
    from video3d.native_stderr import native_stderr_silenced

    if person == "all" and detector is None:
        return _everyone_in_view(view, num_frames, progress, detector_name, max_gap_s)
    rule = "auto" if person == "all" else person
    with native_stderr_silenced(not log.isEnabledFor(logging.DEBUG)):
        own = detector is None
        det = make_detector(detector_name) if own else detector
        try:
            frames = itertools.islice(iter_frames(view.video, view.info), view.offset, view.offset + num_frames)
            progress.start(f"2D {view.name}", num_frames)
            seq = detect_video(frames, det, fps=view.info.fps, image_size=(view.info.width, view.info.height),
                               num_frames_hint=num_frames, person=rule, max_gap_s=max_gap_s, progress=progress.advance)
            progress.finish()
        except NoPersonError:
            raise UserError(f"view {view.name} ({view.video.name}): no person detected in any frame") from None
        finally:
            if own:
                det.close()
    return [Track2D(keypoints=seq.keypoints_2d.astype(np.float64), scores=seq.scores_2d.astype(np.float64))]


def _everyone_in_view(view: View, num_frames: int, progress: StageProgress, detector_name: str,
                      max_gap_s: float) -> list[Track2D]:
    """One Track2D per identity that the multi-person stage follows in this view (NaN where unseen)."""
    from video3d.detect.people import detect_people
    from video3d.native_stderr import native_stderr_silenced
    from video3d.people import make_multi_detector
    from video3d.options import RunOptions

    with native_stderr_silenced(not log.isEnabledFor(logging.DEBUG)):
        det = make_multi_detector(RunOptions(detector=detector_name, person="all"))
        try:
            frames = itertools.islice(iter_frames(view.video, view.info), view.offset, view.offset + num_frames)
            progress.start(f"2D {view.name} (everyone)", num_frames)
            seqs = detect_people(frames, det, fps=view.info.fps, image_size=(view.info.width, view.info.height),
                                 max_gap_s=max_gap_s, progress=progress.advance)
            progress.finish()
        except NoPersonError:
            raise UserError(f"view {view.name} ({view.video.name}): no person detected in any frame") from None
        finally:
            det.close()
    tracks = []
    for s in seqs:
        kp = s.keypoints_2d.astype(np.float64)
        kp[~s.valid] = np.nan
        tracks.append(Track2D(keypoints=kp, scores=np.where(s.valid[:, None], s.scores_2d, 0.0).astype(np.float64)))
    return tracks


# ----------------------------------------------------------------------------- files
def trc_text(points: np.ndarray, fps: float, joint_names: Sequence[str], name: str = "skeleton.trc") -> str:
    """OpenSim TRC (Pose2Sim convention): metres, y up: (X, Y, Z)_trc = (y, z, x)_world (z-up world)."""
    T = len(points)
    yup = points[..., [1, 2, 0]]
    lines = [f"PathFileType\t4\t(X/Y/Z)\t{name}",
             "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
             f"{fps:.2f}\t{fps:.2f}\t{T}\t{len(joint_names)}\tm\t{fps:.2f}\t1\t{T}",
             "Frame#\tTime\t" + "\t\t\t".join(joint_names) + "\t\t",
             "\t\t" + "\t".join(f"X{j + 1}\tY{j + 1}\tZ{j + 1}" for j in range(len(joint_names))), ""]
    for t in range(T):
        vals = "\t".join("" if not np.isfinite(v) else f"{v:.5f}" for v in yup[t].ravel())
        lines.append(f"{t + 1}\t{t / fps:.5f}\t{vals}")
    return "\n".join(lines) + "\n"


def result_arrays(rec: Reconstruction, points2d: np.ndarray, scores2d: np.ndarray, views: Sequence[View],
                  fps: float, method: str, sha256: str) -> dict[str, np.ndarray]:
    from video3d import skeleton

    return {
        "keypoints_3d_world": rec.points.astype(np.float32),
        "valid": rec.valid.astype(bool),
        "keypoints_2d": points2d.astype(np.float32),
        "scores_2d": scores2d.astype(np.float32),
        "reprojection_error": rec.reprojection_error.astype(np.float32),
        "views_used": rec.views_used.astype(bool),
        "ignored_frames": (rec.ignored if rec.ignored is not None
                           else np.zeros(rec.views_used.shape[:2], bool)).astype(bool),
        "keypoints_3d_dlt": rec.dlt.astype(np.float32),
        "views": np.asarray([v.name for v in views]),
        "videos": np.asarray([v.video.name for v in views]),
        "offsets": np.asarray([v.offset for v in views], np.int64),
        "image_sizes": np.asarray([(v.info.width, v.info.height) for v in views], np.int64),
        "camera_R": np.stack([np.asarray(v.camera.R, np.float64) for v in views]),
        "camera_t": np.stack([np.asarray(v.camera.t, np.float64).reshape(3) for v in views]),
        "fps": np.float64(fps),
        "joint_names": np.asarray(skeleton.JOINT_NAMES),
        "parents": np.asarray(skeleton.PARENTS, np.int64),
        "method": np.asarray(method),
        "weights_sha256": np.asarray(sha256),
    }


def _jsonable(a: np.ndarray):
    if a.dtype.kind == "f":
        return np.where(np.isfinite(a), np.round(a.astype(np.float64), 5), None).tolist() if a.ndim else float(a)
    return a.tolist()


def write_files(out_dir: Path, arrays: dict[str, np.ndarray], notes: Sequence[str]) -> list[Path]:
    import csv
    import json

    from video3d.export.bvh import export_bvh

    paths = [out_dir / n for n in ("keypoints.npz", "keypoints.json", "keypoints_3d.csv", "skeleton.trc", "skeleton.bvh")]
    with open(paths[0], "wb") as f:
        np.savez_compressed(f, **arrays)
    data = {k: _jsonable(v) for k, v in arrays.items()}
    data["notes"] = list(notes)
    paths[1].write_text(json.dumps(data, separators=(",", ":")))
    X, fps, names = arrays["keypoints_3d_world"], float(arrays["fps"]), [str(n) for n in arrays["joint_names"]]
    err, used = arrays["reprojection_error"], arrays["views_used"]
    with open(paths[2], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["frame", "time_s", "joint_index", "joint", "x_world", "y_world", "z_world",
                    "reprojection_error_px", "views_used", "valid"])
        with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
            __import__("warnings").simplefilter("ignore", RuntimeWarning)
            mean_err = np.nanmean(err, axis=0)
        for t in range(len(X)):
            for j, name in enumerate(names):
                w.writerow([t, f"{t / fps:.4f}", j, name, *(f"{v:.5f}" if np.isfinite(v) else "" for v in X[t, j]),
                            f"{mean_err[t, j]:.2f}" if np.isfinite(mean_err[t, j]) else "", int(used[:, t, j].sum()),
                            int(arrays["valid"][t])])
    paths[3].write_text(trc_text(X.astype(np.float64), fps, names))
    export_bvh(paths[4], X, fps)
    return paths


# ----------------------------------------------------------------------------- render
def grid_layout(num_tiles: int) -> tuple[int, int]:
    """(columns, rows) of a near-square grid."""
    cols = int(np.ceil(np.sqrt(num_tiles)))
    return cols, int(np.ceil(num_tiles / cols))


def render_grid(path: Path, views: Sequence[View], points3d: np.ndarray, num_frames: int, fps: float,
                max_height: int, progress: StageProgress) -> None:
    """H.264 grid: every view with the reprojected 3D skeleton, plus the 3D panel."""
    import cv2

    from video3d.io.writer import VideoWriter
    from video3d.render.annotators import SkeletonAnnotator, draw_title
    from video3d.render.view3d import SkeletonView3D

    cols, rows = grid_layout(len(views) + 1)
    tile_h = max(64, (max_height // rows) // 2 * 2)
    aspect = max(v.info.width / v.info.height for v in views)
    tile_w = max(64, int(round(tile_h * aspect)) // 2 * 2)
    annot = SkeletonAnnotator()
    panel = SkeletonView3D(size=(tile_w, tile_h))
    streams = [itertools.islice(iter_frames(v.video, v.info), v.offset, v.offset + num_frames) for v in views]
    progress.start("render", num_frames)
    with VideoWriter(path, fps, (cols * tile_w, rows * tile_h)) as out:
        for t, frames in enumerate(zip(*streams)):
            canvas = np.full((rows * tile_h, cols * tile_w, 3), 255, np.uint8)
            for k, (view, frame) in enumerate(zip(views, frames)):
                s = min(tile_w / view.info.width, tile_h / view.info.height)
                w, h = int(round(view.info.width * s)), int(round(view.info.height * s))
                img = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
                with np.errstate(invalid="ignore"):
                    uv = view.camera.project(points3d[t]) * s
                annot.annotate(img, uv)
                draw_title(img, view.name)
                r, c = divmod(k, cols)
                y0, x0 = r * tile_h + (tile_h - h) // 2, c * tile_w + (tile_w - w) // 2
                canvas[y0:y0 + h, x0:x0 + w] = img
            r, c = divmod(len(views), cols)
            panel.render(points3d[t], title="3D (calibration frame)",
                         out=canvas[r * tile_h:(r + 1) * tile_h, c * tile_w:(c + 1) * tile_w])
            out.write(canvas)
            progress.advance()
    progress.finish()


# ----------------------------------------------------------------------------- command
def people_2d(views: Sequence[View], num_frames: int, options: MultiviewOptions, progress: StageProgress,
              detect: Detect | None = None) -> tuple[list[list[Track2D]], list[PersonGroup], list[str]]:
    """Per-view candidates, associated into people (views that followed someone else detected again).

    Returns (candidates per view, all of one length; groups, best first; notes naming views).
    Raises UserError for a view without anyone or when no person is seen by two views.
    """
    if detect is None:
        def detect(view, n, prog, person):  # noqa: E306
            return detect_view_candidates(view, n, prog, detector_name=options.detector, person=person,
                                          max_gap_s=options.max_gap_s)
    candidates = [detect(v, num_frames, progress, options.person) for v in views]
    for v, cands in zip(views, candidates):
        if not cands:
            raise UserError(f"view {v.name} ({v.video.name}): no person detected in any frame")
    n = min(len(c.keypoints) for cands in candidates for c in cands)
    candidates = [[Track2D(c.keypoints[:n], c.scores[:n]) for c in cands] for cands in candidates]
    groups = associate(candidates, [v.camera for v in views])
    if groups and options.person in ("auto", "all"):
        groups = _recover_left_out_views(groups, candidates, views, n, progress, detect)
    if not groups:
        raise UserError("no person is seen consistently by two or more views (check the calibration and --offset)")
    notes = [note.replace(f"view {k} ", f"view {views[k].name} ") for g in groups for note in g.notes
             for k in range(len(views)) if f"view {k} " in note]
    if options.person == "all" and len(groups) == 1:
        notes.append("--person all: only one person is seen consistently by two or more views")
    return candidates, groups, notes


def _recover_left_out_views(groups: list[PersonGroup], candidates: list[list[Track2D]], views: Sequence[View],
                            num_frames: int, progress: StageProgress, detect: Detect) -> list[PersonGroup]:
    """A view whose detector followed someone else: detect it again, asking for the person found where
    the other views' triangulation projects (its pelvis in the first frame), and associate again.
    ``candidates`` is extended in place."""
    from video3d.geometry.triangulation import triangulate

    g = groups[0]
    left_out = [v for v, m in enumerate(g.members) if m is None]
    if not left_out:
        return groups
    good = [v for v, m in enumerate(g.members) if m is not None]
    pts = np.stack([candidates[v][g.members[v]].keypoints for v in good])
    sc = np.stack([candidates[v][g.members[v]].scores for v in good])
    pelvis = triangulate(pts[:, :, 0], sc[:, :, 0], [views[v].camera for v in good]).points  # (T, 3)
    ok = np.flatnonzero(np.isfinite(pelvis).all(-1))
    if len(ok) == 0:
        return groups
    for v in left_out:
        view = views[v]
        u, w = view.camera.project(pelvis[ok[0]])
        if not (0 <= u < view.info.width and 0 <= w < view.info.height):
            continue  # the person is outside this view: nothing to pick there
        log.info("view %s followed someone else; detecting again around (%.0f, %.0f)", view.name, u, w)
        candidates[v].extend(detect(view, num_frames, progress, f"{u:.0f},{w:.0f}"))
    n = min(len(c.keypoints) for cands in candidates for c in cands)
    for cands in candidates:
        cands[:] = [Track2D(c.keypoints[:n], c.scores[:n]) for c in cands]
    regrouped = associate(candidates, [view.camera for view in views])
    if regrouped and regrouped[0].num_views > g.num_views:
        regrouped[0].notes = g.notes + [f"view {v} was detected again at the others' person and now agrees"
                                        for v in left_out if regrouped[0].members[v] is not None]
        return regrouped
    return groups


def load_method(options: MultiviewOptions):
    """(model or None, method name, weights sha256)."""
    if options.method not in METHODS:
        raise UserError(f"--method must be one of {', '.join(METHODS)}, got {options.method!r}")
    if options.method == "dlt":
        return None, "dlt", ""
    from video3d.multiview.learned import load_model

    model, card = load_model(options.weights)
    return model, card.get("name", "mvrt"), card["sha256"]


def run_multiview(videos: Sequence[str | Path], calib: str | Path, out: str | Path = "outputs",
                  name: str | None = None, options: MultiviewOptions | None = None,
                  progress: StageProgress | None = None, detect: Detect | None = None) -> MultiviewResult:
    """Run the whole command; ``detect(view, num_frames, progress)`` replaces the 2D detector (tests)."""
    options = options or MultiviewOptions()
    progress = progress or StageProgress(None)
    if options.person not in ("auto", "all", "largest", "center") and "," not in options.person:
        raise UserError(f"--person must be auto, all, largest, center or 'x,y', got {options.person!r}")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    videos = [Path(v) for v in videos]
    if len(videos) < 2:
        raise UserError(f"multiview needs at least 2 videos, got {len(videos)}")
    cameras = read_calibration(calib)
    infos = [probe(v) for v in videos]
    views = match_views(videos, cameras, infos, options.offsets)
    model, method, sha = load_method(options)
    out = Path(out)
    ensure_writable_dir(out)
    fps = views[0].info.fps
    counts = [v.info.num_frames_header - v.offset if v.info.num_frames_header else None for v in views]
    num_frames = min(c for c in counts if c is not None) if any(c is not None for c in counts) else None
    if num_frames is None or num_frames <= 0:
        raise UserError("the videos have no frames left after the --offset values")

    t = time.perf_counter()
    candidates, groups, notes = people_2d(views, num_frames, options, progress, detect)
    num_frames = len(candidates[0][0].keypoints)
    timings["detect 2D"] = time.perf_counter() - t

    t = time.perf_counter()
    cams = [v.camera for v in views]
    people: list[tuple[PersonGroup, Reconstruction, np.ndarray, np.ndarray]] = []
    for g in (groups if options.person == "all" else groups[:1]):
        pts = np.full((len(views), num_frames, 17, 2), np.nan)
        sc = np.zeros((len(views), num_frames, 17))
        for v, m in enumerate(g.members):
            if m is not None:
                pts[v], sc[v] = candidates[v][m].keypoints, candidates[v][m].scores
        rec = reconstruct(pts, sc, cams, fps, method=method if model is not None else "dlt", model=model,
                          min_score=options.min_score, max_error_px=options.max_error_px, smooth=options.smooth)
        people.append((g, rec, pts, sc))
    timings["3D"] = time.perf_counter() - t
    ignored = people[0][1].ignored
    if ignored is not None:
        notes += [f"view {v.name}: {int(ignored[k].sum())} frames disagree with the other views (the 2D follows "
                  "someone else there) and were ignored" for k, v in enumerate(views) if ignored[k].any()]
    for n in notes:
        log.warning(n)
    _, rec, pts, sc = people[0]
    if not rec.valid.any():
        raise UserError("no frame could be reconstructed: the views never saw the person together "
                        "(check the calibration, the camera order and --offset)")

    final = out / (name or "multiview")
    with atomic_dir(final) as staging:
        t = time.perf_counter()
        arrays = result_arrays(rec, pts, sc, views, fps, method, sha)
        files = write_files(staging, arrays, notes)
        if options.person == "all":
            P = np.stack([r.points for _, r, _, _ in people]).astype(np.float32)
            with open(staging / "people.npz", "wb") as f:
                np.savez_compressed(f, keypoints_3d_world=P, valid=np.stack([r.valid for _, r, _, _ in people]),
                                    keypoints_2d=np.stack([p for _, _, p, _ in people]).astype(np.float32),
                                    reprojection_error=np.stack([r.reprojection_error for _, r, _, _ in people]).astype(np.float32),
                                    views=arrays["views"], fps=arrays["fps"], joint_names=arrays["joint_names"],
                                    parents=arrays["parents"], method=arrays["method"])
            files.append(staging / "people.npz")
        timings["export"] = time.perf_counter() - t
        if options.render:
            t = time.perf_counter()
            render_grid(staging / "multiview.mp4", views, rec.points, num_frames, fps, options.max_render_height, progress)
            files.append(staging / "multiview.mp4")
            timings["render"] = time.perf_counter() - t
        if options.viewer:
            from video3d.viewer import write_viewer

            files.append(write_viewer(staging, page_dir=final))
    timings["total"] = time.perf_counter() - t0
    with np.errstate(invalid="ignore"), __import__("warnings").catch_warnings():
        __import__("warnings").simplefilter("ignore", RuntimeWarning)
        kept = rec.reprojection_error if rec.ignored is None else \
            np.where(rec.ignored[..., None], np.nan, rec.reprojection_error)
        mean_err = {v.name: float(np.nanmean(kept[k])) for k, v in enumerate(views)}  # over frames not ignored
    return MultiviewResult(out_dir=final, views=[v.name for v in views], num_frames=num_frames,
                           num_valid=int(rec.valid.sum()), fps=fps, method=method, people=len(people),
                           mean_reprojection_px=mean_err, notes=notes, files=[final / f.name for f in files],
                           timings=timings)
