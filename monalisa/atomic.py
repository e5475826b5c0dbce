"""Atomic writes: build the new version beside the target, then rename it into place.

Readers see the old version or the new one, never half of one; a failure (or Ctrl-C) leaves the old one.
Temp names are ``.NAME.tmp-PID-HOST-RAND`` (and ``.NAME.old-...`` while swapping); ones left by a
killed process are removed by the next write to the same target.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from monalisa.errors import MonalisaError

STALE_TEMP_S = 3600
_OWNED = re.compile(r"\.(?:tmp|old)-(\d+)-([0-9a-f]{8})-\w+$")  # the PID and host tag in a temp's name


@contextmanager
def staged_dir(target: str | os.PathLike, error: type[MonalisaError] = MonalisaError) -> Iterator[Path]:
    """Yield a fresh dir beside ``target``: it replaces ``target`` if the block succeeds, else it is removed.

    Whatever is at ``target`` is replaced, so callers check first; failing to stage or publish raises ``error``.
    """
    target = Path(target)
    tmp = _make_temp_dir(target, error)
    try:
        try:
            yield tmp
            _swap_in(tmp, target)
        except OSError as exc:  # name the target, never the temp dir that is about to vanish
            raise _cannot_write(target, exc, error) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_file(target: str | os.PathLike, content: str | Callable[[Path], object],
               error: type[MonalisaError] = MonalisaError, mode: int | None = None) -> Path:
    """Write ``content`` (text, or a function writing the path it is given) to ``target`` atomically, fsync-ed.

    The temp file has ``target``'s name (so suffix-driven writers work); ``mode`` fixes its permissions.
    """
    target = Path(target)
    tmp_dir = _make_temp_dir(target, error)
    tmp = tmp_dir / target.name
    try:
        if isinstance(content, str):
            tmp.write_text(content, encoding="utf-8")
        else:
            content(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())  # the rename must not land before the data does
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        raise _cannot_write(target, exc, error) from None
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return target


def os_error_text(exc: OSError) -> str:
    """A plain-words reason for a failed write: the OS's message, or "disk full?" for an errno-less short write."""
    if exc.errno is None and "written" in str(exc):  # numpy/cv2 report a short write without an errno
        return "the data was only partly written; disk full?"
    return exc.strerror or str(exc)


def _cannot_write(target: Path, exc: OSError, error: type[MonalisaError]) -> MonalisaError:
    return error(f"{target}: cannot write here ({os_error_text(exc)})")


def _host_tag() -> str:
    """A short, file-name-safe tag for this host, so PIDs are only judged on the host that owns them."""
    return hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]


def _owner_tag() -> str:
    """The ``PID-HOST`` part of this process's temp names."""
    return f"{os.getpid()}-{_host_tag()}"


def _blocking_file(directory: Path) -> Path | None:
    """The nearest existing ancestor of ``directory`` (or itself) if it is not a directory, else None."""
    for path in (directory, *directory.parents):
        if path.exists() or path.is_symlink():
            return None if path.is_dir() else path
    return None


def _make_temp_dir(target: Path, error: type[MonalisaError]) -> Path:
    """A fresh temp dir beside ``target`` (same file system, so it can be renamed into place).

    It gets the permissions a normal directory would (mkdtemp's are owner-only), so a pool
    built by one user can be shown by the kiosk's service user.
    """
    blocker = _blocking_file(target.parent)
    if blocker is not None:
        raise error(f"{target}: cannot write here ({blocker} is a file, not a directory)")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(target)
        while True:
            tmp = target.parent / f".{target.name}.tmp-{_owner_tag()}-{secrets.token_hex(4)}"
            try:
                os.mkdir(tmp, 0o777)  # the umask applies, as for any directory
                return tmp
            except FileExistsError:
                continue
    except OSError as exc:
        raise _cannot_write(target, exc, error) from None


def _remove_stale_temps(target: Path) -> None:
    """Delete temp dirs of earlier writes to ``target`` that were killed outright (kill -9, power cut).

    Stale: its name holds this host's tag and a PID no longer running, or nothing in it changed for STALE_TEMP_S.
    """
    now = time.time()
    host = _host_tag()
    for old in [*target.parent.glob(f".{target.name}.tmp-*"), *target.parent.glob(f".{target.name}.old-*")]:
        owner = _OWNED.search(old.name)
        if owner and owner[2] == host and not _pid_alive(int(owner[1])) and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
            continue
        try:
            newest = max(p.stat().st_mtime for p in (old, *old.iterdir()))
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed by someone else meanwhile, or not ours
        if now - newest > STALE_TEMP_S:
            shutil.rmtree(old, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    """Whether a process with this PID runs on this host (another user's counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _swap_in(new: Path, target: Path) -> None:
    """Rename ``new`` to ``target``; an old ``target`` is moved aside first (put back on failure), then deleted."""
    if not target.exists():
        os.replace(new, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-{_owner_tag()}-", dir=target.parent))
    try:
        os.replace(target, aside / target.name)
    except OSError:
        aside.rmdir()
        raise
    try:
        os.replace(new, target)
    except OSError:
        os.replace(aside / target.name, target)
        aside.rmdir()
        raise
    shutil.rmtree(aside, ignore_errors=True)  # published; a leftover is cleared as stale later
