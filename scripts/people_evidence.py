"""Evidence for issue #10 -> docs/people_evidence.json.

1. The crossing-mannequin clip (video3d.demo.crossing): identity switches and
   per-person coverage with the multi-person detector + OC-SORT.
2. ``--person all`` on the real clips (skipped when ../shared/media is absent):
   identities found and the frames each is tracked in (``run_video``, no render).
3. ``--person auto`` on park.mp4: whole-skeleton jumps between adjacent valid
   frames (median joint displacement > 0.5 x the person's median 2D height).
Usage: python scripts/people_evidence.py [out_dir]
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from video3d.demo.crossing import make_crossing_clip, truth_2d  # noqa: E402
from video3d.detect.multi import MultiBlazePoseDetector  # noqa: E402
from video3d.detect.people import detect_people  # noqa: E402
from video3d.io.video import iter_frames, probe  # noqa: E402
from video3d.pipeline import RunOptions, detect_2d, run_video  # noqa: E402
from video3d.progress import StageProgress  # noqa: E402

MEDIA = ROOT.parent / "shared" / "media"


def crossing(tmp: Path) -> dict:
    path, motions, cam = make_crossing_clip(tmp / "crossing.mp4")
    truth = truth_2d(motions, cam)
    info = probe(path)
    det = MultiBlazePoseDetector()
    seqs = detect_people(iter_frames(path, info), det, fps=info.fps, image_size=(info.width, info.height))
    det.close()
    P, T = truth.shape[:2]
    height = np.median(truth[..., 1].max(-1) - truth[..., 1].min(-1), axis=1)
    owner = np.full((P, T), -1)
    for s in seqs:
        dist = np.linalg.norm(s.keypoints_2d[None] - truth, axis=-1)
        d = np.where(np.isfinite(dist).all(-1), np.median(np.nan_to_num(dist, nan=np.inf), -1), np.inf) / height[:, None]
        for t in np.nonzero(s.valid)[0]:
            p = int(np.argmin(d[:, t]))
            if d[p, t] < 0.25:
                owner[p, t] = s.meta["track_id"]
    return {"frames": T, "identities_output": len(seqs),
            "identity_switches": int(sum(np.count_nonzero(np.diff(o[o >= 0])) for o in owner)),
            "ids_per_person": [sorted(set(o[o >= 0].tolist())) for o in owner],
            "coverage_per_person": [round(float((o >= 0).mean()), 3) for o in owner]}


def jumps(kp: np.ndarray, valid: np.ndarray) -> int:
    h = np.nanmedian(kp[valid, :, 1].max(-1) - kp[valid, :, 1].min(-1))
    idx = np.nonzero(valid)[0]
    d = [np.median(np.linalg.norm(kp[b] - kp[a], axis=-1)) for a, b in zip(idx[:-1], idx[1:]) if b == a + 1]
    return int(np.sum(np.asarray(d) > 0.5 * h))


def main() -> None:
    torch.set_num_threads(1)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t = time.perf_counter()
        out["crossing_mannequins"] = crossing(tmp)
        print("crossing", out["crossing_mannequins"], f"{time.perf_counter() - t:.0f}s", flush=True)
        for name, rel in (("park", "street/park.mp4"), ("cam01", "multicam/videos/cam01.mp4")):
            video = MEDIA / rel
            if not video.is_file():
                out[name] = "skipped: not available"
                continue
            t = time.perf_counter()
            res = run_video(video, tmp / "out", RunOptions(person="all", render=False))
            with np.load(res.out_dir / "people.npz") as z:
                valid, ids = z["valid"], z["track_ids"]
                root = z["root_translation"]
                jump_all = [jumps(z["keypoints_2d"][p], valid[p]) for p in range(len(ids))]
                depth = [round(float(np.nanmedian(root[p, :, 2])), 2) for p in range(len(ids))]
            out[name] = {"frames": res.num_frames, "identities": ids.tolist(),
                         "frames_tracked": valid.sum(1).tolist(), "median_depth_m": depth,
                         "whole_skeleton_jumps": jump_all, "seconds": round(time.perf_counter() - t, 1)}
            print(name, out[name], flush=True)
        park = MEDIA / "street/park.mp4"
        if park.is_file():
            info = probe(park)
            seq = detect_2d(info, RunOptions(person="auto"), StageProgress(None))
            out["park_person_auto"] = {"frames": len(seq), "valid": int(seq.valid.sum()),
                                       "implausible_frames_rejected": int(seq.meta.get("implausible_frames", 0)),
                                       "tracker_rejected_frames": int(seq.meta.get("rejected_frames", 0)),
                                       "whole_skeleton_jumps": jumps(seq.keypoints_2d, seq.valid)}
            print("park auto", out["park_person_auto"], flush=True)
    (ROOT / "docs" / "people_evidence.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
