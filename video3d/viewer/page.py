"""``viewer.html``: one self-contained page per result (works from file://, offline).

The page inlines the vendored three.js subset (``three.min.js``, MIT, built by
``scripts/vendor_three.sh``), the keypoints as a compact JSON payload
(:mod:`video3d.viewer.payload`) and links the video by a relative URL.
"""
from __future__ import annotations

import html
import json
import os
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from video3d.io.atomic import atomic_file
from video3d.viewer.payload import build_payload
from video3d.viewer.result import load_result

VIEWER_NAME = "viewer.html"
#: Rendered overlay video, preferred as the page's video when the result has one.
OVERLAY_NAME = "overlay.mp4"
#: The multi-view result's video (views + reprojection + 3D), shown when there is no overlay.
MULTIVIEW_NAME = "multiview.mp4"


def _asset(name: str) -> str:
    return resources.files("video3d.viewer").joinpath(name).read_text(encoding="utf-8")


def video_link(folder: Path, source_video: str | Path | None = None, page_dir: Path | None = None) -> str | None:
    """URL of the video the page shows, relative to the page when possible.

    ``folder/overlay.mp4`` (or ``multiview.mp4``) when it exists, else ``source_video`` (relative to
    ``page_dir``, the folder the page will finally live in; default ``folder``),
    else None.
    """
    for name in (OVERLAY_NAME, MULTIVIEW_NAME):
        if (folder / name).is_file():
            return name
    if source_video is None:
        return None
    src = Path(source_video).resolve()
    base = (page_dir or folder).resolve()
    try:
        rel = os.path.relpath(src, base)
    except ValueError:  # another drive (Windows)
        return src.as_uri()
    return quote(Path(rel).as_posix())


def build_page(folder: str | Path, title: str | None = None, video: str | None = None) -> str:
    """The HTML of the viewer for a result folder (see :func:`video3d.viewer.result.load_result`).

    video: URL of the video relative to the page (:func:`video_link`), or None for none.
    Raises UserError when the folder's keypoints are missing or unreadable.
    """
    folder = Path(folder)
    result = load_result(folder)
    payload = build_payload(result, title or folder.name, video)
    data = json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    page = _asset("template.html")
    # THREE last: the library text is never searched for placeholders.
    page = page.replace("{{TITLE}}", html.escape(payload["title"])).replace("{{DATA}}", data)
    return page.replace("{{THREE}}", _asset("three.min.js"))


def write_viewer(folder: str | Path, source_video: str | Path | None = None, page_dir: str | Path | None = None,
                 title: str | None = None) -> Path:
    """Write ``folder/viewer.html`` atomically and return its path.

    folder: the result folder (may be a staging folder renamed to ``page_dir`` later;
    relative links are computed against ``page_dir``). source_video: the input video,
    linked when the folder has no ``overlay.mp4``.
    """
    folder = Path(folder)
    page_dir = Path(page_dir) if page_dir is not None else folder
    text = build_page(folder, title or page_dir.name, video_link(folder, source_video, page_dir))
    path = folder / VIEWER_NAME
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
