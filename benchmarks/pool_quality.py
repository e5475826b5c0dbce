"""Measure the gaze a pool's frames show, in degrees, with FaceMesh, independently of the engine.

    python benchmarks/pool_quality.py PORTRAIT POOL [--build [--config FILE]] [--yaw-steps 33]
                                      [--pitch-steps 1] [--max-yaw 30] [--max-pitch 15] [--tta 8]

PORTRAIT is an image file, or ``grace_hopper`` / ``astronaut`` for the portraits shipped with
matplotlib / scikit-image. Every frame is composited exactly as the kiosk shows it, cropped to the
same square around each of the portrait's heads (precompute.perceived: 1.9x the landmarks' larger
side), scaled to 512 px and read by FaceMesh (3D, irises):

* head yaw / pitch: Kabsch fit of the rigid landmarks against the portrait's own, so relative;
* eye yaw / pitch: asin(iris shift from the corner midpoint, in eye widths, / 0.43), along / across
  the corner axis; gaze = head + eye;
* the measured (absolute) gaze of a frame = the portrait's painted gaze (read_gaze without a
  reference: head pose from the face's symmetry) + the frame's change from the portrait.

Per row (yaw along the columns) it prints the measured gaze of every frame, the ranges of gaze, head
and eyes, Spearman of measured against manifest degrees (the frame order), and the least-squares fit
of measured gaze against the manifest's yaw (slope, RMS residual about the fit, offset at 0 as info);
per column the same for pitch along the rows, as info. Floors (issue 10): gaze range >= 50 deg, head
range >= 15, Spearman >= 0.99, slope 0.8-1.25, RMS residual <= 3 deg, texture kept >= 0.85 (in the
face box), mean difference <= 1 grey level outside each head square (outside the landmarks' face
boxes: info), the face found in every frame. The exit code is 0 only if all pass.

FaceMesh's reading depends on where the face lands on its input pixel grid (single reads jitter by
a degree or two), so each frame's landmarks are the mean over ``--tta`` N views (default 8): the
square moved by up to +-2 px of the crop and scaled by up to +-3 % (fixed seed, the same views for
every frame), the landmarks mapped back into the unmoved square. ``--tta 1`` reads the square once.
``--build`` first builds POOL from PORTRAIT with the warp engine (``--config``: settings from that
file) and prints the build time. ``--sheet FILE`` writes the eyes of a few frames, enlarged.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monalisa.images import read_image
from monalisa.pool.format import Pool, load_pool
from precompute.perceived import (
    GazeReading,
    head_square,
    read_gaze,
    relative_reading,
    steady_landmarks,
)
from precompute.portrait import FaceMeshSession, find_faces

TTA_VIEWS = 8
TTA_JITTER = (2.0, 0.03)        # most shift (px of the 512-px crop) and scale change of a view
TTA_SEED = 0
FLOORS = {  # name: (low, high); None = unbounded
    "gaze range": (50.0, None),
    "head range": (15.0, None),
    "Spearman": (0.99, None),
    "slope": (0.8, 1.25),
    "RMS residual": (None, 3.0),
    "texture kept (min)": (0.85, None),
    "diff outside heads (max)": (None, 1.0),
    "face found": (1.0, None),
}


def shipped_portrait(name: str) -> Path:
    """A portrait file by path, or one of the names of portraits shipped in packages."""
    if name == "grace_hopper":
        import matplotlib

        return Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if name == "astronaut":
        import skimage

        return Path(skimage.__file__).parent / "data" / "astronaut.png"
    return Path(name)


def jitters(views: int, seed: int = TTA_SEED) -> np.ndarray:
    """``views`` (dx, dy, scale change) square jitters, the first one none; the same for a given seed."""
    shift, scale = TTA_JITTER
    rng = np.random.default_rng(seed)
    found = np.column_stack([rng.uniform(-shift, shift, views), rng.uniform(-shift, shift, views),
                             rng.uniform(-scale, scale, views)])
    found[0] = 0.0
    return found


def spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman rank correlation of two equally long sequences (ties share their mean rank;
    0 for fewer than 3 values or no spread)."""
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    if len(first) < 3 or np.ptp(first) == 0 or np.ptp(second) == 0:
        return 0.0
    return float(np.corrcoef(_ranks(first), _ranks(second))[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


def line_fit(manifest: np.ndarray, measured: np.ndarray) -> tuple[float, float, float]:
    """(slope, offset at manifest 0, RMS residual) of the least-squares line measured ~ manifest."""
    manifest, measured = np.asarray(manifest, np.float64), np.asarray(measured, np.float64)
    if len(manifest) < 2 or np.ptp(manifest) == 0:
        return 0.0, float(np.mean(measured) - np.mean(manifest)), 0.0
    slope, offset = np.polyfit(manifest, measured, 1)
    residual = measured - (slope * manifest + offset)
    return float(slope), float(offset), float(np.sqrt(np.mean(residual ** 2)))


@dataclass
class Sweep:
    """One line of frames (a row's columns or a column's rows): manifest degrees and readings."""

    manifest: np.ndarray                 # degrees the manifest claims
    gaze: np.ndarray                     # measured absolute gaze (painted + change)
    head: np.ndarray                     # measured head, relative to the portrait
    eyes: np.ndarray                     # measured eye-in-head

    def numbers(self) -> dict[str, float]:
        slope, offset, rms = line_fit(self.manifest, self.gaze)
        return {"gaze range": float(np.ptp(self.gaze)), "head range": float(np.ptp(self.head)),
                "eyes range": float(np.ptp(self.eyes)), "Spearman": spearman(self.manifest, self.gaze),
                "slope": slope, "RMS residual": rms, "offset": offset}


def sweep_of(readings: list[GazeReading], manifest: list[float], portrait: GazeReading,
             painted: GazeReading, axis: str) -> Sweep:
    """The measured degrees along ``axis`` ("yaw" or "pitch") of a line of frames."""
    head = np.array([getattr(r, f"head_{axis}") for r in readings])
    eyes = np.array([getattr(r, f"eye_{axis}") for r in readings])
    change = head + eyes - getattr(portrait, axis)         # portrait read against itself: head 0
    return Sweep(np.array(manifest, np.float64), getattr(painted, axis) + change, head, eyes)


def laplacian_variance(image: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def box_slices(x0: float, y0: float, x1: float, y1: float, shape: tuple[int, ...]) -> tuple[slice, slice]:
    return (slice(max(0, int(y0)), min(shape[0], int(np.ceil(y1)))),
            slice(max(0, int(x0)), min(shape[1], int(np.ceil(x1)))))


@dataclass
class FaceReport:
    """Everything measured for one face of the portrait."""

    painted: GazeReading
    rows: list[Sweep]
    cols: list[Sweep]
    values: dict[str, float]             # judged, non-sweep measures
    info: dict[str, float]               # printed, not judged


def measure(pool: Pool, portrait: np.ndarray, session: FaceMeshSession, views: int = TTA_VIEWS) -> list[FaceReport]:
    """Measure every face of the portrait in every frame of the pool."""
    faces = find_faces(portrait, session=session)
    squares = [head_square(face.landmarks) for face in faces]
    frames = {cell: pool.frame(*cell) for cell in pool.cells()}
    outside_heads = np.ones(portrait.shape[:2], bool)
    outside_faces = np.ones(portrait.shape[:2], bool)
    for (x0, y0, size), face in zip(squares, faces):
        outside_heads[box_slices(x0, y0, x0 + size, y0 + size, portrait.shape)] = False
        outside_faces[box_slices(*face.box, portrait.shape)] = False
    outside_diff, face_diff = (max(_mean_diff(f, portrait, mask) for f in frames.values())
                               for mask in (outside_heads, outside_faces))
    shifts = jitters(max(1, views))
    reports = []
    for face, square in zip(faces, squares):
        region = box_slices(*face.box, portrait.shape)
        texture = min(laplacian_variance(f[region]) for f in frames.values()) / laplacian_variance(portrait[region])
        painted = read_gaze(portrait, square, session)
        reference = steady_landmarks(portrait, square, session, shifts)
        if painted is None or reference is None:
            raise SystemExit("FaceMesh finds no face in the portrait's own head square; nothing to measure")
        itself = relative_reading(reference, reference)
        found = {cell: steady_landmarks(f, square, session, shifts) for cell, f in frames.items()}
        readings = {cell: relative_reading(pts, reference) for cell, pts in found.items() if pts is not None}
        rows, cols = [], []
        if len(readings) == len(frames):
            # each patch's own label: what the manifest says it shows (cells beyond the reach say the reach)
            label = {(e.row, e.col): (e.yaw, e.pitch) for e in pool.manifest.patches}
            rows = [sweep_of([readings[(r, c)] for c in range(pool.cols)],
                             [label[(r, c)][0] for c in range(pool.cols)], itself, painted, "yaw")
                    for r in range(pool.rows)]
            cols = [sweep_of([readings[(r, c)] for r in range(pool.rows)],
                             [label[(r, c)][1] for r in range(pool.rows)], itself, painted, "pitch")
                    for c in range(pool.cols)] if pool.rows > 1 else []
        values = {"texture kept (min)": texture, "diff outside heads (max)": outside_diff,
                  "face found": len(readings) / len(frames)}
        reports.append(FaceReport(painted, rows, cols, values, {"diff outside face boxes (max)": face_diff}))
    return reports


def _mean_diff(frame: np.ndarray, portrait: np.ndarray, mask: np.ndarray) -> float:
    """Mean absolute difference in grey levels (all channels) over ``mask``; 0 for an empty mask."""
    return float(np.abs(frame.astype(np.int16) - portrait)[mask].mean()) if mask.any() else 0.0


def judge(name: str, value: float) -> tuple[str, bool]:
    """(floor text, passed) for a judged number."""
    low, high = FLOORS[name]
    ok = (low is None or value >= low) and (high is None or value <= high)
    text = f"{low:g}..{high:g}" if low is not None and high is not None else (
        f">= {low:g}" if low is not None else f"<= {high:g}")
    return text, ok


def print_sweep(label: str, sweep: Sweep, judged: bool) -> bool:
    """Print one sweep's numbers; whether all judged ones pass."""
    numbers = sweep.numbers()
    print(f"  {label}: measured " + " ".join(f"{g:+.1f}" for g in sweep.gaze))
    print(f"    gaze {sweep.gaze.min():+.1f}..{sweep.gaze.max():+.1f}, head {sweep.head.min():+.1f}.."
          f"{sweep.head.max():+.1f}, eyes {sweep.eyes.min():+.1f}..{sweep.eyes.max():+.1f} "
          f"(manifest {sweep.manifest.min():+.1f}..{sweep.manifest.max():+.1f}); offset at 0 "
          f"{numbers['offset']:+.1f} deg (info)")
    all_ok = True
    for name in ("gaze range", "head range", "Spearman", "slope", "RMS residual", "eyes range"):
        if judged and name in FLOORS:
            floor, ok = judge(name, numbers[name])
            all_ok &= ok
            print(f"    {name:26s} {numbers[name]:8.3f}  (floor {floor})  {'PASS' if ok else 'FAIL'}")
        else:
            print(f"    {name:26s} {numbers[name]:8.3f}  (info)")
    return all_ok


def write_sheet(pool: Pool, box: tuple[float, float, float, float], path: Path) -> None:
    """The eyes of five frames across the neutral row, enlarged, stacked top to bottom."""
    x0, y0, x1, y1 = box
    region = box_slices(x0, y0 + 0.15 * (y1 - y0), x1, y0 + 0.55 * (y1 - y0), pool.portrait.shape)
    row = pool.neutral_cell()[0]
    cols = sorted({round(i * (pool.cols - 1) / 4) for i in range(5)})
    scale = max(1, 600 // max(1, region[1].stop - region[1].start))
    sheet = np.vstack([cv2.resize(pool.frame(row, c)[region], None, fx=scale, fy=scale,
                                  interpolation=cv2.INTER_NEAREST) for c in cols])
    ok, data = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if ok:
        data.tofile(str(path))


def build(portrait: Path, out: Path, args: argparse.Namespace) -> float:
    """Build the pool with the warp engine (settings from ``args.config``, else the defaults); seconds taken."""
    from monalisa.config import load_config
    from precompute.build import PrecomputeOptions, build_pool

    settings = load_config(args.config)
    start = time.perf_counter()
    options = PrecomputeOptions(portrait=portrait, out=out, engine="warp", yaw_steps=args.yaw_steps,
                                pitch_steps=args.pitch_steps, max_yaw=args.max_yaw, max_pitch=args.max_pitch,
                                sheet=False)
    build_pool(options, settings, progress=False)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("portrait", help="image file, or grace_hopper / astronaut")
    parser.add_argument("pool", type=Path)
    parser.add_argument("--build", action="store_true", help="build POOL from PORTRAIT first (warp engine)")
    parser.add_argument("--config", type=Path, help="with --build: take the settings from this file")
    parser.add_argument("--yaw-steps", type=int, default=33)
    parser.add_argument("--pitch-steps", type=int, default=1)
    parser.add_argument("--max-yaw", type=float, default=30.0)
    parser.add_argument("--max-pitch", type=float, default=15.0)
    parser.add_argument("--sheet", type=Path, help="write enlarged eye crops of five frames here")
    parser.add_argument("--tta", type=int, default=TTA_VIEWS, metavar="N",
                        help=f"average FaceMesh over N jittered views per frame (default {TTA_VIEWS}; 1: one read)")
    args = parser.parse_args(argv)
    if args.tta < 1:
        parser.error("--tta must be >= 1")
    portrait_path = shipped_portrait(args.portrait)
    if args.build:
        seconds = build(portrait_path, args.pool, args)
        print(f"build time: {seconds:.2f} s ({args.yaw_steps}x{args.pitch_steps} frames)")
    portrait = read_image(portrait_path)
    pool = load_pool(args.pool)
    if pool.portrait.shape != portrait.shape:
        raise SystemExit(f"{args.pool} was built from a {pool.portrait.shape[1]}x{pool.portrait.shape[0]} "
                         f"portrait, not this {portrait.shape[1]}x{portrait.shape[0]} one")
    start = time.perf_counter()
    with FaceMeshSession() as session:
        reports = measure(pool, portrait, session, args.tta)
        if args.sheet:
            write_sheet(pool, find_faces(portrait, "largest", session=session)[0].box, args.sheet)
    print(f"{portrait_path.name}: {pool.rows}x{pool.cols} frames, patch {pool.patch_rect.width}x"
          f"{pool.patch_rect.height}, FaceMesh over {args.tta} view(s) per frame, "
          f"{time.perf_counter() - start:.1f} s")
    all_pass = True
    for index, report in enumerate(reports):
        p = report.painted
        print(f"face {index + 1} of {len(reports)}: painted gaze yaw {p.yaw:+.1f} (head {p.head_yaw:+.1f}, eyes "
              f"{p.eye_yaw:+.1f}), pitch {p.pitch:+.1f} (head {p.head_pitch:+.1f}, eyes {p.eye_pitch:+.1f}) deg "
              f"(absolute: eyes = line of sight - head, see precompute/perceived.py)")
        for name, value in report.values.items():
            floor, ok = judge(name, value)
            all_pass &= ok
            print(f"  {name:28s} {value:8.3f}  (floor {floor})  {'PASS' if ok else 'FAIL'}")
        for name, value in report.info.items():
            print(f"  {name:28s} {value:8.3f}  (info)")
        if not report.rows:
            all_pass = False
            print("  no sweep numbers: FaceMesh missed the face in some frames")
        for row, sweep in enumerate(report.rows):
            all_pass &= print_sweep(f"row {row} (pitch {pool.manifest.pitches[row]:+g}), yaw", sweep, True)
        for col, sweep in enumerate(report.cols):
            if col in (0, pool.neutral_cell()[1], pool.cols - 1):
                print_sweep(f"column {col} (yaw {pool.manifest.yaws[col]:+g}), pitch", sweep, False)
    print("ALL PASS" if all_pass else "SOME FAIL")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
