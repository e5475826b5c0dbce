"""Read the gaze a face shows, in degrees, the way a viewer would: head pose plus eye-in-head.

The head is cut out as a square (``head_square``: 1.9x the larger side of the FaceMesh landmarks' box,
centred on it), scaled to 512 px and read by FaceMesh (irises on, still-image mode, 3D landmarks in crop
pixels: x right, y down, z away from the camera).

* Head pose: the rigid landmarks (all mesh points but the eye contours, irises and lips).
  Against ``reference`` landmarks (read on the same square) it is the rotation of a Kabsch fit, so the
  reading is relative to the reference. Without one it is absolute, from the face's own symmetry:
  the installed mediapipe 0.10.21 wheel ships no canonical face model (no canonical_face_model.obj nor
  geometry metadata under mediapipe/modules/face_geometry), so the mesh is compared with the mesh of the
  mirrored crop instead. The Kabsch rotation between the two, mirrored once more, is the reflection
  across the face's mid-sagittal plane, whose normal is the face's left-right axis. The up axis is the
  chin (152) to forehead (10) line in that plane, tilted by CANONICAL_TILT_DEG (the tilt of that line in
  MediaPipe's canonical face model, where it leans 0.7 deg toward the viewer); forward is perpendicular
  to both. Absolute readings are the mean of the crop and its mirror (negated yaw), so a mirrored
  picture reads exactly the opposite yaw.
* Eye in head: per eye, the iris centre's shift from the corner midpoint, along the corner-to-corner axis
  (yaw) and across it (pitch), in eye widths, through asin(shift / EYE_RADIUS_WIDTHS); mean of both eyes.
  The rest position is the corner midpoint, with no correction for the lid shape: a fixed nasal or
  temporal offset of the resting iris cancels between the two eyes in yaw; in pitch it does not, so an
  iris resting above the corner line reads as a few degrees of upward eye pitch.
* Gaze = head + eye. Signs: yaw < 0 looks toward the image's left edge (smaller x), pitch > 0 looks up.
* Absolute eye yaw is the line of sight minus the head (``sight_yaw``): with the eyeball's centre at the
  depth of the eye corners, as it roughly is in a real head, the 2D iris shift already holds the head's
  turn, so the ruler's head + asin(shift) would count it twice for a turned sitter. The Mona Lisa reads
  head -19 and a ruler eye yaw of +11 (a "gaze" of -9, the wrong side), but a line of sight of +10,
  where viewers judge +15 to their right (Horstmann & Loth 2019). Relative readings (the ruler on a
  pool's frames, against the portrait's own landmarks) keep the issue's head + asin(shift / 0.43).

No face in the square makes ``read_gaze`` return None (a benchmark counts misses); ``head_square`` on an
image without a face raises PrecomputeError. One FaceMesh graph (a ``FaceMeshSession``) serves many reads.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from precompute.portrait import FaceMeshSession, find_faces

CROP_SIDE = 512                 # the head square is read at this many pixels
SQUARE_SCALE = 1.9              # head square side / larger side of the landmarks' box
EYE_RADIUS_WIDTHS = 0.43        # the iris moves sin(angle) x this many eye widths
CANONICAL_TILT_DEG = 0.70       # canonical model: chin->forehead line leans this far toward the viewer
CHIN, FOREHEAD = 152, 10
CORNERS = ((33, 133), (263, 362))   # eye corners, one pair per eye
IRISES = (468, 473)                 # iris centres (refine_landmarks=True)


@dataclass(frozen=True, eq=False)
class GazeReading:
    """One face's perceived gaze in degrees (yaw = head_yaw + eye_yaw, pitch likewise) and the
    3D landmarks it was read from, (478, 3) in pixels of the 512-px head square."""

    head_yaw: float
    head_pitch: float
    eye_yaw: float
    eye_pitch: float
    landmarks: np.ndarray

    @property
    def yaw(self) -> float:
        return self.head_yaw + self.eye_yaw

    @property
    def pitch(self) -> float:
        return self.head_pitch + self.eye_pitch


def head_square(image_or_landmarks: np.ndarray, session: FaceMeshSession | None = None) -> tuple[int, int, int]:
    """(x0, y0, size) of the square around a head: 1.9x the larger side of its landmarks' box, centred
    on the box. Give landmarks (N, 2 or 3, image pixels) or an image (its largest face is used;
    PrecomputeError if it has none). The square may reach past the image's edges."""
    points = np.asarray(image_or_landmarks)
    if not (points.ndim == 2 and points.shape[1] in (2, 3)):
        points = find_faces(points, "largest", session=session)[0].landmarks
    (x0, y0), (x1, y1) = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    size = SQUARE_SCALE * max(x1 - x0, y1 - y0)
    return round((x0 + x1 - size) / 2), round((y0 + y1 - size) / 2), round(size)


def crop_square(image: np.ndarray, square: tuple[float, float, float], side: int = CROP_SIDE) -> np.ndarray:
    """The square (x0, y0, size) of ``image`` resampled to side x side pixels (edges replicated)."""
    x0, y0, size = square
    scale = side / size
    to_crop = np.array([[scale, 0.0, -x0 * scale], [0.0, scale, -y0 * scale]])
    flags = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(image, to_crop, (side, side), flags=flags, borderMode=cv2.BORDER_REPLICATE)


def read_gaze(image: np.ndarray, square: tuple[float, float, float] | None = None,
              session: FaceMeshSession | None = None, reference: np.ndarray | None = None) -> GazeReading | None:
    """The perceived gaze of the face in ``square`` of ``image`` (default: the largest face's head square);
    head pose relative to ``reference`` landmarks (a GazeReading's, read on the same square) when given,
    else absolute. None when FaceMesh finds no face in the square."""
    with contextlib.nullcontext(session) if session is not None else FaceMeshSession() as mesh:
        if square is None:
            square = head_square(image, mesh)
        crop = crop_square(image, square)
        points = _central_face(mesh.landmarks(crop, with_z=True))
        if points is None:
            return None
        if reference is not None:
            return relative_reading(points, reference)
        mirrored = _central_face(mesh.landmarks(np.ascontiguousarray(crop[:, ::-1]), with_z=True))
    return None if mirrored is None else absolute_reading(points, mirrored)


def square_landmarks(image: np.ndarray, square: tuple[float, float, float],
                     session: FaceMeshSession) -> np.ndarray | None:
    """The 3D landmarks (478, 3) of the face nearest the centre of ``square``, in pixels of the
    512-px square (a float square reads a sub-pixel crop); None if FaceMesh finds no face there."""
    return _central_face(session.landmarks(crop_square(image, square), with_z=True))


def steady_landmarks(image: np.ndarray, square: tuple[float, float, float], session: FaceMeshSession,
                     views: Iterable[Sequence[float]]) -> np.ndarray | None:
    """Landmarks in the 512-px frame of ``square``, the mean over ``views`` (dx, dy in crop pixels, relative
    size change) of slightly moved squares: one read's own error would shift every reading made against
    it. None if any view misses."""
    x0, y0, size = square
    found = []
    for dx, dy, change in views:
        moved = (x0 + dx * size / CROP_SIDE, y0 + dy * size / CROP_SIDE, size * (1.0 + change))
        points = square_landmarks(image, moved, session)
        if points is None:
            return None
        back = points * (moved[2] / size)
        back[:, 0] += (moved[0] - x0) * CROP_SIDE / size
        back[:, 1] += (moved[1] - y0) * CROP_SIDE / size
        found.append(back)
    return np.mean(found, axis=0)


def relative_reading(points: np.ndarray, reference: np.ndarray) -> GazeReading:
    """Head pose of ``points`` relative to ``reference`` (both read on the same square) by a Kabsch fit
    of the rigid landmarks: the reference's straight-out direction turned by that rotation."""
    rigid = rigid_indices()
    head_yaw, head_pitch = direction_angles(kabsch(reference[rigid], points[rigid]) @ (0.0, 0.0, -1.0))
    return GazeReading(head_yaw, head_pitch, *eye_angles(points), points)


def absolute_reading(points: np.ndarray, mirrored: np.ndarray) -> GazeReading:
    """Absolute head pose and eyes from a face's landmarks and those read on its mirrored crop; the mean
    of the direct and the mirrored estimate (a mirrored picture reads exactly the opposite yaw)."""
    head_yaw, head_pitch = symmetric_head_angles(points, mirrored)
    eye_yaw, eye_pitch = eye_angles(points)
    mirror_yaw, mirror_pitch = eye_angles(mirrored)
    iris_yaw = (eye_yaw - mirror_yaw) / 2
    sight = sight_yaw(GazeReading(head_yaw, head_pitch, iris_yaw, 0.0, points))
    return GazeReading(head_yaw, head_pitch, sight - head_yaw, (eye_pitch + mirror_pitch) / 2, points)


def _central_face(faces: list[np.ndarray]) -> np.ndarray | None:
    """The face whose landmarks' centre is nearest the crop's centre (neighbours may reach into it)."""
    if not faces:
        return None
    centre = CROP_SIDE / 2
    return min(faces, key=lambda pts: float(np.hypot(*(pts[:, :2].mean(axis=0) - centre))))


@functools.cache
def rigid_indices() -> np.ndarray:
    """Mesh landmarks that move with the skull: all 468 but the eye contours, irises and lips."""
    from mediapipe.python.solutions import face_mesh_connections as fmc

    moving = {i for edges in (fmc.FACEMESH_LEFT_EYE, fmc.FACEMESH_RIGHT_EYE, fmc.FACEMESH_LIPS)
              for edge in edges for i in edge}
    return np.array([i for i in range(468) if i not in moving])


def kabsch(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The rotation R (3x3, det +1) that best maps the centred ``source`` points onto the centred
    ``target`` points (least squares, target ~ R @ source; any common scale is ignored)."""
    a = source - source.mean(axis=0)
    b = target - target.mean(axis=0)
    u, _, vt = np.linalg.svd(a.T @ b)
    sign = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
    return vt.T @ np.diag([1.0, 1.0, sign]) @ u.T


def direction_angles(direction: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees of a view direction in image axes (x right, y down, z away from the
    camera; (0, 0, -1) looks straight out): yaw < 0 toward the image's left, pitch > 0 up."""
    x, y, z = np.asarray(direction, dtype=np.float64) / np.linalg.norm(direction)
    return math.degrees(math.atan2(x, -z)), math.degrees(math.asin(float(np.clip(-y, -1.0, 1.0))))


def symmetric_head_angles(points: np.ndarray, mirrored: np.ndarray) -> tuple[float, float]:
    """Absolute head (yaw, pitch) from a face's landmarks and those of its mirrored crop (module doc);
    the mean of the direct and the mirrored estimate."""
    first = _facing(points, mirrored)
    second = _facing(mirrored, points)
    yaw_a, pitch_a = direction_angles(first)
    yaw_b, pitch_b = direction_angles(second)
    return (yaw_a - yaw_b) / 2, (pitch_a + pitch_b) / 2


def _facing(points: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """The direction a face looks, from the reflection that maps it onto its mirror image."""
    rigid = rigid_indices()
    flip = np.diag([-1.0, 1.0, 1.0])
    reflection = flip @ kabsch(points[rigid], mirrored[rigid])
    values, vectors = np.linalg.eigh((reflection + reflection.T) / 2)
    lateral = vectors[:, int(np.argmin(values))]
    up = points[FOREHEAD] - points[CHIN]
    up = up - (up @ lateral) * lateral
    up /= np.linalg.norm(up)
    forward = np.cross(lateral, up)
    if forward[2] > 0:
        forward = -forward
    tilt = math.radians(CANONICAL_TILT_DEG)
    return math.sin(tilt) * up + math.cos(tilt) * forward


def eye_angles(points: np.ndarray) -> tuple[float, float]:
    """Eye-in-head (yaw, pitch) in degrees: the iris's shift from the corner midpoint along and
    across the corner axis, in eye widths, through asin(shift / EYE_RADIUS_WIDTHS); mean of both eyes."""
    yaws, pitches = [], []
    for (a, b), iris in zip(CORNERS, IRISES):
        left, right = sorted((points[a, :2], points[b, :2]), key=lambda p: p[0])
        axis = right - left
        width2 = float(axis @ axis)
        up = np.array([axis[1], -axis[0]])          # the axis turned a quarter toward the image's top
        shift = points[iris, :2] - (left + right) / 2
        yaws.append(_asin_deg(float(shift @ axis) / width2 / EYE_RADIUS_WIDTHS))
        pitches.append(_asin_deg(float(shift @ up) / width2 / EYE_RADIUS_WIDTHS))
    return float(np.mean(yaws)), float(np.mean(pitches))


def sight_yaw(reading: GazeReading) -> float:
    """Line-of-sight yaw in degrees with the eyeball centres at the corners' depth, from a reading whose
    eye_yaw is the ruler's iris shift: asin(sin(eye yaw) * cos(head yaw)) (the shift over the eye's
    foreshortened width)."""
    return _asin_deg(math.sin(math.radians(reading.eye_yaw)) * math.cos(math.radians(reading.head_yaw)))


def _asin_deg(value: float) -> float:
    return math.degrees(math.asin(min(1.0, max(-1.0, value))))

