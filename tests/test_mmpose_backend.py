"""MMPose 2D backend (video3d/detect/mmpose.py).

Tests marked ``mmpose`` build HRNet-W32 and the RTMDet-m person detector from the
configs shipped in mmpose, with random weights (no checkpoint, no network); they
skip with a reason when the optional extra (scripts/install_mmpose.sh) is absent.
The rest (presets, checkpoint resolution and the offline error, weights-only
loading, the missing-extra error) need only torch and always run.
"""
from __future__ import annotations

import io
import pickle
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from video3d import keypoints as kpmod
from video3d.detect import mmpose as mm
from video3d.detect.base import Detector, PersonKeypoints
from video3d.errors import UserError, WeightsError

W, H = 1280, 720


def _needs_stack() -> None:
    """Skip unless the OpenMMLab extra is installed and importable."""
    if not mm.is_available():
        pytest.skip("optional mmpose extra not installed (run scripts/install_mmpose.sh)")
    try:
        mm.check_install()
    except UserError as exc:
        pytest.skip(f"optional mmpose extra not importable: {exc}")


@pytest.fixture(scope="module")
def detector() -> mm.MMPoseDetector:
    """HRNet-W32 + RTMDet-m, random weights, CPU; every box kept, at most two people.

    One torch thread: on a shared 2-core machine two OpenMP threads competing with
    other processes made HRNet ~10x slower (see docs/mmpose.md, pitfalls).
    """
    _needs_stack()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    det = mm.MMPoseDetector("hrnet-w32", device="cpu", det_score_thr=0.0,
                            allow_random_weights=True, max_people=2)
    yield det
    det.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def detected(detector: mm.MMPoseDetector) -> tuple[np.ndarray, np.ndarray, list[PersonKeypoints]]:
    """(boxes, box scores, people) for the generated frame: one detector pass, shared by tests."""
    frame = _frame()
    boxes, scores = detector.detect_people(np.ascontiguousarray(frame[..., ::-1]))
    people = detector.detect(frame)
    return boxes, scores, people


@pytest.fixture()
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty torch hub cache and no network; returns the checkpoint cache dir."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def no_network(url: str, dst: Path) -> None:
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(mm, "_download", no_network)
    return tmp_path / "hub" / "checkpoints"


def _frame() -> np.ndarray:
    """A 720p RGB frame with a stick figure (the detector has random weights anyway)."""
    import cv2

    img = np.full((H, W, 3), 90, np.uint8)
    joints = {"head": (640, 170), "neck": (640, 240), "hip": (640, 420), "lh": (600, 600), "rh": (680, 600),
              "la": (560, 330), "ra": (720, 330)}
    for a, b in (("neck", "hip"), ("hip", "lh"), ("hip", "rh"), ("neck", "la"), ("neck", "ra")):
        cv2.line(img, joints[a], joints[b], (230, 200, 180), 18)
    cv2.circle(img, joints["head"], 45, (230, 200, 180), -1)
    return img


# ------------------------------------------------------------ always (torch only)


def test_presets_are_data() -> None:
    for table in (mm.POSE_PRESETS, mm.DET_PRESETS):
        for name, p in table.items():
            assert p.config.endswith(".py"), name
            assert p.url.startswith("https://download.openmmlab.com/mmpose/"), name
            assert mm._SHA_PREFIX.search(p.url), f"{name}: no SHA-256 prefix in {p.url}"
    assert {"hrnet-w32", "hrnet-w48", "rtmpose-m"} <= set(mm.POSE_PRESETS)
    assert mm.POSE_PRESETS["hrnet-w32"].input_size == (192, 256)


def test_missing_extra_is_one_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    real = mm.importlib.util.find_spec
    monkeypatch.setattr(mm.importlib.util, "find_spec",
                        lambda name, *a: None if name.split(".")[0] == "mmpose" else real(name, *a))
    with pytest.raises(UserError) as err:
        mm.MMPoseDetector()
    assert str(err.value) == "the mmpose backend is not installed: run scripts/install_mmpose.sh (see README)"
    assert not mm.is_available()


def test_offline_without_checkpoint_is_one_clear_error(offline: Path) -> None:
    url = mm.POSE_PRESETS["hrnet-w48"].url
    with pytest.raises(WeightsError) as err:
        mm.resolve_checkpoint("pose", "hrnet-w48", url, None, "--pose-checkpoint")
    msg = str(err.value)
    assert "\n" not in msg
    assert "'hrnet-w48'" in msg and url in msg and "--pose-checkpoint PATH" in msg


def test_checkpoint_resolution_order(offline: Path, tmp_path: Path) -> None:
    url = mm.POSE_PRESETS["hrnet-w32"].url
    cached = offline / url.rsplit("/", 1)[-1]
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"x")
    assert mm.resolve_checkpoint("pose", "hrnet-w32", url, None, "--pose-checkpoint") == str(cached)
    local = tmp_path / "mine.pth"
    local.write_bytes(b"y")
    assert mm.resolve_checkpoint("pose", "hrnet-w32", url, str(local), "--pose-checkpoint") == str(local)
    assert mm.resolve_checkpoint("pose", "hrnet-w32", url, None, "--pose-checkpoint", allow_random=True) is None
    with pytest.raises(WeightsError, match="not found"):
        mm.resolve_checkpoint("pose", "hrnet-w32", url, str(tmp_path / "missing.pth"), "--pose-checkpoint")
    with pytest.raises(WeightsError, match="custom config my_cfg: pass --det-checkpoint PATH"):
        mm.resolve_checkpoint("person detector", "my_cfg", None, None, "--det-checkpoint")


def _save_numpy1_style(obj: dict, path: Path, legacy: bool = False) -> None:
    """torch.save, then rename numpy-2 pickle globals to the numpy-1 names old checkpoints use.

    legacy=True writes the pre-zip format that OpenMMLab's publish_model tools use.
    """
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    if legacy:  # protocol-2 GLOBAL opcodes are newline-terminated text: a plain replace is safe
        path.write_bytes(buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
        return
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data.pkl"):
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            dst.writestr(info, data)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_weights_only_loading_of_trusted_checkpoints(tmp_path: Path, legacy: bool) -> None:
    torch.manual_seed(1)
    src, dst = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    meta = {"dataset_meta": {"sigmas": np.array([0.026, 0.025]), "num_keypoints": np.int64(17)}}
    path = tmp_path / "ckpt.pth"
    state = {f"module.{k}": v for k, v in src.state_dict().items()}
    _save_numpy1_style({"state_dict": state, "meta": meta}, path, legacy)
    if not legacy:
        with zipfile.ZipFile(path) as z:
            assert b"numpy.core.multiarray" in z.read(next(n for n in z.namelist() if n.endswith("data.pkl")))
    with pytest.raises(pickle.UnpicklingError):  # what torch >= 2.6 does without the shim
        torch.load(path, weights_only=True)
    got = mm.load_trusted_checkpoint(dst, str(path))
    assert torch.equal(dst.weight, src.weight) and torch.equal(dst.bias, src.bias)
    np.testing.assert_allclose(got["dataset_meta"]["sigmas"], [0.026, 0.025])
    with pytest.raises(pickle.UnpicklingError):  # the allow-list was scoped to that one load
        torch.load(path, weights_only=True)


def test_checkpoint_mismatch_and_arbitrary_objects_are_refused(tmp_path: Path) -> None:
    model = torch.nn.Linear(3, 2)
    partial = tmp_path / "partial.pth"
    torch.save({"state_dict": {"weight": torch.zeros(2, 3)}}, partial)
    with pytest.raises(WeightsError, match="does not match the model config: 1 weights missing"):
        mm.load_trusted_checkpoint(model, str(partial))
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"obj": Path("x")}}, evil)
    with pytest.raises(WeightsError, match="refusing to unpickle"):
        mm.load_trusted_checkpoint(model, str(evil))


def test_expand_box_clips_to_image() -> None:
    np.testing.assert_allclose(mm.expand_box(np.array([100, 100, 300, 500.]), 1.5, W, H), [50, 0, 350, 600])
    np.testing.assert_allclose(mm.expand_box(np.array([1200, 600, 1280, 720.]), 2.0, W, H), [1160, 540, 1280, 720])


# ------------------------------------------------------------ with the mmpose extra


@pytest.mark.mmpose
def test_stack_imports_with_platform_shims() -> None:
    _needs_stack()
    import torchvision  # noqa: F401  (CUDA wheel + CPU torch needs the schema shim)

    versions = mm.check_install()
    assert "mmpose 1.3.2" in versions and "mmcv 2.1.0" in versions
    # the schema shim is applied exactly when torchvision's compiled ops cannot load
    assert (mm._TORCHVISION_SCHEMAS is not None) == (not mm._torchvision_compiled_ops_load())
    for p in list(mm.POSE_PRESETS.values()) + list(mm.DET_PRESETS.values()):
        assert mm.preset_config_path(p).is_file()


@pytest.mark.mmpose
def test_offline_detector_names_the_flag(offline: Path) -> None:
    _needs_stack()
    with pytest.raises(WeightsError) as err:
        mm.MMPoseDetector("rtmpose-m", device="cpu")
    msg = str(err.value)
    assert "'rtmpose-m'" in msg and mm.POSE_PRESETS["rtmpose-m"].url in msg and "--pose-checkpoint PATH" in msg
    assert "\n" not in msg


@pytest.mark.mmpose
def test_local_checkpoints_load_into_the_preset_models(tmp_path: Path) -> None:
    """--pose-checkpoint/--det-checkpoint: OpenMMLab-style files (numpy meta) load weights-only."""
    _needs_stack()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(2)
        src = mm.MMPoseDetector("rtmpose-t", det_preset="rtmdet-nano", device="cpu", allow_random_weights=True)
        files = {}
        for name, model in (("pose", src.pose_model), ("det", src.det_model)):
            files[name] = tmp_path / f"{name}.pth"
            meta = {"dataset_meta": dict(model.dataset_meta)} if name == "pose" else {}
            _save_numpy1_style({"state_dict": model.state_dict(), "meta": meta}, files[name])
        torch.manual_seed(3)
        got = mm.MMPoseDetector("rtmpose-t", det_preset="rtmdet-nano", device="cpu",
                                pose_checkpoint=str(files["pose"]), det_checkpoint=str(files["det"]))
        assert not got.random_weights and got.name == "mmpose:rtmpose-t"
        for a, b in ((src.pose_model, got.pose_model), (src.det_model, got.det_model)):
            sa, sb = a.state_dict(), b.state_dict()
            assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
        assert isinstance(got.pose_model.dataset_meta["sigmas"], np.ndarray)
        with pytest.raises(WeightsError, match="does not match the model config"):  # wrong file for the config
            mm.MMPoseDetector("rtmpose-t", det_preset="rtmdet-nano", device="cpu",
                              pose_checkpoint=str(files["det"]), det_checkpoint=str(files["det"]))
    finally:
        torch.set_num_threads(threads)


@pytest.mark.mmpose
def test_detect_shapes_and_protocol(detector: mm.MMPoseDetector, detected: tuple) -> None:
    assert isinstance(detector, Detector)
    assert detector.name == "mmpose:hrnet-w32" and detector.keypoint_format == "coco"
    assert detector.random_weights
    boxes, scores, people = detected
    assert boxes.shape == (len(scores), 4) and 1 <= len(scores) <= 2
    assert np.all(np.diff(scores) <= 0), "people must be sorted by score"
    assert len(people) == len(boxes)
    for p, box in zip(people, boxes):
        assert isinstance(p, PersonKeypoints) and p.format == "coco"
        assert p.keypoints.shape == (17, 2) and p.scores.shape == (17,) and p.bbox.shape == (4,)
        assert np.all((p.scores >= 0) & (p.scores <= 1))
        np.testing.assert_allclose(p.bbox, box, atol=1e-3)
        # top-down keypoints lie in the crop (box padded by 1.25, aspect fixed to 3:4) in
        # full-image pixels, give or take one heatmap pixel (mmpose puts joints whose
        # heatmap has no positive value at heatmap pixel -1)
        c, half = 0.5 * (box[:2] + box[2:]), 0.5 * 1.25 * (box[2:] - box[:2])
        half = np.maximum(half, [half[1] * 0.75, half[0] / 0.75]) * (1 + 2 / 48) + 1.0
        assert np.all(np.abs(p.keypoints - c) <= half)


@pytest.mark.mmpose
def test_keypoints_map_back_to_the_full_image(detector: mm.MMPoseDetector,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Drive HRNet's heatmaps to known peaks and check the decoded full-image pixels."""
    model = detector.pose_model
    hm_w, hm_h = 48, 64  # heatmap of a 192x256 input, stride 4
    peaks = np.array([(2 + 2 * j, 3 + 3 * j) for j in range(17)])
    heat = torch.zeros(1, 17, hm_h, hm_w)
    for j, (x, y) in enumerate(peaks):
        heat[0, j, y, x] = 0.8 if j else 1.3  # >1 must be clipped to 1

    monkeypatch.setattr(model.head, "forward", lambda feats: heat.expand(len(feats[-1]), -1, -1, -1))
    monkeypatch.setattr(model, "test_cfg", dict(model.test_cfg, flip_test=False))
    box = np.array([100.0, 100.0, 400.0, 600.0])
    kp, sc = detector.estimate(np.zeros((H, W, 3), np.uint8), box[None])

    # mmpose top-down: box -> centre, scale*1.25 padded, widened to 3:4; input pixel = 4 * heatmap pixel
    centre = np.array([250.0, 350.0])
    scale = np.array([1.25 * 500 * 0.75, 1.25 * 500])
    expected = centre - scale / 2 + peaks * 4 / np.array([192, 256]) * scale
    np.testing.assert_allclose(kp[0], expected, atol=1e-3)
    np.testing.assert_allclose(sc[0], [1.0] + [0.8] * 16, atol=1e-6)


@pytest.mark.mmpose
def test_hint_box_and_detection_interval(detector: mm.MMPoseDetector, monkeypatch: pytest.MonkeyPatch) -> None:
    frame = _frame()
    hint = np.array([560.0, 120.0, 720.0, 620.0])
    calls: list[int] = []

    def nobody(bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # the person detector finds no one
        calls.append(1)
        return np.zeros((0, 4)), np.zeros(0)

    monkeypatch.setattr(detector, "detect_people", nobody)
    assert detector.detect(frame) == []
    people = detector.detect(frame, hint=hint)  # the missed person is looked for in the hint box
    assert len(people) == 1 and people[0].keypoints.shape == (17, 2)
    np.testing.assert_allclose(people[0].bbox, mm.expand_box(hint, detector.HINT_EXPAND, W, H))

    score = [0.9]
    monkeypatch.setattr(detector, "estimate", lambda bgr, boxes: (np.zeros((len(boxes), 17, 2)),
                                                                    np.full((len(boxes), 17), score[0])))
    monkeypatch.setattr(detector, "det_every", 3)
    monkeypatch.setattr(detector, "_frame_index", 0)
    calls.clear()
    for _ in range(6):
        assert len(detector.detect(frame, hint=hint)) == 1
    assert len(calls) == 2  # frames 0 and 3; the others reuse the hint box
    assert detector.detect(frame) == [] and len(calls) == 3  # no hint: always detect
    score[0] = 0.1  # a weak hint-only result (person probably lost) brings the detector back
    calls.clear()
    detector.detect(frame, hint=hint)  # frame 7: hint only, weak
    detector.detect(frame, hint=hint)  # frame 8: detector again
    assert len(calls) == 1


@pytest.mark.mmpose
def test_output_converts_with_the_lifters_mapping(detected: tuple) -> None:
    """The adapter outputs COCO-17; H36M comes from keypoints.coco_to_h36m (the lifters' mapping)."""
    person = detected[2][0]
    h36m, scores = kpmod.to_h36m(person.keypoints, person.scores, "coco")
    k = person.keypoints
    assert h36m.shape == (17, 2) and scores.shape == (17,)
    np.testing.assert_allclose(h36m[0], (k[11] + k[12]) / 2, rtol=1e-6)        # pelvis = mid hips
    np.testing.assert_allclose(h36m[8], (k[5] + k[6]) / 2, rtol=1e-6)          # thorax = mid shoulders
    np.testing.assert_allclose(h36m[9], k[0])                                  # neck/nose = nose
    ears, thorax = (k[3] + k[4]) / 2, (k[5] + k[6]) / 2                        # head uses the ears
    np.testing.assert_allclose(h36m[10], ears + kpmod.HEAD_EXTRAPOLATION * (ears - thorax), rtol=1e-5)
    np.testing.assert_allclose(h36m[[1, 4, 11, 14]], k[[12, 11, 5, 6]])
