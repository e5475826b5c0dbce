"""The portrait's own life: blinks, saccades, idle glances and look-aways, on an injected clock and seed."""

import random

import numpy as np
import pytest

from monalisa.config import LifeConfig
from monalisa.kiosk.life import Life

YAWS = [float(v) for v in np.linspace(-30, 30, 33)]   # 1.875 degrees a column
PITCHES = [0.0]
NEUTRAL = (0, 16)
STAGES = (0.5, 1.0)


def life_for(seed=1, stages=STAGES, **config):
    return Life(LifeConfig(**config), YAWS, PITCHES, NEUTRAL, stages, rng=random.Random(seed))


def simulate(life, seconds, fps=30.0, wanted=lambda t: NEUTRAL, watching=False, resting=True):
    """Looks at every frame time; ``wanted`` may depend on time."""
    return [(i / fps, life.update(i / fps, wanted(i / fps), watching, resting))
            for i in range(int(seconds * fps))]


def blinks_of(looks):
    """(start time, end time, cells seen) of every blink: runs of frames with a blink stage."""
    runs, current = [], None
    for t, look in looks:
        if look.blink is not None:
            if current is None:
                current = [t, t, set()]
            current[1] = t
            current[2].add(look.cell)
        elif current is not None:
            current[1] = t  # the first open frame ends it
            runs.append(tuple(current))
            current = None
    return runs


def test_spontaneous_blinks_at_a_natural_rate_and_length():
    life = life_for(glances=False)
    looks = simulate(life, 600, fps=200)  # 10 minutes, fine time steps to see each blink's length
    blinks = blinks_of(looks)
    assert 10 * 10 <= len(blinks) <= 20 * 10
    lengths = [end - start for start, end, _ in blinks]
    assert 0.095 <= min(lengths) and max(lengths) <= 0.155
    stages = [look.blink for _, look in looks if look.blink is not None]
    assert set(stages) == {0, 1}                      # half shut and shut
    gaps = np.diff([start for start, _, _ in blinks])
    assert gaps.min() >= 0.9 and gaps.std() > 1.0    # a refractory pause, then random


def test_a_pool_without_blink_frames_never_blinks():
    looks = simulate(life_for(stages=(), glances=False), 120)
    assert all(look.blink is None for _, look in looks)
    looks = simulate(life_for(blinks=False, glances=False), 120)
    assert all(look.blink is None for _, look in looks)


def test_the_cell_never_changes_in_mid_blink():
    rng = random.Random(5)
    targets = {}
    looks = simulate(life_for(jump_blink_deg=5.0), 300, wanted=lambda t: targets.setdefault(
        round(t * 3), (0, rng.randrange(33))), watching=True, resting=False)
    blinks = blinks_of(looks)
    assert len(blinks) > 50
    assert all(len(cells) == 1 for _, _, cells in blinks)


def test_large_gaze_jumps_come_with_blinks():
    life = life_for(blinks_per_min=1.0, glances=False, jump_blink_deg=10.0)
    looks = simulate(life, 120, wanted=lambda t: (0, 0 if int(t) % 2 else 32), watching=True, resting=False)
    cells = [look.cell for _, look in looks]
    landings = [i for i in range(1, len(looks)) if cells[i] != cells[i - 1] and cells[i][1] in (0, 32)]
    blinked = sum(1 for i in landings if looks[i][1].blink is not None)
    assert len(landings) >= 100 and blinked == len(landings)     # 60 degrees: always, from the landing frame
    small = simulate(life_for(blinks_per_min=1.0, glances=False), 120,
                     wanted=lambda t: (0, 16 + int(t) % 2), watching=True, resting=False)
    assert sum(look.blink is not None for _, look in small) < 30  # 2-degree steps: only the rare spontaneous one


def test_a_big_jump_is_a_saccade_of_two_frames_and_a_small_one_of_one():
    life = life_for(blinks=False, glances=False)
    life.update(0.0, (0, 0), True, False)
    life.update(0.1, (0, 0), True, False)
    middle = life.update(0.2, (0, 32), True, False).cell
    assert 0 < middle[1] < 32
    assert life.update(0.23, (0, 32), True, False).cell == (0, 32)
    assert life.update(0.26, (0, 30), True, False).cell == (0, 30)   # a small step: at once
    one = life_for(blinks=False, glances=False, saccade_frames=1)
    one.update(0.0, (0, 0), True, False)
    assert one.update(0.1, (0, 32), True, False).cell == (0, 32)


def test_idle_glances_are_small_held_and_come_back():
    looks = simulate(life_for(blinks=False), 300)
    glances, current = [], None
    for i, (t, look) in enumerate(looks):
        if look.act == "glance":
            assert look.cell != NEUTRAL and abs(YAWS[look.cell[1]] - YAWS[NEUTRAL[1]]) <= 15.0
            if current is None:
                current = [t, t]
            current[1] = t
        elif current is not None:
            assert NEUTRAL in (looks[i][1].cell, looks[i + 1][1].cell)   # back, in a saccade of 1-2 frames
            glances.append(current)
            current = None
    assert 15 <= len(glances) <= 80       # every 2-8 s, held 0.5-3 s, for 5 minutes
    held = [end - start for start, end in glances]
    assert min(held) >= 0.5 - 0.07 and max(held) <= 3.0
    assert sum(look.cell == NEUTRAL for _, look in looks) > 0.4 * len(looks)   # mostly at rest


def test_no_glances_while_someone_is_watched_or_when_turned_off():
    assert all(look.act is None for _, look in simulate(life_for(), 60, watching=True, resting=False))
    assert all(look.cell == NEUTRAL for _, look in simulate(life_for(blinks=False, glances=False), 60))


def test_look_aways_are_off_by_default_and_small_when_on():
    plain = simulate(life_for(blinks=False), 60, wanted=lambda t: (0, 20), watching=True, resting=False)
    assert all(look.act is None and look.cell == (0, 20) for _, look in plain[2:])  # after the first saccade
    looks = simulate(life_for(blinks=False, look_aways=True), 60, wanted=lambda t: (0, 20), watching=True,
                     resting=False)
    away = [(t, look) for t, look in looks if look.act == "look_away"]
    assert away and away[0][0] >= 3.3                           # only after eye contact has lasted
    assert all(0 < abs(YAWS[look.cell[1]] - YAWS[20]) <= 10.0 for _, look in away)
    starts = [t for (t, look), (_, before) in zip(looks[1:], looks) if look.act and not before.act]
    assert len(starts) >= 4 and np.diff(starts).min() >= 3.0    # every few seconds


def test_everything_off_shows_the_wanted_cell_as_is():
    life = life_for(blinks=False, glances=False, saccade_frames=1)
    for i, col in enumerate([3, 30, 16, 0, 32]):
        look = life.update(i * 0.03, (0, col), True, False)
        assert (look.cell, look.blink, look.act) == ((0, col), None, None)


def test_the_same_seed_gives_the_same_life():
    a = [(look.cell, look.blink, look.act) for _, look in simulate(life_for(seed=7), 60)]
    b = [(look.cell, look.blink, look.act) for _, look in simulate(life_for(seed=7), 60)]
    c = [(look.cell, look.blink, look.act) for _, look in simulate(life_for(seed=8), 60)]
    assert a == b != c


@pytest.mark.parametrize("fps", [15, 30, 60])
def test_every_blink_shows_its_closed_stage_at_camera_rates(fps):
    looks = simulate(life_for(glances=False), 120, fps=fps)
    blinks = blinks_of(looks)
    assert len(blinks) >= 15
    closed = {start for start, _, _ in blinks}
    shut = {start for start, end, _ in blinks if any(start <= t <= end and look.closure == 1.0 for t, look in looks)}
    assert shut == closed   # every blink shows fully shut eyes, whatever the frame rate
