"""The debug overlay: a panel of frame rate, stage times and a camera thumbnail, drawn by the renderer.

``DebugOverlay`` only draws: the renderer asks it for the panel surface and where it goes, and
keeps it on screen with its dirty-rectangle bookkeeping. The thumbnail is mirrored as the screen
is (``DebugInfo.mirror``), so a viewer on the screen's left is on the thumbnail's left too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

OVERLAY_RGBA = (0, 0, 0, 180)
TEXT_RGB = (255, 255, 255)
FACE_RGB = (255, 210, 0)
VIEWER_RGB = (0, 255, 90)
MARGIN = 8          # pixels between the panel and the window edge
THUMB_LINES = 10    # thumbnail width, in text line heights
PANEL_GUESS = (11, 15)  # a typical panel's size in line heights, to choose its corner before it exists


@dataclass(eq=False)
class DebugInfo:
    """What the debug overlay shows; built by the loop only while ``renderer.debug`` is on."""

    fps: float
    stage_ms: dict[str, float]
    camera_image: np.ndarray | None = None   # RGB, as the camera delivered it
    faces: list[Any] = field(default_factory=list)  # .box=(x, y, w, h), .left_eye, .right_eye, normalized
    viewer: Any | None = None                # the followed face (same kind as ``faces``) or None
    cell: tuple[int, int] = (0, 0)
    mapping: str = ""
    mirror: bool = False                     # show the camera image mirrored, as the screen is
    life: str = ""                           # what the portrait does on its own now (glance, blink), if anything


class DebugOverlay:
    """Draws the panel for a DebugInfo with a pygame font; chooses the window corner it sits in."""

    def __init__(self, pygame, to_surface):
        self._pg = pygame
        self._to_surface = to_surface   # RGB array -> surface in the window's pixel format
        self.corner = (False, False)    # (right, bottom)

    def place(self, window_size: tuple[int, int], patch_area, font) -> None:
        """Pick the corner where a typical panel hides least of the patch (the eyes)."""
        line_h = font.get_linesize()
        panel_w, panel_h = line_h * PANEL_GUESS[0], line_h * PANEL_GUESS[1]
        best, best_overlap = (False, False), None
        for corner in ((False, False), (True, False), (False, True), (True, True)):
            hidden = self._rect(corner, window_size, panel_w, panel_h).clip(patch_area)
            overlap = hidden.width * hidden.height
            if best_overlap is None or overlap < best_overlap:
                best, best_overlap = corner, overlap
        self.corner = best

    def draw(self, info: DebugInfo | None, font, window_size: tuple[int, int]):
        """The panel surface and the window rectangle it goes in."""
        pg = self._pg
        line_h = font.get_linesize()
        pad = line_h // 3
        if info is None:
            lines = ["debug: waiting for data"]
        else:
            lines = [f"{info.fps:5.1f} fps   cell {info.cell[0]},{info.cell[1]}   {info.mapping}"]
            lines += [f"{name:>8} {ms:6.1f} ms" for name, ms in info.stage_ms.items()]
            lines.append(f"life: {info.life or '-'}")
        texts = [font.render(line, True, TEXT_RGB) for line in lines]
        thumb = self.thumbnail(info, width=line_h * THUMB_LINES) if info is not None else None
        width = max([t.get_width() for t in texts] + [thumb.get_width() if thumb else 0]) + 2 * pad
        height = len(texts) * line_h + (thumb.get_height() + pad if thumb else 0) + 2 * pad
        panel = pg.Surface((width, height), pg.SRCALPHA)
        panel.fill(OVERLAY_RGBA)
        y = pad
        for text in texts:
            panel.blit(text, (pad, y))
            y += line_h
        if thumb is not None:
            panel.blit(thumb, (pad, y + pad))
        return panel, self._rect(self.corner, window_size, width, height)

    def thumbnail(self, info: DebugInfo, width: int):
        """The camera image small (mirrored like the screen), every face boxed, the viewer highlighted."""
        if info.camera_image is None:
            return None
        pg = self._pg
        cam_h, cam_w = info.camera_image.shape[:2]
        height = max(1, round(width * cam_h / cam_w))
        small = cv2.resize(info.camera_image, (width, height), interpolation=cv2.INTER_AREA)
        if info.mirror:
            small = small[:, ::-1]
        thumb = self._to_surface(small)
        flip = (lambda x: 1.0 - x) if info.mirror else (lambda x: x)
        marks = [(face, FACE_RGB, 1) for face in info.faces]
        if info.viewer is not None:
            marks.append((info.viewer, VIEWER_RGB, 3))      # drawn last, on top
        for face, colour, thick in marks:
            x, y, w, h = face.box
            left = min(flip(x), flip(x + w))
            pg.draw.rect(thumb, colour, pg.Rect(round(left * width), round(y * height),
                                                max(1, round(w * width)), max(1, round(h * height))), thick)
            for ex, ey in (face.left_eye, face.right_eye):
                pg.draw.circle(thumb, colour, (round(flip(ex) * width), round(ey * height)), 2 + thick)
        return thumb

    def _rect(self, corner: tuple[bool, bool], window_size: tuple[int, int], width: int, height: int):
        right, bottom = corner
        win_w, win_h = window_size
        return self._pg.Rect(win_w - width - MARGIN if right else MARGIN,
                             win_h - height - MARGIN if bottom else MARGIN, width, height)
