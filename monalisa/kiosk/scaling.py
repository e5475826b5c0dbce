"""Scaling the portrait and its patches for the window so that a patch drawn over the scaled portrait has no seam.

The renderer scales the portrait once per window size and, for every cell, the window rectangle
that the cell's patch can change, cut from the scaled composited frame (``Scaler``: scaling a crop
gives exactly the whole frame's pixels there).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from monalisa.pool.format import Pool
from monalisa.pool.geometry import Rect

Cell = tuple[int, int]


def fit_rect(src_w: int, src_h: int, win_w: int, win_h: int) -> Rect:
    """The largest rectangle with the source's aspect ratio centred in the window."""
    scale = min(win_w / src_w, win_h / src_h)
    w = max(1, min(win_w, round(src_w * scale)))
    h = max(1, min(win_h, round(src_h * scale)))
    return Rect((win_w - w) // 2, (win_h - h) // 2, w, h)


@dataclass
class Layout:
    """Where things go in the window for one window size."""

    size: tuple[int, int]
    portrait: Rect       # the scaled portrait inside the window
    patch: Rect          # window rectangle every cell's scaled patch covers


def fit_window(size: tuple[int, int], screen: tuple[int, int], margin: float = 0.9) -> tuple[int, int]:
    """``size`` shrunk (aspect kept) to fit within ``margin`` of the screen (room for title bar and panels)."""
    width, height = size
    scale = min(1.0, margin * screen[0] / width, margin * screen[1] / height)
    return (width, height) if scale >= 1.0 else (max(64, int(width * scale)), max(64, int(height * scale)))


class Scaler:
    """Scales src_w x src_h images to dst_w x dst_h so that any region can be scaled on its own.

    Each destination pixel is a bilinear sample, at the same source point cv2.resize would use,
    of the image smoothed by a Gaussian when shrinking (anti-aliasing, close to area
    averaging). Both steps depend only on nearby source pixels, so scaling a crop of the
    image gives exactly the pixels of scaling the whole image there: patches drawn over
    the scaled portrait have no seam, whatever the scale factor.
    """

    def __init__(self, src_w: int, src_h: int, dst_w: int, dst_h: int):
        self.src = (src_w, src_h)
        self.dst = (dst_w, dst_h)
        self.sigma = tuple(max(0.0, (s / d - 1) / 2) for s, d in zip(self.src, self.dst))
        self.radius = tuple(math.ceil(3 * sigma) for sigma in self.sigma)   # Gaussian kernel half-width
        self.points = tuple(((np.arange(d) + 0.5) * (s / d) - 0.5).astype(np.float32)
                            for s, d in zip(self.src, self.dst))             # source coordinate per pixel

    def scale(self, image: np.ndarray) -> np.ndarray:
        """The whole image scaled."""
        if self.src == self.dst:
            return image
        return self.apply(image, self.maps(0, 0, Rect(0, 0, *self.dst)))

    def span(self, axis: int, p0: int, p1: int) -> tuple[int, int, int, int]:
        """On one axis (0: x, 1: y): the destination pixels source pixels [p0, p1) reach, and the
        source pixels those destination pixels need: (dst0, dst1, src0, src1)."""
        points, reach = self.points[axis], self.radius[axis] + 2
        touched = np.nonzero((points + reach >= p0) & (points - reach < p1))[0]
        d0, d1 = int(touched[0]), int(touched[-1]) + 1
        s0 = max(0, math.floor(points[d0]) - reach)
        s1 = min(self.src[axis], math.floor(points[d1 - 1]) + reach + 2)
        return d0, d1, s0, s1

    def maps(self, x0: int, y0: int, region: Rect) -> tuple[np.ndarray, np.ndarray]:
        """cv2.remap maps for the destination ``region`` from a crop whose top-left is source (x0, y0)."""
        xs = self.points[0][region.x:region.x + region.width] - np.float32(x0)   # exact: whole shift
        ys = self.points[1][region.y:region.y + region.height] - np.float32(y0)
        return tuple(np.meshgrid(xs, ys))

    def apply(self, crop: np.ndarray, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        """Smooth (when shrinking) and sample ``crop`` through ``maps``."""
        if any(self.sigma):
            size = tuple(2 * r + 1 for r in self.radius)
            crop = cv2.GaussianBlur(crop, size, sigmaX=self.sigma[0] or 0.1, sigmaY=self.sigma[1] or 0.1)
        return cv2.remap(crop, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def scale_image(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale an RGB image to width x height exactly as the renderer scales the portrait."""
    return Scaler(image.shape[1], image.shape[0], width, height).scale(image)


def scaled_patches(pool: Pool, dst_w: int, dst_h: int) -> tuple[Rect, dict[Cell, np.ndarray]]:
    """Every cell's patch region of a portrait scaled to dst_w x dst_h (in scaled-portrait pixels)."""
    src_h, src_w = pool.portrait.shape[:2]
    scaler = Scaler(src_w, src_h, dst_w, dst_h)
    pr = pool.patch_rect
    dx0, dx1, sx0, sx1 = scaler.span(0, pr.x, pr.x + pr.width)
    dy0, dy1, sy0, sy1 = scaler.span(1, pr.y, pr.y + pr.height)
    region = Rect(dx0, dy0, dx1 - dx0, dy1 - dy0)
    maps = scaler.maps(sx0, sy0, region)
    source = Rect(sx0, sy0, sx1 - sx0, sy1 - sy0)
    crop = pool.portrait[source.slices].copy()
    inner = pr.relative_to(source).slices
    out = {}
    for cell in pool.cells():
        crop[inner] = pool.patches[cell]
        out[cell] = scaler.apply(crop, maps)
    return region, out


def scaled_blinks(pool: Pool, dst_w: int, dst_h: int) -> tuple[Rect | None, dict[tuple[Cell, int], np.ndarray]]:
    """Every (cell, blink stage)'s blink_rect region of the scaled frame with that blink (empty: no blinks).

    The region is cut from the scaled composite (portrait, cell patch, blink patch), so drawn over
    the cell's scaled patch it changes exactly the pixels the blink changes, without a seam.
    """
    br = pool.blink_rect
    if br is None or not pool.blink_stages:
        return None, {}
    src_h, src_w = pool.portrait.shape[:2]
    scaler = Scaler(src_w, src_h, dst_w, dst_h)
    dx0, dx1, sx0, sx1 = scaler.span(0, br.x, br.x + br.width)
    dy0, dy1, sy0, sy1 = scaler.span(1, br.y, br.y + br.height)
    region = Rect(dx0, dy0, dx1 - dx0, dy1 - dy0)
    maps = scaler.maps(sx0, sy0, region)
    source = Rect(sx0, sy0, sx1 - sx0, sy1 - sy0)
    pr = pool.patch_rect
    x0, y0 = min(source.x, pr.x), min(source.y, pr.y)     # a crop holding both the source and the patch
    work = Rect(x0, y0, max(source.x + source.width, pr.x + pr.width) - x0,
                max(source.y + source.height, pr.y + pr.height) - y0)
    crop = pool.portrait[work.slices].copy()
    out = {}
    for cell in pool.cells():
        crop[pr.relative_to(work).slices] = pool.patches[cell]
        for stage in range(len(pool.blink_stages)):
            blinked = crop.copy()
            blinked[br.relative_to(work).slices] = pool.blink_patch(cell[0], cell[1], stage)
            out[cell, stage] = scaler.apply(blinked[source.relative_to(work).slices], maps)
    return region, out
