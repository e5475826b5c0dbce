"""How a face reaches a true gaze direction: the painted gaze, the eye/head split, limits, calibration.

Grid directions are relative to the picture's normal. A face painted looking (yaw0, pitch0) needs
a change of (target - painted); the eyes take most of a small change and the head a ``head_follow``
share, and beyond ``eye_range`` of eye-in-head the head takes the rest (eyes lead, the head
follows), up to per-side limits: a sitter painted turned aside can turn further away more easily
than toward the side the painting never showed. Calibration renders a few probe frames and reads
them back (``precompute.perceived``), so commands are scaled to what a viewer would read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, Self

import numpy as np

from monalisa.config import WarpConfig
from precompute.head import HeadPose
from precompute.portrait import FaceGeometry

log = logging.getLogger(__name__)

TURNED = 15.0              # a sitter painted this far aside (or more) gets the full unseen/away limits
GAIN_RANGE = (0.15, 3.0)   # a probe reading more or less than this per commanded degree is a misreading
EYE_MAX = (35.0, 20.0)     # the largest eye rotation ever commanded (yaw, pitch): the iris reaches its travel
EYE_PROBES = (35.0,)       # eye rotations probed per side (yaw; pitch scaled by EYE_MAX)
WHOLE_PROBES = (-1.0, -0.5, 0.5, 1.0)  # whole-frame probes, as fractions of the reachable grid extremes
REFERENCE_VIEWS = 6        # the portrait's landmarks are averaged over this many slightly moved squares


class Reading(Protocol):
    head_yaw: float
    head_pitch: float
    eye_yaw: float
    eye_pitch: float


class GazeReader(Protocol):
    """Reads perceived gaze: of a face as painted (absolute) and of rendered frames (head relative to it)."""

    def painted(self, image: np.ndarray, face: FaceGeometry) -> Reading | None: ...

    def frame(self, image: np.ndarray, face: FaceGeometry) -> Reading | None: ...

    def unchanged(self, face: FaceGeometry) -> Reading | None:
        """The portrait given to ``painted`` read the way ``frame`` reads frames (the zero of every change)."""
        ...


@dataclass(frozen=True)
class Command:
    """What one face is told to do: a geometric head rotation and an eye rotation (degrees, eye-in-head
    change from the painted eye)."""

    head: HeadPose = field(default_factory=HeadPose)
    eye_yaw: float = 0.0
    eye_pitch: float = 0.0


class Response:
    """Degrees a viewer reads for a commanded angle: piecewise linear through probed points
    (0 -> 0 always), extended with the outermost slopes; identity until probed."""

    def __init__(self, points: list[tuple[float, float]] | None = None):
        known = sorted({(0.0, 0.0), *(points or [])})
        commanded = [c for c, _ in known]
        seen = [v for _, v in known]
        if len(known) == 1:
            commanded, seen = [-1.0, 0.0, 1.0], [-1.0, 0.0, 1.0]
        elif len(known) == 2:   # one side probed: mirror it
            c, v = known[0] if known[0][0] != 0 else known[1]
            commanded, seen = sorted([-abs(c), 0.0, abs(c)]), sorted([-abs(v), 0.0, abs(v)])
        self.commanded, self.seen = np.array(commanded), np.array(seen)

    def forward(self, angle: float) -> float:
        """What a commanded ``angle`` reads as."""
        return float(_interp(angle, self.commanded, self.seen))

    def inverse(self, angle: float) -> float:
        """The command that reads as ``angle``."""
        return float(_interp(angle, self.seen, self.commanded))

    def describe(self) -> list[list[float]]:
        return [[round(float(c), 2), round(float(v), 2)] for c, v in zip(self.commanded, self.seen)]


def _interp(x: float, xs: np.ndarray, ys: np.ndarray) -> float:
    """np.interp, extended linearly beyond both ends."""
    if x < xs[0]:
        return ys[0] + (x - xs[0]) * (ys[1] - ys[0]) / (xs[1] - xs[0])
    if x > xs[-1]:
        return ys[-1] + (x - xs[-1]) * (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    return float(np.interp(x, xs, ys))


@dataclass
class Responses:
    """The calibrated responses of one face's head and eyes, per axis."""

    head_yaw: Response = field(default_factory=Response)
    head_pitch: Response = field(default_factory=Response)
    eye_yaw: Response = field(default_factory=Response)
    eye_pitch: Response = field(default_factory=Response)
    yaw: Response = field(default_factory=Response)       # whole frames: planned change -> seen change
    pitch: Response = field(default_factory=Response)


def head_limits(painted_head_yaw: float, config: WarpConfig) -> tuple[float, float, float, float]:
    """Commanded head limits (yaw low, yaw high, pitch low, pitch high) for a face painted turned
    ``painted_head_yaw`` degrees: the side it never showed (turning toward the viewer) gets less."""
    turned = min(1.0, abs(painted_head_yaw) / TURNED)
    frontal = config.head_yaw_limit
    unseen = frontal + turned * (config.head_yaw_unseen - frontal) if frontal > 0 else 0.0
    away = frontal + turned * (config.head_yaw_away - frontal) if frontal > 0 else 0.0
    low, high = (-away, unseen) if painted_head_yaw < 0 else (-unseen, away)
    return low, high, -config.head_pitch_limit, config.head_pitch_limit


@dataclass
class FacePlan:
    """One face's painted gaze, limits and responses: turns a true target direction into a Command."""

    config: WarpConfig
    painted: Reading | None
    limits: tuple[float, float, float, float]       # commanded degrees: yaw low, high, pitch low, high
    responses: Responses = field(default_factory=Responses)

    @property
    def painted_gaze(self) -> tuple[float, float]:
        if self.painted is None:
            return 0.0, 0.0
        return (self.painted.head_yaw + self.painted.eye_yaw, self.painted.head_pitch + self.painted.eye_pitch)

    @property
    def painted_eyes(self) -> tuple[float, float]:
        return (0.0, 0.0) if self.painted is None else (self.painted.eye_yaw, self.painted.eye_pitch)

    def widest_pose(self) -> HeadPose:
        """The largest head turn and nod this face is ever commanded (the head model's band is sized by it)."""
        low, high, down, up = self.limits
        return HeadPose(max(-low, high), max(-down, up))

    def true_limits(self) -> tuple[float, float, float, float]:
        """The head limits in degrees a viewer reads: yaw low, high, pitch low, high."""
        low, high, down, up = self.limits
        r = self.responses
        return (r.head_yaw.forward(low), r.head_yaw.forward(high),
                r.head_pitch.forward(down), r.head_pitch.forward(up))

    def eye_reach(self) -> tuple[float, float, float, float]:
        """How far the eyes can change the gaze a viewer reads: yaw low, high, pitch low, high."""
        r = self.responses
        return (r.eye_yaw.forward(-EYE_MAX[0]), r.eye_yaw.forward(EYE_MAX[0]),
                r.eye_pitch.forward(-EYE_MAX[1]), r.eye_pitch.forward(EYE_MAX[1]))

    def reach(self) -> tuple[float, float, float, float]:
        """The true gaze directions this face can show: yaw low, high, pitch low, high."""
        yaw, pitch = self.painted_gaze
        head = self.true_limits()
        eyes = self.eye_reach()
        r = self.responses
        return (yaw + r.yaw.forward(head[0] + eyes[0]), yaw + r.yaw.forward(head[1] + eyes[1]),
                pitch + r.pitch.forward(head[2] + eyes[2]), pitch + r.pitch.forward(head[3] + eyes[3]))

    def planned_reach(self) -> tuple[float, float, float, float]:
        """reach() before the whole-frame correction."""
        yaw, pitch = self.painted_gaze
        head, eyes = self.true_limits(), self.eye_reach()
        return (yaw + head[0] + eyes[0], yaw + head[1] + eyes[1],
                pitch + head[2] + eyes[2], pitch + head[3] + eyes[3])

    def command(self, yaw: float, pitch: float) -> Command:
        """The head and eye rotation for a true gaze target (yaw, pitch) in degrees."""
        painted_yaw, painted_pitch = self.painted_gaze
        r = self.responses
        return self.planned(painted_yaw + r.yaw.inverse(yaw - painted_yaw),
                            painted_pitch + r.pitch.inverse(pitch - painted_pitch))

    def planned(self, yaw: float, pitch: float) -> Command:
        """The Command the eye/head split and part responses give for (yaw, pitch), before the
        whole-frame correction."""
        painted_yaw, painted_pitch = self.painted_gaze
        eye_yaw0, eye_pitch0 = self.painted_eyes
        low, high, down, up = self.true_limits()
        eye_low, eye_high, eye_down, eye_up = self.eye_reach()
        config = self.config
        head_yaw, eye_yaw = split(yaw - painted_yaw, eye_yaw0, config.head_follow, config.eye_range,
                                  (low, high), (eye_low, eye_high))
        head_pitch, eye_pitch = split(pitch - painted_pitch, eye_pitch0, config.head_follow, config.eye_range,
                                      (down, up), (eye_down, eye_up))
        r = self.responses
        return Command(HeadPose(r.head_yaw.inverse(head_yaw), r.head_pitch.inverse(head_pitch)),
                       _clamp(r.eye_yaw.inverse(eye_yaw), EYE_MAX[0]),
                       _clamp(r.eye_pitch.inverse(eye_pitch), EYE_MAX[1]))

    def describe(self) -> dict:
        """For the manifest: painted gaze, limits and reach in true degrees, the measured responses."""
        r = self.responses
        limits, reach = self.true_limits(), self.reach()
        return {"painted_gaze": _rounded(self.painted_gaze),
                "painted_head": None if self.painted is None else
                _rounded((self.painted.head_yaw, self.painted.head_pitch)),
                "head_yaw_limits": _rounded(limits[:2]), "head_pitch_limits": _rounded(limits[2:]),
                "reach_yaw": _rounded(reach[:2]), "reach_pitch": _rounded(reach[2:]),
                "responses": {name: getattr(r, name).describe()
                              for name in ("head_yaw", "head_pitch", "eye_yaw", "eye_pitch", "yaw", "pitch")}}


def _clamp(value: float, most: float) -> float:
    return min(max(value, -most), most)


def _rounded(values) -> list[float]:
    return [round(float(v), 2) for v in values]


def split(change: float, eye0: float, share: float, eye_range: float, head_limits: tuple[float, float],
          eye_limits: tuple[float, float]) -> tuple[float, float]:
    """(head change, eye change) for a gaze change: the head takes ``share`` of it, and whatever would
    carry the eye (at ``eye0`` in the head) beyond ``eye_range`` or beyond what the eyes can change
    (``eye_limits``), within ``head_limits``."""
    head = share * change
    top = min(max(eye_range, eye0), eye0 + eye_limits[1])
    bottom = max(min(-eye_range, eye0), eye0 + eye_limits[0])
    eye = eye0 + change - head
    if eye > top:
        head = eye0 + change - top
    elif eye < bottom:
        head = eye0 + change - bottom
    head = min(max(head, head_limits[0]), head_limits[1])
    return head, change - head


def calibrate(frame: Callable[[list[Command]], np.ndarray], index: int, count: int, plan: FacePlan,
              reader: GazeReader, face: FaceGeometry, yaws: list[float], pitches: list[float]) -> None:
    """Set ``plan.responses`` of face ``index`` from probe frames: head and eyes apart at their
    extremes (each side), then whole frames across the grid (pitch only with several rows).

    ``frame(commands)`` renders the whole portrait with one Command per face (``count`` faces).
    """
    low, high, down, up = plan.limits

    def read(command: Command) -> tuple[float, float] | None:
        reading = reader.frame(frame([command if i == index else Command() for i in range(count)]), face)
        if reading is None:
            return None
        return reading.head_yaw + reading.eye_yaw, reading.head_pitch + reading.eye_pitch

    unchanged = reader.unchanged(face)
    baseline = None if unchanged is None else (unchanged.head_yaw + unchanged.eye_yaw,
                                               unchanged.head_pitch + unchanged.eye_pitch)
    if baseline is None:
        log.warning("FaceMesh cannot read the portrait's own head square; the turn is not calibrated")
        return

    def seen(command: Command, axis: int) -> float | None:
        reading = read(command)
        return None if reading is None else reading[axis] - baseline[axis]

    def probe(make: Callable[[float], Command], angles: list[float], axis: int) -> Response:
        points = []
        for angle in angles:
            value = seen(make(angle), axis) if angle != 0 else None
            if value is not None and GAIN_RANGE[0] <= value / angle <= GAIN_RANGE[1]:
                points.append((angle, value))
        points.sort()
        monotone = [p for k, p in enumerate(points) if all(q[1] < p[1] for q in points[:k])]
        return Response(monotone)

    def whole(grid: list[float], axis: int) -> Response:
        """Probe whole frames at fractions of the grid's extremes (within reach), as planned changes."""
        painted = plan.painted_gaze[axis]
        reach = plan.planned_reach()[2 * axis:2 * axis + 2]
        lowest, highest = max(min(grid), reach[0] + 1), min(max(grid), reach[1] - 1)
        targets = [painted + abs(f) * ((highest if f > 0 else lowest) - painted) for f in WHOLE_PROBES]
        def planned(change: float) -> Command:
            target = list(plan.painted_gaze)
            target[axis] += change
            return plan.planned(*target)

        return probe(planned, [t - painted for t in targets if abs(t - painted) > 1], axis)

    responses = plan.responses = Responses()
    responses.head_yaw = probe(lambda a: Command(HeadPose(a, 0.0)), [low, high], 0)
    responses.eye_yaw = probe(lambda a: Command(eye_yaw=a), [s * a for a in EYE_PROBES for s in (-1, 1)], 0)
    several_rows = len(pitches) > 1
    if several_rows:
        responses.head_pitch = probe(lambda a: Command(HeadPose(0.0, a)), [down, up], 1)
        scale = EYE_MAX[1] / EYE_MAX[0]
        responses.eye_pitch = probe(lambda a: Command(eye_pitch=a),
                                    [s * a * scale for a in EYE_PROBES for s in (-1, 1)], 1)
    responses.yaw = whole(yaws, 0)
    if several_rows:
        responses.pitch = whole(pitches, 1)
    log.debug("calibrated responses of the face at x=%.0f: %s", face.center[0], responses)


class FaceMeshReader:
    """GazeReader with FaceMesh (``precompute.perceived``): one graph for every read; close it or use ``with``.

    Frames are read against the portrait's landmarks averaged over a few slightly moved squares
    (REFERENCE_VIEWS), as the ruler does: a single read's own error would shift every reading.
    """

    def __init__(self) -> None:
        from precompute.portrait import FaceMeshSession

        self.session = FaceMeshSession()
        self._reference: dict[tuple[int, int, int], np.ndarray] = {}   # by head square: one per face

    def _square(self, face: FaceGeometry) -> tuple[int, int, int]:
        from precompute.perceived import head_square

        return head_square(face.landmarks)

    def painted(self, image: np.ndarray, face: FaceGeometry) -> Reading | None:
        from precompute.perceived import read_gaze

        square = self._square(face)
        reading = read_gaze(image, square, self.session)
        if reading is not None:
            steady = self._steady(image, square)
            self._reference[square] = reading.landmarks if steady is None else steady
        return reading

    def frame(self, image: np.ndarray, face: FaceGeometry) -> Reading | None:
        from precompute.perceived import read_gaze

        square = self._square(face)
        reference = self._reference.get(square)
        if reference is None:
            return None
        return read_gaze(image, square, self.session, reference=reference)

    def unchanged(self, face: FaceGeometry) -> Reading | None:
        from precompute.perceived import relative_reading

        reference = self._reference.get(self._square(face))
        return None if reference is None else relative_reading(reference, reference)

    def _steady(self, image: np.ndarray, square: tuple[int, int, int]) -> np.ndarray | None:
        """The landmarks of ``square`` (its 512-px frame) averaged over REFERENCE_VIEWS moved squares."""
        from precompute.perceived import steady_landmarks

        rng = np.random.default_rng(0)
        views = [(0.0, 0.0, 0.0)] + [(*rng.uniform(-2, 2, 2), rng.uniform(-0.03, 0.03))
                                     for _ in range(REFERENCE_VIEWS - 1)]
        return steady_landmarks(image, square, self.session, views)

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
