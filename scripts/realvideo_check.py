#!/usr/bin/env python
"""The real-video check (issue #9): lifters vs MediaPipe world landmarks on a calibrated multi-view clip.

    python scripts/realvideo_check.py                       # shipped ktpformer + ampose -> docs/realvideo.json
    python scripts/realvideo_check.py --weights runs/x.safetensors --weights ampose --out /tmp/r.json

BlazePose detections are cached by video content ($VIDEO3D_CACHE or ~/.cache/video3d), so a re-run
with new weights takes seconds. See video3d/evaluation/realvideo.py for the method.
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import List, Optional

import typer

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "media"

app = typer.Typer(add_completion=False)


@app.command()
def main(
    weights: List[str] = typer.Option([], "--weights", "-w",
                                      help="Lifter: ktpformer | ampose (shipped) or a .safetensors path; repeatable."),
    videos: List[Path] = typer.Option([], "--video", help="Calibrated views (stem = camera name); default: shared multicam."),
    calibration: Path = typer.Option(SHARED / "multicam" / "calibration" / "Calib.toml", help="Calib.toml or .qca.txt."),
    street: Optional[Path] = typer.Option(SHARED / "street" / "park.mp4", help="Single-camera clip for bone std ('' = none)."),
    out: Path = typer.Option(REPO / "docs" / "realvideo.json", "--out", "-o", help="JSON report."),
    device: str = typer.Option("cpu", help="Lifter device."),
    max_error_px: float = typer.Option(15.0, help="Drop a view while its reprojection error exceeds this."),
    min_score: float = typer.Option(0.5, help="Ignore 2D joints below this confidence when triangulating."),
) -> None:
    import numpy as np
    import torch
    from rich.console import Console
    from rich.table import Table

    from video3d.errors import UserError
    from video3d.evaluation.realvideo import CheckSettings, format_table, jsonable, load_lifters, run_check
    from video3d.io.atomic import atomic_file

    console = Console(stderr=True)
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        vids = list(videos) or sorted((SHARED / "multicam" / "videos").glob("cam*.mp4"))
        if not vids:
            raise UserError(f"no videos given and none found in {SHARED / 'multicam' / 'videos'}")
        if street is not None and str(street) in ("", "."):
            street_path = None
        else:
            street_path = street
            if street_path is not None and not street_path.is_file():
                raise UserError(f"street clip not found: {street_path} (pass --street '' to skip)")
        lifters = load_lifters(list(weights) or ["ktpformer", "ampose"], device)
        report = run_check(vids, calibration, lifters, street_path,
                           CheckSettings(min_score=min_score, max_error_px=max_error_px),
                           progress=lambda m: console.print(f"[dim]{m}[/]"))
        with atomic_file(out) as tmp:
            text = json.dumps(jsonable(report), indent=1, allow_nan=False)
            # Paths relative to the repository (weights) and its parent (../shared), so the file is portable.
            text = text.replace(f'"{REPO}/', '"').replace(f'"{REPO.parent}/', '"../')
            tmp.write_text(text + "\n")
    except UserError as e:
        console.print(f"[red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    rows = format_table(report)
    table = Table(title="Real-video check (mm)")
    for h in rows[0]:
        table.add_column(h, justify="right")
    for r in rows[1:]:
        table.add_row(*r)
    Console(width=max(Console().width, 160)).print(table)
    tri = report["multicam"]["people"]
    for k, p in tri.items():
        t = p["triangulation"]
        Console().print(f"{k}: triangulation median reprojection {t['median_reprojection_px']} px "
                        f"(p90 {t['p90_reprojection_px']}), {t['frames_with_all_limbs']}/{t['frames']} frames, "
                        f"GT bone std {t['bone_std_mm']} mm; auto-tracked in {p['auto_tracked_views']} views")
    Console().print(f"written {out}")


if __name__ == "__main__":
    app()
