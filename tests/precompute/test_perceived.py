"""The perceived-gaze ruler: Kabsch fit, angle conventions, eye formula, readings of real photographs,
and the benchmark's pure statistics."""

import importlib.util
import math
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import skimage.data

from monalisa.errors import PrecomputeError
from precompute.perceived import (
    CANONICAL_TILT_DEG,
    CHIN,
    CROP_SIDE,
    EYE_RADIUS_WIDTHS,
    FOREHEAD,
    GazeReading,
    direction_angles,
    eye_angles,
    head_square,
    kabsch,
    read_gaze,
    relative_reading,
    sight_yaw,
    symmetric_head_angles,
)
from precompute.portrait import FaceMeshSession, load_portrait

GRACE_HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "pool_quality.py"


def rotation(yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """A rotation in image axes (x right, y down, z away) that turns (0, 0, -1) to look at (yaw, pitch)."""
    y, p, r = (math.radians(v) for v in (yaw, pitch, roll))
    turn = np.array([[math.cos(y), 0, -math.sin(y)], [0, 1, 0], [math.sin(y), 0, math.cos(y)]])
    nod = np.array([[1, 0, 0], [0, math.cos(p), math.sin(p)], [0, -math.sin(p), math.cos(p)]])
    tilt = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return turn @ nod @ tilt


@pytest.fixture(scope="module")
def session():
    with FaceMeshSession() as mesh:
        yield mesh


@pytest.fixture(scope="module")
def hopper() -> np.ndarray:
    return load_portrait(GRACE_HOPPER)


def test_rotation_helper_follows_the_sign_conventions():
    assert direction_angles(rotation(-30, 0) @ (0, 0, -1)) == pytest.approx((-30, 0))
    assert direction_angles(rotation(0, 10) @ (0, 0, -1)) == pytest.approx((0, 10))
    assert direction_angles((-1, 0, -1)) == pytest.approx((-45, 0))     # toward the image's left
    assert direction_angles((0, -1, -1)) == pytest.approx((0, 45))      # up: y points down


def test_kabsch_recovers_a_known_rotation_exactly():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(300, 3)) * (60, 80, 30)
    known = rotation(17, -8, 4)
    moved = points @ known.T * 1.3 + (250, -40, 12)     # scale and shift do not matter
    found = kabsch(points, moved)
    np.testing.assert_allclose(found, known, atol=1e-10)
    assert np.linalg.det(found) == pytest.approx(1.0)


def eye_landmarks(shift_along: float, shift_up: float) -> np.ndarray:
    """478 landmarks with two level 100-px eyes whose irises sit the given eye widths off centre."""
    points = np.zeros((478, 3))
    for (outer, inner), iris, left in (((33, 133), 468, 100.0), ((263, 362), 473, 300.0)):
        points[outer, :2], points[inner, :2] = (left, 200.0), (left + 100.0, 200.0)
        points[iris, :2] = (left + 50.0 + 100.0 * shift_along, 200.0 - 100.0 * shift_up)
    return points


def test_eye_angles_are_asin_of_the_iris_shift_over_the_eye_radius():
    along = EYE_RADIUS_WIDTHS * math.sin(math.radians(20))
    up = EYE_RADIUS_WIDTHS * math.sin(math.radians(-7))
    assert eye_angles(eye_landmarks(along, up)) == pytest.approx((20, -7))
    assert eye_angles(eye_landmarks(-along, 0)) == pytest.approx((-20, 0))
    assert eye_angles(eye_landmarks(0, 0)) == pytest.approx((0, 0))


def test_eye_angles_follow_a_tilted_eye_axis():
    points = eye_landmarks(EYE_RADIUS_WIDTHS * math.sin(math.radians(15)), 0)
    angle = math.radians(10)
    turn = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points[:, :2] = points[:, :2] @ turn.T
    assert eye_angles(points) == pytest.approx((15, 0), abs=1e-9)


def test_sight_yaw_is_the_iris_shift_over_the_foreshortened_eye():
    reading = GazeReading(head_yaw=-30, head_pitch=0, eye_yaw=20, eye_pitch=0, landmarks=np.zeros((478, 3)))
    assert sight_yaw(reading) == pytest.approx(math.degrees(math.asin(math.sin(math.radians(20)) * math.cos(
        math.radians(30)))))
    assert sight_yaw(GazeReading(0, 0, 12, 0, reading.landmarks)) == pytest.approx(12)


def synthetic_face(yaw: float, pitch: float) -> tuple[np.ndarray, np.ndarray]:
    """A random landmark set posed at (yaw, pitch) and the same set as seen in the mirrored picture,
    with the chin-forehead line tilted as in the canonical face model."""
    rng = np.random.default_rng(2)
    canonical = rng.normal(size=(478, 3)) * (50, 60, 25)
    tilt = math.radians(CANONICAL_TILT_DEG)
    canonical[CHIN] = (0, 90 * math.cos(tilt), 90 * math.sin(tilt))
    canonical[FOREHEAD] = -canonical[CHIN]
    pose = rotation(yaw, pitch)
    flip = np.diag([-1.0, 1.0, 1.0])
    return canonical @ pose.T + (256, 256, 0), canonical @ (flip @ pose @ flip).T + (256, 256, 0)


@pytest.mark.parametrize("yaw, pitch", [(0, 0), (-19, 4), (25, -8)])
def test_absolute_head_pose_comes_from_the_face_and_its_mirror(yaw, pitch):
    points, mirrored = synthetic_face(yaw, pitch)
    assert symmetric_head_angles(points, mirrored) == pytest.approx((yaw, pitch), abs=1e-6)


def test_relative_reading_recovers_a_turn_of_the_reference():
    reference, _ = synthetic_face(0, 0)
    turned = (reference - 256) @ rotation(12, -5).T + 256
    reading = relative_reading(turned, reference)
    assert (reading.head_yaw, reading.head_pitch) == pytest.approx((12, -5), abs=1e-6)


def test_head_square_is_1_9_times_the_larger_side_centred():
    landmarks = np.array([[10.0, 20.0], [110.0, 70.0], [60.0, 45.0]])
    assert head_square(landmarks) == (-35, -50, 190)


def mirrored_square(square, width):
    """The square whose 512-px crop of the mirrored image is exactly the mirrored crop (pixel centres)."""
    x0, y0, size = square
    return width - 1 - x0 - size * (CROP_SIDE - 1) / CROP_SIDE, y0, size


@pytest.mark.parametrize("name", ["grace_hopper", "astronaut"])
def test_a_mirrored_photograph_reads_the_opposite_yaw(session, hopper, name):
    image = hopper if name == "grace_hopper" else skimage.data.astronaut()
    square = head_square(image, session)
    reading = read_gaze(image, square, session)
    flipped = read_gaze(np.ascontiguousarray(image[:, ::-1]), mirrored_square(square, image.shape[1]), session)
    assert reading is not None and flipped is not None
    assert flipped.head_yaw == pytest.approx(-reading.head_yaw, abs=0.5)
    assert flipped.yaw == pytest.approx(-reading.yaw, abs=0.5)
    assert flipped.pitch == pytest.approx(reading.pitch, abs=0.5)
    # both photographs look at the camera: a few degrees at most
    assert abs(reading.yaw) < 6 and abs(reading.head_yaw) < 6


def test_a_picture_read_against_itself_has_no_head_turn(session, hopper):
    reading = read_gaze(hopper, session=session)
    again = read_gaze(hopper, session=session, reference=reading.landmarks)
    assert (again.head_yaw, again.head_pitch) == pytest.approx((0, 0), abs=1e-6)
    assert (again.eye_yaw, again.eye_pitch) == pytest.approx(eye_angles(reading.landmarks))


def test_no_face_reads_none_and_no_face_for_a_square_is_an_error(session):
    blank = np.full((300, 300, 3), 128, np.uint8)
    assert read_gaze(blank, (50, 50, 200), session) is None
    with pytest.raises(PrecomputeError, match="no face"):
        head_square(blank, session)


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("pool_quality", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module          # dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_spearman_on_known_numbers(bench):
    from scipy.stats import spearmanr

    index = np.arange(6)
    assert bench.spearman(index, [1, 2, 3, 5, 8, 13]) == pytest.approx(1.0)
    assert bench.spearman(index, [9, 7, 5, 3, 2, 1]) == pytest.approx(-1.0)
    values = [1, 3, 2, 2, 5, 4]
    assert bench.spearman(index, values) == pytest.approx(spearmanr(index, values).statistic)
    assert bench.spearman(index[:2], [1, 2]) == 0.0


def test_line_fit_on_known_numbers(bench):
    manifest = np.linspace(-30, 30, 7)
    wobble = np.array([1, -1, 1, -1, 1, -1, 0]) * 2.0
    wobble -= np.polyval(np.polyfit(manifest, wobble, 1), manifest)   # keep only what no line explains
    slope, offset, rms = bench.line_fit(manifest, 0.9 * manifest + 2.0 + wobble)
    assert (slope, offset) == pytest.approx((0.9, 2.0))
    assert rms == pytest.approx(float(np.sqrt(np.mean(wobble ** 2))))


def test_an_absolute_reading_is_the_line_of_sight(monkeypatch):
    """Absolute eye yaw = line of sight - head: a turned sitter's iris shift already holds the head's turn."""
    from precompute import perceived

    direct, mirrored = np.zeros((478, 3)), np.ones((478, 3))
    monkeypatch.setattr(perceived, "symmetric_head_angles", lambda points, mirror: (-30.0, 0.0))
    monkeypatch.setattr(perceived, "eye_angles", lambda points: (20.0, 0.0) if points is direct else (-20.0, 0.0))
    reading = perceived.absolute_reading(direct, mirrored)
    sight = math.degrees(math.asin(math.sin(math.radians(20)) * math.cos(math.radians(30))))
    assert reading.yaw == pytest.approx(sight)
    assert reading.head_yaw == -30 and reading.eye_yaw == pytest.approx(sight + 30)
