"""How closely the shown column follows a real face, on generated videos with known eye positions.

    .venv/bin/python benchmarks/tracking_accuracy.py [--seconds 6]

The real loop (BlazeFace, viewer tracker, mapping, hysteresis) runs headless, as fast as it
can but with frames stamped 1/30 s apart as a camera would deliver them (so the result does
not depend on the machine's load), on `monalisa.testing.synthetic` videos of a face crossing the camera's view, with the
linear mapping
(the floors below) and then the geometric one (same floors, for information). The *ideal*
column is what the same mapping gives for the TRUE eye midpoint (and, for geometric, the
true distance between the eyes) of each frame, without filtering or hysteresis.

1. While the face moves: share of frames whose shown column is within 1 of the ideal.
2. While the face stands still: how many times the shown column changes, counted from
   SETTLE_S after it stopped (the filter may finish catching up in that time).

Exit status 1 if a floor fails.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _report import check  # noqa: E402  (this script's folder is on sys.path)

from monalisa.config import Config  # noqa: E402
from monalisa.kiosk.gaze import make_mapping  # noqa: E402
from monalisa.ops.bench import grid_pool, measure  # noqa: E402
from monalisa.testing.synthetic import GroundTruth, walking_video  # noqa: E402

COLS = 33
SETTLE_S = 0.5
STILL_EPS = 1e-6  # true eye movement per frame below this counts as standing still


def ideal_columns(truth: GroundTruth, mapping) -> np.ndarray:
    """The column each frame's TRUE eye midpoint (and true eye distance) maps to."""
    size = (truth.width, truth.height)
    return np.array([min(max(math.floor(mapping.target(faces[0].eye_mid, faces[0].eye_distance_px, size)[1] + 0.5),
                             0), COLS - 1) for faces in truth.frames])


def moving_mask(truth: GroundTruth) -> np.ndarray:
    """True for frames where the true eye midpoint moved since the previous frame."""
    x = np.array([faces[0].eye_mid[0] for faces in truth.frames])
    moved = np.abs(np.diff(x, prepend=x[0])) > STILL_EPS
    moved[0] = moved[1] if len(moved) > 1 else False
    return moved


def evaluate(mapping: str, videos: list[tuple[str, str, Path, GroundTruth]], pool) -> tuple[int, int, int]:
    """Run the loop on every video with this mapping; (frames within 1 while moving, moving frames, still changes)."""
    config = Config()
    config.gaze.mapping = mapping
    ideal_of = make_mapping(config.gaze, pool.manifest.yaws, pool.manifest.pitches)
    within = moving = changes = 0
    for kind, head, video, truth in videos:
        result = measure(config, video, pool, timeline=True)
        assert np.array_equal(result.indices, np.arange(len(truth.frames))), "every frame, in order"
        shown = result.cells[:, 1]
        ideal = ideal_columns(truth, ideal_of)
        move = moving_mask(truth)
        ok = np.abs(shown - ideal) <= 1
        # still: from SETTLE_S after the last moving frame (or after the start if it never moves)
        last_move = int(np.flatnonzero(move)[-1]) if move.any() else 0
        still_from = last_move + int(round(SETTLE_S * truth.fps))
        still_changes = int(np.count_nonzero(np.diff(shown[still_from:]))) if still_from < len(shown) else 0
        worst = int(np.abs(shown - ideal)[move].max()) if move.any() else 0
        print(f"{mapping:<10} {kind:<16} {head:<13} moving within 1: {ok[move].sum():4d}/{move.sum():<4d} "
              f"worst {worst}   still frames {max(0, len(shown) - still_from):4d} changes {still_changes}")
        within += int(ok[move].sum())
        moving += int(move.sum())
        changes += still_changes
    return within, moving, changes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each generated video")
    args = parser.parse_args()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    runs = [("walk", "grace_hopper", 0), ("walk", "astronaut", 1),
            ("walk_then_still", "grace_hopper", 2), ("walk_then_still", "astronaut", 3),
            ("still", "grace_hopper", 4)]
    results = []
    with tempfile.TemporaryDirectory(prefix="tracking-") as tmp:
        pool = grid_pool(Path(tmp) / "pool", cols=COLS)
        videos = []
        for kind, head, seed in runs:
            video = Path(tmp) / f"{kind}-{head}.avi"
            videos.append((kind, head, video, walking_video(video, seconds=args.seconds, path_kind=kind,
                                                            head=head, seed=seed)))
        for mapping in ("linear", "geometric"):
            within, moving, changes = evaluate(mapping, videos, pool)
            share = within / max(moving, 1)
            results.append((mapping, share, changes))
    print()
    ok = []
    for mapping, share, changes in results:
        ok.append(check(f"{mapping}: moving, shown column within 1 of ideal (share)", share, ">= 0.95", share >= 0.95,
                        width=60))
        ok.append(check(f"{mapping}: still, column changes", changes, "0", changes == 0, width=60))
    return 0 if all(ok) else 1


if __name__ == "__main__":
    raise SystemExit(main())
