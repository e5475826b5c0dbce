"""A video file as a camera: paced at its own fps, or every frame as fast as asked."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from monalisa.errors import CameraError
from monalisa.kiosk.camera import ENDED, OK, STARTING, ClosingSource, Frame

log = logging.getLogger(__name__)


IMAGE_MAGIC = {b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF8": "a GIF image",
               b"BM": "a BMP image", b"II*\x00": "a TIFF image", b"MM\x00*": "a TIFF image"}


def sniff_non_video(path: Path) -> str | None:
    """What the file obviously is when it is not a video (an image, text), else None.

    FFmpeg happily opens still images and even text files (as a terminal animation),
    which would make the kiosk play a few frames of nonsense and stop.
    """
    with open(path, "rb") as fh:
        head = fh.read(4096)
    for magic, kind in IMAGE_MAGIC.items():
        if head.startswith(magic):
            return kind
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "a WebP image"
    if head and b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return "a text file"
    return None


class VideoFileSource(ClosingSource):
    """A video file as a camera, on its own clock: every frame carries its media time.

    Frame.t is start() time + the frame's media time (its timestamp in the file, continued across
    loops), whether paced or not, so the kiosk's timers, filters and viewer switching see the
    video's real time and a fast replay does exactly what the kiosk does in real time. Paced, a
    frame is released when its media time comes (frames the caller was too slow for are skipped
    with grab() only, their indices too, like a camera's dropped frames). Not paced, every frame
    is returned in order at once, with Frame.grabbed its decode time for latency figures.
    """

    def __init__(self, path: str | Path, pace: bool = True, loop: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self.pace, self.loop = pace, loop
        self._clock = clock
        if self.path.is_dir():
            raise CameraError(f"{self.path} is a directory; the camera must be a camera index (0), "
                              f"a /dev/video path or a video file")
        if not self.path.is_file():
            raise CameraError(f"video file not found: {self.path}")
        kind = sniff_non_video(self.path)
        if kind:
            raise CameraError(f"not a readable video file: {self.path} is {kind}")
        self._capture = self._open_capture()
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and math.isfinite(fps) and 0 < fps < 1000 else 30.0
        self._offset = 0.0          # media time at which the current pass through the file began
        self._ahead_t = -math.inf   # media time of the grabbed-ahead frame (timeline seconds)
        self._file_frames = 0       # frames grabbed since the file was last (re)opened
        self._grabbed = self._grab()  # the next frame, grabbed ahead so a file without frames fails here
        if not self._grabbed:
            self._capture.release()
            raise CameraError(f"video file has no readable frames: {self.path}")
        self._next_index = 0
        self._t0: float | None = None
        self._state = STARTING

    def _open_capture(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"not a readable video file: {self.path}")
        return capture

    def _grab(self) -> bool:
        """Grab the next frame of the file and note its media time (its timestamp, else 1/fps after the last)."""
        if not self._capture.grab():
            return False
        ms = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        after = self._ahead_t + 1.0 / self.fps if self._file_frames else self._offset
        t = self._offset + ms / 1000.0 if math.isfinite(ms) and ms >= 0 else after
        if self._file_frames and t <= self._ahead_t:   # no usable timestamps: even spacing
            t = after
        self._ahead_t = t
        self._file_frames += 1
        return True

    def _ready(self) -> bool:
        """Whether a next frame is grabbed, rewinding a looping file at its end; ends the source if not."""
        if not self._grabbed and self.loop and self._file_frames > 0:
            self._capture.release()
            self._capture = self._open_capture()
            self._offset = self._ahead_t + 1.0 / self.fps   # the next pass goes on from where this one ended
            self._file_frames = 0
            self._grabbed = self._grab()
        if not self._grabbed:
            self._end()
        return self._grabbed

    def _skip(self) -> bool:
        """Pass over the next frame without converting it to an image; False when the file has ended."""
        if not self._ready():
            return False
        self._next_index += 1
        self._grabbed = self._grab()
        return True

    def _take(self) -> tuple[np.ndarray, float] | None:
        """The next frame as a BGR image and its media time (rewinding when looping); None at the end.

        A frame that was grabbed but cannot be retrieved ends the file, as a failed read() did.
        """
        while self._ready():
            ok, bgr = self._capture.retrieve()
            if ok and bgr is not None:
                media_t = self._ahead_t
                self._grabbed = self._grab()
                return bgr, media_t
            self._grabbed = False  # unreadable: end here (or rewind when looping and frames were read)
        return None

    def _end(self) -> None:
        if self._state != ENDED:
            self._state = ENDED
            log.info("video %s: ended after %d frames", self.path.name, self._next_index)

    @property
    def state(self) -> str:
        """"starting" before start(), "ok" while frames remain, "ended" after the last one."""
        return self._state

    def start(self) -> None:
        """Start the timeline (idempotent)."""
        if self._t0 is None:
            self._t0 = self._clock()
            self._state = OK

    def read_latest(self) -> Frame | None:
        """Paced: the newest frame due now, if not returned yet. Not paced: simply the next frame."""
        if self._t0 is None or self._state == ENDED:
            return None
        if self.pace:
            elapsed = self._clock() - self._t0
            if not self._ready() or self._ahead_t > elapsed:
                return None
            while self._ahead_t + 1.0 / self.fps <= elapsed:  # a later frame is due too: drop this one
                if not self._skip() or not self._ready():
                    return None
        taken = self._take()
        if taken is None:
            return None
        bgr, media_t = taken
        frame = Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self._next_index, self._t0 + media_t,
                      grabbed=None if self.pace else self._clock())
        self._next_index += 1
        return frame

    def wait(self, timeout: float) -> bool:
        """Sleep until the next frame is due (at most timeout); True if one is ready."""
        if self._t0 is None or self._state == ENDED:
            time.sleep(max(0.0, timeout))
            return False
        if not self.pace:
            return True
        pause = self._t0 + self._ahead_t - self._clock()
        if pause > timeout:
            time.sleep(max(0.0, timeout))
            return False
        if pause > 0:
            time.sleep(pause)
        return True

    def close(self) -> None:
        """Release the file."""
        self._capture.release()
        self._end()

    def describe(self) -> str:
        return (f"video {self.path} at {self.fps:g} fps, {'paced' if self.pace else 'not paced'}"
                f"{', looping' if self.loop else ''}: {self.state}")
