"""The pool format: round trip, every validation error, atomic writes."""

import json
import shutil

import numpy as np
import pytest

from monalisa.errors import PoolError
from monalisa.pool.format import PoolWriter, load_pool, read_manifest
from monalisa.pool.geometry import Rect
from monalisa.testing.pools import PATCH, cell_patch, portrait_image, write_pool


def test_round_trip(tmp_path):
    pool = load_pool(write_pool(tmp_path / "pool"))
    assert (pool.rows, pool.cols) == (2, 3)
    assert pool.manifest.engine == "test" and pool.manifest.engine_params == {"k": 1}
    assert pool.manifest.pitches == (10.0, -10.0)
    np.testing.assert_array_equal(pool.portrait, portrait_image())
    frame = pool.frame(1, 2)
    np.testing.assert_array_equal(frame[PATCH.slices], cell_patch(1, 2))
    outside = np.ones(frame.shape[:2], bool)
    outside[PATCH.slices] = False
    np.testing.assert_array_equal(frame[outside], portrait_image()[outside])
    assert list(pool.cells())[:4] == [(0, 0), (0, 1), (0, 2), (1, 0)]


def test_manifest_contents(tmp_path):
    data = json.loads((write_pool(tmp_path / "pool") / "manifest.json").read_text())
    assert data["format"] == "monalisa-pool/2"
    assert data["portrait"]["width"] == 80 and data["portrait"]["height"] == 60
    assert data["patch"] == {"x": 10, "y": 20, "width": 30, "height": 16}
    assert data["grid"]["yaw"] == [-20.0, 0.0, 20.0]
    assert {"file", "row", "col", "yaw", "pitch"} == set(data["patches"][0])
    assert data["engine"]["name"] == "test" and data["created"]
    assert data["gaze"] == {"painted": [0.0, 0.0]} and data["neutral"] == [0, 1] and data["blinks"] is None
    assert len(data["portrait"]["pixels_sha256"]) == 64


def test_nearest_and_neutral_cells(tmp_path):
    pool = load_pool(write_pool(tmp_path / "pool", rows=1, cols=5))
    assert pool.neutral_cell() == (0, 2)
    assert pool.nearest_cell(-100, 0) == (0, 0)
    assert pool.nearest_cell(9, 0) == (0, 3)


@pytest.mark.parametrize("fail_after", [0, 4])
def test_failure_mid_write_leaves_nothing(tmp_path, fail_after):
    with pytest.raises(RuntimeError):
        write_pool(tmp_path / "pool", fail_after=fail_after)
    assert list(tmp_path.iterdir()) == []


def test_interrupt_keeps_previous_pool(tmp_path):
    out = write_pool(tmp_path / "pool", rows=1, cols=2)
    before = (out / "manifest.json").read_text()
    with pytest.raises(KeyboardInterrupt):
        with PoolWriter(out, portrait_image(), "0" * 64, PATCH, [0.0], [0.0], "test", {}) as w:
            w.add(0, 0, cell_patch(0, 0))
            raise KeyboardInterrupt
    assert (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool"]


def test_rewrite_replaces_old_pool(tmp_path):
    out = write_pool(tmp_path / "pool", rows=1, cols=2)
    write_pool(out, rows=2, cols=3)
    assert load_pool(out).cols == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pool"]


def test_refuses_to_overwrite_non_pool(tmp_path):
    (tmp_path / "stuff").mkdir()
    (tmp_path / "stuff" / "thesis.txt").write_text("precious")
    with pytest.raises(PoolError, match="not a pool"):
        write_pool(tmp_path / "stuff")
    assert (tmp_path / "stuff" / "thesis.txt").read_text() == "precious"


def test_incomplete_grid_is_never_published(tmp_path):
    with pytest.raises(PoolError, match="cells"):
        with PoolWriter(tmp_path / "pool", portrait_image(), "0" * 64, PATCH, [0.0, 1.0], [0.0], "t", {}) as w:
            w.add(0, 0, cell_patch(0, 0))
    assert not (tmp_path / "pool").exists()


def test_wrong_patch_shape_rejected(tmp_path):
    with pytest.raises(PoolError, match="expected"):
        with PoolWriter(tmp_path / "pool", portrait_image(), "0" * 64, PATCH, [0.0], [0.0], "t", {}) as w:
            w.add(0, 0, np.zeros((5, 5, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- validation errors

def edit_manifest(pool_dir, change):
    path = pool_dir / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format="monalisa-pool/9"), "unknown pool format"),
    (lambda d: d.pop("grid"), "missing 'grid'"),
    (lambda d: d["portrait"].update(width="wide"), "'portrait.width' should be int"),
    (lambda d: d["patch"].update(x=70), "does not fit"),
    (lambda d: d["patches"].pop(), "gaps"),
    (lambda d: d["patches"][0].update(row=1), "repeats"),
    (lambda d: d["grid"].update(yaw=[20.0, 0.0, -20.0]), "must increase"),
    (lambda d: d["patches"][0].pop("file"), r"missing 'patches\[0\]\.file'"),
    (lambda d: d.update(engine=[]), "'engine' should be dict"),
    (lambda d: d["engine"].update(params="fast"), r"'engine\.params' should be an object"),
])
def test_manifest_errors(tmp_path, change, message):
    out = write_pool(tmp_path / "pool")
    edit_manifest(out, change)
    with pytest.raises(PoolError, match=message) as info:
        load_pool(out)
    assert "manifest.json" in str(info.value) and "\n" not in str(info.value)


def test_bad_json(tmp_path):
    out = write_pool(tmp_path / "pool")
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(PoolError, match="bad JSON"):
        read_manifest(out)


def test_missing_directory_and_manifest(tmp_path):
    with pytest.raises(PoolError, match="no such pool directory"):
        load_pool(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PoolError, match="manifest.json: missing"):
        load_pool(tmp_path / "empty")


def test_missing_frame(tmp_path):
    out = write_pool(tmp_path / "pool")
    (out / "patches" / "r01_c02.png").unlink()
    with pytest.raises(PoolError, match=r"r01_c02.png: missing frame for cell \(1, 2\)"):
        load_pool(out)


def test_truncated_png(tmp_path):
    out = write_pool(tmp_path / "pool")
    path = out / "patches" / "r00_c01.png"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(PoolError, match="r00_c01.png: not a readable image"):
        load_pool(out)


def test_frame_of_wrong_size(tmp_path):
    out = write_pool(tmp_path / "pool")
    shutil.copy(out / "portrait.png", out / "patches" / "r00_c00.png")
    with pytest.raises(PoolError, match="r00_c00.png: is 80x60, the patch rectangle is 30x16"):
        load_pool(out)


def test_portrait_of_wrong_size(tmp_path):
    out = write_pool(tmp_path / "pool")
    shutil.copy(out / "patches" / "r00_c00.png", out / "portrait.png")
    with pytest.raises(PoolError, match="portrait.png: is 30x16, manifest says 80x60"):
        load_pool(out)


@pytest.mark.parametrize("change, message", [
    (lambda d: d["patches"][0].update(file="../../../etc/hostname"), "inside the pool"),
    (lambda d: d["portrait"].update(file="/etc/hostname"), "inside the pool"),
    (lambda d: d["grid"].update(yaw=["left", 0.0, 20.0]), "only numbers"),
])
def test_manifest_paths_and_numbers(tmp_path, change, message):
    out = write_pool(tmp_path / "pool")
    edit_manifest(out, change)
    with pytest.raises(PoolError, match=message):
        load_pool(out)


def test_published_pool_is_readable_by_others(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        out = write_pool(tmp_path / "pool")
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o755
    assert stat.S_IMODE((out / "patches" / "r00_c00.png").stat().st_mode) == 0o644


def test_unwritable_destination_is_a_pool_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(PoolError, match="cannot write here"):
        write_pool(blocker / "pool")


def test_temp_dirs_of_killed_builds_are_cleared_by_the_next_write(tmp_path):
    import os

    stale = tmp_path / ".pool.tmp-killed"
    (stale / "frames").mkdir(parents=True)
    os.utime(stale / "frames", (0, 0))
    os.utime(stale, (0, 0))
    busy = tmp_path / ".pool.tmp-long-build"  # old dir, but still writing frames
    (busy / "frames").mkdir(parents=True)
    os.utime(busy, (0, 0))
    fresh = tmp_path / ".pool.tmp-running"
    fresh.mkdir()
    write_pool(tmp_path / "pool")
    assert not stale.exists() and fresh.exists() and busy.exists()


@pytest.mark.parametrize("problem, reason", [
    (OSError(28, "No space left on device"), "No space left on device"),
    (OSError("3398394 requested and 3145728 written"), "the data was only partly written; disk full?"),
])
def test_a_failed_write_names_the_pool_not_its_temp(tmp_path, monkeypatch, problem, reason):
    import builtins

    from monalisa import images as imageio_module  # write_image opens the files

    def full_disk(path, *args, **kwargs):
        if "patches" in str(path):
            raise problem
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(imageio_module, "open", full_disk, raising=False)
    with pytest.raises(PoolError) as caught:
        write_pool(tmp_path / "p")
    assert str(caught.value) == f"{tmp_path / 'p'}: cannot write the pool ({reason})"
    assert list(tmp_path.iterdir()) == []


def test_ties_go_to_the_cell_nearest_the_middle():
    from monalisa.pool.geometry import nearest_index

    assert nearest_index([-30.0, -10.0, 10.0, 30.0], 0.0) == 1  # both centre cells tie: the lower one
    assert nearest_index([-30.0, 30.0], 0.0) == 0
    assert nearest_index([-20.0, -10.0, 0.0, 10.0], -15.0) == 1  # tie between 0 and 1: 1 is nearer the middle
    assert nearest_index([10.0, 0.0, -10.0], -4.0) == 1


def test_rect_relative_to_an_outer_rect():
    outer, inner = Rect(10, 20, 100, 80), Rect(15, 30, 4, 3)
    assert inner.relative_to(outer) == Rect(5, 10, 4, 3)
    crop = np.zeros((80, 100), np.uint8)
    crop[inner.relative_to(outer).slices] = 1
    assert crop.sum() == 12 and crop[10, 5] == 1
