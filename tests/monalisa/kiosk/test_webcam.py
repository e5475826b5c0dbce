"""The webcam source's fault handling, through a scripted fake camera."""

import logging
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from monalisa.config import CameraConfig
from monalisa.errors import ConfigError
from monalisa.kiosk.camera import Frame, parse_camera_target
from monalisa.kiosk.webcam import CameraInfo, WebcamSource, device_node, is_uniform, list_cameras, same_image


class FakeCamera:
    """A scripted webcam: plug/unplug it, make reads fail, freeze its picture, darken it, stall it, move its index."""

    def __init__(self, index: int = 0, fps: float = 100.0):
        self.index = index
        self.fps = fps
        self.plugged = True
        self.fail_reads = False
        self.frozen = False
        self.dark = False  # bit-identical black frames, like a camera in an unlit room
        self.stall_s = 0.0
        self.raise_on_open: Exception | None = None
        self.generation = 0  # bumped on unplug: captures opened before stop working, like a dead fd
        self.counter = 0
        self.opens: list[tuple[float, object]] = []
        self.captures: list[FakeCapture] = []
        self.lock = threading.Lock()

    def factory(self, target):
        self.opens.append((time.monotonic(), target))
        if self.raise_on_open is not None:
            exc, self.raise_on_open = self.raise_on_open, None
            raise exc
        capture = FakeCapture(self, opened=self.plugged and target == self.index)
        self.captures.append(capture)
        return capture

    def present(self, target) -> bool:
        return self.plugged and target == self.index

    def devices(self) -> list[int]:
        return [self.index] if self.plugged else []

    def unplug(self) -> None:
        with self.lock:
            self.plugged = False
            self.generation += 1


class FakeCapture:
    """What cv2.VideoCapture looks like to WebcamSource; images are BGR with a per-frame counter."""

    def __init__(self, camera: FakeCamera, opened: bool):
        self.camera, self.opened = camera, opened
        self.generation = camera.generation
        self.settings: dict[int, float] = {}
        self.released = False

    def isOpened(self) -> bool:
        return self.opened

    def read(self):
        camera = self.camera
        time.sleep(1 / camera.fps)
        if camera.stall_s:
            time.sleep(camera.stall_s)
            return False, None
        if camera.fail_reads or not camera.plugged or camera.generation != self.generation:
            return False, None
        if camera.dark:
            return True, np.zeros((24, 32, 3), np.uint8)
        if not camera.frozen:
            camera.counter += 1
        image = np.zeros((24, 32, 3), np.uint8)
        image[:, :, 0] = 200  # blue in BGR
        image[0, 0, 1] = camera.counter % 256
        image[0, 1, 1] = camera.counter // 256
        return True, image

    def set(self, prop, value) -> bool:
        self.settings[prop] = value
        return True

    def get(self, prop) -> float:
        return self.settings.get(prop, 0.0)

    def release(self) -> None:
        self.released = True


def fast_config(**overrides) -> CameraConfig:
    values = dict(source="0", read_timeout_s=0.3, frozen_after_s=0.4, reopen_min_s=0.05, reopen_max_s=0.4)
    values.update(overrides)
    return CameraConfig(**values)


def webcam(camera: FakeCamera, **overrides) -> WebcamSource:
    return WebcamSource(fast_config(**overrides), capture_factory=camera.factory, present=camera.present,
                        list_devices=camera.devices)


def wait_for(predicate, timeout: float = 3.0) -> float:
    """Poll predicate until true; return the seconds it took (fails the test on timeout)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)
    return time.monotonic() - start


def camera_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "monalisa.kiosk.webcam"]


def test_webcam_delivers_newest_rgb_frames_with_requested_settings():
    camera = FakeCamera()
    with webcam(camera) as source:
        assert source.wait(2.0)
        frame = source.read_latest()
        assert isinstance(frame, Frame) and source.state == "ok"
        assert frame.image.shape == (24, 32, 3) and frame.image[5, 5, 2] == 200  # BGR blue -> RGB channel 2
        time.sleep(0.1)
        newer = source.read_latest()
        assert newer.index > frame.index + 1  # frames in between were dropped: newest only
        indices = [newer.index]
        for _ in range(200):
            if (latest := source.read_latest()) is not None:
                indices.append(latest.index)
        assert np.all(np.diff(indices) > 0)  # never the same frame twice
        assert frame.t <= newer.t <= time.monotonic()
        settings = camera.captures[0].settings
        assert settings[cv2.CAP_PROP_BUFFERSIZE] == 1
        assert settings[cv2.CAP_PROP_FOURCC] == cv2.VideoWriter_fourcc(*"MJPG")
        assert (settings[cv2.CAP_PROP_FRAME_WIDTH], settings[cv2.CAP_PROP_FRAME_HEIGHT]) == (640, 480)
        assert "webcam 0" in source.describe()
    assert camera.captures[0].released and source.state == "ended"


def test_missing_camera_stays_lost_and_retries_with_exponential_backoff(caplog):
    caplog.set_level(logging.INFO, logger="monalisa.kiosk.webcam")
    camera = FakeCamera()
    camera.plugged = False
    with webcam(camera) as source:
        time.sleep(1.6)
        assert source.state == "lost" and source.read_latest() is None
    gaps = np.diff([t for t, _ in camera.opens])
    assert len(gaps) >= 4
    assert gaps[0] == pytest.approx(0.05, abs=0.05)
    assert gaps[1] == pytest.approx(0.1, abs=0.06)
    assert gaps[2] == pytest.approx(0.2, abs=0.08)
    assert all(gap == pytest.approx(0.4, abs=0.12) for gap in gaps[3:])  # capped at reopen_max_s
    lost = [line for line in camera_lines(caplog) if "lost" in line]
    assert len(lost) == 1 and "device missing" in lost[0]  # one line, not one per retry


def test_unplugged_camera_comes_back_within_a_second_of_replug_and_keeps_counting(caplog):
    caplog.set_level(logging.INFO, logger="monalisa.kiosk.webcam")
    camera = FakeCamera()
    with webcam(camera, reopen_max_s=5.0) as source:
        assert source.wait(2.0)
        before = source.read_latest()
        camera.unplug()
        wait_for(lambda: source.state == "lost", 1.0)
        time.sleep(1.5)  # long enough for the backoff to be waiting much longer than a second
        camera.plugged = True
        recovered_in = wait_for(lambda: source.read_latest() is not None, 2.0)
        assert recovered_in < 0.6  # reopened as soon as the device node came back
        assert source.state == "ok"
        after = source.read_latest() or (source.wait(1.0) and source.read_latest())
        assert after.index > before.index  # numbering continues across reopens
    states = [line.split(": ")[1].split(" ")[0] for line in camera_lines(caplog)]
    assert states == ["ok", "lost", "ok", "ended"]


def test_failing_reads_release_and_reopen():
    camera = FakeCamera()
    with webcam(camera) as source:
        assert source.wait(2.0)
        camera.fail_reads = True
        wait_for(lambda: source.state == "lost", 1.0)
        assert camera.captures[0].released
        camera.fail_reads = False
        wait_for(lambda: source.state == "ok", 2.0)
        assert len(camera.opens) >= 2


def test_frozen_camera_is_reported_reopened_and_its_picture_not_delivered_again(caplog):
    caplog.set_level(logging.INFO, logger="monalisa.kiosk.webcam")
    camera = FakeCamera()
    with webcam(camera) as source:
        assert source.wait(2.0)
        camera.frozen = True
        took = wait_for(lambda: source.state == "frozen", 2.0)
        assert 0.3 < took < 1.0  # frozen_after_s = 0.4
        wait_for(lambda: len(camera.opens) >= 2, 1.0)  # released and reopened
        source.read_latest()
        time.sleep(0.3)
        assert source.read_latest() is None and source.state == "frozen"  # same picture after reopening
        camera.frozen = False
        wait_for(lambda: source.read_latest() is not None, 2.0)
        assert source.state == "ok"
    assert sum("frozen" in line for line in camera_lines(caplog)) == 1


def test_identical_black_frames_of_a_dark_room_are_not_a_frozen_camera(caplog):
    caplog.set_level(logging.INFO, logger="monalisa.kiosk.webcam")
    camera = FakeCamera()
    with webcam(camera) as source:  # frozen_after_s = 0.4
        assert source.wait(2.0)
        camera.dark = True
        delivered = 0
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline:
            if source.wait(0.2) and source.read_latest() is not None:
                delivered += 1
            assert source.state == "ok"
        assert delivered > 20  # the black frames are still delivered
    assert len(camera.opens) == 1  # never released and reopened
    assert not any("frozen" in line for line in camera_lines(caplog))


def test_uniform_and_identical_images_are_told_apart_without_full_comparisons():
    black = np.zeros((48, 64, 3), np.uint8)
    assert is_uniform(black) and is_uniform(black + 5)
    noisy_dark = black.copy()
    noisy_dark[::3, ::5] = 6  # a little sensor noise in the dark is still blank
    assert is_uniform(noisy_dark)
    picture = black.copy()
    picture[:, 32:] = 90
    assert not is_uniform(picture)
    assert same_image(picture, picture.copy())
    changed = picture.copy()
    changed[47, 63, 2] = 1  # one byte of one pixel differs
    assert not same_image(picture, changed)
    assert not same_image(picture, picture[:, :, 0]) and not same_image(picture, np.zeros((48, 32, 3), np.uint8))


def test_a_read_finishing_after_close_cannot_overwrite_ended():
    camera = FakeCamera()
    source = webcam(camera)
    with source._changed:  # hold the lock so the late "lost" waits on it, as after a blocked driver read
        late = threading.Thread(target=source._set_worker_state, args=("lost", "read failed"))
        late.start()
        time.sleep(0.05)
        source.close()
    late.join(1.0)
    assert not late.is_alive()
    assert source.state == "ended"


def test_stalled_camera_reads_as_stalled_then_recovers():
    camera = FakeCamera()
    with webcam(camera) as source:
        assert source.wait(2.0)
        camera.stall_s = 0.8  # the driver blocks, then the read fails (OpenCV's select timeout)
        wait_for(lambda: source.state == "stalled", 1.0)
        camera.stall_s = 0.0
        wait_for(lambda: source.state == "ok", 3.0)


def test_index_camera_returning_under_another_index_is_found():
    camera = FakeCamera(index=0)
    with webcam(camera) as source:
        assert source.wait(2.0)
        camera.unplug()
        wait_for(lambda: source.state == "lost", 1.0)
        camera.index, camera.plugged = 2, True
        wait_for(lambda: source.state == "ok", 2.0)
        assert camera.opens[-1][1] == 2 and "/dev/video2" in source.describe()


def test_other_indices_are_not_tried_when_disabled():
    camera = FakeCamera(index=2)
    with webcam(camera, try_other_indices=False) as source:
        time.sleep(0.3)
        assert source.state == "lost"
    assert {target for _, target in camera.opens} == {0}


def test_camera_errors_and_crashes_in_the_thread_are_logged_and_survived(caplog):
    caplog.set_level(logging.INFO, logger="monalisa.kiosk.webcam")
    camera = FakeCamera()
    camera.raise_on_open = cv2.error("simulated driver error")
    with webcam(camera) as source:
        wait_for(lambda: source.state == "ok", 2.0)
    camera = FakeCamera()
    camera.raise_on_open = RuntimeError("a bug")
    with webcam(camera) as source:
        wait_for(lambda: source.state == "ok", 2.0)
    assert any("capture thread failed" in line for line in camera_lines(caplog))
    assert any("simulated driver error" in line for line in camera_lines(caplog))


def test_camera_targets_and_by_id_links_resolve(tmp_path):
    assert parse_camera_target("2") == 2
    assert parse_camera_target("/dev/v4l/by-id/usb-cam-video-index0") == "/dev/v4l/by-id/usb-cam-video-index0"
    assert parse_camera_target("walk.avi") is None
    real = tmp_path / "video7"
    real.touch()
    link = tmp_path / "by-id"
    link.symlink_to(real)
    assert device_node(str(link)) == str(real)  # resolved again at every reopen
    assert device_node(3) == "/dev/video3"


def test_bad_fourcc_is_a_config_error():
    with pytest.raises(ConfigError, match="fourcc"):
        WebcamSource(CameraConfig(fourcc="MJPEG"))


def test_list_cameras_lists_video_devices():
    cameras = list_cameras()
    assert isinstance(cameras, list) and all(isinstance(c, CameraInfo) for c in cameras)
    if not Path("/dev/video0").exists():
        assert cameras == []


def test_close_while_the_driver_blocks_leaves_the_source_ended():
    camera = FakeCamera()
    source = webcam(camera, read_timeout_s=0.1)
    source.start()
    assert source.wait(2.0)
    camera.stall_s = 0.5
    time.sleep(0.05)
    source.close()  # the read is still blocked; close gives up waiting after read_timeout_s + 1 s at most
    time.sleep(0.6)
    source.read_latest()
    assert source.state == "ended"
    assert all(capture.released for capture in camera.captures)


def test_a_camera_slow_to_deliver_its_first_frame_is_given_time():
    camera = FakeCamera()
    camera.fail_reads = True
    with webcam(camera) as source:
        time.sleep(0.5)
        camera.fail_reads = False  # first frame after 0.5 s: within the warm-up, no reopen
        wait_for(lambda: source.state == "ok", 2.0)
    assert len(camera.opens) == 1
