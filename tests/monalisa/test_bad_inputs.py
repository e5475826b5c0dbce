"""Bad inputs through the real entry point: one clear `monalisa: error:` line, non-zero exit, no traceback."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from monalisa.cli import main
from monalisa.config import Config
from monalisa.pool.format import PoolWriter
from monalisa.pool.geometry import Rect

# The kiosk runs headless here; tests/conftest.py sets SDL_VIDEODRIVER=dummy.


@pytest.fixture
def pool(tmp_path) -> Path:
    """A tiny valid pool: 1 row x 3 columns, neutral cell (0, 1)."""
    portrait = np.full((64, 48, 3), 120, np.uint8)
    out = tmp_path / "pool"
    with PoolWriter(out, portrait, "0" * 64, Rect(8, 8, 16, 16), [-10, 0, 10], [0], "test", {}) as writer:
        for col in range(3):
            writer.add(0, col, np.full((16, 16, 3), 40 * col, np.uint8))
    return out


@pytest.fixture(autouse=True)
def no_user_config(tmp_path, monkeypatch):
    """Never pick up the developer's own config file or cache."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.delenv("MONALISA_CONFIG", raising=False)


def fails_with_one_line(capsys, argv: list[str], expected: str, code: int = 1) -> str:
    """Run the CLI; assert the exit code and exactly one stderr line containing ``expected``."""
    assert main(argv) == code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("monalisa: error: ") and expected in lines[0], lines[0]
    return lines[0]


def run_argv(pool: Path, *extra: str) -> list[str]:
    return ["run", "--headless", "--max-seconds", "1", "--pool", str(pool), *extra]


# ----------------------------------------------------------------------------- pools

def test_corrupt_manifest(pool, capsys):
    (pool / "manifest.json").write_text("{not json")
    fails_with_one_line(capsys, run_argv(pool, "--camera", "7"), "manifest.json: bad JSON")
    fails_with_one_line(capsys, ["pool", "info", str(pool)], "manifest.json: bad JSON")


def test_manifest_with_a_wrong_field_type(pool, capsys):
    manifest = json.loads((pool / "manifest.json").read_text())
    manifest["grid"]["yaw"] = "left to right"
    (pool / "manifest.json").write_text(json.dumps(manifest))
    fails_with_one_line(capsys, ["pool", "info", str(pool)], "'grid.yaw' should be list")


def test_missing_frame_file(pool, capsys):
    (pool / "patches" / "r00_c01.png").unlink()
    fails_with_one_line(capsys, run_argv(pool, "--camera", "7"), "r00_c01.png: missing frame for cell (0, 1)")


def test_truncated_png(pool, capsys):
    data = (pool / "portrait.png").read_bytes()
    (pool / "portrait.png").write_bytes(data[: len(data) // 3])
    fails_with_one_line(capsys, run_argv(pool, "--camera", "7"), "portrait.png: not a readable image")


def test_patch_rectangle_outside_the_portrait(pool, capsys):
    manifest = json.loads((pool / "manifest.json").read_text())
    manifest["patch"]["x"] = 40  # 40 + 16 > 48
    (pool / "manifest.json").write_text(json.dumps(manifest))
    fails_with_one_line(capsys, run_argv(pool, "--camera", "7"), "does not fit in the 48x64 portrait")


def test_patch_image_of_the_wrong_size(pool, capsys):
    import cv2

    cv2.imwrite(str(pool / "patches" / "r00_c02.png"), np.zeros((20, 20, 3), np.uint8))
    fails_with_one_line(capsys, run_argv(pool, "--camera", "7"), "is 20x20, the patch rectangle is 16x16")


def test_pool_directory_that_does_not_exist(tmp_path, capsys):
    fails_with_one_line(capsys, run_argv(tmp_path / "nope", "--camera", "7"), "no such pool directory")


def test_an_image_given_as_the_pool_suggests_precompute(pool, tmp_path, capsys):
    painting = tmp_path / "painting.jpg"
    painting.write_bytes((pool / "portrait.png").read_bytes())  # content decides, not the name
    line = fails_with_one_line(capsys, run_argv(painting, "--camera", "7"), "is a file, not a pool directory")
    assert f"monalisa precompute {painting} --out" in line


# ----------------------------------------------------------------------------- cameras

def test_empty_video_as_camera(pool, tmp_path, capsys):
    video = tmp_path / "empty.mp4"
    video.write_bytes(b"")
    fails_with_one_line(capsys, run_argv(pool, "--camera", str(video)), "not a readable video file")


def test_non_video_file_as_camera(pool, tmp_path, capsys):
    junk = tmp_path / "camera.bin"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    fails_with_one_line(capsys, run_argv(pool, "--camera", str(junk)), "not a readable video file")


@pytest.mark.parametrize("name", ["notes.txt", "photo.png"])
def test_text_file_or_still_image_as_camera(pool, tmp_path, capsys, name):
    path = tmp_path / name
    if name.endswith(".txt"):
        path.write_text("this is not a video\n" * 100)
    else:
        path.write_bytes((pool / "portrait.png").read_bytes())
    fails_with_one_line(capsys, run_argv(pool, "--camera", str(path)), "not a readable video file")


def test_missing_video_file_as_camera(pool, tmp_path, capsys):
    fails_with_one_line(capsys, run_argv(pool, "--camera", str(tmp_path / "gone.mp4")), "not found")


def test_camera_index_that_does_not_exist_idles_on_the_neutral_frame(pool, capsys, monkeypatch):
    from monalisa.kiosk import render

    shown = []
    original = render.Renderer.show
    monkeypatch.setattr(render.Renderer, "show", lambda self, cell: shown.append(tuple(cell)) or original(self, cell))
    assert main(["run", "--headless", "--max-seconds", "2", "--camera", "7", "--pool", str(pool)]) == 0
    assert shown and set(shown) == {(0, 1)}  # the neutral cell, the whole time
    assert "Traceback" not in capsys.readouterr().err


# ----------------------------------------------------------------------------- config

def wrong_value(f) -> str:
    """A TOML literal of the wrong type for this key."""
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    return {"str": "5", "int": '"5"', "float": '"fast"', "bool": '"yes"'}[kind]


KEYS = [pytest.param(s.name, f, id=f"{s.name}.{f.name}")
        for s in dataclasses.fields(Config) for f in dataclasses.fields(s.default_factory())]


@pytest.mark.parametrize("section, f", KEYS)
def test_config_with_a_wrong_type_for_every_key(tmp_path, capsys, section, f):
    path = tmp_path / "config.toml"
    path.write_text(f"[{section}]\n{f.name} = {wrong_value(f)}\n")
    line = fails_with_one_line(capsys, ["config", "show", "--config", str(path)], f"[{section}] {f.name} must be",
                               code=2)
    assert str(path) in line


def test_config_file_that_is_not_toml(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text("camera.fps: 30\n")
    fails_with_one_line(capsys, ["config", "show", "--config", str(path)], "not valid TOML", code=2)


def test_unknown_config_key_through_the_cli(tmp_path, capsys):
    path = tmp_path / "config.toml"
    path.write_text("[render]\nfulscreen = true\n")
    fails_with_one_line(capsys, ["run", "--config", str(path)], "unknown key [render] fulscreen", code=2)
