"""What the portrait does on its own, so it looks alive: blinks, saccades, idle glances, look-aways.

The loop calls ``Life.update(now, wanted, watching, resting)`` once per drawn frame with the cell the
viewer logic wants; it returns the ``Look`` to draw: the cell (after saccades, glances and
look-aways) and the blink stage over it. Time is the kiosk's (a video's media time), randomness
comes from one ``random.Random``, so a run is reproducible from its seed.

- Blinks: spontaneous at ``blinks_per_min`` on average (random intervals with a short refractory
  time), and often with a large gaze jump (gaze-evoked blinks). Each lasts 100-150 ms, closing
  faster than it opens, drawn from the pool's blink stages; the cell never changes in mid-blink.
  Pools without blink frames never blink.
- Saccades: a gaze change jumps in one frame, or two (one in-between cell) when it is large.
- Idle glances: resting on the neutral cell, the portrait now and then looks a little elsewhere
  (within ``glance_deg``) for 0.5-3 s, and back.
- Look-aways (off by default): after long eye contact, a small look aside every few seconds.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from monalisa.config import LifeConfig
from monalisa.pool.geometry import nearest_index

Cell = tuple[int, int]

PEAK = 0.35              # a blink is fully closed this far through (closing is faster than opening)
BIG_SACCADE_COLS = 3     # jumps over this many columns (or any row change of 2+) get an in-between frame


@dataclass
class Look:
    """What to draw now: a cell, the blink stage over it (index into the pool's stages), what the portrait is up to."""

    cell: Cell
    blink: int | None = None       # None: eyes as in the cell's frame
    closure: float = 0.0           # the closure of that stage (0 when not blinking), for traces
    act: str | None = None         # "glance", "look_away" or None


class Life:
    """The portrait's own behaviour on top of the cell the viewer logic wants."""

    def __init__(self, config: LifeConfig, yaws: Sequence[float], pitches: Sequence[float], neutral: Cell,
                 blink_stages: Sequence[float] = (), rng: random.Random | None = None):
        self.config = config
        self.yaws, self.pitches = [float(v) for v in yaws], [float(v) for v in pitches]
        self.neutral = neutral
        self.stages = tuple(float(s) for s in blink_stages)
        self.rng = rng if rng is not None else random.Random(config.seed or None)
        self.shown = neutral
        self._in_saccade = False                  # the in-between frame of a jump was shown
        self._jump_from: Cell | None = None       # where the current jump started
        self._blink_start: float | None = None
        self._blink_s = 0.0
        self._shut_shown = False                  # this blink has shown its last (fully shut) stage
        self._next_blink: float | None = None
        self._glance: Cell | None = None
        self._glance_until = 0.0
        self._next_glance: float | None = None
        self._contact_since: float | None = None
        self._away_deg = 0.0
        self._away_until: float | None = None
        self._next_away = 0.0

    @property
    def can_blink(self) -> bool:
        return self.config.blinks and bool(self.stages)

    def update(self, now: float, wanted: Cell, watching: bool, resting: bool) -> Look:
        """The look for time ``now``: ``wanted`` is the viewer logic's cell, ``watching`` whether someone is
        followed, ``resting`` whether nobody is there and ``wanted`` is the neutral cell."""
        goal, act = self._goal(now, wanted, watching, resting)
        if self._blink_start is not None and now - self._blink_start < self._blink_s:
            return self._blinking(now, act)         # mid-blink: the cell stays
        self._blink_start = None
        if goal != self.shown:
            self._move(goal)
            if self.shown == goal and self._jump_from is not None:
                if self._jump_blinks(self._jump_from, goal):
                    self._start_blink(now)
                self._jump_from = None
        else:
            self._in_saccade, self._jump_from = False, None
        if self.can_blink and self._blink_start is None:
            if self._next_blink is None:
                self._next_blink = now + self._blink_interval()
            elif now >= self._next_blink:
                self._start_blink(now)
        if self._blink_start is not None:
            return self._blinking(now, act)
        return Look(self.shown, act=act)

    # ------------------------------------------------------------------ where to look

    def _goal(self, now: float, wanted: Cell, watching: bool, resting: bool) -> tuple[Cell, str | None]:
        """The cell to look at before saccades and blinks, and the behaviour choosing it."""
        cfg = self.config
        if watching:
            self._glance, self._next_glance = None, None
            if self._contact_since is None:
                self._contact_since, self._away_until = now, None
                self._next_away = now + cfg.look_away_after_s
            if self._away_until is not None:
                if now < self._away_until:
                    return self._shifted(wanted, self._away_deg, 0.0), "look_away"
                self._away_until = None
                self._next_away = now + self.rng.uniform(cfg.look_away_every_min_s, cfg.look_away_every_max_s)
            elif cfg.look_aways and now >= self._next_away:
                side = self.rng.choice((-1.0, 1.0))
                self._away_deg = side * self.rng.uniform(0.5, 1.0) * cfg.look_away_deg
                self._away_until = now + cfg.look_away_hold_s * self.rng.uniform(0.6, 1.4)
                return self._shifted(wanted, self._away_deg, 0.0), "look_away"
            return wanted, None
        self._contact_since = self._away_until = None
        if not (resting and cfg.glances):
            self._glance, self._next_glance = None, None
            return wanted, None
        if self._next_glance is None and self._glance is None:
            self._next_glance = now + self.rng.uniform(cfg.glance_pause_min_s, cfg.glance_pause_max_s)
        if self._glance is not None:
            if now < self._glance_until:
                return self._glance, "glance"
            self._glance = None
            self._next_glance = now + self.rng.uniform(cfg.glance_pause_min_s, cfg.glance_pause_max_s)
        elif now >= self._next_glance:
            glance = self._pick_glance(wanted)
            if glance is not None:
                self._glance, self._next_glance = glance, None
                self._glance_until = now + self.rng.uniform(cfg.glance_hold_min_s, cfg.glance_hold_max_s)
                return glance, "glance"
            self._next_glance = now + self.rng.uniform(cfg.glance_pause_min_s, cfg.glance_pause_max_s)
        return wanted, None

    def _pick_glance(self, rest: Cell) -> Cell | None:
        """A cell a small glance away from ``rest`` (None if the grid has no other cell near enough)."""
        deg = self.config.glance_deg
        for _ in range(8):
            yaw = self.rng.choice((-1.0, 1.0)) * self.rng.uniform(0.3, 1.0) * deg
            pitch = self.rng.uniform(-0.4, 0.4) * deg if len(self.pitches) > 1 else 0.0
            cell = self._shifted(rest, yaw, pitch)
            if cell != rest and abs(self._degrees(rest, cell)) <= deg + 1e-9:
                return cell
        return None

    def _shifted(self, cell: Cell, yaw_deg: float, pitch_deg: float) -> Cell:
        """The cell nearest to ``cell``'s direction turned by (yaw_deg, pitch_deg)."""
        row, col = cell
        return (nearest_index(self.pitches, self.pitches[row] + pitch_deg),
                nearest_index(self.yaws, self.yaws[col] + yaw_deg))

    def _degrees(self, a: Cell, b: Cell) -> float:
        """The size of a gaze jump between two cells, in degrees (largest of yaw and pitch)."""
        return max(abs(self.yaws[a[1]] - self.yaws[b[1]]), abs(self.pitches[a[0]] - self.pitches[b[0]]))

    # ------------------------------------------------------------------ saccades

    def _move(self, goal: Cell) -> None:
        """Jump toward ``goal``: straight there, or through one in-between cell when it is far."""
        if self._jump_from is None:
            self._jump_from = self.shown
        row, col = self.shown
        far = abs(goal[1] - col) > BIG_SACCADE_COLS or abs(goal[0] - row) > 1
        if self.config.saccade_frames == 2 and far and not self._in_saccade:
            self.shown = ((row + goal[0]) // 2, (col + goal[1]) // 2)
            self._in_saccade = True
            return
        self.shown = goal
        self._in_saccade = False

    # ------------------------------------------------------------------ blinks

    def _jump_blinks(self, start: Cell, end: Cell) -> bool:
        """Whether a jump this large comes with a blink: from half the time at jump_blink_deg to always at twice it."""
        limit = self.config.jump_blink_deg
        if not self.can_blink or limit <= 0:
            return False
        size = self._degrees(start, end)
        return size >= limit and self.rng.random() < min(1.0, 0.5 * size / limit)

    def _start_blink(self, now: float) -> None:
        cfg = self.config
        self._blink_start, self._shut_shown = now, False
        self._blink_s = self.rng.uniform(cfg.blink_min_s, cfg.blink_max_s)
        self._next_blink = now + self._blink_interval()

    def _blink_interval(self) -> float:
        """Seconds to the next spontaneous blink: a refractory pause plus an exponential wait, mean 60/rate."""
        mean = 60.0 / self.config.blinks_per_min
        pause = min(1.0, mean / 3)
        return pause + min(self.rng.expovariate(1.0 / (mean - pause)), 4 * mean)

    def _blinking(self, now: float, act: str | None) -> Look:
        """The blink stage for ``now``: closure rises to 1 at PEAK of the blink, then falls; every frame of
        the blink shows at least the first stage, so a blink at camera rates is seen for its whole length,
        and the first frame at or past the peak is fully shut if no frame was yet."""
        u = (now - self._blink_start) / self._blink_s
        closure = u / PEAK if u < PEAK else (1.0 - u) / (1.0 - PEAK)
        if u >= PEAK and not self._shut_shown:
            closure = 1.0
        stage = min(range(len(self.stages)), key=lambda i: abs(self.stages[i] - closure))
        self._shut_shown = self._shut_shown or stage == len(self.stages) - 1
        return Look(self.shown, stage, self.stages[stage], act)
