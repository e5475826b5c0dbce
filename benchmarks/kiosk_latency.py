"""Kiosk loop speed, headless, on a generated 640x480 walking video.

    .venv/bin/python benchmarks/kiosk_latency.py [--pool DIR] [--seconds 10]

1. Not paced (every frame as fast as possible): latency grab -> display p95 and throughput.
2. Paced at the video's 30 fps, as a webcam would deliver: share of camera frames processed
   and the kiosk's CPU use (process CPU time / wall time, all threads).

The pool defaults to the built-in one (built on first use). Exit status 1 if a floor fails.
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
from monalisa.ops.bench import bench_pool, format_report, measure  # noqa: E402
from monalisa.pool.format import load_pool  # noqa: E402
from monalisa.testing.synthetic import walking_video  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", help="pool directory (default: the built-in pool)")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the generated video")
    args = parser.parse_args()
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    config = Config()
    pool = load_pool(args.pool) if args.pool else bench_pool(config)
    print(f"pool {pool.directory} ({pool.manifest.width}x{pool.manifest.height}, {pool.rows}x{pool.cols} cells)")
    with tempfile.TemporaryDirectory(prefix="kiosk-latency-") as tmp:
        video = Path(tmp) / "walk.avi"
        truth = walking_video(video, seconds=args.seconds, size=(640, 480))
        fast = measure(config, video, pool, pace=False)
        paced = measure(config, video, pool, pace=True)
    print(format_report(fast, "not paced:"))
    print(format_report(paced, "paced at 30 fps:"))
    print()
    results = [
        check("latency grab->display p95 (not paced)", fast.percentiles("total")[1], "<= 8",
              fast.percentiles("total")[1] <= 8.0, "ms"),
        check("throughput (not paced)", fast.throughput, ">= 100", fast.throughput >= 100.0, "frames/s"),
        check("camera frames processed (paced 30 fps)", paced.frames / len(truth.frames), "all (1.0)",
              paced.frames == len(truth.frames)),
        check("kiosk CPU (paced 30 fps)", paced.cpu_cores, "< 0.5", paced.cpu_cores < 0.5, "cores"),
    ]
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
