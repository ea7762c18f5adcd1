"""Interactive result viewer: a self-contained ``viewer.html`` per result and a batch ``index.html``."""
from video3d.viewer.page import VIEWER_NAME, build_page, write_viewer
from video3d.viewer.result import ViewerResult, load_result

__all__ = ["VIEWER_NAME", "ViewerResult", "build_page", "load_result", "write_viewer"]
