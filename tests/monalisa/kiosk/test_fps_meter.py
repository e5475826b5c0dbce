"""FpsMeter: the overlay's smoothed frames per second."""

import pytest

from monalisa.ops.health import FpsMeter


def test_first_tick_gives_zero_and_the_second_the_first_interval():
    meter = FpsMeter()
    assert meter.tick(100.0) == 0.0
    assert meter.tick(100.5) == pytest.approx(2.0)


def test_a_steady_rate_converges_to_it():
    meter = FpsMeter()
    meter.tick(0.0)
    meter.tick(0.1)  # starts at 10 fps
    t = 0.1
    for _ in range(200):
        t += 1 / 30
        fps = meter.tick(t)
    assert fps == pytest.approx(30.0, rel=1e-6)


def test_a_pause_counts_as_one_slow_frame_and_a_repeated_time_is_skipped():
    meter = FpsMeter()
    for i in range(100):
        meter.tick(i / 30)
    before = meter.fps
    assert meter.tick(99 / 30) == before  # time did not advance: no rate, no division by zero
    after_pause = meter.tick(99 / 30 + 2.0)  # two seconds without frames: a 0.5 fps sample
    assert after_pause == pytest.approx(before + 0.1 * (0.5 - before))
    assert meter.tick(99 / 30 + 2.0 + 1 / 30) > after_pause  # and it recovers from there
