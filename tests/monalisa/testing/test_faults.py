"""Test sources: image sequences, fault schedules, and the fault-injecting wrapper."""

import logging

import numpy as np
import pytest

from monalisa.errors import ConfigError
from monalisa.testing.faults import Fault, FaultInjectingSource, SequenceSource, parse_faults


def numbered_images(count: int):
    return (np.full((4, 4, 3), i, np.uint8) for i in range(count))


def test_fault_injection_swallows_freezes_and_reports_states(caplog):
    caplog.set_level(logging.INFO, logger="monalisa.testing.faults")
    schedule = [Fault("unplug", 3, 2), Fault("freeze", 7, 3), Fault("stall", 12, 1), Fault("read_fail", 14, 1)]
    source = FaultInjectingSource(numbered_images(16), schedule)
    source.start()
    seen = []
    for _ in range(16):
        frame = source.read_latest()
        seen.append((None if frame is None else int(frame.image[0, 0, 0]), source.state))
    assert seen == [(0, "ok"), (1, "ok"), (2, "ok"), (None, "lost"), (None, "lost"), (5, "ok"), (6, "ok"),
                    (6, "frozen"), (6, "frozen"), (6, "frozen"), (10, "ok"), (11, "ok"), (None, "stalled"),
                    (13, "ok"), (None, "lost"), (15, "ok")]
    assert source.read_latest() is None and source.state == "ended"
    state_lines = [r for r in caplog.records if r.name == "monalisa.testing.faults"]
    assert len(state_lines) == 9  # one per change of state


def test_fault_injection_wraps_a_source_by_its_frame_numbers():
    source = FaultInjectingSource(SequenceSource(numbered_images(10)), [Fault("unplug", 0, 5)])
    with source:
        got = [source.read_latest() for _ in range(10)]
    assert [f.index for f in got if f is not None] == [5, 6, 7, 8, 9]


def test_fault_schedule_parses_and_rejects_typos():
    assert parse_faults("unplug@90+60, freeze@300+150") == [Fault("unplug", 90, 60), Fault("freeze", 300, 150)]
    with pytest.raises(ConfigError, match="unplugg@1"):
        parse_faults("unplugg@1+2")


def test_sequence_source_numbers_frames():
    source = SequenceSource(numbered_images(3))
    assert source.read_latest() is None  # not started
    source.start()
    assert [source.read_latest().index for _ in range(3)] == [0, 1, 2]
    assert source.read_latest() is None and source.state == "ended"
