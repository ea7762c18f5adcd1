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


def _minutes(clips) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in clips:
        out[c.source] = round(out.get(c.source, 0.0) + c.duration / 60.0, 2)
    return out


def train_command(arch, preset, mocap, h36m_3d, h36m_2d, h36m_cameras, val_subjects, epochs, steps_per_epoch,
                  batch_size, lr, seed, device, amp, out, name, resume, val_cameras, val_max_frames,
                  frames=None, init=None, sources=None, splits=None, sample_cache=None, lr_decay=None) -> dict:
    from video3d.models.registry import get_lifter
    from video3d.train import datasets, samplers
    from video3d.train.splits import load_splits
    from video3d.train.trainer import TrainConfig, train

    spec = get_lifter(arch)
    arch, preset = spec.name, preset or spec.training["preset"]
    overrides = {}
    if frames is not None:
        if spec.window_arg is None:
            raise UserError(f"--frames applies to windowed lifters only ({arch} lifts single frames)")
        overrides[spec.window_arg] = frames
    window = spec.window(spec.config(preset, **overrides))  # validates the preset
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
        parts, defn, root = datasets.load_mocap_parts(mocap, sources, splits,
                                                      _subjects(val_subjects) if val_subjects else None)
        train_clips, val_clips = parts["train"], parts["validation"]
        if not val_clips:
            raise UserError("no validation clips: the validation subjects/clips are absent, or are test "
                            "material (test never drives a decision; see video3d/train/splits.json)")
        sampler = samplers.MocapSampler(train_clips, window, synth, seed=seed)
        if sample_cache:
            from video3d.train.sample_cache import CachedSampler

            with make_progress() as progress:
                task = progress.add_task("sample pool", total=sample_cache, rate="")
                sampler = CachedSampler(sampler, train_clips, sample_cache, seed=seed,
                                        on_progress=lambda d, n: progress.update(task, completed=d))
            log.info("training samples from a pool of %d in %s", len(sampler), sampler.folder)
        val_seed = defn.seeds["validation"]
        val = samplers.make_eval_sequences(val_clips, val_cameras, noisy=False, max_frames=val_max_frames,
                                           seed=val_seed)
        data_card = {
            "data": "CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu): Character Creator, ASF/AMC, "
                    "raw BVH, cgspeed DAZ-friendly BVH and expmap conversions; ReActIdle (MIT licence)",
            "acknowledgement": datasets.CMU_ACKNOWLEDGEMENT,
            "reactidle_citation": datasets.REACTIDLE_CITATION,
            "sources": sorted({c.source for c in train_clips}),
            "train_clips": len(train_clips), "train_frames_50fps": int(sum(len(c.landmarks_coco) for c in train_clips)),
            "train_minutes_per_source": _minutes(train_clips),
            "sampling_per_source": sampler.sources,
            "train_subjects": sorted({f"{c.source}:{c.subject}" for c in train_clips}),
            "split": defn.card(),
            "validation_clips": len(val_clips), "validation_minutes_per_source": _minutes(val_clips),
            "validation_during_training": {"cameras_per_clip": val_cameras, "max_frames": val_max_frames,
                                           "camera_seed": val_seed, "inputs": "ground-truth 2D"},
            "test_clips_never_used_in_training": len(parts["test"]),
            "samples": sampler.card() if sample_cache else "synthesised on the fly",
            "synthesis": json.loads(json.dumps(asdict(synth), default=str)),
        }
        if val_subjects:
            data_card["validation_subjects"] = list(_subjects(val_subjects))
            overlap = sorted({c.subject for c in val_clips if load_splits(splits).part_of(c) == "test"})
            if overlap:
                log.warning("--val-subjects %s are test subjects in %s: their test numbers will not be "
                            "independent of this run's model selection", ",".join(overlap), defn.path)
                data_card["validation_overlaps_test_subjects"] = overlap
        log.info("training on %d clips (%s min per source), validating on %d clips x %d cameras; %d test clips held out",
                 len(train_clips), data_card["train_minutes_per_source"], len(val_clips), val_cameras,
                 len(parts["test"]))
    cfg = TrainConfig(arch=arch, preset=preset, model_overrides=overrides,
                      init_weights=str(init) if init else None, epochs=epochs, steps_per_epoch=steps_per_epoch, batch_size=batch_size,
                      lr=lr, lr_decay=lr_decay, seed=seed, device=device, amp=amp, out_dir=str(out), name=name,
                      resume=resume)
    t0 = time.perf_counter()
    with make_progress() as progress:
        task = progress.add_task("train", total=(epochs) * steps_per_epoch, rate="")

        def on_step(epoch, step, loss):
            progress.update(task, completed=epoch * steps_per_epoch + step + 1, rate=f"loss {loss:.4f}")

        def on_epoch(epoch, rec):
            mean = f" (mean over sources {rec['val_source_mean_mpjpe']:.1f})" if "val_source_mean_mpjpe" in rec else ""
            progress.console.print(f"epoch {epoch}/{epochs}: loss {rec['loss']:.4f}  val MPJPE {rec['val_mpjpe']:.1f} mm{mean}"
                                   f"  P-MPJPE {rec['val_p_mpjpe']:.1f} mm  lr {rec['lr']:.2e}")
        card = train(cfg, sampler, val, card_extra=data_card, on_step=on_step, on_epoch=on_epoch)
    console.print(f"done in {time.perf_counter() - t0:.0f} s; weights: {Path(out) / (name + '.safetensors')}")
    return card


def eval_command(weights, lifter, mocap, val_subjects, h36m_3d, h36m_2d, h36m_cameras, inputs, cameras, max_frames,
                 device, flip, per_clip, json_out, update_card=False, split="test", sources=None, splits=None) -> dict:
    """Evaluate on the held-out ``split`` (test by default) per source and per action; write the JSON."""
    from video3d.lift.lifter import Lifter
    from video3d.train import datasets, samplers
    from video3d.train.evaluate import evaluate

    if inputs not in ("gt", "noisy", "both"):
        raise UserError(f"--inputs must be gt, noisy or both, got {inputs!r}")
    if split not in ("test", "validation"):
        raise UserError(f"--split must be test or validation, got {split!r}")
    model = Lifter.load(lifter, weights, device)
    suites: dict[str, list] = {}
    settings: dict = {"cameras_per_clip": cameras, "max_frames": max_frames, "flip": flip, "segment_frames": 500}
    if h36m_3d or h36m_2d:
        if not (h36m_3d and h36m_2d):
            raise UserError("Human3.6M evaluation needs both --h36m-3d and --h36m-2d")
        _, test = datasets.load_h36m_split(h36m_3d, h36m_2d, h36m_cameras)
        suites["h36m"] = [samplers.EvalSequence(f"{s.subject}/{s.action}/cam{s.camera_index}", s.action,
                                                s.keypoints_2d[:max_frames], s.image_size, s.joints_3d_camera[:max_frames],
                                                "h36m", s.action)
                          for s in test]
        settings |= {"data": "Human3.6M", "subjects": "S9,S11"}
    else:
        parts, defn, _ = datasets.load_mocap_parts(mocap, sources, splits)
        seed = defn.seeds[split]
        clips = parts[split]
        if val_subjects:   # legacy: these subjects, whatever their part
            wanted = {str(int(s)) if s.isdigit() else s for s in _subjects(val_subjects)}
            clips = [c for part in parts.values() for c in part if c.subject in wanted]
            settings["subjects"] = sorted(wanted)
        if not clips:
            raise UserError(f"no {split} clips found" + (f" of subjects {val_subjects}" if val_subjects else ""))
        settings |= {"split": split, "camera_seed": seed, "split_definition": defn.card(),
                     "clips": len(clips), "minutes_per_source": _minutes(clips)}
        if inputs in ("gt", "both"):
            suites["gt 2D"] = samplers.make_eval_sequences(clips, cameras, noisy=False, max_frames=max_frames,
                                                           seed=seed)
        if inputs in ("noisy", "both"):
            suites["noisy 2D"] = samplers.make_eval_sequences(clips, cameras, noisy=True, max_frames=max_frames,
                                                              seed=seed + 1)
    results = {}
    for suite, seqs in suites.items():
        t0 = time.perf_counter()
        res = evaluate(model, seqs, flip=flip)
        res["seconds"] = time.perf_counter() - t0
        results[suite] = res
        table = Table(title=f"{model.name} ({Path(model.card['path']).name}) on {settings.get('split', 'h36m')} "
                            f"{suite}: {res['frames']} frames, {res['frames'] / res['seconds']:.0f} frames/s")
        for col in ("group", "MPJPE mm", "P-MPJPE mm", "N-MPJPE mm", "MPJVE mm/f", "PCK@150 %", "AUC %"):
            table.add_column(col, justify="right" if col != "group" else "left")
        rows = list(res["by_action"].items()) + [(f"[bold]{k}[/]", v) for k, v in res["by_source"].items()]
        if per_clip:
            rows = list(res["groups"].items()) + rows
        tail = [("[bold]overall (frames)[/]", res["overall"])]
        if "source_mean" in res:
            tail.append(("[bold]mean over sources[/]", res["source_mean"]))
        for group, m in rows + tail:
            table.add_row(group, *(f"{m[k]:.1f}" for k in ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "pck150", "auc")))
        report_console.print(table)
    if json_out is None and not (h36m_3d or h36m_2d):
        json_out = Path("docs") / f"eval_{Path(model.card['path']).stem}{'' if split == 'test' else '_' + split}.json"
    if json_out:
        json_out = Path(json_out)
        write_text_atomic(json_out, json.dumps({"weights": Path(model.card["path"]).name, "sha256": model.sha256,
                                                "settings": settings, "results": results}, indent=2) + "\n")
        log.info("wrote %s", json_out)
    if update_card:
        key = "held_out_evaluation" if split == "test" else "validation_evaluation"
        write_card_metrics(Path(model.card["path"]), {"settings": settings,
                                                      **{s: {**r["overall"], "by_source": r["by_source"],
                                                             "source_mean": r.get("source_mean")}
                                                         for s, r in results.items()}}, key)
    return results


def write_card_metrics(weights: Path, evaluation: dict, key: str = "held_out_evaluation") -> None:
    """Record held-out metrics in the model card (the weights file, and so its sha256, is unchanged)."""
    card_path = weights.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card.setdefault("metrics", {})[key] = evaluation
    write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")
