"""Small pools written in code, for tests and benchmarks that need a pool on disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from monalisa.pool.format import PoolWriter
from monalisa.pool.geometry import Rect

PATCH = Rect(10, 20, 30, 16)


def portrait_image(width: int = 80, height: int = 60) -> np.ndarray:
    """A small random portrait (fixed seed)."""
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def cell_patch(row: int, col: int) -> np.ndarray:
    """A patch whose colour encodes its cell, so mix-ups show."""
    patch = np.zeros((PATCH.height, PATCH.width, 3), np.uint8)
    patch[..., 0] = 10 * row
    patch[..., 1] = (5 * col) % 256
    patch[..., 2] = 200
    return patch


def write_pool(out: Path, rows: int = 2, cols: int = 3, fail_after: int | None = None) -> Path:
    """A rows x cols pool at ``out`` (yaw -20..20, pitch 10..-10); fail_after raises mid-write."""
    yaws = [-20 + 40 * c / max(cols - 1, 1) for c in range(cols)]
    pitches = [10 - 20 * r / max(rows - 1, 1) for r in range(rows)] if rows > 1 else [0.0]
    with PoolWriter(out, portrait_image(), "ab" * 32, PATCH, yaws, pitches, "test", {"k": 1}, "p.png") as w:
        for i, (row, col) in enumerate((r, c) for r in range(rows) for c in range(cols)):
            if fail_after is not None and i == fail_after:
                raise RuntimeError("injected failure")
            w.add(row, col, cell_patch(row, col))
    return out
