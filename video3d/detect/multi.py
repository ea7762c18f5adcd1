"""Multi-person BlazePose from the models inside the mediapipe wheel, run through LiteRT.

MediaPipe's legacy ``solutions.pose`` follows one person, and its Tasks
``PoseLandmarker`` (which has ``num_poses``) refuses the wheel's two
``.tflite`` files because they carry no TFLite metadata (adding it needs
``tflite-support``, which pins protobuf < 4 and cannot be installed next to
mediapipe 0.10.21). So this module runs the same two models itself with
``ai-edge-litert`` (Google's maintained TFLite runtime), re-implementing the
small graph around them, as MediaPipe's ``pose_detection_cpu`` /
``pose_landmark_by_roi_cpu`` graphs do:

1. **Detector** (``pose_detection.tflite``, 224x224, input in [-1, 1]): the
   frame is letterboxed, 2254 SSD anchors are decoded into boxes plus 4
   keypoints (0 = hip centre, 1 = a point fixing body size and rotation),
   weighted non-maximum suppression merges duplicates.
2. **Region of interest** per person: a square centred on the hip centre,
   side 2.5 x |kp1 - kp0|, rotated so that kp0 -> kp1 points up.
3. **Landmarks** (``pose_landmark_full.tflite``, 256x256 rotated crop in
   [0, 1]): 39 landmarks (33 body + aux) x (x, y, z, visibility, presence)
   and a pose-presence flag. Landmarks are rotated back into the frame.
4. **Tracking**: the aux landmarks 33/34 give each person's region for the
   next frame (like MediaPipe's tracking mode), so the detector's output is
   only needed for new people; it still runs every ``detect_every`` frames.
   Duplicate people (landmark boxes overlapping > ``dedupe_iou``) keep the
   most confident one.

Cost (2 CPU cores, one thread each model): see docs/people.md.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from video3d.detect.base import PersonKeypoints, box_iou, keypoints_bbox
from video3d.errors import UserError

DETECTOR_SIZE = 224
LANDMARK_SIZE = 256
NUM_LANDMARKS = 33


def _models_dir() -> Path:
    try:
        import mediapipe
    except ImportError as exc:  # pragma: no cover - mediapipe is a core dependency
        raise UserError("multi-person BlazePose needs the mediapipe wheel (its models): " + str(exc)) from exc
    return Path(mediapipe.__file__).parent / "modules"


def _interpreter(path: Path, threads: int) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError as exc:
        raise UserError("multi-person BlazePose (--person all) needs the LiteRT runtime: "
                        "pip install 'video3d[people]' (ai-edge-litert)") from exc
    if not path.is_file():
        raise UserError(f"BlazePose model missing from the mediapipe wheel: {path}")
    it = Interpreter(model_path=str(path), num_threads=threads)
    it.allocate_tensors()
    return it


def ssd_anchors(size: int = DETECTOR_SIZE, strides: tuple[int, ...] = (8, 16, 32, 32, 32)) -> np.ndarray:
    """(N, 2) anchor centres (x, y) normalised to [0, 1], MediaPipe's SsdAnchorsCalculator order.

    Consecutive layers with the same stride share one grid (2 anchors per layer
    and cell; fixed anchor size 1): 28x28x2 + 14x14x2 + 7x7x6 = 2254 for 224.
    """
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        n = 2 * (j - i)
        fm = int(math.ceil(size / strides[i]))
        ys, xs = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm, indexing="ij")
        grid = np.stack([xs, ys], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(grid, n, axis=1).reshape(-1, 2))
        i = j
    return np.concatenate(out).astype(np.float32)


def detector_tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Overlapping square tiles x0, y0, x1, y1 for the detector's second look.

    Elongated frames (long > 1.3 x short): squares of the short side, spread
    along the long side (3 for 16:9). Near-square frames: a 2x2 grid of
    squares of 0.6 x the short side.
    """
    short, long_ = min(width, height), max(width, height)
    if long_ > 1.3 * short:
        side, n_long, n_short = short, int(math.ceil(long_ / short)) + 1, 1
    else:
        side, n_long, n_short = int(round(0.6 * short)), 2, 2
    along = np.linspace(0, long_ - side, n_long).round().astype(int)
    across = np.linspace(0, short - side, n_short).round().astype(int)
    out = []
    for a in along:
        for b in across:
            x0, y0 = (int(a), int(b)) if width >= height else (int(b), int(a))
            out.append((x0, y0, x0 + side, y0 + side))
    return out


@dataclass
class Roi:
    """A rotated square region: centre (2,) px, side px, rotation rad (0 = upright)."""

    center: np.ndarray
    side: float
    rotation: float


def roi_from_points(p0: np.ndarray, p1: np.ndarray, scale: float = 1.25) -> Roi:
    """Region from the alignment points: p0 the hip centre, p1 the size/rotation point (pixels)."""
    d = p1 - p0
    rotation = math.pi / 2 - math.atan2(-float(d[1]), float(d[0]))
    rotation = (rotation + math.pi) % (2 * math.pi) - math.pi
    return Roi(center=np.asarray(p0, np.float64), side=2.0 * float(np.hypot(*d)) * scale, rotation=rotation)


def roi_matrix(roi: Roi, size: int) -> np.ndarray:
    """(2, 3) affine map from crop pixels (size x size) to frame pixels."""
    c, s = math.cos(roi.rotation), math.sin(roi.rotation)
    k = roi.side / size
    rot = np.array([[c, -s], [s, c]]) * k
    offset = roi.center - rot @ np.array([size / 2.0, size / 2.0])
    return np.concatenate([rot, offset[:, None]], axis=1)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, extra: np.ndarray, iou: float = 0.3) -> list[tuple]:
    """MediaPipe's weighted NMS. boxes (N, 4) x0 y0 x1 y1; extra (N, D) averaged with the boxes.

    Returns [(score, box (4,), extra (D,))] best first.
    """
    order = list(np.argsort(-scores))
    out = []
    while order:
        top = order[0]
        overl = [i for i in order if box_iou(boxes[top], boxes[i]) > iou]
        w = scores[overl][:, None]
        box = (boxes[overl] * w).sum(0) / w.sum()
        ext = (extra[overl] * w).sum(0) / w.sum()
        out.append((float(scores[top]), box, ext))
        order = [i for i in order if i not in overl]
    return out


class MultiBlazePoseDetector:
    """Every person in the frame, BlazePose full landmarks (33, 'blazepose' format).

    Args:
        max_people: most people returned per frame (the most confident).
        min_detection_score: detector score threshold (MediaPipe: 0.5).
        min_presence: pose-presence flag threshold of the landmark model (0.5).
        detect_every: run the person detector every N frames (1 = always) and
            whenever nobody is tracked; in between only tracked regions are
            refined (new people are picked up within N frames).
        threads: LiteRT threads per model.
        tiles: also run the detector on the square tiles of :func:`detector_tiles`.
    """

    name = "blazepose-multi"
    keypoint_format = "blazepose"

    def __init__(self, max_people: int = 8, min_detection_score: float = 0.5, min_presence: float = 0.5,
                 detect_every: int = 4, dedupe_iou: float = 0.5, threads: int = 1, tiles: bool = True) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        models = _models_dir()
        self._det = _interpreter(models / "pose_detection" / "pose_detection.tflite", threads)
        self._lmk = _interpreter(models / "pose_landmark" / "pose_landmark_full.tflite", threads)
        self._det_in = self._det.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self._det.get_output_details()}
        self._det_boxes, self._det_scores = outs["Identity"], outs["Identity_1"]
        self._lmk_in = self._lmk.get_input_details()[0]["index"]
        outs = {d["name"]: d["index"] for d in self._lmk.get_output_details()}
        self._lmk_out, self._lmk_flag = outs["Identity"], outs["Identity_1"]
        self._anchors = ssd_anchors()
        self.max_people = max_people
        self.min_detection_score = min_detection_score
        self.min_presence = min_presence
        self.detect_every = max(1, int(detect_every))
        self.dedupe_iou = dedupe_iou
        self.tiles = tiles
        self._tracked: list[Roi] = []
        self._frame_index = 0

    # -- the two models ---------------------------------------------------------------
    def _detect_region(self, frame: np.ndarray, x0: int = 0, y0: int = 0) -> list[tuple[float, np.ndarray, Roi]]:
        """Detector on one (h, w, 3) image region at offset (x0, y0) -> [(score, box (4,), roi)] in frame px."""
        h, w = frame.shape[:2]
        scale = DETECTOR_SIZE / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        px, py = (DETECTOR_SIZE - nw) // 2, (DETECTOR_SIZE - nh) // 2
        canvas = np.zeros((DETECTOR_SIZE, DETECTOR_SIZE, 3), np.float32)
        canvas[py:py + nh, px:px + nw] = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
        self._det.set_tensor(self._det_in, (canvas / 127.5 - 1.0)[None])
        self._det.invoke()
        raw = self._det.get_tensor(self._det_boxes)[0]
        logits = np.clip(self._det.get_tensor(self._det_scores)[0, :, 0].astype(np.float64), -100, 100)
        scores = 1.0 / (1.0 + np.exp(-logits))
        keep = np.nonzero(scores >= self.min_detection_score)[0]
        if len(keep) == 0:
            return []
        a = self._anchors[keep]
        r = raw[keep] / DETECTOR_SIZE
        cx, cy = r[:, 0] + a[:, 0], r[:, 1] + a[:, 1]
        boxes = np.stack([cx - r[:, 2] / 2, cy - r[:, 3] / 2, cx + r[:, 2] / 2, cy + r[:, 3] / 2], axis=1)
        kps = r[:, 4:12].reshape(-1, 4, 2) + a[:, None, :]
        merged = weighted_nms(boxes, scores[keep], kps.reshape(len(keep), -1))
        to_px = DETECTOR_SIZE / scale
        offset = np.array([x0, y0]) - np.array([px, py]) / scale
        out = []
        for score, box, ext in merged:
            k = ext.reshape(4, 2) * to_px + offset
            out.append((score, box * to_px + np.tile(offset, 2), roi_from_points(k[0], k[1])))
        return out

    def detect_rois(self, frame: np.ndarray) -> list[Roi]:
        """Person detector on the whole (H, W, 3) frame and on square tiles -> regions, best first.

        The detector sees a 224x224 letterboxed image, so people under ~1/5 of
        the long side are missed on the full frame; the square tiles of
        :func:`detector_tiles` show them about twice as large.
        """
        h, w = frame.shape[:2]
        found = self._detect_region(frame)
        if self.tiles:
            for x0, y0, x1, y1 in detector_tiles(w, h):
                found += self._detect_region(frame[y0:y1, x0:x1], x0, y0)
        found.sort(key=lambda x: -x[0])
        kept: list[tuple[float, np.ndarray, Roi]] = []
        for item in found:
            if all(box_iou(item[1], k[1]) < 0.4 for k in kept):
                kept.append(item)
        return [roi for _, _, roi in kept[: self.max_people]]

    def landmarks(self, frame: np.ndarray, roi: Roi) -> tuple[np.ndarray, float] | None:
        """Landmarks (39, 5) in frame pixels (x, y, z, visibility, presence) and the presence flag."""
        m = roi_matrix(roi, LANDMARK_SIZE)
        crop = cv2.warpAffine(frame, m, (LANDMARK_SIZE, LANDMARK_SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        self._lmk.set_tensor(self._lmk_in, (crop.astype(np.float32) / 255.0)[None])
        self._lmk.invoke()
        flag = float(self._lmk.get_tensor(self._lmk_flag).reshape(-1)[0])
        if not 0.0 <= flag <= 1.0:
            flag = 1.0 / (1.0 + math.exp(-flag))
        if flag < self.min_presence:
            return None
        raw = self._lmk.get_tensor(self._lmk_out).reshape(39, 5).astype(np.float64)
        xy = raw[:, :2] @ m[:, :2].T + m[:, 2]
        out = np.empty((39, 5))
        out[:, :2] = xy
        out[:, 2] = raw[:, 2] * roi.side / LANDMARK_SIZE
        out[:, 3:] = 1.0 / (1.0 + np.exp(-np.clip(raw[:, 3:], -50, 50)))
        return out, flag

    # -- Detector protocol ------------------------------------------------------------
    def detect(self, frame_rgb: np.ndarray, hint: np.ndarray | None = None) -> list[PersonKeypoints]:
        """frame_rgb: (H, W, 3) uint8 RGB -> everyone found (33 BlazePose landmarks each)."""
        frame = np.ascontiguousarray(frame_rgb)
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB frame, got {frame.dtype} {frame.shape}")
        tracked = len(self._tracked)
        rois = list(self._tracked)
        if self._frame_index % self.detect_every == 0 or not rois:
            rois += self.detect_rois(frame)
        self._frame_index += 1
        found: list[tuple[float, PersonKeypoints, Roi]] = []
        for k, roi in enumerate(rois):
            if roi.side < 8:
                continue
            if k >= tracked and any(p.bbox[0] <= roi.center[0] <= p.bbox[2] and p.bbox[1] <= roi.center[1] <= p.bbox[3]
                                    for _, p, _ in found):
                continue  # a new detection on someone already followed: skip the landmark model
            res = self.landmarks(frame, roi)
            if res is None:
                continue
            lm, flag = res
            kp = lm[:NUM_LANDMARKS, :2].astype(np.float32)
            box = keypoints_bbox(kp)
            if any(box_iou(box, p.bbox) > self.dedupe_iou for _, p, _ in found):
                continue  # a tracked region already holds this person (tracked ones come first)
            scores = np.clip(np.minimum(lm[:NUM_LANDMARKS, 3], lm[:NUM_LANDMARKS, 4]), 0, 1).astype(np.float32)
            person = PersonKeypoints(keypoints=kp, scores=scores, bbox=box, format="blazepose")
            found.append((flag, person, roi_from_points(lm[33, :2], lm[34, :2])))
        found = found[: self.max_people]
        self._tracked = [r for _, _, r in found]
        return [p for _, p, _ in found]

    def close(self) -> None:
        self._det = self._lmk = None
        self._tracked = []
