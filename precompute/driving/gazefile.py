"""The gaze file of a driving video: written by `monalisa record`, read by `precompute.driving.video`.

It is JSON beside the video (same stem, .json) with ``format`` (GAZE_FORMAT), ``video``, ``fps``,
``width``, ``height``, ``pitch_steps``, ``sweep_s`` and ``frames``: one entry per video frame with
``index``, ``t`` (s after the countdown), the dot's ``x``, ``y`` (0..1 of the window), ``row``,
and the portrait gaze it stands for, ``yaw`` and ``pitch`` in [-1, 1] (yaw -1: toward the
screen's left; pitch +1: up).
"""

from __future__ import annotations

from pathlib import Path

GAZE_FORMAT = "monalisa-gaze/1"


def gaze_json_path(video: Path) -> Path:
    """The gaze file of a driving video: same stem, .json."""
    return Path(video).with_suffix(".json")
