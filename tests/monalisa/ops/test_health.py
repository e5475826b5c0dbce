"""The health line: once per interval, with plausible fps, latency, memory, gaps and state."""

import logging

import pytest

from monalisa.ops.health import HealthMonitor, format_line, rss_mb


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def health_records(caplog):
    return [r for r in caplog.records if r.name == "monalisa.ops.health"]


def run_frames(monitor, clock, seconds, fps=30.0, latency=lambda i: 10 + i % 11):
    """Feed ``seconds`` of frames at ``fps`` with the given latency pattern."""
    start = clock.now
    for i in range(round(seconds * fps)):
        clock.now = start + (i + 1) / fps
        monitor.frame(latency(i), clock.now)


def test_one_line_per_interval_with_plausible_numbers(caplog):
    clock = FakeClock()
    monitor = HealthMonitor(10.0, clock=clock)
    monitor.set_state("ok")
    with caplog.at_level(logging.INFO, logger="monalisa.ops.health"):
        run_frames(monitor, clock, 25)
    records = health_records(caplog)
    assert len(records) == 2  # at 10 s and 20 s, not at 25 s
    snap = records[0].health
    assert snap["fps"] == pytest.approx(30, abs=0.5)
    assert snap["latency_p50_ms"] == pytest.approx(15, abs=1)
    assert snap["latency_p95_ms"] == pytest.approx(20, abs=1)
    assert 1 < snap["rss_mb"] < 100_000
    assert snap["max_gap_s"] == pytest.approx(1 / 30, rel=0.05)
    line = records[0].getMessage()
    assert line.startswith("health: 30.0 fps, latency p50 15.0 ms p95 20.0 ms, rss ")
    assert "camera ok" in line and "frames 300 (total 300)" in line
    assert records[1].health["frames_total"] == 600 and records[1].health["frames"] == 300
    assert all(r.levelno == logging.INFO for r in records)
    assert records[1].health["rss_first_mb"] == records[0].health["rss_mb"]  # growth is measured from line 1
    assert "since the first line" in records[1].getMessage()


def test_a_pause_shows_as_the_longest_gap(caplog):
    clock = FakeClock()
    monitor = HealthMonitor(10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="monalisa.ops.health"):
        run_frames(monitor, clock, 3)
        clock.now += 2.5  # the camera stalled
        run_frames(monitor, clock, 8)
    (record,) = health_records(caplog)
    assert record.health["max_gap_s"] == pytest.approx(2.5 + 1 / 30, rel=0.01)
    assert "longest gap 2.53 s" in record.getMessage()
    assert record.levelno == logging.WARNING  # a stall over 1 s is worth a look


def test_no_frames_at_all_is_a_warning_from_tick(caplog):
    clock = FakeClock()
    monitor = HealthMonitor(5.0, clock=clock)
    monitor.set_state("lost")
    with caplog.at_level(logging.INFO, logger="monalisa.ops.health"):
        for _ in range(60):
            clock.now += 0.1
            monitor.tick(clock.now)
    (record,) = health_records(caplog)
    assert record.levelno == logging.WARNING
    assert "NO FRAMES" in record.getMessage() and "camera lost" in record.getMessage()
    assert record.health["fps"] == 0 and record.health["latency_p50_ms"] is None


def test_ring_buffer_keeps_only_the_newest_latencies():
    clock = FakeClock()
    monitor = HealthMonitor(1000.0, clock=clock, capacity=8)
    for i in range(100):
        clock.now += 0.01
        monitor.frame(float(i), clock.now)
    snap = monitor.snapshot(clock.now)
    assert snap["latency_p50_ms"] in (95.0, 96.0) and snap["latency_p95_ms"] == 99.0
    assert snap["frames_total"] == 100


def test_frames_without_latency_still_count():
    clock = FakeClock()
    monitor = HealthMonitor(1000.0, clock=clock)
    for _ in range(10):
        clock.now += 0.1
        monitor.frame(None, clock.now)
    snap = monitor.snapshot(clock.now)
    assert snap["frames"] == 10 and snap["latency_p50_ms"] is None
    assert "latency n/a" in format_line(snap)


def test_rss_is_this_process():
    import psutil

    assert rss_mb() == pytest.approx(psutil.Process().memory_info().rss / 1e6, rel=0.2)
