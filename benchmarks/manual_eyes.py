"""Manual eyes on generated stylised faces: does the sweep from hand-given points look as good as a detected one?

For each drawn style (monalisa.testing.drawn_faces) the eye points are given a few pixels off, the
warp engine renders the yaw sweep, and the painted iris is tracked by template matching (FaceMesh
cannot read these faces). Printed per style, fitted eyes (precompute.eye_fit) against the old
fixed almond and against the drawn geometry itself (truth: what a perfect fit would give): iris
range (eye widths), Spearman, largest/mean step, how well the opening covers the drawn one (IoU),
and the damage outside the drawn opening (mean absolute change of the skin and lid pixels around
the eye, grey levels, with the head kept still: streaks and pinched sockets show up here).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import cv2
import numpy as np

from monalisa.config import WarpConfig
from monalisa.testing.drawn_faces import STYLES, DrawnEye, drawn_face
from precompute.engine import grid_angles
from precompute.portrait import EyeGeometry, faces_from_eye_points
from precompute.warp import WarpEngine

JITTER = ((3.0, -2.0), (-2.0, 3.0))  # how far off the given points are, per eye (px)
FLOORS = {"range": (0.30, "min"), "spearman": (0.99, "min"), "step": (1.5, "max"), "damage": (0.5, "max")}


def opening_mask(shape: tuple[int, ...], eye: DrawnEye, style: str) -> np.ndarray:
    """The drawn opening as a boolean mask."""
    mask = np.zeros(shape[:2], np.uint8)
    cx, cy = eye.opening_center
    if style == "round":
        cv2.ellipse(mask, (round(cx * 8), round(cy * 8)), (round(eye.half_width * 8), round(eye.half_height * 8)),
                    0, 0, 360, 1, -1, shift=3)
    else:
        t = np.linspace(-1, 1, 40)
        h = eye.half_height * (1 - t**2) ** 0.9
        poly = np.vstack([np.column_stack([cx + eye.half_width * t, cy - h]),
                          np.column_stack([cx + eye.half_width * t, cy + 0.8 * h])[::-1]])
        cv2.fillPoly(mask, [np.round(poly * 8).astype(np.int32)], 1, shift=3)
    return mask.astype(bool)


def track_iris(frames: list[np.ndarray], portrait: np.ndarray, eye: DrawnEye) -> np.ndarray:
    """x of the painted iris in every frame (template matching at 4x, parabolic sub-pixel peak)."""
    scale = 4
    r = eye.iris_radius
    x, y = eye.center
    x0, y0 = int(x - 3.5 * r), int(y - 1.6 * r)
    x1, y1 = int(x + 3.5 * r), int(y + 1.6 * r)

    def region(image):
        grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32)
        return cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)

    reference = region(portrait)
    h = int(0.7 * r * scale)
    cxs, cys = int((x - x0) * scale), int((y - y0) * scale)
    template = reference[cys - h:cys + h + 1, cxs - h:cxs + h + 1]
    xs = []
    for image in frames:
        score = cv2.matchTemplate(region(image), template, cv2.TM_CCOEFF_NORMED)
        py, px = np.unravel_index(int(np.argmax(score)), score.shape)
        dx = 0.0
        if 0 < px < score.shape[1] - 1:
            a, b, c = score[py, px - 1:px + 2]
            dx = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) < 0 else 0.0
        xs.append(x0 + (px + dx + h) / scale)
    return np.array(xs)


def true_eye(eye: DrawnEye, style: str) -> EyeGeometry:
    """The drawn eye's own geometry (what a perfect fit would give)."""
    cx, cy = eye.opening_center
    t = np.linspace(-1, 1, 13)
    if style == "round":
        upper = np.column_stack([cx + eye.half_width * t, cy - eye.half_height * np.sqrt(1 - t**2)])
        lower = np.column_stack([cx + eye.half_width * t, cy + eye.half_height * np.sqrt(1 - t**2)])
    else:
        h = eye.half_height * (1 - t**2) ** 0.9
        upper = np.column_stack([cx + eye.half_width * t, cy - h])
        lower = np.column_stack([cx + eye.half_width * t, cy + 0.8 * h])
    return EyeGeometry(eye.center, eye.iris_radius, tuple(upper[0]), tuple(upper[-1]), upper, lower)


def measure(style: str, offset: float, eyes: str, steps: int, max_yaw: float, sheet: Path | None) -> dict:
    """The numbers for one drawn face; ``eyes``: "fitted", "fixed" (the old almond) or "truth"."""
    face = drawn_face(style, iris_offset=offset)
    points = [coord + jitter for eye, j in zip(face.eyes, JITTER) for coord, jitter in zip(eye.center, j)]
    [geometry] = faces_from_eye_points(face.image, tuple(points), fit=eyes != "fixed", warn=False)
    if eyes == "truth":
        geometry = dataclasses.replace(geometry, left_eye=true_eye(face.eyes[0], style),
                                       right_eye=true_eye(face.eyes[1], style))
    yaws = grid_angles(steps, max_yaw)
    engine = WarpEngine(face.image, [geometry], WarpConfig(head_follow=0.0), yaws, [0.0])  # eyes only
    rect = engine.patch_rect()
    frames = []
    for yaw in yaws:
        frame = face.image.copy()
        frame[rect.slices] = engine.render(yaw, 0.0)
        frames.append(frame)
    numbers: dict[str, list[float]] = {"range": [], "spearman": [], "step": [], "damage": [], "iou": []}
    for drawn, fitted in zip(face.eyes, geometry.eyes):
        width = 2 * drawn.half_width
        xs = (track_iris(frames, face.image, drawn) - drawn.center[0]) / width
        steps_ = np.abs(np.diff(xs))
        numbers["range"].append(float(xs[-1] - xs[0]))
        numbers["spearman"].append(_spearman(xs))
        numbers["step"].append(float(steps_.max() / max(steps_.mean(), 1e-9)))
        truth = opening_mask(face.image.shape, drawn, style)
        ring = cv2.dilate(truth.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=int(0.35 * width)) > 0
        ring &= ~cv2.dilate(truth.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
        grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float32) for f in frames]
        base = cv2.cvtColor(face.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        numbers["damage"].append(float(np.mean([np.abs(g - base)[ring].mean() for g in grey])))
        mask = np.zeros(face.image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(fitted.opening * 8).astype(np.int32)], 1, shift=3)
        numbers["iou"].append(float((mask.astype(bool) & truth).sum() / (mask.astype(bool) | truth).sum()))
    if sheet is not None:
        centres = np.array([e.center for e in face.eyes])
        (x0, y0), (x1, y1) = centres.min(axis=0) - 60, centres.max(axis=0) + 60
        crops = [cv2.resize(f[int(y0 + 35):int(y1 - 35), int(x0):int(x1)], None, fx=2, fy=2,
                            interpolation=cv2.INTER_CUBIC) for f in frames[::max(1, len(frames) // 6)]]
        cv2.imwrite(str(sheet), cv2.cvtColor(np.vstack(crops), cv2.COLOR_RGB2BGR))
    worst = {"range": min, "spearman": min, "step": max, "damage": max, "iou": min}
    return {name: worst[name](values) for name, values in numbers.items()}


def _spearman(values: np.ndarray) -> float:
    ranks = np.argsort(np.argsort(values)).astype(float)
    order = np.arange(len(values), dtype=float)
    return float(np.corrcoef(ranks, order)[0, 1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--yaw-steps", type=int, default=33)
    parser.add_argument("--max-yaw", type=float, default=30.0)
    parser.add_argument("--sheets", type=Path, help="write each sweep's eye crops here (directory)")
    args = parser.parse_args(argv)
    if args.sheets:
        args.sheets.mkdir(parents=True, exist_ok=True)
    all_pass = True
    print(f"{'style':14s} {'eyes':8s} " + " ".join(f"{n:>9s}" for n in (*FLOORS, "iou")))
    for style in STYLES:
        for offset in (0.0, 0.6):
            for eyes in ("fitted", "fixed", "truth"):
                sheet = args.sheets / f"{style}_{offset:g}_{eyes}.png" if args.sheets else None
                values = measure(style, offset, eyes, args.yaw_steps, args.max_yaw, sheet)
                ok = all(values[n] >= f if k == "min" else values[n] <= f for n, (f, k) in FLOORS.items())
                if eyes == "fitted":
                    all_pass &= ok
                print(f"{style + f' {offset:+.1f}':14s} {eyes:8s} "
                      + " ".join(f"{values[n]:9.3f}" for n in (*FLOORS, "iou")) + ("" if ok else "  FAIL"))
    print("floors: " + ", ".join(f"{n} {'>=' if k == 'min' else '<='} {f:g}" for n, (f, k) in FLOORS.items())
          + " (worst eye); " + ("ALL PASS (fitted)" if all_pass else "SOME FAIL (fitted)"))
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
