"""`monalisa preview POOL`: the kiosk's renderer driven by the mouse instead of a camera.

Mouse x over the portrait picks the column (left edge -> column 0), y picks the row (top ->
row 0). When the mouse leaves the portrait the last cell stays. q, Esc or closing the window
quits; f toggles fullscreen, d the debug overlay.
"""

from __future__ import annotations

import logging
import time

from monalisa.config import RenderConfig
from monalisa.kiosk.overlay import DebugInfo
from monalisa.kiosk.render import Cell, Renderer
from monalisa.ops.health import FpsMeter
from monalisa.pool.format import Pool

log = logging.getLogger(__name__)


def cell_at(position: tuple[float, float], rows: int, cols: int) -> Cell:
    """The cell under a position normalized 0..1 over the portrait."""
    x, y = position
    col = min(cols - 1, max(0, int(x * cols)))
    row = min(rows - 1, max(0, int(y * rows)))
    return row, col


class Preview:
    """One renderer plus the mouse-to-cell rule; ``step()`` runs one iteration of the loop."""

    def __init__(self, renderer: Renderer, pool: Pool):
        self.renderer = renderer
        self.pool = pool
        self.cell = pool.neutral_cell()
        self._fps = FpsMeter()  # display updates; the first interval starts now
        self._fps.tick(time.monotonic())

    def step(self) -> bool:
        """Handle events, follow the mouse and show the cell; False once the user quits."""
        started = time.monotonic()
        if "quit" in self.renderer.poll():
            return False
        position = self.renderer.mouse_position()
        if position is not None:
            self.cell = cell_at(position, self.pool.rows, self.pool.cols)
        if self.renderer.debug:
            self.renderer.set_debug(DebugInfo(
                fps=self._fps.fps, stage_ms={"frame": (started - self._fps.last) * 1000}, cell=self.cell,
                mapping="mouse"))
        self.renderer.show(self.cell)
        self._fps.tick(time.monotonic())
        return True


def run_preview(pool: Pool, config: RenderConfig, headless: bool = False,
                max_seconds: float | None = None) -> int:
    """Show ``pool`` in a window following the mouse until the user quits; returns the exit code."""
    renderer = Renderer(pool, config, headless=headless)
    try:
        preview = Preview(renderer, pool)
        period = 1.0 / config.max_fps
        started = time.monotonic()
        log.info("preview: %dx%d pool; move the mouse over the portrait, q to quit", pool.rows, pool.cols)
        while True:
            tick = time.monotonic()
            if not preview.step():
                break
            if max_seconds is not None and tick - started >= max_seconds:
                break
            time.sleep(max(0.0, period - (time.monotonic() - tick)))  # cap at max_fps
    finally:
        renderer.close()
    return 0
