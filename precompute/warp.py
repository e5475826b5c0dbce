"""The default engine: turn a portrait's gaze by warping the painting's own pixels.

Each frame is one backward map (output pixel -> where to sample the portrait) for
``cv2.remap``, built only over the patch rectangle from two smooth fields:

* head: a small shift of the face centre, fading to exactly zero before the patch border,
  so the head turns a little with the gaze (``WarpConfig.head_follow``);
* eyes: inside each eye opening the iris disc slides rigidly toward the target while the
  sclera stretches on one side and compresses on the other; lids and corners stay put.

The map is built in the output frame (the iris disc is where it ends up), which keeps it
fold-free as long as the iris stays inside the opening; the travel is clamped to make sure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from monalisa.config import WarpConfig
from monalisa.errors import PrecomputeError
from monalisa.pool.geometry import Rect
from precompute.eyes import EYEBALL_RADIUS, EyeWarp, bump, eye_region
from precompute.portrait import FaceGeometry

HEAD_REACH = 1.2           # the head bump reaches this far, in face half-sizes
HEAD_DEPTH = 0.5           # face centre depth in face widths: centre shift = depth * sin(head yaw)


class WarpEngine:
    """Render gaze directions of a portrait by warping its pixels (Engine protocol)."""

    name = "warp"

    def __init__(self, image: np.ndarray, faces: Sequence[FaceGeometry], config: WarpConfig,
                 yaws: Sequence[float], pitches: Sequence[float]):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise PrecomputeError(f"portrait must be RGB uint8, got {image.shape} {image.dtype}")
        if not faces:
            raise PrecomputeError("the warp engine needs at least one face")
        self._image = image
        self._faces = list(faces)
        self._config = config
        self._yaws, self._pitches = [float(v) for v in yaws], [float(v) for v in pitches]
        self._rect = self._union_rect()
        rows, cols = self._rect.slices
        self._original = image[rows, cols]
        ys, xs = np.mgrid[rows, cols].astype(np.float32)
        self._grid_x, self._grid_y = xs, ys
        self._head = self._head_field()
        max_yaw = max((abs(v) for v in self._yaws), default=0.0) * (1 - config.head_follow)
        max_pitch = max((abs(v) for v in self._pitches), default=0.0) * (1 - config.head_follow)
        self._eyes = [EyeWarp(eye, config.iris_travel, math.radians(max_yaw), math.radians(max_pitch), image=image)
                      for face in self._faces for eye in face.eyes]

    # ------------------------------------------------------------------------- protocol

    def params(self) -> dict:
        """Settings and face geometry, recorded in the pool manifest."""
        return {
            "head_follow": self._config.head_follow,
            "iris_travel": self._config.iris_travel,
            "eyeball_radius": EYEBALL_RADIUS,
            "faces": [{"box": [round(v, 1) for v in face.box],
                       "from": "facemesh" if face.landmarks is not None else "eye points",
                       "eyes": [[round(e.center[0], 1), round(e.center[1], 1), round(e.iris_radius, 2)]
                                for e in face.eyes]}
                      for face in self._faces],
        }

    def patch_rect(self) -> Rect:
        """Everything any frame may change: the head bumps and eye regions of all faces."""
        return self._rect

    def render(self, yaw: float, pitch: float) -> np.ndarray:
        """The patch with every face looking toward (yaw, pitch) degrees."""
        return self._render(yaw, pitch, 0.0, self._rect)

    def blink_rect(self) -> Rect:
        """The part of the patch a blink changes (every eye region, wherever the head puts it)."""
        return self._rect

    def render_blink(self, yaw: float, pitch: float, closure: float) -> np.ndarray:
        """blink_rect's pixels for (yaw, pitch) with the lids ``closure`` closed (0 open, 1 shut)."""
        return self._render(yaw, pitch, closure, self.blink_rect())

    def _render(self, yaw: float, pitch: float, closure: float, rect: Rect) -> np.ndarray:
        """One backward map for head and eyes, one Lanczos resampling, cut to ``rect``."""
        head_yaw = math.radians(self._config.head_follow * yaw)
        head_pitch = math.radians(self._config.head_follow * pitch)
        eye_yaw = math.radians(yaw) - head_yaw
        eye_pitch = math.radians(pitch) - head_pitch
        map_x = self._grid_x - math.sin(head_yaw) * self._head     # the centre moves toward the yaw
        map_y = self._grid_y + math.sin(head_pitch) * self._head   # ...and up for pitch > 0
        shift_x = np.zeros_like(map_x)
        shift_y = np.zeros_like(map_y)
        for eye in self._eyes:
            eye.add_displacement(map_x, map_y, shift_x, shift_y, self._rect, eye_yaw, eye_pitch, closure)
        map_x -= shift_x
        map_y -= shift_y
        warped = cv2.remap(self._image, map_x, map_y, cv2.INTER_LANCZOS4,
                           borderMode=cv2.BORDER_REFLECT)
        moved = (np.abs(map_x - self._grid_x) + np.abs(map_y - self._grid_y)) > 1e-3
        patch = np.where(moved[..., None], warped, self._original)
        return patch[rect.relative_to(self._rect).slices]

    # ------------------------------------------------------------------------- set-up

    def _union_rect(self) -> Rect:
        """Bounding box of every head bump and eye region, clipped to the image."""
        height, width = self._image.shape[:2]
        boxes = []
        for face in self._faces:
            if self._config.head_follow > 0:
                (cx, cy), (fw, fh) = face.center, face.size
                boxes.append((cx - HEAD_REACH * fw / 2, cy - HEAD_REACH * fh / 2,
                              cx + HEAD_REACH * fw / 2, cy + HEAD_REACH * fh / 2))
            boxes.extend(eye_region(eye) for eye in face.eyes)
        x0 = max(0, math.floor(min(b[0] for b in boxes)))
        y0 = max(0, math.floor(min(b[1] for b in boxes)))
        x1 = min(width, math.ceil(max(b[2] for b in boxes)))
        y1 = min(height, math.ceil(max(b[3] for b in boxes)))
        return Rect(x0, y0, x1 - x0, y1 - y0)

    def _head_field(self) -> np.ndarray:
        """Pixels each patch pixel shifts per unit sine of the head angle: most at the face
        centre (it stands out in depth), nothing from the bump's edge on (the outline barely moves)."""
        head = np.zeros_like(self._grid_x)
        for face in self._faces:
            (cx, cy), (fw, fh) = face.center, face.size
            hill = bump((self._grid_x - cx) / (HEAD_REACH * fw / 2),
                        (self._grid_y - cy) / (HEAD_REACH * fh / 2))
            head += HEAD_DEPTH * fw * hill
        return head
