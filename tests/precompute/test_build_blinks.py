"""`monalisa precompute` and `monalisa pool` with blink stages, the idle cell, and the guards of issue 10 section 4."""

import logging

import cv2
import numpy as np
import pytest

from monalisa.cli import main
from monalisa.images import read_image, write_image
from monalisa.pool.format import load_pool
from precompute.warp import WarpEngine

EYES = "110,180,190,180,10"
SCLERA, IRIS = (250, 250, 250), (60, 40, 20)


def drawing(tmp_path, alpha: np.ndarray | None = None):
    """A drawing FaceMesh cannot read, with eyes at (110, 180) and (190, 180) (optionally with an alpha channel)."""
    path = tmp_path / "drawing.png"
    canvas = np.full((400, 300, 3), (150, 170, 200), np.uint8)
    cv2.ellipse(canvas, (150, 200), (110, 150), 0, 0, 360, (120, 150, 200), -1)
    for x in (110, 190):  # the opening --eyes assumes for these points: 25 x 8.5 px half axes
        eye = np.zeros(canvas.shape[:2], np.uint8)
        cv2.ellipse(eye, (x, 180), (25, 8), 0, 0, 360, 255, -1)
        iris = canvas.copy()
        iris[eye > 0] = SCLERA
        cv2.circle(iris, (x, 180), 10, IRIS[::-1], -1)
        canvas[eye > 0] = iris[eye > 0]
    if alpha is not None:
        canvas = np.dstack([canvas, alpha])
    cv2.imwrite(str(path), canvas)
    return path


def build(tmp_path, *flags, name="pool"):
    out = tmp_path / name
    assert main(["precompute", str(drawing(tmp_path)), "--out", str(out), "--eyes", EYES, "--yaw-steps", "5",
                 "--no-sheet", *flags]) == 0
    return out


def one_error_line(capsys, code):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code != 0 and "Traceback" not in err and len(lines) == 1, err
    return lines[0]


def test_default_build_writes_half_and_full_blinks(tmp_path, capsys):
    out = build(tmp_path)
    assert "+ 2 blink stages each" in capsys.readouterr().out
    pool = load_pool(out)
    assert pool.blink_stages == (0.5, 1.0)
    rect = pool.blink_rect
    assert rect.relative_to(pool.patch_rect).fits_in(pool.patch_rect.width, pool.patch_rect.height)
    for row, col in pool.cells():
        shut = pool.blink_frame(row, col, 1)
        for x in (110, 190):
            opening = shut[174:187, x - 20:x + 21].astype(float)
            assert not (np.linalg.norm(opening - SCLERA, axis=2) < 40).any()
            assert not (np.linalg.norm(opening - IRIS, axis=2) < 40).any()
        half = pool.blink_frame(row, col, 0)
        assert (np.linalg.norm(half[181:187, 90:130].astype(float) - IRIS, axis=2) < 40).any()


def test_no_blinks_and_other_stages(tmp_path, capsys):
    assert load_pool(build(tmp_path, "--no-blinks", name="a")).blink_stages == ()
    assert load_pool(build(tmp_path, "--blink-stages", "0.3,0.6,1", name="b")).blink_stages == (0.3, 0.6, 1.0)
    code = main(["precompute", str(drawing(tmp_path)), "--out", str(tmp_path / "c"), "--eyes", EYES,
                 "--blink-stages", "1,0.5"])
    assert "--blink-stages must be increasing" in one_error_line(capsys, code)
    assert not (tmp_path / "c").exists()


def test_idle_cell_is_the_painted_gaze_unless_straight_is_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(WarpEngine, "painted_gaze", lambda self: (14.0, 0.0), raising=False)
    pool = load_pool(build(tmp_path, name="painted"))           # yaws -30, -15, 0, 15, 30
    assert pool.painted_gaze == (14.0, 0.0) and pool.neutral_cell() == (0, 3)
    pool = load_pool(build(tmp_path, "--idle", "straight", name="straight"))
    assert pool.painted_gaze == (14.0, 0.0) and pool.neutral_cell() == (0, 2)


def test_export_writes_gaze_frames_as_before_and_blinks_only_when_asked(tmp_path, capsys):
    pool_dir = build(tmp_path)
    capsys.readouterr()
    assert main(["pool", "export", str(pool_dir), "--out", str(tmp_path / "plain")]) == 0
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == [f"frame_{i:03d}.png" for i in range(5)]
    assert main(["pool", "export", str(pool_dir), "--out", str(tmp_path / "all"), "--blinks"]) == 0
    assert "wrote 5 frames and 10 blink stages" in capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "all").iterdir())
    assert names[:10] == [f"blink_{i:03d}_s{s}.png" for i in range(5) for s in (0, 1)]
    pool = load_pool(pool_dir)
    np.testing.assert_array_equal(read_image(tmp_path / "all" / "blink_003_s1.png"), pool.blink_frame(0, 3, 1))
    np.testing.assert_array_equal(read_image(tmp_path / "all" / "frame_003.png"), pool.frame(0, 3))


def test_export_blinks_of_a_pool_without_them(tmp_path, capsys):
    pool_dir = build(tmp_path, "--no-blinks")
    capsys.readouterr()
    code = main(["pool", "export", str(pool_dir), "--out", str(tmp_path / "x"), "--blinks"])
    assert "no blink stages" in one_error_line(capsys, code)
    assert not (tmp_path / "x").exists()


def test_pool_info_shows_blinks_and_painted_gaze(tmp_path, capsys):
    pool_dir = build(tmp_path)
    capsys.readouterr()
    assert main(["pool", "info", str(pool_dir)]) == 0
    text = capsys.readouterr().out
    assert "gaze       painted yaw +0.0, pitch +0.0 deg; idle cell r0 c2" in text
    assert "blinks     2 stages per cell (closure 0.5, 1)" in text and "monalisa-pool/2" in text


def test_transparent_portrait_is_flattened_onto_the_background_with_a_warning(tmp_path, caplog):
    alpha = np.full((400, 300), 255, np.uint8)
    alpha[:, :40] = 0                                                   # a transparent strip on the left
    path = drawing(tmp_path, alpha)
    config = tmp_path / "config.toml"
    config.write_text('[render]\nbackground = "#102030"\n')
    out = tmp_path / "pool"
    with caplog.at_level(logging.WARNING):
        assert main(["precompute", str(path), "--out", str(out), "--eyes", EYES, "--yaw-steps", "3",
                     "--no-sheet", "--config", str(config)]) == 0
    warnings = [r for r in caplog.records if "transparent" in r.getMessage()]
    assert len(warnings) == 1 and "\n" not in warnings[0].getMessage() and "#102030" in warnings[0].getMessage()
    portrait = load_pool(out).portrait
    assert (portrait[:, :40] == (16, 32, 48)).all() and (portrait[5, 40:] == (200, 170, 150)).all()


def test_opaque_png_with_alpha_channel_is_not_warned_about(tmp_path, caplog):
    path = drawing(tmp_path, np.full((400, 300), 255, np.uint8))
    with caplog.at_level(logging.WARNING):
        assert main(["precompute", str(path), "--out", str(tmp_path / "p"), "--eyes", EYES, "--yaw-steps", "3",
                     "--no-sheet"]) == 0
    assert "transparent" not in caplog.text


@pytest.mark.parametrize("command", [["pool", "info"], ["pool", "sheet", "--out", "s.png"], ["preview", "--headless",
                                                                                               "--max-seconds", "0.1"]])
def test_edited_portrait_is_refused_in_one_line(tmp_path, capsys, monkeypatch, command):
    pool_dir = build(tmp_path)
    portrait = read_image(pool_dir / "portrait.png")
    portrait[10:20, 10:20] = 0
    write_image(pool_dir / "portrait.png", portrait)
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    where = 2 if command[0] == "pool" else 1
    line = one_error_line(capsys, main([*command[:where], str(pool_dir), *command[where:]]))
    assert str(pool_dir) in line and "portrait.png was changed" in line


@pytest.mark.parametrize("flags, message", [
    (["--yaw-steps", "1", "--pitch-steps", "3"], "--yaw-steps 1: the eyes will never move left or right"),
    (["--yaw-steps", "1"], "make a single frame: the eyes will never move"),
])
def test_a_grid_that_cannot_move_warns(tmp_path, caplog, flags, message):
    with caplog.at_level(logging.WARNING):
        assert main(["precompute", str(drawing(tmp_path)), "--out", str(tmp_path / "p"), "--eyes", EYES,
                     "--no-sheet", *flags]) == 0
    assert message in caplog.text


def test_a_grid_whose_frames_are_all_the_same_warns(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(WarpEngine, "render", lambda self, yaw, pitch: self._original.copy())
    with caplog.at_level(logging.WARNING):
        build(tmp_path, "--no-blinks")
    assert "all 5 frames are identical: the eyes will never move" in caplog.text
