"""The face-finding cascade: faces FaceMesh alone misses are found on crops around BlazeFace boxes."""

from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest

from monalisa.errors import PrecomputeError
from precompute import faces
from precompute.portrait import FaceMeshSession, find_faces, load_portrait, with_iris_radius

GRACE_HOPPER = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"


def blotchy_canvas(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A generated painting background: soft colour blotches and grain."""
    rng = np.random.default_rng(seed)
    blotches = rng.integers(40, 200, (height // 40 + 1, width // 40 + 1, 3)).astype(np.uint8)
    base = cv2.resize(blotches, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def paste(face: np.ndarray, scale: float, angle: float, canvas: np.ndarray, at: tuple[int, int]):
    """``face`` scaled and turned ``angle`` degrees about its centre, pasted at ``at`` (x, y);
    the canvas and the 2x3 matrix from ``face`` pixels to canvas pixels."""
    size = (round(face.shape[1] * scale), round(face.shape[0] * scale))
    matrix = cv2.getRotationMatrix2D((size[0] / 2, size[1] / 2), angle, 1.0) @ np.array(
        [[scale, 0, 0.5 * scale - 0.5], [0, scale, 0.5 * scale - 0.5], [0, 0, 1]])
    small = cv2.resize(face, size, interpolation=cv2.INTER_AREA)
    turned = cv2.warpAffine(small, cv2.getRotationMatrix2D((size[0] / 2, size[1] / 2), angle, 1.0), size,
                            borderMode=cv2.BORDER_REFLECT)
    out = canvas.copy()
    out[at[1]:at[1] + size[1], at[0]:at[0] + size[0]] = turned
    matrix[:, 2] += at
    return out, matrix


@pytest.fixture(scope="module")
def session():
    with FaceMeshSession() as mesh:
        yield mesh


@pytest.fixture(scope="module")
def hopper():
    return load_portrait(GRACE_HOPPER)


@pytest.fixture(scope="module")
def hopper_eyes(hopper, session):
    return np.array([e.center for e in find_faces(hopper, "all", session)[0].eyes])


@pytest.mark.parametrize("angle", [0.0, 40.0])
def test_a_small_face_on_a_big_canvas_is_found_by_the_cascade(session, hopper, hopper_eyes, angle):
    image, matrix = paste(hopper, 0.5, angle, blotchy_canvas(1500, 2000), (700, 500))
    assert faces.whole_image(session, image) == []  # FaceMesh alone finds nothing
    [face] = find_faces(image, "all", session)
    assert face.found_by == "blazeface" and "crop" in face.detail
    expected = hopper_eyes @ matrix[:, :2].T + matrix[:, 2]
    found = np.array([e.center for e in face.eyes])
    expected = expected[np.argsort(expected[:, 0])]
    assert np.abs(found - expected).max() < 2.5, (found, expected)
    assert face.landmarks.shape == (478, 2)


def test_largest_also_falls_back_to_the_cascade(session, hopper):
    image, _ = paste(hopper, 0.5, 0.0, blotchy_canvas(1500, 2000), (700, 500))
    [face] = find_faces(image, "largest", session)
    assert face.found_by == "blazeface"


def test_a_face_facemesh_finds_is_marked_so(session, hopper):
    [face] = find_faces(hopper, "all", session)
    assert face.found_by == "facemesh" and face.detail == ""


def test_background_alone_finds_no_face_and_names_the_picker(session):
    with pytest.raises(PrecomputeError, match=r"no face was found.*monalisa eyes"):
        find_faces(blotchy_canvas(1500, 2000, seed=3), "all", session)


def test_crops_map_landmarks_back_with_depth(session, hopper):
    [direct] = session.landmarks(hopper, with_z=True)
    center = tuple(direct[:, :2].mean(axis=0))
    [turned] = faces.mesh_on_square(session, hopper, center, 1.4 * hopper.shape[0], 20.0, 512)
    assert turned.shape == (478, 3)
    assert np.abs(turned[:, :2] - direct[:, :2]).mean() < 3.0
    depth, depth_turned = direct[:, 2] - direct[:, 2].mean(), turned[:, 2] - turned[:, 2].mean()
    assert depth_turned.std() == pytest.approx(depth.std(), rel=0.15)  # z scales like x


def test_iris_radius_override_keeps_the_rest(session, hopper):
    [face] = find_faces(hopper, "all", session)
    [given] = with_iris_radius([face], 6.5)
    for before, after in zip(face.eyes, given.eyes):
        assert after.iris_radius == 6.5
        assert after.center == before.center and after.corner_left == before.corner_left
        np.testing.assert_array_equal(after.upper_lid, before.upper_lid)
    assert given.found_by == "facemesh" and "iris radius 6.5 px given" in given.detail
    with pytest.raises(PrecomputeError, match="--iris-radius 40 px does not fit"):
        with_iris_radius([face], 40)


def test_a_quick_find_runs_facemesh_on_the_whole_image_only(monkeypatch):
    """Driving frames: one FaceMesh call, no quarters, no BlazeFace fallback (a face is there or not)."""

    class CountingMesh:
        calls = 0

        def landmarks(self, image, with_z=False):
            CountingMesh.calls += 1
            return []

    monkeypatch.setattr(faces, "_blazeface_boxes", lambda mesh, image: pytest.fail("no BlazeFace in a quick find"))
    assert faces.cascade(CountingMesh(), np.zeros((400, 600, 3), np.uint8), fallback_only=True, quick=True) == []
    assert CountingMesh.calls == 1
