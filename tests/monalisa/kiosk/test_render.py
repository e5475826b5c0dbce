"""The pygame renderer, headless (off-screen surface) and windowed on SDL's dummy driver."""

from types import SimpleNamespace

import numpy as np
import pytest

from monalisa.config import RenderConfig
from monalisa.errors import DisplayError
from monalisa.kiosk.overlay import DebugInfo
from monalisa.kiosk.render import Renderer
from monalisa.kiosk.scaling import fit_rect, scale_image, scaled_patches
from monalisa.pool.format import PoolWriter, load_pool
from monalisa.pool.geometry import Rect
from monalisa.testing.pools import BlinkingPool

ROWS, COLS = 3, 4
PATCH = Rect(38, 52, 44, 30)
BACKGROUND = "#123456"
BG_RGB = (0x12, 0x34, 0x56)


def make_pool(directory, width=120, height=160, patch=PATCH, rows=ROWS, cols=COLS):
    """A textured portrait and one flat, distinct colour per cell's patch."""
    yy, xx = np.mgrid[0:height, 0:width]
    portrait = np.stack([(xx * 2) % 256, (yy * 3) % 256, ((xx // 8 + yy // 8) % 2) * 200], -1).astype(np.uint8)
    out = directory / "pool"
    with PoolWriter(out, portrait, "0" * 64, patch, [float(c) for c in range(cols)],
                    [float(rows - r) for r in range(rows)], "test", {}) as writer:
        for row in range(rows):
            for col in range(cols):
                colour = (30 + 70 * col, 40 + 90 * row, 220 - 60 * col)
                writer.add(row, col, np.full((patch.height, patch.width, 3), colour, np.uint8))
    return load_pool(out)


@pytest.fixture
def pool(tmp_path):
    return make_pool(tmp_path)


@pytest.fixture
def open_renderer():
    """Factory for renderers that are always closed after the test."""
    made = []

    def factory(pool, headless=True, **config):
        renderer = Renderer(pool, RenderConfig(background=BACKGROUND, **config), headless=headless)
        made.append(renderer)
        return renderer

    yield factory
    for renderer in made:
        renderer.close()


def expected_window(pool, cell, size):
    """What the window should show: the full frame scaled, letterboxed in the background colour."""
    height, width = pool.portrait.shape[:2]
    rect = fit_rect(width, height, *size)
    window = np.empty((size[1], size[0], 3), np.uint8)
    window[:] = BG_RGB
    image = pool.portrait if cell is None else pool.frame(*cell)
    window[rect.slices] = scale_image(image, rect.width, rect.height)
    return window


def max_diff(a, b):
    return int(np.abs(a.astype(int) - b.astype(int)).max())


@pytest.mark.parametrize("size", [(200, 500), (500, 200), (333, 177)])
def test_letterbox_keeps_aspect_and_fills_bars(pool, open_renderer, size):
    renderer = open_renderer(pool, window_width=size[0], window_height=size[1])
    rect = renderer.portrait_rect
    assert abs(rect.width / rect.height - 120 / 160) < 0.02
    assert rect.width == size[0] or rect.height == size[1]
    shown = renderer.surface_array()
    assert shown.shape == (size[1], size[0], 3)
    bars = np.ones(shown.shape[:2], bool)
    bars[rect.slices] = False
    assert bars.any() and (shown[bars] == BG_RGB).all()
    assert max_diff(shown, expected_window(pool, None, size)) <= 1


@pytest.mark.parametrize("size", [(300, 400), (97, 251), (700, 500)])
def test_show_displays_the_scaled_frame(pool, open_renderer, size):
    renderer = open_renderer(pool, window_width=size[0], window_height=size[1])
    for cell in [(0, 0), (2, 3), (1, 2)]:
        renderer.show(cell)
        assert renderer.cell == cell
        assert max_diff(renderer.surface_array(), expected_window(pool, cell, size)) <= 1


def blinked_frame(pool, cell, stage):
    """The full frame of ``cell`` with blink stage ``stage`` pasted in, as the kiosk must show it."""
    frame = pool.frame(*cell)
    frame[pool.blink_rect.slices] = pool.blink_patch(cell[0], cell[1], stage)
    return frame


@pytest.mark.parametrize("size", [(300, 400), (97, 251)])
def test_blinks_are_drawn_over_the_cell_and_removed(pool, open_renderer, size):
    blinking = BlinkingPool(pool)
    renderer = open_renderer(blinking, window_width=size[0], window_height=size[1])
    height, width = pool.portrait.shape[:2]
    rect = fit_rect(width, height, *size)
    for cell, stage in [((1, 2), 0), ((1, 2), 1), ((0, 3), 1)]:
        renderer.show(cell, stage)
        expected = expected_window(pool, cell, size)
        expected[rect.slices] = scale_image(blinked_frame(blinking, cell, stage), rect.width, rect.height)
        assert max_diff(renderer.surface_array(), expected) <= 1, (cell, stage)
    renderer.show((0, 3))
    assert max_diff(renderer.surface_array(), expected_window(pool, (0, 3), size)) <= 1
    with pytest.raises(ValueError, match="blink stage 2"):
        renderer.show((0, 3), 2)


def test_a_pool_without_blinks_refuses_a_blink(pool, open_renderer):
    with pytest.raises(ValueError, match="blink stage 0"):
        open_renderer(pool).show((0, 0), 0)


def test_scaled_patch_over_scaled_portrait_has_no_seam(tmp_path):
    """Random texture everywhere: any misalignment of the patch would show as large differences."""
    rng = np.random.default_rng(1)
    pool = make_pool(tmp_path, width=301, height=413, patch=Rect(97, 101, 61, 37), rows=1, cols=2)
    pool.portrait[:] = rng.integers(0, 256, pool.portrait.shape, dtype=np.uint8)
    for cell in pool.patches:
        pool.patches[cell] = rng.integers(0, 256, pool.patches[cell].shape, dtype=np.uint8)
    for dst in [(203, 279), (301, 413), (700, 960), (150, 206)]:
        rect, arrays = scaled_patches(pool, *dst)
        base = scale_image(pool.portrait, *dst)
        for cell, scaled in arrays.items():
            composed = base.copy()
            composed[rect.slices] = scaled
            assert max_diff(composed, scale_image(pool.frame(*cell), *dst)) <= 1, (dst, cell)


def test_only_the_patch_region_changes(pool, open_renderer):
    renderer = open_renderer(pool, window_width=300, window_height=400)
    renderer.show((0, 0))
    before = renderer.surface_array()
    renderer.show((2, 3))
    changed = np.any(before != renderer.surface_array(), axis=-1)
    assert changed.any()
    outside = changed.copy()
    outside[renderer.patch_rect.slices] = False
    assert not outside.any()


def test_updates_only_the_dirty_rect_and_nothing_when_unchanged(pool, open_renderer, monkeypatch):
    import pygame

    renderer = open_renderer(pool, headless=False, window_width=300, window_height=400)
    updates = []
    monkeypatch.setattr(pygame.display, "update", lambda rects=None: updates.append(list(rects)))
    renderer.show((1, 1))
    renderer.show((1, 1))
    renderer.show((1, 1))
    assert len(updates) == 1
    patch = renderer.patch_rect
    assert [tuple(r) for r in updates[0]] == [(patch.x, patch.y, patch.width, patch.height)]
    assert patch.width < 300 and patch.height < 400
    renderer.show((0, 2))
    assert len(updates) == 2
    assert max_diff(renderer.surface_array(), expected_window(pool, (0, 2), (300, 400))) <= 1


def test_unknown_cell_is_an_error(pool, open_renderer):
    with pytest.raises(ValueError, match="not in the 3x4 pool"):
        open_renderer(pool).show((5, 0))


def debug_info(cell):
    camera = np.zeros((48, 64, 3), np.uint8)
    camera[:, :32] = (90, 90, 90)
    face = SimpleNamespace(box=(0.2, 0.2, 0.3, 0.4), left_eye=(0.28, 0.35), right_eye=(0.42, 0.35))
    other = SimpleNamespace(box=(0.6, 0.3, 0.2, 0.3), left_eye=(0.65, 0.4), right_eye=(0.75, 0.4))
    return DebugInfo(fps=29.7, stage_ms={"detect": 7.5, "render": 0.4}, camera_image=camera,
                     faces=[face, other], viewer=face, cell=cell, mapping="geometric")


def test_debug_overlay_drawn_only_when_on(pool, open_renderer):
    renderer = open_renderer(pool, window_width=400, window_height=500)
    plain = expected_window(pool, (1, 1), (400, 500))
    renderer.set_debug(debug_info((1, 1)))     # debug off: stored, not drawn
    renderer.show((1, 1))
    assert not renderer.debug
    assert max_diff(renderer.surface_array(), plain) <= 1

    renderer.toggle_debug()
    renderer.set_debug(debug_info((1, 1)))
    renderer.show((1, 1))
    assert renderer.debug
    shown = renderer.surface_array()
    changed = np.any(np.abs(shown.astype(int) - plain) > 2, axis=-1)
    panel = renderer.overlay_rect
    assert changed[panel.slices].sum() > 0.5 * panel.width * panel.height
    changed[panel.slices] = False
    assert not changed.any()                                   # nothing outside the panel
    assert (shown[panel.slices] == (0, 255, 90)).all(axis=-1).any()  # the viewer in its colour
    patch = renderer.patch_rect
    assert panel.x >= patch.x + patch.width or panel.y >= patch.y + patch.height or \
        panel.x + panel.width <= patch.x or panel.y + panel.height <= patch.y   # the eyes stay visible

    renderer.toggle_debug()
    assert max_diff(renderer.surface_array(), plain) <= 1


def test_debug_from_config_and_waiting_panel(pool, open_renderer):
    renderer = open_renderer(pool, window_width=400, window_height=500, debug=True)
    assert renderer.debug
    plain = expected_window(pool, None, (400, 500))
    panel = renderer.overlay_rect
    assert max_diff(renderer.surface_array()[panel.slices], plain[panel.slices]) > 10


def test_status_line_drawn_and_removed(pool, open_renderer):
    renderer = open_renderer(pool, window_width=300, window_height=400)
    renderer.show((0, 0))
    plain = renderer.surface_array()
    renderer.set_status("camera unavailable - retrying")
    shown = renderer.surface_array()
    rect = renderer.portrait_rect
    changed = np.any(shown != plain, axis=-1)
    rows = np.nonzero(changed.any(axis=1))[0]
    assert rows.size and rows.min() > rect.y + rect.height * 0.8 and rows.max() < rect.y + rect.height
    assert (shown[rows.min():rows.max() + 1] >= 250).all(axis=-1).any()   # white text
    renderer.show((2, 2))
    renderer.show((0, 0))
    assert (renderer.surface_array() == shown).all()   # status survives cell changes
    renderer.set_status(None)
    assert (renderer.surface_array() == plain).all()


def post_keys(*keys):
    import pygame

    for key in keys:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode="", scancode=0))


def test_poll_reports_actions_and_toggles(pool, open_renderer):
    import pygame

    renderer = open_renderer(pool, headless=False, window_width=300, window_height=400)
    assert renderer.poll() == [] or True          # drain the window's own startup events
    post_keys(pygame.K_m, pygame.K_d, pygame.K_x)
    assert renderer.poll() == ["mirror", "debug"]
    assert renderer.debug
    post_keys(pygame.K_f)
    assert renderer.poll() == ["fullscreen"]
    assert renderer.fullscreen and renderer.size == pygame.display.get_desktop_sizes()[0]
    assert not pygame.mouse.get_visible()
    post_keys(pygame.K_f)
    renderer.poll()
    assert not renderer.fullscreen and renderer.size == (300, 400)
    post_keys(pygame.K_q, pygame.K_ESCAPE)
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    assert renderer.poll() == ["quit", "quit", "quit"]
    assert renderer.poll() == []


def test_resize_rescales(pool, open_renderer):
    import pygame

    renderer = open_renderer(pool, window_width=300, window_height=400)
    renderer.show((1, 3))
    pygame.event.post(pygame.event.Event(pygame.VIDEORESIZE, size=(500, 250), w=500, h=250))
    renderer.poll()
    assert renderer.size == (500, 250)
    assert renderer.portrait_rect.height == 250
    assert max_diff(renderer.surface_array(), expected_window(pool, (1, 3), (500, 250))) <= 1


def test_windowed_resize_rescales(pool, open_renderer):
    renderer = open_renderer(pool, headless=False, window_width=300, window_height=400)
    renderer.show((2, 0))
    renderer.resize(260, 300)
    assert renderer.size == (260, 300)
    assert max_diff(renderer.surface_array(), expected_window(pool, (2, 0), (260, 300))) <= 1


def test_mouse_position_normalized_over_portrait(pool, open_renderer):
    import pygame

    renderer = open_renderer(pool, window_width=300, window_height=300)   # bars left and right
    rect = renderer.portrait_rect
    assert renderer.mouse_position() is None

    def move(x, y):
        pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=(x, y), rel=(0, 0), buttons=(0, 0, 0)))
        renderer.poll()
        return renderer.mouse_position()

    x, y = move(rect.x + rect.width // 2, rect.height // 4)
    assert abs(x - 0.5) < 0.02 and abs(y - 0.25) < 0.02
    assert move(rect.x - 5, 100) is None                       # over a bar
    move(rect.x + 1, 1)
    pygame.event.post(pygame.event.Event(pygame.WINDOWLEAVE))
    renderer.poll()
    assert renderer.mouse_position() is None


def test_missing_display_index_is_a_clear_error(pool):
    with pytest.raises(DisplayError, match="display 5 does not exist"):
        Renderer(pool, RenderConfig(display=5))


def test_leaving_fullscreen_restores_the_last_window_size(pool, open_renderer):
    renderer = open_renderer(pool, headless=False, window_width=300, window_height=400)
    renderer.resize(260, 300)
    renderer.toggle_fullscreen()
    renderer.resize(100, 100)                      # ignored while fullscreen
    assert renderer.fullscreen and renderer.size != (100, 100)
    renderer.toggle_fullscreen()
    assert renderer.size == (260, 300)


@pytest.mark.parametrize("size", [(90, 120), (47, 63), (300, 400)])
def test_scaling_quality_close_to_cv2_resize(size):
    """The seam-free scaler is as sharp as cv2.resize and not aliased (close to area averaging)."""
    import cv2

    yy, xx = np.mgrid[0:320, 0:240].astype(float)
    image = np.stack([128 + 100 * np.sin(xx / 7) * np.cos(yy / 11), 2 * np.hypot(xx - 120, yy - 160) % 256,
                      (xx > 100) * 200 + 20], -1).astype(np.uint8)
    reference = cv2.resize(image, size, interpolation=cv2.INTER_AREA if size[0] < 240 else cv2.INTER_LINEAR)
    mse = np.mean((scale_image(image, *size).astype(float) - reference) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 30


def test_a_silent_fallback_to_no_screen_is_refused(monkeypatch):
    from monalisa.kiosk.render import require_a_screen

    monkeypatch.delenv("SDL_VIDEODRIVER", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(DisplayError, match="DISPLAY is not set"):
        require_a_screen("offscreen")
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    require_a_screen("dummy")  # asked for on purpose (tests, --headless)
    require_a_screen("x11")
