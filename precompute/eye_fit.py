"""Find an eye's iris and opening in the image itself, from a rough centre given by hand.

Works in the eye's own frame (u along the line between the two eyes, v across it, down for an
upright face) sampled in units of a hundredth of the eye distance. The iris is the circle whose
sides are the strongest dark-to-light edges near the point; the opening is a parametric almond
(corners, lid heights, how round, where the upper lid peaks) fitted so that its outline runs
along the inner edge of the lid lines: brighter inside (sclera) than just outside (lashes, skin).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

UNIT = 0.01                 # the frame's unit, in eye distances
REACH_U, REACH_V = 55, 40   # the sampled frame's half sizes, in units
IRIS_SEARCH = 14            # the iris centre may be this far from the given point, in units
IRIS_RADII = (5.5, 14.0)    # iris radius range, in units
EYE_LIKE_IRIS = 0.10        # iris edge contrast (share of the local range) below this: not an eye
EYE_LIKE_OPENING = 0.06     # opening edge contrast below this: not an eye
OPENING_CLEAR = 0.3         # opening edge contrast from which the fitted outline is used
LID_POINTS = 13
AREA_WEIGHT = 0.5          # the opening's interior term against its outline term
CORNER_WEIGHT = 1.0        # skin just inside a corner costs this much per sample (share of the range)
LID_INSET = 0.015          # the lids handed on sit this far inside the fitted edges, in eye widths
IRIS_SHOWN = 0.55          # the lids are at least this far above and below the iris centre, in radii
WIDTH_PRIOR = 0.02         # pull of each corner toward 2.5 iris radii from the iris centre
EDGE_MARGIN = 0.04         # outline contrast (share of the range) below this counts against it
RANGE_FLOOR = 40.0         # grey levels: the local range is at least this (smooth skin is not high contrast)

# The opening's parameters: (name, low, high) in iris radii (corners' distances from the iris centre,
# corner line height, lid heights), slope for tilt, shape exponent (0.5 elliptic, 1 pointed), and
# where the upper lid peaks (-1..1 between the corners).
_PARAMS = (("left", 1.4, 3.8), ("right", 1.4, 3.8), ("tilt", -0.12, 0.12), ("height", -0.45, 0.45),
           ("upper", 0.6, 1.8), ("lower", 0.4, 1.6), ("round", 0.5, 1.0), ("peak", -0.35, 0.35))
_START = {"left": 2.5, "right": 2.5, "tilt": 0.0, "height": 0.0, "upper": 1.0, "lower": 0.8,
          "round": 0.8, "peak": 0.0}


@dataclass(frozen=True)
class EyeFit:
    """What was found around one given point, in portrait pixels."""

    center: tuple[float, float]     # iris centre
    iris_radius: float
    upper_lid: np.ndarray           # (LID_POINTS, 2), corner to corner
    lower_lid: np.ndarray
    iris_score: float               # edge contrast of the iris sides, share of the local range
    opening_score: float            # edge contrast along the opening, share of the local range

    @property
    def eye_like(self) -> bool:
        return self.iris_score >= EYE_LIKE_IRIS and self.opening_score >= EYE_LIKE_OPENING

    @property
    def opening_clear(self) -> bool:
        """Whether the lids stood out enough to trust the fitted opening (clear sclera, drawn lid lines);
        in soft paintings and photos they often do not, and a plain almond around the iris is safer."""
        return self.eye_like and self.opening_score >= OPENING_CLEAR


class _Frame:
    """The image around one point, resampled into the eye frame (grey, float)."""

    def __init__(self, image: np.ndarray, point: np.ndarray, axis: np.ndarray, distance: float):
        self.point, self.axis = point, axis
        self.normal = np.array([-axis[1], axis[0]])
        self.scale = UNIT * distance  # pixels per unit
        # only the part of the portrait the frame covers (big scans), with room for the smoothing
        reach = math.hypot(REACH_U, REACH_V) * self.scale + 2 * self.scale + 2
        height, width = image.shape[:2]
        x0, y0 = max(0, int(point[0] - reach)), max(0, int(point[1] - reach))
        x1, y1 = min(width, int(point[0] + reach) + 1), min(height, int(point[1] + reach) + 1)
        region = image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
        grey = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY) if region.ndim == 3 else region
        # frame pixel (j, i) <- portrait point + (j - REACH_U) units along axis + (i - REACH_V) units across
        to_image = np.column_stack([axis * self.scale, self.normal * self.scale,
                                    point - (x0, y0) - (REACH_U * axis + REACH_V * self.normal) * self.scale])
        if self.scale > 1.5:  # shrinking: smooth first so the frame does not alias
            grey = cv2.GaussianBlur(grey, (0, 0), 0.5 * self.scale)
        frame = cv2.warpAffine(grey.astype(np.float32), to_image, (2 * REACH_U + 1, 2 * REACH_V + 1),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        self.pixels = cv2.GaussianBlur(frame, (0, 0), 0.7)
        low, high = np.percentile(self.pixels, (5, 95))
        self.range = max(float(high - low), RANGE_FLOOR)

    def sample(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Bilinear values at frame coordinates (units, relative to the given point)."""
        x = np.clip(np.asarray(u, np.float64) + REACH_U, 0, 2 * REACH_U - 1.001)
        y = np.clip(np.asarray(v, np.float64) + REACH_V, 0, 2 * REACH_V - 1.001)
        x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
        fx, fy = x - x0, y - y0
        p = self.pixels
        return ((p[y0, x0] * (1 - fx) + p[y0, x0 + 1] * fx) * (1 - fy)
                + (p[y0 + 1, x0] * (1 - fx) + p[y0 + 1, x0 + 1] * fx) * fy)

    def to_image(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Frame coordinates (units) as portrait pixels (N, 2)."""
        u, v = np.asarray(u, np.float64) * self.scale, np.asarray(v, np.float64) * self.scale
        return self.point + u[:, None] * self.axis + v[:, None] * self.normal


def fit_eye(image: np.ndarray, point, axis, distance: float, radius: float | None = None) -> EyeFit:
    """The iris and opening nearest ``point``; ``axis``: unit vector along the eye line (toward the
    image's right); ``distance``: between the two eye centres (px); ``radius``: iris radius if known."""
    point, axis = np.asarray(point, np.float64), np.asarray(axis, np.float64)
    frame = _Frame(image, point, axis, distance)
    fixed = None if radius is None else radius / frame.scale
    iu, iv, ir, iris_score = _find_iris(frame, fixed)
    params, opening_score = _fit_opening(frame, iu, iv, ir)
    upper, lower = _outline(params, iu, iv, ir, LID_POINTS)
    inset = LID_INSET * (params["left"] + params["right"]) * ir  # keep the lid lines out of the warp's reach
    room = np.clip((lower[:, 1] - upper[:, 1]) / 2 - 0.5, 0, None)
    upper[:, 1] += np.minimum(inset, room)
    lower[:, 1] -= np.minimum(inset, room)
    center = frame.to_image(np.array([iu]), np.array([iv]))[0]
    return EyeFit((float(center[0]), float(center[1])), float(ir * frame.scale),
                  frame.to_image(*upper.T), frame.to_image(*lower.T), iris_score, opening_score)


# ----------------------------------------------------------------------------- iris

def _find_iris(frame: _Frame, radius: float | None) -> tuple[float, float, float, float]:
    """(u, v, r, score): the circle with the strongest dark-inside edges on its left and right sides,
    darker inside than beside it, near the given point; a unit grid first, then a quarter-unit one."""
    offsets = np.arange(-IRIS_SEARCH, IRIS_SEARCH + 1, 1.0)
    radii = np.array([radius]) if radius is not None else np.arange(IRIS_RADII[0], IRIS_RADII[1] + 0.01, 0.5)
    u, v, r, score, contrast = _best_circle(frame, offsets, offsets, radii)
    fine = np.arange(-1.0, 1.01, 0.25)
    fine_radii = np.array([radius]) if radius is not None else np.clip(r + fine / 2, *IRIS_RADII)
    u, v, r, _, contrast = _best_circle(frame, u + fine, v + fine, np.unique(fine_radii))
    return u, v, r, contrast


def _best_circle(frame: _Frame, us: np.ndarray, vs: np.ndarray, radii: np.ndarray):
    """(u, v, r, score, contrast) of the best-scoring circle over a grid of centres and radii."""
    cu, cv_ = np.meshgrid(us, vs, indexing="ij")
    cu, cv_ = cu.ravel(), cv_.ravel()
    sides = np.radians(np.concatenate([np.linspace(-50, 50, 11), np.linspace(130, 230, 11)]))
    cos, sin = np.cos(sides), np.sin(sides)
    best = (0.0, 0.0, float(radii[0]), -np.inf, 0.0)
    for r in radii:
        edge = 1.5 if r > 7 else 1.0
        outer = frame.sample(cu[:, None] + (r + edge) * cos, cv_[:, None] + (r + edge) * sin)
        inner = frame.sample(cu[:, None] + (r - edge) * cos, cv_[:, None] + (r - edge) * sin)
        contrast = (outer - inner).mean(axis=1) / frame.range
        disc = frame.sample(cu[:, None] + 0.5 * r * cos, cv_[:, None] + 0.5 * r * sin).mean(axis=1)
        beside = frame.sample(cu[:, None] + 1.6 * r * cos, cv_[:, None] + 1.6 * r * sin).mean(axis=1)
        darker = np.clip((beside - disc) / frame.range, -0.5, 0.5)
        score = contrast + 0.5 * darker - 0.004 * np.hypot(cu, cv_) - 0.002 * abs(r - 9.5)
        k = int(np.argmax(score))
        if score[k] > best[3]:
            best = (float(cu[k]), float(cv_[k]), float(r), float(score[k]), float(contrast[k]))
    return best


# ----------------------------------------------------------------------------- opening

def _outline(params: dict[str, float], iu: float, iv: float, ir: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid (n, 2) in frame units, from the image-left corner to the other."""
    t = np.linspace(-1, 1, n)
    half = (params["left"] + params["right"]) / 2 * ir
    u = iu + (params["right"] - params["left"]) / 2 * ir + half * t
    line = iv + params["height"] * ir + params["tilt"] * half * t
    peak = params["peak"]
    s = np.where(t < peak, (t - peak) / (1 + peak), (t - peak) / (1 - peak))
    shape_upper = np.clip(1 - s**2, 0, 1) ** params["round"]
    shape_lower = np.clip(1 - t**2, 0, 1) ** params["round"]
    upper = np.column_stack([u, line - params["upper"] * ir * shape_upper])
    lower = np.column_stack([u, line + params["lower"] * ir * shape_lower])
    return upper, lower


def _opening_score(frame: _Frame, params: dict[str, float], iu: float, iv: float, ir: float,
                   threshold: float) -> tuple[float, float]:
    """(objective, mean contrast) along the outline: brighter just inside than just outside, as a share of
    the range. The objective sums the contrast above EDGE_MARGIN over the outline's length (so the outline
    grows along real edges and not past them). (-inf, 0) for shapes the iris does not fit in."""
    upper, lower = _outline(params, iu, iv, ir, 31)
    top = np.interp(iu, upper[:, 0], upper[:, 1])
    bottom = np.interp(iu, lower[:, 0], lower[:, 1])
    if top > iv - IRIS_SHOWN * ir or bottom < iv + IRIS_SHOWN * ir or bottom - top > 3.2 * ir:
        return -np.inf, 0.0  # the lids leave most of the iris's height open, and not much more
    total, length, weight = 0.0, 0.0, 0.0
    for lid, outward in ((upper, -1.0), (lower, 1.0)):
        tangent = np.gradient(lid, axis=0)
        spacing = np.linalg.norm(tangent, axis=1)
        normal = np.column_stack([tangent[:, 1], -tangent[:, 0]]) / np.maximum(spacing[:, None], 1e-9)
        normal *= np.sign(normal[:, 1:2] * outward + 1e-12)  # point out of the opening
        inside = sum(frame.sample(lid[:, 0] - d * normal[:, 0], lid[:, 1] - d * normal[:, 1]) for d in (1.0, 2.0))
        outside = sum(frame.sample(lid[:, 0] + d * normal[:, 0], lid[:, 1] + d * normal[:, 1]) for d in (1.0, 2.0))
        contrast = (inside - outside) / 2 / frame.range
        w = (np.abs(lid[:, 0] - iu) >= 0.8 * ir)[1:-1] * spacing[1:-1]  # over the iris the lids say little
        total += float(((contrast[1:-1] - EDGE_MARGIN) * w).sum())
        weight += float((contrast[1:-1] * w).sum())
        length += float(w.sum())
    prior = (WIDTH_PRIOR * ((params["left"] - 2.5) ** 2 + (params["right"] - 2.5) ** 2)
             + 0.01 * (params["upper"] - 1.0) ** 2 + 0.01 * (params["lower"] - 0.8) ** 2)
    area = _interior(frame, upper, lower, iu, iv, ir, threshold)
    return total / ir + AREA_WEIGHT * area / ir**2 - prior - _skin_at_corners(frame, params, iu, iv, ir, threshold), \
        weight / max(length, 1e-9)


def _skin_at_corners(frame: _Frame, params: dict[str, float], iu: float, iv: float, ir: float,
                     threshold: float) -> float:
    """How much darker than the sclera threshold the opening is just inside its corners (the tips must
    be sclera, not skin or the lid line running on past the corner)."""
    upper, lower = _outline(params, iu, iv, ir, 41)
    tips = np.r_[2:6, -6:-2]
    values = frame.sample(upper[tips, 0], (upper[tips, 1] + lower[tips, 1]) / 2)
    return CORNER_WEIGHT * float(np.clip((threshold - values) / frame.range, 0, None).sum())


def _interior(frame: _Frame, upper: np.ndarray, lower: np.ndarray, iu: float, iv: float, ir: float,
              threshold: float) -> float:
    """Sum over the opening outside the iris of (brightness - threshold) / range times area (units²):
    sclera inside pays, skin or lashes inside cost."""
    share = np.linspace(0.08, 0.92, 6)[:, None]
    u = np.broadcast_to(upper[:, 0], (len(share), len(upper)))
    v = upper[:, 1] + share * (lower[:, 1] - upper[:, 1])
    cell = np.gradient(upper[:, 0]) * (lower[:, 1] - upper[:, 1]) / len(share)
    outside_iris = np.hypot(u - iu, v - iv) > 1.1 * ir
    values = (frame.sample(u, v) - threshold) / frame.range
    return float((values * outside_iris * cell).sum())


def _sclera_threshold(frame: _Frame, iu: float, iv: float, ir: float) -> float:
    """Brightness halfway between the sclera (brightest beside the iris) and the skin above and below."""
    beside = np.concatenate([np.linspace(iu - 2.0 * ir, iu - 1.25 * ir, 6),
                             np.linspace(iu + 1.25 * ir, iu + 2.0 * ir, 6)])
    us, vs = np.meshgrid(beside, np.linspace(iv - 0.3 * ir, iv + 0.3 * ir, 5))
    sclera = float(np.percentile(frame.sample(us, vs), 75))
    us, vs = np.meshgrid(np.linspace(iu - 2.5 * ir, iu + 2.5 * ir, 11), np.array([iv - 2.6 * ir, iv + 2.4 * ir]))
    skin = float(np.median(frame.sample(us, vs)))
    return (sclera + skin) / 2


def _fit_opening(frame: _Frame, iu: float, iv: float, ir: float) -> tuple[dict[str, float], float]:
    """Coordinate descent over the outline's parameters from a typical almond; (params, edge contrast)."""
    params = dict(_START)
    threshold = _sclera_threshold(frame, iu, iv, ir)
    best, contrast = _opening_score(frame, params, iu, iv, ir, threshold)
    for step_share in (0.25, 0.12, 0.06, 0.03):
        for name, low, high in _PARAMS:
            step = step_share * (high - low)
            for value in params[name] + step * np.arange(-3, 4):
                if not low <= value <= high or value == params[name]:
                    continue
                trial = dict(params, **{name: float(value)})
                score, trial_contrast = _opening_score(frame, trial, iu, iv, ir, threshold)
                if score > best:
                    best, params, contrast = score, trial, trial_contrast
    return params, contrast
