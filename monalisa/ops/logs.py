"""Logging setup: one format everywhere, level from config, optional rotating log file.

Under systemd, stderr goes to the journal (``journalctl --user -u monalisa``). There each
line starts with its syslog priority instead of the time (journald adds the time), so
``journalctl --user -u monalisa -p warning`` shows only the problems. The optional file is
for machines without a journal or for copying to a USB stick.
"""

from __future__ import annotations

import dataclasses
import logging
import logging.handlers
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from monalisa.config import LogConfig
from monalisa.errors import ConfigError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JOURNAL_FORMAT = "%(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
QUIET_LIBRARIES = ("PIL", "matplotlib")
_MARK = "_monalisa_handler"  # set on handlers we add, so a second call replaces them


def setup_logging(config: LogConfig, verbose: bool = False) -> None:
    """Configure the root logger from ``config``; calling it again replaces, never duplicates."""
    formatter = logging.Formatter(FORMAT, DATE_FORMAT)
    stderr = logging.StreamHandler()
    stderr.setFormatter(JournalFormatter(JOURNAL_FORMAT) if writes_to_journal(sys.stderr) else formatter)
    handlers: list[logging.Handler] = [stderr]
    if config.file:
        handlers.append(_file_handler(config))  # may raise: do it before touching the old handlers
        handlers[-1].setFormatter(formatter)
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    for handler in handlers:
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    level = logging.DEBUG if verbose else getattr(logging, config.level.upper())
    root.setLevel(level)
    for chatty in QUIET_LIBRARIES:  # their debug output would drown ours with --verbose
        logging.getLogger(chatty).setLevel(max(level, logging.INFO))
    logging.captureWarnings(True)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # imported by mediapipe; chatty at INFO


def setup_logging_or_stderr(config: LogConfig, verbose: bool = False, warn: bool = True) -> str | None:
    """Like setup_logging, but an unusable [log] file falls back to stderr only (a kiosk must start).

    Returns the problem (None if the file works); ``warn`` also logs it as one warning line.
    """
    try:
        setup_logging(config, verbose)
        return None
    except ConfigError as exc:
        setup_logging(dataclasses.replace(config, file=""), verbose)
        problem = f"{exc}; logging to stderr only"
        if warn:
            logging.getLogger("monalisa").warning("%s", problem)
        return problem


def writes_to_journal(stream: TextIO, env: Mapping[str, str] | None = None) -> bool:
    """Whether ``stream`` is connected to journald (systemd sets JOURNAL_STREAM to its device:inode)."""
    expected = (os.environ if env is None else env).get("JOURNAL_STREAM", "")
    if not expected:
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # a captured or closed stream has no usable fd
        return False
    return expected == f"{stat.st_dev}:{stat.st_ino}"


class JournalFormatter(logging.Formatter):
    """Prefix every line with ``<priority>`` so journald files it at the record's level."""

    PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"<{self.PRIORITY.get(record.levelno, 6)}>"
        return "\n".join(prefix + line for line in super().format(record).splitlines())


def _file_handler(config: LogConfig) -> logging.Handler:
    """A size-rotated file handler; an unusable path is a config error naming the key."""
    path = Path(config.file).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _RotatingFileHandler(
            path, maxBytes=config.max_bytes, backupCount=config.backups, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"[log] file: cannot write {path} ({exc.strerror or exc})") from None


class _RotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Size-rotated file whose size stays bounded for days, even with ``backups = 0``."""

    _reported = False

    def doRollover(self) -> None:
        """Rotate; with no backups kept, empty the file (the stdlib would let it grow forever)."""
        super().doRollover()
        if self.backupCount == 0 and self.stream is not None:
            self.stream.truncate(0)

    def handleError(self, record: logging.LogRecord) -> None:
        """Report a failed write (disk full, permissions changed) once on stderr, not once per line."""
        if not self._reported:
            self._reported = True
            sys.stderr.write(f"monalisa: warning: cannot write log file {self.baseFilename}; "
                             "further write errors are not reported (stderr logging continues)\n")
