"""A portrait with transparency is flattened onto the configured background (never onto whatever colour
hides under its transparent pixels), with a one-line warning."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def flatten_transparency(path: Path, rgb: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """``rgb`` (the decoded image at ``path``) composited over the ``background`` colour (r, g, b) by the file's alpha;
    ``rgb`` itself when the file has no transparent pixels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode not in ("RGBA", "LA", "PA", "La", "RGBa") and "transparency" not in image.info:
                return rgb
            rgba = np.asarray(image.convert("RGBA"))
    except (UnidentifiedImageError, OSError, ValueError):  # read_image decoded it; PIL may know less
        return rgb
    if rgba.shape[:2] != rgb.shape[:2]:
        return rgb
    alpha = rgba[..., 3:].astype(np.float32) / 255
    if alpha.min() >= 1:
        return rgb
    colour = np.array(background, np.float32)
    flat = rgba[..., :3].astype(np.float32) * alpha + colour * (1 - alpha)
    red, green, blue = background
    log.warning("%s has transparent pixels (%.0f%%); flattened onto the background colour %s ([render] "
                "background)", path, 100 * float((alpha < 1).mean()), f"#{red:02x}{green:02x}{blue:02x}")
    return np.clip(np.round(flat), 0, 255).astype(np.uint8)
