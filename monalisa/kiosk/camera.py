"""Frame sources for the kiosk: what every source hands out, and the one rule for which source to open.

Every source hands out `Frame`s (RGB uint8, a running index, capture time) through the small
`FrameSource` protocol, so the loop cannot tell a webcam (`monalisa.kiosk.webcam`) from a file
(`monalisa.kiosk.video`) or a test fake (`monalisa.testing.faults`: image sequences and fault injection).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from monalisa.config import CameraConfig
from monalisa.errors import CameraError

STARTING, OK, STALLED, FROZEN, LOST, ENDED = "starting", "ok", "stalled", "frozen", "lost", "ended"
STATES = (STARTING, OK, STALLED, FROZEN, LOST, ENDED)


@dataclass(frozen=True, eq=False)
class Frame:
    """One camera image (RGB uint8 HxWx3), its number since the source was created, and its time.

    ``t`` is the kiosk's time for the frame: time.monotonic() at the grab for a camera, the media
    time (on a timeline started at start()) for a video file. ``grabbed`` is the monotonic time of
    the grab when it differs from ``t`` (an unpaced video), so latencies are still measured.
    """

    image: np.ndarray
    index: int
    t: float
    grabbed: float | None = None

    @property
    def grab_time(self) -> float:
        """time.monotonic() when the frame was grabbed (latencies count from here)."""
        return self.t if self.grabbed is None else self.grabbed


class FrameSource(Protocol):
    """What the kiosk loop reads frames from: a webcam, a video file or a fake."""

    @property
    def state(self) -> str:
        """One of STATES: "starting", "ok", "stalled", "frozen", "lost", "ended"."""
        ...

    def start(self) -> None:
        """Begin delivering frames (before this, read_latest returns None)."""
        ...

    def read_latest(self) -> Frame | None:
        """The newest frame not returned before, else None; never waits on the camera."""
        ...

    def wait(self, timeout: float) -> bool:
        """Block until a new frame is available or timeout seconds pass; True if there is one."""
        ...

    def close(self) -> None:
        """Stop and free the device or file; safe to call twice."""
        ...

    def describe(self) -> str:
        """A short human description for logs."""
        ...


class ClosingSource:
    """Base of the sources: `with source:` starts it and closes it at the end."""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def parse_camera_target(source: str) -> int | str | None:
    """"0" -> camera index 0, "/dev/..." -> that device path, anything else -> None (a file)."""
    text = source.strip()
    if text.isdigit():
        return int(text)
    if text.startswith("/dev/"):
        return text
    return None


def open_source(config: CameraConfig, capture_factory=None) -> FrameSource:
    """The source config.source names: "0" a camera index, "/dev/..." a camera, else a video file.

    A missing camera does not raise (it stays "lost" and retries); a missing file is a CameraError.
    """
    if parse_camera_target(config.source) is not None:
        from monalisa.kiosk.webcam import WebcamSource

        return WebcamSource(config, capture_factory=capture_factory)
    if not config.source.strip():
        raise CameraError("no camera source configured ([camera] source is empty)")
    from monalisa.kiosk.video import VideoFileSource

    return VideoFileSource(config.source, pace=config.pace, loop=config.loop)
