"""The kiosk loop with fake parts (camera, detector, window), then once end to end with real ones."""

import json
import math
import random

import numpy as np
import pytest

from monalisa.config import Config
from monalisa.kiosk.camera import Frame
from monalisa.kiosk.detector import Face
from monalisa.kiosk.loop import Kiosk, KioskOptions, TraceWriter, build_parts, run_kiosk
from monalisa.testing.pools import grid_pool

FRAME_S = 1 / 30
COLS = 33


# ----------------------------------------------------------------------------- fakes

def face_at(x, y=0.45, size=0.2):
    """A detected face with its eye midpoint at (x, y), camera coordinates."""
    half = size * 0.2
    return Face(box=(x - size / 2, y - size / 2, size, size), score=0.9,
                left_eye=(x - half, y), right_eye=(x + half, y), frame_size=(640, 480))


def column_for(x, cols=COLS):
    """The linear mapping's ideal column for camera x with mirror on."""
    return min(max(math.floor((1 - x) * cols), 0), cols - 1)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class FakeSource:
    """Plays a script, one entry per read: (state, faces) with faces None meaning no frame."""

    def __init__(self, clock, script):
        self.clock = clock
        self.script = list(script)
        self.pos = -1
        self.index = 0
        self.faces = []
        self.image = np.zeros((480, 640, 3), np.uint8)
        self.waits = 0

    @property
    def state(self):
        if self.pos >= len(self.script):
            return "ended"
        return self.script[max(self.pos, 0)][0]

    def read_latest(self):
        self.pos += 1
        if self.pos >= len(self.script):
            return None
        state, faces = self.script[self.pos]
        if faces is None:
            return None
        self.faces = faces
        self.clock.now += FRAME_S
        frame = Frame(self.image, self.index, self.clock.now)
        self.index += 1
        return frame

    def wait(self, timeout):
        self.waits += 1
        self.clock.now += timeout
        return False


class FakeDetector:
    def __init__(self, source):
        self.source = source
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        return list(self.source.faces)


class FakeRenderer:
    """Records what the loop asks the window to do."""

    def __init__(self, clock, actions=()):
        self.clock = clock
        self.shown = []
        self.blinks = []
        self.statuses = []
        self.debug_infos = []
        self.debug = False
        self.polls = 0
        self.actions = list(actions)

    def show(self, cell, blink=None):
        self.shown.append(cell)
        self.blinks.append(blink)
        self.clock.now += 0.002

    def poll(self):
        self.polls += 1
        return [self.actions.pop(0)] if self.actions else []

    def set_status(self, text):
        self.statuses.append(text)

    def set_debug(self, info):
        self.debug_infos.append(info)


def kiosk_for(script, pool, config=None, actions=(), **kw):
    config = config or Config()
    config.gaze.mapping = "linear"
    clock = FakeClock()
    source = FakeSource(clock, script)
    renderer = FakeRenderer(clock, actions)
    tracker, mapping, selector, life = build_parts(config, pool)
    kiosk = Kiosk(source, FakeDetector(source), tracker, mapping, selector, renderer, life=life,
                  clock=clock, wait_s=1 / 60, **kw)
    return kiosk, source, renderer


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return grid_pool(tmp_path_factory.mktemp("pool") / "pool", cols=COLS)


# ----------------------------------------------------------------------------- loop with fakes

def test_walking_face_is_followed_and_traced(pool, tmp_path):
    xs = np.linspace(0.1, 0.9, 120)
    script = [("ok", [face_at(x)]) for x in xs]
    trace = TraceWriter(tmp_path / "trace.jsonl")
    kiosk, source, renderer = kiosk_for(script, pool, observers=[trace])
    assert kiosk.run() == 0
    trace.close()
    assert kiosk.frames == 120
    lines = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert len(lines) == 120
    for i, (line, x) in enumerate(zip(lines, xs)):
        assert set(line) == {"frame", "t", "faces", "eye", "cell", "blink", "act", "latency_ms"}
        assert line["frame"] == i and isinstance(line["frame"], int)
        assert line["faces"] == 1
        assert line["eye"][0] == pytest.approx(1 - x, abs=1e-4)  # mirrored
        assert line["eye"][1] == pytest.approx(0.45, abs=1e-4)
        assert isinstance(line["cell"], list) and len(line["cell"]) == 2
        assert line["latency_ms"] == pytest.approx(2.0, abs=0.01)
        assert isinstance(line["t"], float)
    assert lines[0]["t"] == 0.0 and lines[-1]["t"] == pytest.approx(119 * (FRAME_S + 0.002), abs=1e-4)
    # the portrait's gaze sweeps from the screen's right (camera left) to its left, closely
    cols = [line["cell"][1] for line in lines]
    assert cols[0] > 20 and cols[1] > 25 and cols[-1] < 7   # the first look is a saccade: one in-between frame
    assert all(abs(c - column_for(x)) <= 1 for c, x in zip(cols[20:], xs[20:]))
    assert renderer.shown[0] == pool.neutral_cell()  # the portrait is up before the first frame


def test_fast_walker_with_detector_noise_is_followed_within_one_column(pool):
    rng = np.random.default_rng(3)
    xs = 0.05 + 0.5 * np.arange(50) * FRAME_S   # half the camera's width per second
    script = [("ok", [face_at(x + rng.normal(0, 0.002))]) for x in xs]
    kiosk, _, renderer = kiosk_for(script, pool)
    kiosk.run()
    cols = [cell[1] for cell in renderer.shown[1:]]
    assert all(abs(c - column_for(x)) <= 1 for c, x in zip(cols[5:], xs[5:]))


def test_still_jittery_face_never_flickers(pool):
    rng = np.random.default_rng(0)
    # a face standing right on a column boundary with detector jitter
    boundary = 1 - 20 / COLS
    script = [("ok", [face_at(boundary + rng.normal(0, 0.002))]) for _ in range(300)]
    kiosk, _, renderer = kiosk_for(script, pool)
    kiosk.run()
    cells = renderer.shown[1:]
    assert len(set(cells[30:])) == 1


def test_camera_lost_from_the_start_shows_neutral_and_keeps_running(pool):
    config = Config()
    config.life.glances = False
    script = [("lost", None)] * 400
    kiosk, source, renderer = kiosk_for(script, pool, config)
    kiosk.run(max_seconds=5.0)
    assert not kiosk.stopped  # stopped by the time limit, not by giving up
    assert kiosk.frames == 0
    assert set(renderer.shown) == {pool.neutral_cell()}
    assert renderer.statuses == ["camera unavailable \u2014 retrying"]
    assert renderer.polls >= 5.0 * 30  # events pumped at >= 30 Hz without any frames


def test_camera_lost_mid_run_eases_to_neutral_then_tracking_resumes(pool):
    config = Config()
    config.viewer.idle_after_s = 1.0
    config.life.glances = False
    left = [("ok", [face_at(0.95)])] * 30          # screen's left -> low columns
    lost = [("lost", None)] * 200                   # ~3.3 s of nothing at 60 Hz waits
    right = [("ok", [face_at(0.05)])] * 30
    kiosk, source, renderer = kiosk_for(left + lost + right, pool, config)
    kiosk.run()
    neutral = pool.neutral_cell()
    shown = renderer.shown
    assert shown[30][1] <= 1  # following the viewer on the left
    assert renderer.statuses == ["camera unavailable \u2014 retrying", None]
    # while lost: back to neutral after idle_after_s, in one saccade (one in-between frame)
    assert shown.index(neutral, 30) == 32 and shown[30][1] < shown[31][1] < neutral[1]   # drawn on change only
    # tracking resumed on the right
    assert shown[-1][1] >= COLS - 2
    assert kiosk.frames == 60


def test_frozen_camera_frames_do_not_count_as_viewers(pool):
    script = [("ok", [face_at(0.95)])] * 10 + [("frozen", [face_at(0.95)])] * 300
    config = Config()
    config.viewer.idle_after_s = 1.0
    config.life.glances = False
    kiosk, _, renderer = kiosk_for(script, pool, config)
    kiosk.run()
    assert renderer.shown[-1] == pool.neutral_cell()
    assert "camera image frozen \u2014 reconnecting" in renderer.statuses


def test_quit_and_mirror_keys(pool):
    script = [("ok", [face_at(0.9)])] * 100
    kiosk, source, renderer = kiosk_for(script, pool, actions=["mirror"])
    kiosk.step()
    assert kiosk.mapping.mirror is False
    renderer.actions = ["quit"]
    kiosk.run()
    assert kiosk.frames < 5


def test_max_frames_and_end_of_video(pool):
    kiosk, _, _ = kiosk_for([("ok", [])] * 50, pool)
    kiosk.run(max_frames=20)
    assert kiosk.frames == 20
    kiosk, _, _ = kiosk_for([("ok", [])] * 50, pool)
    kiosk.run()
    assert kiosk.frames == 50 and kiosk.stopped


def test_debug_info_only_while_the_overlay_is_on(pool):
    from monalisa.kiosk.overlay import DebugInfo

    kiosk, _, renderer = kiosk_for([("ok", [face_at(0.3)])] * 10, pool)
    for _ in range(3):
        kiosk.step()
    assert renderer.debug_infos == []
    renderer.debug = True
    kiosk.step()
    info = renderer.debug_infos[-1]
    assert isinstance(info, DebugInfo)
    assert info.viewer is not None and len(info.faces) == 1 and info.mapping == "linear"
    assert set(info.stage_ms) >= {"capture", "detect", "select", "render"}
    assert info.fps == pytest.approx(1 / (FRAME_S + 0.002))  # from the frames' times (fake show takes 2 ms)


def test_health_and_notifier_are_fed(pool):
    class Recorder:
        def __init__(self):
            self.calls = []

        def __getattr__(self, name):
            return lambda *a: self.calls.append((name, a))

    health, notifier = Recorder(), Recorder()
    kiosk, _, _ = kiosk_for([("ok", [])] * 5, pool, health=health, notifier=notifier)
    kiosk.run()
    names = [c[0] for c in notifier.calls]
    assert names[0] == "ready" and "watchdog" in names
    assert sum(1 for c in health.calls if c[0] == "frame") == 5


# ----------------------------------------------------------------------------- end to end

def test_run_kiosk_on_a_synthetic_video_with_real_blazeface(tmp_path, pool):
    from monalisa.testing.synthetic import walking_video

    video = tmp_path / "walk.avi"
    truth = walking_video(video, seconds=2.0, path_kind="walk")
    config = Config()
    config.camera.source = str(video)
    config.camera.pace = False
    config.gaze.mapping = "linear"
    config.render.debug = True  # exercise the overlay path too
    trace = tmp_path / "trace.jsonl"
    code = run_kiosk(config, KioskOptions(pool=pool, headless=True, trace=trace))
    assert code == 0
    lines = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(len(truth.frames)))
    assert sum(line["faces"] == 1 for line in lines) >= 0.9 * len(lines)
    # the shown column follows the true eye position
    ideal = [column_for(faces[0].eye_mid[0]) for faces in truth.frames]
    cols = [line["cell"][1] for line in lines]
    close = sum(abs(c - i) <= 1 for c, i in zip(cols[10:], ideal[10:]))
    assert close >= 0.9 * (len(cols) - 10)
    assert cols[-1] < cols[0] - 10  # walked across: the gaze swept with them


def test_run_kiosk_without_a_webcam_keeps_running(pool, caplog):
    import time

    config = Config()
    config.camera.source = "/dev/video-monalisa-test-absent"
    started = time.monotonic()
    with caplog.at_level("INFO"):
        code = run_kiosk(config, KioskOptions(pool=pool, headless=True, max_seconds=1.0))
    assert code == 0
    assert 1.0 <= time.monotonic() - started < 10.0
    assert any("lost" in r.getMessage() for r in caplog.records if r.name == "monalisa.kiosk.webcam")


def test_open_kiosk_closes_the_source_when_a_later_part_fails(pool, monkeypatch):
    from monalisa.errors import MonalisaError
    from monalisa.kiosk import detector as detector_module
    from monalisa.kiosk.loop import open_kiosk
    from monalisa.testing.faults import SequenceSource

    def broken_detector(config):
        raise MonalisaError("face detector: cannot load")

    monkeypatch.setattr(detector_module, "BlazeFaceDetector", broken_detector)
    source = SequenceSource([np.zeros((4, 4, 3), np.uint8)])
    source.start()
    with pytest.raises(MonalisaError, match="cannot load"), open_kiosk(Config(), pool, source, headless=True):
        pass
    assert source.state == "ended"  # closed, not leaked


def test_sigterm_stops_the_loop_cleanly(pool):
    import os
    import signal

    from monalisa.kiosk.loop import StopOnSigterm

    kiosk, _, _ = kiosk_for([("ok", [])] * 10, pool)
    before = signal.getsignal(signal.SIGTERM)
    with StopOnSigterm(kiosk):
        os.kill(os.getpid(), signal.SIGTERM)
        kiosk.run()
    assert kiosk.stopped and kiosk.frames <= 1
    assert signal.getsignal(signal.SIGTERM) == before


# ----------------------------------------------------------------------------- life and the frames' own clock

class MediaTimeSource(FakeSource):
    """A video replayed as fast as it goes: frames carry media time 1/30 s apart while the clock barely moves."""

    def read_latest(self):
        frame = super().read_latest()
        if frame is None:
            return None
        self.clock.now -= FRAME_S - 0.0001
        return Frame(frame.image, frame.index, 5000.0 + frame.index * FRAME_S, grabbed=self.clock.now)


def test_timers_run_on_the_frames_time_and_the_trace_records_blinks_and_glances(pool, tmp_path):
    from monalisa.kiosk.life import Life
    from monalisa.testing.pools import BlinkingPool

    blinking = BlinkingPool(pool)
    config = Config()
    config.gaze.mapping = "linear"
    config.viewer.idle_after_s = 2.0
    script = [("ok", [face_at(0.9)])] * 60 + [("ok", [])] * 1800      # 2 s watched, then a minute alone
    clock = FakeClock()
    source = MediaTimeSource(clock, script)
    renderer = FakeRenderer(clock)
    tracker, mapping, selector, _ = build_parts(config, blinking)
    life = Life(config.life, pool.manifest.yaws, pool.manifest.pitches, pool.neutral_cell(), blinking.blink_stages,
                rng=random.Random(3))
    trace = TraceWriter(tmp_path / "trace.jsonl")
    kiosk = Kiosk(source, FakeDetector(source), tracker, mapping, selector, renderer, life=life, clock=clock,
                  observers=[trace])
    kiosk.run()
    trace.close()
    assert clock.now - 1000.0 < 5.0            # the whole replay took little clock time ...
    lines = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert lines[-1]["t"] == pytest.approx(1859 * FRAME_S)   # ... but the trace runs on the video's time
    neutral = list(pool.neutral_cell())
    first_rest = next(i for i, line in enumerate(lines) if line["cell"] == neutral and i > 60)
    assert 60 + 2.0 * 30 <= first_rest <= 60 + 2.0 * 30 + 3    # idle after idle_after_s of media time
    blinks = [line for line in lines if line["blink"] is not None]
    assert blinks and {line["blink"] for line in blinks} <= set(blinking.blink_stages)
    glances = [line for line in lines if line["act"] == "glance"]
    assert glances and all(line["cell"] != neutral for line in glances)
    assert all(renderer.blinks[i + 1] is None or renderer.shown[i + 1] == renderer.shown[i]
               or renderer.blinks[i] is None for i in range(len(renderer.shown) - 1))   # no cell change mid-blink
