"""Frame sources for tests: image sequences and a camera that fails on schedule.

`FaultInjectingSource` wraps any source and unplugs, stalls or freezes it at given frame numbers,
so the kiosk's handling of a failing webcam can be exercised without one (`parse_faults` reads
schedules like "unplug@90+60,freeze@300+150").
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from monalisa.errors import ConfigError
from monalisa.kiosk.camera import ENDED, FROZEN, LOST, OK, STALLED, STARTING, ClosingSource, Frame, FrameSource

log = logging.getLogger(__name__)


class SequenceSource(ClosingSource):
    """Frames from an iterable of RGB images, one per read_latest call (tests and generated input)."""

    def __init__(self, images: Iterable[np.ndarray], clock: Callable[[], float] = time.monotonic):
        self._images = iter(images)
        self._clock = clock
        self._next_index = 0
        self._state = STARTING

    @property
    def state(self) -> str:
        return self._state

    def start(self) -> None:
        if self._state == STARTING:
            self._state = OK

    def read_latest(self) -> Frame | None:
        if self._state != OK:
            return None
        image = next(self._images, None)
        if image is None:
            self._state = ENDED
            return None
        frame = Frame(image, self._next_index, self._clock())
        self._next_index += 1
        return frame

    def wait(self, timeout: float) -> bool:
        return self._state == OK

    def close(self) -> None:
        self._state = ENDED

    def describe(self) -> str:
        return f"image sequence: {self._state}"


FAULT_STATES = {"unplug": LOST, "read_fail": LOST, "stall": STALLED, "freeze": FROZEN}


@dataclass(frozen=True)
class Fault:
    """A fault covering the inner source's frames start .. start+frames-1.

    unplug / read_fail: the frames are swallowed and the state is "lost"; stall: swallowed,
    "stalled"; freeze: delivered, but showing the last image before the fault, "frozen".
    """

    kind: str
    start: int
    frames: int

    def __post_init__(self):
        if self.kind not in FAULT_STATES:
            raise ValueError(f"unknown fault {self.kind!r}; known: {', '.join(FAULT_STATES)}")

    def covers(self, index: int) -> bool:
        return self.start <= index < self.start + self.frames


def parse_faults(text: str) -> list[Fault]:
    """Parse a schedule like "unplug@90+60,freeze@300+150" (kind@first_frame+frame_count)."""
    faults = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        match = re.fullmatch(r"(\w+)@(\d+)\+(\d+)", item)
        if not match or match.group(1) not in FAULT_STATES:
            raise ConfigError(f"fault schedule: {item!r} is not kind@frame+count with kind one of "
                              f"{', '.join(FAULT_STATES)}")
        faults.append(Fault(match.group(1), int(match.group(2)), int(match.group(3))))
    return faults


class FaultInjectingSource(ClosingSource):
    """Wraps a source (or an iterable of RGB images) and injects faults by inner frame index.

    Deterministic: the schedule is in frame numbers of the inner source, so a paced video file
    at 30 fps unplugged for 90 frames is "lost" for 3 s.
    """

    def __init__(self, inner: FrameSource | Iterable[np.ndarray], schedule: Iterable[Fault]):
        self.inner: FrameSource = inner if hasattr(inner, "read_latest") else SequenceSource(inner)
        self.schedule = sorted(schedule, key=lambda fault: fault.start)
        self._state = STARTING
        self._last_image: np.ndarray | None = None

    @property
    def state(self) -> str:
        inner = self.inner.state
        return inner if inner in (STARTING, ENDED) else self._state

    def start(self) -> None:
        self.inner.start()

    def read_latest(self) -> Frame | None:
        """The inner source's frame, swallowed or frozen when a fault covers its index."""
        frame = self.inner.read_latest()
        if frame is None:
            return None
        fault = next((f for f in self.schedule if f.covers(frame.index)), None)
        self._set_state(OK if fault is None else FAULT_STATES[fault.kind], fault)
        if fault is None:
            self._last_image = frame.image
            return frame
        if fault.kind == "freeze":
            if self._last_image is None:
                self._last_image = frame.image
            return Frame(self._last_image, frame.index, frame.t, frame.grabbed)
        return None

    def _set_state(self, state: str, fault: Fault | None) -> None:
        if state != self._state:
            self._state = state
            what = (f" (injected {fault.kind} for frames {fault.start}-{fault.start + fault.frames - 1})"
                    if fault else "")
            log.info("camera %s%s", state, what)

    def wait(self, timeout: float) -> bool:
        return self.inner.wait(timeout)

    def close(self) -> None:
        self.inner.close()

    def describe(self) -> str:
        return f"{self.inner.describe()} with {len(self.schedule)} injected faults: {self.state}"
