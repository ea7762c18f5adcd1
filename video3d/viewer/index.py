"""``index.html`` of a batch output folder: one row per video with its status and viewer link."""
from __future__ import annotations

import base64
import html
import time
from pathlib import Path
from typing import Protocol, Sequence
from urllib.parse import quote

import numpy as np

from video3d.io.atomic import atomic_file
from video3d.viewer.page import OVERLAY_NAME, VIEWER_NAME


INDEX_NAME = "index.html"
THUMB_WIDTH = 160


class BatchRow(Protocol):
    """What the index needs of a batch result (``video3d.batch.JobResult`` fits)."""

    name: str
    video: str
    status: str
    frames: int
    seconds: float
    error: str


def first_valid_frame(result_dir: Path) -> int:
    """Index of the first frame with a valid pose in ``result_dir/keypoints.npz`` (0 when unknown)."""
    try:
        with np.load(result_dir / "keypoints.npz", allow_pickle=False) as z:
            valid = np.asarray(z["valid"], bool).reshape(-1)
    except Exception:  # a thumbnail must never stop the index
        return 0
    return int(np.argmax(valid)) if valid.any() else 0


def thumbnail_uri(result_dir: Path, video: str | Path | None, width: int = THUMB_WIDTH) -> str | None:
    """A small JPEG data URI: the first valid frame of ``overlay.mp4``, else of the input video."""
    import cv2

    index = first_valid_frame(result_dir)
    sources = [p for p in (result_dir / OVERLAY_NAME, Path(video) if video else None) if p is not None and p.is_file()]
    for src in sources:
        cap = cv2.VideoCapture(str(src))
        try:
            if index:
                cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, frame = cap.read()
            if not ok and index:
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                ok, frame = cap.read()
        finally:
            cap.release()
        if not ok or frame is None:
            continue
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (width, max(1, round(h * width / w))), interpolation=cv2.INTER_AREA)
        ok, jpg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 75])
        if ok:
            return "data:image/jpeg;base64," + base64.b64encode(jpg.tobytes()).decode("ascii")
    return None


_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 16px; color: #222; }
table { border-collapse: collapse; } td, th { padding: 6px 10px; border-bottom: 1px solid #ddd; text-align: left; vertical-align: middle; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #2ca02c; } .skipped { color: #1f77b4; } .failed { color: #d62728; font-weight: 600; }
img { display: block; border: 1px solid #ccc; } .err { color: #d62728; max-width: 40em; }
"""


def build_index(out: Path, rows: Sequence[BatchRow], title: str = "video3d batch") -> str:
    """HTML of the batch index (links are relative to ``out``)."""
    counts = {s: sum(r.status == s for r in rows) for s in ("ok", "skipped", "failed")}
    lines = []
    for r in rows:
        folder = out / r.name
        page = folder / VIEWER_NAME
        href = quote(r.name) + "/" + VIEWER_NAME if page.is_file() else None
        thumb = thumbnail_uri(folder, r.video) if folder.is_dir() else None
        img = f'<img src="{thumb}" width="{THUMB_WIDTH}" alt="">' if thumb else ""
        link = (lambda inner: f'<a href="{html.escape(href)}">{inner}</a>' if href else inner)
        lines.append(
            "<tr>"
            f"<td>{link(img) if img else ''}</td>"
            f"<td>{link(html.escape(r.name))}<br><small>{html.escape(str(r.video))}</small></td>"
            f'<td class="{html.escape(r.status)}">{html.escape(r.status)}</td>'
            f'<td class="num">{int(r.frames)}</td>'
            f'<td class="num">{r.seconds:.1f}</td>'
            f'<td class="err">{html.escape(r.error)}</td>'
            "</tr>")
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body>\n<h1>{html.escape(title)}</h1>\n"
            f"<p>{len(rows)} videos: {summary or 'none'} · written {time.strftime('%Y-%m-%d %H:%M:%S')}</p>\n"
            "<table><thead><tr><th></th><th>video</th><th>status</th><th>frames</th><th>seconds</th><th>error</th>"
            "</tr></thead><tbody>\n" + "\n".join(lines) + "\n</tbody></table>\n</body></html>\n")


def write_index(out: str | Path, rows: Sequence[BatchRow], title: str = "video3d batch") -> Path:
    """Write ``out/index.html`` atomically and return its path."""
    out = Path(out)
    path = out / INDEX_NAME
    text = build_index(out, rows, title)
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
