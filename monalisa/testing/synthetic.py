"""Generated camera videos with known eye positions, for tests and benchmarks.

Real faces cut from portraits shipped inside installed packages (matplotlib's Grace Hopper,
scikit-image's astronaut) are pasted onto generated backgrounds and moved along a path.
Grace Hopper is always there (matplotlib is a base dependency); scikit-image is only in the
test extra, so without it there is no astronaut and every face is Grace Hopper.
Where their eyes are in the cut-out is measured once with MediaPipe FaceMesh (iris centres),
so the true eye positions in every frame follow exactly from the placement. Each video is
written with a ground-truth JSON next to it (`truth_path(video)`).

    python -m monalisa.testing.synthetic walk.avi --kind walk --seconds 5
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from monalisa.atomic import write_file
from monalisa.cliargs import Parser, positive_float
from monalisa.errors import CameraError, MonalisaError, UsageError

PATH_KINDS = ("walk", "still", "walk_then_still")
CODECS = {".avi": "MJPG", ".mp4": "mp4v"}  # MJPG in AVI reads back frame-exact with OpenCV
NOISE_FRAMES = 8  # sensor noise is drawn for this many frames and cycled
MIN_SIDE = 80     # smaller frames have no room for the background's shapes


@dataclass(frozen=True)
class Head:
    """A face cut from a portrait: RGB crop, soft alpha (0..1) and the eye centres in crop pixels."""

    name: str
    image: np.ndarray
    alpha: np.ndarray
    left_eye: tuple[float, float]   # on the image's left
    right_eye: tuple[float, float]

    @property
    def eye_distance(self) -> float:
        return math.dist(self.left_eye, self.right_eye)


@dataclass(frozen=True)
class TrueFace:
    """Where a pasted face's eyes really are in one frame (normalized 0..1), and its eye distance in pixels."""

    left_eye: tuple[float, float]
    right_eye: tuple[float, float]
    eye_distance_px: float

    @property
    def eye_mid(self) -> tuple[float, float]:
        return ((self.left_eye[0] + self.right_eye[0]) / 2, (self.left_eye[1] + self.right_eye[1]) / 2)


@dataclass
class GroundTruth:
    """Per-frame true faces of a generated video, closest first.

    Closest means the largest eye distance: a generated head is scaled by its eye distance, so
    that is its true nearness (the kiosk, which sees only detector boxes, uses ``Face.area``).
    """

    fps: float
    width: int
    height: int
    frames: list[list[TrueFace]]

    def save(self, path: str | Path) -> None:
        write_file(path, json.dumps(asdict(self)))

    @classmethod
    def load(cls, path: str | Path) -> GroundTruth:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        frames = [[TrueFace(tuple(f["left_eye"]), tuple(f["right_eye"]), f["eye_distance_px"]) for f in faces]
                  for faces in data["frames"]]
        return cls(data["fps"], data["width"], data["height"], frames)


def truth_path(video_path: str | Path) -> Path:
    """Where the ground truth of a generated video is written: walk.avi -> walk.truth.json."""
    video_path = Path(video_path)
    return video_path.with_name(video_path.stem + ".truth.json")


# --------------------------------------------------------------------------------------------
# Heads


def shipped_portraits() -> dict[str, np.ndarray]:
    """Portraits inside installed packages, as RGB: Grace Hopper, plus the astronaut when scikit-image is installed."""
    from monalisa.pool.builtin import builtin_portrait_path

    hopper_file = builtin_portrait_path()
    hopper = cv2.imread(str(hopper_file))
    if hopper is None:
        raise MonalisaError(f"synthetic: cannot read {hopper_file}")
    portraits = {"grace_hopper": cv2.cvtColor(hopper, cv2.COLOR_BGR2RGB)}
    try:
        from skimage import data
    except ImportError:
        return portraits  # scikit-image is only in the test extra: Grace Hopper alone
    portraits["astronaut"] = data.astronaut()
    return portraits


def load_heads() -> dict[str, Head]:
    """Cut the head out of each shipped portrait and find its iris centres with FaceMesh."""
    import mediapipe as mp  # only generation needs it

    from monalisa.mp_quiet import quiet_stderr

    heads = {}
    portraits = shipped_portraits()
    # MediaPipe logs its set-up straight to fd 2, from its own threads, until the first image is through
    with quiet_stderr(), mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, refine_landmarks=True, max_num_faces=1) as mesh:
        found_all = {name: mesh.process(portrait).multi_face_landmarks for name, portrait in portraits.items()}
    for name, portrait in portraits.items():
        found = found_all[name]
        if not found:
            raise MonalisaError(f"synthetic: FaceMesh found no face in {name}")
        h, w = portrait.shape[:2]
        points = found[0].landmark
        # 468 / 473: iris centres of the person's right / left eye (image left / right)
        left = (points[468].x * w, points[468].y * h)
        right = (points[473].x * w, points[473].y * h)
        heads[name] = _cut_head(name, portrait, left, right)
    return heads


def _cut_head(name: str, portrait: np.ndarray, left: tuple[float, float], right: tuple[float, float]) -> Head:
    """A square crop around the eyes (hair to neck) with a feathered elliptical alpha.

    A generous crop matters: cut tight at the chin and brow, BlazeFace misplaces the eyes more.
    """
    eye_distance = math.dist(left, right)
    side = int(round(5.0 * eye_distance))
    cx = (left[0] + right[0]) / 2
    cy = (left[1] + right[1]) / 2 + 0.3 * eye_distance
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    padded = cv2.copyMakeBorder(portrait, side, side, side, side, cv2.BORDER_REPLICATE)
    crop = padded[y0 + side:y0 + 2 * side, x0 + side:x0 + 2 * side].copy()
    alpha = np.zeros((side, side), np.float32)
    cv2.ellipse(alpha, (side // 2, side // 2), (int(side * 0.45), int(side * 0.5)), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), side * 0.03)
    return Head(name, crop, alpha, (left[0] - x0, left[1] - y0), (right[0] - x0, right[1] - y0))


# --------------------------------------------------------------------------------------------
# Movement


@dataclass(frozen=True)
class Pose:
    """Where a head is in one frame: eye midpoint (normalized), eye distance (fraction of width), roll (degrees)."""

    x: float
    y: float
    eye_distance: float
    roll_deg: float = 0.0


Trajectory = Callable[[float], Pose]  # seconds -> pose


def walker(kind: str, seconds: float, eye_distance: float, x_from: float = 0.15, x_to: float = 0.85,
           y: float = 0.42) -> Trajectory:
    """A person crossing the frame ("walk"), standing mid-frame ("still"), or crossing then stopping."""
    if kind not in PATH_KINDS:
        raise ValueError(f"path_kind must be one of {PATH_KINDS}, got {kind!r}")
    walk_s = {"walk": seconds, "still": 0.0, "walk_then_still": seconds * 0.6}[kind]

    def pose(t: float) -> Pose:
        if walk_s <= 0:
            return Pose((x_from + x_to) / 2, y, eye_distance)
        u = min(1.0, t / walk_s)
        moving = u < 1.0
        bob = 0.008 * math.sin(2 * math.pi * 1.8 * t) if moving else 0.0  # steps
        roll = 4.0 * math.sin(2 * math.pi * 0.4 * t) if moving else 0.0
        return Pose(x_from + (x_to - x_from) * u, y + bob, eye_distance, roll)

    return pose


# --------------------------------------------------------------------------------------------
# Rendering


def background(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A gallery-ish backdrop: a two-colour gradient wall with a few frames and shapes, RGB."""
    width, height = size
    top, bottom = rng.integers(40, 220, 3), rng.integers(20, 200, 3)
    ramp = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    image = (top * (1 - ramp) + bottom * ramp).astype(np.uint8).repeat(width, axis=1)
    image = np.ascontiguousarray(image)
    for _ in range(rng.integers(4, 9)):
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        if rng.random() < 0.6:
            w, h = int(rng.integers(width // 12, width // 4)), int(rng.integers(height // 12, height // 3))
            cv2.rectangle(image, (x, y), (x + w, y + h), colour, -1 if rng.random() < 0.5 else 6)
        else:
            cv2.circle(image, (x, y), int(rng.integers(10, height // 6)), colour, -1)
    return cv2.GaussianBlur(image, (0, 0), 1.2)


def place(head: Head, pose: Pose, size: tuple[int, int]) -> np.ndarray:
    """The 2x3 affine taking head-crop pixels to frame pixels for this pose."""
    width, height = size
    scale = pose.eye_distance * width / head.eye_distance
    angle = math.radians(pose.roll_deg)
    a, b = scale * math.cos(angle), scale * math.sin(angle)
    mid_x = (head.left_eye[0] + head.right_eye[0]) / 2
    mid_y = (head.left_eye[1] + head.right_eye[1]) / 2
    tx = pose.x * width - (a * mid_x - b * mid_y)
    ty = pose.y * height - (b * mid_x + a * mid_y)
    return np.array([[a, -b, tx], [b, a, ty]], np.float64)


def paste(frame: np.ndarray, head: Head, matrix: np.ndarray) -> None:
    """Blend the head into frame (in place) through the affine, touching only its bounding box."""
    height, width = frame.shape[:2]
    side_h, side_w = head.image.shape[:2]
    corners = np.array([[0, 0, 1], [side_w, 0, 1], [0, side_h, 1], [side_w, side_h, 1]], np.float64) @ matrix.T
    x0, y0 = np.floor(corners.min(axis=0)).astype(int)
    x1, y1 = np.ceil(corners.max(axis=0)).astype(int)
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 <= x0 or y1 <= y0:
        return
    local = matrix.copy()
    local[:, 2] -= (x0, y0)
    rgba = np.dstack([head.image, (head.alpha * 255).astype(np.uint8)])
    warped = cv2.warpAffine(rgba, local, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderValue=0)
    alpha = warped[:, :, 3:4].astype(np.float32) / 255
    region = frame[y0:y1, x0:x1]
    region[:] = (region * (1 - alpha) + warped[:, :, :3] * alpha).astype(np.uint8)


def true_face(head: Head, matrix: np.ndarray, size: tuple[int, int]) -> TrueFace:
    """The head's eye positions in the frame, normalized, from the placement affine."""
    width, height = size
    left = matrix @ (*head.left_eye, 1.0)
    right = matrix @ (*head.right_eye, 1.0)
    return TrueFace((left[0] / width, left[1] / height), (right[0] / width, right[1] / height),
                    float(math.dist(left, right)))


@dataclass(frozen=True)
class Actor:
    """A head and the path it follows."""

    head: str
    path: Trajectory


def render_video(path: str | Path, seconds: float, actors: list[Actor], fps: float = 30,
                 size: tuple[int, int] = (640, 480), seed: int = 0, noise: float = 3.0,
                 heads: dict[str, Head] | None = None) -> GroundTruth:
    """Write a video of actors moving over a generated background, and its ground truth JSON."""
    path = Path(path)
    codec = CODECS.get(path.suffix.lower())
    if codec is None:
        raise CameraError(f"synthetic video must end in {' or '.join(CODECS)}: {path}")
    if min(size) < MIN_SIDE:
        raise MonalisaError(f"synthetic video {path}: {size[0]}x{size[1]} is too small, "
                            f"each side must be >= {MIN_SIDE}")
    if heads is None:
        heads = load_heads() if actors else {}
    missing = sorted({actor.head for actor in actors} - set(heads))
    if missing:
        raise MonalisaError(f"synthetic: no head {', '.join(missing)} (available: {', '.join(sorted(heads))}; "
                            "the astronaut needs scikit-image)")
    rng = np.random.default_rng(seed)
    backdrop = background(size, rng)
    grain = [rng.normal(0, noise, (size[1], size[0], 3)).astype(np.int16)
             for _ in range(NOISE_FRAMES)] if noise > 0 else []
    truth = GroundTruth(fps, size[0], size[1], [])

    def write_video(temporary: Path) -> None:
        writer = cv2.VideoWriter(str(temporary), cv2.VideoWriter_fourcc(*codec), fps, size)
        if not writer.isOpened():
            raise CameraError(f"cannot write video {path} with codec {codec}")
        try:
            for index in range(int(round(seconds * fps))):
                frame = backdrop.copy()
                faces = []
                for actor in actors:
                    matrix = place(heads[actor.head], actor.path(index / fps), size)
                    paste(frame, heads[actor.head], matrix)
                    faces.append(true_face(heads[actor.head], matrix, size))
                if grain:
                    frame = np.clip(frame.astype(np.int16) + grain[index % len(grain)], 0, 255).astype(np.uint8)
                writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
                truth.frames.append(sorted(faces, key=lambda face: face.eye_distance_px, reverse=True))
        finally:
            writer.release()

    write_file(path, write_video, CameraError)
    truth.save(truth_path(path))
    return truth


def walking_video(path: str | Path, seconds: float = 5.0, fps: float = 30, size: tuple[int, int] = (640, 480),
                  path_kind: str = "walk", head: str = "grace_hopper", eye_distance: float = 0.08,
                  seed: int = 0, noise: float = 3.0, heads: dict[str, Head] | None = None) -> GroundTruth:
    """One person crossing the frame (walk), standing (still), or crossing then standing."""
    actor = Actor(head, walker(path_kind, seconds, eye_distance))
    return render_video(path, seconds, [actor], fps, size, seed, noise, heads)


def two_face_video(path: str | Path, seconds: float = 5.0, fps: float = 30, size: tuple[int, int] = (640, 480),
                   seed: int = 1, noise: float = 3.0, heads: dict[str, Head] | None = None) -> GroundTruth:
    """A near person (bigger, drifting right of centre) and a far one walking across the left half.

    The near one is the astronaut, or Grace Hopper too when scikit-image is not installed.
    """
    if heads is None:
        heads = load_heads()
    near = Actor("astronaut" if "astronaut" in heads else "grace_hopper",
                 walker("walk", seconds, 0.11, x_from=0.78, x_to=0.68, y=0.45))
    far = Actor("grace_hopper", walker("walk", seconds, 0.065, x_from=0.10, x_to=0.40, y=0.35))
    return render_video(path, seconds, [near, far], fps, size, seed, noise, heads)


def empty_video(path: str | Path, seconds: float = 3.0, fps: float = 30, size: tuple[int, int] = (640, 480),
                seed: int = 2, noise: float = 3.0) -> GroundTruth:
    """The background alone: nobody in front of the portrait."""
    return render_video(path, seconds, [], fps, size, seed, noise, heads={})


def _size(text: str) -> tuple[int, int]:
    """--size WIDTHxHEIGHT, both whole numbers >= MIN_SIDE."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(part.strip().isdigit() and int(part) >= MIN_SIDE for part in parts):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, each >= {MIN_SIDE} (e.g. 640x480), "
                                         f"got {text!r}")
    return int(parts[0]), int(parts[1])


def main(argv: list[str] | None = None) -> int:
    """Command line: write a generated video and its ground truth."""
    parser = Parser(prog="python -m monalisa.testing.synthetic", description=main.__doc__)
    parser.add_argument("output", help="video to write (.avi: MJPG, .mp4: mp4v)")
    parser.add_argument("--kind", default="walk", choices=(*PATH_KINDS, "two_faces", "empty"))
    parser.add_argument("--seconds", type=positive_float, default=5.0)
    parser.add_argument("--fps", type=positive_float, default=30.0)
    parser.add_argument("--size", type=_size, default=(640, 480), help="WIDTHxHEIGHT (default 640x480)")
    parser.add_argument("--seed", type=int, default=0)
    try:
        args = parser.parse_args(argv)
        if Path(args.output).suffix.lower() not in CODECS:
            raise UsageError(f"the output must end in {' or '.join(CODECS)}, got {args.output!r}")
        if round(args.seconds * args.fps) < 1:
            raise UsageError(f"--seconds {args.seconds:g} at --fps {args.fps:g} is less than one frame")
        if args.kind == "two_faces":
            truth = two_face_video(args.output, args.seconds, args.fps, args.size, args.seed)
        elif args.kind == "empty":
            truth = empty_video(args.output, args.seconds, args.fps, args.size, args.seed)
        else:
            truth = walking_video(args.output, args.seconds, args.fps, args.size, args.kind, seed=args.seed)
    except MonalisaError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"wrote {args.output} ({len(truth.frames)} frames) and {truth_path(args.output)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
