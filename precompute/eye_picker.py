"""`monalisa eyes PORTRAIT`: click the eye centres on the painting; shows what precompute will use.

``EyePicker`` is the state machine (fed pygame events, no window of its own) so tests can drive it;
``run_picker`` is the window loop around it. Each face is two clicks (its eyes, in any order); every
placed face is fitted as `precompute --eyes` would fit it (iris, opening) and drawn.

Mouse: click places the next eye centre, drag moves a point, wheel sets the iris radius of the face
being edited (Ctrl+wheel zooms), right or middle drag pans. Keys: [ ] iris radius, a automatic
radius, + - zoom, arrows pan, Tab next face, Backspace removes the last point, Enter done, Esc quits
without saving anything.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from monalisa.errors import MonalisaError

log = logging.getLogger(__name__)

GRAB_PX = 12            # screen pixels: a press this close to a point drags it
ZOOM_STEP = 1.25
RADIUS_STEP = 0.5       # px of portrait per wheel notch or key press
PAN_STEP = 60           # screen pixels per arrow key press
MAX_ZOOM = 16.0
STATUS_H = 62           # the status bar under the painting (three lines)
MIN_VIEW_W = 720        # the view is at least this wide, so the status bar is readable
HELP = "click: eye  drag: move  wheel [ ]: iris  a: auto  Ctrl+wheel + -: zoom  right-drag: pan  Tab  Enter  Esc"
POINT_RGB, FIT_RGB, IRIS_RGB, BAD_RGB, SELECT_RGB = (255, 60, 200), (0, 255, 120), (60, 170, 255), (255, 70, 40), \
    (255, 255, 0)


class PickerCancelled(MonalisaError):
    """Esc or the window closed: nothing is saved."""

    exit_code = 1


@dataclass
class PickedFace:
    """One face's eye centres (portrait pixels, as clicked) and its iris radius (None: automatic)."""

    points: list[tuple[float, float]] = field(default_factory=list)
    radius: float | None = None

    def eyes_argument(self) -> str:
        """The `--eyes` value: LX,LY,RX,RY[,R] with the image-left eye first."""
        (lx, ly), (rx, ry) = sorted(self.points)
        values = [lx, ly, rx, ry] + ([self.radius] if self.radius is not None else [])
        return ",".join(f"{v:.1f}".rstrip("0").rstrip(".") for v in values)


class EyePicker:
    """The picker's state: faces, view (zoom, pan), what is being dragged; ``handle`` takes one pygame event."""

    def __init__(self, image: np.ndarray, view_size: tuple[int, int], faces: list[PickedFace] | None = None):
        self.image = image
        self.view_w, self.view_h = view_size
        self.faces: list[PickedFace] = faces or []
        self.current = max(0, len(self.faces) - 1)
        self.fits: dict[int, tuple[tuple, object]] = {}  # face index -> (key, FaceGeometry or error text)
        self.done = False
        self.cancelled = False
        self._drag: tuple[int, int] | None = None    # (face, point) being moved
        self._pan_from: tuple[int, int] | None = None
        self._painting: tuple[tuple, np.ndarray] | None = None  # (view key, the painting drawn for it)
        height, width = image.shape[:2]
        self.zoom = min(self.view_w / width, self.view_h / height)
        self.offset = ((self.view_w - width * self.zoom) / 2, (self.view_h - height * self.zoom) / 2)

    # ------------------------------------------------------------------------- coordinates

    def to_image(self, pos: tuple[float, float]) -> tuple[float, float]:
        """Screen position -> portrait pixel coordinates."""
        return (pos[0] - self.offset[0]) / self.zoom - 0.5, (pos[1] - self.offset[1]) / self.zoom - 0.5

    def to_screen(self, point: tuple[float, float]) -> tuple[float, float]:
        return (point[0] + 0.5) * self.zoom + self.offset[0], (point[1] + 0.5) * self.zoom + self.offset[1]

    def zoom_at(self, factor: float, pos: tuple[float, float]) -> None:
        """Zoom by ``factor`` keeping the portrait point under ``pos`` where it is."""
        height, width = self.image.shape[:2]
        fit = min(self.view_w / width, self.view_h / height)
        new = min(max(self.zoom * factor, 0.5 * fit), MAX_ZOOM)
        ix, iy = self.to_image(pos)
        self.zoom = new
        self.offset = (pos[0] - (ix + 0.5) * new, pos[1] - (iy + 0.5) * new)

    # ------------------------------------------------------------------------- events

    def handle(self, event) -> None:
        """Update the state for one pygame event."""
        import pygame as pg

        if event.type == pg.QUIT:
            self.cancelled = True
        elif event.type == pg.KEYDOWN:
            self._key(event)
        elif event.type == pg.MOUSEBUTTONDOWN and event.button == 1:
            self._press(event.pos)
        elif event.type == pg.MOUSEBUTTONDOWN and event.button in (2, 3):
            self._pan_from = event.pos
        elif event.type == pg.MOUSEMOTION:
            if self._drag is not None:
                face, index = self._drag
                self.faces[face].points[index] = self._clamped(self.to_image(event.pos))
            elif self._pan_from is not None:
                self.offset = (self.offset[0] + event.pos[0] - self._pan_from[0],
                               self.offset[1] + event.pos[1] - self._pan_from[1])
                self._pan_from = event.pos
        elif event.type == pg.MOUSEBUTTONUP:
            self._drag = None
            self._pan_from = None
        elif event.type == pg.MOUSEWHEEL:
            mods = pg.key.get_mods()
            if mods & pg.KMOD_CTRL:
                self.zoom_at(ZOOM_STEP ** event.y, pg.mouse.get_pos())
            else:
                self.change_radius(RADIUS_STEP * event.y)

    def _key(self, event) -> None:
        import pygame as pg

        key, text = event.key, getattr(event, "unicode", "")
        if key == pg.K_ESCAPE:
            self.cancelled = True
        elif key in (pg.K_RETURN, pg.K_KP_ENTER):
            self.done = self.complete()
        elif text in ("+", "=") or key == pg.K_KP_PLUS:
            self.zoom_at(ZOOM_STEP, (self.view_w / 2, self.view_h / 2))
        elif text == "-" or key == pg.K_KP_MINUS:
            self.zoom_at(1 / ZOOM_STEP, (self.view_w / 2, self.view_h / 2))
        elif text == "]":
            self.change_radius(RADIUS_STEP)
        elif text == "[":
            self.change_radius(-RADIUS_STEP)
        elif text == "a" and self.faces:
            self.faces[self.current].radius = None
        elif key == pg.K_TAB and self.faces:
            self.current = (self.current + 1) % len(self.faces)
        elif key == pg.K_BACKSPACE:
            self.remove_last()
        elif key in (pg.K_LEFT, pg.K_RIGHT, pg.K_UP, pg.K_DOWN):
            dx = {pg.K_LEFT: PAN_STEP, pg.K_RIGHT: -PAN_STEP}.get(key, 0)
            dy = {pg.K_UP: PAN_STEP, pg.K_DOWN: -PAN_STEP}.get(key, 0)
            self.offset = (self.offset[0] + dx, self.offset[1] + dy)

    def _press(self, pos: tuple[int, int]) -> None:
        """Grab the nearest point within GRAB_PX, else place the next eye centre."""
        best, where = GRAB_PX, None
        for f, face in enumerate(self.faces):
            for i, point in enumerate(face.points):
                sx, sy = self.to_screen(point)
                distance = math.hypot(sx - pos[0], sy - pos[1])
                if distance <= best:
                    best, where = distance, (f, i)
        if where is not None:
            self._drag, self.current = where, where[0]
            return
        point = self.to_image(pos)
        height, width = self.image.shape[:2]
        if not (0 <= point[0] < width and 0 <= point[1] < height):
            return
        if not self.faces or len(self.faces[-1].points) == 2:
            self.faces.append(PickedFace())
        self.current = len(self.faces) - 1
        self.faces[-1].points.append(point)
        self._drag = (self.current, len(self.faces[-1].points) - 1)

    def _clamped(self, point: tuple[float, float]) -> tuple[float, float]:
        height, width = self.image.shape[:2]
        return min(max(point[0], 0.0), width - 1.0), min(max(point[1], 0.0), height - 1.0)

    def change_radius(self, delta: float) -> None:
        """Set the edited face's iris radius by ``delta`` px, starting from the fitted one."""
        if not self.faces:
            return
        face = self.faces[self.current]
        start = face.radius
        if start is None:
            fitted = self.fit(self.current)
            start = fitted.left_eye.iris_radius if not isinstance(fitted, str) and fitted is not None else 8.0
        face.radius = round(max(1.0, start + delta) * 2) / 2

    def remove_last(self) -> None:
        if self.faces:
            self.faces[-1].points.pop()
            if not self.faces[-1].points:
                self.faces.pop()
            self.current = max(0, min(self.current, len(self.faces) - 1))

    def complete(self) -> bool:
        """Whether every face has both eyes (and there is at least one)."""
        return bool(self.faces) and all(len(face.points) == 2 for face in self.faces)

    # ------------------------------------------------------------------------- what precompute will use

    def fit(self, index: int):
        """The FaceGeometry `precompute --eyes` would build for face ``index``, an error text, or None
        (one point only); cached until its points or radius change."""
        from precompute.portrait import faces_from_eye_points

        face = self.faces[index]
        if len(face.points) < 2:
            return None
        key = (tuple(face.points), face.radius)
        cached = self.fits.get(index)
        if cached is not None and (cached[0] == key or (self._drag is not None and self._drag[0] == index)):
            return cached[1]  # while a point is dragged the last fit stays (fitting takes a few tenths)
        values = tuple(v for p in face.points for v in p) + ((face.radius,) if face.radius is not None else ())
        try:
            result = faces_from_eye_points(self.image, values, warn=False)[0]  # the status bar says it
        except MonalisaError as exc:
            result = str(exc)
        self.fits[index] = (key, result)
        return result

    def eyes_arguments(self) -> list[str]:
        return [face.eyes_argument() for face in self.faces if len(face.points) == 2]

    def status(self) -> str:
        """One line for the status bar."""
        if not self.faces:
            return "click the centre of an eye (Esc quits, Ctrl+wheel or +/- zooms, right-drag pans)"
        face = self.faces[self.current]
        fitted = self.fit(self.current)
        radius = f"{face.radius:g} px (given)" if face.radius is not None else "auto"
        if isinstance(fitted, str):
            state = fitted
        elif fitted is None:
            state = "click the other eye"
        else:
            radius = radius if face.radius is not None else f"auto {fitted.left_eye.iris_radius:.1f}/" \
                f"{fitted.right_eye.iris_radius:.1f} px"
            state = f"eyes found ({fitted.detail})" if _eye_like(fitted) else f"NOT EYE-LIKE ({fitted.detail})"
        return f"face {self.current + 1}/{len(self.faces)}: {state}; iris radius {radius}"

    # ------------------------------------------------------------------------- drawing

    def draw(self, canvas: np.ndarray) -> None:
        """Draw the visible part of the painting and every face's points, opening and iris into ``canvas``
        (view_h x view_w RGB)."""
        key = (self.zoom, self.offset, canvas.shape)
        if self._painting is None or self._painting[0] != key:  # resampling a big scan takes a while
            painting = np.full(canvas.shape, 30, np.uint8)
            self._draw_painting(painting)
            self._painting = (key, painting)
        canvas[:] = self._painting[1]
        for index, face in enumerate(self.faces):
            fitted = self.fit(index)
            if fitted is not None and not isinstance(fitted, str):
                good = _eye_like(fitted)
                for eye in fitted.eyes:
                    polygon = np.array([self.to_screen(p) for p in eye.opening])
                    cv2.polylines(canvas, [np.round(polygon * 4).astype(np.int32)], True,
                                  FIT_RGB if good else BAD_RGB, 1, cv2.LINE_AA, shift=2)
                    cx, cy = self.to_screen(eye.center)
                    cv2.circle(canvas, (round(cx * 4), round(cy * 4)), max(4, round(eye.iris_radius * self.zoom * 4)),
                               IRIS_RGB, 1, cv2.LINE_AA, shift=2)
            colour = SELECT_RGB if index == self.current else POINT_RGB
            screen = [tuple(round(v) for v in self.to_screen(p)) for p in face.points]
            if len(screen) == 2:
                cv2.line(canvas, screen[0], screen[1], colour, 1, cv2.LINE_AA)
            for x, y in screen:
                cv2.drawMarker(canvas, (x, y), colour, cv2.MARKER_CROSS, 14, 1, cv2.LINE_AA)
            if screen:
                cv2.putText(canvas, str(index + 1), (screen[0][0] + 8, screen[0][1] - 8),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)

    def _draw_painting(self, canvas: np.ndarray) -> None:
        """Only the visible part of the portrait is resampled (big scans stay fast)."""
        height, width = self.image.shape[:2]
        x0, y0 = self.to_image((0, 0))
        x1, y1 = self.to_image((self.view_w, self.view_h))
        ix0, iy0 = max(0, math.floor(x0)), max(0, math.floor(y0))
        ix1, iy1 = min(width, math.ceil(x1) + 1), min(height, math.ceil(y1) + 1)
        if ix1 <= ix0 or iy1 <= iy0:
            return
        sx0, sy0 = (round(v) for v in self.to_screen((ix0 - 0.5, iy0 - 0.5)))
        sx1, sy1 = (round(v) for v in self.to_screen((ix1 - 0.5, iy1 - 0.5)))
        if sx1 <= sx0 or sy1 <= sy0:
            return
        method = cv2.INTER_AREA if self.zoom < 1 else cv2.INTER_NEAREST if self.zoom >= 3 else cv2.INTER_LINEAR
        region = cv2.resize(self.image[iy0:iy1, ix0:ix1], (sx1 - sx0, sy1 - sy0), interpolation=method)
        cx0, cy0 = max(0, sx0), max(0, sy0)
        cx1, cy1 = min(self.view_w, sx1), min(self.view_h, sy1)
        if cx1 > cx0 and cy1 > cy0:
            canvas[cy0:cy1, cx0:cx1] = region[cy0 - sy0:cy1 - sy0, cx0 - sx0:cx1 - sx0]


def _eye_like(face) -> bool:
    """Whether both of a face's eye points sat on something eye-like (portrait's detail says so)."""
    return "default" not in face.detail


def window_size(image_shape: tuple[int, ...], screen: tuple[int, int]) -> tuple[int, int]:
    """The painting's view size: the image scaled to fit 90 % of the screen (status bar below)."""
    height, width = image_shape[:2]
    scale = min(0.9 * screen[0] / width, (0.9 * screen[1] - STATUS_H) / height, 1.0)
    return max(MIN_VIEW_W, round(width * scale)), max(240, round(height * scale))


def run_picker(image: np.ndarray, title: str, faces: list[PickedFace] | None = None,
               max_frames: int | None = None) -> list[str]:
    """Open the window, run the picker until Enter (the `--eyes` values) or Esc (PickerCancelled)."""
    import pygame as pg

    from monalisa.errors import DisplayError
    from monalisa.kiosk.render import start_display

    try:
        try:
            start_display(pg, "run `monalisa eyes` in the desktop session")
        except pg.error as exc:
            raise DisplayError(f"cannot start the display ({exc}); is DISPLAY set?") from exc
        info = pg.display.Info()
        screen_size = (info.current_w, info.current_h) if info.current_w > 0 else (1280, 800)
        view = window_size(image.shape, screen_size)
        try:
            window = pg.display.set_mode((view[0], view[1] + STATUS_H))
        except pg.error as exc:
            raise DisplayError(f"cannot open the window ({exc})") from exc
        pg.display.set_caption(f"monalisa eyes: {title}")
        font = pg.font.Font(None, 20)
        picker = EyePicker(image, view, faces)
        canvas = np.zeros((view[1], view[0], 3), np.uint8)
        clock = pg.time.Clock()
        frames = 0
        while not (picker.done or picker.cancelled):
            for event in pg.event.get():
                picker.handle(event)
            picker.draw(canvas)
            window.blit(pg.surfarray.make_surface(canvas.swapaxes(0, 1)), (0, 0))
            window.fill((20, 20, 20), pg.Rect(0, view[1], view[0], STATUS_H))
            window.blit(font.render(picker.status(), True, (230, 230, 230)), (8, view[1] + 5))
            window.blit(font.render(HELP, True, (160, 160, 160)), (8, view[1] + 23))
            window.blit(font.render(" ".join(f"--eyes {a}" for a in picker.eyes_arguments()), True,
                                    (150, 220, 150)), (8, view[1] + 41))
            pg.display.flip()
            clock.tick(30)
            frames += 1
            if max_frames is not None and frames >= max_frames:
                picker.cancelled = True
        if picker.cancelled:
            raise PickerCancelled("cancelled: no eye points saved")
        return picker.eyes_arguments()
    finally:
        pg.display.quit()
