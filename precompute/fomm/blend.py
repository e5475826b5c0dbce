"""Soft-edged compositing of a generated head back into the painting.

The original method pasted the FOMM output over the painting through a 2D sigmoid mask:
alpha(x, y) = 1 / (1 + exp(s * (max(|x - cx|, |y - cy|) - k))) with s = 0.06 and k = 180 on a
512-pixel patch. The mask is 1 in a central square, falls off smoothly and is ~0 at the patch
border, so the blurrier upscaled network output never shows a seam against the original pixels.
"""

import numpy as np

from monalisa.config import FommConfig

REFERENCE_SIZE = 512  # the patch size the original s and k were tuned for
DEFAULT_SLOPE = FommConfig.blend_slope  # declared (with its help text) once, in the config
DEFAULT_INFLECTION = FommConfig.blend_inflection


def sigmoid_alpha(height: int, width: int, slope: float = DEFAULT_SLOPE,
                  inflection: float = DEFAULT_INFLECTION) -> np.ndarray:
    """A (height, width) float32 mask in [0, 1]: 1 in the middle, ~0 at the border.

    ``slope`` and ``inflection`` are given for a 512-pixel patch and scaled to this one per axis
    (k by size/512, s by 512/size), so the mask keeps its shape at every patch size.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"alpha size must be positive, got {width}x{height}")
    # distance of each pixel centre from the patch centre, in 512-pixel-patch units
    ys = (np.arange(height, dtype=np.float64) + 0.5 - height / 2) * (REFERENCE_SIZE / height)
    xs = (np.arange(width, dtype=np.float64) + 0.5 - width / 2) * (REFERENCE_SIZE / width)
    distance = np.maximum(np.abs(ys)[:, None], np.abs(xs)[None, :])
    exponent = np.clip(slope * (distance - inflection), -80.0, 80.0)  # exp stays finite
    return (1.0 / (1.0 + np.exp(exponent))).astype(np.float32)


def composite(base: np.ndarray, patch: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Blend ``patch`` over ``base`` (same-size RGB images) with a per-pixel alpha; uint8 out."""
    if base.shape != patch.shape or alpha.shape != base.shape[:2]:
        raise ValueError(f"composite needs equal sizes, got base {base.shape}, patch {patch.shape}, "
                         f"alpha {alpha.shape}")
    weight = alpha[..., None].astype(np.float32)
    mixed = weight * patch.astype(np.float32) + (1.0 - weight) * base.astype(np.float32)
    return np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
