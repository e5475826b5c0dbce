"""Ways to look at a pool: its summary (`pool info`), every composited frame, a contact sheet, a sweep."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from monalisa.atomic import staged_dir, write_file
from monalisa.errors import PoolError, UsageError
from monalisa.images import write_image
from monalisa.pool.format import Pool
from monalisa.pool.geometry import Rect
from monalisa.pool.manifest import Manifest

SHEET_COLUMNS = 11
EYE_MARK_RGB = (255, 60, 200)  # eye points and iris radii on the idle tile
TILE_WIDTH = 240
SWEEP_WIDTH = (16, 4096)       # px, the range --width may take
FRAME_MS = (20, 10_000)        # ms per sweep frame
SWEEP_MAX_BYTES = 1 << 30      # all sweep frames are held in memory at once


def frame_name(index: int) -> str:
    return f"frame_{index:03d}.png"


def blink_name(index: int, stage: int) -> str:
    """The file of frame ``index``'s blink stage ``stage`` (an index into the pool's blink_stages)."""
    return f"blink_{index:03d}_s{stage}.png"


def export_frames(pool: Pool, out: str | os.PathLike, blinks: bool = False) -> list[Path]:
    """Write every full frame, exactly as the kiosk shows it, in export order; with ``blinks`` also every
    cell's blink stages (blink_NNN_sK.png: frame NNN at stage K); atomic."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PoolError(f"{out}: is a file, not a directory; --out takes a directory for the frames")
    if out.exists() and any(p for p in out.iterdir() if not p.name.startswith(("frame_", "blink_"))):
        raise PoolError(f"{out}: exists and holds other files; choose an empty or new directory")
    if blinks and not pool.blink_stages:
        raise UsageError(f"{pool.directory}: the pool has no blink stages (built with --no-blinks, by an engine "
                         "that cannot blink, or by an older version); export it without --blinks")
    written = []
    with staged_dir(out, PoolError) as tmp:
        for index, (row, col) in enumerate(pool.cells()):
            write_image(tmp / frame_name(index), pool.frame(row, col))
            written.append(frame_name(index))
        for index, (row, col) in enumerate(pool.cells()):
            for stage in range(len(pool.blink_stages) if blinks else 0):
                write_image(tmp / blink_name(index, stage), pool.blink_frame(row, col, stage))
                written.append(blink_name(index, stage))
    return [out / name for name in written]


def view_rect(pool: Pool, margin: float = 0.08) -> Rect:
    """The patch rectangle with a little margin, clipped to the portrait: what sheets show."""
    r = pool.patch_rect
    dx, dy = int(r.width * margin), int(r.height * margin)
    x0, y0 = max(0, r.x - dx), max(0, r.y - dy)
    x1 = min(pool.manifest.width, r.x + r.width + dx)
    y1 = min(pool.manifest.height, r.y + r.height + dy)
    return Rect(x0, y0, x1 - x0, y1 - y0)


def _crop(pool: Pool, row: int, col: int, rect: Rect, width: int) -> np.ndarray:
    """One cell's view rectangle, composited and scaled to ``width`` pixels wide."""
    crop = pool.portrait[rect.slices].copy()
    p = pool.patch_rect
    crop[p.relative_to(rect).slices] = pool.patches[(row, col)]
    height = max(1, round(rect.height * width / rect.width))
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)


def contact_sheet(pool: Pool, tile_width: int = TILE_WIDTH) -> np.ndarray:
    """A grid of every cell's face region labelled with its yaw/pitch (rows of up to 11 tiles)."""
    rect = view_rect(pool)
    per_line = min(pool.cols, SHEET_COLUMNS)
    lines_per_row = -(-pool.cols // per_line)
    tile_h = max(1, round(rect.height * tile_width / rect.width))
    label_h = 22
    pad = 4
    sheet_h = pool.rows * lines_per_row * (tile_h + label_h + pad) + pad
    sheet_w = per_line * (tile_width + pad) + pad
    sheet = np.full((sheet_h, sheet_w, 3), 24, np.uint8)
    for row, col in pool.cells():
        line = row * lines_per_row + col // per_line
        x = pad + (col % per_line) * (tile_width + pad)
        y = pad + line * (tile_h + label_h + pad)
        sheet[y:y + tile_h, x:x + tile_width] = _crop(pool, row, col, rect, tile_width)
        if (row, col) == pool.neutral_cell():
            _mark_eyes(sheet[y:y + tile_h, x:x + tile_width], pool, rect, tile_width / rect.width)
        yaw, pitch = pool.shows(row, col)
        label = f"r{row} c{col}  yaw {yaw:+.1f}" + (f" pitch {pitch:+.1f}" if pool.rows > 1 else "")
        cv2.putText(sheet, label, (x + 2, y + tile_h + 16), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (230, 230, 230), 1, cv2.LINE_AA)
    return sheet


def _mark_eyes(tile: np.ndarray, pool: Pool, rect: Rect, scale: float) -> None:
    """The eye centres and iris radii the build used (manifest faces), drawn on the idle cell's tile,
    so points that missed the eyes show."""
    for face in pool.manifest.engine_params.get("faces", []):
        for x, y, radius in face.get("eyes", []):
            cx, cy = (x - rect.x + 0.5) * scale - 0.5, (y - rect.y + 0.5) * scale - 0.5
            cv2.circle(tile, (round(cx * 4), round(cy * 4)), max(4, round(radius * scale * 4)), EYE_MARK_RGB, 1,
                       cv2.LINE_AA, shift=2)
            cv2.drawMarker(tile, (round(cx), round(cy)), EYE_MARK_RGB, cv2.MARKER_CROSS, 7, 1, cv2.LINE_AA)


def write_sheet(pool: Pool, out: str | os.PathLike) -> Path:
    """Write the contact sheet atomically (temp file, then rename)."""
    if Path(out).suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise PoolError(f"{out}: the contact sheet is written as .png or .jpg, not "
                        f"{Path(out).suffix or 'a file without suffix'}")
    return write_file(out, lambda tmp: write_image(tmp, contact_sheet(pool)), PoolError)


def sweep_frames(pool: Pool, width: int = 360, full: bool = False) -> list[np.ndarray]:
    """The middle row's columns left to right and back again, as a ping-pong animation."""
    row = pool.neutral_cell()[0]
    rect = Rect(0, 0, pool.manifest.width, pool.manifest.height) if full else view_rect(pool)
    _check_sweep_size(pool, rect, width)
    frames = [_crop(pool, row, col, rect, width) for col in range(pool.cols)]
    return frames + frames[-2:0:-1]


def _check_sweep_size(pool: Pool, rect: Rect, width: int) -> None:
    """UsageError unless ``width`` is in SWEEP_WIDTH and the whole sweep fits in SWEEP_MAX_BYTES of memory."""
    low, high = SWEEP_WIDTH
    if isinstance(width, bool) or not isinstance(width, int) or not low <= width <= high:
        raise UsageError(f"--width must be from {low} to {high} px, got {width}")
    frame_bytes = width * max(1, round(rect.height * width / rect.width)) * 3
    count = max(1, 2 * pool.cols - 2)
    if frame_bytes * count > SWEEP_MAX_BYTES:
        widest = int(width * (SWEEP_MAX_BYTES / (frame_bytes * count)) ** 0.5)
        raise UsageError(f"--width {width} would need {frame_bytes * count >> 20} MB of memory for the "
                         f"{count}-frame sweep; use --width {max(low, widest)} or less")


def write_gif(pool: Pool, out: str | os.PathLike, width: int = 360, full: bool = False,
              frame_ms: int = 60) -> Path:
    """Write an animated GIF of the horizontal sweep (or an MP4 when ``out`` ends in .mp4)."""
    out = Path(out)
    if out.suffix.lower() not in (".gif", ".mp4"):
        raise PoolError(f"{out}: the sweep is written as .gif or .mp4, not {out.suffix or 'a file without suffix'}")
    if isinstance(frame_ms, bool) or not isinstance(frame_ms, int) or not FRAME_MS[0] <= frame_ms <= FRAME_MS[1]:
        raise UsageError(f"the frame time must be from {FRAME_MS[0]} to {FRAME_MS[1]} ms, got {frame_ms}")
    frames = sweep_frames(pool, width, full)
    if out.suffix.lower() == ".mp4":
        write_file(out, lambda tmp: _write_mp4(tmp, frames, 1000 / frame_ms, out), PoolError)
    else:
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        write_file(out, lambda tmp: images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                                                   duration=frame_ms, loop=0), PoolError)
    return out


def _write_mp4(path: Path, frames: list[np.ndarray], fps: float, out: Path) -> None:
    """Encode ``frames`` as mp4v into ``path`` (a temp file); errors name ``out``, the user's file."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise PoolError(f"{out}: cannot write MP4 here (no mp4v encoder); use .gif")
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def info_text(pool: Pool) -> str:
    """`monalisa pool info`: a few lines describing a pool (grid, reach, gaze, blinks, faces, engine)."""
    m = pool.manifest
    params = ", ".join(f"{k}={v}" for k, v in m.engine_params.items() if not isinstance(v, (list, dict)))
    idle, b = pool.neutral_cell(), m.blink_rect
    return "\n".join([
        f"pool       {pool.directory}",
        f"portrait   {m.source or m.portrait_file} {m.width}x{m.height} sha256 {m.portrait_sha256[:16]}",
        f"grid       {m.rows} row(s) x {m.cols} column(s) = {len(m.patches)} frames",
        f"yaw        {m.yaws[0]:+.1f} .. {m.yaws[-1]:+.1f} deg" + _reach(m, "yaw", m.yaws),
        f"pitch      {m.pitches[0]:+.1f} .. {m.pitches[-1]:+.1f} deg" + _reach(m, "pitch", m.pitches),
        f"patch      {m.patch.width}x{m.patch.height} at ({m.patch.x}, {m.patch.y})",
        f"gaze       painted yaw {m.painted_gaze[0]:+.1f}, pitch {m.painted_gaze[1]:+.1f} deg; idle cell "
        f"r{idle[0]} c{idle[1]} (yaw {m.yaws[idle[1]]:+.1f}, pitch {m.pitches[idle[0]]:+.1f})",
        "blinks     " + (f"{len(m.blink_stages)} stages per cell (closure "
                         f"{', '.join(f'{s:g}' for s in m.blink_stages)}), {b.width}x{b.height} at ({b.x}, {b.y})"
                         if b is not None else "none"),
        f"format     {m.format}",
        f"engine     {m.engine}" + (f" ({params})" if params else ""),
        *_face_lines(m.engine_params.get("faces", [])),
        f"created    {m.created}",
    ])


def _reach(m: Manifest, axis: str, grid: tuple[float, ...]) -> str:
    """"" when the frames show the grid's directions, else the range they really show (cells beyond the
    engine's reach repeat its furthest frame, so some columns or rows look the same)."""
    shown = sorted({getattr(p, axis) for p in m.patches})
    low, high = min(grid), max(grid)
    if not shown or (abs(shown[0] - low) < 0.05 and abs(shown[-1] - high) < 0.05):
        return ""
    return f" (the frames reach {shown[0]:+.1f} .. {shown[-1]:+.1f}: beyond that they repeat the last one)"


def _face_lines(faces: list[dict]) -> list[str]:
    """One line per face: how it was found and the eye points and iris radii used."""
    return [f"face {i + 1:<5d} {face.get('from', '?')}" + (f" ({face['how']})" if face.get("how") else "") + ": eyes "
            + ", ".join(f"({x:g}, {y:g}) r {r:g}" for x, y, r in face.get("eyes", []))
            for i, face in enumerate(faces)]
