"""Stylised faces drawn in code with known eye geometry, for manual-eye tests and benchmarks.

Styles: "almond" (cartoon: white sclera, outlined lids), "round" (round painted sockets with
lashes), "painted" (soft edges, greyish sclera, warm skin, brush grain). Everything is drawn at
4x and shrunk, so edges are anti-aliased like a scan.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

STYLES = ("almond", "round", "painted")
SUPERSAMPLE = 4


@dataclass(frozen=True)
class DrawnEye:
    """The truth about one drawn eye (portrait pixels): iris centre and radius, opening half sizes."""

    center: tuple[float, float]
    iris_radius: float
    opening_center: tuple[float, float]
    half_width: float
    half_height: float


@dataclass(frozen=True)
class DrawnFace:
    image: np.ndarray           # RGB uint8
    eyes: tuple[DrawnEye, DrawnEye]
    style: str

    @property
    def eye_points(self) -> tuple[float, float, float, float]:
        """The true iris centres as LX, LY, RX, RY."""
        (lx, ly), (rx, ry) = self.eyes[0].center, self.eyes[1].center
        return lx, ly, rx, ry


def drawn_face(style: str = "almond", width: int = 420, height: int = 460, eye_distance: float = 110.0,
               iris_offset: float = 0.0, seed: int = 1) -> DrawnFace:
    """A face in ``style`` whose eyes are ``eye_distance`` px apart; ``iris_offset`` moves both irises
    along the eye (in iris radii, + toward the image's right) so they sit off-centre in their openings."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    rng = np.random.default_rng(seed)
    k = SUPERSAMPLE
    skin = (214, 170, 140) if style != "painted" else (196, 150, 112)
    back = (70, 90, 120) if style != "painted" else (60, 70, 50)
    big = np.full((height * k, width * k, 3), back, np.uint8)
    cx, cy = width / 2, height / 2
    cv2.ellipse(big, _p((cx, cy + 20), k), _s((0.3 * width, 0.38 * height), k), 0, 0, 360, skin, -1, cv2.LINE_AA)
    eyes = []
    for side in (-1, 1):
        center = np.array([cx + side * eye_distance / 2, cy - 0.06 * height])
        eyes.append(_draw_eye(big, style, center, eye_distance, iris_offset, skin, k))
    cv2.line(big, _p((cx, cy), k), _p((cx - 8, cy + 0.15 * height), k), (150, 100, 80), 3 * k, cv2.LINE_AA)
    cv2.ellipse(big, _p((cx, cy + 0.25 * height), k), _s((0.1 * width, 12), k), 0, 0, 180, (140, 60, 60),
                3 * k, cv2.LINE_AA)
    image = cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)
    grain = 7.0 if style == "painted" else 4.0
    image += rng.normal(0, grain, image.shape).astype(np.float32)
    if style == "painted":
        image = cv2.GaussianBlur(image, (0, 0), 0.8)
    return DrawnFace(np.clip(image, 0, 255).astype(np.uint8), (eyes[0], eyes[1]), style)


def _draw_eye(big: np.ndarray, style: str, center: np.ndarray, distance: float, iris_offset: float,
              skin: tuple[int, int, int], k: int) -> DrawnEye:
    """Draw one eye into the supersampled canvas; its truth in portrait pixels."""
    radius = 0.1 * distance
    if style == "round":
        half_w, half_h = 2.2 * radius, 1.45 * radius
    elif style == "painted":
        half_w, half_h = 2.5 * radius, 1.0 * radius
    else:
        half_w, half_h = 2.6 * radius, 1.05 * radius
    iris = center + (iris_offset * radius, 0.0)
    sclera = {"almond": (245, 245, 240), "round": (236, 232, 222), "painted": (200, 190, 170)}[style]
    mask = np.zeros(big.shape[:2], np.uint8)
    if style == "round":
        cv2.ellipse(mask, _p(center, k), _s((half_w, half_h), k), 0, 0, 360, 255, -1, cv2.LINE_AA)
    else:
        _almond(mask, center, half_w, half_h, k)
    opening = mask > 127
    layer = big.copy()
    layer[opening] = sclera
    iris_colour = (70, 45, 25) if style != "round" else (60, 80, 110)
    cv2.circle(layer, _p(iris, k), round(radius * k), iris_colour, -1, cv2.LINE_AA)
    cv2.circle(layer, _p(iris, k), round(0.4 * radius * k), (15, 12, 10), -1, cv2.LINE_AA)
    big[opening] = layer[opening]
    line = (50, 35, 30) if style != "painted" else (90, 60, 45)
    if style == "round":
        cv2.ellipse(big, _p(center, k), _s((half_w, half_h), k), 0, 180, 360, line, 2 * k, cv2.LINE_AA)
        for t in np.linspace(0.15, 0.85, 7):  # lashes above the upper lid
            angle = np.pi * (1 + t)
            base = center + (half_w * np.cos(angle), half_h * np.sin(angle))
            tip = base + (0.35 * radius * np.cos(angle), 0.55 * radius * np.sin(angle))
            cv2.line(big, _p(base, k), _p(tip, k), line, max(1, k), cv2.LINE_AA)
        cv2.ellipse(big, _p(center, k), _s((half_w + 0.6 * radius, half_h + 0.9 * radius), k), 0, 200, 340,
                    tuple(int(0.8 * c) for c in skin), k, cv2.LINE_AA)  # the socket's crease
    else:
        upper = _almond_lid(center, half_w, half_h, -1)
        cv2.polylines(big, [np.round((upper + 0.5) * k - 0.5).astype(np.int32)], False, line,
                      (2 if style == "almond" else 3) * k, cv2.LINE_AA)
    return DrawnEye((float(iris[0]), float(iris[1])), float(radius), (float(center[0]), float(center[1])),
                    float(half_w), float(half_h))


def _almond_lid(center: np.ndarray, half_w: float, half_h: float, sign: int, n: int = 40) -> np.ndarray:
    """One lid of an almond opening (sign -1 upper, +1 lower), from left to right corner."""
    t = np.linspace(-1, 1, n)
    height = half_h * (1 - t**2) ** 0.9 * (1.0 if sign < 0 else 0.8)
    return np.column_stack([center[0] + half_w * t, center[1] + sign * height])


def _almond(mask: np.ndarray, center: np.ndarray, half_w: float, half_h: float, k: int) -> None:
    polygon = np.vstack([_almond_lid(center, half_w, half_h, -1), _almond_lid(center, half_w, half_h, 1)[::-1]])
    cv2.fillPoly(mask, [np.round((polygon + 0.5) * k - 0.5).astype(np.int32)], 255, cv2.LINE_AA)


def _p(point, k: int) -> tuple[int, int]:
    """A point in portrait pixels as the nearest supersampled pixel."""
    return round((point[0] + 0.5) * k - 0.5), round((point[1] + 0.5) * k - 0.5)


def _s(size, k: int) -> tuple[int, int]:
    """A size in portrait pixels in supersampled pixels."""
    return round(size[0] * k), round(size[1] * k)
