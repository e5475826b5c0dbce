"""Kiosk loop speed on a generated 640x480 camera video, headless and in a real 1920x1080 window.

    .venv/bin/python benchmarks/kiosk_latency.py [--pool DIR] [--seconds 12]

1. Headless, not paced (every frame as fast as possible), the built-in pool (or --pool):
   latency grab -> display p95 and throughput.
2. A real 1920x1080 fullscreen window ($DISPLAY, else a private Xvfb screen), not paced, a
   head-sized patch (600x700 on screen) with blink frames: latency grab -> display p95, so the
   display's own cost is in the figure.
3. The same window paced at the video's 30 fps, as a webcam delivers frames, on a walk that
   leaves the room empty (so the portrait blinks and glances around): share of camera frames
   processed and the kiosk's CPU (process CPU time / wall time, all threads).

Exit status 1 if a floor fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _report import check  # noqa: E402  (this script's folder is on sys.path)

from monalisa.config import Config  # noqa: E402
from monalisa.ops.bench import bench_pool, format_report, measure, real_display  # noqa: E402
from monalisa.pool.format import load_pool  # noqa: E402
from monalisa.testing.pools import BlinkingPool, grid_pool  # noqa: E402
from monalisa.testing.synthetic import Actor, Pose, render_video, walker  # noqa: E402

SCREEN = (1920, 1080)
HEAD_PORTRAIT = (810, 1080)          # shown 1:1 on the 1080-high screen
HEAD_PATCH = (105, 190, 600, 700)    # x, y, width, height: a head turn's patch


def walk_and_leave(seconds: float):
    """Someone crosses the frame in 4 s, then walks out: the rest of the video nobody is there."""
    cross = walker("walk", 4.0, 0.08)

    def pose(t: float) -> Pose:
        if t <= 4.0:
            return cross(t)
        return Pose(0.85 + 0.6 * (t - 4.0), 0.42, 0.08)   # out of the frame within a second
    return pose


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", help="pool directory for the headless run (default: the built-in pool)")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of the generated video")
    args = parser.parse_args()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    config = Config()
    pool = load_pool(args.pool) if args.pool else bench_pool(config)
    print(f"pool {pool.directory} ({pool.manifest.width}x{pool.manifest.height}, {pool.rows}x{pool.cols} cells, "
          f"{len(pool.blink_stages)} blink stages)")
    results = []
    with tempfile.TemporaryDirectory(prefix="kiosk-latency-") as tmp:
        video = Path(tmp) / "walk.avi"
        truth = render_video(video, args.seconds, [Actor("grace_hopper", walk_and_leave(args.seconds))])
        fast = measure(config, video, pool, pace=False)
        print(format_report(fast, "headless, not paced:"))
        head = BlinkingPool(grid_pool(Path(tmp) / "head", cols=33, portrait_size=HEAD_PORTRAIT, patch=HEAD_PATCH))
        window = Config()
        window.render.fullscreen = True
        window.viewer.idle_after_s = 1.0                    # idle soon after the walker leaves ...
        window.life.glance_pause_min_s, window.life.glance_pause_max_s = 0.5, 1.5   # ... and glance often
        with real_display(SCREEN) as display:
            if display is None:
                print("no $DISPLAY and no Xvfb: the window is not measured (apt-get install -y xvfb)")
                return 1
            shown = measure(window, video, head, pace=False, window=True)
            print(format_report(shown, f"real {shown.window[0]}x{shown.window[1]} window on {display}, "
                                       f"patch {HEAD_PATCH[2]}x{HEAD_PATCH[3]}, not paced:"))
            paced = measure(window, video, head, pace=True, window=True)
            print(format_report(paced, "the same window, paced at 30 fps:"))
    blinks, glances = paced.count("blink"), paced.count("glance")
    print(f"paced run: {blinks} blinks, {glances} glances in {paced.wall_s:.1f} s")
    print()
    results += [
        check("headless: latency grab->display p95", fast.percentiles("total")[1], "<= 8",
              fast.percentiles("total")[1] <= 8.0, "ms", width=52),
        check("headless: throughput", fast.throughput, ">= 100", fast.throughput >= 100.0, "frames/s", width=52),
        check("1920x1080 window: latency grab->display p95", shown.percentiles("total")[1], "<= 16",
              shown.percentiles("total")[1] <= 16.0, "ms", width=52),
        check("window, paced 30 fps: camera frames processed", paced.frames / len(truth.frames), "all (1.0)",
              paced.frames == len(truth.frames), width=52),
        check("window, paced 30 fps: kiosk CPU", paced.cpu_cores, "< 0.5", paced.cpu_cores < 0.5, "cores",
              width=52),
        check("window, paced 30 fps: blinks and glances seen", min(blinks, glances), ">= 1",
              min(blinks, glances) >= 1, width=52),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
