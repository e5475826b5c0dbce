"""Image reading and writing: unsupported types and suffixes are ImageErrors naming the file."""

import numpy as np
import pytest
from PIL import Image

from monalisa.errors import ImageError
from monalisa.images import read_image, sha256_file, write_image


def test_a_valid_image_of_an_unsupported_type_says_so(tmp_path):
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(tmp_path / "p.gif")
    with pytest.raises(ImageError, match=r"p\.gif: GIF is not supported; use PNG, JPEG"):
        read_image(tmp_path / "p.gif")


def test_round_trip_and_unknown_suffix(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (6, 9, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", image)
    np.testing.assert_array_equal(read_image(tmp_path / "a.png"), image)
    assert len(sha256_file(tmp_path / "a.png")) == 64
    with pytest.raises(ImageError, match=r"a\.txt: cannot write an image of this type"):
        write_image(tmp_path / "a.txt", image)


def test_a_truncated_png_is_one_error_and_no_opencv_warning(tmp_path, capfd):
    write_image(tmp_path / "whole.png", np.zeros((50, 50, 3), np.uint8))
    (tmp_path / "cut.png").write_bytes((tmp_path / "whole.png").read_bytes()[:60])
    with pytest.raises(ImageError, match=r"cut\.png: not a readable image"):
        read_image(tmp_path / "cut.png")
    assert capfd.readouterr().err == ""
