"""`video3d view`: make sure a result has its page, then open it (or say where it is)."""
from __future__ import annotations

import os
import sys
import webbrowser
from pathlib import Path

from video3d.viewer.page import VIEWER_NAME, write_viewer
from video3d.viewer.result import load_result


def has_display(environ: dict | None = None, platform: str | None = None) -> bool:
    """Whether a browser window can be shown: on Linux/BSD only with X11 or Wayland."""
    environ = os.environ if environ is None else environ
    platform = platform or sys.platform
    if platform.startswith(("win", "darwin")):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def ensure_viewer(folder: str | Path) -> Path:
    """The result's ``viewer.html``, written if it is missing.

    The keypoints are always read first, so a missing or corrupt ``keypoints.npz``
    raises UserError even when an old page exists.
    """
    folder = Path(folder)
    load_result(folder)
    page = folder / VIEWER_NAME
    if not page.is_file():
        page = write_viewer(folder)
    return page


def open_viewer(folder: str | Path, browser: bool = True) -> tuple[Path, bool]:
    """Ensure the page exists and open it in the default browser when there is a display.

    Returns (page path, whether a browser was asked to open it).
    """
    page = ensure_viewer(folder)
    opened = False
    if browser and has_display():
        try:
            opened = webbrowser.open(page.resolve().as_uri())
        except webbrowser.Error:
            opened = False
    return page, opened
