"""The webcam source: a camera read by its own thread, newest frame only, reopened after faults."""

from __future__ import annotations

import logging
import math
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from monalisa.config import CameraConfig
from monalisa.errors import ConfigError
from monalisa.kiosk.camera import ENDED, FROZEN, LOST, OK, STALLED, STARTING, ClosingSource, Frame, parse_camera_target

log = logging.getLogger(__name__)

RETRY_POLL_S = 0.1  # while waiting to reopen, how often to look for the device node reappearing
OPENCV_LOG_ERROR = 2  # cv2.setLogLevel value that shows errors but not warnings
WARMUP_S = 3.0  # failed reads right after opening are retried this long (some cameras start slowly)
UNIFORM_SPAN = 8  # a frame whose sampled pixels span fewer grey levels than this is blank (a dark room)
UNIFORM_STRIDE = 8  # uniformity is judged on every 8th pixel of every 8th row


class Capture(Protocol):
    """The part of cv2.VideoCapture the webcam source uses (tests pass fakes)."""

    def isOpened(self) -> bool: ...
    def read(self) -> tuple[bool, np.ndarray | None]: ...
    def set(self, prop: int, value: float) -> bool: ...
    def get(self, prop: int) -> float: ...
    def release(self) -> None: ...


CaptureFactory = Callable[["int | str"], "Capture | None"]


def video_device_indices() -> list[int]:
    """Numbers N of the /dev/videoN nodes present now, sorted."""
    indices = []
    for path in Path("/dev").glob("video*"):
        match = re.fullmatch(r"video(\d+)", path.name)
        if match:
            indices.append(int(match.group(1)))
    return sorted(indices)


def device_node(target: int | str) -> str:
    """The device path a camera target means now (a /dev/v4l/by-id link is resolved each call)."""
    if isinstance(target, int):
        return f"/dev/video{target}"
    return os.path.realpath(target)


def device_present(target: int | str) -> bool:
    """Whether the camera's device node exists (always True off Linux, where there is no /dev to look at)."""
    if not sys.platform.startswith("linux"):
        return True
    return os.path.exists(device_node(target))


def limit_v4l_select_timeout(seconds: float) -> None:
    """Make OpenCV's V4L2 backend give up on a silent camera after ~seconds instead of 10 s.

    OpenCV's V4L2 backend ignores CAP_PROP_READ_TIMEOUT_MSEC (FFmpeg/GStreamer only); it waits
    in select() for OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT whole seconds (default 10), read once per
    process on the first wait. A value the user already exported wins.
    """
    os.environ.setdefault("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", str(max(1, math.ceil(seconds))))


def open_opencv_camera(target: int | str) -> cv2.VideoCapture | None:
    """Open a camera with OpenCV (V4L2 on Linux); None when its device node is absent.

    OpenCV's own warning about a failed open is muted: WebcamSource logs the failure once,
    whereas OpenCV would print it at every retry for as long as the camera stays broken.
    """
    if not device_present(target):
        return None
    opencv_level = cv2.getLogLevel()
    cv2.setLogLevel(min(opencv_level, OPENCV_LOG_ERROR))
    try:
        if sys.platform.startswith("linux"):
            return cv2.VideoCapture(device_node(target) if isinstance(target, str) else target, cv2.CAP_V4L2)
        return cv2.VideoCapture(target)
    finally:
        cv2.setLogLevel(opencv_level)


def same_image(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two camera images are bit-identical, without allocating a per-pixel result."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    return cv2.norm(a, b, cv2.NORM_INF) == 0


def is_uniform(image: np.ndarray) -> bool:
    """Whether an image is (nearly) one flat colour, judged on a strided sample (a view, not a copy).

    A dark gallery at night can give bit-identical black frames; those are blank, not frozen.
    """
    sample = image[::UNIFORM_STRIDE, ::UNIFORM_STRIDE]
    return int(sample.max()) - int(sample.min()) < UNIFORM_SPAN


class WebcamSource(ClosingSource):
    """A camera read by a daemon thread that keeps only the newest frame and reopens after faults.

    Faults (open fails, read fails or raises, identical frames for frozen_after_s) release the
    camera and reopen it with exponential backoff from reopen_min_s to reopen_max_s; when the
    device node reappears during a wait, it is reopened at once. Identical frames that are
    (nearly) uniform, like black frames in a dark room, are not a fault. No frame for
    read_timeout_s reads as "stalled". Each change of state is logged once.
    """

    def __init__(self, config: CameraConfig, capture_factory: CaptureFactory | None = None,
                 present: Callable[[int | str], bool] = device_present,
                 list_devices: Callable[[], list[int]] = video_device_indices):
        target = parse_camera_target(config.source)
        if target is None:
            raise ConfigError(f"config: [camera] source {config.source!r} is not a camera index or /dev path")
        if config.fourcc and len(config.fourcc) != 4:
            raise ConfigError(f"config: [camera] fourcc must be 4 characters like 'MJPG'"
                              f" or empty, got {config.fourcc!r}")
        self.config = config
        self.target = target
        self._factory = capture_factory or open_opencv_camera
        self._present = present
        self._list_devices = list_devices
        self._try_other_indices = config.try_other_indices and isinstance(target, int)
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._latest: Frame | None = None
        self._returned_index = -1
        self._next_index = 0
        self._worker_state = STARTING
        self._reason = ""
        self._last_frame_t = 0.0
        self._reported_state = STARTING
        self._device = device_node(target)  # the node currently (or last) open

    # -- the consumer's side ----------------------------------------------------------------

    def start(self) -> None:
        """Start the capture thread (idempotent)."""
        if self._thread is not None:
            return
        if self._factory is open_opencv_camera:
            limit_v4l_select_timeout(self.config.read_timeout_s)
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.target}", daemon=True)
        self._thread.start()

    @property
    def state(self) -> str:
        """The current state; "stalled" when the worker is ok but no frame came for read_timeout_s."""
        return self._note_state()

    def read_latest(self) -> Frame | None:
        """The newest frame not returned before, else None (never blocks on the camera)."""
        self._note_state()
        with self._changed:
            frame = self._latest
            if frame is None or frame.index == self._returned_index:
                return None
            self._returned_index = frame.index
            return frame

    def wait(self, timeout: float) -> bool:
        """Block until a frame newer than the last returned one exists, or timeout; True if so."""
        with self._changed:
            return self._changed.wait_for(
                lambda: self._stop.is_set()
                or (self._latest is not None and self._latest.index != self._returned_index),
                timeout) and not self._stop.is_set()

    def close(self) -> None:
        """Stop the thread; it releases the camera (a read blocked in the driver finishes first)."""
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
            if self._thread is None:  # never started (the kiosk failed to start): nothing to report
                self._worker_state = self._reported_state = ENDED
                return
        self._thread.join(timeout=self.config.read_timeout_s + 1.0)
        if self._thread.is_alive():
            log.warning("camera %s: capture thread still blocked in the driver; it releases the camera when it returns",
                        self.target)
        self._set_worker_state(ENDED, "closed")

    def describe(self) -> str:
        """E.g. 'webcam 0 (/dev/video0) 640x480@30 MJPG: ok'."""
        cfg = self.config
        return (f"webcam {self.target} ({self._device}) {cfg.width}x{cfg.height}@{cfg.fps}"
                f"{' ' + cfg.fourcc if cfg.fourcc else ''}: {self.state}")

    # -- state and logging ------------------------------------------------------------------

    def _set_worker_state(self, state: str, reason: str = "") -> None:
        """Record the capture thread's state; once closed, only ENDED is accepted."""
        with self._changed:
            if self._stop.is_set() and state != ENDED:
                return  # closed: a read that was blocked in the driver must not revive the state
            self._worker_state, self._reason = state, reason
            self._changed.notify_all()
        self._note_state()

    def _note_state(self) -> str:
        """Work out the state callers see, and log it when it differs from the last one logged."""
        with self._changed:
            state, reason = self._worker_state, self._reason
            silent_for = time.monotonic() - self._last_frame_t
            if state == OK and silent_for > self.config.read_timeout_s:
                state, reason = STALLED, f"no frame for {silent_for:.1f} s"
            if state == self._reported_state:
                return state
            self._reported_state = state
        level = logging.INFO if state in (OK, ENDED, STARTING) else logging.WARNING
        log.log(level, "camera %s: %s%s", self.target, state, f" ({reason})" if reason else "")
        return state

    # -- the capture thread -----------------------------------------------------------------

    def _run(self) -> None:
        """Open, read until a fault, release, wait with backoff, repeat until closed."""
        delay = self.config.reopen_min_s
        stale: np.ndarray | None = None  # the last image of a frozen camera, not delivered again
        last_crash = ""
        while not self._stop.is_set():
            try:
                capture = self._open()
                if capture is None:
                    healthy_s = 0.0
                else:
                    try:
                        healthy_s, stale = self._pump(capture, stale)
                    finally:
                        capture.release()
            except (cv2.error, OSError) as exc:
                healthy_s = 0.0
                self._set_worker_state(LOST, f"camera error: {exc}".strip())
            except Exception as exc:  # a bug must not silently kill the camera for days; log it and retry
                healthy_s, delay = 0.0, self.config.reopen_max_s
                crash = f"capture thread failed: {type(exc).__name__}: {exc}"
                if crash != last_crash:  # the traceback once per distinct failure, not every retry
                    log.exception("camera %s: %s; retrying", self.target, crash)
                    last_crash = crash
                self._set_worker_state(LOST, crash)
            if self._stop.is_set():
                break
            if healthy_s >= self.config.reopen_max_s:
                delay = self.config.reopen_min_s  # it had recovered: start the backoff over
            self._wait_before_retry(delay)
            delay = min(delay * 2, self.config.reopen_max_s)

    def _candidates(self) -> list[int | str]:
        """Devices to try, configured one first; an index camera may come back under another index."""
        if not self._try_other_indices:
            return [self.target]
        return [self.target] + [i for i in self._list_devices() if i != self.target]

    def _open(self) -> Capture | None:
        """Open the first candidate device that opens; on failure set state lost and return None."""
        for target in self._candidates():
            capture = self._factory(target)
            if capture is None:
                continue
            if not capture.isOpened():
                capture.release()
                continue
            self._configure(capture)
            self._device = device_node(target)
            return capture
        reason = "device missing" if not self._present(self.target) else "open failed"
        self._set_worker_state(LOST, f"{reason}"
                                     f"; retrying every {self.config.reopen_min_s:g}-{self.config.reopen_max_s:g} s")
        return None

    def _configure(self, capture: Capture) -> None:
        """Ask for the configured pixel format, size and rate, and a one-frame driver buffer."""
        cfg = self.config
        if cfg.fourcc:
            capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*cfg.fourcc))
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
        capture.set(cv2.CAP_PROP_FPS, cfg.fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def _pump(self, capture: Capture, stale: np.ndarray | None) -> tuple[float, np.ndarray | None]:
        """Read frames until a fault or close; return how long it was healthy and any frozen image."""
        opened_at = time.monotonic()
        first_ok_t: float | None = None
        previous: np.ndarray | None = None
        same_since = 0.0
        while not self._stop.is_set():
            ok, bgr = capture.read()
            now = time.monotonic()
            if not ok or bgr is None:
                if first_ok_t is None and now - opened_at < WARMUP_S:
                    self._stop.wait(0.05)  # not a busy loop if the device fails at once
                    continue
                self._set_worker_state(LOST, "read failed")
                return (now - first_ok_t if first_ok_t else 0.0), stale
            if stale is not None and same_image(bgr, stale):
                if now - opened_at >= self.config.frozen_after_s:
                    return 0.0, stale  # still the same picture after reopening: reopen again (backoff grows)
                continue
            stale = None
            if previous is not None and same_image(bgr, previous) and not is_uniform(bgr):
                if now - same_since >= self.config.frozen_after_s:
                    self._set_worker_state(FROZEN, f"identical frames for {now - same_since:.1f} s")
                    return 0.0, bgr
            else:
                same_since = now  # a new picture, or a blank one (a dark room is not a frozen camera)
            previous = bgr
            first_ok_t = first_ok_t or now
            self._publish(bgr, now)
        return 0.0, stale

    def _publish(self, bgr: np.ndarray, t: float) -> None:
        """Make this frame the newest one (older unread frames are dropped)."""
        rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB if bgr.ndim == 2 else cv2.COLOR_BGR2RGB)
        with self._changed:
            if self._stop.is_set():
                return
            self._latest = Frame(rgb, self._next_index, t)
            self._next_index += 1
            self._last_frame_t = t
            became_ok = self._worker_state != OK
            if became_ok:
                h, w = rgb.shape[:2]
                self._worker_state, self._reason = OK, f"{self._device}, {w}x{h}"
            self._changed.notify_all()
        if became_ok:
            self._note_state()

    def _wait_before_retry(self, delay: float) -> None:
        """Sleep `delay`, but retry at once if the device node appears meanwhile (a replug)."""
        deadline = time.monotonic() + delay
        was_present = self._any_present()
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            if self._stop.wait(min(RETRY_POLL_S, remaining)):
                return
            if not was_present and self._any_present():
                return

    def _any_present(self) -> bool:
        if self._present(self.target):
            return True
        return self._try_other_indices and any(i != self.target for i in self._list_devices())


@dataclass(frozen=True)
class CameraInfo:
    """A video device found by list_cameras (for `monalisa doctor`)."""

    path: str
    name: str
    width: int
    height: int
    fps: float
    readable: bool  # opened and delivered one frame


def list_cameras(capture_factory: CaptureFactory = open_opencv_camera) -> list[CameraInfo]:
    """Every /dev/videoN with its driver name, opened briefly to read one frame."""
    if capture_factory is open_opencv_camera:
        limit_v4l_select_timeout(2.0)
    cameras = []
    for index in video_device_indices():
        path = f"/dev/video{index}"
        name_file = Path(f"/sys/class/video4linux/video{index}/name")
        name = name_file.read_text(encoding="utf-8", errors="replace").strip() if name_file.is_file() else ""
        width = height = 0
        fps, readable = 0.0, False
        capture = capture_factory(index)
        if capture is not None:
            try:
                if capture.isOpened():
                    ok, image = capture.read()
                    readable = bool(ok) and image is not None
                    width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
                    height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
                    fps = float(capture.get(cv2.CAP_PROP_FPS))
            except cv2.error as exc:
                log.info("camera %s: %s", path, exc)
            finally:
                capture.release()
        cameras.append(CameraInfo(path, name, width, height, fps, readable))
    return cameras
