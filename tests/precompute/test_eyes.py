"""The eye field on a generated eye: the iris turns (foreshortened, leaving clean sclera) and the lids blink shut."""

import itertools
import math

import cv2
import numpy as np
import pytest

from precompute.eyes import EyeWarp, warp_image
from precompute.iris import measure_iris
from precompute.portrait import EyeGeometry

CENTER = (100.0, 80.0)
HALF_W, HALF_H = 40.0, 15.0       # the almond opening
IRIS_R = 13.0
SKIN = (200, 150, 120)
SCLERA = (240, 240, 235)
IRIS = (40, 80, 170)
MAX = math.radians(25)


def opening(n: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower lid polylines of the drawn eye, left corner to right corner."""
    angles = np.linspace(np.pi, 0, n)
    xs = CENTER[0] + HALF_W * np.cos(angles)
    return (np.stack([xs, CENTER[1] - HALF_H * np.sin(angles)], 1),
            np.stack([xs, CENTER[1] + HALF_H * np.sin(angles)], 1))


def draw_eye() -> np.ndarray:
    """Skin with texture, a white almond opening, a blue iris with a dark pupil partly under the lids, lash lines."""
    rng = np.random.default_rng(3)
    image = np.clip(np.full((170, 200, 3), SKIN, np.float64) + rng.normal(0, 5, (170, 200, 3)), 0, 255)
    image = image.astype(np.uint8)
    upper, lower = opening(41)
    polygon = np.vstack([upper, lower[::-1][1:-1]])
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 255)
    eye = image.copy()
    eye[:] = SCLERA
    cv2.circle(eye, (int(CENTER[0]), int(CENTER[1])), int(IRIS_R), IRIS, -1, cv2.LINE_AA)
    cv2.circle(eye, (int(CENTER[0]), int(CENTER[1])), 5, (10, 10, 10), -1, cv2.LINE_AA)
    image = np.where(mask[..., None] > 0, eye, image)
    cv2.polylines(image, [np.round(upper).astype(np.int32)], False, (60, 40, 30), 2, cv2.LINE_AA)
    cv2.polylines(image, [np.round(lower).astype(np.int32)], False, (150, 100, 80), 1, cv2.LINE_AA)
    return image


def geometry(iris_radius: float = IRIS_R) -> EyeGeometry:
    upper, lower = opening()
    return EyeGeometry(center=CENTER, iris_radius=iris_radius, corner_left=tuple(upper[0]),
                       corner_right=tuple(upper[-1]), upper_lid=upper, lower_lid=lower)


def inner_mask(shrink: int = 2) -> np.ndarray:
    """The drawn opening, shrunk by ``shrink`` pixels (what must be covered when the lids are shut)."""
    upper, lower = opening(41)
    mask = np.zeros((170, 200), np.uint8)
    cv2.fillPoly(mask, [np.round(np.vstack([upper, lower[::-1][1:-1]])).astype(np.int32)], 255)
    return cv2.erode(mask, np.ones((2 * shrink + 1, 2 * shrink + 1), np.uint8)) > 0


def near(image: np.ndarray, colour: tuple[int, int, int], tolerance: float = 60) -> np.ndarray:
    return np.linalg.norm(image.astype(float) - colour, axis=2) < tolerance


@pytest.fixture(scope="module")
def eye_image() -> np.ndarray:
    return draw_eye()


@pytest.fixture(scope="module")
def warp(eye_image) -> EyeWarp:
    return EyeWarp(geometry(), 0.8, MAX, MAX, image=eye_image)


def test_closure_zero_is_the_open_eye(warp):
    for yaw, pitch in ((0.0, 0.0), (0.3, -0.1), (-0.4, 0.2)):
        open_x, open_y = warp.field(yaw, pitch)
        zero_x, zero_y = warp.field(yaw, pitch, 0.0)
        assert np.array_equal(open_x, zero_x) and np.array_equal(open_y, zero_y)


def test_straight_ahead_open_changes_nothing(warp):
    field_x, field_y = warp.field(0.0, 0.0)
    assert np.abs(field_x).max() < 1e-4 and np.abs(field_y).max() < 1e-4


@pytest.mark.parametrize("yaw, pitch", [(0.0, 0.0), (MAX, 0.0), (-MAX, MAX), (MAX, -MAX)])
def test_shut_lids_leave_no_iris_or_sclera(eye_image, warp, yaw, pitch):
    shut = warp_image(eye_image, warp, yaw, pitch, 1.0)
    inside = inner_mask()
    assert not (near(shut, SCLERA) & inside).any()
    assert not (near(shut, IRIS) & inside).any()
    # What covers the eye is the lid's own skin (and its lash line), not some other colour.
    skin_or_lash = near(shut, SKIN, 45) | near(shut, (60, 40, 30), 80)
    assert skin_or_lash[inside].mean() > 0.95


def test_half_closed_covers_the_top_and_keeps_the_bottom(eye_image, warp):
    half = warp_image(eye_image, warp, 0.0, 0.0, 0.5)
    inside = inner_mask()
    rows = np.flatnonzero(inside.any(axis=1))
    top, bottom = rows[:len(rows) // 3], rows[-len(rows) // 4:]
    eye_coloured = near(half, SCLERA) | near(half, IRIS)
    assert not eye_coloured[top][inside[top]].any()
    assert eye_coloured[bottom][inside[bottom]].mean() > 0.5


def test_blink_stages_close_monotonically(eye_image, warp):
    inside = inner_mask()
    stages = [warp_image(eye_image, warp, 0.2, 0.0, c) for c in (0.0, 0.25, 0.5, 0.75, 1.0)]
    shown = [(near(stage, SCLERA) | near(stage, IRIS))[inside].mean() for stage in stages]
    assert shown[0] > 0.75 and shown[-1] == 0
    assert all(a >= b for a, b in itertools.pairwise(shown))


def test_field_is_zero_outside_the_eye_box(warp):
    xs, ys = np.meshgrid(np.arange(0, 200, dtype=np.float32), np.arange(0, 170, dtype=np.float32))
    field_x, field_y = warp.field_at(xs, ys, MAX, MAX, 1.0)
    outside = (xs < warp.x0) | (xs >= warp.x0 + warp.box_w) | (ys < warp.y0) | (ys >= warp.y0 + warp.box_h)
    assert not np.any(field_x[outside]) and not np.any(field_y[outside])


def iris_columns(image: np.ndarray) -> np.ndarray:
    """Columns of the centre row band that show iris colour."""
    left = int(CENTER[0] - HALF_W) + 5
    band = image[int(CENTER[1]) - 2:int(CENTER[1]) + 3, left:int(CENTER[0] + HALF_W) - 5]
    return left + np.flatnonzero((near(band, IRIS, 70) | near(band, (10, 10, 10), 60)).any(axis=0))


def test_foreshortening_narrows_the_turned_iris(eye_image, warp):
    f_u, f_v = warp.foreshortening(*warp.travel(MAX, 0.0))
    assert f_u < 0.97 and f_v == pytest.approx(1.0)
    painted = iris_columns(eye_image)
    turned = iris_columns(warp_image(eye_image, warp, MAX, 0.0))
    assert turned.mean() > painted.mean() + 3                    # moved toward the yaw...
    assert len(turned) < len(painted) - 1                        # ...and narrower
    assert len(turned) == pytest.approx(f_u * len(painted), abs=2.5)


def test_too_small_iris_radius_is_measured_from_the_painting(eye_image):
    measured = measure_iris(eye_image, geometry(IRIS_R * 0.67))
    assert measured.iris_radius == pytest.approx(IRIS_R, rel=0.15)
    assert measured.center[0] == pytest.approx(CENTER[0], abs=1.5)


def test_no_clear_limbus_keeps_facemesh_radius():
    flat = np.full((170, 200, 3), SKIN, np.uint8)
    assert measure_iris(flat, geometry(9.0)).iris_radius == 9.0


@pytest.mark.parametrize("yaw, pitch", [(MAX, 0.0), (-MAX, 0.0), (MAX, MAX), (-MAX, -MAX)])
def test_turned_iris_leaves_clean_sclera(eye_image, yaw, pitch):
    """Even with FaceMesh's radius a third too small, the place the iris left is sclera, not iris."""
    warp = EyeWarp(geometry(IRIS_R * 0.67), 0.8, MAX, MAX, image=eye_image)
    turned = warp_image(eye_image, warp, yaw, pitch)
    along, _ = warp.travel(yaw, pitch)
    # The painted iris's far half (away from where it went) is now sclera.
    xs = np.arange(200)
    far_side = (xs - CENTER[0]) * -np.sign(along) > IRIS_R * 0.6
    region = inner_mask(3) & far_side[None, :] & (np.abs(np.arange(170) - CENTER[1]) < IRIS_R)[:, None]
    region &= np.hypot(*np.meshgrid(xs - CENTER[0], np.arange(170) - CENTER[1])) < IRIS_R
    assert region.sum() > 20
    assert not (near(turned, IRIS, 90) & region).any()
    assert near(turned, SCLERA, 40)[region].mean() > 0.9
