"""ViewerTracker: who the portrait follows, how steadily, and when it gives up."""

import numpy as np
import pytest

from monalisa.config import ViewerConfig
from monalisa.kiosk.detector import Face
from monalisa.kiosk.viewer import OneEuroFilter, ViewerTracker

FPS = 30.0


def face(x: float, y: float = 0.5, size: float = 0.2) -> Face:
    """A face whose eye midpoint is at (x, y) with a square box ``size`` wide (bigger = closer)."""
    half_eyes = size * 0.2
    return Face(box=(x - size / 2, y - size / 2, size, size), score=0.9,
                left_eye=(x - half_eyes, y), right_eye=(x + half_eyes, y), frame_size=(640, 480))


def run(tracker, frames, start=0.0):
    """Feed a list of per-frame face lists at 30 fps; return the states (copied)."""
    out = []
    for i, faces in enumerate(frames):
        s = tracker.update(faces, start + i / FPS)
        out.append((s.face, s.position, s.idle))
    return out


def test_one_euro_smooths_jitter_and_follows_motion():
    rng = np.random.default_rng(0)
    filt = OneEuroFilter(min_cutoff=1.0, beta=10.0, d_cutoff=1.0)
    still = [filt((0.5 + rng.normal(0, 0.005), 0.5), i / FPS)[0] for i in range(90)]
    assert np.std(still[30:]) < 0.5 * 0.005  # jitter mostly gone
    filt.reset()
    moving = [filt((0.2 + 0.5 * i / FPS, 0.5), i / FPS)[0] for i in range(60)]
    truth = 0.2 + 0.5 * 59 / FPS
    assert abs(moving[-1] - truth) < 0.02  # lag under 40 ms at half a frame width per second


def test_one_euro_first_sample_passes_through_and_same_time_is_stable():
    filt = OneEuroFilter(1.0, 0.0, 1.0)
    assert filt((0.3, 0.7), 1.0) == (0.3, 0.7)
    assert filt((0.9, 0.9), 1.0) == (0.3, 0.7)


def test_follows_the_closest_face():
    tracker = ViewerTracker(ViewerConfig())
    near, far = face(0.7, size=0.3), face(0.3, size=0.1)
    state = tracker.update([far, near], 0.0)
    assert state.face is near
    assert state.position == pytest.approx(near.eye_mid)
    assert not state.idle
    assert state.eye_distance == pytest.approx(near.eye_distance_px(640, 480))


def test_stays_with_viewer_while_a_slightly_larger_face_is_present():
    tracker = ViewerTracker(ViewerConfig(switch_ratio=1.7, switch_after_s=0.5))
    first = [face(0.3, size=0.2)]
    run(tracker, [first])
    both = [[face(0.3, size=0.2), face(0.7, size=0.24)]] * 60  # 1.44x the area: not clearly closer
    states = run(tracker, both, start=1 / FPS)
    assert all(f.eye_mid[0] == pytest.approx(0.3) for f, *_ in states)


def test_switches_only_after_a_clearly_closer_face_persists():
    cfg = ViewerConfig(switch_ratio=1.7, switch_after_s=0.5)
    tracker = ViewerTracker(cfg)
    run(tracker, [[face(0.3)]] * 5)
    both = [[face(0.3), face(0.7, size=0.4)]] * 30  # 4x the area for one second
    states = run(tracker, both, start=5 / FPS)
    chosen_x = [f.eye_mid[0] for f, *_ in states]
    switch_at = next(i for i, x in enumerate(chosen_x) if x == pytest.approx(0.7))
    assert 0.5 <= switch_at / FPS <= 0.5 + 2 / FPS
    assert all(x == pytest.approx(0.7) for x in chosen_x[switch_at:])
    # the filter was reset: the new position is the new face, not a blend with the old one
    assert states[switch_at][1][0] == pytest.approx(0.7)


def test_brief_larger_face_does_not_take_over():
    tracker = ViewerTracker(ViewerConfig(switch_after_s=0.5))
    run(tracker, [[face(0.3)]] * 5)
    flicker = ([[face(0.3), face(0.7, size=0.4)]] * 10 + [[face(0.3)]] * 2) * 3
    states = run(tracker, flicker, start=5 / FPS)
    assert all(f.eye_mid[0] == pytest.approx(0.3) for f, *_ in states)


def test_matches_the_viewer_by_position_not_by_list_order():
    tracker = ViewerTracker(ViewerConfig(match_distance=0.15))
    frames = []
    for i in range(30):  # two equal faces walking; detector order flips every frame
        a, b = face(0.2 + 0.005 * i), face(0.8 - 0.005 * i)
        frames.append([a, b] if i % 2 else [b, a])
    states = run(tracker, frames)
    first = states[0][0].eye_mid[0]
    xs = [f.eye_mid[0] for f, *_ in states]
    side = -1 if first < 0.5 else 1
    assert all((x - 0.5) * side > 0 for x in xs)


def test_holds_position_through_dropout_then_idles():
    cfg = ViewerConfig(hold_s=0.5, idle_after_s=2.0)
    tracker = ViewerTracker(cfg)
    run(tracker, [[face(0.4)]] * 10)
    last_t = 9 / FPS
    held = tracker.update([], last_t + 0.3)
    assert held.position is not None and held.face is None and not held.idle
    gone = tracker.update([], last_t + 0.8)
    assert gone.position is None and not gone.idle
    assert not tracker.update([], last_t + 1.9).idle
    assert tracker.update([], last_t + 2.01).idle
    back = tracker.update([face(0.6)], last_t + 6.0)
    assert not back.idle and back.position == pytest.approx(face(0.6).eye_mid)


def test_same_viewer_returning_within_hold_keeps_the_filter():
    tracker = ViewerTracker(ViewerConfig(hold_s=0.5, min_cutoff=0.5, beta=0.0))
    run(tracker, [[face(0.4)]] * 10)
    state = tracker.update([face(0.45)], 10 / FPS + 0.2)
    assert 0.4 < state.position[0] < 0.45  # filtered, not reset to the raw point


def test_nobody_ever_is_idle_from_the_start():
    state = ViewerTracker(ViewerConfig()).update([], 0.0)
    assert state.idle and state.position is None


def test_when_the_viewer_leaves_the_next_closest_takes_over_after_hold():
    cfg = ViewerConfig(hold_s=0.5, switch_after_s=10.0)
    tracker = ViewerTracker(cfg)
    viewer, other = face(0.3, size=0.3), face(0.8, size=0.1)
    run(tracker, [[viewer, other]] * 10)
    states = run(tracker, [[other]] * 30, start=10 / FPS)
    chosen = [f for f, *_ in states]
    takeover = next(i for i, f in enumerate(chosen) if f is not None)
    assert all(f is None for f in chosen[:takeover])
    assert (takeover + 1) / FPS > 0.5 and takeover / FPS <= 0.5 + 2 / FPS
    assert states[takeover][1][0] == pytest.approx(0.8)  # fresh filter: no blend with the old viewer
