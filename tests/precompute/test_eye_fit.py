"""Manual eyes: iris and opening found in the image from rough centres; points off the eyes are flagged."""

import logging

import cv2
import numpy as np
import pytest

from monalisa.config import WarpConfig
from monalisa.testing.drawn_faces import STYLES, drawn_face
from precompute.eye_fit import fit_eye
from precompute.portrait import faces_from_eye_points
from precompute.warp import WarpEngine

JITTER = ((3.0, -2.0), (-2.0, 3.0))


def given_points(face, jitter=JITTER):
    return tuple(c + j for eye, js in zip(face.eyes, jitter) for c, j in zip(eye.center, js))


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("offset", [0.0, 0.6])
def test_the_fit_finds_the_drawn_iris_and_opening(style, offset):
    face = drawn_face(style, iris_offset=offset)
    [geometry] = faces_from_eye_points(face.image, given_points(face))
    assert geometry.found_by == "eye points" and geometry.detail == "fitted to the image"
    for drawn, eye in zip(face.eyes, geometry.eyes):
        assert np.hypot(eye.center[0] - drawn.center[0], eye.center[1] - drawn.center[1]) < 1.0
        assert eye.iris_radius == pytest.approx(drawn.iris_radius, abs=1.0)
        assert eye.width == pytest.approx(2 * drawn.half_width, rel=0.2)
        (left, _), (right, _) = eye.corner_left, eye.corner_right
        cx = drawn.opening_center[0]
        assert abs((left + right) / 2 - cx) < 0.25 * drawn.half_width  # the opening, not the iris, is centred
        assert cv2.pointPolygonTest(eye.opening.astype(np.float32), eye.center, False) > 0


def test_a_given_radius_is_kept():
    face = drawn_face("almond")
    [geometry] = faces_from_eye_points(face.image, (*given_points(face), 9.0))
    assert [eye.iris_radius for eye in geometry.eyes] == [9.0, 9.0]


def test_points_on_a_cheek_warn_once_and_get_the_default_shape(caplog):
    face = drawn_face("painted")
    (lx, ly), (rx, ry) = face.eyes[0].center, face.eyes[1].center
    with caplog.at_level(logging.WARNING):
        [geometry] = faces_from_eye_points(face.image, (lx, ly + 70, rx, ry + 70))
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 1 and "not on anything eye-like" in lines[0] and "monalisa eyes" in lines[0]
    assert f"({lx:g}, {ly + 70:g})" in lines[0] and f"({rx:g}, {ry + 70:g})" in lines[0]
    assert geometry.detail == "default shape" and geometry.left_eye.center == (lx, ly + 70)


def test_real_eyes_do_not_warn(caplog):
    face = drawn_face("round")
    with caplog.at_level(logging.WARNING):
        faces_from_eye_points(face.image, given_points(face))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_blank_image_is_not_eye_like():
    fit = fit_eye(np.full((200, 300, 3), 128, np.uint8), (100, 100), np.array([1.0, 0.0]), 100.0)
    assert not fit.eye_like


def test_fitted_eyes_sweep_evenly_without_touching_the_lids():
    """The painted iris moves monotonically and evenly; skin and lid lines around the opening stay put."""
    face = drawn_face("round", iris_offset=0.6)
    [geometry] = faces_from_eye_points(face.image, given_points(face))
    yaws = list(np.linspace(-30, 30, 9))
    engine = WarpEngine(face.image, [geometry], WarpConfig(head_follow=0.0), yaws, [0.0])
    rect = engine.patch_rect()
    grey = cv2.cvtColor(face.image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    for drawn in face.eyes:
        x, y = (round(v) for v in drawn.center)
        r = round(drawn.iris_radius)
        template = grey[y - r:y + r + 1, x - r:x + r + 1]
        positions, damage = [], []
        for yaw in yaws:
            frame = face.image.copy()
            frame[rect.slices] = engine.render(yaw, 0.0)
            moved = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)
            score = cv2.matchTemplate(moved[y - 2 * r:y + 2 * r + 1, x - 4 * r:x + 4 * r + 1], template,
                                      cv2.TM_CCOEFF_NORMED)
            positions.append(np.unravel_index(int(np.argmax(score)), score.shape)[1])
            outside = np.zeros(grey.shape, bool)
            outside[y - 3 * r:y + 3 * r, x - 4 * r:x + 4 * r] = True
            cx, cy = drawn.opening_center
            outside &= ((np.mgrid[:grey.shape[0], :grey.shape[1]][1] - cx) / (drawn.half_width + 2)) ** 2 + (
                (np.mgrid[:grey.shape[0], :grey.shape[1]][0] - cy) / (drawn.half_height + 2)) ** 2 > 1
            damage.append(np.abs(moved - grey)[outside].mean())
        steps = np.diff(positions)
        assert (steps >= 0).all() and positions[-1] - positions[0] >= 0.2 * 2 * drawn.half_width, positions
        assert max(damage) < 0.5, damage
