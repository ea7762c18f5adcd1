"""`video3d` command line. Thin: parses flags, calls the library, prints summaries.

Errors a user can cause are printed as one line (``error: ...``) with exit
code 1; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import enum
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from video3d.detect.mmpose import POSE_PRESETS
from video3d.errors import UserError
from video3d.keypoints import FORMATS
from video3d.models.registry import DEFAULT_LIFTER, LIFTERS, preset_names
from video3d.progress import console, setup_logging, stage_progress

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode="rich",
                  help="Turn ordinary videos of people into 3D skeletons.\n\n"
                       "Examples:\n\n"
                       "  video3d run demo_videos/demo_walk.mp4\n\n"
                       "  video3d run clip.mp4 --lifter ampose --no-render --out results\n\n"
                       "  video3d batch videos/ --recursive --workers 2\n\n"
                       "  video3d lift keypoints.npz --format coco\n\n"
                       "  video3d train --arch ktpformer --preset small --epochs 20\n\n"
                       "  video3d eval --weights weights/ktpformer-mocap.safetensors")
export_app = typer.Typer(help="Convert results into other formats.", no_args_is_help=True)
app.add_typer(export_app, name="export")
log = logging.getLogger("video3d")
_state = {"debug": False}


@app.callback()
def _global(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors."),
            verbose: bool = typer.Option(False, "--verbose", "-v", help="More log output."),
            quiet: bool = typer.Option(False, "--quiet", "-q", help="Only warnings and errors.")) -> None:
    _state["debug"] = debug
    setup_logging(verbose=verbose or debug, quiet=quiet)


# ---------------------------------------------------------------- choices
def _choices(name: str, values) -> type[enum.Enum]:
    """A str Enum whose values are ``values``: typer validates it and lists the choices in --help."""
    return enum.Enum(name, {v: v for v in values}, type=str)


def _value(x):
    """An Enum choice (or a list of them) -> its plain string value(s); anything else unchanged."""
    if isinstance(x, list):
        return [_value(v) for v in x]
    return x.value if isinstance(x, enum.Enum) else x


#: ``video3d.filters.SMOOTHING_METHODS`` (not imported here: scipy makes --help slow; a test checks they agree).
SMOOTHING_CHOICES = ("none", "oneeuro", "savgol", "butterworth")

LifterName = _choices("LifterName", LIFTERS)
PresetName = _choices("PresetName", preset_names())
DetectorName = _choices("DetectorName", ("blazepose", "mmpose"))
Smoothing = _choices("Smoothing", SMOOTHING_CHOICES)
ExportFormat = _choices("ExportFormat", ("bvh",))
MMPosePreset = _choices("MMPosePreset", POSE_PRESETS)
KeypointFormat = _choices("KeypointFormat", FORMATS)
EvalInputs = _choices("EvalInputs", ("gt", "noisy", "both"))
BonesMode = _choices("BonesMode", ("consistent", "raw"))

_LIFTER_HELP = (f"2D->3D lifter ({'; '.join(spec.summary for spec in LIFTERS.values())}). "
                f"Default: the one in the --weights card, else {DEFAULT_LIFTER}. Given with --weights, "
                "the two must agree.")

# ---------------------------------------------------------------- options shared by run, batch, lift, eval
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Output folder; results go to OUT/<video stem>/.")]
LifterOpt = Annotated[Optional[LifterName], typer.Option(help=_LIFTER_HELP, show_default=False)]
Weights = Annotated[Optional[str], typer.Option(
    help="Lifter weights: a .safetensors file with its .json card beside it, or the name of shipped weights. "
         "Default: the shipped weights of --lifter.")]
Detector = Annotated[DetectorName, typer.Option(help="2D backend: blazepose (offline) or mmpose (optional extra).")]
Person = Annotated[str, typer.Option(
    help="Which person: auto (most prominent, tracked), largest, center, an 'x,y' pixel, "
         "or all (everyone, with identities: people.npz).")]
Fov = Annotated[float, typer.Option(
    help="Camera field of view across the long image side, degrees (root trajectory).")]
Viewer = Annotated[bool, typer.Option(
    "--viewer/--no-viewer", help="Write viewer.html (interactive 3D page; batch: also index.html).")]
BonesOpt = Annotated[BonesMode, typer.Option(
    metavar="MODE", help="consistent (one length per bone for the whole clip) or raw (as lifted).")]
Fuse = Annotated[bool, typer.Option(
    "--fuse/--no-fuse", help="Average the lifted 3D with the detector's own 3D (BlazePose world "
                             "landmarks) aligned onto it, when the detector gives one.")]
Device = Annotated[str, typer.Option(help="auto (CUDA if present), cpu, cuda or cuda:N.")]
Render = Annotated[bool, typer.Option("--render/--no-render", help="Write overlay.mp4 and skeleton3d.mp4.")]
Flip = Annotated[bool, typer.Option("--flip/--no-flip", help="Test-time flip averaging.")]
Smooth2D = Annotated[Smoothing, typer.Option(
    metavar="METHOD", help=f"Smooth the 2D keypoints before lifting: {', '.join(SMOOTHING_CHOICES)}.")]
Smooth3D = Annotated[Smoothing, typer.Option(
    metavar="METHOD", help=f"Smooth the 3D keypoints after lifting: {', '.join(SMOOTHING_CHOICES)}.")]
MaxGap = Annotated[float, typer.Option(help="Interpolate detection gaps up to this many seconds.")]
Export = Annotated[list[ExportFormat], typer.Option(
    "--export", metavar="FORMAT", help=f"Extra exports (repeatable): {', '.join(e.value for e in ExportFormat)}.")]
MMPosePresetOpt = Annotated[MMPosePreset, typer.Option(
    "--mmpose-preset", metavar="PRESET", help=f"MMPose 2D model: {', '.join(POSE_PRESETS)}.")]
PoseConfig = Annotated[Optional[str], typer.Option(help="MMPose pose config file (overrides the preset).")]
PoseCheckpoint = Annotated[Optional[str], typer.Option(help="MMPose pose checkpoint file.")]
DetConfig = Annotated[Optional[str], typer.Option(help="MMDetection person detector config file.")]
DetCheckpoint = Annotated[Optional[str], typer.Option(help="MMDetection person detector checkpoint file.")]


# ---------------------------------------------------------------- run
@app.command()
def run(
    video: Annotated[Path, typer.Argument(help="Input video file.", readable=False)],
    out: OutDir = Path("outputs"),
    lifter: LifterOpt = None,
    weights: Weights = None,
    detector: Detector = DetectorName.blazepose,
    person: Person = "auto",
    fov: Fov = 60.0,
    device: Device = "auto",
    render: Render = True,
    viewer: Viewer = True,
    flip: Flip = True,
    smooth_2d: Smooth2D = Smoothing.none,
    smooth_3d: Smooth3D = Smoothing.none,
    bones: BonesOpt = BonesMode.consistent,
    fuse: Fuse = True,
    max_gap: MaxGap = 0.5,
    export: Export = [],
    mmpose_preset: MMPosePresetOpt = MMPosePreset["hrnet-w32"],
    pose_config: PoseConfig = None,
    pose_checkpoint: PoseCheckpoint = None,
    det_config: DetConfig = None,
    det_checkpoint: DetCheckpoint = None,
) -> None:
    """Video in: 2D + 3D keypoints, overlay and 3D animation videos, data files out.

    Prints the result folder on stdout (progress and logs go to stderr), so
    out=$(video3d run clip.mp4) captures it.

    Example: video3d run demo_videos/demo_walk.mp4 --out outputs
    """
    options = _run_options(**locals())
    from video3d.pipeline import run_video

    with stage_progress() as progress:
        result = run_video(video, out, options, progress)
    _print_summary(result)
    typer.echo(str(result.out_dir))  # stdout: the one thing a script wants


def _run_options(**kw):
    from video3d.options import RunOptions

    kw = {k: _value(v) for k, v in kw.items()}
    return RunOptions(lifter=kw["lifter"], weights=kw["weights"], device=kw["device"], detector=kw["detector"],
                      person=kw["person"], render=kw["render"], flip=kw["flip"], max_gap_s=kw["max_gap"],
                      smooth_2d=kw["smooth_2d"], smooth_3d=kw["smooth_3d"], bones=kw.get("bones", "consistent"),
                      export_bvh="bvh" in kw["export"], viewer=kw["viewer"],
                      mmpose_preset=kw["mmpose_preset"], pose_config=kw["pose_config"],
                      pose_checkpoint=kw["pose_checkpoint"], det_config=kw["det_config"],
                      det_checkpoint=kw["det_checkpoint"], fov_deg=_check_fov(kw.get("fov", 60.0)),
                      fuse_detector_3d=kw.get("fuse", True))


def _check_fov(fov: float) -> float:
    if not 1.0 <= fov <= 170.0:
        raise UserError(f"--fov must be between 1 and 170 degrees, got {fov}")
    return float(fov)


def _print_summary(result) -> None:
    from rich.table import Table

    console.print(f"[bold]{result.video.name}[/]: {result.num_frames} frames ({result.num_valid} with a pose) "
                  f"at {result.fps:.2f} fps, {result.image_size[0]}x{result.image_size[1]}", highlight=False)
    t = Table()
    t.add_column("stage")
    t.add_column("seconds", justify="right")
    t.add_column("frames/s", justify="right")
    for stage, sec in result.timings.items():
        t.add_row(stage, f"{sec:.2f}", f"{result.num_frames / sec:.1f}" if sec > 0 else "-")
    console.print(t)
    if result.gaps:
        console.print(f"gaps: {result.gaps}")
    console.print(f"outputs in [bold]{result.out_dir}[/]: " + ", ".join(p.name for p in result.files))


# ---------------------------------------------------------------- batch
@app.command()
def batch(
    input_dir: Annotated[Path, typer.Argument(help="Folder of videos.", readable=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (one sub-folder per video).")] = Path("outputs"),
    pattern: Annotated[list[str], typer.Option(
        "--pattern", metavar="GLOB", help="Glob(s) to match (repeatable); default: common video extensions.")] = [],
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Search sub-folders too.")] = False,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", "-w", help="Worker processes (each loads the models once); default 1, with --ray: "
                                "as many videos at once as the Ray cluster has CPUs.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Redo videos that are already complete.")] = False,
    ray: Annotated[Optional[str], typer.Option(
        "--ray", metavar="[ADDRESS]", help="Run the videos as Ray tasks (extra: pip install 'video3d\\[ray]'). "
        "Alone: a local Ray runtime; ADDRESS: auto, ray://host:port or host:port joins a cluster.")] = None,
    gpus_per_video: Annotated[float, typer.Option(
        "--gpus-per-video", help="With --ray: GPUs each video reserves (e.g. 0.5 runs two per GPU).")] = 0.0,
    lifter: LifterOpt = None,
    weights: Weights = None,
    detector: Detector = DetectorName.blazepose,
    person: Person = "auto",
    fov: Fov = 60.0,
    device: Device = "auto",
    render: Render = True,
    viewer: Viewer = True,
    flip: Flip = True,
    smooth_2d: Smooth2D = Smoothing.none,
    smooth_3d: Smooth3D = Smoothing.none,
    bones: BonesOpt = BonesMode.consistent,
    fuse: Fuse = True,
    max_gap: MaxGap = 0.5,
    export: Export = [],
    mmpose_preset: MMPosePresetOpt = MMPosePreset["hrnet-w32"],
    pose_config: PoseConfig = None,
    pose_checkpoint: PoseCheckpoint = None,
    det_config: DetConfig = None,
    det_checkpoint: DetCheckpoint = None,
) -> None:
    """Convert every video in a folder; failures are isolated, re-runs skip finished videos.

    Writes OUT/<video>/... per video and OUT/summary.csv. Exit code 0 only if all succeeded.
    Example: video3d batch videos/ --recursive --workers 2 --export bvh
    """
    from video3d.batch import DEFAULT_PATTERNS
    from video3d.batch_display import run_batch_with_display

    options = _run_options(**{k: v for k, v in locals().items() if k not in (
        "input_dir", "out", "pattern", "recursive", "workers", "force", "ray", "gpus_per_video")})
    if workers is not None and workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    runner = None
    if ray is not None:
        from video3d.batch_ray import ray_runner

        runner = ray_runner(ray, gpus_per_video, workers=workers)
    elif gpus_per_video:
        raise UserError("--gpus-per-video needs --ray")
    ok = run_batch_with_display(input_dir, out, options, tuple(pattern) or DEFAULT_PATTERNS, recursive,
                                workers or 1, force, runner=runner)
    if not ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------- lift
@app.command()
def lift(
    input: Annotated[Path, typer.Argument(
        help="An .npz with keypoints (T,J,2) px and image_size (w,h), or a folder of them.", readable=False)],
    format: Annotated[KeypointFormat, typer.Option("--format", help="Joint order of 'keypoints'.")] = KeypointFormat.h36m,
    lifter: LifterOpt = None,
    weights: Weights = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("outputs/lifted"),
    device: Device = "auto",
    flip: Flip = True,
    bones: BonesOpt = BonesMode.consistent,
) -> None:
    """Lift 2D keypoints you already have to 3D (writes OUT/<stem>.npz with keypoints_3d).

    Example: video3d lift keypoints.npz --format coco --out lifted/
    """
    from video3d.io.atomic import ensure_writable_dir
    from video3d.lift.lift_io import read_lift_input, write_lift_output
    from video3d.lift.lifter import Lifter as LoadedLifter

    if not input.exists():
        raise UserError(f"input not found: {input}")
    if input.is_dir() and not os.access(input, os.R_OK | os.X_OK):
        raise UserError(f"cannot read input folder {input}: permission denied")
    files = sorted(input.glob("*.npz")) if input.is_dir() else [input]
    if not files:
        raise UserError(f"no .npz files in {input}")
    inputs = [read_lift_input(f, _value(format)) for f in files]  # validate everything before writing anything
    ensure_writable_dir(out)
    model = LoadedLifter.load(_value(lifter), weights, device)
    with stage_progress() as progress:
        for inp in inputs:
            progress.start(f"lift {inp.path.stem[:20]}", None)
            pose = model.lift(inp.keypoints, inp.image_size, flip=flip, progress=progress.update)
            if _value(bones) == "consistent":  # as `video3d run` does (no detector 3D to fuse here)
                import numpy as np

                from video3d.lift.bones import consistent_bones
                pose = consistent_bones(pose, np.isfinite(pose).all(axis=(1, 2)))
            progress.finish()
            path = write_lift_output(out, inp, pose, model.name, model.sha256)
            console.print(f"{inp.path.name}: {len(pose)} frames -> {path}")


# ---------------------------------------------------------------- train / eval
_DEFAULT_BATCH = ", ".join(f"{s.training['batch_size']} ({n})" for n, s in LIFTERS.items())
_DEFAULT_LR = ", ".join(f"{s.training['lr']:g} ({n})" for n, s in LIFTERS.items())
_PRESETS_HELP = "; ".join(f"{', '.join(s.presets)} ({n})" for n, s in LIFTERS.items())
_DEFAULT_PRESET = ", ".join(f"{s.training['preset']} ({n})" for n, s in LIFTERS.items())


@app.command()
def train(
    arch: Annotated[LifterName, typer.Option(help="Lifter architecture to train.")] = LifterName[DEFAULT_LIFTER],
    preset: Annotated[Optional[PresetName], typer.Option(
        metavar="PRESET", show_default=False,
        help=f"Model preset (docs/models.md): {_PRESETS_HELP}; default: {_DEFAULT_PRESET}.")] = None,
    mocap: Annotated[Optional[Path], typer.Option(
        help="Mocap folder (BVH / ASF+AMC); default: $VIDEO3D_MOCAP, else the shared data folder.")] = None,
    h36m_3d: Annotated[Optional[Path], typer.Option(
        help="data_3d_h36m.npz (VideoPose3D layout): train on Human3.6M instead.")] = None,
    h36m_2d: Annotated[Optional[Path], typer.Option(
        help="Human3.6M 2D keypoints, VideoPose3D's data_2d_h36m_*.npz (gt or CPN).")] = None,
    h36m_cameras: Annotated[Optional[Path], typer.Option(
        help="Optional camera JSON for Human3.6M (else recovered by DLT).")] = None,
    val_subjects: Annotated[Optional[str], typer.Option(
        help="Override the validation part with these subjects (default: the splits.json shipped in video3d/train).")] = None,
    sources: Annotated[str, typer.Option(
        help="Mocap sources: comma-separated cmu, daz, expmap, reactidle, all (or source keys).")] = "all",
    splits: Annotated[Optional[Path], typer.Option(
        help="Split definition JSON (default: the splits.json shipped in video3d/train).")] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 10,
    steps_per_epoch: Annotated[int, typer.Option(
        help="Optimiser steps per epoch (samples are synthesised on the fly).")] = 200,
    batch_size: Annotated[Optional[int], typer.Option(help=f"Windows per step; default: {_DEFAULT_BATCH}.")] = None,
    lr: Annotated[Optional[float], typer.Option(help=f"Learning rate; default (from the papers): {_DEFAULT_LR}.")] = None,
    lr_decay: Annotated[Optional[float], typer.Option(
        help="Learning-rate factor per epoch (exponential decay); default per architecture. "
             "With --resume it replaces the checkpoint's from the next epoch on.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Device = "auto",
    amp: Annotated[bool, typer.Option("--amp/--no-amp", help="bf16 mixed precision on CUDA.")] = True,
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Run folder: checkpoint.pt and the weights (NAME.safetensors + .json).")] = Path("runs/train"),
    name: Annotated[Optional[str], typer.Option(help="Weights name (default: <arch>-<preset>).")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from OUT/checkpoint.pt.")] = False,
    val_cameras: Annotated[int, typer.Option(help="Random unseen cameras per validation clip.")] = 2,
    val_max_frames: Annotated[int, typer.Option(help="Frames per validation clip used during training.")] = 600,
    frames: Annotated[Optional[int], typer.Option(
        help="Window length of a windowed lifter (overrides the preset's).")] = None,
    init: Annotated[Optional[Path], typer.Option(
        help="Start from these weights; a model of another window length is resized.")] = None,
    sample_cache: Annotated[int, typer.Option(
        help="Draw training samples from a pool of this many, synthesised once and cached "
             "(in the video3d cache folder); 0 = synthesise every sample on the fly.")] = 0,
) -> None:
    """Train a lifter on mocap (synthesised 2D) or on Human3.6M.

    Example: video3d train --arch ktpformer --preset small --epochs 20 --out runs/ktp
    """
    args = {k: _value(v) for k, v in locals().items()}
    from video3d.train.commands import train_command

    train_command(**args)


@app.command("eval")
def evaluate_cmd(
    weights: Weights = None,
    lifter: LifterOpt = None,
    mocap: Annotated[Optional[Path], typer.Option(
        help="Mocap folder; default: $VIDEO3D_MOCAP, else the shared data folder.")] = None,
    split: Annotated[str, typer.Option(
        help="Held-out part: test (report only) or validation (model selection).")] = "test",
    sources: Annotated[str, typer.Option(
        help="Mocap sources: comma-separated cmu, daz, expmap, reactidle, all.")] = "all",
    splits: Annotated[Optional[Path], typer.Option(
        help="Split definition JSON (default: the splits.json shipped in video3d/train).")] = None,
    val_subjects: Annotated[Optional[str], typer.Option(
        help="Evaluate these subjects instead of --split (legacy).")] = None,
    h36m_3d: Annotated[Optional[Path], typer.Option(help="Evaluate on Human3.6M S9/S11 instead.")] = None,
    h36m_2d: Annotated[Optional[Path], typer.Option(help="Human3.6M 2D keypoints (.npz).")] = None,
    h36m_cameras: Annotated[Optional[Path], typer.Option(help="Optional camera JSON for Human3.6M.")] = None,
    inputs: Annotated[EvalInputs, typer.Option(
        help="gt (perfect 2D), noisy (detector-like 2D) or both.")] = EvalInputs.both,
    cameras: Annotated[int, typer.Option(help="Random unseen cameras per clip.")] = 4,
    max_frames: Annotated[Optional[int], typer.Option(help="Use at most this many frames per clip.")] = None,
    device: Device = "auto",
    flip: Flip = True,
    per_clip: Annotated[bool, typer.Option("--per-clip/--no-per-clip", help="Show per-clip rows.")] = True,
    json_out: Annotated[Optional[Path], typer.Option(
        "--json", help="Metrics JSON (default for mocap: eval_NAME.json in docs/, _validation added for that split).")] = None,
    update_card: Annotated[bool, typer.Option(
        "--update-card", help="Record the overall metrics in the weights' model card.")] = False,
) -> None:
    """Metrics table (MPJPE, P-MPJPE, N-MPJPE, MPJVE, PCK@150, AUC) for a weights file.

    Example: video3d eval --lifter ampose --inputs gt
    """
    args = {k: _value(v) for k, v in locals().items()}
    from video3d.train.commands import eval_command

    eval_command(**args)


# ---------------------------------------------------------------- multiview
@app.command()
def multiview(
    videos: list[Path] = typer.Argument(..., help="Two or more synchronised videos of the same scene."),
    calib: Path = typer.Option(..., "--calib", help="Calibration: Pose2Sim/anipose Calib.toml or Qualisys .qca.txt."),
    name: Optional[str] = typer.Option(None, "--name", help="Result folder name (default: multiview)."),
    out: Path = typer.Option(Path("outputs"), "--out", "-o", help="Output folder; results go to OUT/NAME/."),
    method: str = typer.Option("dlt", help="3D method: dlt (triangulation baseline) or mvrt (learned refinement)."),
    weights: Optional[str] = typer.Option(None, help="Multi-view model weights (default: shipped mvrt-mocap)."),
    detector: str = typer.Option("blazepose", help="2D backend: blazepose or mmpose."),
    person: str = typer.Option("auto", help="auto, largest, center, 'x,y' or all (people.npz with a person axis)."),
    offset: list[int] = typer.Option([], "--offset", help="Frames to skip at the start of each video (once per video)."),
    render: bool = typer.Option(True, "--render/--no-render", help="Write multiview.mp4 (views + reprojection + 3D)."),
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="Hampel outlier filter + 6 Hz Butterworth."),
    max_error: float = typer.Option(20.0, help="Drop views while a joint's reprojection error exceeds this (px)."),
    viewer: Viewer = True,
) -> None:
    """Calibrated multi-camera 3D in the calibration's world frame (metres).

    Example: video3d multiview --calib Calib.toml cam01.mp4 cam02.mp4 cam03.mp4
    """
    from video3d.multiview.pipeline import MultiviewOptions, run_multiview

    options = MultiviewOptions(method=method, weights=weights, detector=detector, person=person, offsets=offset,
                               render=render, smooth=smooth, max_error_px=max_error, viewer=viewer)
    with stage_progress() as progress:
        r = run_multiview(videos, calib, out, name, options, progress)
    console.print(f"{len(r.views)} views ({', '.join(r.views)}), {r.num_frames} frames ({r.num_valid} valid) at "
                  f"{r.fps:.2f} fps, method {r.method}; mean reprojection error: "
                  + ", ".join(f"{k} {v:.1f} px" for k, v in r.mean_reprojection_px.items()), highlight=False)
    console.print(f"outputs in [bold]{r.out_dir}[/]: " + ", ".join(p.name for p in r.files))


# ---------------------------------------------------------------- export
@export_app.command("bvh")
def export_bvh_cmd(
    keypoints: Path = typer.Argument(..., help="keypoints.npz written by `video3d run`.", readable=False),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output .bvh (default: skeleton.bvh beside a keypoints.npz, as `run --export bvh` names it)."),
) -> None:
    """Fit joint rotations to the 3D joints and write a BVH (Y-up, centimetres)."""
    from video3d.export.bvh import export_bvh_file

    info = export_bvh_file(keypoints, out)
    console.print(f"wrote {info.path}")


# ---------------------------------------------------------------- view
@app.command()
def view(
    result_dir: Path = typer.Argument(..., help="A result folder (with keypoints.npz) written by run or batch."),
    browser: bool = typer.Option(True, "--browser/--no-browser", help="Open it in the default browser."),
) -> None:
    """Open a result's interactive 3D viewer (viewer.html; written first if missing).

    Without a display (DISPLAY/WAYLAND_DISPLAY unset on Linux) the page's path is printed.
    Example: video3d view outputs/demo_walk
    """
    from video3d.viewer.launch import open_viewer

    page, opened = open_viewer(result_dir, browser)
    if opened:
        console.print("opened in the default browser:", highlight=False)
    typer.echo(str(page))  # stdout: the page's path, for scripts


# ---------------------------------------------------------------- bench / demo
@app.command()
def bench(
    video: Path = typer.Argument(..., help="Video to benchmark on (e.g. a 720p clip)."),
    lifter: Annotated[LifterName, typer.Option(help="Lifter to benchmark.")] = LifterName[DEFAULT_LIFTER],
    device: Device = "auto",
    frames: Optional[int] = typer.Option(None, help="Use only the first N frames."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the numbers as JSON."),
    smoothing: bool = typer.Option(False, "--smoothing", help="Instead: jitter and lag of every smoothing option."),
    render: bool = typer.Option(True, "--render/--no-render", help="Include writing overlay.mp4 and skeleton3d.mp4."),
    sequential: bool = typer.Option(False, "--sequential", help="Detect and render in one process (the reference path; same outputs)."),
) -> None:
    """Throughput of decode, detection, lifting, rendering and end to end (frames/s).

    With --smoothing: how much 3D jitter (mean joint acceleration) each smoothing option removes, at what lag.
    Example: video3d bench demo_videos/demo_walk.mp4
    """
    from video3d.bench import benchmark, print_bench, print_smoothing, smoothing_benchmark

    lifter = _value(lifter)
    if smoothing:
        res = smoothing_benchmark(video, lifter=lifter, device=device, max_frames=frames)
        print_smoothing(res)
    else:
        res = benchmark(video, lifter=lifter, device=device, max_frames=frames, render=render, sequential=sequential)
        print_bench(res)
    if json_out:
        json_out.write_text(json.dumps(res, indent=2))


@app.command("make-demo")
def make_demo(out: Path = typer.Option(Path("demo_videos/demo_walk.mp4"), "--out", "-o"),
              seconds: float = typer.Option(8.0), seed: int = typer.Option(0)) -> None:
    """Render the procedural mannequin demo video (our own renderer)."""
    from video3d.demo.make_demo import make_demo_video

    path = make_demo_video(out, seconds=seconds, seed=seed)
    console.print(f"wrote {path}")


#: Base class of the parser's own errors (usage errors, bad parameters). typer < 0.29
#: re-exports click's classes and typer >= 0.29 vendors click as ``typer._click``; both
#: expose ``typer.BadParameter``, whose ancestors include that base, so no import of
#: click (which typer >= 0.29 no longer installs) is needed.
_CLICK_EXCEPTION: type[Exception] = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _interrupt_cause(e: BaseException):
    """The Interrupted behind an exception typer/click raised in its place, if any."""
    from video3d.interrupts import Interrupted

    seen = e.__cause__ or e.__context__
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return seen if isinstance(seen, Interrupted) else Interrupted()
        seen = seen.__cause__ or seen.__context__
    return None


def _interrupted(e) -> int:
    """One line for Ctrl-C / SIGTERM / SIGHUP; exit code 128 + signal number."""
    console.print(f"interrupted ({e.name}): unfinished outputs removed, earlier results kept", highlight=False)
    return e.exit_code


def _ray_flag(argv: list[str]) -> list[str]:
    """``--ray`` may stand alone (a local runtime): make it ``--ray=local`` unless an address follows."""
    from video3d.batch_ray import LOCAL, is_address

    if "--ray" not in argv or "batch" not in argv:
        return argv
    i = argv.index("--ray")
    if i + 1 < len(argv) and is_address(argv[i + 1]):
        return argv
    return argv[:i] + [f"--ray={LOCAL}"] + argv[i + 1:]


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: one-line errors, exit codes 0/1/2, 130/143/129 (SIGINT/TERM/HUP)."""
    import faulthandler

    from video3d.interrupts import Interrupted, signals_interrupt

    try:  # `kill -USR1 PID` prints where a stuck job is (stderr must be a real file)
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    except (AttributeError, ValueError, OSError):
        pass
    from rich.markup import escape  # messages name files and extras such as 'video3d[ray]'

    argv = _ray_flag(list(sys.argv[1:] if argv is None else argv))
    try:
        with signals_interrupt() as stop:  # SIGTERM / SIGHUP clean up like Ctrl-C
            rv = app(args=argv, standalone_mode=False, prog_name="video3d")  # returns typer.Exit's code
        if stop.signal is not None:  # typer >= 0.29 returns 130 for a KeyboardInterrupt
            return _interrupted(stop.signal)
        return rv if isinstance(rv, int) else 0
    except Interrupted as e:
        return _interrupted(e)
    except typer.Exit as e:
        cause = _interrupt_cause(e)
        return _interrupted(cause) if cause is not None else e.exit_code
    except _CLICK_EXCEPTION as e:  # usage errors (unknown option, bad value): usage + message, exit 2
        e.show()
        return e.exit_code
    except typer.Abort as e:  # older typer/click turn KeyboardInterrupt into Abort
        return _interrupted(_interrupt_cause(e) or Interrupted())
    except KeyboardInterrupt:
        return _interrupted(Interrupted())
    except UserError as e:
        if _state["debug"]:
            raise
        console.print(f"[red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        return 1
    except Exception as e:  # an unexpected bug: still one line unless --debug
        if _state["debug"]:
            raise
        console.print(f"[red]error:[/] unexpected {type(e).__name__}: {escape(str(e))} (run with --debug for the traceback)",
                      highlight=False, soft_wrap=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
