"""Logging setup: the format, the level, the rotating file, and no duplicate handlers."""

import logging
import os
import re

import pytest

from monalisa.config import LogConfig
from monalisa.errors import ConfigError
from monalisa.ops.logs import QUIET_LIBRARIES, setup_logging


@pytest.fixture(autouse=True)
def restore_root_logger():
    """Put the root logger back as pytest had it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    yield
    for name, old in quiet.items():
        logging.getLogger(name).setLevel(old)
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def ours():
    return [h for h in logging.getLogger().handlers if getattr(h, "_monalisa_handler", False)]


def test_format_and_level(capsys):
    setup_logging(LogConfig(level="warning"))
    logging.getLogger("monalisa.test").info("hidden")
    logging.getLogger("monalisa.test").warning("shown %d", 42)
    err = capsys.readouterr().err
    assert "hidden" not in err
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d WARNING monalisa.test: shown 42$", err, re.M)


def test_verbose_means_debug_for_us_not_for_chatty_libraries():
    setup_logging(LogConfig(level="error"), verbose=True)
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("PIL").getEffectiveLevel() == logging.INFO


def test_a_bad_log_file_keeps_the_previous_setup(tmp_path):
    setup_logging(LogConfig())
    before = ours()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError):
        setup_logging(LogConfig(file=str(blocker / "kiosk.log")))
    assert ours() == before


def test_calling_twice_does_not_duplicate_handlers(tmp_path):
    config = LogConfig(file=str(tmp_path / "kiosk.log"))
    setup_logging(config)
    setup_logging(config)
    assert len(ours()) == 2  # stderr + file
    logging.getLogger("monalisa.test").warning("once")
    for handler in ours():
        handler.flush()
    assert (tmp_path / "kiosk.log").read_text().count("once") == 1


def test_file_rotates_and_keeps_the_configured_backups(tmp_path):
    log_file = tmp_path / "logs" / "kiosk.log"  # the directory is created
    setup_logging(LogConfig(file=str(log_file), max_bytes=10_000, backups=2))
    logger = logging.getLogger("monalisa.test")
    for i in range(1000):
        logger.warning("line %04d %s", i, "x" * 60)
    names = sorted(p.name for p in log_file.parent.iterdir())
    assert names == ["kiosk.log", "kiosk.log.1", "kiosk.log.2"]
    assert all(p.stat().st_size <= 10_000 for p in log_file.parent.iterdir())
    assert "line 0999" in log_file.read_text()


def test_zero_backups_still_bounds_the_file(tmp_path):
    log_file = tmp_path / "kiosk.log"
    setup_logging(LogConfig(file=str(log_file), max_bytes=10_000, backups=0))
    for i in range(1000):
        logging.getLogger("monalisa.test").warning("line %04d %s", i, "x" * 60)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kiosk.log"]
    assert log_file.stat().st_size <= 10_000


def test_unwritable_log_file_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"\[log\] file: cannot write"):
        setup_logging(LogConfig(file=str(blocker / "kiosk.log")))


def test_journal_lines_carry_their_priority_and_no_time(tmp_path):
    from monalisa.ops.logs import JOURNAL_FORMAT, JournalFormatter, writes_to_journal

    with open(tmp_path / "stream", "w") as stream:
        st = os.fstat(stream.fileno())
        assert writes_to_journal(stream, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not writes_to_journal(stream, {"JOURNAL_STREAM": "1:2"})
        assert not writes_to_journal(stream, {})
    record = logging.LogRecord("monalisa.kiosk.camera", logging.WARNING, __file__, 1, "camera lost\nretrying", (), None)
    assert JournalFormatter(JOURNAL_FORMAT).format(record) \
        == "<4>WARNING monalisa.kiosk.camera: camera lost\n<4>retrying"


def test_an_unusable_log_file_falls_back_to_stderr_with_one_warning(tmp_path, capsys):
    from monalisa.ops.logs import setup_logging_or_stderr

    blocker = tmp_path / "file"
    blocker.write_text("x")
    problem = setup_logging_or_stderr(LogConfig(file=str(blocker / "k.log")))
    assert "[log] file: cannot write" in problem and "stderr only" in problem
    assert [type(h) for h in ours()] == [logging.StreamHandler]
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and "WARNING" in err[0] and "[log] file" in err[0]
    assert setup_logging_or_stderr(LogConfig(file=str(blocker / "k.log")), warn=False) is not None
    assert capsys.readouterr().err == ""
    assert setup_logging_or_stderr(LogConfig(file=str(tmp_path / "ok.log"))) is None
