"""Small pools written in code, for tests and benchmarks that need a pool on disk (or blinks without one)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from monalisa.pool.format import Pool, PoolWriter, load_pool
from monalisa.pool.geometry import Rect

PATCH = Rect(10, 20, 30, 16)
BLINK_RECT = Rect(14, 22, 20, 8)       # inside PATCH


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


def blink_patch(row: int, col: int, stage: int) -> np.ndarray:
    """A blink patch (BLINK_RECT's size) whose colour encodes its cell and stage."""
    patch = np.zeros((BLINK_RECT.height, BLINK_RECT.width, 3), np.uint8)
    patch[..., 0] = 10 * row
    patch[..., 1] = (5 * col) % 256
    patch[..., 2] = 20 + 50 * stage
    return patch


def write_pool(out: Path, rows: int = 2, cols: int = 3, fail_after: int | None = None,
               blink_stages: tuple[float, ...] = (), painted_gaze: tuple[float, float] = (0.0, 0.0),
               neutral: tuple[int, int] | None = None) -> Path:
    """A rows x cols pool at ``out`` (yaw -20..20, pitch 10..-10); fail_after raises mid-write;
    ``blink_stages``: also a blink patch of BLINK_RECT per cell per stage."""
    yaws = [-20 + 40 * c / max(cols - 1, 1) for c in range(cols)]
    pitches = [10 - 20 * r / max(rows - 1, 1) for r in range(rows)] if rows > 1 else [0.0]
    with PoolWriter(out, portrait_image(), "ab" * 32, PATCH, yaws, pitches, "test", {"k": 1}, "p.png",
                    painted_gaze=painted_gaze, neutral=neutral, blink_stages=blink_stages,
                    blink_rect=BLINK_RECT if blink_stages else None) as w:
        for i, (row, col) in enumerate((r, c) for r in range(rows) for c in range(cols)):
            if fail_after is not None and i == fail_after:
                raise RuntimeError("injected failure")
            w.add(row, col, cell_patch(row, col))
            for stage in range(len(blink_stages)):
                w.add_blink(row, col, stage, blink_patch(row, col, stage))
    return out


def as_format1(pool_dir: Path) -> Path:
    """Rewrite a pool's manifest as format 1 (what older versions wrote), in place."""
    path = pool_dir / "manifest.json"
    data = json.loads(path.read_text())
    data["format"] = "monalisa-pool/1"
    for key in ("gaze", "neutral", "blinks"):
        data.pop(key, None)
    data["portrait"].pop("pixels_sha256", None)
    data["frames"] = data.pop("patches")   # format 1's name for the patch list
    path.write_text(json.dumps(data))
    return pool_dir


def grid_pool(directory: str | Path, rows: int = 1, cols: int = 33, max_yaw: float = 30.0,
              max_pitch: float = 15.0, portrait_size: tuple[int, int] = (96, 120),
              patch: tuple[int, int, int, int] = (32, 32, 32, 16)) -> Pool:
    """A plain pool with this grid (a grey portrait, one shade per cell), for measurements and tests.

    ``portrait_size`` is (width, height); ``patch`` (x, y, width, height), e.g. a head-sized one.
    """
    rect = Rect(*patch)
    portrait = np.full((portrait_size[1], portrait_size[0], 3), 96, np.uint8)
    portrait[::8] = 60   # some texture, so scaling has work to do
    yaws = np.linspace(-max_yaw, max_yaw, cols).tolist() if cols > 1 else [0.0]
    pitches = np.linspace(max_pitch, -max_pitch, rows).tolist() if rows > 1 else [0.0]
    with PoolWriter(directory, portrait, "0" * 64, rect, yaws, pitches, "grid", {}) as writer:
        for row in range(rows):
            for col in range(cols):
                writer.add(row, col, np.full((rect.height, rect.width, 3), (40 * row + 6 * col) % 256, np.uint8))
    return load_pool(directory)


class BlinkingPool:
    """A pool with painted-on blink frames, for measurements and tests while a pool has none of its own.

    Delegates everything to ``pool``; the blink rect is the middle band of the patch, and a stage with
    closure c covers the top c of it with a lid-coloured band (the cell's own colour, darkened).
    """

    def __init__(self, pool: Pool, stages: tuple[float, ...] = (0.5, 1.0)):
        self._pool = pool
        pr = pool.patch_rect
        self.blink_stages = tuple(stages)
        self.blink_rect = Rect(pr.x, pr.y + pr.height // 4, pr.width, max(1, pr.height // 2))
        self._inner = self.blink_rect.relative_to(pr)

    def __getattr__(self, name: str):
        return getattr(self._pool, name)

    def blink_patch(self, row: int, col: int, stage: int) -> np.ndarray:
        """The cell's patch over blink_rect with the top ``closure`` of it shut (darkened)."""
        pixels = self._pool.patches[(row, col)][self._inner.slices].copy()
        lid = round(self.blink_stages[stage] * pixels.shape[0])
        pixels[:lid] = (pixels[:lid].astype(np.uint16) * 3 // 5 + 40).astype(np.uint8)
        return pixels
