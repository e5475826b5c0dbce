"""End to end in a real X window: the kiosk follows a generated walker, the screen shows its cell.

Starts Xvfb (skipped where the binary is absent), runs ``python -m monalisa run`` fullscreen on
it with a generated pool (each cell a distinct flat colour) and a generated camera video (a
face crossing the frame, then standing still), screenshots the X screen while it runs, and
checks that the last screenshot showing a complete frame shows the cell the trace ends on.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from monalisa.config import RenderConfig
from monalisa.kiosk.render import Renderer
from monalisa.pool.format import PoolWriter, load_pool
from monalisa.pool.geometry import Rect

SCREEN = (480, 640)                 # Xvfb screen = the fullscreen window
ROWS, COLS = 1, 7
REPO = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb (Debian package xvfb)")


def make_pool(out: Path):
    """A textured portrait 360x480 with one flat colour and its number per cell's patch."""
    yy, xx = np.mgrid[0:480, 0:360]
    portrait = np.stack([(xx // 2) % 256, (yy // 2) % 256, np.full_like(xx, 90)], -1).astype(np.uint8)
    patch = Rect(90, 150, 180, 90)
    with PoolWriter(out, portrait, "0" * 64, patch, np.linspace(-30, 30, COLS).tolist(), [0.0][:ROWS],
                    "test", {}) as writer:
        for col in range(COLS):
            image = np.full((patch.height, patch.width, 3), (40 + 30 * col, 230 - 30 * col, 20 * col), np.uint8)
            cv2.putText(image, str(col), (70, 70), cv2.FONT_HERSHEY_SIMPLEX, 2.2, (255, 255, 255), 5)
            writer.add(0, col, image)
    return load_pool(out)


def expected_screens(pool) -> dict:
    """What the fullscreen window must show for each cell, drawn by the headless renderer."""
    renderer = Renderer(pool, RenderConfig(window_width=SCREEN[0], window_height=SCREEN[1]), headless=True)
    try:
        screens = {}
        for cell in pool.cells():
            renderer.show(cell)
            screens[cell] = renderer.surface_array().astype(np.int16)
        return screens
    finally:
        renderer.close()


def start_xvfb(screen=SCREEN):
    """Xvfb on a free display number (it picks one and writes it to a pipe); returns (process, ":N")."""
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{screen[0]}x{screen[1]}x24",
                             "-nolisten", "tcp", "-noreset"], pass_fds=(write_fd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not start")
    return proc, f":{number}"


def classify(shot: np.ndarray, screens: dict):
    """The cell whose frame the screenshot shows (every pixel within 2 levels), or None."""
    for cell, screen in screens.items():
        if np.abs(shot - screen).max() <= 2:
            return cell
    return None


def test_kiosk_in_a_real_x_window(tmp_path):
    from PIL import ImageGrab

    from monalisa.testing.synthetic import walking_video

    pool = make_pool(tmp_path / "pool")
    screens = expected_screens(pool)
    video, trace = tmp_path / "walk.avi", tmp_path / "trace.jsonl"
    walking_video(video, seconds=4.0, path_kind="walk_then_still", eye_distance=0.1)

    xvfb, display = start_xvfb()
    env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
    env.update(DISPLAY=display, XDG_CONFIG_HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path))
    env.pop("MONALISA_CONFIG", None)
    kiosk = subprocess.Popen(
        [sys.executable, "-m", "monalisa", "run", "--pool", str(tmp_path / "pool"), "--camera", str(video),
         "--trace", str(trace), "--max-seconds", "40", "--fullscreen", "--mapping", "linear"],  # 7 columns
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    seen = []          # (time, cell) of every screenshot showing a complete frame
    grab_errors = []   # a busy X server can refuse a connection now and then
    try:
        deadline = time.monotonic() + 90
        while kiosk.poll() is None and time.monotonic() < deadline:
            try:
                shot = np.asarray(ImageGrab.grab(xdisplay=display).convert("RGB"), np.int16)
            except OSError as exc:
                grab_errors.append(str(exc))
                continue
            cell = classify(shot, screens) if shot.shape[:2] == (SCREEN[1], SCREEN[0]) else None
            if cell is not None:
                seen.append((time.monotonic(), cell))
            time.sleep(0.05)
        output = kiosk.communicate(timeout=30)[0].decode(errors="replace")
    finally:
        if kiosk.poll() is None:
            kiosk.kill()
            kiosk.wait()
        xvfb.terminate()
        xvfb.wait(timeout=10)

    assert kiosk.returncode == 0, output[-3000:]
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    print(f"{len(lines)} traced frames; screenshots: {[c for _, c in seen]}; grab errors: {len(grab_errors)}")
    assert len(lines) > 10, output[-3000:]
    traced = {tuple(line["cell"]) for line in lines}
    assert seen, f"no screenshot showed a complete frame; grab errors {grab_errors[:3]}\n{output[-3000:]}"
    assert {cell for _, cell in seen} <= traced | {pool.neutral_cell()}
    assert seen[-1][1] == tuple(lines[-1]["cell"]), (seen[-5:], lines[-3:])
    assert len(traced) > 1, "the walker should have moved the eyes"


WINDOW_SCRIPT = """
import sys, numpy as np, pygame
from PIL import ImageGrab
from monalisa.config import RenderConfig
from monalisa.kiosk.render import Renderer
from monalisa.pool.format import load_pool
renderer = Renderer(load_pool(sys.argv[1]), RenderConfig())      # the default 768x1024 window
print("window", *renderer.size)
pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_f))
print("actions", *renderer.poll())
renderer.show((0, 3))
pygame.time.wait(300)
renderer.poll()
shot = np.asarray(ImageGrab.grab(xdisplay=sys.argv[2]).convert("RGB"), np.int16)
mine = renderer.surface_array().astype(np.int16)
print("fullscreen", *renderer.size, int(np.abs(shot[:mine.shape[0], :mine.shape[1]] - mine).max()))
renderer.close()
"""


def test_window_fits_a_small_screen_and_f_goes_fullscreen_at_the_origin(tmp_path):
    """On 1280x800 without a window manager: the default 768x1024 window shrinks to fit; `f` covers the screen."""
    pool = make_pool(tmp_path / "pool")
    xvfb, display = start_xvfb((1280, 800))
    env = {k: v for k, v in os.environ.items() if k != "SDL_VIDEODRIVER"}
    env["DISPLAY"] = display
    try:
        done = subprocess.run([sys.executable, "-c", WINDOW_SCRIPT, str(pool.directory), display], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=60)
    finally:
        xvfb.terminate()
        xvfb.wait(timeout=10)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()}
    width, height = map(int, lines["window"])
    assert height <= 800 and width <= 1280 and abs(width / height - 768 / 1024) < 0.01
    assert lines["actions"] == ["fullscreen"]
    full_w, full_h, diff = map(int, lines["fullscreen"])
    assert (full_w, full_h) == (1280, 800)
    assert diff <= 2    # the X screen shows exactly the fullscreen surface, from its top-left corner
