"""`monalisa record` headless: a fake camera and clock; the video and its JSON agree; Esc saves nothing."""

import json

import cv2
import numpy as np
import pytest

from monalisa.config import Config
from monalisa.errors import CameraError, MonalisaError, UsageError
from monalisa.kiosk import video as video_module
from monalisa.kiosk.camera import Frame
from monalisa.kiosk.video import VideoFileSource
from precompute.driving.gazefile import gaze_json_path
from precompute.driving.record import Sweep, record_gaze


class FakeClock:
    """Time advances only when the recorder sleeps; can press Esc at a given time."""

    def __init__(self, escape_at=None):
        self.t = 100.0
        self.escape_at = escape_at

    def now(self):
        return self.t

    def sleep(self, seconds):
        self.t += seconds
        if self.escape_at is not None and self.t - 100.0 >= self.escape_at:
            import pygame

            pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_ESCAPE))
            self.escape_at = None


class FakeCamera:
    """A 30 fps camera on the fake clock: each frame's brightness encodes its number."""

    def __init__(self, clock, fps=30.0, delay=0.0):
        self.clock, self.period = clock, 1.0 / fps
        self.next_t = clock.now() + delay
        self.index = 0
        self.state = "starting"
        self.closed = False

    def start(self):
        self.state = "ok"

    def read_latest(self):
        if self.state != "ok" or self.clock.now() < self.next_t:
            return None
        self.next_t += self.period
        image = np.full((48, 64, 3), (self.index * 3) % 256, np.uint8)
        self.index += 1
        return Frame(image, self.index - 1, self.clock.now())

    def wait(self, timeout):
        return True

    def close(self):
        self.closed = True
        self.state = "ended"

    def describe(self):
        return "fake camera"


def small_config(sweep_s=1.0):
    config = Config()
    config.render.window_width, config.render.window_height = 160, 120
    config.fomm.record_sweep_s = sweep_s
    return config


def count_frames(path):
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def test_record_saves_video_and_matching_sweep(tmp_path):
    clock = FakeClock()
    camera = FakeCamera(clock)
    out = tmp_path / "gaze.mp4"
    assert record_gaze(out, 1, small_config(), source=camera, clock=clock) == 0
    data = json.loads((tmp_path / "gaze.json").read_text())
    frames = data["frames"]
    assert data["format"] == "monalisa-gaze/1" and data["pitch_steps"] == 1
    # 2 s of sweep (out and back) at 30 fps
    assert 55 <= len(frames) <= 62
    assert count_frames(out) == len(frames)
    xs = np.array([f["x"] for f in frames])
    turn = int(xs.argmax())
    assert 0.4 * len(xs) < turn < 0.6 * len(xs)
    assert np.all(np.diff(xs[:turn + 1]) > 0) and np.all(np.diff(xs[turn:]) < 0)
    assert xs.min() < 0.15 and xs.max() > 0.85
    yaws = np.array([f["yaw"] for f in frames])
    assert yaws[0] > 0.9 and yaws[turn] < -0.9  # dot at the left drives the portrait's yaw +1
    assert {f["pitch"] for f in frames} == {0.0}
    assert camera.closed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gaze.json", "gaze.mp4"]


def test_record_rows_go_top_to_bottom(tmp_path):
    clock = FakeClock()
    out = tmp_path / "rows.mp4"
    assert record_gaze(out, 3, small_config(), source=FakeCamera(clock, delay=0.5), clock=clock) == 0
    frames = json.loads((tmp_path / "rows.json").read_text())["frames"]
    rows = [f["row"] for f in frames]
    assert rows == sorted(rows) and set(rows) == {0, 1, 2}
    ys = [frames[rows.index(r)]["y"] for r in range(3)]
    pitches = [frames[rows.index(r)]["pitch"] for r in range(3)]
    assert ys == sorted(ys) and pitches == [1.0, 0.0, -1.0]
    assert count_frames(out) == len(frames)


def test_escape_cancels_and_leaves_nothing(tmp_path):
    clock = FakeClock(escape_at=4.0)  # in the middle of the sweep
    out = tmp_path / "gaze.mp4"
    assert record_gaze(out, 1, small_config(), source=FakeCamera(clock), clock=clock) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_silent_camera_is_an_error_and_leaves_nothing(tmp_path):
    clock = FakeClock()
    camera = FakeCamera(clock, delay=1e9)
    with pytest.raises(CameraError, match="no frames"):
        record_gaze(tmp_path / "gaze.mp4", 1, small_config(), source=camera, clock=clock)
    assert list(tmp_path.iterdir()) == []


def test_unknown_video_suffix_is_refused(tmp_path):
    with pytest.raises(MonalisaError, match=".mp4"):
        record_gaze(tmp_path / "gaze.mkv", 1, small_config(), source=FakeCamera(FakeClock()), clock=FakeClock())


def test_pitch_steps_out_of_range_is_a_usage_error(tmp_path, capsys):
    from monalisa.cli import main

    with pytest.raises(UsageError, match="--pitch-steps must be from 1 to 61, got 99"):
        record_gaze(tmp_path / "gaze.mp4", 99, small_config(), source=FakeCamera(FakeClock()), clock=FakeClock())
    assert main(["record", "--out", str(tmp_path / "gaze.mp4"), "--pitch-steps", "99"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--pitch-steps" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_failed_recording_keeps_the_previous_pair(tmp_path):
    clock = FakeClock()
    out = tmp_path / "gaze.mp4"
    assert record_gaze(out, 1, small_config(), source=FakeCamera(clock), clock=clock) == 0
    before = out.read_bytes(), gaze_json_path(out).read_bytes()
    clock = FakeClock()
    camera = FakeCamera(clock)
    camera.read_latest = lambda real=camera.read_latest: real() if clock.t < 104.0 else None  # stalls mid-sweep
    with pytest.raises(CameraError, match="stopped delivering"):
        record_gaze(out, 1, small_config(sweep_s=3.0), source=camera, clock=clock)
    assert (out.read_bytes(), gaze_json_path(out).read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gaze.json", "gaze.mp4"]


@pytest.mark.parametrize("driver, message", [
    ("no-such-driver", "^cannot open a window for recording: .+; run it in a desktop session$"),  # console
    (None, "no screen to draw on: DISPLAY is not set"),  # SDL would silently fall back to off-screen
])
def test_no_display_is_one_clear_error_and_leaves_nothing(tmp_path, monkeypatch, driver, message):
    import pygame

    pygame.display.quit()
    for name in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    if driver:
        monkeypatch.setenv("SDL_VIDEODRIVER", driver)
    clock = FakeClock()
    camera = FakeCamera(clock)
    with pytest.raises(MonalisaError, match=message):
        record_gaze(tmp_path / "gaze.mp4", 1, small_config(), source=camera, clock=clock)
    assert camera.closed and list(tmp_path.iterdir()) == []
    assert not pygame.display.get_init()


def test_record_from_a_video_file_named_as_the_camera(tmp_path, monkeypatch):
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    for i in range(150):  # 6 s at 25 fps: the 3 s countdown and a 2 s sweep fit
        writer.write(np.full((48, 64, 3), i, np.uint8))
    writer.release()
    clock = FakeClock()
    opened = []

    class FileOnTheFakeClock(VideoFileSource):
        def __init__(self, path, pace=True, loop=False):
            super().__init__(path, pace=pace, loop=loop, clock=clock.now)
            opened.append(self)

    monkeypatch.setattr(video_module, "VideoFileSource", FileOnTheFakeClock)
    config = small_config()
    config.camera.source = str(clip)  # what `monalisa record --camera clip.avi` sets
    out = tmp_path / "out" / "gaze.avi"
    assert record_gaze(out, 1, config, clock=clock) == 0
    assert len(opened) == 1 and opened[0].path == clip and opened[0].state == "ended"
    data = json.loads(gaze_json_path(out).read_text())
    assert data["fps"] == 25.0  # the file's own rate, not the camera's 30
    assert 45 <= len(data["frames"]) <= 52  # 2 s of sweep at 25 fps
    assert count_frames(out) == len(data["frames"])


def test_sweep_timeline():
    sweep = Sweep(rows=2, sweep_s=2.0, countdown_s=3.0, hold_s=1.0)
    assert sweep.duration == 3 + 4 + 1 + 4
    assert sweep.at(1.0).phase == "countdown"
    assert sweep.at(3.0).phase == "sweep" and sweep.at(3.0).yaw == pytest.approx(1.0)
    assert sweep.at(5.0).yaw == pytest.approx(-1.0)
    assert sweep.at(7.5).phase == "hold" and sweep.at(7.5).row == 1
    assert sweep.at(9.0).pitch == -1.0 and sweep.at(4.0).pitch == 1.0
    assert sweep.at(99).phase == "done"
