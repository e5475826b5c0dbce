"""The driving video of the FOMM engine: read it, find the driver's gaze, choose one frame per cell.

A driving video is the user following a dot across the screen (``monalisa record``), optionally
with its JSON beside it (``gaze.mp4`` -> ``gaze.json``) giving the dot's position for every frame.
Every frame gets a gaze
value as a pair of fractions (yaw, pitch) in [-1, 1] in the *portrait's* convention: yaw -1 makes
the portrait look toward the screen's left edge, pitch +1 up. Frames come from the recording's
dot positions when the JSON is present, otherwise from the driver's irises (FaceMesh). For each
grid cell the frame whose gaze is nearest to the cell's target is chosen, so the chosen frames
are evenly spaced in gaze, not in time.

Every frame is cropped with one fixed square (the portrait's head-crop rule applied to the
median face box), resized to 256: a per-frame crop would turn landmark jitter into head shake.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from monalisa.errors import PrecomputeError
from precompute.driving.gazefile import GAZE_FORMAT, gaze_json_path

if TYPE_CHECKING:
    from precompute.portrait import FaceMeshSession

log = logging.getLogger(__name__)

CROP_SIZE = 256            # FOMM's input and output size
HEAD_MARGIN = 0.3          # the head square is the face box's longer side plus this much on each side
MAX_MEASURED = 300         # FaceMesh runs on at most about this many frames (evenly spaced)
SMOOTH_WINDOW = 5          # measured gaze is averaged over this many neighbouring samples
MIN_RECORDED_RANGE = 1.0   # the recorded dot must cover at least half of the [-1, 1] range
MIN_IRIS_YAW_RANGE = 0.08  # measured: iris travel along the eye, in eye widths
MIN_IRIS_PITCH_RANGE = 0.05
BLINK_RATIO = 0.45         # eyes less open than this fraction of the median count as closed
MIRRORED_CORRELATION = -0.5  # recorded and measured gaze this anti-correlated: the video is mirrored


@dataclass(frozen=True)
class Square:
    """A square of an image in pixels (top-left corner and side); may reach past the border."""

    x: int
    y: int
    size: int


@dataclass(frozen=True)
class FrameMeasure:
    """What FaceMesh saw in one driving frame."""

    index: int
    box: tuple[float, float, float, float]
    iris: tuple[float, float]   # along the eye-corner axis (0 = image-left corner), above it; eye widths
    openness: float             # lid gap / eye width, both eyes averaged


@dataclass
class DrivingVideo:
    """The chosen driving frames for a grid, cropped to 256x256 RGB uint8."""

    path: Path
    frame_count: int
    gaze_source: str            # "recorded" (from gaze.json) or "measured" (from the irises)
    cell_frames: np.ndarray     # (rows, cols) frame index chosen for each grid cell
    initial_frame: int          # the centre-gaze frame that relative motion is measured from
    crops: dict[int, np.ndarray]
    square: Square

    @property
    def chosen(self) -> list[int]:
        """Distinct chosen frame indices in order."""
        return sorted(set(self.cell_frames.ravel().tolist()))


# ----------------------------------------------------------------------------- crops

def head_square(box: tuple[float, float, float, float], margin: float = HEAD_MARGIN) -> Square:
    """The square around a face box used as FOMM's view of the head (portrait and driver alike)."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    size = max(2, int(round(side)))
    return Square(int(round(cx - size / 2)), int(round(cy - size / 2)), size)


def crop_square(image: np.ndarray, square: Square, size: int = CROP_SIZE) -> np.ndarray:
    """The square cut out of ``image`` (edges repeated where it reaches past them), resized."""
    height, width = image.shape[:2]
    x0, y0 = max(0, square.x), max(0, square.y)
    x1, y1 = min(width, square.x + square.size), min(height, square.y + square.size)
    if x1 <= x0 or y1 <= y0:
        raise PrecomputeError(f"head square {square} lies outside the {width}x{height} image")
    region = cv2.copyMakeBorder(image[y0:y1, x0:x1], y0 - square.y, square.y + square.size - y1,
                                x0 - square.x, square.x + square.size - x1, cv2.BORDER_REPLICATE)
    interpolation = cv2.INTER_AREA if square.size > size else cv2.INTER_CUBIC
    return cv2.resize(region, (size, size), interpolation=interpolation)


# ----------------------------------------------------------------------------- gaze

def measure_face(index: int, face) -> FrameMeasure:
    """Iris position and eye openness of one FaceGeometry, averaged over both eyes."""
    along, above, openness = [], [], []
    for eye in face.eyes:
        left, right = np.asarray(eye.corner_left), np.asarray(eye.corner_right)
        axis = right - left
        width = float(np.hypot(*axis)) or 1.0
        offset = np.asarray(eye.center) - left
        along.append(float(offset @ axis) / width**2)
        up = np.array([axis[1], -axis[0]]) / width   # perpendicular pointing up the image
        above.append(float((offset - axis / 2) @ up) / width)
        gaps = np.linalg.norm(eye.upper_lid[1:-1] - eye.lower_lid[1:-1], axis=1)
        openness.append(float(gaps.mean()) / width if gaps.size else 0.0)
    return FrameMeasure(index, tuple(float(v) for v in face.box),
                        (float(np.mean(along)), float(np.mean(above))), float(np.mean(openness)))


def smooth(values: np.ndarray, window: int = SMOOTH_WINDOW) -> np.ndarray:
    """Moving average along axis 0 (edges repeated), to calm FaceMesh jitter."""
    if window <= 1 or len(values) < 2:
        return values.astype(np.float64)
    half = window // 2
    padded = np.concatenate([values[:1].repeat(half, 0), values, values[-1:].repeat(half, 0)])
    kernel = np.ones(window) / window
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid") for k in range(values.shape[1])], 1)


def normalize_measured(iris: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Measured iris positions (n, 2) -> gaze fractions in about [-1, 1], and the raw ranges.

    The driver's own 2nd..98th percentile range maps to [-1, 1]; a higher iris (image up) is
    positive pitch. Returns (gaze (n, 2), ranges (2,)).
    """
    low, high = np.percentile(iris, 2, axis=0), np.percentile(iris, 98, axis=0)
    ranges = high - low
    half = np.where(ranges > 0, ranges / 2, 1.0)
    return (iris - (low + high) / 2) / half, ranges


def grid_targets(yaws: list[float], pitches: list[float]) -> np.ndarray:
    """(rows, cols, 2) gaze fractions each grid cell asks for: the angle over the grid's largest."""
    yaw_scale = max(abs(v) for v in yaws) or 1.0
    pitch_scale = max(abs(v) for v in pitches) or 1.0
    yaw = np.asarray(yaws, np.float64) / yaw_scale
    pitch = np.asarray(pitches, np.float64) / pitch_scale
    return np.stack(np.broadcast_arrays(yaw[None, :], pitch[:, None]), axis=-1)


def select_frames(gaze: np.ndarray, targets: np.ndarray, pitch_weight: float = 1.0) -> np.ndarray:
    """For each target (..., 2) the position in ``gaze`` (n, 2) of the nearest gaze value."""
    weights = np.array([1.0, pitch_weight])
    flat = targets.reshape(-1, 2)
    distance = (((flat[:, None, :] - gaze[None, :, :]) * weights) ** 2).sum(-1)
    return distance.argmin(axis=1).reshape(targets.shape[:-1])


def sweep_passes(gaze: np.ndarray) -> np.ndarray:
    """Number the passes of a recorded sweep: a new pass starts where the dot turns or changes row."""
    turns = np.sign(np.diff(gaze[:, 0]))
    passes = np.zeros(len(gaze), int)
    direction = 0.0
    for i, step in enumerate(turns, start=1):
        new_row = gaze[i, 1] != gaze[i - 1, 1]
        turned = step != 0 and direction != 0 and step != direction
        passes[i] = passes[i - 1] + (new_row or turned)
        direction = 0.0 if new_row else (step or direction)
    return passes


def select_frames_by_pass(gaze: np.ndarray, targets: np.ndarray, passes: np.ndarray,
                          pitch_weight: float = 1.0) -> np.ndarray:
    """Like select_frames, but each grid row takes all its frames from the one pass that fits it best.

    Neighbouring cells then share the driver's head pose and eye lag instead of alternating
    between the outward and the return sweep.
    """
    weights = np.array([1.0, pitch_weight])
    chosen = np.empty(targets.shape[:-1], int)
    for row in range(targets.shape[0]):
        best_cost = np.inf
        for number in np.unique(passes):
            members = np.flatnonzero(passes == number)
            picks = members[select_frames(gaze[members], targets[row], pitch_weight)]
            cost = float((((gaze[picks] - targets[row]) * weights) ** 2).sum())
            if cost < best_cost:
                best_cost, chosen[row] = cost, picks
    return chosen


def check_sweep(path: Path, ranges: np.ndarray, minimum: tuple[float, float], use_pitch: bool,
                unit: str) -> None:
    """Raise PrecomputeError when the gaze covers too little of the screen to fill the grid."""
    names = ("left to right", "top to bottom")
    for axis in (0, 1) if use_pitch else (0,):
        if ranges[axis] < minimum[axis]:
            hint = " (record with --pitch-steps 3 or more)" if axis == 1 else ""
            raise PrecomputeError(
                f"{path}: the gaze sweeps only {ranges[axis]:.2f} {unit} {names[axis]}, at least "
                f"{minimum[axis]:.2f} needed; record again following the dot to the edges{hint}")


# ----------------------------------------------------------------------------- reading

def read_recorded_gaze(path: Path, frame_count: int) -> np.ndarray:
    """The per-frame (yaw, pitch) fractions from a gaze.json; PrecomputeError if malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != GAZE_FORMAT:
            raise ValueError(f"format is {data.get('format')!r}, expected {GAZE_FORMAT!r}")
        frames = data["frames"]
        gaze = np.array([[float(f["yaw"]), float(f["pitch"])] for f in frames], np.float64)
    except (OSError, UnicodeDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise PrecomputeError(f"{path}: not a readable gaze file from `monalisa record` ({exc})") from exc
    if len(gaze) != frame_count:
        raise PrecomputeError(f"{path}: lists {len(gaze)} frames but the video has {frame_count}; "
                              "they do not belong together")
    return gaze


def iter_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame of a video as RGB uint8; PrecomputeError if it cannot be opened."""
    if not path.is_file():
        raise PrecomputeError(f"{path}: driving video not found")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise PrecomputeError(f"{path}: cannot read the driving video (not a video OpenCV can decode)")
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def estimated_frame_count(path: Path) -> int:
    """The container's frame count (may be approximate; 0 if unknown)."""
    capture = cv2.VideoCapture(str(path))
    try:
        return max(0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))) if capture.isOpened() else 0
    finally:
        capture.release()


def find_driver(image: np.ndarray, session: FaceMeshSession | None = None):
    """The largest face in a driving frame, or None (FaceMesh through precompute.portrait).

    ``session``: a portrait.FaceMeshSession to reuse; measure_video passes one for the whole pass.
    """
    from precompute.portrait import find_faces

    try:
        return find_faces(image, "largest", session, quick=True)[0]
    except PrecomputeError:
        return None  # no (usable) face in this frame: the caller counts and reports it


@contextlib.contextmanager
def _pass_finder(find_face: Callable | None) -> Iterator[Callable]:
    """The face finder for a pass over many frames: ``find_face`` as given, or (None) find_driver
    sharing one FaceMesh for the whole pass, closed after."""
    if find_face is not None:
        yield find_face
        return
    from precompute.portrait import FaceMeshSession

    with FaceMeshSession() as session:
        yield functools.partial(find_driver, session=session)


def measure_video(path: Path, find_face: Callable | None = None,
                  progress: bool = True) -> tuple[list[FrameMeasure], int]:
    """FaceMesh on evenly spaced frames (at most about MAX_MEASURED); returns them and the frame count."""
    from tqdm import tqdm

    estimate = estimated_frame_count(path)
    stride = max(1, math.ceil(estimate / MAX_MEASURED))
    measures, count = [], 0
    with _pass_finder(find_face) as find, tqdm(
            total=estimate or None, desc=f"driving {path.name}", unit="frame",
            disable=None if progress else True, leave=False) as bar:
        for index, image in enumerate(iter_frames(path)):
            count += 1
            bar.update(1)
            if index % stride:
                continue
            face = find(image)
            if face is not None:
                measures.append(measure_face(index, face))
    if count == 0:
        raise PrecomputeError(f"{path}: cannot read the driving video (no frames decoded)")
    if not measures:
        raise PrecomputeError(f"{path}: no face found in the driving video "
                              f"({math.ceil(count / stride)} frames checked)")
    return measures, count


def open_eyed(measures: list[FrameMeasure]) -> list[FrameMeasure]:
    """Drop frames with closed eyes (blinks) so no cell shows a blinking portrait."""
    median = float(np.median([m.openness for m in measures]))
    kept = [m for m in measures if m.openness >= BLINK_RATIO * median]
    return kept or measures


def load_driving(path: str | Path, yaws: list[float], pitches: list[float],
                 find_face: Callable | None = None, progress: bool = True) -> DrivingVideo:
    """Read a driving video (and its gaze.json if present) and choose a frame for every grid cell.

    ``find_face(image) -> face or None`` replaces FaceMesh (tests pass fakes)."""
    path = Path(path)
    measures, frame_count = measure_video(path, find_face, progress)
    measures = open_eyed(measures)
    indices = np.array([m.index for m in measures])
    iris = smooth(np.array([m.iris for m in measures]))
    measured, iris_ranges = normalize_measured(iris)
    use_pitch = len(pitches) > 1

    json_path = gaze_json_path(path)
    if json_path.is_file():
        source = "recorded"
        recorded = read_recorded_gaze(json_path, frame_count)
        gaze = recorded[indices]
        ranges = gaze.max(axis=0) - gaze.min(axis=0)
        check_sweep(path, ranges, (MIN_RECORDED_RANGE, MIN_RECORDED_RANGE), use_pitch, "of the screen")
        gaze = _unmirror(path, gaze, measured, iris_ranges)
        passes = sweep_passes(recorded)[indices]
        pitch_weight = 1.0  # recorded pitch is exact, so prefer the grid's own rows (or the middle one)
    else:
        source = "measured"
        check_sweep(path, iris_ranges, (MIN_IRIS_YAW_RANGE, MIN_IRIS_PITCH_RANGE), use_pitch,
                    "eye widths of iris travel")
        gaze = measured
        passes = np.zeros(len(gaze), int)  # measured gaze is too noisy to find the turns; one pass
        pitch_weight = 1.0 if use_pitch else 0.0  # measured pitch is noisy; ignore it for one row

    positions = select_frames_by_pass(gaze, grid_targets(yaws, pitches), passes, pitch_weight)
    initial = int(indices[select_frames(gaze, np.zeros((1, 2)), pitch_weight)[0]])
    cell_frames = indices[positions]
    square = head_square(tuple(np.median([m.box for m in measures], axis=0)))
    wanted = set(cell_frames.ravel().tolist()) | {initial}
    crops = {i: crop_square(image, square) for i, image in enumerate(iter_frames(path)) if i in wanted}
    log.info("driving video %s: %d frames, gaze %s, %d distinct frames chosen, centre frame %d",
             path.name, frame_count, source, len(set(cell_frames.ravel().tolist())), initial)
    return DrivingVideo(path, frame_count, source, cell_frames, initial, crops, square)


def _unmirror(path: Path, recorded: np.ndarray, measured: np.ndarray, iris_ranges: np.ndarray) -> np.ndarray:
    """Flip the recorded yaw when the irises clearly moved the other way (a mirrored camera)."""
    if iris_ranges[0] < MIN_IRIS_YAW_RANGE or len(recorded) < 3 or np.std(recorded[:, 0]) == 0:
        return recorded
    correlation = float(np.corrcoef(recorded[:, 0], measured[:, 0])[0, 1])
    if correlation > MIRRORED_CORRELATION:
        return recorded
    log.warning("%s: the irises move opposite to the recorded dot (correlation %.2f); "
                "treating the video as mirrored", path.name, correlation)
    return recorded * np.array([-1.0, 1.0])
