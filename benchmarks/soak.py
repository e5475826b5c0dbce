"""Soak test: run the headless kiosk for MINUTES on a looping synthetic camera video and check it stays healthy.

    python benchmarks/soak.py 3            # 3 minutes; prints RSS, frames, stalls and PASS/FAIL

The kiosk runs in this process (the real ``run_kiosk``: camera thread, BlazeFace, renderer with
the SDL dummy driver) on a 640x480 video paced at 30 fps and looped, like a webcam that never
stops. A background thread samples RSS once a second; the loop's trace gives every processed
frame's capture time and the health lines give the longest gap between display updates.
PASS needs: RSS growth after warm-up (end minus the lowest point after warm-up) < 20 MB,
and no stall (gap between processed frames or display updates) longer than 1 s.
Exit code 0 on PASS, 1 on FAIL.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

MAX_GROWTH_MB = 20.0
MAX_STALL_S = 1.0


class RssSampler(threading.Thread):
    """Samples this process's RSS (MB) every ``period_s`` until stopped."""

    def __init__(self, period_s: float = 1.0):
        super().__init__(name="rss-sampler", daemon=True)
        self.period_s = period_s
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MB)
        self._stop_event = threading.Event()
        self._start = time.monotonic()

    def run(self) -> None:
        from monalisa.ops.health import rss_mb

        while not self._stop_event.is_set():
            self.samples.append((time.monotonic() - self._start, rss_mb()))
            self._stop_event.wait(self.period_s)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


class HealthCollector(logging.Handler):
    """Keeps the snapshot attached to every health line."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.snapshots: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        if hasattr(record, "health"):
            self.snapshots.append(record.health)


def median_rss(samples: list[tuple[float, float]], t0: float, t1: float) -> float:
    """Median RSS of the samples taken between t0 and t1 seconds (robust to one-off spikes)."""
    window = [mb for t, mb in samples if t0 <= t <= t1]
    return statistics.median(window) if window else float("nan")


def trace_gaps(path: Path) -> tuple[int, float, float]:
    """(frames, longest gap between consecutive processed frames' capture times, first-to-last seconds)."""
    times = [json.loads(line)["t"] for line in path.read_text().splitlines() if line.strip()]
    gaps = [b - a for a, b in zip(times, times[1:])]
    return len(times), max(gaps, default=float("inf")), (times[-1] - times[0]) if times else 0.0


def make_video(directory: Path, seconds: float) -> Path:
    """A person walking across a 640x480 frame, written once and looped by the camera source."""
    from monalisa.testing.synthetic import walking_video

    path = directory / "soak-walk.avi"
    walking_video(path, seconds=seconds, fps=30, size=(640, 480), path_kind="walk_then_still")
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the soak and print the verdict."""
    parser = argparse.ArgumentParser(prog="benchmarks/soak.py", description=__doc__.splitlines()[0])
    parser.add_argument("minutes", type=float, help="how long to run the kiosk")
    parser.add_argument("--pool", help="pool directory (default: the built-in pool)")
    parser.add_argument("--video", help="camera video to loop (default: a generated 20 s walk)")
    parser.add_argument("--warmup-s", type=float,
                        help="warm-up before RSS growth counts (default: min(60, 1/3 of the run))")
    parser.add_argument("--health-s", type=float, default=30.0, help="seconds between health lines")
    parser.add_argument("--json", type=Path, help="also write the numbers as JSON here")
    args = parser.parse_args(argv)

    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    from monalisa.config import Config
    from monalisa.kiosk.loop import KioskOptions, run_kiosk
    from monalisa.ops.logs import setup_logging
    from monalisa.pool.builtin import choose_pool
    from monalisa.pool.format import load_pool

    total_s = args.minutes * 60
    warmup_s = args.warmup_s if args.warmup_s is not None else min(60.0, total_s / 3)
    config = Config()
    config.log.health_interval_s = args.health_s
    setup_logging(config.log)
    collector = HealthCollector()
    logging.getLogger("monalisa.ops.health").addHandler(collector)

    with tempfile.TemporaryDirectory(prefix="monalisa-soak-") as tmp:
        video = Path(args.video) if args.video else make_video(Path(tmp), 20.0)
        config.camera.source, config.camera.loop, config.camera.pace = str(video), True, True
        pool = load_pool(choose_pool(args.pool, config.pool.path)[0])
        trace = Path(tmp) / "trace.jsonl"
        sampler = RssSampler()
        sampler.start()
        started = time.monotonic()
        code = run_kiosk(config, KioskOptions(pool=pool, headless=True, max_seconds=total_s, trace=trace))
        elapsed = time.monotonic() - started
        sampler.stop()
        frames, frame_gap, traced_s = trace_gaps(trace)

    samples = sampler.samples
    rss = [mb for _, mb in samples]
    end_t = samples[-1][0]
    rss_warm = median_rss(samples, warmup_s - 5, warmup_s + 5)
    rss_end = median_rss(samples, end_t - 10, end_t)
    # Growth from the lowest point after warm-up: memory the allocator gave back early must not
    # hide a slow leak later.
    rss_low = min((mb for t, mb in samples if t >= warmup_s), default=rss_warm)
    growth = rss_end - min(rss_warm, rss_low)
    display_gap = max((s["max_gap_s"] for s in collector.snapshots), default=float("nan"))
    stall = max(frame_gap, display_gap if display_gap == display_gap else 0.0)
    results = {
        "minutes": args.minutes, "elapsed_s": round(elapsed, 1), "exit_code": code, "frames": frames,
        "fps": round(frames / traced_s, 2) if traced_s else 0.0,
        "rss_start_mb": round(rss[0], 1), "rss_warmup_mb": round(rss_warm, 1), "rss_peak_mb": round(max(rss), 1),
        "rss_low_after_warmup_mb": round(rss_low, 1), "rss_end_mb": round(rss_end, 1),
        "rss_growth_after_warmup_mb": round(growth, 1),
        "longest_gap_between_frames_s": round(frame_gap, 3),
        "longest_gap_between_display_updates_s": round(display_gap, 3),
        "health_lines": len(collector.snapshots),
        "rss_every_10s_mb": [round(mb, 1) for t, mb in samples[::10]],
    }
    failures = []
    if code != 0:
        failures.append(f"kiosk exit code {code}")
    if not growth < MAX_GROWTH_MB:
        failures.append(f"RSS grew {growth:.1f} MB after warm-up (limit {MAX_GROWTH_MB:g})")
    if not stall <= MAX_STALL_S:
        failures.append(f"stall of {stall:.2f} s (limit {MAX_STALL_S:g})")
    if frames == 0:
        failures.append("no frames processed")
    results["verdict"] = "FAIL" if failures else "PASS"

    print(f"soak: {args.minutes:g} min ({elapsed:.0f} s), warm-up {warmup_s:.0f} s")
    print(f"  frames processed     {frames} ({results['fps']} fps)")
    print(f"  RSS start            {results['rss_start_mb']} MB")
    print(f"  RSS after warm-up    {results['rss_warmup_mb']} MB")
    print(f"  RSS peak             {results['rss_peak_mb']} MB")
    print(f"  RSS low after warmup {results['rss_low_after_warmup_mb']} MB")
    print(f"  RSS end              {results['rss_end_mb']} MB (growth after warm-up {growth:+.1f} MB, "
          f"limit {MAX_GROWTH_MB:g})")
    print(f"  longest stall        {frame_gap:.3f} s between processed frames, "
          f"{display_gap:.3f} s between display updates (limit {MAX_STALL_S:g})")
    print(f"  verdict              {results['verdict']}" + (": " + "; ".join(failures) if failures else ""))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
