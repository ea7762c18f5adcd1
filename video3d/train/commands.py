"""`video3d train` and `video3d eval`: assemble data, run, print tables."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

from rich.table import Table

from video3d.errors import UserError
from video3d.io.atomic import write_text_atomic
from video3d.progress import console, make_progress, report_console

log = logging.getLogger(__name__)


def _subjects(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def train_command(arch, preset, mocap, h36m_3d, h36m_2d, h36m_cameras, val_subjects, epochs, steps_per_epoch,
                  batch_size, lr, seed, device, amp, out, name, resume, val_cameras, val_max_frames,
                  frames=None, init=None) -> dict:
    from video3d.models.presets import PRESETS
    from video3d.train import datasets, samplers
    from video3d.train.trainer import TrainConfig, train

    if arch not in PRESETS:
        raise UserError(f"unknown --arch {arch!r}; expected one of {', '.join(PRESETS)}")
    if preset not in PRESETS[arch]:
        raise UserError(f"unknown --preset {preset!r} for {arch}; expected one of {', '.join(PRESETS[arch])}")
    overrides = {}
    if frames is not None:
        if arch != "ktpformer":
            raise UserError("--frames applies to ktpformer only (AMPose lifts single frames)")
        overrides["num_frames"] = frames
    window = (frames or PRESETS[arch][preset].get("num_frames", 1)) if arch == "ktpformer" else 1
    name = name or f"{arch}-{preset}"
    synth = samplers.SynthesisConfig()
    if h36m_3d or h36m_2d:
        if not (h36m_3d and h36m_2d):
            raise UserError("Human3.6M training needs both --h36m-3d and --h36m-2d")
        train_seqs, test_seqs = datasets.load_h36m_split(h36m_3d, h36m_2d, h36m_cameras)
        sampler = samplers.SequenceSampler(train_seqs, window, seed=seed)
        val = [samplers.EvalSequence(f"{s.subject}/{s.action}/cam{s.camera_index}", s.action, s.keypoints_2d,
                                     s.image_size, s.joints_3d_camera) for s in test_seqs]
        data_card = {"data": "Human3.6M (VideoPose3D layout)", "train_subjects": "S1,S5,S6,S7,S8",
                     "validation_subjects": "S9,S11", "inputs_2d": str(h36m_2d)}
    else:
        train_clips, val_clips, root = datasets.load_mocap_split(mocap, _subjects(val_subjects))
        sampler = samplers.MocapSampler(train_clips, window, synth, seed=seed)
        val = samplers.make_eval_sequences(val_clips, val_cameras, noisy=False, max_frames=val_max_frames)
        data_card = {
            "data": "CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu)",
            "acknowledgement": datasets.CMU_ACKNOWLEDGEMENT,
            "train_clips": len(train_clips), "train_frames_50fps": int(sum(len(c.landmarks_coco) for c in train_clips)),
            "train_subjects": sorted({c.subject for c in train_clips}, key=lambda s: int(s) if s.isdigit() else s),
            "validation_subjects": list(_subjects(val_subjects)), "validation_clips": len(val_clips),
            "synthesis": json.loads(json.dumps(asdict(synth), default=str)),
        }
        log.info("training on %d clips (%d frames), validating on %d clips x %d cameras",
                 len(train_clips), data_card["train_frames_50fps"], len(val_clips), val_cameras)
    cfg = TrainConfig(arch=arch, preset=preset, model_overrides=overrides,
                      init_weights=str(init) if init else None, epochs=epochs, steps_per_epoch=steps_per_epoch, batch_size=batch_size,
                      lr=lr, seed=seed, device=device, amp=amp, out_dir=str(out), name=name, resume=resume)
    t0 = time.perf_counter()
    with make_progress() as progress:
        task = progress.add_task("train", total=(epochs) * steps_per_epoch, rate="")

        def on_step(epoch, step, loss):
            progress.update(task, completed=epoch * steps_per_epoch + step + 1, rate=f"loss {loss:.4f}")

        def on_epoch(epoch, rec):
            progress.console.print(f"epoch {epoch}/{epochs}: loss {rec['loss']:.4f}  val MPJPE {rec['val_mpjpe']:.1f} mm"
                                   f"  P-MPJPE {rec['val_p_mpjpe']:.1f} mm  lr {rec['lr']:.2e}")
        card = train(cfg, sampler, val, card_extra=data_card, on_step=on_step, on_epoch=on_epoch)
    console.print(f"done in {time.perf_counter() - t0:.0f} s; weights: {Path(out) / (name + '.safetensors')}")
    return card


def eval_command(weights, lifter, mocap, val_subjects, h36m_3d, h36m_2d, h36m_cameras, inputs, cameras, max_frames,
                 device, flip, per_clip, json_out, update_card=False) -> dict:
    from video3d.lift.lifter import Lifter
    from video3d.train import datasets, samplers
    from video3d.train.evaluate import evaluate

    if inputs not in ("gt", "noisy", "both"):
        raise UserError(f"--inputs must be gt, noisy or both, got {inputs!r}")
    model = Lifter.load(lifter, weights, device)
    suites: dict[str, list] = {}
    if h36m_3d or h36m_2d:
        if not (h36m_3d and h36m_2d):
            raise UserError("Human3.6M evaluation needs both --h36m-3d and --h36m-2d")
        _, test = datasets.load_h36m_split(h36m_3d, h36m_2d, h36m_cameras)
        suites["h36m"] = [samplers.EvalSequence(f"{s.subject}/{s.action}/cam{s.camera_index}", s.action,
                                                s.keypoints_2d[:max_frames], s.image_size, s.joints_3d_camera[:max_frames])
                          for s in test]
    else:
        _, val_clips, _ = datasets.load_mocap_split(mocap, _subjects(val_subjects))
        if not val_clips:
            raise UserError(f"no clips of subjects {val_subjects} found")
        if inputs in ("gt", "both"):
            suites["gt 2D"] = samplers.make_eval_sequences(val_clips, cameras, noisy=False, max_frames=max_frames)
        if inputs in ("noisy", "both"):
            suites["noisy 2D"] = samplers.make_eval_sequences(val_clips, cameras, noisy=True, max_frames=max_frames)
    results = {}
    for suite, seqs in suites.items():
        t0 = time.perf_counter()
        res = evaluate(model, seqs, flip=flip)
        res["seconds"] = time.perf_counter() - t0
        results[suite] = res
        table = Table(title=f"{model.name} ({Path(model.card['path']).name}) on {suite}: {res['frames']} frames, "
                            f"{res['frames'] / res['seconds']:.0f} frames/s")
        for col in ("group", "MPJPE mm", "P-MPJPE mm", "N-MPJPE mm", "MPJVE mm/f", "PCK@150 %", "AUC %"):
            table.add_column(col, justify="right" if col != "group" else "left")
        rows = list(res["groups"].items()) if per_clip else []
        for group, m in rows + [("[bold]overall[/]", res["overall"])]:
            table.add_row(group, *(f"{m[k]:.1f}" for k in ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "pck150", "auc")))
        report_console.print(table)
    if json_out:
        json_out.write_text(json.dumps({"weights": model.card["path"], "sha256": model.sha256, "results": results}, indent=2))
    if update_card:
        settings = {"subjects": val_subjects if not h36m_3d else "S9,S11", "cameras_per_clip": cameras,
                    "max_frames": max_frames, "flip": flip, "segment_frames": 500, "seed": 1234}
        write_card_metrics(Path(model.card["path"]), {"settings": settings,
                                                      **{s: r["overall"] for s, r in results.items()}})
    return results


def write_card_metrics(weights: Path, evaluation: dict) -> None:
    """Record held-out metrics in the model card (the weights file, and so its sha256, is unchanged)."""
    card_path = weights.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card.setdefault("metrics", {})["held_out_evaluation"] = evaluation
    write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")
