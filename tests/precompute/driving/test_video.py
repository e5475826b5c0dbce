"""Driving video: evenly spaced frame choice, head crops, recorded and measured gaze, clear errors."""

import dataclasses
import json
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest

from monalisa.errors import PrecomputeError
from precompute import portrait
from precompute.driving import video as driving
from precompute.driving.video import (
    Square,
    check_sweep,
    crop_square,
    find_driver,
    grid_targets,
    head_square,
    iter_frames,
    load_driving,
    measure_face,
    measure_video,
    select_frames,
)
from precompute.portrait import faces_from_eye_points, load_portrait

GRACE = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"

YAWS = [round(-30 + 60 * i / 32, 4) for i in range(33)]


def write_video(path, count, size=(160, 120)):
    """A small mp4 whose frames get brighter over time."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, size)
    for i in range(count):
        writer.write(np.full((size[1], size[0], 3), 40 + (i * 5) % 200, np.uint8))
    writer.release()
    return path


def write_face_video(path, count):
    """A small mp4 of a real face sliding left and right, for FaceMesh itself."""
    face = cv2.resize(load_portrait(GRACE)[60:420, 80:440], (240, 240))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30, (240, 240))
    for i in range(count):
        shift = np.float32([[1, 0, 5 * np.sin(2 * np.pi * i / count)], [0, 1, 0]])
        frame = cv2.warpAffine(face, shift, (240, 240), borderMode=cv2.BORDER_REPLICATE)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture
def sessions(monkeypatch):
    """Every FaceMeshSession opened while the test runs."""
    opened = []

    class Recorded(portrait.FaceMeshSession):
        def __init__(self):
            super().__init__()
            opened.append(self)

    monkeypatch.setattr(portrait, "FaceMeshSession", Recorded)
    return opened


def write_gaze(video, yaws, pitches=None):
    pitches = [0.0] * len(yaws) if pitches is None else pitches
    frames = [{"index": i, "t": i / 30, "x": (1 - y) / 2, "y": 0.5, "yaw": y, "pitch": p}
              for i, (y, p) in enumerate(zip(yaws, pitches))]
    video.with_suffix(".json").write_text(json.dumps({"format": "monalisa-gaze/1", "frames": frames}))


class FakeDriver:
    """Stands in for FaceMesh: a face at a fixed place whose irises follow a scripted path."""

    def __init__(self, iris_along=None, missing=()):
        self.iris_along = iris_along  # per frame, iris offset along the eye in eye widths
        self.missing = set(missing)
        self.calls = 0

    def __call__(self, image):
        index, self.calls = self.calls, self.calls + 1
        if index in self.missing:
            return None
        face = faces_from_eye_points(image, (55, 50, 105, 50), fit=False, warn=False)[0]  # no fitting: a fake
        if self.iris_along is None:
            return face
        shift = self.iris_along[index] * face.left_eye.width
        eyes = [dataclasses.replace(e, center=(e.center[0] + shift, e.center[1])) for e in face.eyes]
        return dataclasses.replace(face, left_eye=eyes[0], right_eye=eyes[1])


# ----------------------------------------------------------------------------- pure parts

def test_selection_on_a_noisy_sweep_is_evenly_spaced_and_monotonic():
    rng = np.random.default_rng(1)
    count = 400
    yaw = np.linspace(-1, 1, count) + rng.normal(0, 0.004, count)
    gaze = np.stack([yaw, rng.normal(0, 0.01, count)], 1)
    chosen = select_frames(gaze, grid_targets(YAWS, [0.0]), pitch_weight=0.0)[0]
    assert chosen.shape == (33,)
    steps = np.diff(chosen)
    assert np.all(steps > 0)
    expected = (count - 1) / 32
    assert np.all(np.abs(steps - expected) < 0.3 * expected)
    assert chosen[0] < 5 and chosen[-1] > count - 6


def test_selection_on_a_back_and_forth_sweep_matches_each_target():
    t = np.linspace(0, 2, 301)
    yaw = np.where(t < 1, -1 + 2 * t, 3 - 2 * t)  # out and back
    gaze = np.stack([yaw, np.zeros_like(yaw)], 1)
    targets = grid_targets(YAWS, [0.0])
    chosen = select_frames(gaze, targets)
    assert np.abs(gaze[chosen][..., 0] - targets[..., 0]).max() < 0.01
    # not "every n-th frame": all chosen frames come from wherever the gaze matched, not a fixed stride
    assert len(set(chosen.ravel().tolist())) == 33


def test_grid_targets_span_minus_one_to_one_with_pitch_rows_top_down():
    targets = grid_targets(YAWS, [15.0, 0.0, -15.0])
    assert targets.shape == (3, 33, 2)
    assert targets[0, 0].tolist() == [-1.0, 1.0]
    assert targets[2, 32].tolist() == [1.0, -1.0]
    assert targets[1, 16].tolist() == [0.0, 0.0]


def test_check_sweep_names_the_range_and_the_minimum(tmp_path):
    with pytest.raises(PrecomputeError, match=r"only 0\.03 .* at least 0\.08"):
        check_sweep(tmp_path / "v.mp4", np.array([0.03, 0.2]), (0.08, 0.05), False, "eye widths")
    check_sweep(tmp_path / "v.mp4", np.array([0.3, 0.0]), (0.08, 0.05), False, "eye widths")
    with pytest.raises(PrecomputeError, match="top to bottom"):
        check_sweep(tmp_path / "v.mp4", np.array([0.3, 0.0]), (0.08, 0.05), True, "eye widths")


def test_head_square_is_centred_with_margin():
    square = head_square((100, 100, 200, 150))
    assert square.size == 160
    assert (square.x + square.size / 2, square.y + square.size / 2) == (150, 125)


def test_crop_past_the_border_repeats_the_edge():
    image = np.zeros((50, 40, 3), np.uint8)
    image[:, :20] = 255
    crop = crop_square(image, Square(-20, 10, 60), size=64)
    assert crop.shape == (64, 64, 3)
    assert crop[:, :40].min() == 255 and crop[:, 46:].max() == 0
    with pytest.raises(PrecomputeError):
        crop_square(image, Square(100, 100, 10))


# ----------------------------------------------------------------------------- videos

def test_recorded_gaze_picks_frames_by_dot_position(tmp_path):
    video = write_video(tmp_path / "gaze.mp4", 60)
    yaw = np.concatenate([np.linspace(1, -1, 30), np.linspace(-1, 1, 30)])
    write_gaze(video, yaw.tolist())
    result = load_driving(video, YAWS, [0.0], find_face=FakeDriver(), progress=False)
    assert result.gaze_source == "recorded" and result.frame_count == 60
    assert result.cell_frames.shape == (1, 33)
    assert np.abs(yaw[result.cell_frames[0]] - np.array(YAWS) / 30).max() < 0.05
    assert abs(yaw[result.initial_frame]) < 0.05
    assert set(result.crops) == set(result.chosen) | {result.initial_frame}
    assert all(c.shape == (256, 256, 3) and c.dtype == np.uint8 for c in result.crops.values())


def test_measured_gaze_follows_the_irises(tmp_path):
    video = write_video(tmp_path / "plain.mp4", 50)
    along = np.linspace(-0.15, 0.15, 50)  # iris moves toward the image right over time
    result = load_driving(video, YAWS, [0.0], find_face=FakeDriver(along), progress=False)
    assert result.gaze_source == "measured"
    chosen = result.cell_frames[0]
    assert np.all(np.diff(chosen) >= 0) and chosen[0] <= 2 and chosen[-1] >= 47
    assert 20 <= result.initial_frame <= 29


def test_blinks_and_faceless_frames_are_never_chosen(tmp_path):
    video = write_video(tmp_path / "plain.mp4", 50)
    along = np.linspace(-0.15, 0.15, 50)
    result = load_driving(video, YAWS, [0.0], find_face=FakeDriver(along, missing={24, 25, 26}),
                          progress=False)
    assert not {24, 25, 26} & set(result.chosen)


def test_too_little_sweep_is_reported(tmp_path):
    video = write_video(tmp_path / "still.mp4", 30)
    with pytest.raises(PrecomputeError, match="sweeps only 0.0[0-9] eye widths"):
        load_driving(video, YAWS, [0.0], find_face=FakeDriver(np.linspace(0, 0.02, 30)), progress=False)
    write_gaze(video, np.linspace(0.2, -0.2, 30).tolist())
    with pytest.raises(PrecomputeError, match="sweeps only 0.40 of the screen"):
        load_driving(video, YAWS, [0.0], find_face=FakeDriver(), progress=False)


def test_a_single_row_recording_cannot_fill_pitch_rows(tmp_path):
    video = write_video(tmp_path / "gaze.mp4", 30)
    write_gaze(video, np.linspace(1, -1, 30).tolist())
    with pytest.raises(PrecomputeError, match="--pitch-steps"):
        load_driving(video, YAWS, [10.0, 0.0, -10.0], find_face=FakeDriver(), progress=False)


def test_no_face_is_reported(tmp_path):
    video = write_video(tmp_path / "empty.mp4", 20)
    with pytest.raises(PrecomputeError, match="no face found in the driving video"):
        load_driving(video, YAWS, [0.0], find_face=lambda image: None, progress=False)


def test_unreadable_and_missing_videos_are_reported(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    with pytest.raises(PrecomputeError, match="cannot read the driving video"):
        load_driving(bad, YAWS, [0.0], find_face=FakeDriver(), progress=False)
    with pytest.raises(PrecomputeError, match="not found"):
        load_driving(tmp_path / "nope.mp4", YAWS, [0.0], find_face=FakeDriver(), progress=False)


def test_gaze_json_must_match_the_video(tmp_path):
    video = write_video(tmp_path / "gaze.mp4", 30)
    write_gaze(video, np.linspace(1, -1, 20).tolist())
    with pytest.raises(PrecomputeError, match="lists 20 frames but the video has 30"):
        load_driving(video, YAWS, [0.0], find_face=FakeDriver(), progress=False)
    video.with_suffix(".json").write_text("{not json")
    with pytest.raises(PrecomputeError, match="not a readable gaze file"):
        load_driving(video, YAWS, [0.0], find_face=FakeDriver(), progress=False)


def test_a_mirrored_recording_is_flipped(tmp_path):
    video = write_video(tmp_path / "gaze.mp4", 40)
    write_gaze(video, np.linspace(1, -1, 40).tolist())  # dot left -> right: yaw +1 -> -1
    along = np.linspace(-0.15, 0.15, 40)  # but the irises move toward the image right: mirrored
    result = load_driving(video, YAWS, [0.0], find_face=FakeDriver(along), progress=False)
    # column 0 (yaw -30: look toward the screen's left) needs the irises at the image's left
    assert result.cell_frames[0, 0] <= 2 and result.cell_frames[0, -1] >= 37


def test_the_crop_square_comes_from_the_median_face(tmp_path, monkeypatch):
    video = write_video(tmp_path / "gaze.mp4", 30)
    write_gaze(video, np.linspace(1, -1, 30).tolist())
    result = load_driving(video, YAWS, [0.0], find_face=FakeDriver(), progress=False)
    face = FakeDriver()(np.zeros((120, 160, 3), np.uint8))
    assert result.square == driving.head_square(face.box)


def test_sweep_passes_split_at_turns_and_rows():
    yaw = [1, 0, -1, 0, 1, 1, 0, -1]
    pitch = [1, 1, 1, 1, 1, -1, -1, -1]
    assert driving.sweep_passes(np.array([yaw, pitch], float).T).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]


def test_each_row_takes_its_frames_from_one_pass(tmp_path):
    video = write_video(tmp_path / "gaze.mp4", 80)
    yaw = np.concatenate([np.linspace(1, -1, 40), np.linspace(-1, 1, 40)])
    write_gaze(video, yaw.tolist())
    chosen = load_driving(video, YAWS, [0.0], find_face=FakeDriver(), progress=False).cell_frames[0]
    assert np.all(chosen < 40) or np.all(chosen >= 39)
    assert np.all(np.diff(chosen) < 0) or np.all(np.diff(chosen) > 0)


# ----------------------------------------------------------------------------- real FaceMesh

def test_a_pass_builds_one_face_mesh_and_measures_as_a_graph_per_frame_would(tmp_path, sessions, capfd):
    video = write_face_video(tmp_path / "face.mp4", 6)
    expected = [measure_face(i, find_driver(image)) for i, image in enumerate(iter_frames(video))]
    sessions.clear()
    capfd.readouterr()
    measures, count = measure_video(video, progress=False)
    assert count == 6 and measures == expected
    assert len(sessions) == 1
    with pytest.raises(RuntimeError, match="after close"):
        sessions[0].landmarks(np.zeros((8, 8, 3), np.uint8))
    assert capfd.readouterr().err == ""


def test_the_shared_face_mesh_is_closed_when_the_pass_fails(tmp_path, sessions, monkeypatch):
    def broken(image, which="all", session=None, quick=False):
        raise RuntimeError("FaceMesh broke")

    monkeypatch.setattr(portrait, "find_faces", broken)
    with pytest.raises(RuntimeError, match="FaceMesh broke"):
        measure_video(write_face_video(tmp_path / "face.mp4", 3), progress=False)
    assert len(sessions) == 1
    with pytest.raises(RuntimeError, match="after close"):
        sessions[0].landmarks(np.zeros((8, 8, 3), np.uint8))
