"""Root trajectory accuracy on mocap filmed by known virtual cameras -> docs/trajectory.json.

Two people per scene: two held-out CMU clips (validation subjects of the
shipped weights: 7, 11, 131), the second shifted by a random 1.5-4 m on the
floor, both filmed by one static camera from
:func:`video3d.data.virtual_camera.random_camera` (the training camera
distribution: 40-90 deg long-side FOV, 10 % telephoto) framing both. The 2D
gets detector-like noise (:func:`video3d.data.noise.detector_noise`), the
shipped lifter lifts each person, and
:func:`video3d.lift.trajectory.root_trajectory` places the pelvis with

* the true focal length (a calibrated camera), and
* the default ``--fov`` of 60 deg (an ordinary video: focal unknown).

Reported: pelvis position error / true camera distance (median, p90) and the
fraction of frames where the nearer person (by pelvis depth) is estimated
nearer (all frames, and frames whose true depths differ by > 0.5 m).
Usage: python scripts/eval_trajectory.py [pairs] [frames] [lifter]
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from video3d.data.noise import detector_noise  # noqa: E402
from video3d.data.virtual_camera import CameraConfig, random_camera  # noqa: E402
from video3d.geometry.camera import project, world_to_camera  # noqa: E402
from video3d.keypoints import coco_to_h36m  # noqa: E402
from video3d.lift.lifter import Lifter  # noqa: E402
from video3d.lift.trajectory import DEFAULT_FOV_DEG, root_trajectory  # noqa: E402
from video3d.mocap.clips import load_clip  # noqa: E402

MOCAP = ROOT.parent / "shared" / "data" / "mocap" / "cmu"
VAL_SUBJECTS = ("007", "011", "131")


def main() -> None:
    torch.set_num_threads(1)
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    frames = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    lifter_name = sys.argv[3] if len(sys.argv) > 3 else "ktpformer"
    if not MOCAP.is_dir():
        sys.exit(f"error: mocap not found at {MOCAP}")
    files = sorted(p for p in MOCAP.glob("*.bvh") if p.stem.split("_")[0] in VAL_SUBJECTS)
    rng = np.random.default_rng(10)
    lifter = Lifter.load(lifter_name, None, "cpu")
    cfg = CameraConfig()
    rows = []
    for k in range(pairs):
        a, b = rng.choice(len(files), 2, replace=False)
        clips = [load_clip(files[a]), load_clip(files[b])]
        n = min(frames, *(c.num_frames for c in clips))
        lms = [c.landmarks_coco[:n].astype(np.float64) for c in clips]
        # centre each on the origin, then shift the second person on the floor
        lms = [lm - np.r_[lm[0, 11:13].mean(0)[:2], 0.0] for lm in lms]
        ang = rng.uniform(0, 2 * np.pi)
        lms[1] = lms[1] + np.r_[rng.uniform(1.5, 4.0) * np.array([np.cos(ang), np.sin(ang)]), 0.0]
        cam = random_camera(rng, np.concatenate(lms, axis=1), cfg)
        size = (cam.width, cam.height)
        true_root, est, est_fov = [], [], []
        for lm in lms:
            lm_cam = world_to_camera(lm, cam.R, cam.t)
            kp, _ = detector_noise(project(lm_cam, cam), rng, image_size=size)
            kp_h36m = coco_to_h36m(kp)[0]
            truth = coco_to_h36m(lm_cam)[0]
            pose = lifter.lift(kp_h36m, size)
            true_root.append(truth[:, 0])
            est.append(root_trajectory(pose, kp_h36m, size, 50.0, focal=cam.fx, center=(cam.cx, cam.cy)))
            est_fov.append(root_trajectory(pose, kp_h36m, size, 50.0, fov_deg=DEFAULT_FOV_DEG))
        fov = float(np.degrees(2 * np.arctan(0.5 * max(size) / cam.fx)))
        row = {"pair": f"{files[a].stem}+{files[b].stem}", "frames": n, "image_size": list(size),
               "camera_fov_long_deg": round(fov, 1)}
        for label, e in (("true_focal", est), ("fov60", est_fov)):
            rel = np.concatenate([np.linalg.norm(e[p] - true_root[p], axis=1) / np.linalg.norm(true_root[p], axis=1)
                                  for p in range(2)])
            dz_true = true_root[0][:, 2] - true_root[1][:, 2]
            dz_est = e[0][:, 2] - e[1][:, 2]
            right = np.sign(dz_true) == np.sign(dz_est)
            sep = np.abs(dz_true) > 0.5
            row[label] = {"median_rel_error": float(np.nanmedian(rel)), "p90_rel_error": float(np.nanpercentile(rel, 90)),
                          "depth_order_all": float(right.mean()),
                          "depth_order_sep_0.5m": float(right[sep].mean()) if sep.any() else None,
                          "frames_sep_0.5m": int(sep.sum())}
        rows.append(row)
        print(json.dumps(row), flush=True)

    def agg(label: str) -> dict:
        med = [r[label]["median_rel_error"] for r in rows]
        order_all = np.average([r[label]["depth_order_all"] for r in rows], weights=[r["frames"] for r in rows])
        sep = [(r[label]["depth_order_sep_0.5m"], r[label]["frames_sep_0.5m"]) for r in rows
               if r[label]["frames_sep_0.5m"]]
        order_sep = np.average([s for s, _ in sep], weights=[w for _, w in sep]) if sep else float("nan")
        return {"median_of_median_rel_error": float(np.median(med)), "worst_median_rel_error": float(np.max(med)),
                "depth_order_all": float(order_all), "depth_order_sep_0.5m": float(order_sep)}

    out = {"lifter": lifter_name, "pairs": pairs, "frames_per_clip": frames, "fps": 50.0,
           "noise": "detector_noise (training distribution)", "summary": {l: agg(l) for l in ("true_focal", "fov60")},
           "scenes": rows}
    (ROOT / "docs" / "trajectory.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out["summary"], indent=2))


if __name__ == "__main__":
    main()
