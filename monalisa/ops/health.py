"""The health line: every ``[log] health_interval_s`` (default a minute) one log line with fps,
latency, memory and camera state.

An operator reading ``journalctl`` after a week should see at a glance whether the kiosk
kept up (fps), stayed responsive (latency, longest gap between frames) and did not leak
(RSS). ``frame()`` is called once per processed frame, so it does O(1) work into a fixed
ring buffer; the sorting for percentiles happens once per interval. ``FpsMeter`` is the
smoothed frame rate the debug overlays of the kiosk and `preview` show.
"""

from __future__ import annotations

import logging
import os
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

STATM = Path("/proc/self/statm")
STALL_WARN_S = 1.0  # a longer gap between frames makes the health line a WARNING


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc, else psutil)."""
    if STATM.exists():
        pages = int(STATM.read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 1e6
    import psutil  # not Linux: psutil knows how

    return psutil.Process().memory_info().rss / 1e6


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted non-empty list."""
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


class HealthMonitor:
    """Counts frames and latencies; logs one health line every ``interval_s`` seconds."""

    def __init__(self, interval_s: float, logger: logging.Logger | None = None,
                 clock: Callable[[], float] = time.monotonic, capacity: int = 4096):
        self.interval_s = float(interval_s)
        self.log = logger or logging.getLogger(__name__)
        self.clock = clock
        self.last_report: dict[str, Any] | None = None
        self._latencies = array("d", bytes(8 * capacity))  # ring buffer, allocated once
        self._capacity = capacity
        self._pos = 0
        self._filled = 0
        self._started = clock()
        self._interval_start = self._started
        self._interval_frames = 0
        self._total = 0
        self._last_frame: float | None = None
        self._max_gap = 0.0
        self._max_gap_ever = 0.0
        self._state = ""
        self._first_rss: float | None = None

    def set_state(self, text: str) -> None:
        """Record the camera state (``ok``, ``stalled``...) shown in the next line."""
        self._state = text

    def frame(self, latency_ms: float | None, now: float) -> None:
        """Count one processed frame; ``latency_ms`` is capture-to-display time when known."""
        self._total += 1
        self._interval_frames += 1
        if self._last_frame is not None:
            gap = now - self._last_frame
            if gap > self._max_gap:
                self._max_gap = gap
        self._last_frame = now
        if latency_ms is not None:
            self._latencies[self._pos] = latency_ms
            self._pos = (self._pos + 1) % self._capacity
            self._filled = min(self._filled + 1, self._capacity)
        self.tick(now)

    def tick(self, now: float) -> None:
        """Log the line if the interval is over; call it also from loop turns without a frame."""
        if now - self._interval_start >= self.interval_s:
            self.report(now)

    def snapshot(self, now: float | None = None) -> dict[str, Any]:
        """The numbers of the current interval (what the next health line would say)."""
        now = self.clock() if now is None else now
        elapsed = max(now - self._interval_start, 1e-9)
        latencies = sorted(self._latencies[:self._filled])
        open_gap = now - self._last_frame if self._last_frame is not None else elapsed
        max_gap = max(self._max_gap, open_gap)
        rss = rss_mb()
        return {
            "fps": self._interval_frames / elapsed,
            "latency_p50_ms": _percentile(latencies, 50) if latencies else None,
            "latency_p95_ms": _percentile(latencies, 95) if latencies else None,
            "rss_mb": rss,
            "rss_first_mb": self._first_rss if self._first_rss is not None else rss,
            "frames": self._interval_frames,
            "frames_total": self._total,
            "max_gap_s": max_gap,
            "max_gap_ever_s": max(self._max_gap_ever, max_gap),
            "state": self._state,
            "uptime_s": now - self._started,
        }

    def report(self, now: float) -> dict[str, Any]:
        """Log the health line for the interval ending at ``now`` and start a new interval."""
        snap = self.snapshot(now)
        healthy = snap["frames"] and snap["max_gap_s"] <= STALL_WARN_S
        level = logging.INFO if healthy else logging.WARNING
        if self._first_rss is None:
            self._first_rss = snap["rss_mb"]
        self.log.log(level, "%s", format_line(snap), extra={"health": snap})
        self.last_report = snap
        self._max_gap_ever = snap["max_gap_ever_s"]
        self._interval_start = now
        self._interval_frames = 0
        self._max_gap = 0.0
        self._pos = self._filled = 0
        return snap


class FpsMeter:
    """Smoothed frames per second from successive frame times, for the debug overlay.

    An exponential moving average (weight ``alpha`` for the newest rate): the first interval
    sets it, a time that does not advance is skipped, and a pause counts as one slow frame.
    """

    def __init__(self, alpha: float = 0.1):
        self.alpha = alpha
        self.fps = 0.0                   # 0.0 until two ticks are apart
        self.last: float | None = None   # time of the latest tick

    def tick(self, t: float) -> float:
        """Count a frame at time ``t`` (seconds); returns the smoothed rate."""
        if self.last is not None and t > self.last:
            rate = 1.0 / (t - self.last)
            self.fps = rate if self.fps == 0.0 else self.fps + self.alpha * (rate - self.fps)
        self.last = t
        return self.fps


def format_line(snap: dict[str, Any]) -> str:
    """One human-readable line from a snapshot."""
    if snap["latency_p50_ms"] is None:
        latency = "latency n/a"
    else:
        latency = f"latency p50 {snap['latency_p50_ms']:.1f} ms p95 {snap['latency_p95_ms']:.1f} ms"
    uptime = int(snap["uptime_s"])
    parts = [
        "health:" if snap["frames"] else "health: NO FRAMES in this interval,",
        f"{snap['fps']:.1f} fps, {latency},",
        f"rss {snap['rss_mb']:.1f} MB ({snap['rss_mb'] - snap['rss_first_mb']:+.1f} since the first line),",
        f"frames {snap['frames']} (total {snap['frames_total']}),",
        f"longest gap {snap['max_gap_s']:.2f} s,",
    ]
    if snap["state"]:
        parts.append(f"camera {snap['state']},")
    parts.append(f"up {uptime // 3600}h{uptime % 3600 // 60:02d}m")
    return " ".join(parts)
