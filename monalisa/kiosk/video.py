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
    """A video file as a camera: paced at its own fps (newest due frame), or every frame as fast as asked.

    Reading happens in the caller's thread inside read_latest: with pace=True the frames the
    caller was too slow for are skipped (their indices are skipped too, like a camera's
    dropped frames) with grab() only, so they are never converted to images; with pace=False
    every frame is returned in order. Frame.t is the frame's place on the timeline (paced) or
    its decode time (not paced).
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
        self._grabbed = self._capture.grab()  # the next frame, grabbed ahead so a file without frames fails here
        if not self._grabbed:
            self._capture.release()
            raise CameraError(f"video file has no readable frames: {self.path}")
        self._next_index = 0
        self._t0: float | None = None
        self._state = STARTING
        self._file_frames = 0  # frames decoded since the file was last (re)opened

    def _open_capture(self) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(str(self.path), cv2.CAP_FFMPEG)
        if not capture.isOpened():
            capture.release()
            raise CameraError(f"not a readable video file: {self.path}")
        return capture

    def _ready(self) -> bool:
        """Whether a next frame is grabbed, rewinding a looping file at its end; ends the source if not."""
        if not self._grabbed and self.loop and self._file_frames > 0:
            self._capture.release()
            self._capture = self._open_capture()
            self._file_frames = 0
            self._grabbed = self._capture.grab()
        if not self._grabbed:
            self._end()
        return self._grabbed

    def _skip(self) -> bool:
        """Pass over the next frame without converting it to an image; False when the file has ended."""
        if not self._ready():
            return False
        self._file_frames += 1
        self._grabbed = self._capture.grab()
        return True

    def _take(self) -> np.ndarray | None:
        """The next frame as a BGR image (rewinding when looping); None when the file has ended.

        A frame that was grabbed but cannot be retrieved ends the file, as a failed read() did.
        """
        while self._ready():
            ok, bgr = self._capture.retrieve()
            if ok and bgr is not None:
                self._file_frames += 1
                self._grabbed = self._capture.grab()
                return bgr
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
        """Paced: the frame due now if not returned yet. Not paced: simply the next frame."""
        if self._t0 is None or self._state == ENDED:
            return None
        if not self.pace:
            image = self._take()
            if image is None:
                return None
            return self._frame(image, self._clock())
        due = int((self._clock() - self._t0) * self.fps)
        if due < self._next_index:
            return None
        while self._next_index < due:  # frames the caller was too slow for: dropped, like a camera
            if not self._skip():
                return None
            self._next_index += 1
        image = self._take()
        if image is None:
            return None
        return self._frame(image, self._t0 + self._next_index / self.fps)

    def _frame(self, bgr: np.ndarray, t: float) -> Frame:
        frame = Frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), self._next_index, t)
        self._next_index += 1
        return frame

    def wait(self, timeout: float) -> bool:
        """Sleep until the next frame is due (at most timeout); True if one is ready."""
        if self._t0 is None or self._state == ENDED:
            time.sleep(max(0.0, timeout))
            return False
        if not self.pace:
            return True
        due_at = self._t0 + self._next_index / self.fps
        pause = due_at - self._clock()
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
