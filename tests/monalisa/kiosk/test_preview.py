"""`monalisa preview`: the mouse picks the cell."""

import os

import numpy as np
import pytest

from monalisa.config import RenderConfig
from monalisa.kiosk.preview import Preview, cell_at, run_preview
from monalisa.kiosk.render import Renderer
from monalisa.pool.format import PoolWriter, load_pool
from monalisa.pool.geometry import Rect

ROWS, COLS = 3, 5


@pytest.fixture
def pool(tmp_path):
    portrait = np.full((200, 150, 3), 128, np.uint8)
    patch = Rect(50, 60, 50, 30)
    with PoolWriter(tmp_path / "pool", portrait, "0" * 64, patch, [-20, -10, 0, 10, 20], [10, 0, -10],
                    "test", {}) as writer:
        for row in range(ROWS):
            for col in range(COLS):
                writer.add(row, col, np.full((30, 50, 3), (40 * col, 80 * row, 200), np.uint8))
    return load_pool(tmp_path / "pool")


def test_cell_at_covers_the_grid():
    assert cell_at((0.0, 0.0), 3, 5) == (0, 0)
    assert cell_at((0.999, 0.999), 3, 5) == (2, 4)
    assert cell_at((0.5, 0.5), 3, 5) == (1, 2)
    assert cell_at((0.19, 0.34), 3, 5) == (1, 0)
    assert cell_at((1.5, -1.0), 3, 5) == (0, 4)


def test_mouse_motion_selects_cells_and_holds_when_it_leaves(pool):
    import pygame

    renderer = Renderer(pool, RenderConfig(window_width=300, window_height=400), headless=True)
    try:
        preview = Preview(renderer, pool)
        assert preview.step() and preview.cell == pool.neutral_cell() == (1, 2)
        rect = renderer.portrait_rect

        def move_to(fx, fy):
            pos = (rect.x + int(fx * rect.width), rect.y + int(fy * rect.height))
            pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=pos, rel=(0, 0), buttons=(0, 0, 0)))
            assert preview.step()
            return preview.cell

        assert move_to(0.05, 0.05) == (0, 0)      # left edge -> column 0, top -> row 0
        assert move_to(0.95, 0.5) == (1, 4)
        assert move_to(0.5, 0.95) == (2, 2)
        assert renderer.cell == (2, 2)
        shown = renderer.surface_array()
        centre = renderer.patch_rect
        assert tuple(shown[centre.y + centre.height // 2, centre.x + centre.width // 2]) == (80, 160, 200)
        pygame.event.post(pygame.event.Event(pygame.WINDOWLEAVE))
        assert preview.step() and preview.cell == (2, 2)     # held
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_q, mod=0, unicode="q", scancode=0))
        assert not preview.step()
    finally:
        renderer.close()


def test_preview_debug_overlay_runs(pool):
    renderer = Renderer(pool, RenderConfig(window_width=300, window_height=400, debug=True), headless=True)
    try:
        preview = Preview(renderer, pool)
        assert preview.step() and preview.step()
        info = renderer._debug_info
        assert info.fps > 0 and info.stage_ms["frame"] >= 0 and info.mapping == "mouse"
        panel = renderer.overlay_rect
        assert np.median(renderer.surface_array()[panel.slices]) < 60   # dark panel over the grey portrait
    finally:
        renderer.close()


def test_run_preview_stops_after_max_seconds(pool):
    assert run_preview(pool, RenderConfig(window_width=200, window_height=200), headless=True,
                       max_seconds=0.2) == 0


def test_preview_without_a_display_says_what_would_work_in_one_line(pool, tmp_path):
    """SDL's own XDG_RUNTIME_DIR line stays off stderr, and the hint is not `run --headless`."""
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR",
                                                             "SDL_VIDEODRIVER")}
    repo = Path(__file__).resolve().parents[3]
    done = subprocess.run([sys.executable, "-m", "monalisa", "preview", str(pool.directory)], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "DISPLAY is not set" in lines[0] and "DISPLAY=:0" in lines[0] and "--headless" not in lines[0]
