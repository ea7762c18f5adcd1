"""`video3d` command line. Thin: parses flags, calls the library, prints summaries.

Errors a user can cause are printed as one line (``error: ...``) with exit
code 1; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from video3d.errors import UserError
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
                       "  video3d eval --weights weights/ktpformer-cmu.safetensors")
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


# ---------------------------------------------------------------- run
@app.command()
def run(
    video: Path = typer.Argument(..., help="Input video file."),
    out: Path = typer.Option(Path("outputs"), "--out", "-o", help="Output folder; results go to OUT/<video stem>/."),
    lifter: str = typer.Option("ktpformer", help="2D->3D lifter: ktpformer (243-frame windows) or ampose (single frame)."),
    weights: Optional[str] = typer.Option(None, help="Lifter weights (.safetensors with its .json card); default: shipped."),
    detector: str = typer.Option("blazepose", help="2D backend: blazepose (default, offline) or mmpose (optional extra)."),
    person: str = typer.Option("auto", help="Which person: auto (most prominent, tracked), largest, center, or 'x,y' pixel."),
    device: str = typer.Option("auto", help="auto (CUDA if present), cpu, cuda, cuda:N."),
    render: bool = typer.Option(True, "--render/--no-render", help="Write overlay.mp4 and skeleton3d.mp4."),
    flip: bool = typer.Option(True, "--flip/--no-flip", help="Test-time flip averaging."),
    smooth_2d: str = typer.Option("none", help="Smooth 2D before lifting: none|oneeuro|savgol|butterworth."),
    smooth_3d: str = typer.Option("none", help="Smooth 3D after lifting: none|oneeuro|savgol|butterworth."),
    max_gap: float = typer.Option(0.5, help="Interpolate detection gaps up to this many seconds."),
    export: list[str] = typer.Option([], "--export", help="Extra exports: bvh."),
    mmpose_preset: str = typer.Option("hrnet-w32", help="MMPose preset (hrnet-w32, hrnet-w48, rtmpose-m, ...)."),
    pose_config: Optional[str] = typer.Option(None, help="MMPose pose config file."),
    pose_checkpoint: Optional[str] = typer.Option(None, help="MMPose pose checkpoint file."),
    det_config: Optional[str] = typer.Option(None, help="MMDetection person detector config file."),
    det_checkpoint: Optional[str] = typer.Option(None, help="MMDetection person detector checkpoint file."),
) -> None:
    """Video in: 2D + 3D keypoints, overlay and 3D animation videos, data files out.

    Example: video3d run demo_videos/demo_walk.mp4 --out outputs
    """
    options = _run_options(**locals())
    from video3d.pipeline import run_video

    with stage_progress() as progress:
        result = run_video(video, out, options, progress)
    _print_summary(result)


def _run_options(**kw):
    from video3d.filters import SMOOTHING_METHODS
    from video3d.pipeline import RunOptions

    for key in ("smooth_2d", "smooth_3d"):
        if kw[key] not in SMOOTHING_METHODS:
            raise UserError(f"--{key.replace('_', '-')} must be one of {', '.join(SMOOTHING_METHODS)}, got {kw[key]!r}")
    if kw["lifter"] not in ("ktpformer", "ampose"):
        raise UserError(f"--lifter must be ktpformer or ampose, got {kw['lifter']!r}")
    bad = [e for e in kw["export"] if e != "bvh"]
    if bad:
        raise UserError(f"unknown --export {bad[0]!r}; supported: bvh")
    return RunOptions(lifter=kw["lifter"], weights=kw["weights"], device=kw["device"], detector=kw["detector"],
                      person=kw["person"], render=kw["render"], flip=kw["flip"], max_gap_s=kw["max_gap"],
                      smooth_2d=kw["smooth_2d"], smooth_3d=kw["smooth_3d"], export_bvh="bvh" in kw["export"],
                      mmpose_preset=kw["mmpose_preset"], pose_config=kw["pose_config"],
                      pose_checkpoint=kw["pose_checkpoint"], det_config=kw["det_config"],
                      det_checkpoint=kw["det_checkpoint"])


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
    input_dir: Path = typer.Argument(..., help="Folder of videos."),
    out: Path = typer.Option(Path("outputs"), "--out", "-o", help="Output folder (one sub-folder per video)."),
    pattern: list[str] = typer.Option([], "--pattern", help="Glob(s) to match; default: common video extensions."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Search sub-folders too."),
    workers: int = typer.Option(1, "--workers", "-w", help="Worker processes (each loads the models once)."),
    force: bool = typer.Option(False, "--force", help="Redo videos that are already complete."),
    lifter: str = typer.Option("ktpformer", help="ktpformer or ampose."),
    weights: Optional[str] = typer.Option(None, help="Lifter weights (default: shipped)."),
    detector: str = typer.Option("blazepose", help="blazepose or mmpose."),
    person: str = typer.Option("auto", help="auto, largest, center or 'x,y'."),
    device: str = typer.Option("auto"),
    render: bool = typer.Option(True, "--render/--no-render"),
    flip: bool = typer.Option(True, "--flip/--no-flip"),
    smooth_2d: str = typer.Option("none", help="none|oneeuro|savgol|butterworth."),
    smooth_3d: str = typer.Option("none", help="none|oneeuro|savgol|butterworth."),
    max_gap: float = typer.Option(0.5),
    export: list[str] = typer.Option([], "--export", help="Extra exports: bvh."),
    mmpose_preset: str = typer.Option("hrnet-w32"),
    pose_config: Optional[str] = typer.Option(None),
    pose_checkpoint: Optional[str] = typer.Option(None),
    det_config: Optional[str] = typer.Option(None),
    det_checkpoint: Optional[str] = typer.Option(None),
) -> None:
    """Convert every video in a folder; failures are isolated, re-runs skip finished videos.

    Writes OUT/<video>/... per video and OUT/summary.csv. Exit code 0 only if all succeeded.
    Example: video3d batch videos/ --recursive --workers 2 --export bvh
    """
    from video3d.batch import DEFAULT_PATTERNS
    from video3d.batch_display import run_batch_with_display

    options = _run_options(**{k: v for k, v in locals().items()
                              if k not in ("input_dir", "out", "pattern", "recursive", "workers", "force")})
    ok = run_batch_with_display(input_dir, out, options, tuple(pattern) or DEFAULT_PATTERNS, recursive, workers, force)
    if not ok:
        raise typer.Exit(1)


# ---------------------------------------------------------------- lift
@app.command()
def lift(
    input: Path = typer.Argument(..., help="An .npz with keypoints (T,J,2) px and image_size (w,h), or a folder of them."),
    format: str = typer.Option("h36m", "--format", help="Joint order of 'keypoints': h36m, coco or blazepose."),
    lifter: str = typer.Option("ktpformer", help="ktpformer or ampose."),
    weights: Optional[str] = typer.Option(None, help="Weights file (default: shipped)."),
    out: Path = typer.Option(Path("outputs/lifted"), "--out", "-o", help="Output folder."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    flip: bool = typer.Option(True, "--flip/--no-flip", help="Test-time flip averaging."),
) -> None:
    """Lift 2D keypoints you already have to 3D (writes OUT/<stem>.npz with keypoints_3d).

    Example: video3d lift keypoints.npz --format coco --out lifted/
    """
    from video3d.io.atomic import ensure_writable_dir
    from video3d.lift.lift_io import read_lift_input, write_lift_output
    from video3d.lift.lifter import Lifter

    if not input.exists():
        raise UserError(f"input not found: {input}")
    files = sorted(input.glob("*.npz")) if input.is_dir() else [input]
    if not files:
        raise UserError(f"no .npz files in {input}")
    inputs = [read_lift_input(f, format) for f in files]  # validate everything before writing anything
    ensure_writable_dir(out)
    model = Lifter.load(lifter, weights, device)
    for inp in inputs:
        pose = model.lift(inp.keypoints, inp.image_size, flip=flip)
        path = write_lift_output(out, inp, pose, model.name, model.sha256)
        console.print(f"{inp.path.name}: {len(pose)} frames -> {path}")


# ---------------------------------------------------------------- train / eval
@app.command()
def train(
    arch: str = typer.Option("ktpformer", help="ktpformer or ampose."),
    preset: str = typer.Option("small", help="Model preset (see docs/models.md): paper, small, tiny."),
    mocap: Optional[Path] = typer.Option(None, help="Mocap folder (BVH / ASF+AMC); default $VIDEO3D_MOCAP or ../shared/data/mocap."),
    h36m_3d: Optional[Path] = typer.Option(None, help="data_3d_h36m.npz (VideoPose3D layout) — train on Human3.6M instead."),
    h36m_2d: Optional[Path] = typer.Option(None, help="data_2d_h36m_{gt,cpn_ft_h36m_dbb}.npz."),
    h36m_cameras: Optional[Path] = typer.Option(None, help="Optional camera JSON for Human3.6M (else recovered by DLT)."),
    val_subjects: str = typer.Option("7,11,131", help="Mocap subjects held out for validation."),
    epochs: int = typer.Option(10),
    steps_per_epoch: int = typer.Option(200, help="Optimiser steps per epoch (samples are synthesised on the fly)."),
    batch_size: Optional[int] = typer.Option(None, help="Default: 8 windows (ktpformer) / 128 frames (ampose)."),
    lr: Optional[float] = typer.Option(None, help="Default: 8e-5 (ktpformer) / 2.5e-5 (ampose), per the papers."),
    seed: int = typer.Option(0),
    device: str = typer.Option("auto"),
    amp: bool = typer.Option(True, "--amp/--no-amp", help="bf16 mixed precision on CUDA."),
    out: Path = typer.Option(Path("runs/train"), "--out", "-o", help="Run folder: checkpoint.pt and <name>.safetensors/.json."),
    name: Optional[str] = typer.Option(None, help="Weights name (default: <arch>-<preset>)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.pt."),
    val_cameras: int = typer.Option(2, help="Random unseen cameras per validation clip."),
    val_max_frames: int = typer.Option(600, help="Frames per validation clip used during training."),
    frames: Optional[int] = typer.Option(None, help="KTPFormer window length (overrides the preset's num_frames)."),
    init: Optional[Path] = typer.Option(None, help="Start from these weights; a KTPFormer of another window length is resized."),
) -> None:
    """Train a lifter on mocap (synthesised 2D) or on Human3.6M.

    Example: video3d train --arch ktpformer --preset small --epochs 20 --out runs/ktp
    """
    args = dict(locals())
    from video3d.train.commands import train_command

    train_command(**args)


@app.command("eval")
def evaluate_cmd(
    weights: Optional[str] = typer.Option(None, help="Weights file (default: shipped weights of --lifter)."),
    lifter: str = typer.Option("ktpformer", help="ktpformer or ampose (selects the default weights)."),
    mocap: Optional[Path] = typer.Option(None, help="Mocap folder (default $VIDEO3D_MOCAP or ../shared/data/mocap)."),
    val_subjects: str = typer.Option("7,11,131", help="Subjects to evaluate on."),
    h36m_3d: Optional[Path] = typer.Option(None, help="Evaluate on Human3.6M S9/S11 instead."),
    h36m_2d: Optional[Path] = typer.Option(None),
    h36m_cameras: Optional[Path] = typer.Option(None),
    inputs: str = typer.Option("both", help="gt (perfect 2D), noisy (detector-like 2D) or both."),
    cameras: int = typer.Option(4, help="Random unseen cameras per clip."),
    max_frames: Optional[int] = typer.Option(None, help="Use at most this many frames per clip."),
    device: str = typer.Option("auto"),
    flip: bool = typer.Option(True, "--flip/--no-flip"),
    per_clip: bool = typer.Option(True, "--per-clip/--no-per-clip", help="Show per-clip rows."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the metrics as JSON."),
    update_card: bool = typer.Option(False, "--update-card", help="Record the overall metrics in the weights' model card."),
) -> None:
    """Metrics table (MPJPE, P-MPJPE, N-MPJPE, MPJVE, PCK@150, AUC) for a weights file.

    Example: video3d eval --lifter ampose --inputs gt
    """
    args = dict(locals())
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
    weights: Optional[str] = typer.Option(None, help="Multi-view model weights (default: shipped mvrt-cmu)."),
    detector: str = typer.Option("blazepose", help="2D backend: blazepose or mmpose."),
    person: str = typer.Option("auto", help="auto, largest, center, 'x,y' or all (people.npz with a person axis)."),
    offset: list[int] = typer.Option([], "--offset", help="Frames to skip at the start of each video (once per video)."),
    render: bool = typer.Option(True, "--render/--no-render", help="Write multiview.mp4 (views + reprojection + 3D)."),
    smooth: bool = typer.Option(True, "--smooth/--no-smooth", help="Hampel outlier filter + 6 Hz Butterworth."),
    max_error: float = typer.Option(20.0, help="Drop views while a joint's reprojection error exceeds this (px)."),
) -> None:
    """Calibrated multi-camera 3D in the calibration's world frame (metres).

    Example: video3d multiview --calib Calib.toml cam01.mp4 cam02.mp4 cam03.mp4
    """
    from video3d.multiview.pipeline import MultiviewOptions, run_multiview

    options = MultiviewOptions(method=method, weights=weights, detector=detector, person=person, offsets=offset,
                               render=render, smooth=smooth, max_error_px=max_error)
    with stage_progress() as progress:
        r = run_multiview(videos, calib, out, name, options, progress)
    console.print(f"{len(r.views)} views ({', '.join(r.views)}), {r.num_frames} frames ({r.num_valid} valid) at "
                  f"{r.fps:.2f} fps, method {r.method}; mean reprojection error: "
                  + ", ".join(f"{k} {v:.1f} px" for k, v in r.mean_reprojection_px.items()), highlight=False)
    console.print(f"outputs in [bold]{r.out_dir}[/]: " + ", ".join(p.name for p in r.files))


# ---------------------------------------------------------------- export
@export_app.command("bvh")
def export_bvh_cmd(
    keypoints: Path = typer.Argument(..., help="keypoints.npz written by `video3d run`."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output .bvh (default: beside the input)."),
) -> None:
    """Fit joint rotations to the 3D joints and write a BVH (Y-up, centimetres)."""
    import numpy as np

    from video3d.export.bvh import export_bvh

    if not keypoints.is_file():
        raise UserError(f"input not found: {keypoints}")
    try:
        with np.load(keypoints, allow_pickle=False) as z:
            world, fps = z["keypoints_3d_world"], float(z["fps"])
    except KeyError as e:
        raise UserError(f"{keypoints}: missing key {e} (expected a keypoints.npz from `video3d run`)") from None
    except (ValueError, OSError) as e:
        raise UserError(f"{keypoints}: not a readable .npz file ({e})") from None
    path = out or keypoints.with_suffix(".bvh")
    export_bvh(path, world, fps)
    console.print(f"wrote {path}")


# ---------------------------------------------------------------- bench / demo
@app.command()
def bench(
    video: Path = typer.Argument(..., help="Video to benchmark on (e.g. a 720p clip)."),
    lifter: str = typer.Option("ktpformer"),
    device: str = typer.Option("auto"),
    frames: Optional[int] = typer.Option(None, help="Use only the first N frames."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the numbers as JSON."),
    smoothing: bool = typer.Option(False, "--smoothing", help="Instead: jitter and lag of every smoothing option."),
) -> None:
    """Throughput of decode, detection, lifting, rendering and end to end (frames/s).

    With --smoothing: how much 3D jitter (mean joint acceleration) each smoothing option removes, at what lag.
    Example: video3d bench demo_videos/demo_walk.mp4
    """
    from video3d.bench import benchmark, print_bench, print_smoothing, smoothing_benchmark

    if smoothing:
        res = smoothing_benchmark(video, lifter=lifter, device=device, max_frames=frames)
        print_smoothing(res)
    else:
        res = benchmark(video, lifter=lifter, device=device, max_frames=frames)
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


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point: one-line errors, exit codes 0/1/2/130."""
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="video3d")  # returns typer.Exit's code
        return rv if isinstance(rv, int) else 0
    except typer.Exit as e:
        return e.exit_code
    except _CLICK_EXCEPTION as e:  # usage errors (unknown option, bad value): usage + message, exit 2
        e.show()
        return e.exit_code
    except typer.Abort:
        console.print("aborted")
        return 130
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130
    except UserError as e:
        if _state["debug"]:
            raise
        console.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        return 1
    except Exception as e:  # an unexpected bug: still one line unless --debug
        if _state["debug"]:
            raise
        console.print(f"[red]error:[/] unexpected {type(e).__name__}: {e} (run with --debug for the traceback)",
                      highlight=False, soft_wrap=True)
        return 2


if __name__ == "__main__":
    sys.exit(main())
