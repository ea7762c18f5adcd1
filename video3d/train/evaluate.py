"""Evaluate a lifter on fixed sequences: a metrics table overall and per group."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from video3d.lift.lifter import Lifter
from video3d.train import metrics

METRIC_NAMES = ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve", "pck150", "auc")


def sequence_metrics(pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """All metrics for one sequence. pred/target: (T, 17, 3) metres, root-relative."""
    return {
        "mpjpe": float(metrics.mpjpe(pred, target)),
        "p_mpjpe": float(metrics.p_mpjpe(pred, target)),
        "n_mpjpe": float(metrics.n_mpjpe(pred, target)),
        "mpjve": float(metrics.mpjve(pred, target)) if len(pred) > 1 else float("nan"),
        "pck150": float(metrics.pck(pred, target, 0.15)),
        "auc": float(metrics.auc(pred, target)),
    }


def evaluate(lifter: Lifter, sequences: list, flip: bool = True) -> dict:
    """Lift every sequence with the inference path and aggregate frame-weighted metrics.

    Returns {"overall": {metric: value}, "groups": {group: {metric: value}},
    "by_source": {...}, "by_action": {"source/action": {...}}, "source_mean":
    {...}, "frames": int} (sources and actions from the sequences'
    ``source``/``action``, when set; ``source_mean`` is the unweighted mean
    over sources, so that a long source, e.g. ReActIdle's standing people,
    does not dominate it).
    Distances in mm, PCK/AUC in %; every average is frame-weighted.
    """
    per_group: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    per_source: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    per_action: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for seq in sequences:
        pred = lifter.lift(seq.keypoints_2d, seq.image_size, flip=flip)
        item = (len(pred), sequence_metrics(pred, seq.joints_3d_camera))
        per_group[seq.group].append(item)
        source, action = getattr(seq, "source", ""), getattr(seq, "action", "")
        if source:
            per_source[source].append(item)
            per_action[f"{source}/{action or seq.group}"].append(item)

    def average(items: list[tuple[int, dict]]) -> dict[str, float]:
        w = np.array([n for n, _ in items], dtype=np.float64)
        return {k: float(np.nansum([m[k] * n for n, m in items]) / w.sum()) for k in METRIC_NAMES}

    all_items = [it for items in per_group.values() for it in items]
    by_source = {g: average(v) for g, v in sorted(per_source.items())}
    extra = {"source_mean": {k: float(np.mean([m[k] for m in by_source.values()])) for k in METRIC_NAMES}} \
        if by_source else {}
    return {"overall": average(all_items), **extra, "groups": {g: average(v) for g, v in sorted(per_group.items())},
            "by_source": {g: average(v) | {"frames": int(sum(n for n, _ in v))} for g, v in sorted(per_source.items())},
            "by_action": {g: average(v) | {"frames": int(sum(n for n, _ in v))} for g, v in sorted(per_action.items())},
            "frames": int(sum(n for n, _ in all_items))}
