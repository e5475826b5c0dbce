"""`monalisa precompute` end to end: a real pool from a shipped portrait, and every bad input."""

from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest

from monalisa.cli import main
from monalisa.pool.format import load_pool

GRACE = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def error_line(capsys, code):
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("W0000", "I0000"))]
    assert code != 0 and "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("monalisa: error: "), err
    return lines[0]


def test_builds_a_pool_from_a_shipped_portrait(tmp_path, capsys):
    out = tmp_path / "pool"
    assert main(["precompute", str(GRACE), "--out", str(out), "--yaw-steps", "7"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1 and "7 frames (1x7)" in summary[0] and "sheet.png" in summary[0]
    assert "1 face by facemesh" in summary[0]
    pool = load_pool(out)
    assert [face["from"] for face in pool.manifest.engine_params["faces"]] == ["facemesh"]
    assert pool.cols == 7 and pool.manifest.engine == "warp"
    assert pool.manifest.yaws[0] == -30 and pool.manifest.yaws[-1] == 30
    image = cv2.cvtColor(cv2.imread(str(GRACE)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(pool.portrait, image)
    assert (out / "sheet.png").is_file()


def test_grid_with_rows(tmp_path):
    out = tmp_path / "pool"
    assert main(["precompute", str(GRACE), "--out", str(out), "--yaw-steps", "3", "--pitch-steps", "3",
                 "--max-pitch", "10", "--no-sheet"]) == 0
    pool = load_pool(out)
    assert pool.manifest.pitches == (10.0, 0.0, -10.0) and pool.neutral_cell() == (1, 1)
    assert not (out / "sheet.png").exists()


@pytest.mark.parametrize("flags, message", [
    (["--yaw-steps", "0"], "--yaw-steps must be from 1 to 181"),
    (["--max-yaw", "90"], "--max-yaw must be from 1 to 60"),
    (["--pitch-steps", "-2"], "--pitch-steps"),
    (["--faces", "some"], "--faces must be"),
    (["--engine", "magic"], "invalid choice: 'magic'"),
    (["--eyes", "1,2,3"], "--eyes takes"),
    (["--engine", "fomm"], "needs --checkpoint"),
    (["--iris-radius", "0"], "--iris-radius: expected a number > 0"),
    (["--iris-radius", "30"], "--iris-radius 30 px does not fit the eye"),
])
def test_out_of_range_flags(tmp_path, capsys, flags, message):
    code = main(["precompute", str(GRACE), "--out", str(tmp_path / "pool"), *flags])
    assert message in error_line(capsys, code)
    assert not (tmp_path / "pool").exists()


def test_unreadable_and_non_image_files(tmp_path, capsys):
    missing = tmp_path / "missing.jpg"
    assert "missing.jpg" in error_line(capsys, main(["precompute", str(missing), "--out", str(tmp_path / "p")]))
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    assert "notes.jpg" in error_line(capsys, main(["precompute", str(text), "--out", str(tmp_path / "p")]))
    assert not (tmp_path / "p").exists()


def test_no_face_says_how_to_give_eye_points(tmp_path, capsys):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((300, 200, 3), 180, np.uint8))
    line = error_line(capsys, main(["precompute", str(blank), "--out", str(tmp_path / "p")]))
    assert "no face" in line.lower() and "--eyes" in line
    assert not (tmp_path / "p").exists()


def test_face_too_small_says_the_minimum(tmp_path, capsys):
    small = tmp_path / "small.png"
    image = cv2.imread(str(GRACE))
    canvas = np.full((1200, 1200, 3), 200, np.uint8)
    canvas[500:560, 500:550] = cv2.resize(image, (50, 60), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(small), canvas)
    line = error_line(capsys, main(["precompute", str(small), "--out", str(tmp_path / "p")]))
    assert ("small" in line.lower() or "no face" in line.lower()) and "px" in line


def test_eye_points_without_detection(tmp_path):
    drawing = drawing_with_eyes(tmp_path)
    out = tmp_path / "pool"
    assert main(["precompute", str(drawing), "--out", str(out), "--eyes", "110,180,190,180,10",
                 "--yaw-steps", "5", "--no-sheet"]) == 0
    pool = load_pool(out)
    left, right = pool.frame(0, 0), pool.frame(0, 4)
    dark_x = lambda img: np.nonzero(img[170:190, 70:150, 0] < 100)[1].mean()  # noqa: E731
    assert dark_x(left) < dark_x(right)


def drawing_with_eyes(tmp_path):
    """A drawing FaceMesh cannot read, with eyes at (110, 180) and (190, 180)."""
    path = tmp_path / "drawing.png"
    canvas = np.full((400, 300, 3), 230, np.uint8)
    for x in (110, 190):
        cv2.ellipse(canvas, (x, 180), (28, 14), 0, 0, 360, (250, 250, 250), -1)
        cv2.circle(canvas, (x, 180), 10, (60, 40, 20), -1)
    cv2.imwrite(str(path), canvas)
    return path


@pytest.mark.parametrize("flags, message", [
    (["--engine", "fomm", "--eyes", "110,180,190,180,10"], "--eyes works only with --engine warp"),
    (["--engine", "fomm", "--faces", "2"], "--faces works only with --engine warp"),
    (["--engine", "fomm", "--iris-radius", "5"], "--iris-radius works only with --engine warp"),
    (["--eyes", "110,180,190,180,10", "--faces", "largest"], "--faces picks among detected faces"),
    (["--eyes", "110,180,190,180,10", "--eyes", "112,181,190,180,10"], "--eyes #1 and #2 overlap"),
])
def test_face_flags_that_cannot_work_together(tmp_path, capsys, flags, message):
    checkpoint = ["--checkpoint", str(GRACE), "--driving", str(GRACE)] if "fomm" in flags else []
    code = main(["precompute", str(drawing_with_eyes(tmp_path)), "--out", str(tmp_path / "p"), *flags, *checkpoint])
    assert message in error_line(capsys, code)
    assert not (tmp_path / "p").exists()


def test_even_steps_warn_which_frame_is_idle(tmp_path, caplog):
    out = tmp_path / "p"
    assert main(["precompute", str(drawing_with_eyes(tmp_path)), "--out", str(out), "--eyes", "110,180,190,180,10",
                 "--yaw-steps", "4", "--no-sheet"]) == 0
    assert "idle frame will be the one at yaw -10, pitch +0 degrees" in caplog.text
    assert load_pool(out).neutral_cell() == (0, 1)


def test_out_below_a_file_says_so(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    line = error_line(capsys, main(["precompute", str(GRACE), "--out", str(tmp_path / "afile" / "sub")]))
    assert line.endswith(f"({tmp_path / 'afile'} is a file, not a directory)")


def test_iris_radius_override_through_the_cli(tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["precompute", str(GRACE), "--out", str(out), "--yaw-steps", "3", "--no-sheet",
                 "--iris-radius", "6.5"]) == 0
    [face] = load_pool(out).manifest.engine_params["faces"]
    assert [eye[2] for eye in face["eyes"]] == [6.5, 6.5] and face["from"] == "facemesh"
    assert "iris radius 6.5 px given" in face["how"] and "iris radius 6.5 px given" in capsys.readouterr().out
    assert main(["precompute", str(drawing_with_eyes(tmp_path)), "--out", str(tmp_path / "q"), "--no-sheet",
                 "--yaw-steps", "3", "--eyes", "110,180,190,180", "--iris-radius", "9"]) == 0
    [face] = load_pool(tmp_path / "q").manifest.engine_params["faces"]
    assert [eye[2] for eye in face["eyes"]] == [9, 9] and face["from"] == "eye points"


def test_manual_eyes_are_fitted_and_off_points_warn_through_the_cli(tmp_path, capsys):
    from monalisa.testing.drawn_faces import drawn_face

    face = drawn_face("painted")
    path = tmp_path / "painted.png"
    cv2.imwrite(str(path), cv2.cvtColor(face.image, cv2.COLOR_RGB2BGR))
    (lx, ly), (rx, ry) = face.eyes[0].center, face.eyes[1].center
    assert main(["precompute", str(path), "--out", str(tmp_path / "p"), "--yaw-steps", "3", "--no-sheet",
                 "--eyes", f"{lx + 2:g},{ly - 2:g},{rx - 2:g},{ry + 1:g}"]) == 0
    captured = capsys.readouterr()
    assert "1 face by eye points (fitted to the image)" in captured.out and "eye-like" not in captured.err
    assert main(["precompute", str(path), "--out", str(tmp_path / "q"), "--yaw-steps", "3", "--no-sheet",
                 "--eyes", f"{lx:g},{ly + 70:g},{rx:g},{ry + 70:g}"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if "eye-like" in line]
    assert len(warnings) == 1 and "(default shape)" in captured.out


def test_a_face_only_the_cascade_finds_through_the_cli_with_eyes_marked(tmp_path, capsys):
    """Grace Hopper small on a big blotchy canvas: FaceMesh alone misses her, the BlazeFace crops find her;
    the summary, manifest, `pool info` and the contact sheet say so and show the eye points used."""
    rng = np.random.default_rng(0)
    canvas = cv2.resize(rng.integers(40, 200, (38, 51, 3)).astype(np.uint8), (2000, 1500),
                        interpolation=cv2.INTER_CUBIC)
    hopper = cv2.imread(str(GRACE))
    small = cv2.resize(hopper, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    canvas[500:500 + small.shape[0], 700:700 + small.shape[1]] = small
    path = tmp_path / "small_face.png"
    cv2.imwrite(str(path), canvas)
    out = tmp_path / "p"
    assert main(["precompute", str(path), "--out", str(out), "--yaw-steps", "3"]) == 0
    assert "1 face by blazeface (" in capsys.readouterr().out
    pool = load_pool(out)
    [face] = pool.manifest.engine_params["faces"]
    assert face["from"] == "blazeface" and "crop" in face["how"]
    assert main(["pool", "info", str(out)]) == 0
    info = capsys.readouterr().out
    x, y, r = face["eyes"][0]
    assert f"face 1     blazeface ({face['how']}): eyes ({x:g}, {y:g}) r {r:g}" in info
    sheet = cv2.cvtColor(cv2.imread(str(out / "sheet.png")), cv2.COLOR_BGR2RGB)
    magenta = (sheet[..., 0] > 200) & (sheet[..., 1] < 120) & (sheet[..., 2] > 150)
    tile_w = 240 + 4
    idle_col = pool.neutral_cell()[1]
    assert magenta[:, 4 + idle_col * tile_w:4 + (idle_col + 1) * tile_w].sum() > 20  # marks on the idle tile
    assert magenta[:, 4:4 + tile_w].sum() == 0  # and only there


def test_the_engine_is_closed_when_a_build_fails(tmp_path, monkeypatch):
    """A build that fails mid-way stops the engine's look-ahead thread (no work left running)."""
    from monalisa.config import Config
    from monalisa.errors import PoolError
    from precompute import build
    from precompute.warp import WarpEngine

    closed = []
    real_close = WarpEngine.close
    monkeypatch.setattr(WarpEngine, "close", lambda self: closed.append(True) or real_close(self))
    monkeypatch.setattr(build.PoolWriter, "add", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("disk gone")))
    options = build.PrecomputeOptions(portrait=GRACE, out=tmp_path / "pool", yaw_steps=3, sheet=False)
    with pytest.raises(PoolError, match="disk gone"):
        build.build_pool(options, Config(), progress=False)
    assert closed == [True] and not (tmp_path / "pool").exists()


def test_summary_line_says_frame_and_stage_in_the_singular():
    from monalisa.pool.geometry import Rect
    from precompute.build import BuildSummary

    one = BuildSummary(Path("p"), 1, 1, Rect(0, 0, 4, 4), 1.0, None, blink_stages=(1.0,)).line()
    assert "1 frame (1x1) + 1 blink stage each," in one
    many = BuildSummary(Path("p"), 1, 3, Rect(0, 0, 4, 4), 1.0, None, blink_stages=(0.5, 1.0)).line()
    assert "3 frames (1x3) + 2 blink stages each," in many
