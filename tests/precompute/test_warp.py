"""The warp engine: irises follow the direction, nothing else breaks."""

import itertools
import json
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest

from monalisa.config import WarpConfig
from monalisa.errors import PrecomputeError
from precompute.portrait import faces_from_eye_points, find_faces, load_portrait
from precompute.warp import WarpEngine

GRACE_HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
YAWS = [-30.0, -15.0, 0.0, 15.0, 30.0]
EYES = (150.0, 200.0, 250.0, 200.0, 10.0)  # LX, LY, RX, RY, iris radius of the drawn face


def draw_face(width: int = 400, height: int = 420) -> np.ndarray:
    """A simple cartoon face: skin with texture, almond eyes with white sclera and dark irises."""
    rng = np.random.default_rng(1)
    image = np.full((height, width, 3), (90, 120, 160), np.uint8)
    image = np.clip(image + rng.normal(0, 6, image.shape), 0, 255).astype(np.uint8)
    cv2.ellipse(image, (200, 230), (120, 160), 0, 0, 360, (225, 185, 160), -1)
    lx, ly, rx, ry, radius = (int(v) for v in EYES)
    for x, y in ((lx, ly), (rx, ry)):
        cv2.ellipse(image, (x, y), (26, 10), 0, 0, 360, (245, 245, 240), -1)
        cv2.circle(image, (x, y), radius, (70, 40, 20), -1)
        cv2.circle(image, (x, y), 4, (10, 10, 10), -1)
        cv2.ellipse(image, (x, y), (26, 10), 0, 180, 360, (60, 40, 30), 2)
    cv2.line(image, (200, 215), (190, 285), (170, 120, 100), 3)
    cv2.ellipse(image, (200, 320), (40, 12), 0, 0, 180, (150, 60, 60), 3)
    return image


def iris_x(image: np.ndarray, eye_x: float, eye_y: float) -> float:
    """x of the centroid of dark (iris) pixels around a drawn eye."""
    box = image[int(eye_y) - 12:int(eye_y) + 12, int(eye_x) - 40:int(eye_x) + 40].astype(float)
    dark = np.clip(150 - box.mean(axis=2), 0, None)
    return eye_x - 40 + float((dark.sum(axis=0) * np.arange(box.shape[1])).sum() / dark.sum())


def iris_y(image: np.ndarray, eye_x: float, eye_y: float) -> float:
    box = image[int(eye_y) - 20:int(eye_y) + 20, int(eye_x) - 12:int(eye_x) + 12].astype(float)
    dark = np.clip(150 - box.mean(axis=2), 0, None)
    return eye_y - 20 + float((dark.sum(axis=1) * np.arange(box.shape[0])).sum() / dark.sum())


def frame(engine: WarpEngine, image: np.ndarray, yaw: float, pitch: float = 0.0) -> np.ndarray:
    out = image.copy()
    out[engine.patch_rect().slices] = engine.render(yaw, pitch)
    return out


@pytest.fixture(scope="module")
def drawn() -> np.ndarray:
    return draw_face()


@pytest.fixture(scope="module")
def drawn_engine(drawn) -> WarpEngine:
    return WarpEngine(drawn, faces_from_eye_points(drawn, EYES), WarpConfig(), YAWS, [10.0, 0.0, -10.0])


def test_engine_contract(drawn, drawn_engine):
    rect = drawn_engine.patch_rect()
    assert drawn_engine.name == "warp"
    assert rect.fits_in(drawn.shape[1], drawn.shape[0])
    patch = drawn_engine.render(12.0, 0.0)
    assert patch.shape == (rect.height, rect.width, 3) and patch.dtype == np.uint8
    json.dumps(drawn_engine.params())


def test_iris_moves_toward_the_yaw_monotonically(drawn, drawn_engine):
    for eye_x, eye_y in ((EYES[0], EYES[1]), (EYES[2], EYES[3])):
        xs = [iris_x(frame(drawn_engine, drawn, yaw), eye_x, eye_y) for yaw in YAWS]
        assert all(a < b for a, b in itertools.pairwise(xs)), xs
        assert xs[0] < eye_x - 5 and xs[-1] > eye_x + 5  # a clearly visible range


def test_iris_stays_inside_the_eye_opening(drawn):
    faces = faces_from_eye_points(drawn, EYES)
    half_width = faces[0].left_eye.width / 2
    engine = WarpEngine(drawn, faces, WarpConfig(head_follow=0.0, iris_travel=1.0), YAWS, [0.0])
    for yaw in (-90.0, 90.0):  # beyond the grid: travel is clamped
        x = iris_x(frame(engine, drawn, yaw), EYES[0], EYES[1])
        assert 5 < abs(x - EYES[0]) <= half_width - EYES[4] + 0.5


def test_pitch_moves_the_iris_vertically(drawn, drawn_engine):
    up, level, down = (iris_y(frame(drawn_engine, drawn, 0.0, p), EYES[0], EYES[1]) for p in (10, 0, -10))
    assert up < level < down


def test_straight_ahead_is_the_portrait(drawn, drawn_engine):
    assert np.array_equal(frame(drawn_engine, drawn, 0.0), drawn)


def test_pixels_outside_the_patch_are_untouched(drawn, drawn_engine):
    rect = drawn_engine.patch_rect()
    outside = np.ones(drawn.shape[:2], bool)
    outside[rect.slices] = False
    for yaw in (-30.0, 30.0):
        changed = np.any(frame(drawn_engine, drawn, yaw, 10.0) != drawn, axis=2)
        assert changed.any() and not changed[outside].any()


def test_patch_border_is_untouched(drawn, drawn_engine):
    """The head turn fades to zero inside the patch, so composited frames have no seam."""
    patch = drawn_engine.render(30.0, 0.0)
    original = drawn[drawn_engine.patch_rect().slices]
    assert np.array_equal(patch[[0, -1]], original[[0, -1]])
    assert np.array_equal(patch[:, [0, -1]], original[:, [0, -1]])


def test_without_head_follow_only_the_eyes_change(drawn):
    engine = WarpEngine(drawn, faces_from_eye_points(drawn, EYES), WarpConfig(head_follow=0.0), YAWS, [0.0])
    changed = np.any(frame(engine, drawn, -30.0) != drawn, axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.any()
    assert ys.min() >= EYES[1] - 16 and ys.max() <= EYES[1] + 16
    assert ((np.abs(xs - EYES[0]) <= 30) | (np.abs(xs - EYES[2]) <= 30)).all()


def test_faces_from_eye_points_turn_only_their_eyes(drawn, drawn_engine):
    """Without FaceMesh's 3D landmarks there is no head to turn: only the eye regions change."""
    changed = np.any(frame(drawn_engine, drawn, 30.0) != drawn, axis=2)
    _ys, xs = np.nonzero(changed)
    assert changed.any()
    assert ((np.abs(xs - EYES[0]) <= 30) | (np.abs(xs - EYES[2]) <= 30)).all()


def test_several_faces_all_turn(drawn):
    tiled = np.hstack([drawn, drawn])
    width = drawn.shape[1]
    points = [EYES, (EYES[0] + width, EYES[1], EYES[2] + width, EYES[3], EYES[4])]
    engine = WarpEngine(tiled, faces_from_eye_points(tiled, points), WarpConfig(head_follow=0.0), YAWS, [0.0])
    turned = frame(engine, tiled, -30.0)
    for offset in (0, width):
        assert iris_x(turned, EYES[0] + offset, EYES[1]) < EYES[0] + offset - 5


def test_needs_a_face(drawn):
    with pytest.raises(PrecomputeError, match="face"):
        WarpEngine(drawn, [], WarpConfig(), YAWS, [0.0])


def test_on_a_photo_facemesh_sees_the_gaze_turn():
    """Calibrated against FaceMesh, the frames read (about) as their labels, head and all."""
    from precompute.gaze_plan import FaceMeshReader
    from precompute.perceived import head_square, read_gaze

    portrait = load_portrait(GRACE_HOPPER)
    with FaceMeshReader() as reader:
        faces = find_faces(portrait, session=reader.session)
        engine = WarpEngine(portrait, faces, WarpConfig(), YAWS, [0.0], reader=reader)
        square = head_square(faces[0].landmarks)
        reference = read_gaze(portrait, square, reader.session)
        seen = [read_gaze(frame(engine, portrait, yaw), square, reader.session, reference=reference.landmarks)
                for yaw in YAWS]
    heads = [reading.head_yaw for reading in seen]
    gazes = [reading.yaw for reading in seen]
    assert all(a < b for a, b in itertools.pairwise(gazes)), gazes
    assert all(a < b for a, b in itertools.pairwise(heads)), heads
    assert gazes[-1] - gazes[0] > 40 and heads[-1] - heads[0] > 12
    low, high = engine.reach()[:2]
    for yaw, reading in zip(YAWS, seen):
        label = min(max(yaw, low), high)      # cells beyond the reach show the reach
        assert abs((reading.yaw - seen[2].yaw) - label) < 5, (yaw, reading.yaw - seen[2].yaw, low, high)
    outside = np.ones(portrait.shape[:2], bool)
    outside[engine.patch_rect().slices] = False
    assert np.array_equal(frame(engine, portrait, 30.0)[outside], portrait[outside])
