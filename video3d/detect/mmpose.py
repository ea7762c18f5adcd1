"""MMPose top-down 2D backend: an MMDetection person detector + an MMPose pose model.

Per frame: the person detector (RTMDet by default) finds boxes, the top-down pose
model (HRNet, RTMPose, ...) predicts COCO-17 keypoints inside each box, and every
person found is returned as a :class:`~video3d.detect.base.PersonKeypoints` in
**COCO-17** format, sorted by detection score. Choosing whom to follow is
:mod:`video3d.detect.tracking`'s job; conversion to H36M-17 is done once by
``keypoints.to_h36m(kp, scores, 'coco')`` (i.e. :func:`video3d.keypoints.coco_to_h36m`,
the same function that made the lifters' 2D training inputs). mmpose's own
COCO->H36M mapping differs (head = eye mean, ears unused) and must not be used.

The OpenMMLab stack is optional (``scripts/install_mmpose.sh``, docs/mmpose.md)
and imported lazily, so importing this module never needs it.

Layout:
* presets (data): :data:`POSE_PRESETS`, :data:`DET_PRESETS`;
* platform compatibility shims (applied only when needed, see each docstring):
  :func:`_declare_torchvision_op_schemas`, :func:`_numpy_safe_globals`;
* weights: :func:`resolve_checkpoint`, :func:`load_trusted_checkpoint`;
* the adapter: :class:`MMPoseDetector`.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import pickle
import re
import sys
import urllib.error
import urllib.request
import warnings
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import numpy as np

from video3d.io.atomic import atomic_write
from video3d.detect.base import PersonKeypoints, box_iou
from video3d.errors import UserError, WeightsError

INSTALL_HINT = "the mmpose backend is not installed: run scripts/install_mmpose.sh (see README)"

#: Versions the install script pins (and this adapter was tested with).
STACK_VERSIONS = {"mmengine": "0.10.7", "mmcv": "2.1.0", "mmdet": "3.3.0",
                  "mmpose": "1.3.2", "xtcocotools": "1.14.3", "torchvision": "0.28.0"}

_OPENMMLAB = "https://download.openmmlab.com/mmpose/v1"


# --------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class ModelPreset:
    """A named model: a config shipped inside an installed package + its checkpoint URL.

    Attributes:
        package: 'mmpose' (configs live in ``<package>/.mim/<config>`` when installed
            from the registry, ``<repo>/<config>`` in a source checkout).
        config: path of the config inside the package.
        url: OpenMMLab checkpoint URL (its ``-xxxxxxxx`` part is a SHA-256 prefix).
        input_size: (width, height) of the network input, for documentation.
        coco_ap: COCO val AP published with the checkpoint (pose) or None.
    """

    package: str
    config: str
    url: str
    input_size: tuple[int, int]
    coco_ap: float | None = None


_HM = "configs/body_2d_keypoint/topdown_heatmap/coco"
_RTM = "configs/body_2d_keypoint/rtmpose/coco"
_HM_URL = f"{_OPENMMLAB}/body_2d_keypoint/topdown_heatmap/coco"
_RTM_URL = f"{_OPENMMLAB}/projects/rtmposev1"

#: Top-down COCO-17 pose models (from mmpose 1.3.2's metafiles hrnet_coco.yml, rtmpose_coco.yml).
POSE_PRESETS: dict[str, ModelPreset] = {
    "hrnet-w32": ModelPreset(
        "mmpose", f"{_HM}/td-hm_hrnet-w32_8xb64-210e_coco-256x192.py",
        f"{_HM_URL}/td-hm_hrnet-w32_8xb64-210e_coco-256x192-81c58e40_20220909.pth", (192, 256), 0.746),
    "hrnet-w32-384": ModelPreset(
        "mmpose", f"{_HM}/td-hm_hrnet-w32_8xb64-210e_coco-384x288.py",
        f"{_HM_URL}/td-hm_hrnet-w32_8xb64-210e_coco-384x288-ca5956af_20220909.pth", (288, 384), 0.760),
    "hrnet-w48": ModelPreset(
        "mmpose", f"{_HM}/td-hm_hrnet-w48_8xb32-210e_coco-256x192.py",
        f"{_HM_URL}/td-hm_hrnet-w48_8xb32-210e_coco-256x192-0e67c616_20220913.pth", (192, 256), 0.756),
    "hrnet-w48-384": ModelPreset(
        "mmpose", f"{_HM}/td-hm_hrnet-w48_8xb32-210e_coco-384x288.py",
        f"{_HM_URL}/td-hm_hrnet-w48_8xb32-210e_coco-384x288-c161b7de_20220915.pth", (288, 384), 0.767),
    "rtmpose-t": ModelPreset(
        "mmpose", f"{_RTM}/rtmpose-t_8xb256-420e_aic-coco-256x192.py",
        f"{_RTM_URL}/rtmpose-tiny_simcc-aic-coco_pt-aic-coco_420e-256x192-cfc8f33d_20230126.pth", (192, 256), 0.685),
    "rtmpose-s": ModelPreset(
        "mmpose", f"{_RTM}/rtmpose-s_8xb256-420e_aic-coco-256x192.py",
        f"{_RTM_URL}/rtmpose-s_simcc-aic-coco_pt-aic-coco_420e-256x192-fcb2599b_20230126.pth", (192, 256), 0.722),
    "rtmpose-m": ModelPreset(
        "mmpose", f"{_RTM}/rtmpose-m_8xb256-420e_aic-coco-256x192.py",
        f"{_RTM_URL}/rtmpose-m_simcc-aic-coco_pt-aic-coco_420e-256x192-63eb25f7_20230126.pth", (192, 256), 0.758),
    "rtmpose-l": ModelPreset(
        "mmpose", f"{_RTM}/rtmpose-l_8xb256-420e_aic-coco-256x192.py",
        f"{_RTM_URL}/rtmpose-l_simcc-aic-coco_pt-aic-coco_420e-256x192-f016ffe0_20230126.pth", (192, 256), 0.765),
    "rtmpose-m-384": ModelPreset(
        "mmpose", f"{_RTM}/rtmpose-m_8xb256-420e_aic-coco-384x288.py",
        f"{_RTM_URL}/rtmpose-m_simcc-aic-coco_pt-aic-coco_420e-384x288-a62a0b32_20230228.pth", (288, 384), 0.770),
}

#: Person detectors (mmpose's demo configs; RTMDet-m is what MMPoseInferencer uses).
DET_PRESETS: dict[str, ModelPreset] = {
    "rtmdet-m": ModelPreset(
        "mmpose", "demo/mmdetection_cfg/rtmdet_m_640-8xb32_coco-person.py",
        f"{_OPENMMLAB}/projects/rtmposev1/rtmdet_m_8xb32-100e_coco-obj365-person-235e8209.pth", (640, 640)),
    "rtmdet-nano": ModelPreset(
        "mmpose", "demo/mmdetection_cfg/rtmdet_nano_320-8xb32_coco-person.py",
        f"{_OPENMMLAB}/projects/rtmpose/rtmdet_nano_8xb32-100e_coco-obj365-person-05d8511e.pth", (320, 320)),
}

DEFAULT_POSE_PRESET = "hrnet-w32"
DEFAULT_DET_PRESET = "rtmdet-m"


def preset_config_path(preset: ModelPreset) -> Path:
    """Absolute path of a preset's config inside its installed package (needs the extra)."""
    spec = importlib.util.find_spec(preset.package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(INSTALL_HINT)
    root = Path(next(iter(spec.submodule_search_locations)))
    for candidate in (root / ".mim" / preset.config, root.parent / preset.config):
        if candidate.is_file():
            return candidate
    raise WeightsError(f"config {preset.config} not found in the installed {preset.package} package "
                       f"(expected {preset.package} {STACK_VERSIONS[preset.package]})")


# ------------------------------------------------------------- compatibility shims
# Everything platform-specific lives here; each shim checks first whether it is needed.

# Kept alive for the process: dropping the Library object would unregister the schemas.
_TORCHVISION_SCHEMAS: Any = None


def _torchvision_compiled_ops_load() -> bool:
    """True if torchvision's compiled ops load with this torch (or torchvision is not installed).

    Loads ``torchvision/_C.so`` exactly as ``torchvision.extension`` would; it fails
    when a CUDA torchvision wheel (the registry's default build) meets a CPU-only torch.
    """
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # not installed: importing mmpose reports it
    lib = importlib.machinery.PathFinder.find_spec("_C", list(spec.submodule_search_locations))
    if lib is None or lib.origin is None:
        return False
    try:
        torch.ops.load_library(lib.origin)
    except (OSError, RuntimeError):
        return False
    return True


def _declare_torchvision_op_schemas() -> None:
    """Let a CUDA torchvision wheel import under CPU-only torch (REFERENCE §8).

    Needed only when torchvision's compiled ops cannot load: ``import torchvision``
    then fails with "operator torchvision::nms does not exist", because its
    ``_meta_registrations`` registers fake kernels for ``nms``/``qnms`` whether or
    not the ops exist. Declaring the two schemas (no kernels) lets torchvision's
    pure-Python parts (transforms, models) import. Calling
    ``torchvision.ops.nms`` would then fail, but mmdet/mmpose inference never does:
    mmcv's own compiled nms and RoIAlign do the work. With a matching torchvision
    (e.g. CUDA torch + CUDA torchvision) this is skipped.
    """
    global _TORCHVISION_SCHEMAS
    if _TORCHVISION_SCHEMAS is not None or "torchvision" in sys.modules or _torchvision_compiled_ops_load():
        return
    import torch

    lib = torch.library.Library("torchvision", "FRAGMENT")
    for op in ("nms", "qnms"):
        lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    _TORCHVISION_SCHEMAS = lib


def _numpy_safe_globals() -> AbstractContextManager:
    """Context that lets torch's weights-only unpickler rebuild numpy arrays.

    torch >= 2.6 loads checkpoints weights-only by default and refuses OpenMMLab
    checkpoints whose ``meta`` holds numpy arrays/scalars (e.g. dataset sigmas).
    This allow-lists exactly numpy's array/scalar/dtype reconstruction, under both
    the numpy-1 names (``numpy.core.multiarray``, how the published checkpoints
    were pickled) and the numpy-2 names, for the duration of one load. Used only
    for trusted files (presets' OpenMMLab URLs or a path the user passed) and only
    after a plain weights-only load failed; no arbitrary code can run.
    """
    import torch

    if not hasattr(torch.serialization, "safe_globals"):  # torch < 2.5: weights-only rules differ
        return nullcontext()
    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    allowed: list[Any] = [np.ndarray, np.dtype]
    for fn in (multiarray._reconstruct, multiarray.scalar):
        for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            allowed.append((fn, f"{module}.{fn.__name__}"))
    # Unpickling a dtype instantiates its concrete class (numpy.dtypes.Float32DType, ...).
    allowed += sorted({type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDGSUV"} | {type(np.dtype("O"))},
                      key=lambda t: t.__name__)
    return torch.serialization.safe_globals(allowed)


# --------------------------------------------------------------------- the stack


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the OpenMMLab stack's internal warnings (pkg_resources and torch.jit
    deprecations on import, deprecated autocast, "checkpoint is None", meshgrid
    indexing): none is actionable by a video3d user. ``record=True`` because mmdet
    resets the filters itself (``simplefilter('once')``)."""
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("ignore")
        yield


def _import_stack() -> SimpleNamespace:
    """Import mmpose/mmdet (applying the shims they need) or raise UserError(INSTALL_HINT)."""
    for name in ("mmengine", "mmcv", "mmdet", "mmpose", "xtcocotools"):
        if importlib.util.find_spec(name) is None:
            raise UserError(INSTALL_HINT)
    _declare_torchvision_op_schemas()
    try:
        with _quiet():
            import mmcv.ops  # noqa: F401  (full mmcv with compiled ops; mmcv-lite cannot work)
            from mmdet.apis import inference_detector, init_detector
            from mmpose.apis import inference_topdown, init_model
            from mmpose.utils import adapt_mmdet_pipeline
    except ImportError as exc:
        raise UserError(f"{INSTALL_HINT} (import failed: {exc})") from exc
    return SimpleNamespace(init_model=init_model, inference_topdown=inference_topdown,
                           init_detector=init_detector, inference_detector=inference_detector,
                           adapt_mmdet_pipeline=adapt_mmdet_pipeline)


def check_install() -> str:
    """Import the stack as the detector does; return 'name version, ...' (used by the install script)."""
    from importlib.metadata import version

    _import_stack()
    return ", ".join(f"{name} {version(name)}" for name in STACK_VERSIONS)


def is_available() -> bool:
    """True when the OpenMMLab packages are installed (does not import them)."""
    return all(importlib.util.find_spec(n) is not None for n in ("mmengine", "mmcv", "mmdet", "mmpose"))


# ------------------------------------------------------------------------ weights

_SHA_PREFIX = re.compile(r"-([0-9a-f]{8})(?:_\d{8})?\.pth$")


def checkpoint_cache_dir() -> Path:
    """Where downloaded checkpoints live: torch hub's ``checkpoints`` dir (shared with mmengine/torch)."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _download(url: str, dst: Path) -> None:
    """Fetch ``url`` to ``dst`` atomically; check the SHA-256 prefix OpenMMLab puts in the name.

    Raises OSError (including urllib.error.URLError) when offline or the file is bad.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    expected = _SHA_PREFIX.search(url)
    sha = hashlib.sha256()
    with atomic_write(dst, "wb") as out, urllib.request.urlopen(url, timeout=30) as resp:
        while chunk := resp.read(1 << 20):
            sha.update(chunk)
            out.write(chunk)
        if expected and not sha.hexdigest().startswith(expected.group(1)):
            raise OSError(f"checksum mismatch for {url}")


def resolve_checkpoint(what: str, preset_name: str, url: str | None, local: str | None,
                       flag: str, allow_random: bool = False) -> str | None:
    """Return a local checkpoint path for a model, or None for random weights (tests only).

    Order: the user's ``local`` file; the preset URL's file in the torch hub cache;
    a download of the preset URL into that cache. Offline (or no URL for a custom
    config) raises one WeightsError line naming the preset, the URL and ``flag``.
    what: 'pose' | 'person detector'. flag: the CLI option to pass, e.g. '--pose-checkpoint'.
    """
    if local is not None:
        path = Path(local).expanduser()
        if not path.is_file():
            raise WeightsError(f"{what} checkpoint not found: {path}")
        return str(path)
    if allow_random:
        return None
    if url is None:
        raise WeightsError(f"no {what} checkpoint for the custom config {preset_name}: pass {flag} PATH")
    cached = checkpoint_cache_dir() / url.rsplit("/", 1)[-1]
    if cached.is_file():
        return str(cached)
    print(f"video3d: downloading the {what} weights for '{preset_name}' from {url}", file=sys.stderr)
    try:
        _download(url, cached)
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise WeightsError(
            f"cannot get the {what} weights for mmpose preset '{preset_name}' ({reason}): download {url} "
            f"and pass {flag} PATH (or save it as {cached})") from None
    return str(cached)


def load_trusted_checkpoint(model: Any, path: str) -> dict:
    """Load an OpenMMLab ``.pth`` into ``model`` (weights-only unpickling); return its ``meta``.

    The file must be one the user trusts (a preset's OpenMMLab URL or a path they
    passed): unpickling is weights-only, with numpy arrays allowed only if a first
    plain attempt fails (:func:`_numpy_safe_globals`). Every parameter/buffer of the
    model must be in the file, so a config/checkpoint mismatch is an error, never a
    partly random model. Raises WeightsError.
    """
    import torch

    def _load() -> Any:
        return torch.load(path, map_location="cpu", weights_only=True)

    try:
        try:
            ckpt = _load()
        except pickle.UnpicklingError:
            with _numpy_safe_globals():
                ckpt = _load()
    except pickle.UnpicklingError as exc:
        found = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\.\s|\n|$)", str(exc), re.DOTALL)
        reason = found.group(1).strip() if found else type(exc).__name__
        raise WeightsError(f"refusing to unpickle {path}: it holds more than tensors, numpy arrays and plain "
                           f"containers ({reason}); re-save only its 'state_dict' and 'meta'") from None
    except (OSError, RuntimeError, EOFError) as exc:
        raise WeightsError(f"cannot read checkpoint {path}: {exc}") from None
    if not isinstance(ckpt, dict):
        raise WeightsError(f"{path} is not a checkpoint dict")
    state = ckpt.get("state_dict", ckpt)
    state = {k.removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    try:
        missing, _unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even with strict=False
        detail = next((ln.strip() for ln in str(exc).splitlines() if "size mismatch" in ln), str(exc))
        raise WeightsError(f"{path} does not match the model config: {detail}") from None
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing:
        raise WeightsError(f"{path} does not match the model config: {len(missing)} weights missing "
                           f"(e.g. {missing[0]})")
    meta = ckpt.get("meta", {})
    return meta if isinstance(meta, dict) else {}


# ------------------------------------------------------------------------ adapter


def _resolve_device(device: str) -> str:
    """'auto' -> 'cuda:0' when torch sees a GPU, else 'cpu'; anything else is passed through."""
    if device != "auto":
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


def expand_box(box: np.ndarray, factor: float, width: int, height: int) -> np.ndarray:
    """Scale a (4,) x0,y0,x1,y1 box about its centre by ``factor``, clipped to the image."""
    b = np.asarray(box, dtype=np.float64)
    c = 0.5 * (b[:2] + b[2:])
    half = 0.5 * factor * (b[2:] - b[:2])
    lo = np.maximum(c - half, 0.0)
    hi = np.minimum(c + half, [width, height])
    return np.concatenate([lo, hi])


class MMPoseDetector:
    """Top-down COCO-17 keypoints: MMDetection person boxes -> MMPose pose model.

    Implements :class:`video3d.detect.base.Detector` with ``keypoint_format='coco'``.

    Args:
        preset: a :data:`POSE_PRESETS` name (config shipped in mmpose + OpenMMLab URL).
        pose_config / pose_checkpoint: a local config / ``.pth`` overriding the preset's.
            A custom ``pose_config`` needs ``pose_checkpoint``.
        det_config / det_checkpoint: the same for the person detector.
        device: 'auto' (GPU if torch has one), 'cpu', 'cuda:0', ...
        det_score_thr: minimum person-box score.
        allow_random_weights: build without checkpoints (random weights). Tests only.
        det_preset: a :data:`DET_PRESETS` name ('rtmdet-m' default, 'rtmdet-nano' faster).
        det_every: run the person detector every N frames; in between, the pose model
            runs only on the tracker's ``hint`` box (CPU speed-up; 1 = every frame).
        max_people: keep at most this many boxes per frame (highest scores); None = all.

    Raises UserError if the extra is not installed, WeightsError if weights are missing.
    """

    keypoint_format = "coco"

    #: Hint boxes are the tracked person's box; enlarged a little so the crop keeps the head.
    HINT_EXPAND = 1.15
    #: A hint box overlapping no detection by this IoU is added as an extra candidate.
    HINT_MIN_IOU = 0.3
    #: With det_every > 1, a hint-only frame whose mean keypoint score is below this
    #: makes the next frame run the person detector (the person may be lost).
    HINT_MIN_SCORE = 0.3

    def __init__(self, preset: str = DEFAULT_POSE_PRESET, pose_config: str | None = None,
                 pose_checkpoint: str | None = None, det_config: str | None = None,
                 det_checkpoint: str | None = None, device: str = "auto", det_score_thr: float = 0.5,
                 allow_random_weights: bool = False, *, det_preset: str = DEFAULT_DET_PRESET,
                 det_every: int = 1, max_people: int | None = None) -> None:
        if preset not in POSE_PRESETS:
            raise UserError(f"unknown mmpose preset {preset!r}; choose one of {', '.join(POSE_PRESETS)}")
        if det_preset not in DET_PRESETS:
            raise UserError(f"unknown person-detector preset {det_preset!r}; "
                            f"choose one of {', '.join(DET_PRESETS)}")
        if det_every < 1:
            raise UserError("det_every must be >= 1")
        api = _import_stack()
        self._api = api
        self.device = _resolve_device(device)
        self.det_score_thr = float(det_score_thr)
        self.det_every = int(det_every)
        self.max_people = max_people
        self._frame_index = 0
        self._force_detection = False

        pose_p, det_p = POSE_PRESETS[preset], DET_PRESETS[det_preset]
        pose_cfg = pose_config or str(preset_config_path(pose_p))
        det_cfg = det_config or str(preset_config_path(det_p))
        pose_label = Path(pose_config).stem if pose_config else preset
        det_label = Path(det_config).stem if det_config else det_preset
        pose_ckpt = resolve_checkpoint("pose", pose_label, None if pose_config else pose_p.url,
                                       pose_checkpoint, "--pose-checkpoint", allow_random_weights)
        det_ckpt = resolve_checkpoint("person detector", det_label, None if det_config else det_p.url,
                                      det_checkpoint, "--det-checkpoint", allow_random_weights)
        self.name = f"mmpose:{pose_label}"
        self.random_weights = pose_ckpt is None or det_ckpt is None

        with _quiet():
            # Detector first: init_model then leaves mmpose as mmengine's default scope,
            # which inference_topdown expects (else it warns and switches on every call).
            # Both are built without checkpoint (their own loaders would use full
            # unpickling and accept partial matches); weights are loaded just below.
            self.det_model = api.init_detector(det_cfg, None, device=self.device)
            self.pose_model = api.init_model(pose_cfg, None, device=self.device)
        if pose_ckpt is not None:
            meta = load_trusted_checkpoint(self.pose_model, pose_ckpt)
            if "dataset_meta" in meta:
                self.pose_model.dataset_meta = meta["dataset_meta"]
        if det_ckpt is not None:
            load_trusted_checkpoint(self.det_model, det_ckpt)
        n_kp = int(self.pose_model.dataset_meta.get("num_keypoints", 0))
        if n_kp != 17:
            raise UserError(f"pose config {pose_cfg} predicts {n_kp} keypoints; the mmpose backend "
                            "needs a COCO-17 top-down model")
        # Our frames are RGB; OpenMMLab pipelines take BGR ndarrays (as cv2.imread gives).
        # The detector runs under mmpose's default scope, so its transforms need the
        # 'mmdet.' prefix: adapt_mmdet_pipeline does that; the Compose is built once.
        self.det_model.cfg = api.adapt_mmdet_pipeline(self.det_model.cfg)
        from mmcv.transforms import Compose

        det_pipeline = self.det_model.cfg.test_dataloader.dataset.pipeline.copy()
        det_pipeline[0] = dict(det_pipeline[0], type="mmdet.LoadImageFromNDArray")
        self._det_pipeline = Compose(det_pipeline)

    # -- the two stages --------------------------------------------------------

    def detect_people(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes in a (H, W, 3) uint8 BGR frame -> (boxes (N, 4) x0,y0,x1,y1, scores (N,)).

        Class 0 (person) only, score >= det_score_thr, sorted by score (descending),
        at most ``max_people``. Coordinates are in full-image pixels.
        """
        with _quiet():
            result = self._api.inference_detector(self.det_model, frame_bgr, test_pipeline=self._det_pipeline)
        inst = result.pred_instances
        boxes = inst.bboxes.detach().cpu().numpy().astype(np.float64).reshape(-1, 4)
        scores = inst.scores.detach().cpu().numpy().astype(np.float64).reshape(-1)
        labels = inst.labels.detach().cpu().numpy().reshape(-1)
        keep = (labels == 0) & (scores >= self.det_score_thr)
        boxes, scores = boxes[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")[: self.max_people]
        return boxes[order], scores[order]

    def estimate(self, frame_bgr: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Top-down keypoints inside boxes (N, 4) of a BGR frame.

        Returns (keypoints (N, 17, 2) full-image pixels, scores (N, 17) clipped to [0, 1];
        HRNet heatmap maxima and RTMPose SimCC maxima can slightly exceed 1).
        """
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if len(boxes) == 0:  # inference_topdown would fall back to the whole image
            return np.zeros((0, 17, 2), np.float32), np.zeros((0, 17), np.float32)
        with _quiet():
            samples = self._api.inference_topdown(self.pose_model, frame_bgr, boxes, bbox_format="xyxy")
        kp = np.concatenate([s.pred_instances.keypoints for s in samples]).astype(np.float32)
        sc = np.concatenate([s.pred_instances.keypoint_scores for s in samples]).astype(np.float32)
        return kp.reshape(len(boxes), -1, 2), np.clip(sc.reshape(len(boxes), -1), 0.0, 1.0)

    # -- Detector protocol ---------------------------------------------------------

    def detect(self, frame_rgb: np.ndarray, hint: np.ndarray | None = None) -> list[PersonKeypoints]:
        """frame_rgb: (H, W, 3) uint8 RGB; hint: (4,) box of the tracked person or None.

        Returns every person found, sorted by detection score, as COCO-17
        PersonKeypoints in full-image pixels. With a hint, a hint box that no
        detection overlaps is added as the last candidate (a person the detector
        missed); on frames skipped by ``det_every`` only the hint box is used (and
        a weak result there, mean score < HINT_MIN_SCORE, brings the detector back
        on the next frame).
        """
        frame = np.asarray(frame_rgb)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame_rgb must be (H, W, 3), got {frame.shape}")
        h, w = frame.shape[:2]
        bgr = np.ascontiguousarray(frame[..., ::-1])
        hint_box = None
        if hint is not None and np.all(np.isfinite(hint)):
            hint_box = expand_box(hint, self.HINT_EXPAND, w, h)
            if not np.all(hint_box[2:] - hint_box[:2] > 1.0):
                hint_box = None
        run_detector = hint_box is None or self._force_detection or self._frame_index % self.det_every == 0
        self._frame_index += 1
        if run_detector:
            boxes, _ = self.detect_people(bgr)
            if hint_box is not None and all(box_iou(hint_box, b) < self.HINT_MIN_IOU for b in boxes):
                boxes = np.concatenate([boxes, hint_box[None]])
        else:
            boxes = hint_box[None]
        kp, sc = self.estimate(bgr, boxes)
        self._force_detection = not run_detector and float(sc.mean()) < self.HINT_MIN_SCORE
        return [PersonKeypoints(keypoints=kp[i], scores=sc[i], bbox=boxes[i].astype(np.float64), format="coco")
                for i in range(len(boxes))]

    def close(self) -> None:
        """Drop both models (and cached GPU memory)."""
        self.pose_model = None
        self.det_model = None
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.empty_cache()
