"""The pygame window that shows the pool: letterboxed portrait, one patch blit per cell change.

Everything is scaled once per window size: the letterboxed portrait (``base``) and, for
every cell, the window rectangle that the cell's patch can change, cut from the scaled
composited frame (``monalisa.kiosk.scaling``: scaling a crop gives exactly the whole frame's
pixels, so there is no seam). ``show(cell)`` then blits one small surface and updates only that rectangle.

Drawing order inside any redrawn rectangle: base, current patch, status line, debug overlay.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from monalisa.config import RenderConfig
from monalisa.errors import DisplayError
from monalisa.kiosk.overlay import TEXT_RGB, DebugInfo, DebugOverlay
from monalisa.kiosk.scaling import (
    Layout,
    fit_rect,
    fit_window,
    scale_image,
    scaled_blinks,
    scaled_patches,
)
from monalisa.mp_quiet import quiet_stderr
from monalisa.pool.format import Pool
from monalisa.pool.geometry import Rect

log = logging.getLogger(__name__)

Cell = tuple[int, int]

STATUS_BAND_RGBA = (0, 0, 0, 170)

# keys (pygame constant names) -> the action poll() reports; the renderer itself handles fullscreen and debug
KEY_ACTIONS = {"K_ESCAPE": "quit", "K_q": "quit", "K_f": "fullscreen", "K_d": "debug", "K_m": "mirror"}


OFF_SCREEN_DRIVERS = ("offscreen", "dummy")
SCREEN_HINT = "run it in the desktop session, or set DISPLAY to the kiosk's screen (e.g. DISPLAY=:0)"


def require_a_screen(driver: str, hint: str = SCREEN_HINT) -> None:
    """Refuse to run a window nobody can see: SDL silently falls back to off-screen without X.

    Asking for the dummy driver on purpose (SDL_VIDEODRIVER=dummy, as tests do) is allowed.
    """
    if driver in OFF_SCREEN_DRIVERS and os.environ.get("SDL_VIDEODRIVER") != driver:
        where = os.environ.get("DISPLAY")
        reason = f"the X display {where} is not reachable" if where else "DISPLAY is not set"
        raise DisplayError(f"no screen to draw on: {reason}; {hint}")


def start_display(pygame, hint: str | None = SCREEN_HINT) -> None:
    """Start SDL's display and fonts without SDL's own stderr lines (XDG_RUNTIME_DIR ... when there is
    no display); then refuse a window nobody can see, with ``hint`` (None: headless, any driver will do).
    A pygame.error (no usable video driver) is left to the caller, who knows what it was opening."""
    with quiet_stderr():
        pygame.display.init()
    pygame.font.init()
    if hint is not None:
        require_a_screen(pygame.display.get_driver(), hint)


# ----------------------------------------------------------------------------- renderer

class Renderer:
    """The kiosk window: ``show(cell)`` blits one pre-scaled patch; ``poll()`` handles keys."""

    def __init__(self, pool: Pool, config: RenderConfig, headless: bool = False, no_screen_hint: str = SCREEN_HINT):
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        os.environ.setdefault("SDL_VIDEO_MINIMIZE_ON_FOCUS_LOSS", "0")  # stay up when focus moves
        os.environ.setdefault("SDL_VIDEO_ALLOW_SCREENSAVER", "0")       # no blanking in the gallery
        # the window surface straight to X (XShm): SDL's default GL-backed framebuffer waits for vsync (or, on
        # software GL as under Xvfb, ~45 ms) on every update; measured by benchmarks/kiosk_latency.py
        os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", "0")
        import pygame

        self._pg = pygame
        self.pool = pool
        self.config = config
        self.headless = headless
        self._background = config.background_rgb
        self._fullscreen = config.fullscreen and not headless
        self._debug = config.debug
        self._debug_info: DebugInfo | None = None
        self._overlay_stale = False
        self._status: str | None = None
        self._mouse: tuple[int, int] | None = None
        self._cell: Cell | None = None
        self._blink: int | None = None
        self._dirty: list[Any] = []
        self._overlay_surf = self._status_surf = None
        self._overlay_rect = self._status_rect = None
        self._overlay = DebugOverlay(pygame, self._to_surface)
        self._keys = {getattr(pygame, name): action for name, action in KEY_ACTIONS.items()}
        try:
            start_display(pygame, None if headless else no_screen_hint)
        except pygame.error as exc:
            raise DisplayError(f"cannot start the display ({exc}); is DISPLAY set?") from exc
        if not headless:
            count = pygame.display.get_num_displays()
            if config.display >= count:
                raise DisplayError(f"[render] display {config.display} does not exist; "
                                   f"this machine has {count} (0..{count - 1})")
            pygame.display.set_allow_screensaver(False)
            pygame.display.set_caption("monalisa")
        self._window_size = (config.window_width, config.window_height)  # restored after fullscreen
        if not headless:
            desktop = pygame.display.get_desktop_sizes()[config.display]
            fitted = fit_window(self._window_size, desktop)
            if fitted != self._window_size:
                log.info("window %dx%d is larger than the %dx%d screen: opening it at %dx%d",
                         *self._window_size, *desktop, *fitted)
                self._window_size = fitted
        self._screen = self._open(*self._window_size)
        self._relayout()

    # ------------------------------------------------------------------ public API

    @property
    def debug(self) -> bool:
        """Whether the debug overlay is shown (the loop builds DebugInfo only then)."""
        return self._debug

    @property
    def fullscreen(self) -> bool:
        return self._fullscreen

    @property
    def cell(self) -> Cell | None:
        """The cell on screen now (None before the first show)."""
        return self._cell

    @property
    def portrait_rect(self) -> Rect:
        """Where the scaled portrait sits in the window."""
        return self._layout.portrait

    @property
    def patch_rect(self) -> Rect:
        """The window rectangle a cell change redraws."""
        return self._layout.patch

    @property
    def overlay_rect(self) -> Rect | None:
        """Where the debug panel is drawn (None while it is off)."""
        r = self._overlay_rect if self._debug else None
        return None if r is None else Rect(r.x, r.y, r.width, r.height)

    @property
    def size(self) -> tuple[int, int]:
        return self._layout.size

    def show(self, cell: Cell, blink: int | None = None) -> None:
        """Put ``cell`` on screen with blink stage ``blink`` over it (None: open), updating only what changed."""
        if blink is not None and (cell, blink) not in self._blink_surfs:
            raise ValueError(f"blink stage {blink} of cell {cell} is not in the pool")
        if cell != self._cell:
            if cell not in self._patch_surfs:
                raise ValueError(f"cell {cell} is not in the {self.pool.rows}x{self.pool.cols} pool")
            self._cell, self._blink = cell, blink
            self._dirty.append(self._patch_area)
        elif blink != self._blink:
            self._blink = blink
            self._dirty.append(self._blink_area)
        if self._debug and self._overlay_stale:
            self._render_overlay()
        self._flush()

    def set_status(self, text: str | None) -> None:
        """Show a one-line message over the bottom of the portrait (None removes it); redraws now."""
        if text == self._status:
            return
        self._status = text
        if self._status_rect is not None:
            self._dirty.append(self._status_rect)
        self._render_status()
        if self._status_rect is not None:
            self._dirty.append(self._status_rect)
        self._flush()

    def set_debug(self, info: DebugInfo) -> None:
        """New overlay content, drawn at the next ``show``."""
        self._debug_info = info
        self._overlay_stale = True

    def poll(self) -> list[str]:
        """Pump window events; returns actions among "quit", "fullscreen", "debug", "mirror"."""
        pg = self._pg
        actions: list[str] = []
        reported: tuple[int, int] | None = None
        expose = False
        for event in pg.event.get():
            if event.type in (pg.QUIT, pg.WINDOWCLOSE):
                actions.append("quit")
            elif event.type == pg.KEYDOWN:
                action = self._keys.get(event.key)
                if action:
                    actions.append(action)
                if action == "fullscreen":
                    self.toggle_fullscreen()
                elif action == "debug":
                    self.toggle_debug()
            elif event.type == pg.MOUSEMOTION:
                self._mouse = tuple(event.pos)
            elif event.type == pg.WINDOWLEAVE:
                self._mouse = None
            elif event.type == pg.VIDEORESIZE:
                reported = (event.w, event.h)
            elif event.type == pg.WINDOWSIZECHANGED:
                reported = (event.x, event.y)
            elif event.type in (pg.VIDEOEXPOSE, pg.WINDOWEXPOSED, pg.WINDOWRESTORED, pg.WINDOWSHOWN):
                expose = True
        if reported is not None:
            self._follow_window_size(reported)
        elif expose:
            self._redraw_all()
        return actions

    def mouse_position(self) -> tuple[float, float] | None:
        """Latest mouse position normalized 0..1 over the portrait area, or None when outside it."""
        if self._mouse is None:
            return None
        p = self._layout.portrait
        x, y = (self._mouse[0] - p.x) / p.width, (self._mouse[1] - p.y) / p.height
        if 0.0 <= x < 1.0 and 0.0 <= y < 1.0:
            return x, y
        return None

    def toggle_debug(self) -> None:
        """Show or hide the debug overlay."""
        self._debug = not self._debug
        log.info("debug overlay %s", "on" if self._debug else "off")
        if self._overlay_rect is not None:
            self._dirty.append(self._overlay_rect)
        if self._debug:
            self._render_overlay()
        else:
            self._overlay_surf = self._overlay_rect = None
        self._flush()

    def toggle_fullscreen(self) -> None:
        """Switch between the window and fullscreen, re-scaling everything."""
        if self.headless:
            return
        self._fullscreen = not self._fullscreen
        log.info("fullscreen %s", "on" if self._fullscreen else "off")
        if self._fullscreen:
            # a new window, as at start: without a window manager SDL would keep the old window's position
            self._pg.display.quit()
            with quiet_stderr():
                self._pg.display.init()
            self._pg.display.set_allow_screensaver(False)
            self._pg.display.set_caption("monalisa")
        self._screen = self._open(*self._window_size)
        self._relayout()

    def resize(self, width: int, height: int) -> None:
        """Set the window (not fullscreen) to width x height and re-scale everything for it."""
        width, height = max(1, width), max(1, height)
        if self._fullscreen:
            return
        self._window_size = (width, height)
        if self.headless:
            self._screen = self._pg.Surface((width, height))
        else:
            surface = self._pg.display.get_surface()
            self._screen = surface if surface.get_size() == (width, height) else self._open(width, height)
        self._relayout()

    def surface_array(self) -> np.ndarray:
        """The window contents now as an RGB uint8 array (H x W x 3), for tests and screenshots."""
        return np.ascontiguousarray(self._pg.surfarray.array3d(self._screen).swapaxes(0, 1))

    def close(self) -> None:
        """Close the window."""
        if self._screen is not None:
            self._screen = None
            self._pg.display.quit()

    # ------------------------------------------------------------------ window and scaling

    def _open(self, width: int, height: int):
        """Create the window (or the off-screen surface when headless)."""
        pg = self._pg
        if self.headless:
            return pg.Surface((width, height))
        try:
            if self._fullscreen:
                size = pg.display.get_desktop_sizes()[self.config.display]
                screen = pg.display.set_mode(size, pg.FULLSCREEN, display=self.config.display)
            else:
                screen = pg.display.set_mode((width, height), pg.RESIZABLE, display=self.config.display)
                if screen.get_size() != (width, height):   # some drivers keep the fullscreen size once
                    screen = pg.display.set_mode((width, height), pg.RESIZABLE, display=self.config.display)
        except pg.error as exc:
            raise DisplayError(f"cannot open the window ({exc})") from exc
        pg.mouse.set_visible(not self._fullscreen)
        return screen

    def _relayout(self) -> None:
        """Scale the portrait and every patch for the current window size, then redraw all."""
        started = time.monotonic()
        pg = self._pg
        win_w, win_h = self._screen.get_size()
        src_h, src_w = self.pool.portrait.shape[:2]
        portrait = fit_rect(src_w, src_h, win_w, win_h)
        base = pg.Surface((win_w, win_h)).convert(self._screen)
        base.fill(self._background)
        base.blit(self._to_surface(scale_image(self.pool.portrait, portrait.width, portrait.height)),
                  (portrait.x, portrait.y))
        patch, arrays = scaled_patches(self.pool, portrait.width, portrait.height)
        patch = Rect(portrait.x + patch.x, portrait.y + patch.y, patch.width, patch.height)
        blink, blinks = scaled_blinks(self.pool, portrait.width, portrait.height)
        self._base = base
        self._patch_surfs = {cell: self._to_surface(a) for cell, a in arrays.items()}
        self._blink_surfs = {key: self._to_surface(a) for key, a in blinks.items()}
        self._blink_area = None if blink is None else pg.Rect(portrait.x + blink.x, portrait.y + blink.y,
                                                              blink.width, blink.height)
        self._layout = Layout((win_w, win_h), portrait, patch)
        self._patch_area = pg.Rect(patch.x, patch.y, patch.width, patch.height)
        self._font = pg.font.Font(None, max(16, min(36, win_h // 32)))
        self._overlay.place((win_w, win_h), self._patch_area, self._font)
        self._render_status()
        if self._debug:
            self._render_overlay()
        megabytes = sum(s.get_bytesize() * s.get_width() * s.get_height()
                        for s in (*self._patch_surfs.values(), *self._blink_surfs.values())) / 1e6
        log.info("window %dx%d: portrait scaled to %dx%d, %d patches of %dx%d (%.0f MB) in %.0f ms",
                 win_w, win_h, portrait.width, portrait.height, len(arrays), patch.width, patch.height,
                 megabytes, (time.monotonic() - started) * 1000)
        self._redraw_all()

    def _follow_window_size(self, reported: tuple[int, int]) -> None:
        """Re-scale if the window's size really changed (sizes in events go stale across toggles)."""
        if self.headless:
            if reported != self.size:
                self.resize(*reported)
            return
        surface = self._pg.display.get_surface()   # pygame resizes it itself when the window changes
        if surface is not None and surface.get_size() != self.size:
            self._screen = surface
            if not self._fullscreen:
                self._window_size = surface.get_size()
            self._relayout()

    def _to_surface(self, rgb: np.ndarray):
        """An RGB array as a surface in the window's pixel format (fast blits)."""
        h, w = rgb.shape[:2]
        surface = self._pg.image.frombuffer(np.ascontiguousarray(rgb).tobytes(), (w, h), "RGB")
        return surface.convert(self._screen)

    # ------------------------------------------------------------------ drawing

    def _redraw_all(self) -> None:
        self._dirty.clear()
        self._dirty.append(self._screen.get_rect())
        self._flush()

    def _flush(self) -> None:
        """Redraw the dirty rectangles layer by layer and push only them to the display."""
        if not self._dirty:
            return
        patch = self._patch_area
        for rect in self._dirty:
            self._screen.set_clip(rect)
            if self._cell is None or not patch.contains(rect):
                self._screen.blit(self._base, rect, rect)
            if self._cell is not None:
                self._screen.blit(self._patch_surfs[self._cell], patch)
                if self._blink is not None:
                    self._screen.blit(self._blink_surfs[self._cell, self._blink], self._blink_area)
            if self._status_surf is not None and self._status_rect.colliderect(rect):
                self._screen.blit(self._status_surf, self._status_rect)
            if self._debug and self._overlay_surf is not None and self._overlay_rect.colliderect(rect):
                self._screen.blit(self._overlay_surf, self._overlay_rect)
        self._screen.set_clip(None)
        if not self.headless:
            self._pg.display.update(self._dirty)
        self._dirty.clear()

    def _render_status(self) -> None:
        """Draw the status text onto its own band surface at the bottom of the portrait."""
        if self._status is None:
            self._status_surf = self._status_rect = None
            return
        pg = self._pg
        p = self._layout.portrait
        left, width, bottom = p.x, p.width, p.y + p.height
        text = self._font.render(self._status, True, TEXT_RGB)
        height = text.get_height() + 12
        band = pg.Surface((width, height), pg.SRCALPHA)
        band.fill(STATUS_BAND_RGBA)
        band.blit(text, ((width - text.get_width()) // 2, 6))
        self._status_surf = band
        self._status_rect = pg.Rect(left, bottom - height, width, height)

    def _render_overlay(self) -> None:
        """Draw the debug panel in its corner and mark the old and new areas for redrawing."""
        self._overlay_stale = False
        old = self._overlay_rect
        self._overlay_surf, self._overlay_rect = self._overlay.draw(self._debug_info, self._font, self._layout.size)
        self._dirty.append(self._overlay_rect if old is None else self._overlay_rect.union(old))
