"""The blend mask is 1 in the middle, ~0 at the border, smooth and symmetric; compositing mixes."""

import numpy as np
import pytest

from precompute.fomm.blend import composite, sigmoid_alpha


@pytest.mark.parametrize("size", [64, 256, 512, 731])
def test_alpha_is_one_in_the_centre_and_near_zero_at_the_border(size):
    alpha = sigmoid_alpha(size, size)
    assert alpha.dtype == np.float32 and alpha.shape == (size, size)
    assert alpha[size // 2, size // 2] > 0.99
    border = np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])
    assert border.max() < 0.02
    assert alpha.min() >= 0 and alpha.max() <= 1


def test_alpha_is_continuous():
    alpha = sigmoid_alpha(300, 300)
    # steepest drop of the default sigmoid is s/4 per 512-unit, i.e. 0.015 * 512/300 per pixel
    assert np.abs(np.diff(alpha, axis=0)).max() < 0.03
    assert np.abs(np.diff(alpha, axis=1)).max() < 0.03


def test_alpha_is_symmetric():
    alpha = sigmoid_alpha(201, 201)
    np.testing.assert_allclose(alpha, alpha[::-1, :], atol=1e-6)
    np.testing.assert_allclose(alpha, alpha[:, ::-1], atol=1e-6)
    np.testing.assert_allclose(alpha, alpha.T, atol=1e-6)


def test_alpha_scales_with_the_patch():
    small, large = sigmoid_alpha(128, 128), sigmoid_alpha(512, 512)
    # the same relative position has the same alpha whatever the size
    assert abs(small[64, 64 + 45] - large[256, 256 + 180]) < 0.04
    assert abs(large[256, 256 + 180] - 0.5) < 0.02  # k = 180 is the half-way point at 512


def test_a_steeper_slope_sharpens_the_edge():
    soft = sigmoid_alpha(256, 256, slope=0.02)
    hard = sigmoid_alpha(256, 256, slope=0.5)
    assert np.abs(np.diff(hard, axis=1)).max() > np.abs(np.diff(soft, axis=1)).max()


def test_composite_mixes_by_alpha():
    base = np.zeros((4, 4, 3), np.uint8)
    patch = np.full((4, 4, 3), 200, np.uint8)
    alpha = np.array([[0, 0.25, 0.5, 1]] * 4, np.float32)
    out = composite(base, patch, alpha)
    assert out.dtype == np.uint8
    assert out[0, :, 0].tolist() == [0, 50, 100, 200]


def test_composite_rejects_mismatched_sizes():
    with pytest.raises(ValueError):
        composite(np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8), np.ones((4, 4), np.float32))
