"""Several people: multi-person BlazePose (LiteRT), identities (OC-SORT), plausibility, the crossing clip."""
from __future__ import annotations

import numpy as np
import pytest

from video3d.errors import UserError

from video3d.detect.base import PersonKeypoints
from video3d.detect.plausible import implausible_frames
from video3d.errors import NoPersonError


def _person(x: float, y: float = 100.0, h: float = 120.0, score: float = 0.9) -> PersonKeypoints:
    rng = np.random.default_rng(int(x * 10) % 1000)
    kp = np.stack([np.full(33, x), np.linspace(y - h / 2, y + h / 2, 33)], 1) + rng.normal(0, 3, (33, 2))
    kp[:, 0] += np.linspace(-h / 6, h / 6, 33)[rng.permutation(33)]
    return PersonKeypoints(kp.astype(np.float32), np.full(33, score, np.float32),
                           np.r_[kp.min(0), kp.max(0)], "blazepose")


class FakeMulti:
    """Replays a list of per-frame people."""

    name = "fake-multi"
    keypoint_format = "blazepose"

    def __init__(self, frames):
        self.frames = frames
        self.i = 0

    def detect(self, frame, hint=None):
        out = self.frames[self.i]
        self.i += 1
        return out

    def close(self):
        pass


def test_ssd_anchors_and_roi_geometry():
    from video3d.detect.multi import roi_from_points, roi_matrix, ssd_anchors

    a = ssd_anchors()
    assert a.shape == (2254, 2) and a.min() > 0 and a.max() < 1
    # Upright person: hip (100, 200), size point straight above -> no rotation, side 2.5 x distance.
    roi = roi_from_points(np.array([100.0, 200.0]), np.array([100.0, 150.0]))
    assert roi.rotation == pytest.approx(0.0) and roi.side == pytest.approx(125.0)
    m = roi_matrix(roi, 256)
    np.testing.assert_allclose(m @ [128, 128, 1], [100, 200])
    np.testing.assert_allclose(m @ [0, 0, 1], [100 - 62.5, 200 - 62.5])
    # Lying person, head to the right: the crop's "up" points right in the image.
    roi = roi_from_points(np.array([100.0, 200.0]), np.array([150.0, 200.0]))
    up = roi_matrix(roi, 256) @ [128, 0, 1]
    assert up[0] > 150 and abs(up[1] - 200) < 1e-6


def test_identity_tracker_keeps_ids_through_a_gap():
    pytest.importorskip("trackers")
    from video3d.detect.identity import IdentityTracker

    tr = IdentityTracker(fps=10.0, lost_s=1.0)
    ids = []
    for t in range(30):
        people = [_person(50 + 5 * t), _person(400 - 5 * t, y=110)]
        if 12 <= t < 16:
            people = people[:1]  # the second person is hidden for 4 frames
        ids.append(tr.update(people))
    first = [i[0] for i in ids[3:]]
    second = [i[1] for i in ids[3:] if len(i) > 1 and i[1] >= 0]
    assert len(second) >= 30 - 3 - 4 - 2  # at most 2 frames without an id when they come back
    assert len(set(first)) == 1 and len(set(second)) == 1 and first[0] != second[0] and first[0] >= 0


def test_implausible_limbs_and_jumps_rejected():
    from tests.motions import walking_clip
    from video3d.keypoints import coco_to_h36m

    h = coco_to_h36m(walking_clip(40, fps=25.0))[0]
    kp = np.stack([320 + 200 * (h[..., 0] + 0.3 * h[..., 1]), 400 - 200 * h[..., 2]], -1)
    det = np.ones(40, bool)
    assert not implausible_frames(kp, det).any()
    bad = kp.copy()
    bad[10, 16] += [300.0, 0.0]      # right wrist on the neighbour: a 3x forearm
    bad[20] += [400.0, 0.0]          # one frame on another person entirely
    rej = implausible_frames(bad, det)
    assert rej[10] and rej[20] and rej.sum() == 2


def test_people_stage_drops_one_frame_person_and_needs_someone():
    pytest.importorskip("trackers")
    from video3d.detect.people import PeopleStage

    frames = [[_person(50 + 4 * t)] + ([_person(300)] if t == 5 else []) for t in range(20)]
    stage = PeopleStage(FakeMulti(frames), fps=10.0, image_size=(400, 200))
    for _ in frames:
        stage.push(np.zeros((200, 400, 3), np.uint8))
    seqs = stage.finish()
    assert len(seqs) == 1 and seqs[0].valid.sum() >= 18
    empty = PeopleStage(FakeMulti([[] for _ in range(5)]), fps=10.0, image_size=(400, 200))
    for _ in range(5):
        empty.push(np.zeros((200, 400, 3), np.uint8))
    with pytest.raises(NoPersonError):
        empty.finish()


@pytest.fixture(scope="module")
def crossing(tmp_path_factory):
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("trackers")
    from video3d.demo.crossing import make_crossing_clip, truth_2d

    path, motions, cam = make_crossing_clip(tmp_path_factory.mktemp("cross") / "crossing.mp4")
    return path, truth_2d(motions, cam)


def test_crossing_mannequins_zero_identity_switches(crossing):
    from video3d.detect.multi import MultiBlazePoseDetector
    from video3d.detect.people import detect_people
    from video3d.io.video import iter_frames, probe

    path, truth = crossing
    info = probe(path)
    det = MultiBlazePoseDetector()
    try:
        seqs = detect_people(iter_frames(path, info), det, fps=info.fps, image_size=(info.width, info.height))
    finally:
        det.close()
    P, T = truth.shape[:2]
    height = np.median(truth[..., 1].max(-1) - truth[..., 1].min(-1), axis=1)  # (P,)
    owner = np.full((P, T), -1)
    for s in seqs:
        # which truth person each detected (not interpolated) frame of this identity lies on
        dist = np.linalg.norm(s.keypoints_2d[None] - truth, axis=-1)  # (P, T, 17), NaN off-track
        d = np.where(np.isfinite(dist).any(-1), np.nanmedian(np.where(np.isfinite(dist), dist, np.inf), -1), np.inf)
        d = d / height[:, None]
        for t in np.nonzero(s.valid)[0]:
            p = int(np.argmin(d[:, t]))
            if d[p, t] < 0.25:
                assert owner[p, t] in (-1, s.track_id)
                owner[p, t] = s.track_id
    switches = sum(int(np.count_nonzero(np.diff(o[o >= 0]))) for o in owner)
    ids = [set(o[o >= 0].tolist()) for o in owner]
    assert switches == 0, owner
    assert all(len(i) == 1 for i in ids) and ids[0] != ids[1], ids
    coverage = (owner >= 0).mean(axis=1)
    assert coverage.min() >= 0.7, coverage


def _walkers(t: int) -> list[PersonKeypoints]:
    """Two people walking towards each other in a 160x120 frame (tall enough to lift)."""
    return [_person(30 + 2 * t, y=60, h=80), _person(130 - 2 * t, y=58, h=70)]


def test_person_all_writes_people_npz(tmp_path, tiny_weights, monkeypatch):
    pytest.importorskip("trackers")
    import video3d.people as people_mod
    from tests.videos import blank_video
    from video3d.pipeline import RunOptions, run_video

    frames = 12
    video = blank_video(tmp_path / "walkers.mp4", frames=frames, size=(160, 120), fps=10)
    monkeypatch.setattr(people_mod, "make_multi_detector",
                        lambda options: FakeMulti([_walkers(t) for t in range(frames)]))
    opts = RunOptions(person="all", weights=str(tiny_weights["ktpformer"]), render=True, export_bvh=True)
    result = run_video(video, tmp_path / "out", opts)
    d = result.out_dir
    with np.load(d / "people.npz") as z:
        expected = {"track_ids", "keypoints_2d", "scores_2d", "keypoints_3d_camera", "keypoints_3d_world",
                    "root_translation", "valid", "fps", "image_size", "joint_names", "parents", "detector",
                    "lifter", "weights_sha256"}
        assert set(z.files) == expected
        P = len(z["track_ids"])
        assert P == 2 and len(set(z["track_ids"].tolist())) == 2
        assert z["keypoints_2d"].shape == (P, frames, 17, 2) and z["scores_2d"].shape == (P, frames, 17)
        assert z["keypoints_3d_camera"].shape == z["keypoints_3d_world"].shape == (P, frames, 17, 3)
        assert z["root_translation"].shape == (P, frames, 3) and z["valid"].shape == (P, frames)
        assert z["valid"].sum(1).min() >= frames - 3
        ok = z["valid"]
        assert np.isfinite(z["root_translation"][ok]).all() and (z["root_translation"][ok][:, 2] > 0).all()
        # the first person starts on the left and the second on the right, in 3D too
        x = z["root_translation"][..., 0]
        first = int(np.argmax(ok.all(0)))
        assert x[0, first] < x[1, first]
    with np.load(d / "keypoints.npz") as k:
        assert k["keypoints_2d"].shape == (frames, 17, 2) and k["root_translation"].shape == (frames, 3)
    for name in ("people.json", "people_3d.csv", "overlay.mp4", "skeleton3d.mp4", "keypoints.json", "viewer.html"):
        assert (d / name).is_file(), name
    assert len(list(d.glob("skeleton_*.bvh"))) == 2
    from video3d.viewer.result import load_result

    assert len(load_result(d).people) == 2  # the viewer shows every tracked person
    (tmp_path / "out" / "blocked").write_text("a file where a result folder would go")
    with pytest.raises(UserError):  # same destination rules as single-person runs
        run_video(video, tmp_path / "out", opts, output_name="blocked")


def test_person_all_on_empty_video_is_one_error_line(tmp_path, capsys, tiny_weights):
    pytest.importorskip("ai_edge_litert")
    pytest.importorskip("trackers")
    from tests.videos import blank_video
    from video3d.cli import main

    video = blank_video(tmp_path / "blank.mp4", frames=6)
    code = main(["run", str(video), "--out", str(tmp_path / "out"), "--person", "all",
                 "--weights", str(tiny_weights["ktpformer"])])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    lines = [l for l in err.splitlines() if l.startswith("error:")]
    assert len(lines) == 1 and "no person" in lines[0]
    assert not (tmp_path / "out" / "blank").exists()


def test_shared_world_places_people_by_their_trajectories():
    from video3d.export.people import shared_world
    from video3d.pose import PoseSequence

    T = 5
    pose = np.zeros((T, 17, 3))
    pose[:, 8] = [0, -0.5, 0]   # thorax above the pelvis (camera y down)
    pose[:, 3] = [0, 0.9, 0]    # a foot below
    seqs = []
    for x, z in ((-1.0, 4.0), (1.0, 6.0)):
        s = PoseSequence(np.zeros((T, 17, 2), np.float32), np.ones((T, 17), np.float32), np.ones(T, bool), 25.0,
                         (640, 480), keypoints_3d_camera=pose.astype(np.float32))
        s.root_translation = np.tile([x, 0.0, z], (T, 1))
        seqs.append(s)
    w = shared_world(seqs)
    assert w.shape == (2, T, 17, 3)
    pelvis = w[:, 0, 0]
    np.testing.assert_allclose(pelvis[1] - pelvis[0], [2.0, 2.0, 0.0], atol=1e-5)  # x right, y away, z up
    np.testing.assert_allclose(w[..., 2].min(), 0.0, atol=1e-5)                      # on the floor
    assert (w[:, :, 8, 2] > w[:, :, 0, 2]).all()                                     # thorax above pelvis
