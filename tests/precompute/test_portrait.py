"""Reading portraits and finding face geometry (FaceMesh or hand-given eye points)."""

from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest

from monalisa.errors import PrecomputeError
from precompute.portrait import (
    MIN_EYE_WIDTH_PX,
    FaceGeometry,
    FaceMeshSession,
    faces_from_eye_points,
    find_faces,
    load_portrait,
)

GRACE_HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


@pytest.fixture(scope="module")
def hopper() -> np.ndarray:
    return load_portrait(GRACE_HOPPER)


@pytest.fixture(scope="module")
def hopper_face(hopper) -> FaceGeometry:
    return find_faces(hopper)[0]


def test_load_portrait_returns_rgb(tmp_path):
    bgr = np.zeros((20, 30, 3), np.uint8)
    bgr[..., 2] = 200  # red in OpenCV's channel order
    cv2.imwrite(str(tmp_path / "red.png"), bgr)
    image = load_portrait(tmp_path / "red.png")
    assert image.shape == (20, 30, 3) and image.dtype == np.uint8
    assert image[0, 0].tolist() == [200, 0, 0]


@pytest.mark.parametrize("content", [b"", b"this is not an image"])
def test_unreadable_file_is_a_precompute_error_naming_it(tmp_path, content):
    path = tmp_path / "broken.jpg"
    path.write_bytes(content)
    with pytest.raises(PrecomputeError, match="broken.jpg"):
        load_portrait(path)


def test_missing_file_is_a_precompute_error(tmp_path):
    with pytest.raises(PrecomputeError, match="nothing.png"):
        load_portrait(tmp_path / "nothing.png")


def test_find_faces_on_a_photo(hopper, hopper_face):
    face = hopper_face
    assert face.landmarks.shape == (478, 2)
    x0, y0, x1, y1 = face.box
    assert 0 <= x0 < x1 <= hopper.shape[1] and 0 <= y0 < y1 <= hopper.shape[0]
    left, right = face.left_eye, face.right_eye
    assert left.center[0] < right.center[0]
    for eye in face.eyes:
        assert x0 < eye.center[0] < x1 and y0 < eye.center[1] < y1
        assert eye.corner_left[0] < eye.center[0] < eye.corner_right[0]
        assert 0.1 < eye.iris_radius / eye.width < 0.35
        assert eye.upper_lid[:, 1].mean() < eye.lower_lid[:, 1].mean()
        assert np.allclose(eye.upper_lid[0], eye.corner_left) and np.allclose(eye.lower_lid[-1], eye.corner_right)
        assert cv2.pointPolygonTest(eye.opening.astype(np.float32), eye.center, False) >= 0


def test_faces_are_sorted_left_to_right_and_selectable(hopper):
    small = cv2.resize(hopper, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    tiled = np.hstack([hopper, np.pad(small, ((0, hopper.shape[0] - small.shape[0]), (0, 0), (0, 0)))])
    faces = find_faces(tiled, "all")
    assert len(faces) == 2
    assert faces[0].center[0] < hopper.shape[1] < faces[1].center[0]
    largest = find_faces(tiled, "largest")
    assert len(largest) == 1 and largest[0].center[0] < hopper.shape[1]
    assert len(find_faces(tiled, 2)) == 2 and len(find_faces(tiled, "1")) == 1


@pytest.mark.parametrize("which", ["some", 0, -1, "1.5"])
def test_bad_face_choice_is_an_error(hopper, which):
    with pytest.raises(PrecomputeError, match="largest"):
        find_faces(hopper, which)


def test_big_image_gives_full_resolution_landmarks(hopper, hopper_face):
    scale = 4200 / hopper.shape[0]
    big = cv2.resize(hopper, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    face = find_faces(big)[0]
    for small_eye, big_eye in zip(hopper_face.eyes, face.eyes):
        assert np.allclose(np.array(big_eye.center) / scale, small_eye.center, atol=2.0)
        assert big_eye.iris_radius / scale == pytest.approx(small_eye.iris_radius, rel=0.2)


def test_a_shared_session_gives_the_same_faces_quietly(hopper, hopper_face, capfd):
    """One FaceMesh for many calls: landmarks identical to a fresh graph's, no MediaPipe log lines."""
    capfd.readouterr()
    with FaceMeshSession() as session:
        for _ in range(2):
            [face] = find_faces(hopper, "all", session)
            assert np.array_equal(face.landmarks, hopper_face.landmarks)
        assert session.landmarks(np.zeros((50, 50, 3), np.uint8)) == []
    assert capfd.readouterr().err == ""
    session.close()  # idempotent
    with pytest.raises(RuntimeError, match="after close"):
        find_faces(hopper, "all", session)


def test_no_face_error_explains_eye_points():
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)
    with pytest.raises(PrecomputeError, match="--eyes"):
        find_faces(noise)


def test_tiny_face_error_names_the_minimum(hopper):
    tiny = cv2.resize(hopper, None, fx=0.22, fy=0.22, interpolation=cv2.INTER_AREA)
    with pytest.raises(PrecomputeError, match=f"at least {MIN_EYE_WIDTH_PX:.0f} px"):
        find_faces(np.pad(tiny, ((60, 60), (60, 60), (0, 0)), mode="edge"))


def test_eye_points_build_a_plausible_face():
    image = np.zeros((400, 300, 3), np.uint8)
    [face] = faces_from_eye_points(image, (200, 150, 100, 152))  # given right eye first
    assert face.landmarks is None
    assert face.left_eye.center == (100, 152) and face.right_eye.center == (200, 150)
    assert face.left_eye.iris_radius == pytest.approx(0.09 * np.hypot(100, 2))
    for eye in face.eyes:
        assert cv2.pointPolygonTest(eye.opening.astype(np.float32), eye.center, False) > 0
        assert eye.corner_left[0] < eye.center[0] < eye.corner_right[0]
        assert eye.width < 100  # the openings do not overlap
    x0, y0, x1, y1 = face.box
    assert x0 < 100 and x1 > 200 and y1 > 152  # the face reaches below the eyes


def test_eye_points_with_radius_and_several_faces():
    image = np.zeros((300, 600, 3), np.uint8)
    faces = faces_from_eye_points(image, [(400, 100, 500, 100, 8), (100, 100, 200, 100, 9)])
    assert [f.left_eye.center[0] for f in faces] == [100, 400]
    assert faces[0].left_eye.iris_radius == 9 and faces[1].right_eye.iris_radius == 8


@pytest.mark.parametrize("points", [(10, 10, 350, 10), (-1, 50, 100, 50), (10, 10, 100, 500)])
def test_eye_points_outside_the_image_are_an_error(points):
    with pytest.raises(PrecomputeError, match="outside"):
        faces_from_eye_points(np.zeros((200, 300, 3), np.uint8), points)


def test_eye_points_too_close_together_name_the_minimum():
    with pytest.raises(PrecomputeError, match=f"at least {MIN_EYE_WIDTH_PX:.0f} px"):
        faces_from_eye_points(np.zeros((200, 300, 3), np.uint8), (100, 100, 120, 100))


def test_a_gif_portrait_says_gif_is_not_supported(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "portrait.gif")
    with pytest.raises(PrecomputeError, match=r"portrait\.gif: GIF is not supported; use PNG, JPEG, WebP, TIFF"):
        load_portrait(tmp_path / "portrait.gif")


def test_the_same_eyes_given_twice_are_refused():
    image = np.zeros((400, 300, 3), np.uint8)
    separate = faces_from_eye_points(image, [(40, 100, 80, 100), (200, 100, 260, 100)])
    assert len(separate) == 2
    with pytest.raises(PrecomputeError, match=r"--eyes #1 and #3 overlap"):
        faces_from_eye_points(image, [(40, 100, 80, 100), (200, 100, 260, 100), (45, 102, 85, 100)])
