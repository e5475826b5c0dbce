"""The default engine: turn a portrait's head and eyes by warping the painting's own pixels.

Each frame is one backward map (output pixel -> where to sample the portrait) over the patch
rectangle and one Lanczos resampling. The map composes the head turn (``precompute.head``: the
head as a depth-mapped mesh, rotated and drawn with a z-buffer) with each eye's field
(``precompute.eyes``), sampled where the head map points.

Grid directions are true directions relative to the picture's normal: the engine reads the
painting's own gaze (``precompute.perceived``), splits each change between eyes and head
(``precompute.gaze_plan``) and, when asked, scales its commands so that probe frames read back
what they are labelled.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import cv2
import numpy as np

from monalisa.config import WarpConfig
from monalisa.errors import PrecomputeError
from monalisa.pool.geometry import Rect
from precompute.eyes import EYEBALL_RADIUS, EyeWarp, eye_region
from precompute.gaze_plan import EYE_MAX, Command, FacePlan, GazeReader, calibrate, head_limits
from precompute.head import HeadModel, HeadPose, segment_person
from precompute.portrait import FaceGeometry

log = logging.getLogger(__name__)

LOOKAHEAD = 2              # grid cells whose head maps are drawn ahead on a worker thread
BLINK_MARGIN = 3           # pixels added around the eye regions' union
SHARPEN = 0.045            # resample(): sharpening weight at a half-pixel offset
_SECOND_X = np.array([[1.0, -2.0, 1.0]], np.float32)
_FRACTIONS = 64            # fractional offsets are looked up in this many steps
_WEIGHTS = (SHARPEN * np.sin(np.pi * (np.arange(_FRACTIONS) + 0.5) / _FRACTIONS) ** 2).astype(np.float32)


class WarpEngine:
    """Render gaze directions of a portrait by warping its pixels (BlinkingEngine protocol)."""

    name = "warp"

    def __init__(self, image: np.ndarray, faces: Sequence[FaceGeometry], config: WarpConfig,
                 yaws: Sequence[float], pitches: Sequence[float], reader: GazeReader | None = None):
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise PrecomputeError(f"portrait must be RGB uint8, got {image.shape} {image.dtype}")
        if not faces:
            raise PrecomputeError("the warp engine needs at least one face")
        self._image = image
        self._faces = list(faces)
        self._config = config
        self._yaws, self._pitches = [float(v) for v in yaws], [float(v) for v in pitches]
        turning = config.head_yaw_limit > 0 or config.head_pitch_limit > 0
        turns = [turning and face.landmarks_3d is not None for face in self._faces]
        self._plans = [self._painted_plan(face, reader, turn) for face, turn in zip(self._faces, turns)]
        person = segment_person(image, [f for f, t in zip(self._faces, turns) if t]) if any(turns) else None
        self._heads = [HeadModel(face, person, image.shape, plan.widest_pose()) if turn else None
                       for face, turn, plan in zip(self._faces, turns, self._plans)]
        max_yaw, max_pitch = (math.radians(v) for v in EYE_MAX)
        self._eyes = [[EyeWarp(eye, config.iris_travel, max_yaw, max_pitch, image=image) for eye in face.eyes]
                      for face in self._faces]
        self._rect = self._union_rect()
        rows, cols = self._rect.slices
        self._original = image[rows, cols]
        ys, xs = np.mgrid[rows, cols].astype(np.float32)
        self._grid_x, self._grid_y = xs, ys
        self._cached: tuple[tuple[HeadPose, ...], np.ndarray, np.ndarray] | None = None
        self._cells = [(yaw, pitch) for pitch in self._pitches for yaw in self._yaws]
        self._cell_order = {cell: index for index, cell in enumerate(self._cells)}
        self._ahead: dict[tuple[HeadPose, ...], Future] = {}
        self._worker: ThreadPoolExecutor | None = None
        if config.calibrate and reader is not None:
            for index, plan in enumerate(self._plans):
                if plan.painted is not None:
                    calibrate(self._frame, index, len(self._faces), plan, reader, self._faces[index],
                              self._yaws, self._pitches)
        self._blink = self._blink_union()

    # ------------------------------------------------------------------------- protocol

    def params(self) -> dict:
        """Settings, measured gaze, per-side limits and face geometry, recorded in the pool manifest."""
        config = self._config
        return {
            "head_follow": config.head_follow,
            "eye_range": config.eye_range,
            "iris_travel": config.iris_travel,
            "eyeball_radius": EYEBALL_RADIUS,
            "painted_gaze": [round(v, 2) for v in self.painted_gaze()],
            "faces": [{"box": [round(v, 1) for v in face.box],
                       "from": face.found_by, **({"how": face.detail} if face.detail else {}),
                       "head_turn": head is not None,
                       **plan.describe(),
                       "eyes": [[round(e.center[0], 1), round(e.center[1], 1), round(e.iris_radius, 2)]
                                for e in face.eyes]}
                      for face, head, plan in zip(self._faces, self._heads, self._plans)],
        }

    def painted_gaze(self) -> tuple[float, float]:
        """The largest face's own perceived gaze (yaw, pitch) in degrees; (0, 0) if it was not read."""
        return self._plans[self._largest()].painted_gaze

    def head_limits(self) -> tuple[float, float, float, float]:
        """The largest face's head limits in true degrees of head change: yaw low, high, pitch low, high."""
        return self._plans[self._largest()].true_limits()

    def reach(self) -> tuple[float, float, float, float]:
        """The largest face's reachable true gaze: yaw low, high, pitch low, high (cells beyond are clamped)."""
        return self._plans[self._largest()].reach()

    def shows(self, yaw: float, pitch: float) -> tuple[float, float]:
        """The true direction a cell asked for (yaw, pitch) really shows: clamped to the reach."""
        low, high, down, up = self.reach()
        return min(max(yaw, low), high), min(max(pitch, down), up)

    def patch_rect(self) -> Rect:
        """Everything any frame may change: the head regions (with their bands) and eye regions."""
        return self._rect

    def render(self, yaw: float, pitch: float) -> np.ndarray:
        """The patch with every face looking toward (yaw, pitch) true degrees."""
        commands = self._commands(yaw, pitch)
        self._head_map(commands)
        self._draw_ahead(yaw, pitch)
        return self._render(commands, 0.0, self._rect)

    def blink_rect(self) -> Rect:
        """The part of the patch a blink changes: every eye region wherever any cell's head puts it."""
        return self._blink

    def render_blink(self, yaw: float, pitch: float, closure: float) -> np.ndarray:
        """blink_rect's pixels for (yaw, pitch) with the lids ``closure`` closed (0 open, 1 shut)."""
        return self._render(self._commands(yaw, pitch), closure, self._blink)

    # ------------------------------------------------------------------------- rendering

    def _largest(self) -> int:
        return max(range(len(self._faces)), key=lambda i: self._faces[i].size[0] * self._faces[i].size[1])

    def _commands(self, yaw: float, pitch: float) -> list[Command]:
        return [plan.command(yaw, pitch) for plan in self._plans]

    def _frame(self, commands: list[Command]) -> np.ndarray:
        """The whole portrait with ``commands`` applied (for probe frames)."""
        out = self._image.copy()
        out[self._rect.slices] = self._render(commands, 0.0, self._rect)
        return out

    def close(self) -> None:
        """Stop drawing ahead: cancel the queued head maps and end the worker thread (build_pool calls it)."""
        self._ahead.clear()
        if self._worker is not None:
            self._worker.shutdown(wait=True, cancel_futures=True)
            self._worker = None

    def _head_map(self, commands: list[Command]) -> tuple[np.ndarray, np.ndarray]:
        """The head part of the backward map over the patch. The last one is kept (a cell's blink
        stages and cells whose heads are clamped at a limit share it), and the next grid cells' are
        drawn ahead on a worker thread while the caller resamples and stores this one."""
        key = tuple(command.head for command in commands)
        if self._cached is None or self._cached[0] != key:
            ahead = self._ahead.pop(key, None)
            maps = ahead.result() if ahead is not None else self._draw_heads(key)
            self._cached = (key, *maps)
        return self._cached[1], self._cached[2]

    def _draw_ahead(self, yaw: float, pitch: float) -> None:
        """Start the head maps of the grid cells after (yaw, pitch), in the build's row-major order."""
        if (yaw, pitch) not in self._cell_order:
            return
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warp-heads")
        index = self._cell_order[(yaw, pitch)]
        for next_yaw, next_pitch in self._cells[index + 1:index + 1 + LOOKAHEAD]:
            key = tuple(command.head for command in self._commands(next_yaw, next_pitch))
            if key not in self._ahead and (self._cached is None or key != self._cached[0]):
                self._ahead[key] = self._worker.submit(self._draw_heads, key)
        current = {tuple(c.head for c in self._commands(*cell)) for cell in self._cells[index:index + 1 + LOOKAHEAD]}
        for stale in [key for key in self._ahead if key not in current]:
            self._ahead.pop(stale).cancel()

    def _draw_heads(self, poses: tuple[HeadPose, ...]) -> tuple[np.ndarray, np.ndarray]:
        """Every face's head map for ``poses`` pasted into one backward map over the patch (thread-safe)."""
        map_x, map_y = self._grid_x.copy(), self._grid_y.copy()
        for head, pose in zip(self._heads, poses):
            if head is None or (pose.yaw == 0 and pose.pitch == 0):
                continue
            head_x, head_y = head.backward_map(pose)
            both = _intersect(head.rect, self._rect)   # the head's map is the identity outside the patch
            rows, cols = both.relative_to(self._rect).slices
            head_rows, head_cols = both.relative_to(head.rect).slices
            head_x, head_y = head_x[head_rows, head_cols], head_y[head_rows, head_cols]
            moved = (head_x != self._grid_x[rows, cols]) | (head_y != self._grid_y[rows, cols])
            map_x[rows, cols] = np.where(moved, head_x, map_x[rows, cols])
            map_y[rows, cols] = np.where(moved, head_y, map_y[rows, cols])
        return map_x, map_y

    def _render(self, commands: list[Command], closure: float, rect: Rect) -> np.ndarray:
        """One backward map for heads and eyes, one Lanczos resampling, over ``rect``."""
        head_x, head_y = self._head_map(commands)
        # One pixel more on each side (within the patch) so the sharpening sees true neighbours:
        # a blink patch then matches the gaze frame around it exactly.
        grown = _grow(rect, 1, self._rect)
        rows, cols = grown.relative_to(self._rect).slices
        map_x, map_y = head_x[rows, cols].copy(), head_y[rows, cols].copy()
        shift_x = np.zeros_like(map_x)
        shift_y = np.zeros_like(map_y)
        for eyes, command in zip(self._eyes, commands):
            for eye in eyes:
                eye.add_displacement(map_x, map_y, shift_x, shift_y, grown, math.radians(command.eye_yaw),
                                     math.radians(command.eye_pitch), closure)
        map_x -= shift_x
        map_y -= shift_y
        warped = resample(self._image, map_x, map_y)
        offset = cv2.absdiff(map_x, self._grid_x[rows, cols]) + cv2.absdiff(map_y, self._grid_y[rows, cols])
        moved = (offset > 1e-3).astype(np.uint8)
        patch = self._original[rows, cols].copy()
        cv2.copyTo(warped, moved, patch)  # pixels that stay keep the painting's own values exactly
        inner_rows, inner_cols = rect.relative_to(grown).slices
        return patch[inner_rows, inner_cols]

    # ------------------------------------------------------------------------- set-up

    def _painted_plan(self, face: FaceGeometry, reader: GazeReader | None, turns: bool) -> FacePlan:
        """The face's painted gaze (read when a reader is given) and its eye/head split."""
        painted = reader.painted(self._image, face) if reader is not None and face.landmarks is not None else None
        if reader is not None and face.landmarks is not None and painted is None:
            log.warning("FaceMesh could not read the painted gaze of the face at x=%.0f; taking it as "
                        "straight out of the picture", face.center[0])
        head_yaw = painted.head_yaw if painted is not None else 0.0
        limits = head_limits(head_yaw, self._config) if turns else (0.0, 0.0, 0.0, 0.0)
        return FacePlan(self._config, painted, limits)

    def _union_rect(self) -> Rect:
        """Bounding box of every head's changing pixels (region and band) and eye region, in the image."""
        height, width = self._image.shape[:2]
        boxes = []
        for face, head in zip(self._faces, self._heads):
            if head is not None and head.changed.any():
                rows, cols = np.nonzero(head.changed.any(axis=1))[0], np.nonzero(head.changed.any(axis=0))[0]
                boxes.append((head.rect.x + cols[0] - 1, head.rect.y + rows[0] - 1,
                              head.rect.x + cols[-1] + 2, head.rect.y + rows[-1] + 2))
            boxes.extend(eye_region(eye) for eye in face.eyes)
        return _clip_box(boxes, width, height)

    def _blink_union(self) -> Rect:
        """Every eye region, moved by each grid cell's head pose, plus a margin; inside the patch."""
        boxes = []
        for face, head, plan in zip(self._faces, self._heads, self._plans):
            for eye in face.eyes:
                x0, y0, x1, y1 = eye_region(eye)
                corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1], [(x0 + x1) / 2, (y0 + y1) / 2]])
                boxes.append((x0, y0, x1, y1))
                if head is None:
                    continue
                for yaw in self._yaws:
                    for pitch in self._pitches:
                        moved = head.move_points(corners, plan.command(yaw, pitch).head)
                        boxes.append((*moved.min(axis=0), *moved.max(axis=0)))
        boxes = [(x0 - BLINK_MARGIN, y0 - BLINK_MARGIN, x1 + BLINK_MARGIN, y1 + BLINK_MARGIN)
                 for x0, y0, x1, y1 in boxes]
        patch = self._rect
        inner = _clip_box(boxes, patch.x + patch.width, patch.y + patch.height)
        x0, y0 = max(inner.x, patch.x), max(inner.y, patch.y)
        return Rect(x0, y0, inner.x + inner.width - x0, inner.y + inner.height - y0)


def resample(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """cv2.remap with Lanczos-4, then its loss near the Nyquist frequency made up: Lanczos-4 keeps
    texture exactly at whole-pixel offsets but damps the finest detail most at half-pixel ones, so
    each axis gets a 3-tap sharpening weighted by sin^2(pi * fractional offset) (SHARPEN at half a
    pixel; tuned so the face's Laplacian variance stays within about 2 % at any offset)."""
    warped = cv2.remap(image, map_x, map_y, cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT)
    values = warped.astype(np.float32)
    across = cv2.filter2D(values, -1, _SECOND_X, borderType=cv2.BORDER_REPLICATE)
    down = cv2.filter2D(values, -1, _SECOND_X.T, borderType=cv2.BORDER_REPLICATE)
    for second, coordinate in ((across, map_x), (down, map_y)):
        steps = (coordinate * _FRACTIONS).astype(np.int32) & (_FRACTIONS - 1)  # two's complement: floor's fraction
        second *= _WEIGHTS[steps][..., None]
        values -= second
    np.maximum(values, 0, out=values)
    return cv2.convertScaleAbs(values)  # rounds and saturates to 255


def _intersect(a: Rect, b: Rect) -> Rect:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.width, b.x + b.width), min(a.y + a.height, b.y + b.height)
    return Rect(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def _grow(rect: Rect, by: int, within: Rect) -> Rect:
    """``rect`` grown by ``by`` pixels on every side, clipped to ``within``."""
    x0, y0 = max(rect.x - by, within.x), max(rect.y - by, within.y)
    x1 = min(rect.x + rect.width + by, within.x + within.width)
    y1 = min(rect.y + rect.height + by, within.y + within.height)
    return Rect(x0, y0, x1 - x0, y1 - y0)


def _clip_box(boxes: list[tuple[float, float, float, float]], width: int, height: int) -> Rect:
    x0 = max(0, math.floor(min(b[0] for b in boxes)))
    y0 = max(0, math.floor(min(b[1] for b in boxes)))
    x1 = min(width, math.ceil(max(b[2] for b in boxes)))
    y1 = min(height, math.ceil(max(b[3] for b in boxes)))
    return Rect(x0, y0, x1 - x0, y1 - y0)


__all__ = ["HeadPose", "WarpEngine"]
