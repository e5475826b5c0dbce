"""Video files as cameras, and open_source's choice of source."""

import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from monalisa.config import CameraConfig
from monalisa.errors import CameraError
from monalisa.kiosk.camera import Frame, open_source
from monalisa.kiosk.video import VideoFileSource
from monalisa.kiosk.webcam import WebcamSource


class NoCamera:
    """A capture factory for which no camera opens."""

    def factory(self, target):
        return None


def write_video(path: Path, frames: int, fps: float = 30, size=(64, 48)) -> Path:
    """A tiny MJPG video whose frame i is filled with grey level 5*i."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    for i in range(frames):
        writer.write(np.full((size[1], size[0], 3), 5 * i, np.uint8))
    writer.release()
    return path


def grey(frame: Frame) -> int:
    return int(round(frame.image.mean() / 5))


def test_unpaced_video_returns_every_frame_in_order_then_ends(tmp_path):
    video = write_video(tmp_path / "v.avi", 12)
    with VideoFileSource(video, pace=False) as source:
        frames = []
        while (frame := source.read_latest()) is not None:
            frames.append(frame)
        assert [f.index for f in frames] == list(range(12))
        assert [grey(f) for f in frames] == list(range(12))
        assert source.state == "ended" and source.read_latest() is None


def test_paced_video_releases_the_frame_due_now_and_drops_the_rest(tmp_path):
    video = write_video(tmp_path / "v.avi", 12, fps=10)
    now = [100.0]
    source = VideoFileSource(video, pace=True, clock=lambda: now[0])
    assert source.state == "starting" and source.read_latest() is None
    source.start()
    first = source.read_latest()
    assert (first.index, grey(first), first.t) == (0, 0, 100.0)
    assert source.read_latest() is None  # frame 1 is not due before t0 + 0.1
    now[0] = 100.35
    late = source.read_latest()
    assert (late.index, grey(late)) == (3, 3) and late.t == pytest.approx(100.3)
    now[0] = 102.0
    assert source.read_latest() is None and source.state == "ended"


class RetrieveCounter:
    """Wraps a cv2.VideoCapture and counts the frames converted to images."""

    def __init__(self, capture):
        self.capture, self.retrieved, self.reads = capture, 0, 0

    def retrieve(self, *args):
        self.retrieved += 1
        return self.capture.retrieve(*args)

    def read(self, *args):
        self.reads += 1
        return self.capture.read(*args)

    def __getattr__(self, name):
        return getattr(self.capture, name)


def test_paced_video_only_grabs_the_frames_it_drops(tmp_path, monkeypatch):
    video = write_video(tmp_path / "v.avi", 12, fps=10)
    opened = []
    real_open = VideoFileSource._open_capture
    monkeypatch.setattr(VideoFileSource, "_open_capture",
                        lambda self: opened.append(RetrieveCounter(real_open(self))) or opened[-1])
    now = [100.0]
    source = VideoFileSource(video, pace=True, clock=lambda: now[0])
    source.start()
    assert grey(source.read_latest()) == 0
    now[0] = 101.05
    late = source.read_latest()
    assert (late.index, grey(late)) == (10, 10)  # frames 1-9 dropped
    assert (opened[0].retrieved, opened[0].reads) == (2, 0)  # only frames 0 and 10 became images


def test_looping_video_replays_with_growing_indices(tmp_path):
    video = write_video(tmp_path / "v.avi", 4)
    with VideoFileSource(video, pace=False, loop=True) as source:
        frames = [source.read_latest() for _ in range(10)]
    assert [f.index for f in frames] == list(range(10))
    assert [grey(f) for f in frames] == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert np.diff([f.t for f in frames]) == pytest.approx([1 / 30] * 9)  # media time runs on across the loop


def test_unpaced_video_frames_carry_media_time_and_their_decode_time(tmp_path):
    video = write_video(tmp_path / "v.avi", 12, fps=25)
    now = [50.0]

    def clock():
        now[0] += 0.001  # decoding is much faster than real time
        return now[0]

    with VideoFileSource(video, pace=False, clock=clock) as source:
        frames = []
        while (frame := source.read_latest()) is not None:
            frames.append(frame)
    t0 = frames[0].t
    assert [f.t - t0 for f in frames] == pytest.approx([i / 25 for i in range(12)])   # the video's own clock
    assert all(f.grabbed is not None and f.grab_time == f.grabbed for f in frames)
    assert frames[-1].grabbed - frames[0].grabbed < 0.1 < frames[-1].t - frames[0].t


def test_paced_and_unpaced_replays_give_the_same_timeline(tmp_path):
    video = write_video(tmp_path / "v.avi", 30, fps=30)
    now = [10.0]
    paced = VideoFileSource(video, pace=True, clock=lambda: now[0])
    paced.start()
    paced_t = []
    for i in range(30):
        now[0] = 10.0 + (i + 0.5) / 30  # mid-frame: this frame is due, the next one not yet
        frame = paced.read_latest()
        paced_t.append(frame.t - 10.0)
        assert frame.grabbed is None and frame.grab_time == frame.t
    paced.close()
    with VideoFileSource(video, pace=False) as fast:
        fast_t = [fast.read_latest().t for _ in range(30)]
    assert np.array(paced_t) == pytest.approx(np.array(fast_t) - fast_t[0], abs=1e-9)


def test_paced_video_keeps_time_with_the_real_clock(tmp_path):
    video = write_video(tmp_path / "v.avi", 100, fps=30)
    with VideoFileSource(video, pace=True) as source:
        start = time.monotonic()
        frames = []
        while time.monotonic() - start < 0.5:
            if source.wait(0.1) and (frame := source.read_latest()) is not None:
                frames.append(frame)
    assert 13 <= len(frames) <= 17  # ~15 frames in 0.5 s at 30 fps
    assert np.all(np.diff([f.t for f in frames]) == pytest.approx(1 / 30, abs=0.004))
    assert frames[-1].t <= time.monotonic()


@pytest.mark.parametrize("content", [b"", b"this is not a video\n" * 50])
def test_empty_or_non_video_file_is_a_camera_error(tmp_path, content):
    path = tmp_path / "bad.avi"
    path.write_bytes(content)
    with pytest.raises(CameraError, match="bad.avi"):
        VideoFileSource(path)


def test_video_without_frames_is_a_camera_error(tmp_path):
    path = write_video(tmp_path / "none.avi", 0)
    with pytest.raises(CameraError):
        VideoFileSource(path)


def test_open_source_picks_the_source_kind(tmp_path):
    missing_camera = open_source(CameraConfig(source="7"), capture_factory=NoCamera().factory)
    assert isinstance(missing_camera, WebcamSource)  # no camera 7: no error, it just stays lost and retries
    with pytest.raises(CameraError, match="not found"):
        open_source(CameraConfig(source=str(tmp_path / "nope.avi")))
    with pytest.raises(CameraError, match="is a directory; the camera must be a camera index"):
        open_source(CameraConfig(source=str(tmp_path)))
    video = write_video(tmp_path / "v.avi", 5)
    source = open_source(CameraConfig(source=str(video), pace=False, loop=True))
    assert isinstance(source, VideoFileSource) and source.loop and not source.pace
    source.close()
