"""Choose the person the portrait looks at, keep following them, and smooth their position.

The closest face (largest ``Face.area``) becomes the viewer. We stay with them while they remain in
view (matched frame to frame by position), switch only when someone else is clearly closer
for a while, hold the last position through short detector dropouts, and report *idle* when
nobody has been there for ``idle_after_s`` seconds so the gaze side can go back to neutral.
All positions are normalized 0..1 camera coordinates, not mirrored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from monalisa.config import ViewerConfig
from monalisa.kiosk.detector import Face


class OneEuroFilter:
    """One Euro filter for a point (any number of coordinates): steady when still, quick when moving.

    Casiez et al. 2012: a low-pass filter whose cutoff rises with the filtered speed, so
    jitter is smoothed away while real motion is followed with little lag.
    """

    def __init__(self, min_cutoff: float, beta: float, d_cutoff: float):
        self.min_cutoff = min_cutoff
        self.beta = beta
        self.d_cutoff = d_cutoff
        self._x: list[float] | None = None
        self._dx: list[float] = []
        self._t = 0.0

    def reset(self) -> None:
        """Forget the history: the next sample is passed through unchanged."""
        self._x = None

    def __call__(self, point: Sequence[float], t: float) -> tuple[float, ...]:
        """Filter ``point`` sampled at time ``t`` (seconds) and return the smoothed point."""
        if self._x is None:
            self._x = [float(v) for v in point]
            self._dx = [0.0] * len(self._x)
            self._t = t
            return tuple(self._x)
        dt = t - self._t
        if dt <= 0.0:  # same timestamp (or clock hiccup): nothing new to learn from
            return tuple(self._x)
        self._t = t
        a_d = _alpha(self.d_cutoff, dt)
        speed2 = 0.0
        for i, v in enumerate(point):
            self._dx[i] += a_d * ((v - self._x[i]) / dt - self._dx[i])
            speed2 += self._dx[i] * self._dx[i]
        a = _alpha(self.min_cutoff + self.beta * math.sqrt(speed2), dt)
        for i, v in enumerate(point):
            self._x[i] += a * (v - self._x[i])
        return tuple(self._x)


def _alpha(cutoff: float, dt: float) -> float:
    """Smoothing factor of a first-order low-pass filter with ``cutoff`` Hz at step ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


@dataclass
class ViewerState:
    """What the tracker knows about the viewer; one object, updated in place by every update."""

    face: Face | None = None                        # the chosen Face seen this update, or None
    position: tuple[float, float] | None = None     # filtered eye midpoint (normalized), None when nobody
    eye_distance: float | None = None               # filtered distance between the eyes, camera pixels
    idle: bool = True                               # nobody for ``idle_after_s`` seconds (or never anybody)


class ViewerTracker:
    """Faces per frame -> the chosen viewer's smoothed position and idle state."""

    def __init__(self, config: ViewerConfig):
        self.config = config
        self.position_filter = OneEuroFilter(config.min_cutoff, config.beta, config.d_cutoff)
        self.distance_filter = OneEuroFilter(config.min_cutoff, 0.0, config.d_cutoff)
        self._last_mid: tuple[float, float] | None = None   # raw eye midpoint of the viewer when last seen
        self._last_seen: float | None = None                 # when the viewer was last seen
        self._challenger: tuple[float, float] | None = None  # a clearly closer face, where last seen
        self._challenger_since = 0.0
        self.state = ViewerState()

    def update(self, faces: Sequence[Face], t: float, frame_size: tuple[int, int] | None = None) -> ViewerState:
        """Take this frame's faces (captured at ``t``) and return the updated viewer state.

        ``frame_size`` (width, height) scales ``eye_distance`` to camera pixels; by default
        the face's own ``frame_size`` is used.
        """
        cfg = self.config
        viewer = self._match(faces, t)
        if viewer is not None:
            viewer = self._maybe_switch(faces, viewer, t)
        elif faces and (self._last_seen is None or t - self._last_seen > cfg.hold_s):
            viewer = max(faces, key=lambda face: face.area)  # nobody being followed: take the closest newcomer
            self._new_viewer()

        state = self.state
        state.face = viewer
        if viewer is not None:
            self._last_mid = viewer.eye_mid
            self._last_seen = t
            x, y = self.position_filter(self._last_mid, t)
            state.position = (x, y)
            width, height = frame_size or viewer.frame_size or (1, 1)
            state.eye_distance = self.distance_filter((viewer.eye_distance_px(width, height),), t)[0]
        elif self._last_seen is None or t - self._last_seen > cfg.hold_s:
            state.position = None
            state.eye_distance = None
        # else: hold the last position through a short dropout

        state.idle = self._last_seen is None or (viewer is None and t - self._last_seen >= cfg.idle_after_s)
        return state

    def _match(self, faces: Sequence[Face], t: float) -> Face | None:
        """The face nearest the viewer's last position, if within ``match_distance`` and still held."""
        if not faces or self._last_mid is None or self._last_seen is None:
            return None
        if t - self._last_seen > self.config.hold_s:
            return None  # gone too long: whoever is there now is a new viewer
        best, best_d = None, self.config.match_distance
        for face in faces:
            d = _distance(face.eye_mid, self._last_mid)
            if d <= best_d:
                best, best_d = face, d
        return best

    def _maybe_switch(self, faces: Sequence[Face], viewer: Face, t: float) -> Face:
        """Switch to another face only after it has stayed clearly closer for ``switch_after_s``."""
        cfg = self.config
        rival = None
        for face in faces:
            if face is not viewer and face.area > cfg.switch_ratio * viewer.area:
                if rival is None or face.area > rival.area:
                    rival = face
        if rival is None:
            self._challenger = None
            return viewer
        rival_mid = rival.eye_mid
        if self._challenger is None or _distance(rival_mid, self._challenger) > cfg.match_distance:
            self._challenger_since = t  # a new challenger (or the old one jumped): start timing
        self._challenger = rival_mid
        if t - self._challenger_since < cfg.switch_after_s:
            return viewer
        self._new_viewer()
        return rival

    def _new_viewer(self) -> None:
        """Start following somebody else: their history must not blend with the last viewer's."""
        self.position_filter.reset()
        self.distance_filter.reset()
        self._challenger = None


def _distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])
