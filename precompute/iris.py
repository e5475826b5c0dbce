"""Measure the painted iris: its radius from the dark-disc edge around FaceMesh's iris.

FaceMesh's iris can be a third too small on stylised paintings; a disc that small moves only the
iris's middle and leaves a smear of its rim behind. The limbus is the strongest dark-to-bright step
going outward from the iris centre along the eye axis (where the lids do not cover it).
"""

from __future__ import annotations

import dataclasses
import logging

import cv2
import numpy as np

from precompute.portrait import EyeGeometry

log = logging.getLogger(__name__)

SEARCH = (0.8, 1.8)        # radii searched, in FaceMesh iris radii
ACCEPT = (0.85, 1.7)       # a measured radius outside this share of FaceMesh's is not trusted
RAY_ANGLE = 40.0           # rays within this many degrees of the eye axis, on both sides
MIN_STEP = 12.0            # grey levels the limbus must rise by to count as found


def measure_iris(image: np.ndarray, eye: EyeGeometry) -> EyeGeometry:
    """The eye with its iris radius (and centre along the eye axis) measured from the painting;
    the eye unchanged when the painting shows no clear limbus."""
    radius0 = eye.iris_radius
    center = np.array(eye.center, dtype=np.float64)
    left, right = np.array(eye.corner_left), np.array(eye.corner_right)
    axis = (right - left) / max(float(np.linalg.norm(right - left)), 1e-6)
    normal = np.array([-axis[1], axis[0]])
    radii = np.arange(SEARCH[0] * radius0, SEARCH[1] * radius0, 0.25)
    if radius0 < 1.5 or len(radii) < 8:
        return eye
    grey = _luma(image, center, SEARCH[1] * radius0 + 4)
    if grey is None:
        return eye
    patch, origin = grey
    upper_u, upper_v = _lid(eye.upper_lid, center, axis, normal)
    lower_u, lower_v = _lid(eye.lower_lid, center, axis, normal)
    corners = ((left - center) @ axis, (right - center) @ axis)
    edges = []
    for side in (-1.0, 1.0):
        angles = np.radians(np.linspace(-RAY_ANGLE, RAY_ANGLE, 9))
        u = side * np.cos(angles)[:, None] * radii[None, :]
        v = np.sin(angles)[:, None] * radii[None, :]
        inside = ((u > corners[0] + 1) & (u < corners[1] - 1)
                  & (v > np.interp(u, upper_u, upper_v) + 1) & (v < np.interp(u, lower_u, lower_v) - 1))
        xs = center[0] + u * axis[0] + v * normal[0] - origin[0]
        ys = center[1] + u * axis[1] + v * normal[1] - origin[1]
        values = cv2.remap(patch, xs.astype(np.float32), ys.astype(np.float32), cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        edges.append(_edge(radii, values, inside, radius0))
    found = [e for e in edges if e is not None]
    if not found:
        log.debug("iris at (%.0f, %.0f): no clear limbus, keeping radius %.1f", *eye.center, radius0)
        return eye
    if len(found) == 2:
        radius, offset = (edges[0] + edges[1]) / 2, (edges[1] - edges[0]) / 2
    else:
        radius, offset = found[0], 0.0
    if not ACCEPT[0] <= radius / radius0 <= ACCEPT[1]:
        log.debug("iris at (%.0f, %.0f): measured radius %.1f is implausible next to %.1f",
                  *eye.center, radius, radius0)
        return eye
    moved = center + offset * axis
    log.debug("iris at (%.0f, %.0f): radius %.1f -> %.1f", *eye.center, radius0, radius)
    return dataclasses.replace(eye, iris_radius=float(radius), center=(float(moved[0]), float(moved[1])))


def _edge(radii: np.ndarray, values: np.ndarray, inside: np.ndarray, radius0: float) -> float | None:
    """The limbus radius along one side's rays, or None: where the mean grey rises most steeply,
    moved out to where the rise has mostly ended (a painted limbus is soft)."""
    counts = inside.sum(axis=0)
    usable = counts >= 3
    if usable.sum() < 6:
        return None
    profile = np.where(usable, (values * inside).sum(axis=0) / np.maximum(counts, 1), np.nan)
    last = int(np.flatnonzero(usable)[-1])
    first = int(np.flatnonzero(usable)[0])
    profile = profile[first:last + 1]
    rs = radii[first:last + 1]
    if np.isnan(profile).any() or len(profile) < 6:
        return None
    slope = np.gradient(profile, rs)
    peak = int(np.argmax(slope))
    if slope[peak] <= 0:
        return None
    reach = max(2, round(0.3 * radius0 / 0.25))
    rise = profile[min(peak + reach, len(profile) - 1)] - profile[max(peak - reach, 0)]
    if rise < MIN_STEP:
        return None
    end = peak
    while end + 1 < len(slope) and slope[end + 1] > 0.35 * slope[peak]:
        end += 1
    return float((rs[peak] + rs[end]) / 2)


def _luma(image: np.ndarray, center: np.ndarray, reach: float) -> tuple[np.ndarray, tuple[int, int]] | None:
    """A lightly smoothed grey crop around ``center`` and its top-left corner."""
    height, width = image.shape[:2]
    x0, y0 = max(0, int(center[0] - reach)), max(0, int(center[1] - reach))
    x1, y1 = min(width, int(center[0] + reach) + 2), min(height, int(center[1] + reach) + 2)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    crop = image[y0:y1, x0:x1].astype(np.float32)
    grey = crop @ np.array([0.299, 0.587, 0.114], np.float32)
    return cv2.GaussianBlur(grey, (0, 0), 0.7), (x0, y0)


def _lid(polyline: np.ndarray, center: np.ndarray, axis: np.ndarray, normal: np.ndarray):
    """A lid polyline in the eye frame, sorted along the axis."""
    u, v = (polyline - center) @ axis, (polyline - center) @ normal
    order = np.argsort(u)
    return u[order], v[order]
