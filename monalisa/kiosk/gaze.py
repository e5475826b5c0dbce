"""The viewer's position -> where the portrait looks -> which grid cell to show.

A mapping turns the viewer's eye midpoint (normalized camera coordinates, not mirrored)
into *continuous* cell coordinates (row, column as floats, 2.0 = the centre of column 2);
``CellSelector`` turns those into the cell wanted, with hysteresis so detector jitter never
makes the frame flicker, and the neutral cell when nobody is there.

Conventions (docs/architecture.md): yaw < 0 looks toward the screen's left edge (column 0),
pitch > 0 looks up (row 0). With ``mirror`` on, screen x = 1 - camera x.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from typing import Protocol

from monalisa.config import GazeConfig


class GazeMapping(Protocol):
    """Viewer position -> continuous (row, column) of the pool grid."""

    name: str
    mirror: bool

    def target(self, position: tuple[float, float], eye_distance: float | None,
               frame_size: tuple[int, int]) -> tuple[float, float]: ...


class LinearMapping:
    """The original mapping: mirrored camera x spans the columns, camera y spans the rows."""

    name = "linear"

    def __init__(self, rows: int, cols: int, mirror: bool = True):
        self.rows, self.cols, self.mirror = rows, cols, mirror

    def target(self, position: tuple[float, float], eye_distance: float | None = None,
               frame_size: tuple[int, int] = (1, 1)) -> tuple[float, float]:
        """Cell coordinates: the camera's width (and height) divided into equal strips."""
        x, y = position
        if self.mirror:
            x = 1.0 - x
        # strip k covers [k/n, (k+1)/n] and has its centre at coordinate k
        return y * self.rows - 0.5, x * self.cols - 0.5


class GeometricMapping:
    """Eye contact as people perceive it: the viewer's direction t from the portrait's eyes, aimed at gain x t.

    The viewer's distance comes from the pixel distance between their eyes (a typical
    ``eye_distance_mm`` apart) and the camera's focal length (from ``camera_hfov_deg``);
    their eye midpoint is back-projected to a 3D point in camera coordinates, moved to
    coordinates centred on the portrait's eyes (x right, y up, z out of the screen), and
    t = (atan2(x, z), atan2(y, z)). A flat picture's gaze a is seen from angle t as aimed at
    about atan(tan a + tan t) (docs/research.md, "Seeing a gaze in a flat picture"), so the
    portrait looks at ``gain`` x t (true degrees from the picture normal, as the pool's grid is):
    gain 1 aims at the viewer's physical position and is seen as looking past them; gain 0 looks
    straight out, seen as eye contact from anywhere but never visibly following.
    """

    name = "geometric"
    default_distance_mm = 600.0  # used only when the eye distance is unknown

    def __init__(self, config: GazeConfig, yaws: Sequence[float], pitches: Sequence[float]):
        self.config = config
        self.mirror = config.mirror
        self.yaws = [float(v) for v in yaws]               # increasing
        self.neg_pitches = [-float(v) for v in pitches]    # pitches decrease; negated they increase
        self.tan_half_fov = math.tan(math.radians(config.camera_hfov_deg) / 2.0)

    def point_mm(self, position: tuple[float, float], eye_distance: float | None,
                 frame_size: tuple[int, int]) -> tuple[float, float, float]:
        """The viewer's eye midpoint in portrait-eye coordinates (mm): x right, y up, z out."""
        cfg = self.config
        width, height = frame_size
        focal_px = width / (2.0 * self.tan_half_fov)
        if eye_distance is None or eye_distance <= 1.0:
            z = self.default_distance_mm
        else:
            z = focal_px * cfg.eye_distance_mm / eye_distance
        # camera coordinates: X right in the image, Y down, Z forward (toward the viewer)
        cam_x = (position[0] - 0.5) * width / focal_px * z
        cam_y = (position[1] - 0.5) * height / focal_px * z
        # a camera facing the viewer sees the screen's left on its image's right
        x = (-cam_x if self.mirror else cam_x) + cfg.camera_x_mm
        y = -cam_y + cfg.camera_y_mm
        return x, y, z + cfg.camera_z_mm

    def direction(self, position: tuple[float, float], eye_distance: float | None,
                  frame_size: tuple[int, int]) -> tuple[float, float]:
        """(yaw, pitch) in degrees for the portrait to look the viewer in the eye."""
        x, y, z = self.point_mm(position, eye_distance, frame_size)
        z = max(z, 1.0)  # a viewer cannot stand behind the screen
        return math.degrees(math.atan2(x, z)), math.degrees(math.atan2(y, z))

    def aim(self, position: tuple[float, float], eye_distance: float | None,
            frame_size: tuple[int, int]) -> tuple[float, float]:
        """(yaw, pitch) in degrees the portrait looks at: ``gain`` x the viewer's direction."""
        yaw, pitch = self.direction(position, eye_distance, frame_size)
        return self.config.gain * yaw, self.config.gain * pitch

    def target(self, position: tuple[float, float], eye_distance: float | None,
               frame_size: tuple[int, int]) -> tuple[float, float]:
        """Cell coordinates of the aim within the pool's grid (extrapolated past its edges)."""
        yaw, pitch = self.aim(position, eye_distance, frame_size)
        return fractional_index(-pitch, self.neg_pitches), fractional_index(yaw, self.yaws)


def fractional_index(value: float, grid: list[float]) -> float:
    """Position of ``value`` in the increasing ``grid`` as a float index (linear in between).

    Rounding the result gives the nearest grid entry; outside the grid the end spacing is
    extended so hysteresis still sees how far past the edge the target is.
    """
    n = len(grid)
    if n == 1:
        return 0.0
    i = min(max(bisect.bisect_right(grid, value) - 1, 0), n - 2)
    return i + (value - grid[i]) / (grid[i + 1] - grid[i])


def make_mapping(config: GazeConfig, yaws: Sequence[float], pitches: Sequence[float]) -> GazeMapping:
    """The mapping named by ``config.mapping`` for a pool with this grid."""
    if config.mapping == "linear":
        return LinearMapping(len(pitches), len(yaws), config.mirror)
    return GeometricMapping(config, yaws, pitches)


class CellSelector:
    """Continuous target -> the cell wanted, with hysteresis; the neutral cell when idle.

    The way there (a saccade of one or two frames, blinks) is ``monalisa.kiosk.life``'s business.
    """

    def __init__(self, rows: int, cols: int, neutral: tuple[int, int], hysteresis: float):
        self.rows, self.cols = rows, cols
        self.neutral = neutral
        self.hysteresis = hysteresis
        self.cell = neutral

    def update(self, target: tuple[float, float] | None, idle: bool = False) -> tuple[int, int]:
        """The cell wanted now; with no target (and not idle) the current cell stays."""
        if idle:
            self.cell = self.neutral
        elif target is not None:
            row, col = self.cell
            self.cell = (_settle(row, target[0], self.hysteresis, self.rows),
                         _settle(col, target[1], self.hysteresis, self.cols))
        return self.cell


def _settle(shown: int, target: float, hysteresis: float, n: int) -> int:
    """Keep ``shown`` unless ``target`` is past its boundary by more than ``hysteresis`` of a cell."""
    if abs(target - shown) <= 0.5 + hysteresis:
        return shown
    return min(max(math.floor(target + 0.5), 0), n - 1)

