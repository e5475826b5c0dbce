"""Export, contact sheet and sweep animation of a pool."""

import numpy as np
import pytest
from PIL import Image

from monalisa.errors import PoolError
from monalisa.images import read_image
from monalisa.pool.format import load_pool
from monalisa.pool.views import contact_sheet, export_frames, sweep_frames, write_gif, write_sheet
from monalisa.testing.pools import write_pool


@pytest.fixture
def pool(tmp_path):
    return load_pool(write_pool(tmp_path / "pool", rows=2, cols=3))


@pytest.mark.parametrize("name", ["frames", "sheet.bmpx"])
def test_sheet_refuses_an_unknown_image_type_naming_the_file(pool, tmp_path, name):
    with pytest.raises(PoolError, match=rf"^{tmp_path / name}: the contact sheet is written as .png or .jpg"):
        write_sheet(pool, tmp_path / name)
    assert list(tmp_path.iterdir()) == [tmp_path / "pool"]


def test_export_writes_every_frame_in_row_then_column_order(pool, tmp_path):
    paths = export_frames(pool, tmp_path / "frames")
    assert [p.name for p in paths] == [f"frame_{i:03d}.png" for i in range(6)]
    for index, (row, col) in enumerate([(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]):
        np.testing.assert_array_equal(read_image(paths[index]), pool.frame(row, col))


def test_export_refuses_a_directory_with_other_files(pool, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    with pytest.raises(PoolError, match="other files"):
        export_frames(pool, tmp_path / "mine")


def test_export_onto_a_file_says_it_is_a_file(pool, tmp_path):
    (tmp_path / "portrait.jpg").write_bytes(b"x")
    with pytest.raises(PoolError, match="is a file, not a directory"):
        export_frames(pool, tmp_path / "portrait.jpg")
    assert (tmp_path / "portrait.jpg").read_bytes() == b"x"


def test_export_twice_replaces(pool, tmp_path):
    export_frames(pool, tmp_path / "frames")
    assert len(export_frames(pool, tmp_path / "frames")) == 6


def test_contact_sheet_has_a_tile_per_cell(pool, tmp_path):
    sheet = contact_sheet(pool, tile_width=60)
    assert sheet.shape[1] == 3 * 64 + 4 and sheet.shape[0] > 2 * 60 * 16 / 30
    out = write_sheet(pool, tmp_path / "sheet.png")
    assert read_image(out).shape == contact_sheet(pool).shape


def test_sweep_goes_there_and_back(pool, tmp_path):
    frames = sweep_frames(pool, width=40)
    assert len(frames) == 3 + 1
    np.testing.assert_array_equal(frames[1], frames[3])
    out = write_gif(pool, tmp_path / "sweep.gif", width=40)
    with Image.open(out) as gif:
        assert gif.n_frames == 4


@pytest.mark.parametrize("width", [0, 15, 4097, 100_000])
def test_sweep_width_out_of_range_is_a_usage_error(pool, tmp_path, width):
    from monalisa.errors import UsageError

    with pytest.raises(UsageError, match=rf"--width must be from 16 to 4096 px, got {width}$"):
        write_gif(pool, tmp_path / "s.gif", width=width)
    with pytest.raises(UsageError, match="frame time must be from 20"):
        write_gif(pool, tmp_path / "s.gif", frame_ms=0)
    assert list(tmp_path.iterdir()) == [tmp_path / "pool"]


def test_a_sweep_too_big_for_memory_is_refused(tmp_path):
    from monalisa.errors import UsageError

    wide = load_pool(write_pool(tmp_path / "wide", rows=1, cols=181))
    with pytest.raises(UsageError, match=r"--width 4096 would need \d+ MB .*; use --width \d+ or less"):
        sweep_frames(wide, width=4096, full=True)


def test_write_failures_name_the_users_output(pool, tmp_path, monkeypatch):
    from monalisa import images as imageio_module  # write_image opens the files

    def full_disk(path, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(imageio_module, "open", full_disk, raising=False)
    for action, out in ((export_frames, tmp_path / "frames"), (write_sheet, tmp_path / "sheet.png")):
        with pytest.raises(PoolError) as caught:
            action(pool, out)
        assert str(caught.value) == f"{out}: cannot write here (No space left on device)"
    assert list(tmp_path.iterdir()) == [tmp_path / "pool"]
