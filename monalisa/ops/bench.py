"""`monalisa bench`: the kiosk loop, headless, on a video, with per-stage latency percentiles.

The loop is the real one (``monalisa.kiosk.loop.Kiosk`` with BlazeFace and the pygame renderer on
an off-screen surface); only the camera is a video file. Without pacing every frame is
processed as fast as possible, which gives the throughput; stages are:

- capture: frame grabbed (decoded) -> loop starts on it
- detect:  BlazeFace
- select:  viewer tracking, gaze mapping, cell choice
- render:  blit and display update
- total:   grab -> display updated (the latency a viewer sees, minus the camera's own)
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monalisa.config import Config
from monalisa.errors import MonalisaError, UsageError
from monalisa.kiosk.loop import STAGES, FrameRecord, open_kiosk
from monalisa.pool.format import Pool

log = logging.getLogger(__name__)

WARMUP_FRAMES = 5          # the first frames pay for model and cache warm-up; left out of the stats
MIN_MEASURED_FRAMES = 5    # fewer frames after the warm-up make no percentiles worth printing
MIN_FRAMES = WARMUP_FRAMES + MIN_MEASURED_FRAMES
DEFAULT_VIDEO_SECONDS = 10.0


class FrameLog:
    """Keeps every frame's number, cell and stage times (bench only: it grows with the frames)."""

    def __init__(self):
        self.stage_ms: dict[str, list[float]] = {name: [] for name in STAGES}
        self.indices: list[int] = []
        self.cells: list[tuple[int, int]] = []
        self.eyes: list[tuple[float, float] | None] = []   # the followed viewer's raw eye midpoint
        self.lives: list[str | None] = []                  # "blink", "glance", "look_away" or None per frame

    def __call__(self, rec: FrameRecord) -> None:
        for name in STAGES:
            self.stage_ms[name].append(rec.stage_ms[name])
        self.indices.append(rec.frame)
        self.cells.append(rec.cell)
        self.eyes.append(rec.eye)
        self.lives.append("blink" if rec.blink is not None else rec.act)


@dataclass
class BenchResult:
    """What one bench run measured."""

    frames: int                  # camera frames processed
    source_frames: int           # frames the camera delivered or dropped (last index + 1)
    wall_s: float                # from the first frame to the end
    cpu_s: float                 # process CPU time over the same span (all threads)
    stage_ms: dict[str, np.ndarray] = field(default_factory=dict)  # after the warm-up frames
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, int))        # camera frame numbers
    cells: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), int))     # (row, column) shown
    eyes: list = field(default_factory=list)     # per frame: the followed viewer's raw eye midpoint, or None
    window: tuple[int, int] = (0, 0)             # the window's size (the off-screen surface's when headless)
    lives: list = field(default_factory=list)    # per frame: "blink", "glance", "look_away" or None
    warmup: int = WARMUP_FRAMES  # first frames left out of stage_ms

    def count(self, life: str) -> int:
        """How many times the portrait began ``life`` ("blink", "glance", "look_away") over the run."""
        return sum(1 for before, now in zip([None, *self.lives], self.lives) if now == life and before != life)

    @property
    def throughput(self) -> float:
        """Frames processed per second of wall time."""
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_cores(self) -> float:
        """Average CPU use in cores (process CPU time / wall time)."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def processed_fraction(self) -> float:
        """Share of the camera's frames the loop processed (1.0: none dropped)."""
        return self.frames / self.source_frames if self.source_frames else 0.0

    def percentiles(self, stage: str) -> tuple[float, float, float]:
        """(p50, p95, p99) of one stage in ms."""
        values = self.stage_ms[stage]
        if values.size == 0:
            return (float("nan"),) * 3
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return float(p50), float(p95), float(p99)


def measure(config: Config, video: str | Path, pool: Pool, *, pace: bool = False, window: bool = False,
            frames: int | None = None, warmup: int = WARMUP_FRAMES) -> BenchResult:
    """Run the kiosk on ``video`` (headless, or in a real window on $DISPLAY) and time every stage of every frame.

    Paced or not, the kiosk runs on the video's media time (its filters, timers and viewer switching
    see what they would in real time), so the cells shown agree; only the latencies differ.
    """
    from monalisa.kiosk.video import VideoFileSource

    driver = os.environ.get("SDL_VIDEODRIVER")
    if window:
        os.environ.pop("SDL_VIDEODRIVER", None)    # a real window: the X display, not SDL's dummy driver
    else:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    source = VideoFileSource(video, pace=pace, loop=False)
    recorder = FrameLog()
    with contextlib.ExitStack() as undo:
        if window:
            undo.callback(_restore_env, "SDL_VIDEODRIVER", driver)
        kiosk = undo.enter_context(open_kiosk(config, pool, source, headless=not window, observers=[recorder]))
        kiosk.detector.detect(np.zeros((config.camera.height, config.camera.width, 3), np.uint8))  # load the graph
        kiosk.source.start()
        wall0, cpu0 = time.monotonic(), time.process_time()
        kiosk.run(max_frames=frames)
        wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
        window_size = kiosk.renderer.size
    if len(recorder.indices) < warmup + MIN_MEASURED_FRAMES:
        raise MonalisaError(f"{video}: only {len(recorder.indices)} frame(s) processed; bench needs at least "
                            f"{warmup + MIN_MEASURED_FRAMES} (the first {warmup} are warm-up)")
    stats = {name: np.asarray(values[warmup:], dtype=np.float64) for name, values in recorder.stage_ms.items()}
    return BenchResult(frames=kiosk.frames, source_frames=recorder.indices[-1] + 1 if recorder.indices else 0,
                       wall_s=wall, cpu_s=cpu, stage_ms=stats, indices=np.asarray(recorder.indices, int),
                       cells=np.asarray(recorder.cells, int).reshape(-1, 2), eyes=recorder.eyes,
                       window=window_size, lives=recorder.lives, warmup=warmup)


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def format_report(result: BenchResult, title: str = "") -> str:
    """The stage table and throughput as printed by `monalisa bench` ("-" for a stage without samples)."""
    lines = [title] if title else []
    lines.append(f"{'stage':<10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for stage in STAGES:
        shown = ["-" if np.isnan(ms) else f"{ms:.2f}" for ms in result.percentiles(stage)]
        lines.append(f"{stage:<10}" + "".join(f"{text:>9}" for text in shown))
    lines.append(f"frames {result.frames} in {result.wall_s:.2f} s: {result.throughput:.1f} frames/s, "
                 f"CPU {result.cpu_cores:.2f} cores (first {result.warmup} frames left out of the percentiles)")
    return "\n".join(lines)


@contextlib.contextmanager
def real_display(size: tuple[int, int] = (1920, 1080)) -> Iterator[str | None]:
    """$DISPLAY if set, else a private Xvfb screen of ``size`` while the block runs; None when neither exists."""
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    if shutil.which("Xvfb") is None:
        yield None
        return
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{size[0]}x{size[1]}x24",
                             "-nolisten", "tcp"], pass_fds=(write_fd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    try:
        if not number:
            yield None
            return
        os.environ["DISPLAY"] = f":{number}"
        yield os.environ["DISPLAY"]
    finally:
        os.environ.pop("DISPLAY", None)
        xvfb.terminate()
        xvfb.wait(timeout=10)


def bench_pool(config: Config) -> Pool:
    """The pool the kiosk would show: ``[pool] path``, else the built-in one."""
    from monalisa.pool.builtin import choose_pool
    from monalisa.pool.format import load_pool

    return load_pool(choose_pool(None, config.pool.path)[0])


def run_bench(config: Config, camera: str | None, frames: int | None, pool: Pool | None = None,
              window: bool = True) -> int:
    """Print per-stage latency percentiles and throughput for the loop on a video (generated if none),
    headless and, with ``window``, in a real window too ($DISPLAY, else Xvfb) so the display's cost shows."""
    if frames is not None and frames < MIN_FRAMES:
        raise UsageError(f"--frames must be at least {MIN_FRAMES} (the first {WARMUP_FRAMES} are warm-up), "
                         f"got {frames}")
    pool = pool if pool is not None else bench_pool(config)
    with tempfile.TemporaryDirectory(prefix="monalisa-bench-") as tmp:
        if camera is None:
            from monalisa.testing.synthetic import walking_video

            video = Path(tmp) / "walk.avi"
            seconds = DEFAULT_VIDEO_SECONDS if frames is None else max(1.0, (frames + WARMUP_FRAMES) / 30)
            print(f"generating a {seconds:.1f} s synthetic walking video ...", flush=True)
            walking_video(video, seconds=seconds, size=(config.camera.width, config.camera.height))
        else:
            video = Path(camera)
        result = measure(config, video, pool, pace=False, frames=frames)
        title = (f"monalisa bench: {video.name if camera else 'synthetic walk'}, "
                 f"{config.gaze.mapping} mapping, pool {pool.rows}x{pool.cols}, not paced")
        print(format_report(result, title + ", headless"))
        if not window:
            return 0
        with real_display() as display:
            if display is None:
                print("\nwindow: not measured (no $DISPLAY and no Xvfb; apt-get install xvfb, or run on the screen)")
                return 0
            shown = measure(config, video, pool, pace=False, frames=frames, window=True)
            kind = "fullscreen" if config.render.fullscreen else f"{shown.window[0]}x{shown.window[1]} window"
            print()
            print(format_report(shown, f"in a real {kind} on {display}"))
    return 0
