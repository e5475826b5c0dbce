"""`monalisa record`: film the user following a dot with their eyes, as a FOMM driving video.

A window shows a countdown, then a dot that sweeps left to right and back (once per row, rows top
to bottom when --pitch-steps > 1) while the webcam records. Saved beside the video is its gaze file
(see precompute.driving.gazefile): the dot's position for every saved frame, and the portrait gaze that frame
stands for as fractions in [-1, 1] (yaw -1: the portrait looks toward the screen's left; pitch +1: up).

The camera is not mirrored, so when the user looks at the screen's right their eyes move toward
the image's left, and FOMM moves the portrait's eyes the same way: toward the screen's left.
Hence yaw = +1 with the dot at the left edge and -1 at the right edge.

Esc (or closing the window) cancels and leaves nothing behind: both files are written atomically
(monalisa.atomic) and renamed into place only when the recording completes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from monalisa.atomic import write_file
from monalisa.config import Config
from monalisa.errors import CameraError, MonalisaError, UsageError
from monalisa.kiosk.render import start_display
from precompute.driving.gazefile import GAZE_FORMAT, gaze_json_path

log = logging.getLogger(__name__)

COUNTDOWN_S = 3.0        # before the first sweep, the dot waits at its start
HOLD_S = 1.0             # before each further row, the dot waits while the eyes settle (not saved)
CAMERA_WAIT_S = 10.0     # no first frame within this long: give up
STALL_S = 2.0            # no frame for this long during the sweep: give up
MARGIN_X, MARGIN_Y = 0.06, 0.1  # the dot stays this far (fraction of the window) from the edges
FOURCC = {".mp4": "mp4v", ".avi": "MJPG"}
MAX_PITCH_STEPS = 61


class Clock(Protocol):
    """Time as the recorder sees it: injectable so tests run without waiting."""

    def now(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real monotonic clock."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class Dot:
    """Where the dot is at one moment, and what a frame taken then stands for."""

    phase: str       # "countdown", "hold", "sweep" (frames saved) or "done"
    x: float         # 0..1 of the window width
    y: float         # 0..1 of the window height
    yaw: float       # portrait gaze fraction this dot position drives, -1..1
    pitch: float
    row: int
    progress: float  # 0..1 of the whole recording
    remaining: float  # seconds left in the current countdown or hold


class Sweep:
    """The dot's timeline: countdown, then per row (a hold and) a sweep out and back."""

    def __init__(self, rows: int, sweep_s: float, countdown_s: float = COUNTDOWN_S, hold_s: float = HOLD_S):
        if rows < 1 or sweep_s <= 0:
            raise ValueError(f"a sweep needs rows >= 1 and sweep_s > 0, got {rows}, {sweep_s}")
        self.rows, self.sweep_s = rows, sweep_s
        self.segments: list[tuple[str, float, int]] = [("countdown", countdown_s, 0)]
        for row in range(rows):
            if row:
                self.segments.append(("hold", hold_s, row))
            self.segments.append(("sweep", 2 * sweep_s, row))
        self.duration = sum(length for _, length, _ in self.segments)

    def row_position(self, row: int) -> tuple[float, float]:
        """The dot's y and the pitch fraction for a row (the middle for a single row)."""
        if self.rows == 1:
            return 0.5, 0.0
        v = row / (self.rows - 1)
        return MARGIN_Y + (1 - 2 * MARGIN_Y) * v, 1 - 2 * v

    def at(self, t: float) -> Dot:
        """The dot at ``t`` seconds after the countdown began."""
        start = 0.0
        for phase, length, row in self.segments:
            if t < start + length:
                y, pitch = self.row_position(row)
                local = t - start
                u = 0.0
                if phase == "sweep":
                    u = local / self.sweep_s if local < self.sweep_s else 2 - local / self.sweep_s
                return Dot(phase, MARGIN_X + (1 - 2 * MARGIN_X) * u, y, 1 - 2 * u, pitch, row,
                           t / self.duration, length - local)
            start += length
        y, pitch = self.row_position(self.rows - 1)
        return Dot("done", MARGIN_X, y, 1.0, pitch, self.rows - 1, 1.0, 0.0)


class _VideoOut:
    """A video file opened on the first frame (its size is known only then)."""

    def __init__(self, path: Path, fps: float, shown: Path | None = None):
        self.path, self.fps, self.shown = path, fps, shown or path  # shown: the name used in errors
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.count = 0

    def write(self, rgb: np.ndarray) -> None:
        if self.writer is None:
            self.size = (rgb.shape[1], rgb.shape[0])
            fourcc = cv2.VideoWriter_fourcc(*FOURCC[self.path.suffix.lower()])
            self.writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self.size)
            if not self.writer.isOpened():
                raise MonalisaError(f"{self.shown}: cannot write a video here (codec or permission)")
        if (rgb.shape[1], rgb.shape[0]) != self.size:  # the camera was reopened at another size
            rgb = cv2.resize(rgb, self.size, interpolation=cv2.INTER_AREA)
        self.writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.count += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


class _Window:
    """The pygame window: the dot, a countdown, a progress bar and a small camera preview."""

    def __init__(self, config: Config):
        """Open the window; a MonalisaError when there is no display to open it on."""
        import pygame

        self.pg = pygame
        try:
            self._open(config)
        except MonalisaError:
            self.close()
            raise
        except pygame.error as exc:
            self.close()
            raise MonalisaError(f"cannot open a window for recording: {exc}; run it in a desktop session") from exc

    def _open(self, config: Config) -> None:
        pygame = self.pg
        start_display(pygame, "record in the desktop session, in front of the camera")
        render = config.render
        if render.fullscreen:
            self.screen = pygame.display.set_mode((0, 0), pygame.FULLSCREEN, display=render.display)
            pygame.mouse.set_visible(False)
        else:
            self.screen = pygame.display.set_mode((render.window_width, render.window_height),
                                                  display=render.display)
        pygame.display.set_caption("monalisa record: follow the dot with your eyes")
        self.font = pygame.font.Font(None, max(16, self.screen.get_height() // 24))
        self.big = pygame.font.Font(None, max(32, self.screen.get_height() // 6))

    def cancelled(self) -> bool:
        """True when the user pressed Esc or closed the window."""
        pg = self.pg
        for event in pg.event.get():
            if event.type == pg.QUIT or (event.type == pg.KEYDOWN and event.key == pg.K_ESCAPE):
                return True
        return False

    def draw(self, dot: Dot | None, preview: np.ndarray | None, rows: int) -> None:
        pg, screen = self.pg, self.screen
        width, height = screen.get_size()
        screen.fill((24, 24, 24))
        if preview is not None:  # mirrored, like a mirror, so the user can centre themselves
            thumb_w = max(1, width // 5)
            thumb_h = max(1, thumb_w * preview.shape[0] // preview.shape[1])
            small = np.ascontiguousarray(cv2.resize(preview[:, ::-1], (thumb_w, thumb_h)))
            screen.blit(pg.image.frombuffer(small.tobytes(), (thumb_w, thumb_h), "RGB"), (8, 8))
        if dot is None:
            self._text("waiting for the camera...", width // 2, height // 2)
        else:
            centre = (round(dot.x * width), round(dot.y * height))
            radius = max(6, min(width, height) // 60)
            pg.draw.circle(screen, (255, 255, 255), centre, radius)
            pg.draw.circle(screen, (220, 40, 40), centre, max(2, radius // 3))
            if dot.phase in ("countdown", "hold"):
                label = self.big.render(str(int(dot.remaining) + 1), True, (255, 255, 255))
                screen.blit(label, label.get_rect(center=(width // 2, height // 3)))
            pg.draw.rect(screen, (80, 80, 80), (0, height - 8, width, 8))
            pg.draw.rect(screen, (40, 180, 90), (0, height - 8, round(width * dot.progress), 8))
            row = f"row {dot.row + 1}/{rows}, " if rows > 1 else ""
            self._text("follow the dot with your eyes, keep your head still", width // 2, height - 52)
            self._text(f"{row}{dot.progress:.0%} - Esc cancels", width // 2, height - 24)
        pg.display.flip()

    def _text(self, text: str, x: int, y: int) -> None:
        label = self.font.render(text, True, (200, 200, 200))
        self.screen.blit(label, label.get_rect(center=(x, y)))

    def close(self) -> None:
        """Shut pygame's display and fonts down (safe when they never started)."""
        self.pg.display.quit()
        self.pg.font.quit()


def record_gaze(out: Path, pitch_steps: int, config: Config, source=None, clock: Clock | None = None) -> int:
    """Record a gaze video to ``out`` (+ its JSON); 0 when saved, 1 when cancelled (nothing saved).

    ``source`` (a monalisa.kiosk.camera FrameSource, default: the configured camera, which may also be a
    video file) and ``clock`` are injectable for tests; the source is started and closed here.
    The video is written at the source's own rate when it has one (a file), else the camera's fps.
    """
    out = Path(out)
    if out.suffix.lower() not in FOURCC:
        raise UsageError(f"--out must end in {' or '.join(FOURCC)}, got {out.name!r}")
    if not 1 <= pitch_steps <= MAX_PITCH_STEPS:
        raise UsageError(f"--pitch-steps must be from 1 to {MAX_PITCH_STEPS}, got {pitch_steps}")
    if source is None:
        from monalisa.kiosk.camera import open_source

        source = open_source(config.camera)
    clock = clock or SystemClock()
    fps = float(getattr(source, "fps", config.camera.fps))
    json_path = gaze_json_path(out)
    window = None
    saved: list[dict] = []

    def record_video(temp_video: Path, temp_json: Path) -> None:
        """Record into the temp video, then write the temp JSON; _Cancelled when the user cancels."""
        video = _VideoOut(temp_video, fps, shown=out)
        try:
            samples = _run(window, source, clock, video, Sweep(pitch_steps, config.fomm.record_sweep_s),
                           1.0 / config.render.max_fps)
        finally:
            video.close()
        if samples is None:
            raise _Cancelled
        document = {"format": GAZE_FORMAT, "video": out.name, "fps": fps,
                    "width": video.size[0], "height": video.size[1], "pitch_steps": pitch_steps,
                    "sweep_s": config.fomm.record_sweep_s, "frames": samples}
        with open(temp_json, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(document, indent=1))
            fh.flush()
            os.fsync(fh.fileno())  # both files are complete on disk before either is renamed into place
        saved.extend(samples)

    try:
        window = _Window(config)
        source.start()
        # Nested atomic writes: the video and its JSON are both finished in hidden temp dirs, then the
        # video is renamed into place and the JSON right after it; a cancel or failure leaves neither.
        write_file(json_path, lambda temp_json: write_file(out, lambda temp_video: record_video(temp_video, temp_json)))
    except _Cancelled:
        log.warning("recording cancelled; nothing saved")
        return 1
    finally:
        source.close()
        if window is not None:
            window.close()
    log.info("saved %s (%d frames) and %s", out, len(saved), json_path.name)
    return 0


class _Cancelled(Exception):
    """The user cancelled the recording (Esc or closed the window): nothing is saved."""


def _run(window: _Window, source, clock: Clock, video: _VideoOut, sweep: Sweep,
         tick: float) -> list[dict] | None:
    """The recording loop; the per-frame samples, or None when cancelled."""
    waiting_since, start, last_frame = clock.now(), None, None
    preview, samples = None, []
    camera = source.describe()
    log.info("recording: %d row(s), %.0f s, from %s", sweep.rows, sweep.duration, camera)
    while True:
        if window.cancelled():
            return None
        now = clock.now()
        frame = source.read_latest()
        if frame is not None:
            preview, last_frame = frame.image, now
            if start is None:
                start = now  # the countdown begins once the camera delivers
        if start is None:
            if now - waiting_since > CAMERA_WAIT_S:
                raise CameraError(f"no frames from {camera} within {CAMERA_WAIT_S:.0f} s; nothing recorded")
            window.draw(None, None, sweep.rows)
            clock.sleep(tick)
            continue
        dot = sweep.at(now - start)
        if dot.phase == "done":
            if not samples:
                raise CameraError(f"no frames from {camera} during the sweep; nothing saved")
            return samples
        if source.state == "ended":
            raise CameraError(f"the video ended {now - start:.0f} s into the recording, which needs "
                              f"{sweep.duration:.0f} s; nothing saved")
        if now - last_frame > STALL_S:
            raise CameraError(f"the camera stopped delivering frames during the recording "
                              f"({camera}); nothing saved")
        if frame is not None:
            # where the dot was when the camera grabbed the frame, not when it reached us
            taken = (frame.t if start <= frame.t <= now else now) - start
            shot = sweep.at(taken)
            if shot.phase == "sweep":
                video.write(frame.image)
                samples.append({"index": len(samples), "t": round(taken, 4), "x": round(shot.x, 5),
                                 "y": round(shot.y, 5), "yaw": round(shot.yaw, 5),
                                 "pitch": round(shot.pitch, 5), "row": shot.row})
        window.draw(dot, preview, sweep.rows)
        clock.sleep(tick)
