"""Atomic writes: a staged dir or a file is published whole on success, and on failure nothing changes."""

import os
import stat

import numpy as np
import pytest

from monalisa import atomic
from monalisa.atomic import staged_dir, write_file
from monalisa.errors import MonalisaError, PoolError


def names(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def fail_replacing_onto(target, monkeypatch):
    """Make renaming the new version onto ``target`` fail (disk full); putting the old one back still works."""
    real = os.replace

    def replace(src, dst):
        if os.fspath(dst) == os.fspath(target) and ".tmp-" in os.fspath(src):
            raise OSError(28, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)


# ----------------------------------------------------------------------------- staged_dir

def test_staged_dir_is_published_on_success(tmp_path):
    out = tmp_path / "out"
    with staged_dir(out) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".out.tmp-")
        (tmp / "a.txt").write_text("new")
        assert not out.exists()  # nothing visible until the block ends
    assert (out / "a.txt").read_text() == "new"
    assert names(tmp_path) == ["out"]


def test_staged_dir_replaces_the_old_version(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with staged_dir(out) as tmp:
        (tmp / "new.txt").write_text("new")
    assert names(out) == ["new.txt"]
    assert names(tmp_path) == ["out"]  # the old version moved aside is gone too


def test_exception_in_the_block_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="injected"):
        with staged_dir(tmp_path / "out") as tmp:
            (tmp / "a.txt").write_text("half")
            raise RuntimeError("injected")
    assert names(tmp_path) == []


def test_exception_in_the_block_keeps_the_old_version(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with staged_dir(out) as tmp:
            (tmp / "new.txt").write_text("new")
            raise KeyboardInterrupt
    assert names(out) == ["old.txt"] and (out / "old.txt").read_text() == "old"
    assert names(tmp_path) == ["out"]


def test_failed_publish_puts_the_old_version_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    fail_replacing_onto(out, monkeypatch)
    with pytest.raises(PoolError, match=r"out: cannot write here \(No space left on device\)$"):
        with staged_dir(out, PoolError) as tmp:
            (tmp / "new.txt").write_text("new")
    assert names(out) == ["old.txt"]
    assert names(tmp_path) == ["out"]


def test_unwritable_place_is_one_line_of_the_given_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(PoolError, match="cannot write here") as info:
        with staged_dir(tmp_path / "file" / "out", PoolError):
            pytest.fail("the block must not run")
    assert "\n" not in str(info.value)


def test_staged_dir_has_normal_directory_permissions(tmp_path, umask_022):
    with staged_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("x")
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o755  # not mkdtemp's 0o700
    assert stat.S_IMODE((tmp_path / "out" / "a.txt").stat().st_mode) == 0o644


def test_temps_of_killed_writes_are_cleared_by_the_next_write(tmp_path):
    stale = tmp_path / ".out.tmp-killed"
    (stale / "frames").mkdir(parents=True)
    os.utime(stale / "frames", (0, 0))
    os.utime(stale, (0, 0))
    stale_aside = tmp_path / ".out.old-killed"
    (stale_aside / "out").mkdir(parents=True)
    os.utime(stale_aside / "out", (0, 0))
    os.utime(stale_aside, (0, 0))
    busy = tmp_path / ".out.tmp-long"  # an old dir, but something in it is still changing
    (busy / "frames").mkdir(parents=True)
    os.utime(busy, (0, 0))
    fresh = tmp_path / ".out.tmp-running"
    fresh.mkdir()
    other = tmp_path / ".other.tmp-killed"  # another target's temp is not ours to judge
    other.mkdir()
    os.utime(other, (0, 0))
    with staged_dir(tmp_path / "out"):
        pass
    assert names(tmp_path) == sorted([".out.tmp-long", ".out.tmp-running", ".other.tmp-killed", "out"])
    write_file(tmp_path / "file.txt", "x")  # single files clear their own temps the same way
    assert (tmp_path / ".out.tmp-long").exists()


# ----------------------------------------------------------------------------- write_file

def test_write_file_publishes_text_or_what_a_writer_wrote(tmp_path):
    assert write_file(tmp_path / "a.txt", "héllo\n") == tmp_path / "a.txt"
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    seen = []

    def writer(path):
        seen.append(path)
        path.write_bytes(b"\x89PNG")

    write_file(tmp_path / "b.png", writer)
    assert (tmp_path / "b.png").read_bytes() == b"\x89PNG"
    assert seen[0].name == "b.png" and seen[0].parent.name.startswith(".b.png.tmp-")  # suffix kept
    assert names(tmp_path) == ["a.txt", "b.png"]


def test_write_file_fsyncs_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(atomic.os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    write_file(tmp_path / "a.txt", "x")
    assert events == ["fsync", "replace"]


def test_writer_exception_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def broken(path):
        path.write_text("half")
        raise ValueError("injected")

    with pytest.raises(ValueError, match="injected"):
        write_file(target, broken)
    assert target.read_text() == "old" and names(tmp_path) == ["a.txt"]


def test_interrupted_writer_with_no_old_file_leaves_nothing(tmp_path):
    def interrupted(path):
        path.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_file(tmp_path / "a.txt", interrupted)
    assert names(tmp_path) == []


def test_failed_rename_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.txt"
    target.write_text("old")
    fail_replacing_onto(target, monkeypatch)
    with pytest.raises(MonalisaError) as info:
        write_file(target, "new")
    assert str(info.value) == f"{target}: cannot write here (No space left on device)"
    assert target.read_text() == "old" and names(tmp_path) == ["a.txt"]


def test_os_errors_while_writing_become_the_given_error(tmp_path):
    def disk_full(path):
        raise OSError(28, "No space left on device")

    with pytest.raises(PoolError, match="No space left"):
        write_file(tmp_path / "a.png", disk_full, PoolError)
    with pytest.raises(PoolError, match="cannot write here"):  # the writer wrote nothing
        write_file(tmp_path / "b.png", lambda path: None, PoolError)
    assert names(tmp_path) == []


def test_write_file_permissions(tmp_path, umask_022):
    write_file(tmp_path / "normal.txt", "x")
    assert stat.S_IMODE((tmp_path / "normal.txt").stat().st_mode) == 0o644
    os.umask(0o077)
    write_file(tmp_path / "fixed.txt", "x", mode=0o644)
    assert stat.S_IMODE((tmp_path / "fixed.txt").stat().st_mode) == 0o644
    write_file(tmp_path / "private.txt", "x")
    assert stat.S_IMODE((tmp_path / "private.txt").stat().st_mode) == 0o600


# ----------------------------------------------------------------------------- callers

def test_pool_writer_publishes_extra_files_with_the_pool_or_not_at_all(tmp_path):
    from monalisa.pool.format import PoolWriter, load_pool
    from monalisa.pool.geometry import Rect

    portrait = np.zeros((20, 20, 3), np.uint8)
    patch = np.full((4, 6, 3), 200, np.uint8)

    def write(out, before_publish):
        with PoolWriter(out, portrait, "0" * 64, Rect(2, 3, 6, 4), [0.0], [0.0], "t", {},
                        before_publish=before_publish) as writer:
            writer.add(0, 0, patch)

    def add_note(tmp):
        assert load_pool(tmp).patches[(0, 0)].shape == (4, 6, 3)  # the temp pool is complete here
        (tmp / "note.txt").write_text("extra")

    out = tmp_path / "pool"
    write(out, add_note)
    assert (out / "note.txt").read_text() == "extra" and load_pool(out).cols == 1

    def broken(tmp):
        raise PoolError("injected")

    with pytest.raises(PoolError, match="injected"):
        write(out, broken)
    assert (out / "note.txt").exists() and names(tmp_path) == ["pool"]


def test_pool_writer_turns_a_full_disk_into_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    from monalisa.pool import format as pool_module
    from monalisa.pool.format import PoolWriter
    from monalisa.pool.geometry import Rect

    def full(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pool_module.Path, "write_text", full)  # the manifest is the last write
    portrait = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(PoolError, match=r"pool: cannot write the pool \(No space left on device\)$"):
        with PoolWriter(tmp_path / "pool", portrait, "0" * 64, Rect(2, 3, 6, 4), [0.0], [0.0], "t", {}) as writer:
            writer.add(0, 0, np.zeros((4, 6, 3), np.uint8))
    assert names(tmp_path) == []


def dead_pid():
    """The PID of a process that has exited (and been reaped)."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temps_of_dead_processes_are_cleared_at_once(tmp_path):
    host = atomic._host_tag()
    dead = tmp_path / f".out.tmp-{dead_pid()}-{host}-0123abcd"
    (dead / "frames").mkdir(parents=True)  # fresh, so only the dead PID makes it stale
    dead_aside = tmp_path / f".out.old-{dead_pid()}-{host}-x_1y2z3"
    dead_aside.mkdir()
    alive = tmp_path / f".out.tmp-{os.getpid()}-{host}-0123abcd"  # a concurrent write in a live process
    alive.mkdir()
    elsewhere = tmp_path / f".out.tmp-{dead_pid()}-00000000-0123abcd"  # another host's PID: age decides
    elsewhere.mkdir()
    with staged_dir(tmp_path / "out") as tmp:
        assert tmp.name.startswith(f".out.tmp-{os.getpid()}-{host}-")
    assert names(tmp_path) == sorted([alive.name, elsewhere.name, "out"])


def test_a_file_in_the_way_is_named(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(PoolError, match=r"afile/sub/deeper: cannot write here \(.*afile is a file, not a directory\)$"):
        with staged_dir(tmp_path / "afile" / "sub" / "deeper", PoolError):
            pass


def test_errors_inside_a_staged_dir_name_the_target_not_the_temp(tmp_path):
    with pytest.raises(PoolError) as caught:
        with staged_dir(tmp_path / "out", PoolError) as tmp:
            (tmp / "x").write_text("x")
            raise OSError("3398394 requested and 3145728 written")
    assert str(caught.value) == f"{tmp_path / 'out'}: cannot write here (the data was only partly written; disk full?)"
    assert names(tmp_path) == []
