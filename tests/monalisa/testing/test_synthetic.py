"""Generated camera videos: placement, ground truth, and that they read back as camera input."""

import math
import sys

import numpy as np
import pytest

from monalisa.errors import CameraError, MonalisaError
from monalisa.kiosk.video import VideoFileSource
from monalisa.testing import synthetic


@pytest.fixture(scope="module")
def heads():
    return synthetic.load_heads()


def test_heads_are_cut_around_their_eyes(heads):
    assert set(heads) == {"grace_hopper", "astronaut"}
    for head in heads.values():
        side = head.image.shape[0]
        assert head.image.shape == (side, side, 3) and head.alpha.shape == (side, side)
        assert head.left_eye[0] < head.right_eye[0]
        assert 0.3 * side < head.left_eye[0] < head.right_eye[0] < 0.7 * side
        assert head.alpha[side // 2, side // 2] == pytest.approx(1.0) and head.alpha[0, 0] < 0.01


def test_placement_puts_the_eyes_where_the_pose_says(heads):
    head = heads["grace_hopper"]
    pose = synthetic.Pose(0.3, 0.6, eye_distance=0.1, roll_deg=10)
    truth = synthetic.true_face(head, synthetic.place(head, pose, (640, 480)), (640, 480))
    assert truth.eye_mid == pytest.approx((0.3, 0.6))
    assert truth.eye_distance_px == pytest.approx(64.0)
    angle = math.degrees(math.atan2((truth.right_eye[1] - truth.left_eye[1]) * 480,
                                    (truth.right_eye[0] - truth.left_eye[0]) * 640))
    assert angle == pytest.approx(10 + math.degrees(math.atan2(head.right_eye[1] - head.left_eye[1],
                                                               head.right_eye[0] - head.left_eye[0])), abs=0.01)


def test_walking_video_reads_back_frame_for_frame_with_its_truth(tmp_path, heads):
    path = tmp_path / "walk.avi"
    truth = synthetic.walking_video(path, seconds=1.0, fps=20, size=(320, 240), heads=heads)
    assert (truth.fps, truth.width, truth.height, len(truth.frames)) == (20, 320, 240, 20)
    xs = [faces[0].eye_mid[0] for faces in truth.frames]
    assert xs[0] == pytest.approx(0.15) and np.all(np.diff(xs) > 0)  # crossing left to right
    assert synthetic.GroundTruth.load(synthetic.truth_path(path)) == truth
    with VideoFileSource(path, pace=False) as source:
        assert source.fps == 20
        frames = []
        while (frame := source.read_latest()) is not None:
            frames.append(frame)
    assert [f.index for f in frames] == list(range(20))
    assert frames[0].image.shape == (240, 320, 3)


def test_path_kinds():
    still = synthetic.walker("still", 4.0, 0.08)
    assert still(0.0) == still(3.9)
    settle = synthetic.walker("walk_then_still", 4.0, 0.08)
    assert settle(1.0).x < settle(2.4).x == settle(3.9).x
    with pytest.raises(ValueError):
        synthetic.walker("run", 1.0, 0.08)


def test_two_face_truth_lists_the_closer_face_first(tmp_path, heads):
    truth = synthetic.two_face_video(tmp_path / "two.mp4", seconds=0.5, heads=heads)
    assert all(len(faces) == 2 for faces in truth.frames)
    near, far = truth.frames[0]
    assert near.eye_distance_px > far.eye_distance_px and near.eye_mid[0] > far.eye_mid[0]


def test_empty_video_has_no_faces_and_sensor_noise(tmp_path):
    path = tmp_path / "empty.avi"
    truth = synthetic.empty_video(path, seconds=0.3)
    assert truth.frames == [[]] * 9
    with VideoFileSource(path, pace=False) as source:
        a, b = source.read_latest(), source.read_latest()
    assert not np.array_equal(a.image, b.image)  # like a real camera, never two identical frames
    assert np.abs(a.image.astype(int) - b.image).mean() < 6


def test_unknown_video_suffix_is_refused(tmp_path):
    with pytest.raises(CameraError, match=".mkv"):
        synthetic.empty_video(tmp_path / "x.mkv", seconds=0.1)


def test_command_line_writes_video_and_truth(tmp_path, capsys):
    assert synthetic.main([str(tmp_path / "e.avi"), "--kind", "empty", "--seconds", "0.2", "--size", "160x120"]) == 0
    assert (tmp_path / "e.avi").stat().st_size > 0 and (tmp_path / "e.truth.json").is_file()
    assert "6 frames" in capsys.readouterr().out


@pytest.fixture
def no_scikit_image(monkeypatch):
    """Make `import skimage` fail, as after a plain `pip install -e .` (scikit-image is only in the test extra)."""
    for name in [name for name in sys.modules if name == "skimage" or name.startswith("skimage.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "skimage", None)


def test_without_scikit_image_grace_hopper_is_the_only_head(no_scikit_image, tmp_path, heads):
    assert set(synthetic.shipped_portraits()) == {"grace_hopper"}
    hopper_only = {"grace_hopper": heads["grace_hopper"]}
    truth = synthetic.two_face_video(tmp_path / "two.avi", seconds=0.2, size=(320, 240), heads=hopper_only)
    assert all(len(faces) == 2 for faces in truth.frames)
    with pytest.raises(MonalisaError, match="no head astronaut .*scikit-image"):
        synthetic.walking_video(tmp_path / "a.avi", seconds=0.1, head="astronaut", heads=hopper_only)
    assert not (tmp_path / "a.avi").exists()


def test_bench_generates_its_video_without_scikit_image(no_scikit_image, tmp_path, capsys):
    from monalisa.config import Config
    from monalisa.ops.bench import run_bench
    from monalisa.testing.pools import grid_pool

    pool = grid_pool(tmp_path / "pool", rows=1, cols=9)
    assert run_bench(Config(), None, 10, pool=pool) == 0
    out = capsys.readouterr().out
    assert "synthetic walk" in out and "frames 10 in" in out


@pytest.mark.parametrize("flags, message", [
    (["--size", "640"], "argument --size: expected WIDTHxHEIGHT"),
    (["--size", "64x48"], "each >= 80"),
    (["--seconds", "0"], "argument --seconds: expected a number > 0"),
    (["--seconds", "0.01"], "less than one frame"),
])
def test_command_line_bad_flags_are_one_line_usage_errors(tmp_path, capsys, flags, message):
    assert synthetic.main([str(tmp_path / "o.avi"), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_command_line_unwritable_output_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert synthetic.main([str(blocker / "o.avi"), "--kind", "empty", "--seconds", "0.1", "--size", "96x80"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write here" in err
