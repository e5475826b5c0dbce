"""Gaze mappings (linear and geometric) and the cell selector's hysteresis and idle easing."""

import math

import numpy as np
import pytest

from monalisa.config import GazeConfig
from monalisa.kiosk.gaze import CellSelector, GeometricMapping, LinearMapping, fractional_index, make_mapping

YAWS = [float(v) for v in np.linspace(-30, 30, 33)]
PITCHES = [15.0, 0.0, -15.0]
SIZE = (640, 480)
F_PX = 320 / math.tan(math.radians(30))  # focal length for a 60 degree lens, 640 px wide


def eye_px_at(distance_mm: float, eye_mm: float = 63.0) -> float:
    """Pixel distance between the eyes of a viewer ``distance_mm`` from the camera."""
    return F_PX * eye_mm / distance_mm


# ----------------------------------------------------------------------------- linear

def test_linear_mirrored_x_picks_the_column():
    m = LinearMapping(rows=1, cols=33, mirror=True)
    # a viewer on the camera image's right stands at the screen's left -> column 0
    assert round(m.target((0.99, 0.5))[1]) == 0
    assert round(m.target((0.01, 0.5))[1]) == 32
    assert m.target((0.5, 0.5))[1] == pytest.approx(16.0)
    m.mirror = False
    assert round(m.target((0.99, 0.5))[1]) == 32


def test_linear_y_picks_the_row_top_first():
    m = LinearMapping(rows=3, cols=33)
    assert round(m.target((0.5, 0.05))[0]) == 0
    assert round(m.target((0.5, 0.5))[0]) == 1
    assert round(m.target((0.5, 0.95))[0]) == 2
    assert LinearMapping(rows=1, cols=33).target((0.5, 0.9))[0] == pytest.approx(0.4)


# ----------------------------------------------------------------------------- geometric

def centred_config(**kw) -> GazeConfig:
    """A camera exactly at the portrait's eyes (no offset), unless overridden."""
    return GazeConfig(**{"camera_x_mm": 0.0, "camera_y_mm": 0.0, "camera_z_mm": 0.0, **kw})


def test_geometric_straight_ahead_is_yaw_zero():
    m = GeometricMapping(centred_config(), YAWS, PITCHES)
    yaw, pitch = m.direction((0.5, 0.5), eye_px_at(600), SIZE)
    assert yaw == pytest.approx(0.0, abs=1e-9) and pitch == pytest.approx(0.0, abs=1e-9)
    assert m.target((0.5, 0.5), eye_px_at(600), SIZE) == pytest.approx((1.0, 16.0))


def test_geometric_viewer_on_screen_left_looks_left():
    m = GeometricMapping(centred_config(), YAWS, PITCHES)
    # screen's left = camera image's right (mirror on)
    yaw, _ = m.direction((0.8, 0.5), eye_px_at(600), SIZE)
    assert yaw < 0
    assert m.target((0.8, 0.5), eye_px_at(600), SIZE)[1] < 16


def test_geometric_back_projection_matches_the_geometry():
    m = GeometricMapping(centred_config(), YAWS, PITCHES)
    # a viewer 1000 mm away and 300 mm to the screen's left, 100 mm above
    u = 0.5 + 300 / 1000 * F_PX / 640      # appears right of centre in the camera image
    v = 0.5 - 100 / 1000 * F_PX / 480
    yaw, pitch = m.direction((u, v), eye_px_at(1000), SIZE)
    assert yaw == pytest.approx(-math.degrees(math.atan2(300, 1000)), abs=0.01)
    assert pitch == pytest.approx(math.degrees(math.atan2(100, 1000)), abs=0.01)


def test_geometric_farther_viewer_same_offset_smaller_angle():
    m = GeometricMapping(centred_config(camera_y_mm=90.0), YAWS, PITCHES)
    near_yaw, near_pitch = m.direction((0.5, 0.5), eye_px_at(500), SIZE)
    far_yaw, far_pitch = m.direction((0.5, 0.5), eye_px_at(2000), SIZE)
    assert near_pitch > far_pitch > 0  # the camera (and the viewer's eyes) sit above the portrait's eyes
    # an offset fixed in mm: the same sideways distance subtends less from farther away
    u_near = 0.5 + 200 / 500 * F_PX / 640
    u_far = 0.5 + 200 / 2000 * F_PX / 640
    assert (abs(m.direction((u_far, 0.5), eye_px_at(2000), SIZE)[0])
            < abs(m.direction((u_near, 0.5), eye_px_at(500), SIZE)[0]))


def test_gain_scales_the_aim_and_the_cell_follows_the_true_degrees():
    position, eye = (0.8, 0.5), eye_px_at(600)
    full = GeometricMapping(centred_config(gain=1.0), YAWS, PITCHES)
    quarter = GeometricMapping(centred_config(gain=0.25), YAWS, PITCHES)
    still = GeometricMapping(centred_config(gain=0.0), YAWS, PITCHES)
    t_yaw, t_pitch = full.direction(position, eye, SIZE)
    assert quarter.direction(position, eye, SIZE) == (t_yaw, t_pitch)      # the viewer's direction is geometry
    assert quarter.aim(position, eye, SIZE) == pytest.approx((0.25 * t_yaw, 0.25 * t_pitch))
    assert quarter.target(position, eye, SIZE)[1] == pytest.approx(fractional_index(0.25 * t_yaw, YAWS))
    assert still.target(position, eye, SIZE)[1] == pytest.approx(16.0)     # straight out: yaw 0 is column 16


def test_the_default_gain_keeps_perceived_eye_contact_and_visible_following():
    """atan(tan a + tan t) - t (docs/research.md): the miss a viewer at t perceives for the aim a = gain t."""
    gain = GazeConfig().gain
    for t, most in ((10, 3.0), (20, 4.5), (30, 5.5)):
        a = gain * t
        seen = math.degrees(math.atan(math.tan(math.radians(a)) + math.tan(math.radians(t))))
        assert 0 < seen - t <= most
    assert 2 * gain * 30 >= 12  # the eyes still swing visibly as a viewer walks from -30 to +30 degrees


def test_geometric_camera_offset_shifts_the_direction():
    # camera 200 mm right of the portrait's eyes: a viewer straight in front of the camera is to the right
    m = GeometricMapping(centred_config(camera_x_mm=200.0), YAWS, PITCHES)
    yaw, _ = m.direction((0.5, 0.5), eye_px_at(600), SIZE)
    assert yaw == pytest.approx(math.degrees(math.atan2(200, 600)), abs=0.01)


def test_geometric_defaults_suit_a_laptop_webcam():
    m = GeometricMapping(GazeConfig(), YAWS, PITCHES)
    yaw, pitch = m.direction((0.5, 0.5), eye_px_at(600), SIZE)
    assert abs(yaw) < 1.0          # straight ahead
    assert 0.0 < pitch < 12.0      # slightly up: the webcam (and the viewer's eyes) are above the portrait's eyes


def test_geometric_without_eye_distance_assumes_a_default_distance():
    m = GeometricMapping(centred_config(), YAWS, PITCHES)
    assert m.direction((0.7, 0.5), None, SIZE) == m.direction((0.7, 0.5), eye_px_at(600), SIZE)


def test_geometric_mirror_off_flips_x():
    cfg = centred_config(mirror=False)
    yaw, _ = GeometricMapping(cfg, YAWS, PITCHES).direction((0.8, 0.5), eye_px_at(600), SIZE)
    assert yaw > 0


def test_fractional_index_rounds_to_nearest_and_extrapolates():
    grid = [-10.0, 0.0, 20.0]
    assert fractional_index(0.0, grid) == 0.0 + 1.0
    assert round(fractional_index(9.0, grid)) == 1 and round(fractional_index(11.0, grid)) == 2
    assert fractional_index(40.0, grid) == pytest.approx(3.0)
    assert fractional_index(-20.0, grid) == pytest.approx(-1.0)
    assert fractional_index(5.0, [7.0]) == 0.0


def test_make_mapping_follows_config():
    assert make_mapping(GazeConfig(mapping="linear"), YAWS, PITCHES).name == "linear"
    assert make_mapping(GazeConfig(), YAWS, PITCHES).name == "geometric"


# ----------------------------------------------------------------------------- selector

def test_jitter_at_a_boundary_never_flickers():
    rng = np.random.default_rng(1)
    sel = CellSelector(1, 33, (0, 16), hysteresis=0.35)
    sel.update((0.0, 20.0))
    # the target hovers on the 20|21 boundary, never further than the hysteresis from it
    shown = {sel.update((0.0, 20.5 + rng.uniform(-0.34, 0.34)))[1] for _ in range(1000)}
    assert shown == {20}


def test_steady_motion_is_followed_within_one_column():
    sel = CellSelector(1, 33, (0, 16), hysteresis=0.35)
    changes, last = 0, sel.cell
    for c in np.linspace(-0.5, 32.5, 400):
        cell = sel.update((0.0, float(c)))
        ideal = min(max(math.floor(c + 0.5), 0), 32)
        assert abs(cell[1] - ideal) <= 1
        changes += cell != last
        last = cell
    assert cell[1] == 32 and changes <= 33  # reached the edge, no back-and-forth


def test_large_jump_goes_straight_to_the_target():
    sel = CellSelector(3, 33, (1, 16), hysteresis=0.35)
    assert sel.update((0.0, 3.0)) == (0, 3)


def test_no_target_keeps_the_cell():
    sel = CellSelector(1, 33, (0, 16), hysteresis=0.35)
    sel.update((0.0, 5.0))
    assert sel.update(None) == (0, 5)


def test_idle_wants_the_neutral_cell_at_once():
    sel = CellSelector(3, 33, (1, 16), hysteresis=0.35)
    assert sel.update((0.0, 2.0)) == (0, 2)
    assert sel.update(None, idle=True) == (1, 16)   # the jump itself is life's (a saccade), not a slide
    assert sel.update((0.0, 2.0)) == (0, 2)
