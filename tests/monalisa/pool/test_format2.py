"""Pool format 2: blink stages, the painted gaze and idle cell, the portrait's digest; format 1 still loads."""

import json

import numpy as np
import pytest

from monalisa.errors import PoolError
from monalisa.images import read_image, write_image
from monalisa.pool.format import PoolWriter, load_pool
from monalisa.testing.pools import BLINK_RECT, PATCH, as_format1, blink_patch, cell_patch, portrait_image, write_pool


def test_blink_stages_round_trip(tmp_path):
    pool = load_pool(write_pool(tmp_path / "pool", blink_stages=(0.5, 1.0)))
    assert pool.blink_stages == (0.5, 1.0) and pool.blink_rect == BLINK_RECT
    for row, col in pool.cells():
        for stage in (0, 1):
            np.testing.assert_array_equal(pool.blink_patch(row, col, stage), blink_patch(row, col, stage))
    frame = pool.blink_frame(1, 2, 1)
    np.testing.assert_array_equal(frame[BLINK_RECT.slices], blink_patch(1, 2, 1))
    np.testing.assert_array_equal(frame[PATCH.slices][0], cell_patch(1, 2)[0])   # patch rows above the blink rect
    with pytest.raises(IndexError):
        pool.blink_patch(0, 0, 2)


def test_manifest_says_which_frames_are_blink_stages(tmp_path):
    data = json.loads((write_pool(tmp_path / "pool", blink_stages=(0.5, 1.0)) / "manifest.json").read_text())
    blinks = data["blinks"]
    assert blinks["stages"] == [0.5, 1.0]
    assert blinks["rect"] == {"x": 14, "y": 22, "width": 20, "height": 8}
    assert len(blinks["patches"]) == 2 * 3 * 2
    assert {"file", "row", "col", "stage"} == set(blinks["patches"][0])
    assert all(f["file"].startswith("patches/") for f in data["patches"])    # gaze frames stay apart


def test_no_blinks(tmp_path):
    pool = load_pool(write_pool(tmp_path / "pool"))
    assert pool.blink_stages == () and pool.blink_rect is None


def test_neutral_is_nearest_the_painted_gaze_unless_given(tmp_path):
    pool = load_pool(write_pool(tmp_path / "a", rows=1, cols=5, painted_gaze=(12.0, 0.0)))
    assert pool.painted_gaze == (12.0, 0.0)
    assert pool.neutral_cell() == (0, 3)                        # yaws -20, -10, 0, 10, 20
    pool = load_pool(write_pool(tmp_path / "b", rows=1, cols=5, painted_gaze=(12.0, 0.0), neutral=(0, 2)))
    assert pool.neutral_cell() == (0, 2)


def test_format1_pools_still_load(tmp_path):
    out = as_format1(write_pool(tmp_path / "pool", rows=1, cols=5, blink_stages=(0.5,), painted_gaze=(12.0, 0.0)))
    pool = load_pool(out)
    assert pool.manifest.format == "monalisa-pool/1"
    assert pool.painted_gaze == (0.0, 0.0) and pool.blink_stages == () and pool.blink_rect is None
    assert pool.neutral_cell() == (0, 2)
    np.testing.assert_array_equal(pool.frame(0, 4)[PATCH.slices], cell_patch(0, 4))


def test_edited_portrait_is_refused_in_one_line(tmp_path):
    out = write_pool(tmp_path / "pool")
    edited = read_image(out / "portrait.png")
    edited[0, 0] = 255 - edited[0, 0]
    write_image(out / "portrait.png", edited)
    with pytest.raises(PoolError) as info:
        load_pool(out)
    message = str(info.value)
    assert str(out) in message and "portrait.png was changed" in message and "\n" not in message


def test_re_encoded_but_unchanged_portrait_is_accepted(tmp_path):
    from PIL import Image

    out = write_pool(tmp_path / "pool")
    Image.fromarray(read_image(out / "portrait.png")).save(out / "portrait.png", compress_level=0)
    load_pool(out)


def edit(pool_dir, change):
    path = pool_dir / "manifest.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("change, message", [
    (lambda d: d["blinks"]["patches"].pop(), "blink patches cover 11 cell stages"),
    (lambda d: d["blinks"]["rect"].update(x=0), "not inside the patch"),
    (lambda d: d["blinks"].update(stages=[1.0, 0.5]), "increasing lid closures"),
    (lambda d: d.update(neutral=[5, 0]), "'neutral' should be the"),
    (lambda d: d["gaze"].update(painted=[1.0]), "'gaze.painted' should be"),
    (lambda d: d.pop("gaze"), "missing 'gaze'"),
    (lambda d: d["blinks"]["patches"][0].update(file="/etc/hostname"), "inside the pool"),
])
def test_format2_manifest_errors(tmp_path, change, message):
    out = write_pool(tmp_path / "pool", blink_stages=(0.5, 1.0))
    edit(out, change)
    with pytest.raises(PoolError, match=message):
        load_pool(out)


def test_blink_of_wrong_size_or_missing(tmp_path):
    out = write_pool(tmp_path / "pool", blink_stages=(0.5, 1.0))
    write_image(out / "blinks" / "r00_c01_s1.png", cell_patch(0, 1))
    with pytest.raises(PoolError, match="r00_c01_s1.png: is 30x16, the blink rect is 20x8"):
        load_pool(out)
    (out / "blinks" / "r00_c01_s1.png").unlink()
    with pytest.raises(PoolError, match=r"missing blink stage 1 of cell \(0, 1\)"):
        load_pool(out)


def test_writer_checks_blinks(tmp_path):
    with pytest.raises(PoolError, match="inside the patch"):
        PoolWriter(tmp_path / "p", portrait_image(), "0" * 64, PATCH, [0.0], [0.0], "t", {},
                   blink_stages=(1.0,), blink_rect=PATCH.relative_to(BLINK_RECT))
    with pytest.raises(PoolError, match="blink stages"):
        with PoolWriter(tmp_path / "p", portrait_image(), "0" * 64, PATCH, [0.0], [0.0], "t", {}) as writer:
            writer.add(0, 0, cell_patch(0, 0))
            writer.add_blink(0, 0, 0, blink_patch(0, 0, 0))
    assert not (tmp_path / "p").exists()


def test_a_patch_is_labelled_with_what_it_shows(tmp_path):
    """A cell beyond the engine's reach keeps its grid place but says the direction it really shows."""
    from monalisa.testing.pools import PATCH, cell_patch, portrait_image

    with PoolWriter(tmp_path / "p", portrait_image(), "ab" * 32, PATCH, [-30.0, 0.0, 30.0], [0.0], "test", {},
                    "p.png") as writer:
        writer.add(0, 0, cell_patch(0, 0), shows=(-17.4, 0.0))
        writer.add(0, 1, cell_patch(0, 1))
        writer.add(0, 2, cell_patch(0, 2))
    pool = load_pool(tmp_path / "p")
    assert [(e.yaw, e.pitch) for e in pool.manifest.patches] == [(-17.4, 0.0), (0.0, 0.0), (30.0, 0.0)]
    assert pool.manifest.yaws == (-30.0, 0.0, 30.0)
    assert pool.shows(0, 0) == (-17.4, 0.0) and pool.shows(0, 2) == (30.0, 0.0)
