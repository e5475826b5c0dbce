"""`monalisa bench`: runs the real loop headless on a video and prints stage percentiles."""

import os
import shutil

import numpy as np
import pytest

from monalisa.config import Config
from monalisa.errors import MonalisaError, UsageError
from monalisa.ops.bench import BenchResult, format_report, measure, run_bench
from monalisa.testing.pools import BlinkingPool, grid_pool


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return grid_pool(tmp_path_factory.mktemp("pool") / "pool", rows=1, cols=33)


def test_grid_pool_has_the_grid(pool):
    assert (pool.rows, pool.cols) == (1, 33)
    assert pool.neutral_cell() == (0, 16)


def test_run_bench_generates_a_video_and_prints_every_stage(pool, capsys):
    assert run_bench(Config(), None, 20, pool=pool, window=False) == 0
    out = capsys.readouterr().out
    for stage in ("capture", "detect", "select", "render", "total"):
        line = next(line for line in out.splitlines() if line.startswith(stage))
        p50, p95, p99 = (float(v) for v in line.split()[1:])
        assert 0 <= p50 <= p95 <= p99
    assert "frames 20 in" in out and "frames/s" in out


def test_measure_processes_every_frame_of_a_file_in_order(pool, tmp_path):
    from monalisa.testing.synthetic import walking_video

    video = tmp_path / "walk.avi"
    truth = walking_video(video, seconds=1.0)
    result = measure(Config(), video, pool, pace=False)
    assert result.frames == len(truth.frames) == result.source_frames
    assert np.array_equal(result.indices, np.arange(len(truth.frames)))
    assert result.cells.shape == (len(truth.frames), 2)
    assert result.throughput > 0 and result.processed_fraction == 1.0
    total = result.stage_ms["total"]
    assert total.size == len(truth.frames) - 5  # warm-up frames left out
    parts = sum(result.stage_ms[s] for s in ("capture", "detect", "select", "render"))
    assert np.allclose(parts, total, atol=1e-6)  # the stages add up to grab -> display


def test_report_handles_no_frames():
    empty = BenchResult(frames=0, source_frames=0, wall_s=0.0, cpu_s=0.0,
                        stage_ms={s: np.zeros(0) for s in ("capture", "detect", "select", "render", "total")})
    report = format_report(empty)
    assert "nan" not in report and empty.throughput == 0.0
    assert next(line for line in report.splitlines() if line.startswith("total")).split() == ["total", "-", "-", "-"]


def test_too_few_frames_is_a_usage_error_naming_the_minimum(pool, capsys):
    from monalisa.cli import main

    with pytest.raises(UsageError, match=r"--frames must be at least 10 \(the first 5 are warm-up\), got 5"):
        run_bench(Config(), None, 5, pool=pool)
    assert main(["bench", "--frames", "5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--frames must be at least 10" in err


def test_a_video_too_short_for_the_warm_up_is_one_clear_error(pool, tmp_path):
    from monalisa.testing.synthetic import empty_video

    video = tmp_path / "short.avi"
    empty_video(video, seconds=0.2, fps=30, size=(160, 120))  # 6 frames
    with pytest.raises(MonalisaError, match=r"only 6 frame\(s\) processed; bench needs at least 10"):
        measure(Config(), video, pool, pace=False)


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb (Debian package xvfb)")
def test_run_bench_also_measures_a_real_window_on_xvfb(pool, capsys, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setenv("SDL_VIDEODRIVER", "dummy")
    config = Config()
    config.render.window_width, config.render.window_height = 300, 400
    assert run_bench(config, None, 12, pool=pool) == 0
    out = capsys.readouterr().out
    assert "headless" in out and "in a real 300x400 window on :" in out
    assert out.count("total ") == 2
    assert os.environ["SDL_VIDEODRIVER"] == "dummy" and "DISPLAY" not in os.environ   # all put back


def test_blinking_pool_paints_lids_over_the_eye_band(pool):
    blinking = BlinkingPool(pool, stages=(0.5, 1.0))
    rect = blinking.blink_rect
    assert blinking.blink_stages == (0.5, 1.0) and rect.width == pool.patch_rect.width
    half, shut = blinking.blink_patch(0, 3, 0), blinking.blink_patch(0, 3, 1)
    assert half.shape == shut.shape == (rect.height, rect.width, 3)
    open_eyes = pool.patches[(0, 3)][rect.relative_to(pool.patch_rect).slices]
    assert (shut != open_eyes).any(axis=-1).all()
    assert (half != open_eyes).any(axis=-1).mean() == pytest.approx(0.5, abs=0.13)


def test_bench_command_measures_the_pool_given_with_pool(tmp_path, capsys):
    from monalisa.cli import main
    from monalisa.testing.synthetic import walking_video

    grid_pool(tmp_path / "p", rows=1, cols=5)
    walking_video(tmp_path / "walk.avi", seconds=1.0)
    assert main(["bench", "--headless", "--pool", str(tmp_path / "p"), "--camera", str(tmp_path / "walk.avi")]) == 0
    assert "pool 1x5" in capsys.readouterr().out
