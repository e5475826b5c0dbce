"""The face-finding cascade: FaceMesh on the whole image, then FaceMesh on crops around BlazeFace boxes.

FaceMesh runs only its own short-range detector, which misses faces that are small in the frame,
tilted, or painted; BlazeFace (short and full range, on the image and on overlapping tiles) finds
more of them, and FaceMesh on a square crop around each box, scaled to CROP_SIDE pixels and turned
upright, reads the landmarks, which are mapped back to portrait pixels. Landmarks here are (N, 3):
x, y in pixels and z (depth, scaled like x) in pixels.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Self

import cv2
import numpy as np

from monalisa.mp_quiet import quiet_stderr

log = logging.getLogger(__name__)

DETECT_MAX_SIDE = 1280   # the whole-image FaceMesh pass runs on a copy at most this big
REFINE_SIDE = 768        # each face is re-measured on a crop resized to this many pixels
MAX_FACES = 10
CROP_SIDE = 512          # FaceMesh's view of one BlazeFace box
# (crop side over the BlazeFace box side, degrees added to the box's own roll), tried in this order
CROP_TRIES = ((2.5, 0.0), (2.0, 0.0), (3.2, 0.0), (2.5, 15.0), (2.5, -15.0))
TILE_MIN_SIDE = 640      # BlazeFace tiles: halved from the whole image while at least this big
TILE_DETECT_SIDE = 384   # each level is shrunk so its tiles are at most this big (BlazeFace reads 128-192 px)
MIN_BOX_SCORE = 0.65     # BlazeFace finds faces in textured backgrounds at 0.5-0.6
MAX_ROLL = 50.0          # degrees: boxes whose eye line is steeper than this are not taken as portraits
TILE_LEVELS = 3          # the whole image, halves, quarters
BLAZEFACE_MODELS = {0: "short-range", 1: "full-range"}
LEVEL_ROLL = 8.0         # degrees: refinement turns a face upright only when it is tilted more than this


@dataclass(frozen=True, eq=False)
class Found:
    """A face's landmarks (478, 3) in portrait pixels and how the cascade found it."""

    landmarks: np.ndarray
    found_by: str            # "facemesh" or "blazeface"
    detail: str = ""         # e.g. "full-range 0.70, crop 2.5x, turned 15 deg"


@dataclass(frozen=True, eq=False)
class Box:
    """A BlazeFace detection in portrait pixels: square box, score, roll of the eye line (degrees)."""

    cx: float
    cy: float
    side: float
    score: float
    roll: float
    model: str
    eyes: np.ndarray         # (2, 2): the image-left eye keypoint, then the other


class FaceMeshSession:
    """One FaceMesh graph (still-image mode, irises) shared by many find_faces calls, as building one
    costs more than running it; each call stays independent of the previous ones. Close it or use ``with``.
    BlazeFace detectors for the cascade are opened on first use and closed with it."""

    def __init__(self) -> None:
        import mediapipe as mp  # imported only here: loading it takes a second

        self._detectors: dict[int, object] = {}
        with quiet_stderr():  # MediaPipe logs its set-up straight to fd 2
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=MAX_FACES, refine_landmarks=True,
                min_detection_confidence=0.5)
            self._quiet = True
            try:  # the first inference in the same window: the graph finishes opening (and logging) in it
                self.landmarks(np.zeros((64, 64, 3), np.uint8))
            except BaseException:
                self.close()
                raise

    def landmarks(self, image: np.ndarray, with_z: bool = False) -> list[np.ndarray]:
        """Landmarks (478, 2), or (478, 3) ``with_z``, in ``image`` pixels for every face FaceMesh finds."""
        if self._mesh is None:
            raise RuntimeError("FaceMeshSession used after close()")
        if self._quiet:  # MediaPipe also logs once per process when it first sees a face
            with quiet_stderr():
                result = self._mesh.process(np.ascontiguousarray(image))
            self._quiet = not result.multi_face_landmarks
        else:
            result = self._mesh.process(np.ascontiguousarray(image))
        height, width = image.shape[:2]
        return [np.array([(p.x * width, p.y * height, p.z * width)[:3 if with_z else 2] for p in face.landmark],
                         dtype=np.float64)
                for face in result.multi_face_landmarks or []]

    def boxes(self, image: np.ndarray, model: int) -> list[Box]:
        """BlazeFace detections (model 0 short range, 1 full range) in ``image`` pixels."""
        if self._mesh is None:
            raise RuntimeError("FaceMeshSession used after close()")
        if model not in self._detectors:
            import mediapipe as mp

            with quiet_stderr():
                self._detectors[model] = mp.solutions.face_detection.FaceDetection(
                    model_selection=model, min_detection_confidence=0.5)
                result = self._detectors[model].process(np.ascontiguousarray(image))
        else:
            result = self._detectors[model].process(np.ascontiguousarray(image))
        height, width = image.shape[:2]
        found = []
        for detection in result.detections or []:
            box = detection.location_data.relative_bounding_box
            keys = detection.location_data.relative_keypoints  # subject's right eye, left eye, ...
            eyes = np.array([(keys[i].x * width, keys[i].y * height) for i in (0, 1)])
            (eye_dx, eye_dy) = eyes[1] - eyes[0]
            found.append(Box((box.xmin + box.width / 2) * width, (box.ymin + box.height / 2) * height,
                             max(box.width * width, box.height * height), float(detection.score[0]),
                             math.degrees(math.atan2(eye_dy, eye_dx)), BLAZEFACE_MODELS[model], eyes))
        return found

    def close(self) -> None:
        """Free the graphs (idempotent)."""
        if self._mesh is not None:
            mesh, self._mesh = self._mesh, None
            mesh.close()
            for detector in self._detectors.values():
                detector.close()
            self._detectors.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def cascade(mesh: FaceMeshSession, image: np.ndarray, fallback_only: bool = False,
            quick: bool = False) -> list[Found]:
    """Every face: FaceMesh on the image (and its quarters), then FaceMesh on crops around the BlazeFace
    boxes no face found so far covers (with ``fallback_only``, only when FaceMesh found none).
    ``quick``: FaceMesh on the whole image only (a webcam's driving frames: a face is there or not).
    Landmarks are rough (see refine)."""
    found = [Found(points, "facemesh") for points in whole_image(mesh, image, quarters=not quick)]
    if quick or (found and fallback_only):
        return found
    for box in _blazeface_boxes(mesh, image):
        if any(_covers(face.landmarks, (box.cx, box.cy)) for face in found):
            continue
        hit = _mesh_around_box(mesh, image, box)
        if hit is not None:
            found.append(hit)
        else:
            log.debug("BlazeFace %s box at (%.0f, %.0f) score %.2f: FaceMesh reads no face in its crops",
                      box.model, box.cx, box.cy, box.score)
    return found


def whole_image(mesh: FaceMeshSession, image: np.ndarray, quarters: bool = True) -> list[np.ndarray]:
    """Rough landmarks from FaceMesh's own detector: on a downscaled copy, then (``quarters``) on its four
    overlapping quarters (it misses faces under ~15% of the frame, as in group pictures)."""
    height, width = image.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    small = image if scale == 1.0 else cv2.resize(
        image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    found = mesh.landmarks(small, with_z=True)
    if not quarters:
        return [points / scale for points in found]
    tile_h, tile_w = round(0.6 * small.shape[0]), round(0.6 * small.shape[1])
    for top in (0, small.shape[0] - tile_h):
        for left in (0, small.shape[1] - tile_w):
            for points in mesh.landmarks(small[top:top + tile_h, left:left + tile_w], with_z=True):
                points = points + (left, top, 0)
                if not any(_covers(known, points[:, :2].mean(axis=0)) for known in found):
                    found.append(points)
    return [points / scale for points in found]


def _blazeface_boxes(mesh: FaceMeshSession, image: np.ndarray) -> list[Box]:
    """Plausible BlazeFace boxes from both models on the whole image and on overlapping square tiles
    (halves, quarters), best score first, overlapping ones merged."""
    height, width = image.shape[:2]
    boxes: list[Box] = []
    for level in range(TILE_LEVELS):
        side = max(height, width) / 2 ** level
        if level and side < TILE_MIN_SIDE:
            break
        scale = min(1.0, TILE_DETECT_SIDE / side)  # the whole level shrunk once, then cut into tiles
        small = image if scale == 1.0 else cv2.resize(
            image, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
        for left, top, tile in _tiles(small, round(side * scale) if level else None):
            for model in BLAZEFACE_MODELS:
                boxes.extend(Box((left + b.cx) / scale, (top + b.cy) / scale, b.side / scale, b.score, b.roll,
                                 b.model, (b.eyes + (left, top)) / scale)
                             for b in mesh.boxes(tile, model) if b.score >= MIN_BOX_SCORE and abs(b.roll) <= MAX_ROLL)
    kept: list[Box] = []
    for box in sorted(boxes, key=lambda b: -b.score):
        if not any(math.hypot(box.cx - k.cx, box.cy - k.cy) < 0.5 * max(box.side, k.side) for k in kept):
            kept.append(box)
    return kept


def _tiles(image: np.ndarray, side: int | None):
    """(left, top, view) of the whole image (side None) or of square tiles overlapping by half."""
    height, width = image.shape[:2]
    if side is None:
        yield 0, 0, image
        return
    side_x, side_y = min(side, width), min(side, height)
    for top in _starts(height, side_y):
        for left in _starts(width, side_x):
            yield left, top, image[top:top + side_y, left:left + side_x]


def _starts(length: int, side: int) -> list[int]:
    """Tile starts from 0 to length - side in steps of about half a tile."""
    count = max(1, math.ceil((length - side) / (side / 2)) + 1)
    return sorted({round(i * (length - side) / max(count - 1, 1)) for i in range(count)})


def _mesh_around_box(mesh: FaceMeshSession, image: np.ndarray, box: Box) -> Found | None:
    """FaceMesh on square crops around a BlazeFace box at a few scales and turns; the first face that
    agrees with the box (eyes where BlazeFace put them, about its size), mapped back to portrait pixels."""
    for scale, turn in CROP_TRIES:
        angle = box.roll + turn
        for points in mesh_on_square(mesh, image, (box.cx, box.cy), scale * box.side, angle, CROP_SIDE):
            if _agrees(points, box):
                detail = f"{box.model} {box.score:.2f}, crop {scale:g}x" + (
                    f", turned {angle:+.0f} deg" if abs(angle) >= 0.5 else "")
                return Found(points, "blazeface", detail)
    return None


def _agrees(points: np.ndarray, box: Box) -> bool:
    """Whether FaceMesh landmarks describe the face BlazeFace boxed: both eye centres (irises 468, 473)
    within a fifth of the box side of its eye keypoints, and the eye distance within a factor 1.6."""
    irises = points[[468, 473], :2]
    near = np.linalg.norm(irises - box.eyes, axis=1).max() < 0.2 * box.side
    ratio = np.linalg.norm(irises[1] - irises[0]) / max(np.linalg.norm(box.eyes[1] - box.eyes[0]), 1e-6)
    return bool(near and 1 / 1.6 < ratio < 1.6)


def mesh_on_square(mesh: FaceMeshSession, image: np.ndarray, center: tuple[float, float], side: float,
                   angle: float, out_side: int) -> list[np.ndarray]:
    """FaceMesh on the square of ``side`` pixels around ``center`` turned by ``angle`` degrees (so a face
    whose eye line falls that much to the right is level), resampled to ``out_side`` pixels; landmarks
    (N, 3) mapped back to portrait pixels (z scaled like x)."""
    height, width = image.shape[:2]
    reach = 0.75 * side  # the turned square fits in this half-side
    x0, y0 = max(0, math.floor(center[0] - reach)), max(0, math.floor(center[1] - reach))
    x1, y1 = min(width, math.ceil(center[0] + reach)), min(height, math.ceil(center[1] + reach))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return []
    region = image[y0:y1, x0:x1]
    shrink = out_side / side
    if shrink < 1:  # an area filter first so crops of big scans do not alias
        region = cv2.resize(region, (max(2, round((x1 - x0) * shrink)), max(2, round((y1 - y0) * shrink))),
                            interpolation=cv2.INTER_AREA)
    sx, sy = region.shape[1] / (x1 - x0), region.shape[0] / (y1 - y0)
    to_region = np.array([[sx, 0, (0.5 - x0) * sx - 0.5], [0, sy, (0.5 - y0) * sy - 0.5], [0, 0, 1]])
    cx, cy, _ = to_region @ (center[0], center[1], 1.0)
    turn = cv2.getRotationMatrix2D((float(cx), float(cy)), angle, out_side / (side * sx))
    turn[:, 2] += (out_side / 2 - cx, out_side / 2 - cy)
    crop = cv2.warpAffine(region, turn, (out_side, out_side), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    inverse = np.linalg.inv(np.vstack([turn, (0, 0, 1)]) @ to_region)
    return [np.column_stack([points[:, :2] @ inverse[:2, :2].T + inverse[:2, 2], points[:, 2] * side / out_side])
            for points in mesh.landmarks(crop, with_z=True)]


def refine(mesh: FaceMeshSession, image: np.ndarray, rough: np.ndarray) -> np.ndarray:
    """Re-run FaceMesh on a square crop twice the face around one face (turned upright when it is tilted);
    the rough landmarks if that finds nothing close to them."""
    xy = rough[:, :2]
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    face_size = max(x1 - x0, y1 - y0)
    center = ((x0 + x1) / 2, (y0 + y1) / 2)
    roll = _roll(xy)
    if abs(roll) > LEVEL_ROLL:
        candidates = mesh_on_square(mesh, image, center, 2.0 * face_size, roll, REFINE_SIDE)
    else:
        candidates = _mesh_on_level_crop(mesh, image, center, 2.0 * face_size)
    if not candidates:
        return rough
    best = min(candidates, key=lambda pts: np.abs(pts[:, :2] - xy).mean())
    return best if np.abs(best[:, :2] - xy).mean() < 0.1 * face_size else rough


def _mesh_on_level_crop(mesh: FaceMeshSession, image: np.ndarray, center: tuple[float, float],
                        side: float) -> list[np.ndarray]:
    """FaceMesh on the square around ``center`` clipped to the image, resized to REFINE_SIDE."""
    height, width = image.shape[:2]
    left, top = int(max(0, center[0] - side / 2)), int(max(0, center[1] - side / 2))
    right, bottom = int(min(width, center[0] + side / 2)), int(min(height, center[1] + side / 2))
    crop = image[top:bottom, left:right]
    scale = REFINE_SIDE / max(crop.shape[:2])
    crop = cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    return [points / scale + (left, top, 0) for points in mesh.landmarks(crop, with_z=True)]


def _roll(xy: np.ndarray) -> float:
    """Angle (degrees, clockwise on screen) of the eye line from landmark 33 to 263 (outer corners)."""
    dx, dy = xy[263] - xy[33]
    return math.degrees(math.atan2(dy, dx))


def _covers(landmarks: np.ndarray, point) -> bool:
    """Whether ``point`` lies inside the bounding box of ``landmarks``."""
    xy = landmarks[:, :2]
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    return bool(x0 <= point[0] <= x1 and y0 <= point[1] <= y1)
