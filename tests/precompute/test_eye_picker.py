"""The eye picker: a state machine driven by scripted pygame events (dummy video driver), and `monalisa eyes`."""

import cv2
import numpy as np
import pygame as pg
import pytest

from monalisa.cli import main
from monalisa.pool.format import load_pool
from monalisa.testing.drawn_faces import drawn_face
from precompute.eye_picker import EyePicker, PickedFace, PickerCancelled, run_picker


@pytest.fixture(scope="module", autouse=True)
def display():
    pg.display.init()
    yield
    pg.display.quit()


@pytest.fixture(scope="module")
def face():
    return drawn_face("round")


def click(pos, button=1):
    return [pg.event.Event(pg.MOUSEBUTTONDOWN, pos=pos, button=button),
            pg.event.Event(pg.MOUSEBUTTONUP, pos=pos, button=button)]


def key(code, text=""):
    return pg.event.Event(pg.KEYDOWN, key=code, unicode=text, mod=0)


def feed(picker, events):
    for event in events:
        picker.handle(event)


def screen(picker, point):
    return tuple(round(v) for v in picker.to_screen(point))


def test_two_clicks_make_a_face_fitted_as_precompute_would(face):
    picker = EyePicker(face.image, (840, 920))
    (lx, ly), (rx, ry) = face.eyes[0].center, face.eyes[1].center
    feed(picker, click(screen(picker, (rx + 2, ry))) + click(screen(picker, (lx - 2, ly + 1))))
    assert len(picker.faces) == 1 and picker.complete()
    fitted = picker.fit(0)
    assert fitted.detail == "fitted to the image"
    assert abs(fitted.left_eye.center[0] - lx) < 1 and abs(fitted.right_eye.center[0] - rx) < 1
    [argument] = picker.eyes_arguments()
    values = [float(v) for v in argument.split(",")]
    assert len(values) == 4 and values[0] < values[2]  # the image-left eye first
    assert values == pytest.approx([lx - 2, ly + 1, rx + 2, ry], abs=0.6)
    assert "eyes found" in picker.status()


def test_drag_moves_a_point_and_keys_and_wheel_set_the_radius(face):
    picker = EyePicker(face.image, (840, 920), [PickedFace([face.eyes[0].center, face.eyes[1].center])])
    start = screen(picker, face.eyes[0].center)
    feed(picker, [pg.event.Event(pg.MOUSEBUTTONDOWN, pos=start, button=1),
                  pg.event.Event(pg.MOUSEMOTION, pos=(start[0] + 10, start[1] + 4), rel=(10, 4), buttons=(1, 0, 0)),
                  pg.event.Event(pg.MOUSEBUTTONUP, pos=(start[0] + 10, start[1] + 4), button=1)])
    assert len(picker.faces) == 1 and len(picker.faces[0].points) == 2  # dragged, not a new point
    moved = picker.faces[0].points[0]
    assert moved[0] == pytest.approx(face.eyes[0].center[0] + 10 / picker.zoom, abs=1)
    fitted_radius = picker.fit(0).left_eye.iris_radius
    feed(picker, [pg.event.Event(pg.MOUSEWHEEL, x=0, y=2, flipped=False)])
    assert picker.faces[0].radius == pytest.approx(round((fitted_radius + 1.0) * 2) / 2)
    feed(picker, [key(pg.K_LEFTBRACKET, "["), key(pg.K_LEFTBRACKET, "[")])
    assert picker.faces[0].radius == pytest.approx(round((fitted_radius + 1.0) * 2) / 2 - 1.0)
    assert picker.eyes_arguments()[0].count(",") == 4 and "given" in picker.status()
    feed(picker, [key(pg.K_a, "a")])
    assert picker.faces[0].radius is None


def test_zoom_keeps_the_point_under_the_cursor_and_pan_moves_the_view(face):
    picker = EyePicker(face.image, (420, 460))
    point = face.eyes[1].center
    before = picker.to_screen(point)
    picker.zoom_at(2.0, before)
    assert picker.zoom == pytest.approx(2.0) and picker.to_screen(point) == pytest.approx(before)
    feed(picker, [key(pg.K_EQUALS, "+")])
    assert picker.zoom == pytest.approx(2.5)
    offset = picker.offset
    feed(picker, [pg.event.Event(pg.MOUSEBUTTONDOWN, pos=(100, 100), button=3),
                  pg.event.Event(pg.MOUSEMOTION, pos=(130, 90), rel=(30, -10), buttons=(0, 0, 1)),
                  pg.event.Event(pg.MOUSEBUTTONUP, pos=(130, 90), button=3)])
    assert picker.offset == pytest.approx((offset[0] + 30, offset[1] - 10))
    assert picker.faces == []  # panning placed nothing
    feed(picker, [key(pg.K_RIGHT)])
    assert picker.offset[0] == pytest.approx(offset[0] + 30 - 60)


def test_several_faces_backspace_and_enter_only_when_complete():
    wide = np.hstack([drawn_face("almond").image, drawn_face("painted").image])
    one, two = drawn_face("almond"), drawn_face("painted")
    picker = EyePicker(wide, (840, 460))
    width = one.image.shape[1]
    for eye in one.eyes:
        feed(picker, click(screen(picker, eye.center)))
    feed(picker, click(screen(picker, (two.eyes[0].center[0] + width, two.eyes[0].center[1]))))
    feed(picker, [key(pg.K_RETURN)])
    assert not picker.done  # the second face has one eye
    feed(picker, [key(pg.K_BACKSPACE)])
    assert len(picker.faces) == 1
    for eye in two.eyes:
        feed(picker, click(screen(picker, (eye.center[0] + width, eye.center[1]))))
    feed(picker, [key(pg.K_RETURN)])
    assert picker.done and len(picker.eyes_arguments()) == 2
    canvas = np.zeros((460, 840, 3), np.uint8)
    picker.draw(canvas)
    green = (canvas[..., 1] > 200) & (canvas[..., 0] < 60) & (canvas[..., 2] < 180)
    for face_index in (0, 1):  # each face's opening is drawn around its eyes
        for eye in picker.fit(face_index).eyes:
            x, y = screen(picker, eye.center)
            assert green[y - 15:y + 15, x - 25:x + 25].any()


def test_points_off_the_eyes_show_as_not_eye_like(face):
    (lx, ly), (rx, ry) = face.eyes[0].center, face.eyes[1].center
    picker = EyePicker(face.image, (420, 460), [PickedFace([(lx, ly + 70), (rx, ry + 70)])])
    assert "NOT EYE-LIKE" in picker.status()


def scripted(monkeypatch, batches):
    """pygame.event.get returns these batches one per frame, then nothing."""
    batches = list(batches)
    monkeypatch.setattr(pg.event, "get", lambda *a, **k: batches.pop(0) if batches else [])


def test_the_window_loop_returns_the_eye_arguments(monkeypatch, face):
    picker_size = {}

    def fake_view(shape, screen_size):
        picker_size["view"] = (420, 460)
        return 420, 460

    monkeypatch.setattr("precompute.eye_picker.window_size", fake_view)
    clicks = [click(tuple(round(v) for v in np.array(eye.center) + 0.0)) for eye in face.eyes]  # zoom 1
    scripted(monkeypatch, [clicks[0], clicks[1], [key(pg.K_RETURN)]])
    [argument] = run_picker(face.image, "round.png", max_frames=50)
    assert len(argument.split(",")) == 4


def test_escape_cancels(monkeypatch, face):
    scripted(monkeypatch, [click((100, 100)), [key(pg.K_ESCAPE)]])
    with pytest.raises(PickerCancelled, match="nothing|no eye points"):
        run_picker(face.image, "x.png", max_frames=50)


def write_face(tmp_path, face):
    path = tmp_path / "round.png"
    cv2.imwrite(str(path), cv2.cvtColor(face.image, cv2.COLOR_RGB2BGR))
    return path


def test_the_eyes_command_prints_the_argument_or_builds_the_pool(monkeypatch, tmp_path, capsys, face):
    path = write_face(tmp_path, face)
    monkeypatch.setattr("precompute.eye_picker.window_size", lambda shape, size: (420, 460))
    given = ",".join(f"{v:g}" for v in face.eye_points)
    scripted(monkeypatch, [[key(pg.K_RETURN)]])
    assert main(["eyes", str(path), "--eyes", given]) == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("--eyes ") and len(out.split()) == 2
    scripted(monkeypatch, [[key(pg.K_RETURN)]])
    assert main(["eyes", str(path), "--eyes", given, "--out", str(tmp_path / "pool")]) == 0
    assert "1 face by eye points (fitted to the image)" in capsys.readouterr().out
    assert load_pool(tmp_path / "pool").manifest.engine_params["faces"][0]["from"] == "eye points"


def test_the_eyes_command_cancelled_writes_nothing(monkeypatch, tmp_path, capsys, face):
    path = write_face(tmp_path, face)
    scripted(monkeypatch, [[key(pg.K_ESCAPE)]])
    assert main(["eyes", str(path), "--out", str(tmp_path / "pool")]) == 1
    err = capsys.readouterr().err
    assert "monalisa eyes: cancelled: no eye points saved" in err and "error" not in err
    assert not (tmp_path / "pool").exists()
