"""The kiosk loop: camera -> detector -> viewer -> gaze -> renderer, forever.

``Kiosk`` holds the parts behind small interfaces (tests pass fakes) and ``step()`` does one
turn: pump window events, take the newest camera frame if there is one (never waiting for
the camera longer than ``wait_s``, so the window stays responsive), and show the chosen
cell. While the camera is not delivering, the portrait stays up, drifts back to neutral
and a status message says what is wrong. ``open_kiosk`` wires the real parts from a Config;
``run_kiosk`` (the kiosk) and ``monalisa.ops.bench`` (measurements) both use it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from monalisa.config import Config
from monalisa.kiosk.gaze import CellSelector, GazeMapping, make_mapping
from monalisa.kiosk.life import Life, Look
from monalisa.kiosk.viewer import ViewerTracker
from monalisa.ops.health import FpsMeter
from monalisa.pool.format import Pool

log = logging.getLogger(__name__)

STAGES = ("capture", "detect", "select", "render", "total")

# what the screen says while the camera is not delivering (None: nothing to say)
STATUS_TEXT = {
    "starting": "camera starting",
    "ok": None,
    "stalled": "camera stalled \u2014 waiting for frames",
    "frozen": "camera image frozen \u2014 reconnecting",
    "lost": "camera unavailable \u2014 retrying",
    "ended": None,
}


@dataclass
class KioskOptions:
    """How the CLI wants this kiosk run (the rest comes from Config)."""

    pool: Pool                         # already loaded by the CLI
    headless: bool = False             # no window: draw to an off-screen surface
    max_seconds: float | None = None   # stop after this long (None: run until quit)
    max_frames: int | None = None      # stop after this many processed camera frames
    trace: Path | None = None          # write one JSON line per processed frame here (see TraceWriter)


@dataclass
class FrameRecord:
    """What the loop did with one camera frame; one instance is reused, observers copy what they keep."""

    frame: int = -1                                  # camera frame number, from 0
    t: float = 0.0                                   # the frame's time (see Frame.t: a video's media time)
    faces: int = 0                                   # faces detected
    eye: tuple[float, float] | None = None           # chosen viewer's raw eye midpoint (camera coords)
    mirror: bool = False                             # the mapping's mirror setting for this frame
    cell: tuple[int, int] = (0, 0)                   # (row, column) shown
    blink: float | None = None                       # closure of the blink stage shown over it, None: open
    act: str | None = None                           # what the portrait does on its own: "glance", "look_away"
    stage_ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))


class Screen(Protocol):
    """What the loop needs from the window (``monalisa.kiosk.render.Renderer``, or a test fake)."""

    debug: bool

    def show(self, cell: tuple[int, int], blink: int | None = None) -> None: ...
    def poll(self) -> list[str]: ...
    def set_status(self, text: str | None) -> None: ...
    def set_debug(self, info: Any) -> None: ...
    def close(self) -> None: ...


class Kiosk:
    """One camera source, one detector, one window: ``step()`` until ``stopped``."""

    def __init__(self, source, detector, tracker: ViewerTracker, mapping: GazeMapping,
                 selector: CellSelector, renderer: Screen, *, life: Life | None = None,
                 clock: Callable[[], float] = time.monotonic, health=None, notifier=None,
                 observers: Sequence[Callable[[FrameRecord], None]] = (), wait_s: float = 1 / 60):
        self.source = source
        self.detector = detector
        self.tracker = tracker
        self.mapping = mapping
        self.selector = selector
        self.renderer = renderer
        self.life = life                      # None: the cell wanted is shown as it is
        self.clock = clock
        self.health = health
        self.notifier = notifier
        self.observers = list(observers)
        self.wait_s = wait_s                  # longest wait for a frame before pumping events again
        self.stopped = False
        self.frames = 0                       # camera frames processed
        self.record = FrameRecord(cell=selector.cell)
        self.camera_state: str | None = None
        self._shown: Look | None = None
        self._frame_size = (640, 480)         # the camera's, from the last frame
        self._timeline = 0.0                  # camera time minus clock time at the last frame (0 for a webcam)
        self._status: str | None = None       # the message on screen
        self._fps = FpsMeter()                # camera frames processed, for the overlay

    # ------------------------------------------------------------------ the loop

    def run(self, max_seconds: float | None = None, max_frames: int | None = None) -> int:
        """Step until quit, end of video, or a limit; returns the exit code (0)."""
        start = self.clock()
        self._shown = Look(self.selector.cell)
        self.renderer.show(self._shown.cell)  # the portrait is up before the camera delivers anything
        if self.notifier is not None:
            self.notifier.ready()
        while not self.stopped:
            self.step()
            if max_frames is not None and self.frames >= max_frames:
                break
            if max_seconds is not None and self.clock() - start >= max_seconds:
                break
        return 0

    def step(self) -> None:
        """One turn: events, camera state, then the newest frame or a short bounded wait."""
        for action in self.renderer.poll():
            self._act(action)
        if self.notifier is not None:
            self.notifier.watchdog()
        frame = self.source.read_latest()
        state = self.source.state
        if state != self.camera_state:
            self._camera_changed(state)
        if frame is not None:
            self.process(frame)
            return
        if state == "ended":
            self.stopped = True
            return
        now = self.clock()
        if state != "ok":
            self._tick_without_camera(self.now())
        if self.health is not None:
            self.health.tick(now)
        self.source.wait(self.wait_s)

    def now(self) -> float:
        """The kiosk's time: the camera's (a video's media time), carried on by the clock between frames."""
        return self.clock() + self._timeline

    def stop(self) -> None:
        """Ask the loop to finish after the current step (signal handlers call this)."""
        self.stopped = True

    def process(self, frame) -> tuple[int, int]:
        """Detect, choose the viewer, map to a cell, show it; returns the cell shown."""
        clock = self.clock
        start = clock()
        self._timeline = frame.t - frame.grab_time
        if self.camera_state == "frozen":
            faces = ()  # a frozen picture shows who was there, not who is there
        else:
            faces = self.detector.detect(frame.image)
        detected = clock()
        height, width = frame.image.shape[:2]
        size = (width, height)
        state = self.tracker.update(faces, frame.t, size)
        self._frame_size = size
        look = self._look(frame.t, state)
        selected = clock()

        rec = self.record
        rec.frame, rec.t, rec.faces, rec.cell = frame.index, frame.t, len(faces), look.cell
        rec.blink, rec.act = (look.closure if look.blink is not None else None), look.act
        rec.eye = state.face.eye_mid if state.face is not None else None
        rec.mirror = self.mapping.mirror
        ms = rec.stage_ms
        ms["capture"] = (start - frame.grab_time) * 1000.0
        ms["detect"] = (detected - start) * 1000.0
        ms["select"] = (selected - detected) * 1000.0
        self._fps.tick(frame.t)
        if self.renderer.debug:
            self.renderer.set_debug(self._debug_info(frame, faces, state, look))
        self.renderer.show(look.cell, look.blink)
        shown = clock()
        self._shown = look
        self.frames += 1
        ms["render"] = (shown - selected) * 1000.0
        ms["total"] = (shown - frame.grab_time) * 1000.0
        for observer in self.observers:
            observer(rec)
        if self.health is not None:
            self.health.frame(ms["total"], shown)
        return look.cell

    # ------------------------------------------------------------------ helpers

    def _look(self, now: float, state) -> Look:
        """The cell the viewer logic wants, then what life makes of it (saccades, blinks, glances)."""
        target = None
        if state.position is not None:
            target = self.mapping.target(state.position, state.eye_distance, self._frame_size)
        cell = self.selector.update(target, state.idle)
        if self.life is None:
            return Look(cell)
        resting = state.idle and cell == self.selector.neutral
        return self.life.update(now, cell, state.position is not None, resting)

    def _tick_without_camera(self, now: float) -> None:
        """No frames: nobody can be seen, so idle back to neutral (life goes on); redraw only on change."""
        state = self.tracker.update((), now)
        look = self._look(now, state)
        if self._shown is None or (look.cell, look.blink) != (self._shown.cell, self._shown.blink):
            self.renderer.show(look.cell, look.blink)
            self._shown = look

    def _camera_changed(self, state: str) -> None:
        """Tell systemd and put a message on screen, once per change of camera state.

        The camera logs its own state changes (with the reason), so the kiosk's line is debug only.
        """
        previous, self.camera_state = self.camera_state, state
        text = STATUS_TEXT.get(state, f"camera {state}")
        log.debug("kiosk: camera %s (was %s), on screen: %s", state, previous, text)
        if text != self._status:
            self._status = text
            self.renderer.set_status(text)
        if self.notifier is not None:
            self.notifier.status(text or f"camera {state}")
        if self.health is not None:
            self.health.set_state(state)

    def _act(self, action: str) -> None:
        """Handle one window action (the renderer itself toggles fullscreen and the overlay)."""
        if action == "quit":
            log.info("quit requested")
            self.stopped = True
        elif action == "mirror":
            self.mapping.mirror = not self.mapping.mirror
            log.info("mirror %s", "on" if self.mapping.mirror else "off")

    def _debug_info(self, frame, faces, state, look: Look):
        """The overlay's data (render and total are the previous frame's); built only while it is on."""
        from monalisa.kiosk.overlay import DebugInfo

        life = " ".join(filter(None, [look.act, f"blink {look.closure:.1f}" if look.blink is not None else ""]))
        return DebugInfo(fps=self._fps.fps, stage_ms=dict(self.record.stage_ms), camera_image=frame.image,
                         faces=list(faces), viewer=state.face, cell=look.cell, mapping=self.mapping.name,
                         mirror=self.mapping.mirror, life=life)


class TraceWriter:
    """One JSON line per processed camera frame, through a buffered file flushed at close.

    Keys: ``frame`` (camera frame number from 0), ``t`` (the frame's time in seconds since the
    first traced frame's: capture time for a camera, media time for a video file, paced or not),
    ``faces`` (count), ``eye`` ([x, y] of the chosen viewer's eye midpoint, normalized, x mirrored
    when mirror is on; null when nobody), ``cell`` ([row, column] shown), ``blink`` (closure of
    the blink stage shown, null when the eyes are open), ``act`` ("glance" or "look_away" while the
    portrait does one, else null), ``latency_ms`` (grab to display updated).
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.file = open(self.path, "w", encoding="utf-8", buffering=1 << 16)
        self._t0: float | None = None

    def __call__(self, rec: FrameRecord) -> None:
        if self._t0 is None:
            self._t0 = rec.t
        eye = None
        if rec.eye is not None:
            x, y = rec.eye
            eye = [round(1.0 - x if rec.mirror else x, 5), round(y, 5)]
        line = {"frame": rec.frame, "t": round(rec.t - self._t0, 6), "faces": rec.faces, "eye": eye,
                "cell": [rec.cell[0], rec.cell[1]], "blink": rec.blink, "act": rec.act,
                "latency_ms": round(rec.stage_ms["total"], 3)}
        self.file.write(json.dumps(line) + "\n")

    def close(self) -> None:
        self.file.close()


def build_parts(config: Config, pool: Pool) -> tuple[ViewerTracker, GazeMapping, CellSelector, Life]:
    """The pure-Python middle of the loop for this pool: tracker, mapping, selector, life."""
    m = pool.manifest
    tracker = ViewerTracker(config.viewer)
    mapping = make_mapping(config.gaze, m.yaws, m.pitches)
    neutral = pool.neutral_cell()
    selector = CellSelector(pool.rows, pool.cols, neutral, config.gaze.hysteresis)
    life = Life(config.life, m.yaws, m.pitches, neutral, pool.blink_stages)
    return tracker, mapping, selector, life


@contextlib.contextmanager
def open_kiosk(config: Config, pool: Pool, source=None, *, headless: bool = False,
               **kiosk_args: Any) -> Iterator[Kiosk]:
    """A Kiosk with the real parts (BlazeFace, the pygame renderer); all of them closed on exit, whatever happens.

    ``source`` (default: the configured camera) is owned from here on: closed on exit too. It is
    not started, so callers can warm up first. ``kiosk_args`` go to Kiosk (observers, health, ...).
    """
    from monalisa.kiosk.camera import open_source
    from monalisa.kiosk.detector import BlazeFaceDetector
    from monalisa.kiosk.render import SCREEN_HINT, Renderer

    with contextlib.ExitStack() as parts:  # everything opened here is closed, in reverse
        if source is None:
            source = open_source(config.camera)
        parts.enter_context(contextlib.closing(source))
        detector = parts.enter_context(contextlib.closing(BlazeFaceDetector(config.detector)))
        hint = f"{SCREEN_HINT}; `run --headless` runs without a window"
        renderer = parts.enter_context(contextlib.closing(Renderer(pool, config.render, headless=headless,
                                                                   no_screen_hint=hint)))
        tracker, mapping, selector, life = build_parts(config, pool)
        yield Kiosk(source, detector, tracker, mapping, selector, renderer, life=life, **kiosk_args)


def run_kiosk(config: Config, options: KioskOptions) -> int:
    """Run the kiosk until quit, a limit, or the end of a non-looping video; returns 0."""
    from monalisa.ops.health import HealthMonitor
    from monalisa.ops.service import SystemdNotifier

    with contextlib.ExitStack() as parts:  # everything opened here is closed, in reverse, whatever happens
        notifier = SystemdNotifier.from_env()
        parts.callback(notifier.close)
        parts.callback(notifier.stopping)  # runs first: callbacks unwind in reverse
        observers = []
        if options.trace is not None:
            observers.append(parts.enter_context(contextlib.closing(TraceWriter(options.trace))))
        kiosk = parts.enter_context(open_kiosk(
            config, options.pool, headless=options.headless, observers=observers,
            health=HealthMonitor(config.log.health_interval_s), notifier=notifier))
        log.info("kiosk: %s mapping, %dx%d pool, camera %s", kiosk.mapping.name, options.pool.rows,
                 options.pool.cols, kiosk.source.describe())
        parts.enter_context(StopOnSigterm(kiosk))
        kiosk.source.start()
        return kiosk.run(options.max_seconds, options.max_frames)


class StopOnSigterm:
    """While active, SIGTERM (systemd stop) ends the loop cleanly instead of killing it."""

    def __init__(self, kiosk: Kiosk):
        self.kiosk = kiosk
        self.installed = False
        self.previous: Any = None

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            self.previous = signal.signal(signal.SIGTERM, lambda signum, frame: self.kiosk.stop())
            self.installed = True

    def __exit__(self, *exc) -> None:
        if self.installed:
            signal.signal(signal.SIGTERM, self.previous if self.previous is not None else signal.SIG_DFL)
