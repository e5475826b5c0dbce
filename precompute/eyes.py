"""One eye's part of the warp: the iris slides inside the opening, the sclera stretches around it.

Works in the eye's own frame (u along the corner-to-corner axis, v across it) on a small box
around the eye; ``EyeWarp.field`` gives the displacement for an eye rotation, which the engine
samples through its head map so head and eyes make one backward map.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from monalisa.pool.geometry import Rect
from precompute.portrait import EyeGeometry

EYEBALL_RADIUS = 0.43      # eyeball radius in eye widths: iris offset ~ R sin(eye yaw)
EXAGGERATION = 1.5         # the radius may grow up to this much so the grid's extreme uses the travel
SIDE_RATIO = 1.15          # travel per degree may differ this much between left and right (off-centre irises)
IRIS_RIGID = 1.1           # the disc moved without distortion, in iris radii (keeps the limbus crisp)
PITCH_ROOM = 0.6           # vertical iris travel limit, in iris radii
LID_FOLLOW = 0.4           # share of the vertical gaze that the lids around the eye follow
LID_BAND = 0.05            # iris motion fades out this far beyond the lid landmarks, in eye widths


class EyeWarp:
    """The displacement field of one eye, set up once and evaluated per gaze direction.

    Works in the eye's own frame: u along the corner-to-corner axis, v across it (down for
    an upright face), both relative to the iris centre, on a small box around the eye.
    """

    def __init__(self, eye: EyeGeometry, iris_travel: float, max_yaw: float, max_pitch: float):
        self.width = eye.width
        x0, y0, x1, y1 = eye_region(eye)
        self.x0, self.y0 = math.floor(x0), math.floor(y0)
        self.box_w, self.box_h = math.ceil(x1) - self.x0, math.ceil(y1) - self.y0
        left, right, center = (np.array(p) for p in (eye.corner_left, eye.corner_right, eye.center))
        self.axis = (right - left) / max(self.width, 1e-6)
        self.normal = np.array([-self.axis[1], self.axis[0]])
        ys, xs = np.mgrid[0:self.box_h, 0:self.box_w].astype(np.float32)
        dx, dy = xs + self.x0 - center[0], ys + self.y0 - center[1]
        self.u = dx * self.axis[0] + dy * self.axis[1]
        self.v = dx * self.normal[0] + dy * self.normal[1]
        self.corner_u = (float((left - center) @ self.axis), float((right - center) @ self.axis))
        self.rigid = IRIS_RIGID * eye.iris_radius
        radius = EYEBALL_RADIUS * self.width
        self.limit_left = iris_travel * max(0.0, -self.corner_u[0] - eye.iris_radius)
        self.limit_right = iris_travel * max(0.0, self.corner_u[1] - eye.iris_radius)
        self.gain_left, self.gain_right = _side_gains(self.limit_left, self.limit_right, radius, max_yaw)
        self.limit_v = iris_travel * PITCH_ROOM * eye.iris_radius
        self.gain_v = _side_gains(self.limit_v, self.limit_v, radius, max_pitch)[0]
        self.inside = _signed_distance(eye.opening - (self.x0, self.y0), self.box_w,
                                       self.box_h, self.width)
        self.surround = bump(self.u / (0.9 * self.width), self.v / (0.7 * self.width))
        self.upper_u, self.upper_v = self._to_eye_frame(eye.upper_lid, center)
        self.lower_u, self.lower_v = self._to_eye_frame(eye.lower_lid, center)
        self.middle, self.half = self._opening_at(self.u)

    def _to_eye_frame(self, polyline: np.ndarray, center: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A lid polyline as (u, v) arrays sorted by u."""
        u = (polyline - center) @ self.axis
        v = (polyline - center) @ self.normal
        order = np.argsort(u)
        return u[order], v[order]

    def _opening_at(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Middle and half height (v) of the eye opening at each u."""
        upper = np.interp(u, self.upper_u, self.upper_v)
        lower = np.interp(u, self.lower_u, self.lower_v)
        return (upper + lower) / 2, np.maximum((lower - upper) / 2, 0.5)

    def travel(self, eye_yaw: float, eye_pitch: float) -> tuple[float, float]:
        """Iris offset (u, v) in pixels for an eye rotation in radians (up is -v)."""
        along = math.sin(eye_yaw) * (self.gain_right if eye_yaw > 0 else self.gain_left)
        across = -math.sin(eye_pitch) * self.gain_v
        return (min(max(along, -self.limit_left), self.limit_right),
                min(max(across, -self.limit_v), self.limit_v))

    def field(self, eye_yaw: float, eye_pitch: float, closure: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Displacement (x, y) on the eye box: the output pixel samples the portrait at p - d.

        ``closure`` is the blink stage: 0 open (as painted), 1 lids fully closed.
        """
        along, across = self.travel(eye_yaw, eye_pitch)
        iris_across = (1 - LID_FOLLOW) * across
        band = max(LID_BAND * self.width, 1.0, 2.0 * abs(iris_across))
        weight = _slide_weight(self.u, along, self.rigid, *self.corner_u)
        weight *= smoothstep(self.inside / band + 1)
        lids = LID_FOLLOW * across * self.surround
        du = along * weight
        # Off the iris disc, sample at the same height *relative to the lids* so the sclera
        # keeps to the opening (no lid line dragged in where the lids converge).
        source_middle, source_half = self._opening_at(self.u - du)
        relative_v = source_middle + (self.v - self.middle) * (source_half / self.half)
        disc = np.where(np.abs(self.u - along) <= self.rigid, 1.0, weight)
        dv = (iris_across * weight + (1 - disc**2) * (self.v - relative_v)) + lids
        return (du * self.axis[0] + dv * self.normal[0]).astype(np.float32), \
               (du * self.axis[1] + dv * self.normal[1]).astype(np.float32)

    def add_displacement(self, map_x: np.ndarray, map_y: np.ndarray, shift_x: np.ndarray,
                         shift_y: np.ndarray, rect: Rect, eye_yaw: float, eye_pitch: float,
                         closure: float = 0.0) -> None:
        """Add this eye's displacement, sampled where the head map points, to shift_x/y."""
        field_x, field_y = self.field(eye_yaw, eye_pitch, closure)
        # Output pixel p samples the eye box at map(p) = p - head shift, so the pixels that
        # land in the box are the box moved by the head shift (taken at the box centre).
        col = min(max(self.x0 + self.box_w // 2 - rect.x, 0), rect.width - 1)
        row = min(max(self.y0 + self.box_h // 2 - rect.y, 0), rect.height - 1)
        head_dx = round(rect.x + col - float(map_x[row, col]))
        head_dy = round(rect.y + row - float(map_y[row, col]))
        left = max(0, self.x0 - rect.x + head_dx - 2)
        top = max(0, self.y0 - rect.y + head_dy - 2)
        right = min(rect.width, self.x0 - rect.x + head_dx + self.box_w + 2)
        bottom = min(rect.height, self.y0 - rect.y + head_dy + self.box_h + 2)
        if right <= left or bottom <= top:
            return
        local_x = map_x[top:bottom, left:right] - self.x0
        local_y = map_y[top:bottom, left:right] - self.y0
        for field, shift in ((field_x, shift_x), (field_y, shift_y)):
            shift[top:bottom, left:right] += cv2.remap(
                field, local_x, local_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def eye_region(eye: EyeGeometry) -> tuple[float, float, float, float]:
    """The box around an eye that its displacement can touch (lids following included)."""
    reach = 0.9 * eye.width
    x, y = eye.center
    return x - reach, y - reach, x + reach, y + reach


def _signed_distance(polygon: np.ndarray, width: int, height: int, eye_width: float) -> np.ndarray:
    """Distance (pixels) from each box pixel to the polygon's edge: positive inside, negative outside.

    Computed on a supersampled mask so small eyes (a few pixels high) get smooth values.
    """
    factor = int(min(8, max(1, math.ceil(160 / max(eye_width, 1.0)))))
    mask = np.zeros((height * factor, width * factor), np.uint8)
    points = np.round((polygon + 0.5) * factor * 16 - 0.5 * 16).astype(np.int32)
    cv2.fillPoly(mask, [points], 255, lineType=cv2.LINE_8, shift=4)
    inside = cv2.distanceTransform(mask, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(255 - mask, cv2.DIST_L2, 5)
    distance = inside - outside
    if factor > 1:
        distance = cv2.resize(distance, (width, height), interpolation=cv2.INTER_AREA)
    return distance / factor


def _slide_weight(u: np.ndarray, along: float, rigid: float, corner_left: float,
                  corner_right: float) -> np.ndarray:
    """1 over the moved iris disc, easing to 0 at both corners (along the eye axis)."""
    left_edge = max(along - rigid, corner_left + 0.5)
    right_edge = min(along + rigid, corner_right - 0.5)
    rising = smoothstep((u - corner_left) / max(left_edge - corner_left, 1e-3))
    falling = smoothstep((corner_right - u) / max(corner_right - right_edge, 1e-3))
    return np.where(u < left_edge, rising, np.where(u > right_edge, falling, 1.0)).astype(np.float32)


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a smooth S in between."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def bump(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A smooth hill: 1 at the origin, exactly 0 from unit (elliptic) radius on."""
    r2 = x * x + y * y
    return np.where(r2 < 1, (1 - r2) ** 2, 0).astype(np.float32)


def _side_gains(limit_a: float, limit_b: float, radius: float, max_angle: float) -> tuple[float, float]:
    """Iris travel (pixels per unit sine of the eye angle) toward each side.

    Enough for the grid's extreme angle to reach the travel limit (a big visible range
    matters more than exact degrees), but at most EXAGGERATION times the physical eyeball
    radius; the sides differ at most SIDE_RATIO so the sweep moves in even steps.
    """
    reach = math.sin(max_angle) if max_angle > 1e-6 else math.sin(math.radians(30))
    gains = [min(limit / reach, EXAGGERATION * radius) for limit in (limit_a, limit_b)]
    low = min(gains)
    if low > 0:
        gains = [min(gain, SIDE_RATIO * low) for gain in gains]
    return gains[0], gains[1]
