"""What a run can be told (:class:`RunOptions`) and the 2D detector it names.

Kept apart from :mod:`video3d.pipeline` so that light processes (the CLI's
argument handling, detection children) need neither torch nor the lifters.
"""
from __future__ import annotations

from dataclasses import dataclass

from video3d.errors import UserError


@dataclass
class RunOptions:
    """Everything `video3d run` / `batch` can be told (CLI flags map 1:1)."""

    lifter: str | None = None  # None: the --weights card decides, else the registry's default
    weights: str | None = None
    device: str = "auto"
    detector: str = "blazepose"
    person: str = "auto"
    render: bool = True
    flip: bool = True
    max_gap_s: float = 0.5
    smooth_2d: str = "none"
    smooth_3d: str = "none"
    bones: str = "consistent"  # 'consistent': per-clip bone lengths (video3d.lift.bones); 'raw': as lifted
    export_bvh: bool = False
    viewer: bool = True
    max_render_height: int = 720
    mmpose_preset: str = "hrnet-w32"
    pose_config: str | None = None
    pose_checkpoint: str | None = None
    det_config: str | None = None
    det_checkpoint: str | None = None
    fov_deg: float = 60.0  # long-side field of view for the root trajectory (video3d.lift.trajectory)
    fuse_detector_3d: bool = True  # average with the detector's own 3D when it gives one (video3d.lift.fusion)
    sequential: bool = False  # detect and render in this process only (no child processes); outputs are identical
    detect_workers: int = 0  # segments detected at once (0: one per usable core); outputs do not depend on it

    def settings_key(self) -> dict:
        """The options that change outputs (used to key the batch manifest)."""
        d = dict(self.__dict__)
        for key in ("device", "sequential", "detect_workers"):
            d.pop(key)
        return d


def make_detector(options: RunOptions):
    """The 2D backend named by ``options.detector``."""
    if options.detector == "blazepose":
        from video3d.detect.blazepose import BlazePoseDetector
        return BlazePoseDetector()
    if options.detector == "mmpose":
        from video3d.detect.mmpose import MMPoseDetector
        return MMPoseDetector(preset=options.mmpose_preset, pose_config=options.pose_config,
                              pose_checkpoint=options.pose_checkpoint, det_config=options.det_config,
                              det_checkpoint=options.det_checkpoint, device=options.device)
    raise UserError(f"unknown --detector {options.detector!r}; expected blazepose or mmpose")
