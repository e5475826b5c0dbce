"""Read a portrait and find the geometry of its faces: eye openings, irises, head box.

Faces come from MediaPipe FaceMesh (478 landmarks with irises) or, for stylised art
where detection fails, from eye centres given by hand (``--eyes LX,LY,RX,RY[,R]``).
All coordinates are full-resolution portrait pixels (x right, y down).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from monalisa.errors import ImageError, PrecomputeError
from monalisa.images import read_image
from precompute import eye_fit, faces
from precompute.faces import FaceMeshSession

__all__ = ["EyeGeometry", "FaceGeometry", "FaceMeshSession", "faces_from_eye_points", "find_faces",
           "load_portrait", "with_iris_radius"]

log = logging.getLogger(__name__)

MIN_EYE_WIDTH_PX = 12.0  # corner to corner; below this the iris has no room to move visibly

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
    found_by: str = "facemesh"                  # "facemesh", "blazeface" (FaceMesh on a crop) or "eye points"
    detail: str = ""                            # how, in a few words (BlazeFace model and crop, eye fit)

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


def load_portrait(path: str | os.PathLike, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Read an image file as RGB uint8 (transparency flattened onto the ``background`` colour);
    PrecomputeError naming the file if that fails."""
    from precompute.alpha import flatten_transparency

    try:
        return flatten_transparency(Path(path), read_image(Path(path)), background)
    except ImageError as exc:
        raise PrecomputeError(str(exc)) from None


# ----------------------------------------------------------------------------- detection

def find_faces(image: np.ndarray, which: str | int = "all",
               session: FaceMeshSession | None = None, quick: bool = False) -> list[FaceGeometry]:
    """Faces found by the cascade (precompute.faces), sorted left to right.

    ``which``: "all"; "largest"; or an int N (or digit string) for the N largest faces.
    ``session``: a FaceMeshSession to reuse (left open); by default one is opened for this call.
    ``quick``: FaceMesh on the whole image only, no cascade (frames of a driving video).
    FaceMesh looks at the whole image first; BlazeFace boxes it missed are then read on crops (for
    "largest" only when FaceMesh found nothing, as in driving videos). Each face is re-measured on a
    crop around it so landmarks are as precise on a 6000-pixel scan as on a web image.
    """
    count = _parse_which(which)
    with (contextlib.nullcontext(session) if session is not None else FaceMeshSession()) as mesh:
        rough = faces.cascade(mesh, image, fallback_only=count == 1, quick=quick)
        if not rough:
            raise PrecomputeError(
                f"no face was found in the portrait (eyes must be at least {MIN_EYE_WIDTH_PX:.0f} px "
                "wide); pick the eyes with `monalisa eyes PORTRAIT`, or give them with --eyes "
                "LX,LY,RX,RY[,R] (pixels; R = iris radius)")
        rough.sort(key=lambda found: -_box_area(found.landmarks))
        if count is not None:
            rough = rough[:count]
        found = [_face_from_landmarks(faces.refine(mesh, image, f.landmarks), f.found_by, f.detail)
                 for f in rough]
    usable = [f for f in found if min(e.width for e in f.eyes) >= MIN_EYE_WIDTH_PX]
    for face in found:
        if face not in usable:
            log.warning("skipping a face at x=%.0f: eyes narrower than %.0f px", face.center[0],
                        MIN_EYE_WIDTH_PX)
    if not usable:
        narrowest = min(min(e.width for e in f.eyes) for f in found)
        raise PrecomputeError(
            f"the face is too small: its eyes are {narrowest:.0f} px wide, at least "
            f"{MIN_EYE_WIDTH_PX:.0f} px are needed (use a larger image)")
    return sorted(usable, key=lambda f: f.center[0])


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
    x0, y0 = points[:, :2].min(axis=0)
    x1, y1 = points[:, :2].max(axis=0)
    return float((x1 - x0) * (y1 - y0))


def _face_from_landmarks(points: np.ndarray, found_by: str = "facemesh", detail: str = "") -> FaceGeometry:
    """Build the geometry of one face from its 478 FaceMesh landmarks ((478, 2), or (478, 3) with depth:
    z in pixels, scaled like x, larger is farther)."""
    points_3d = points if points.shape[1] == 3 else None
    points = np.ascontiguousarray(points[:, :2])
    eyes = []
    for _corners, upper, lower, iris_center, iris_rim in _SUBJECT_EYES:
        center = points[iris_center]
        radius = float(np.linalg.norm(points[list(iris_rim)] - center, axis=1).mean())
        eyes.append(_eye(center, radius, points[list(upper)], points[list(lower)]))
    eyes.sort(key=lambda e: e.center[0])
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    return FaceGeometry((float(x0), float(y0), float(x1), float(y1)), points, eyes[0], eyes[1], points_3d,
                        found_by, detail)


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

def with_iris_radius(found: Sequence[FaceGeometry], radius: float) -> list[FaceGeometry]:
    """The faces with every iris radius set to ``radius`` pixels (corners, lids and centres kept);
    PrecomputeError when it does not fit inside an eye's opening."""
    for face in found:
        for eye in face.eyes:
            if radius >= 0.45 * eye.width:
                raise PrecomputeError(
                    f"--iris-radius {radius:g} px does not fit the eye at ({eye.center[0]:.0f}, {eye.center[1]:.0f}), "
                    f"which is {eye.width:.0f} px wide (at most {0.45 * eye.width:.1f} px)")
    return [dataclasses.replace(face, left_eye=dataclasses.replace(face.left_eye, iris_radius=float(radius)),
                                right_eye=dataclasses.replace(face.right_eye, iris_radius=float(radius)),
                                detail=", ".join(filter(None, [face.detail, f"iris radius {radius:g} px given"])))
            for face in found]


def faces_from_eye_points(image: np.ndarray, points: Sequence[float] | Sequence[Sequence[float]],
                          iris_radius: float | None = None, fit: bool = True, warn: bool = True) -> list[FaceGeometry]:
    """Faces from hand-given eye centres: LX,LY,RX,RY[,R] pixels, or a list of those (one per face).

    For art FaceMesh cannot read: each eye's iris (centre, radius unless R is given) and opening
    (corners, lids) are found in the image near the point (precompute.eye_fit); points on nothing
    eye-like (or ``fit`` False) get a plausible almond sized from the distance between the eyes
    (or from R), with one warning line (unless ``warn`` is False; the detail says it too).
    ``iris_radius`` is R for the sets that give none.
    """
    if len(points) and isinstance(points[0], (int, float, np.number)):
        points = [points]
    if not points:
        raise PrecomputeError("eye points must be LX,LY,RX,RY[,R], got nothing")
    if iris_radius is not None:
        points = [tuple(p) + (iris_radius,) if len(p) == 4 else p for p in points]
    unlike: list[tuple[float, float]] = []
    faces = [_face_from_eye_points(image, face_points, fit, unlike) for face_points in points]
    if unlike and warn:
        where = ", ".join(f"({x:g}, {y:g})" for x, y in unlike)
        log.warning("eye point%s %s %s not on anything eye-like (no iris and eye opening found there); "
                    "using a default eye shape - check the points with `monalisa eyes PORTRAIT`",
                    "s" * (len(unlike) > 1), where, "are" if len(unlike) > 1 else "is")
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


def _face_from_eye_points(image: np.ndarray, points: Sequence[float], fit: bool,
                          unlike: list[tuple[float, float]]) -> FaceGeometry:
    """One face from its two eye centres and optional iris radius; points on nothing eye-like are
    appended to ``unlike``."""
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
    given = float(points[4]) if len(points) == 5 else None
    eyes, kinds = [], []
    for center in centers:
        found = eye_fit.fit_eye(image, center, axis, distance, given) if fit else None
        if found is not None and found.opening_clear:
            eyes.append(_eye(found.center, found.iris_radius, found.upper_lid, found.lower_lid))
            kinds.append("fitted")
        elif found is not None and found.eye_like:  # the iris is clear, the lids are not: a plain almond
            r = found.iris_radius
            eyes.append(_ellipse_eye(np.array(found.center), r, min(2.5 * r, 0.25 * distance), 0.9 * r, axis))
            kinds.append("iris")
        else:
            eyes.append(_ellipse_eye(center, radius, half_width, 0.85 * radius, axis))
            kinds.append("default")
            if fit:
                unlike.append((float(center[0]), float(center[1])))
    narrow = min(eye.width for eye in eyes)
    if narrow < MIN_EYE_WIDTH_PX:
        raise PrecomputeError(f"the eyes are too small: {narrow:.0f} px wide, at least "
                              f"{MIN_EYE_WIDTH_PX:.0f} px are needed (use a larger image)")
    detail = ("fitted to the image" if kinds == ["fitted"] * 2 else "default shape" if kinds == ["default"] * 2
              else "irises fitted, almond openings" if "default" not in kinds else "partly default shape")
    down = np.array([-axis[1], axis[0]])
    head = (centers[0] + centers[1]) / 2 + 0.45 * distance * down
    half = np.array([1.1, 1.35]) * distance
    box = (*(head - half), *(head + half))
    x0, y0, x1, y1 = (float(v) for v in box)
    box = (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))
    return FaceGeometry(box, None, eyes[0], eyes[1], found_by="eye points", detail=detail)


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
