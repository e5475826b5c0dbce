"""The contract every precompute engine meets: render the patch for one gaze direction."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from monalisa.pool.geometry import Rect


class Engine(Protocol):
    """Turns one portrait's gaze; built for one portrait, then asked for each grid cell."""

    name: str

    def params(self) -> dict[str, Any]:
        """JSON-serialisable settings, recorded in the manifest."""
        ...

    def patch_rect(self) -> Rect:
        """The rectangle of the portrait that any direction may change."""
        ...

    def render(self, yaw: float, pitch: float) -> np.ndarray:
        """The RGB uint8 patch (patch_rect's size) with the gaze turned to (yaw, pitch) degrees."""
        ...

    def close(self) -> None:
        """Release what rendering holds (threads, sessions); the engine is not used afterwards."""
        ...


class BlinkingEngine(Engine, Protocol):
    """An engine that can also close the lids: the pool then carries blink stages per cell."""

    def blink_rect(self) -> Rect:
        """The part of patch_rect that a blink changes."""
        ...

    def render_blink(self, yaw: float, pitch: float, closure: float) -> np.ndarray:
        """blink_rect's RGB uint8 pixels at (yaw, pitch) with the lids closed by ``closure`` (0 open, 1 shut)."""
        ...


def grid_angles(steps: int, max_deg: float) -> list[float]:
    """Evenly spaced angles from -max_deg to +max_deg (just 0 for one step)."""
    if steps == 1:
        return [0.0]
    return [round(-max_deg + 2 * max_deg * i / (steps - 1), 4) for i in range(steps)]
