"""Keep MediaPipe's C++ start-up log lines (absl ``W0000 ...``, TFLite ``INFO: ...``) off stderr.

They are written straight to file descriptor 2 by native code, and neither GLOG_minloglevel nor
TF_CPP_MIN_LOG_LEVEL silences them in mediapipe 0.10.21, so fd 2 is pointed at /dev/null for
the short window in which a graph is built and runs for the first time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import threading
from collections.abc import Iterator

# One window at a time: interleaved windows in two threads could leave fd 2 on /dev/null for good.
_LOCK = threading.RLock()


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Send everything written to fd 2 (native and Python, any thread) to /dev/null until the block ends;
    exceptions pass through and print after fd 2 is back. Keep the block short."""
    with _LOCK:
        _flush_python_stderr()
        saved = _dup_stderr()
        if saved is None:  # no fd 2 at all (stderr closed): nothing to quiet or restore
            yield
            return
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _dup_stderr() -> int | None:
    """A duplicate of fd 2 to restore it from, or None when the process has no fd 2."""
    try:
        return os.dup(2)
    except OSError as exc:
        if exc.errno != errno.EBADF:
            raise
        return None


def _flush_python_stderr() -> None:
    """Write out what Python buffered for stderr before the switch, so it is not lost with MediaPipe's lines."""
    if sys.stderr is not None:
        sys.stderr.flush()
