"""Face detection for the kiosk: BlazeFace through MediaPipe, behind a small protocol tests can fake.

All coordinates are normalized to 0..1 of the frame as the camera delivered it (not mirrored);
left_eye is the eye on the image's left, whoever it belongs to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from monalisa.config import DetectorConfig
from monalisa.errors import MonalisaError
from monalisa.mp_quiet import quiet_stderr

# BlazeFace keypoint order: the person's right eye, left eye, nose tip, mouth, right ear, left ear.
# The person's right eye appears on the image's left in an unmirrored camera image.
_IMAGE_LEFT_EYE, _IMAGE_RIGHT_EYE = 0, 1


@dataclass(frozen=True)
class Face:
    """One detected face, normalized to the frame: box (x, y, w, h), score, eye centres (x, y)."""

    box: tuple[float, float, float, float]
    score: float
    left_eye: tuple[float, float]   # the eye on the image's left
    right_eye: tuple[float, float]  # the eye on the image's right
    frame_size: tuple[int, int] | None = None  # (width, height) in pixels of the frame it came from

    @property
    def eye_mid(self) -> tuple[float, float]:
        """The point between the eyes (normalized), what the portrait looks at."""
        return ((self.left_eye[0] + self.right_eye[0]) / 2, (self.left_eye[1] + self.right_eye[1]) / 2)

    @property
    def eye_distance(self) -> float:
        """Distance between the eyes as a fraction of the frame WIDTH (uses frame_size; square frame if unknown)."""
        width, height = self.frame_size or (1, 1)
        return self.eye_distance_px(width, height) / width

    def eye_distance_px(self, frame_width: int, frame_height: int) -> float:
        """Distance between the eyes in pixels of a frame this size (for distance from the camera)."""
        dx = (self.right_eye[0] - self.left_eye[0]) * frame_width
        dy = (self.right_eye[1] - self.left_eye[1]) * frame_height
        return math.hypot(dx, dy)

    @property
    def area(self) -> float:
        """Box area as a fraction of the frame: the kiosk's one measure of how close a face is (larger is closer)."""
        return max(0.0, self.box[2]) * max(0.0, self.box[3])


class FaceDetector(Protocol):
    """Finds faces in an RGB frame."""

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        """Faces in the image, closest (largest area) first."""
        ...

    def close(self) -> None:
        """Free the model."""
        ...


class BlazeFaceDetector:
    """MediaPipe's BlazeFace: one long-lived model; call detect() from one thread only.

    MediaPipe graphs are not thread-safe.
    """

    def __init__(self, config: DetectorConfig):
        self.config = config
        try:
            import mediapipe as mp  # imported here: loading it takes a second and the tests fake it
            with quiet_stderr():  # MediaPipe logs its set-up and first inference straight to fd 2
                model = mp.solutions.face_detection.FaceDetection(
                    model_selection=0 if config.model == "short" else 1,
                    min_detection_confidence=config.min_score)
                try:  # the first inference now, inside the quiet window and before any camera thread runs
                    model.process(np.zeros((64, 64, 3), np.uint8))
                except BaseException:
                    model.close()
                    raise
        except (ImportError, AttributeError, RuntimeError, FileNotFoundError) as exc:
            raise MonalisaError(f"face detector: cannot load MediaPipe BlazeFace ({exc})") from exc
        self._model = model
        self._closed = False

    def detect(self, image_rgb: np.ndarray) -> list[Face]:
        """Faces in an RGB uint8 HxWx3 frame, closest (largest area) first."""
        if self._closed:
            raise RuntimeError("BlazeFaceDetector used after close()")
        if image_rgb.dtype != np.uint8 or image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(f"detect() needs an RGB uint8 HxWx3 image, got {image_rgb.dtype} {image_rgb.shape}")
        height, width = image_rgb.shape[:2]
        results = self._model.process(np.ascontiguousarray(image_rgb))
        faces = [self._face(detection, (width, height)) for detection in results.detections or ()]
        faces.sort(key=lambda face: face.area, reverse=True)
        return faces

    @staticmethod
    def _face(detection, frame_size: tuple[int, int]) -> Face:
        """Convert a MediaPipe detection to a Face."""
        box = detection.location_data.relative_bounding_box
        points = detection.location_data.relative_keypoints
        image_left, image_right = points[_IMAGE_LEFT_EYE], points[_IMAGE_RIGHT_EYE]
        return Face(box=(box.xmin, box.ymin, box.width, box.height), score=float(detection.score[0]),
                    left_eye=(image_left.x, image_left.y), right_eye=(image_right.x, image_right.y),
                    frame_size=frame_size)

    def close(self) -> None:
        """Free the MediaPipe graph (idempotent)."""
        if not self._closed:
            self._closed = True
            self._model.close()

    def __enter__(self) -> BlazeFaceDetector:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
