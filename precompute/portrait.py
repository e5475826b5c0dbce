"""Read a portrait and find the geometry of its faces: eye openings, irises, head box.

Faces come from MediaPipe FaceMesh (478 landmarks with irises) or, for stylised art
where detection fails, from eye centres given by hand (``--eyes LX,LY,RX,RY[,R]``).
All coordinates are full-resolution portrait pixels (x right, y down).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from monalisa.errors import ImageError, PrecomputeError
from monalisa.images import read_image
from monalisa.mp_quiet import quiet_stderr

log = logging.getLogger(__name__)

MIN_EYE_WIDTH_PX = 12.0  # corner to corner; below this the iris has no room to move visibly
DETECT_MAX_SIDE = 1280   # the whole-image detection pass runs on a copy at most this big
REFINE_SIDE = 768        # each face is re-measured on a crop resized to this many pixels
MAX_FACES = 10

# FaceMesh indices (refine_landmarks=True). "Subject" eyes: the person's own right/left.
_SUBJECT_EYES = (
    # corners (outer, inner), upper lid, lower lid (outer -> inner), iris centre, iris rim
    ((33, 133), (33, 246, 161, 160, 159, 158, 157, 173, 133),
     (33, 7, 163, 144, 145, 153, 154, 155, 133), 468, (469, 470, 471, 472)),
    ((263, 362), (263, 466, 388, 387, 386, 385, 384, 398, 362),
     (263, 249, 390, 373, 374, 380, 381, 382, 362), 473, (474, 475, 476, 477)),
)


@dataclass(frozen=True, eq=False)
class EyeGeometry:
    """One eye: iris centre and radius, the corners and lids bounding its opening."""

    center: tuple[float, float]                 # iris centre
    iris_radius: float
    corner_left: tuple[float, float]            # corner with the smaller image x
    corner_right: tuple[float, float]
    upper_lid: np.ndarray                       # (N, 2) from corner_left to corner_right
    lower_lid: np.ndarray                       # (N, 2) from corner_left to corner_right

    @property
    def width(self) -> float:
        """Corner-to-corner distance in pixels."""
        return float(np.hypot(self.corner_right[0] - self.corner_left[0],
                              self.corner_right[1] - self.corner_left[1]))

    @property
    def opening(self) -> np.ndarray:
        """The eye opening as a closed polygon (N, 2): upper lid then lower lid backwards."""
        return np.vstack([self.upper_lid, self.lower_lid[::-1][1:-1]])


@dataclass(frozen=True, eq=False)
class FaceGeometry:
    """A face: bounding box, landmarks (None when built from eye points) and both eyes."""

    box: tuple[float, float, float, float]      # x0, y0, x1, y1
    landmarks: np.ndarray | None                # (478, 2) pixels
    left_eye: EyeGeometry                       # the eye on the image's left
    right_eye: EyeGeometry
    landmarks_3d: np.ndarray | None = None      # (478, 3) pixels; z: FaceMesh depth (x's scale, + away)

    @property
    def center(self) -> tuple[float, float]:
        """Centre of the face box (the head turns about it)."""
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2

    @property
    def size(self) -> tuple[float, float]:
        """Face box width and height in pixels."""
        x0, y0, x1, y1 = self.box
        return x1 - x0, y1 - y0

    @property
    def eyes(self) -> tuple[EyeGeometry, EyeGeometry]:
        return self.left_eye, self.right_eye


def load_portrait(path: str | os.PathLike, background: str = "#000000") -> np.ndarray:
    """Read an image file as RGB uint8 (transparency flattened onto ``background``, #rrggbb);
    PrecomputeError naming the file if that fails."""
    from precompute.alpha import flatten_transparency

    try:
        return flatten_transparency(Path(path), read_image(Path(path)), background)
    except ImageError as exc:
        raise PrecomputeError(str(exc)) from None


# ----------------------------------------------------------------------------- detection

class FaceMeshSession:
    """One FaceMesh graph (still-image mode, irises) shared by many find_faces calls, as building one
    costs more than running it; each call stays independent of the previous ones. Close it or use ``with``."""

    def __init__(self) -> None:
        import mediapipe as mp  # imported only here: loading it takes a second

        with quiet_stderr():  # MediaPipe logs its set-up straight to fd 2
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=MAX_FACES, refine_landmarks=True,
                min_detection_confidence=0.5)
            self._quiet = True
            try:  # the first inference in the same window: the graph finishes opening (and logging) in it
                self.landmarks(np.zeros((64, 64, 3), np.uint8))
            except BaseException:
                self.close()
                raise

    def landmarks(self, image: np.ndarray, with_z: bool = False) -> list[np.ndarray]:
        """Landmarks (478, 2) in ``image`` pixels for every face FaceMesh finds; (478, 3) ``with_z``
        (z: FaceMesh's relative depth in the same pixel scale as x, larger is farther)."""
        if self._mesh is None:
            raise RuntimeError("FaceMeshSession used after close()")
        if self._quiet:  # MediaPipe also logs once per process when it first sees a face
            with quiet_stderr():
                result = self._mesh.process(np.ascontiguousarray(image))
            self._quiet = not result.multi_face_landmarks
        else:
            result = self._mesh.process(np.ascontiguousarray(image))
        height, width = image.shape[:2]
        if with_z:
            return [np.array([(p.x * width, p.y * height, p.z * width) for p in face.landmark], dtype=np.float64)
                    for face in result.multi_face_landmarks or []]
        return [np.array([(p.x * width, p.y * height) for p in face.landmark], dtype=np.float64)
                for face in result.multi_face_landmarks or []]

    def close(self) -> None:
        """Free the graph (idempotent)."""
        if self._mesh is not None:
            mesh, self._mesh = self._mesh, None
            mesh.close()

    def __enter__(self) -> FaceMeshSession:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def find_faces(image: np.ndarray, which: str | int = "all",
               session: FaceMeshSession | None = None) -> list[FaceGeometry]:
    """Faces found by FaceMesh, sorted left to right.

    ``which``: "all"; "largest"; or an int N (or digit string) for the N largest faces.
    ``session``: a FaceMeshSession to reuse (left open); by default one is opened for this call.
    Faces are detected on a downscaled copy, then each is re-measured on a crop around it
    so landmarks are as precise on a 6000-pixel scan as on a web image.
    """
    count = _parse_which(which)
    with (contextlib.nullcontext(session) if session is not None else FaceMeshSession()) as mesh:
        rough = _detect(mesh, image)
        if not rough:
            raise PrecomputeError(
                f"no face was found in the portrait (eyes must be at least {MIN_EYE_WIDTH_PX:.0f} px "
                "wide); give the eye centres by hand with --eyes LX,LY,RX,RY[,R] (pixels; R = iris radius)")
        rough.sort(key=lambda pts: -_box_area(pts))
        if count is not None:
            rough = rough[:count]
        faces = [_face_from_landmarks(_refine(mesh, image, pts)) for pts in rough]
    usable = [f for f in faces if min(e.width for e in f.eyes) >= MIN_EYE_WIDTH_PX]
    for face in faces:
        if face not in usable:
            log.warning("skipping a face at x=%.0f: eyes narrower than %.0f px", face.center[0],
                        MIN_EYE_WIDTH_PX)
    if not usable:
        narrowest = min(min(e.width for e in f.eyes) for f in faces)
        raise PrecomputeError(
            f"the face is too small: its eyes are {narrowest:.0f} px wide, at least "
            f"{MIN_EYE_WIDTH_PX:.0f} px are needed (use a larger image)")
    return sorted(usable, key=lambda f: f.center[0])


def _detect(mesh: FaceMeshSession, image: np.ndarray) -> list[np.ndarray]:
    """Rough landmarks of every face: on a downscaled copy, then on its four overlapping
    quarters (FaceMesh's detector misses faces under ~15% of the frame, as in group pictures)."""
    height, width = image.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(height, width))
    small = image if scale == 1.0 else cv2.resize(
        image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    found = mesh.landmarks(small)
    tile_h, tile_w = round(0.6 * small.shape[0]), round(0.6 * small.shape[1])
    for top in (0, small.shape[0] - tile_h):
        for left in (0, small.shape[1] - tile_w):
            for points in mesh.landmarks(small[top:top + tile_h, left:left + tile_w]):
                points = points + (left, top)
                if not any(_same_face(points, known) for known in found):
                    found.append(points)
    return [points / scale for points in found]


def _same_face(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two landmark sets describe the same face (centres within the other's box)."""
    (x0, y0), (x1, y1) = b.min(axis=0), b.max(axis=0)
    cx, cy = a.mean(axis=0)
    return bool(x0 <= cx <= x1 and y0 <= cy <= y1)


def _parse_which(which: str | int) -> int | None:
    """None for all faces, else how many of the largest to keep."""
    if which == "all":
        return None
    if which == "largest":
        return 1
    if isinstance(which, str) and which.isdigit():
        which = int(which)
    if isinstance(which, int) and not isinstance(which, bool) and which >= 1:
        return which
    raise PrecomputeError(f"faces must be 'all', 'largest' or a number >= 1, got {which!r}")


def _box_area(points: np.ndarray) -> float:
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return float((x1 - x0) * (y1 - y0))


def _refine(mesh: FaceMeshSession, image: np.ndarray, rough: np.ndarray) -> np.ndarray:
    """Re-run FaceMesh on a square crop around one face: (478, 3) landmarks with depth; the rough
    (478, 2) ones if that fails."""
    height, width = image.shape[:2]
    (x0, y0), (x1, y1) = rough.min(axis=0), rough.max(axis=0)
    side = 2.0 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left, top = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
    right, bottom = int(min(width, cx + side / 2)), int(min(height, cy + side / 2))
    crop = image[top:bottom, left:right]
    scale = REFINE_SIDE / max(crop.shape[:2])
    crop = cv2.resize(crop, (round(crop.shape[1] * scale), round(crop.shape[0] * scale)),
                      interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    candidates = [pts / scale + (left, top, 0.0) for pts in mesh.landmarks(crop, with_z=True)]
    if not candidates:
        return rough
    best = min(candidates, key=lambda pts: np.abs(pts[:, :2] - rough).mean())
    face_size = max(x1 - x0, y1 - y0)
    return best if np.abs(best[:, :2] - rough).mean() < 0.1 * face_size else rough


def _face_from_landmarks(points: np.ndarray) -> FaceGeometry:
    """Build the geometry of one face from its 478 FaceMesh landmarks ((478, 2), or (478, 3) with depth)."""
    points_3d = points if points.shape[1] == 3 else None
    points = np.ascontiguousarray(points[:, :2])
    eyes = []
    for _corners, upper, lower, iris_center, iris_rim in _SUBJECT_EYES:
        center = points[iris_center]
        radius = float(np.linalg.norm(points[list(iris_rim)] - center, axis=1).mean())
        eyes.append(_eye(center, radius, points[list(upper)], points[list(lower)]))
    eyes.sort(key=lambda e: e.center[0])
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return FaceGeometry((float(x0), float(y0), float(x1), float(y1)), points, eyes[0], eyes[1], points_3d)


def _eye(center: Sequence[float], radius: float, lid_a: np.ndarray, lid_b: np.ndarray) -> EyeGeometry:
    """An EyeGeometry from two lid polylines sharing their end points (the corners)."""
    if lid_a[0, 0] > lid_a[-1, 0]:
        lid_a, lid_b = lid_a[::-1], lid_b[::-1]
    upper, lower = (lid_a, lid_b) if lid_a[:, 1].mean() <= lid_b[:, 1].mean() else (lid_b, lid_a)
    return EyeGeometry(
        center=(float(center[0]), float(center[1])), iris_radius=float(radius),
        corner_left=(float(upper[0, 0]), float(upper[0, 1])),
        corner_right=(float(upper[-1, 0]), float(upper[-1, 1])),
        upper_lid=np.asarray(upper, dtype=np.float64), lower_lid=np.asarray(lower, dtype=np.float64))


# ----------------------------------------------------------------------------- eye points

def faces_from_eye_points(image: np.ndarray,
                          points: Sequence[float] | Sequence[Sequence[float]]) -> list[FaceGeometry]:
    """Faces from hand-given eye centres: LX,LY,RX,RY[,R] pixels, or a list of those (one per face).

    For art FaceMesh cannot read: each eye gets a plausible almond-shaped opening sized
    from the distance between the eyes (or from the iris radius R when given).
    """
    if len(points) and isinstance(points[0], (int, float, np.number)):
        points = [points]
    if not points:
        raise PrecomputeError("eye points must be LX,LY,RX,RY[,R], got nothing")
    faces = [_face_from_eye_points(image, face_points) for face_points in points]
    _check_no_overlap(faces)
    return sorted(faces, key=lambda f: f.center[0])


def _check_no_overlap(faces: list[FaceGeometry]) -> None:
    """PrecomputeError naming the first two eye point sets (1-based, as given) whose eye openings overlap,
    as the same eyes given twice would be warped twice."""
    for i, first in enumerate(faces):
        for j in range(i + 1, len(faces)):
            for a in first.eyes:
                for b in faces[j].eyes:
                    if np.hypot(a.center[0] - b.center[0], a.center[1] - b.center[1]) < (a.width + b.width) / 2:
                        raise PrecomputeError(
                            f"--eyes #{i + 1} and #{j + 1} overlap (eyes at ({a.center[0]:g}, {a.center[1]:g}) "
                            f"and ({b.center[0]:g}, {b.center[1]:g})); give each face's eyes once")


def _face_from_eye_points(image: np.ndarray, points: Sequence[float]) -> FaceGeometry:
    """One face from its two eye centres and optional iris radius."""
    if len(points) not in (4, 5):
        raise PrecomputeError(f"eye points must be LX,LY,RX,RY[,R], got {len(points)} numbers")
    height, width = image.shape[:2]
    centers = np.array([[points[0], points[1]], [points[2], points[3]]], dtype=np.float64)
    for x, y in centers:
        if not (0 <= x < width and 0 <= y < height):
            raise PrecomputeError(f"eye point ({x:g}, {y:g}) is outside the {width}x{height} portrait")
    centers = centers[np.argsort(centers[:, 0])]
    distance = float(np.linalg.norm(centers[1] - centers[0]))
    radius = float(points[4]) if len(points) == 5 else 0.09 * distance
    if radius <= 0 or distance < 2 * radius:
        raise PrecomputeError(f"eye points {distance:.0f} px apart with iris radius {radius:g} px "
                              "do not describe two eyes")
    half_width = min(2.5 * radius, 0.45 * distance)
    if 2 * half_width < MIN_EYE_WIDTH_PX:
        raise PrecomputeError(
            f"the eyes are too small: about {2 * half_width:.0f} px wide, at least "
            f"{MIN_EYE_WIDTH_PX:.0f} px are needed (use a larger image)")
    axis = (centers[1] - centers[0]) / distance
    eyes = [_ellipse_eye(c, radius, half_width, 0.85 * radius, axis) for c in centers]
    down = np.array([-axis[1], axis[0]])
    head = (centers[0] + centers[1]) / 2 + 0.45 * distance * down
    half = np.array([1.1, 1.35]) * distance
    box = (*(head - half), *(head + half))
    x0, y0, x1, y1 = (float(v) for v in box)
    box = (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))
    return FaceGeometry(box, None, eyes[0], eyes[1])


def _ellipse_eye(center: np.ndarray, radius: float, half_width: float, half_height: float,
                 axis: np.ndarray) -> EyeGeometry:
    """An eye whose opening is an ellipse around ``center`` aligned with ``axis``."""
    normal = np.array([-axis[1], axis[0]])            # points down the image for a level face
    angles = np.linspace(np.pi, 0, 9)                 # from the left corner to the right one
    along = np.cos(angles)[:, None] * half_width * axis
    across = np.sin(angles)[:, None] * half_height * normal
    upper = center + along - across
    lower = center + along + across
    return _eye(center, radius, upper, lower)
