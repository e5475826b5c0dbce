"""Atomic writes: build the new version beside the target, then rename it into place.

Readers see the old version or the new one, never half of one; a failure (or Ctrl-C) leaves the old one.
Temp names are ``.NAME.tmp-*`` (and ``.NAME.old-*`` while swapping); ones left by a killed
process are removed by the next write to the same target.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from monalisa.errors import MonalisaError

STALE_TEMP_S = 3600


@contextmanager
def staged_dir(target: str | os.PathLike, error: type[MonalisaError] = MonalisaError) -> Iterator[Path]:
    """Yield a fresh dir beside ``target``: it replaces ``target`` if the block succeeds, else it is removed.

    Whatever is at ``target`` is replaced, so callers check first; failing to stage or publish raises ``error``.
    """
    target = Path(target)
    tmp = _make_temp_dir(target, error)
    try:
        yield tmp
        try:
            _swap_in(tmp, target)
        except OSError as exc:
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


def _cannot_write(target: Path, exc: OSError, error: type[MonalisaError]) -> MonalisaError:
    return error(f"{target}: cannot write here ({exc.strerror or exc})")


def _make_temp_dir(target: Path, error: type[MonalisaError]) -> Path:
    """A fresh temp dir beside ``target`` (same file system, so it can be renamed into place).

    It gets the permissions a normal directory would (mkdtemp's are owner-only), so a pool
    built by one user can be shown by the kiosk's service user.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(target)
        while True:
            tmp = target.parent / f".{target.name}.tmp-{secrets.token_hex(4)}"
            try:
                os.mkdir(tmp, 0o777)  # the umask applies, as for any directory
                return tmp
            except FileExistsError:
                continue
    except OSError as exc:
        raise _cannot_write(target, exc, error) from None


def _remove_stale_temps(target: Path) -> None:
    """Delete temp dirs of earlier writes to ``target`` that were killed outright (kill -9, power cut).

    A dir counts as stale when nothing in it (nor directly below it) changed for STALE_TEMP_S.
    """
    now = time.time()
    for old in [*target.parent.glob(f".{target.name}.tmp-*"), *target.parent.glob(f".{target.name}.old-*")]:
        try:
            newest = max(p.stat().st_mtime for p in (old, *old.iterdir()))
        except (FileNotFoundError, NotADirectoryError):
            continue  # removed by someone else meanwhile, or not ours
        if now - newest > STALE_TEMP_S:
            shutil.rmtree(old, ignore_errors=True)


def _swap_in(new: Path, target: Path) -> None:
    """Rename ``new`` to ``target``; an old ``target`` is moved aside first (put back on failure), then deleted."""
    if not target.exists():
        os.replace(new, target)
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
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
