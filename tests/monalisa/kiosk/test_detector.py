"""BlazeFace detection on shipped portraits and generated camera videos with known eye positions."""

import math
import os

import numpy as np
import pytest

from monalisa.config import DetectorConfig
from monalisa.kiosk.detector import BlazeFaceDetector, Face
from monalisa.kiosk.video import VideoFileSource
from monalisa.mp_quiet import quiet_stderr
from monalisa.testing import synthetic


@pytest.fixture(scope="module")
def heads():
    return synthetic.load_heads()


@pytest.fixture(scope="module")
def detector():
    with BlazeFaceDetector(DetectorConfig()) as model:
        yield model


def test_face_geometry():
    face = Face(box=(0.4, 0.3, 0.2, 0.3), score=0.9, left_eye=(0.45, 0.40),
        right_eye=(0.55, 0.40), frame_size=(640, 480))
    assert face.eye_mid == pytest.approx((0.5, 0.4))
    assert face.eye_distance_px(640, 480) == pytest.approx(64.0)
    assert face.eye_distance == pytest.approx(0.1)  # fraction of the frame width
    tilted = Face((0, 0, 1, 1), 1.0, (0.0, 0.0), (0.3, 0.4), frame_size=(300, 400))
    assert tilted.eye_distance_px(300, 400) == pytest.approx(math.hypot(90, 160))
    assert tilted.eye_distance == pytest.approx(math.hypot(90, 160) / 300)
    assert face.area == pytest.approx(0.06)


@pytest.mark.parametrize("mirror", [False, True])
def test_left_eye_is_the_eye_on_the_image_left(detector, mirror):
    portrait = synthetic.shipped_portraits()["grace_hopper"]
    image = np.ascontiguousarray(portrait[:, ::-1]) if mirror else portrait
    faces = detector.detect(image)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.8
    assert face.left_eye[0] < face.right_eye[0]
    x, y, w, h = face.box
    assert x < face.eye_mid[0] < x + w and y < face.eye_mid[1] < y + h
    assert face.frame_size == (image.shape[1], image.shape[0])


def test_detections_follow_a_walking_face(tmp_path, heads, detector):
    truth = synthetic.walking_video(tmp_path / "walk.avi", seconds=2.0, path_kind="walk", heads=heads)
    errors, found = [], 0
    with VideoFileSource(tmp_path / "walk.avi", pace=False) as source:
        while (frame := source.read_latest()) is not None:
            faces = detector.detect(frame.image)
            if len(faces) == 1:
                found += 1
                errors.append(np.subtract(faces[0].eye_mid, truth.frames[frame.index][0].eye_mid))
    assert found >= 0.95 * len(truth.frames)
    errors = np.abs(errors)
    assert np.median(errors[:, 0]) < 0.02 and np.median(errors[:, 1]) < 0.03  # fractions of width / height
    assert errors[:, 0].max() < 0.04 and errors[:, 1].max() < 0.05


def test_two_faces_come_closest_first(tmp_path, heads, detector):
    truth = synthetic.two_face_video(tmp_path / "two.avi", seconds=0.5, heads=heads)
    with VideoFileSource(tmp_path / "two.avi", pace=False) as source:
        frame = source.read_latest()
    faces = detector.detect(frame.image)
    assert len(faces) == 2
    near, far = truth.frames[0]
    assert faces[0].area > faces[1].area
    assert np.subtract(faces[0].eye_mid, near.eye_mid) == pytest.approx((0, 0), abs=0.04)
    assert np.subtract(faces[1].eye_mid, far.eye_mid) == pytest.approx((0, 0), abs=0.04)


def test_full_range_model_sees_a_small_far_face(tmp_path, heads):
    truth = synthetic.walking_video(tmp_path / "far.avi", seconds=0.2, path_kind="still",
        eye_distance=0.05, heads=heads)
    with VideoFileSource(tmp_path / "far.avi", pace=False) as source:
        frame = source.read_latest()
    with BlazeFaceDetector(DetectorConfig(model="full")) as full:
        faces = full.detect(frame.image)
    assert len(faces) == 1
    assert np.subtract(faces[0].eye_mid, truth.frames[0][0].eye_mid) == pytest.approx((0, 0), abs=0.03)


def test_nobody_means_no_faces(detector):
    rng = np.random.default_rng(3)
    assert detector.detect(synthetic.background((640, 480), rng)) == []


def test_bad_input_and_use_after_close_fail_clearly():
    model = BlazeFaceDetector(DetectorConfig(min_score=0.7))
    with pytest.raises(ValueError, match="RGB uint8"):
        model.detect(np.zeros((48, 64), np.uint8))
    model.close()
    model.close()
    with pytest.raises(RuntimeError, match="after close"):
        model.detect(np.zeros((48, 64, 3), np.uint8))


def test_building_and_running_a_detector_leaves_stderr_clean(capfd):
    """MediaPipe's C++ set-up lines (W0000 ..., INFO: ...) must not reach the kiosk's journal."""
    portrait = synthetic.shipped_portraits()["grace_hopper"]
    capfd.readouterr()
    with BlazeFaceDetector(DetectorConfig(model="full")) as model:
        assert len(model.detect(portrait)) == 1
    assert capfd.readouterr().err == ""


def test_quiet_stderr_drops_native_writes_only_inside_and_lets_errors_through(capfd):
    capfd.readouterr()
    with pytest.raises(ValueError, match="boom"):
        with quiet_stderr():
            os.write(2, b"native log line\n")
            raise ValueError("boom")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
