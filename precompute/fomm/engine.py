"""The original method as a precompute engine: FOMM re-poses the painted head after a gaze video.

For each grid cell the driving frame chosen for it (precompute.driving.video) animates a 256x256 crop
of the portrait's head with relative keypoint motion and adapted movement scale. Motion is
measured from the driver's centre-gaze frame (the one nearest yaw 0, pitch 0), not the first
frame: the portrait is the neutral pose, so the centre cell reproduces the painting and a
recording that starts at the screen's edge does not offset every cell. The generated head is
upscaled to the head's size in the painting and blended in with a 2D sigmoid alpha
(precompute.fomm.blend), so outside the head square nothing changes and its edge is seamless.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from monalisa.config import FommConfig
from monalisa.pool.geometry import Rect, nearest_index
from precompute.driving.video import CROP_SIZE, Square, crop_square, head_square, load_driving
from precompute.fomm.blend import composite, sigmoid_alpha
from precompute.fomm.errors import FommError, import_onnxruntime, import_torch

log = logging.getLogger(__name__)

SHA_PREFIX = 16  # hex digits of the checkpoint's sha256 recorded in the manifest


def check_runtime(checkpoint: Path, runtime: str) -> None:
    """Fail early, before the slow driving pass: checkpoint missing or runtime not installed."""
    if not checkpoint.is_file():
        raise FommError(f"FOMM checkpoint not found: {checkpoint}")
    import_torch()  # reading the checkpoint needs torch whatever the runtime
    if runtime == "onnxruntime":
        import_onnxruntime()


def load_model(checkpoint: Path, runtime: str):
    """The FOMM model for a checkpoint (the first onnxruntime use exports and caches ONNX graphs)."""
    from precompute.fomm import FommModel

    log.info("loading FOMM checkpoint %s (runtime %s)", checkpoint.name, runtime)
    return FommModel.from_checkpoint(checkpoint, runtime=runtime)


def visible_rect(square: Square, width: int, height: int) -> Rect:
    """The part of a head square that lies inside the painting."""
    x0, y0 = max(0, square.x), max(0, square.y)
    x1, y1 = min(width, square.x + square.size), min(height, square.y + square.size)
    if x1 <= x0 or y1 <= y0:
        raise FommError(f"the head square {square} lies outside the {width}x{height} portrait")
    return Rect(x0, y0, x1 - x0, y1 - y0)


def to_float(image: np.ndarray) -> np.ndarray:
    """uint8 RGB -> float32 RGB in [0, 1], FOMM's input."""
    return image.astype(np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float RGB in [0, 1] -> uint8 RGB."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


class FommEngine:
    """Engine "fomm": the portrait's head re-posed by FOMM after a self-recorded gaze video."""

    name = "fomm"

    def __init__(self, image: np.ndarray, face, checkpoint: Path, driving: Path, config: FommConfig,
                 yaws: list[float], pitches: list[float], *, model=None, find_face=None,
                 progress: bool = True):
        self.image = image
        self.checkpoint, self.driving_path = Path(checkpoint), Path(driving)
        self.config = config
        self.yaws, self.pitches = [float(v) for v in yaws], [float(v) for v in pitches]
        if model is None:
            check_runtime(self.checkpoint, config.runtime)
        height, width = image.shape[:2]
        self.square = head_square(face.box)
        self.rect = visible_rect(self.square, width, height)
        self.source = to_float(crop_square(image, self.square, CROP_SIZE))
        self.driving = load_driving(self.driving_path, self.yaws, self.pitches, find_face, progress)
        self.model = model if model is not None else load_model(self.checkpoint, config.runtime)
        # the alpha is laid over the whole square; only the part inside the painting is used
        alpha = sigmoid_alpha(self.square.size, self.square.size, config.blend_slope, config.blend_inflection)
        self.inside = (slice(self.rect.y - self.square.y, self.rect.y - self.square.y + self.rect.height),
                       slice(self.rect.x - self.square.x, self.rect.x - self.square.x + self.rect.width))
        self.alpha = alpha[self.inside]
        self.generated: dict[int, np.ndarray] = {}  # driving frame index -> 256x256 uint8 head
        self._sha256: str | None = None
        self._stream: Iterator[tuple[int, np.ndarray]] | None = None

    def params(self) -> dict[str, Any]:
        """Checkpoint identity, runtime, blend settings and the driving frames used."""
        if self._sha256 is None:
            from monalisa.images import sha256_file

            self._sha256 = sha256_file(self.checkpoint) if self.checkpoint.is_file() else ""
        return {
            "checkpoint": self.checkpoint.name,
            "checkpoint_sha256": self._sha256[:SHA_PREFIX],
            "runtime": self.config.runtime,
            "blend_slope": self.config.blend_slope,
            "blend_inflection": self.config.blend_inflection,
            "driving": self.driving_path.name,
            "driving_gaze": self.driving.gaze_source,
            "driving_initial_frame": self.driving.initial_frame,
            "driving_frames": self.driving.cell_frames.tolist(),
            "head_square": [self.square.x, self.square.y, self.square.size],
        }

    def patch_rect(self) -> Rect:
        """The head square (clipped to the painting): nothing outside it changes."""
        return self.rect

    def cell(self, yaw: float, pitch: float) -> tuple[int, int]:
        """The grid (row, col) nearest to a direction (ties as in the pool: the middle-most)."""
        return nearest_index(self.pitches, pitch), nearest_index(self.yaws, yaw)

    def head(self, frame_index: int) -> np.ndarray:
        """FOMM's 256x256 head for one driving frame (each frame is generated once)."""
        if self._stream is None:
            # one lazy pass over the chosen frames in build order: the source and centre-frame
            # keypoints are computed once, and each cell still costs only its own frame
            order = list(dict.fromkeys(self.driving.cell_frames.ravel().tolist()))
            crops = self.driving.crops
            heads = self.model.animate_many(self.source, (to_float(crops[i]) for i in order),
                                            to_float(crops[self.driving.initial_frame]),
                                            relative=True, adapt_movement_scale=True)
            self._stream = zip(order, heads)
        while frame_index not in self.generated:
            index, result = next(self._stream)
            self.generated[index] = to_uint8(np.asarray(result))
        return self.generated[frame_index]

    def close(self) -> None:
        """Nothing to release: the model and the driving frames are plain memory."""

    def render(self, yaw: float, pitch: float) -> np.ndarray:
        """The patch for one direction: the generated head, upscaled and blended into the painting."""
        row, col = self.cell(yaw, pitch)
        head = self.head(int(self.driving.cell_frames[row, col]))
        size = self.square.size
        interpolation = cv2.INTER_CUBIC if size >= head.shape[0] else cv2.INTER_AREA
        upscaled = cv2.resize(head, (size, size), interpolation=interpolation)
        return composite(self.image[self.rect.slices], upscaled[self.inside], self.alpha)
