"""`monalisa doctor`: check everything a gallery kiosk needs and say how to fix what is missing.

Each check gives one or more rows: ``ok``, ``warn`` (works, but worth a look), ``FAIL``
(the kiosk will not work) or ``skip``. The exit code is 1 when anything FAILs. A kiosk
needs a camera and a display: both missing is a FAIL. The SDL dummy video driver
(``SDL_VIDEODRIVER=dummy``) means a headless run is intended, so it is only a warning.
"""

from __future__ import annotations

import logging
import os
import shlex
import tempfile
from collections.abc import Callable
from pathlib import Path

from monalisa.config import Config, LogConfig, PoolConfig
from monalisa.errors import MonalisaError
from monalisa.ops.checks import (
    FAIL,
    OK,
    WARN,
    Row,
    check_blanking,
    check_cameras,
    check_detector,
    check_display,
    check_models,
    check_packages,
    check_python,
    systemctl_state,
)
from monalisa.pool.builtin import choose_pool

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- checks

def check_config(config_path: Path | None) -> list[Row]:
    """The config file parses and every key is valid."""
    from monalisa.config import load_config

    if config_path is None:
        return [Row("config", OK, "no config file: built-in defaults")]
    try:
        load_config(config_path)
    except MonalisaError as exc:
        return [Row("config", FAIL, str(exc), "fix that key; `monalisa config show` lists every key")]
    return [Row("config", OK, f"{config_path} is valid")]


def check_pool(config: PoolConfig, explicit: str | None = None, name: str = "pool") -> list[Row]:
    """The pool the kiosk would show (--pool, [pool] path, or the cached built-in one) loads and validates."""
    from monalisa.pool.format import MANIFEST, load_pool

    path, source = choose_pool(explicit, config.path, build=False)
    if source == "built-in":
        name = f"{name} (built-in)"
        if not (path / MANIFEST).is_file():
            return [Row(name, WARN, f"not built yet (will be at {path})",
                        "the first `monalisa run` builds it; to build it now: monalisa run --headless --max-seconds 1")]
        fix = f"delete {path}; the next `monalisa run` rebuilds it"
    else:
        fix = f"rebuild it (monalisa precompute PORTRAIT --out {path}) or fix {source}"
    try:
        pool = load_pool(path)
    except MonalisaError as exc:
        return [Row(name, FAIL, str(exc), fix)]
    m = pool.manifest
    return [Row(name, OK, f"{path} ({source}): {m.rows}x{m.cols} grid, {m.width}x{m.height} portrait, "
                          f"patch {m.patch.width}x{m.patch.height}, engine {m.engine}")]


def unit_exec_start() -> list[str] | None:
    """The installed unit's ExecStart as arguments (systemd's %% and $$ undone), or None if not installed."""
    from monalisa.ops.service import unit_path

    path = unit_path()
    if not path.is_file():
        return None
    line = next((line.split("=", 1)[1] for line in path.read_text(encoding="utf-8").splitlines()
                 if line.startswith("ExecStart=")), "")
    return [arg.replace("%%", "%").replace("$$", "$") for arg in shlex.split(line)]


def _flag_value(args: list[str], flag: str) -> str | None:
    """The value after ``flag`` (or in ``flag=value``) in ``args``, else None."""
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def check_service_pool(checked: Path) -> list[Row]:
    """The pool the installed service shows (its ExecStart --pool/--config), if not the one checked above."""
    from monalisa.config import load_config

    args = unit_exec_start()
    if not args:
        return []
    name = "pool (service)"
    pool_arg, config_arg = _flag_value(args, "--pool"), _flag_value(args, "--config")
    config = PoolConfig()
    if config_arg and not pool_arg:
        try:
            config = load_config(config_arg).pool
        except MonalisaError as exc:
            return [Row(name, FAIL, f"the service's --config {config_arg}: {exc}",
                        "fix that config file, then systemctl --user restart monalisa")]
    elif not pool_arg:
        return []  # the service reads the same default config as this doctor run
    path, _ = choose_pool(pool_arg, config.path, build=False)
    if path == checked:
        return []
    return [Row(r.check, r.status, f"{r.detail} (from the installed unit's ExecStart)", r.fix)
            for r in check_pool(config, pool_arg, name)]


def _writable_dir(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` if we may create files in it, else None."""
    for parent in [path, *path.parents]:
        if parent.exists():
            if not os.access(parent, os.W_OK | os.X_OK):
                return None
            try:  # a real probe: root passes os.access even on /proc or a read-only mount
                with tempfile.NamedTemporaryFile(dir=parent, prefix=".monalisa-doctor-"):
                    return parent
            except OSError:
                return None
    return None


def check_log_file(config: LogConfig) -> list[Row]:
    """The optional log file can be written (or created)."""
    if not config.file:
        return [Row("log file", OK, "none: stderr only (the journal under systemd)")]
    path = Path(config.file).expanduser()
    fix = "point [log] file at a writable place, or fix its permissions"
    if path.is_dir():
        return [Row("log file", FAIL, f"{path} is a directory", fix)]
    if path.exists():
        if os.access(path, os.W_OK):
            return [Row("log file", OK, f"{path} is writable")]
        return [Row("log file", FAIL, f"{path} is not writable", fix)]
    if _writable_dir(path.parent) is None:
        return [Row("log file", FAIL, f"cannot create {path}", fix)]
    return [Row("log file", OK, f"{path} will be created")]


def check_service() -> list[Row]:
    """The systemd user unit is installed, points at a program that exists, and (if we can ask) runs."""
    from monalisa.ops.service import LOGS_COMMAND, unit_path

    path = unit_path()
    args = unit_exec_start()
    if args is None:
        return [Row("service", WARN, "systemd user unit not installed",
                    "for a gallery: monalisa install-service (see docs/operations.md)")]
    program = args[0] if args else ""
    if not program or not os.access(program, os.X_OK):
        return [Row("service", FAIL, f"{path}: ExecStart program {program or '(none)'} does not exist",
                    "re-run monalisa install-service from the venv the kiosk should use")]
    state = systemctl_state()
    return [Row("service", OK, f"installed at {path}{state}; logs: {LOGS_COMMAND}")]


# ----------------------------------------------------------------------------- running

def collect(config: Config, config_path: Path | None, pool: str | None = None) -> list[Row]:
    """Run every check; an unexpected error in one becomes a FAIL row, the others still run.

    ``pool`` is the doctor's --pool: the pool row checks what `run` with the same flags would show.
    """
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")  # keep pygame's banner out of the table
    checks: list[tuple[str, Callable[[], list[Row]]]] = [
        ("config", lambda: check_config(config_path)),
        ("python", check_python),
        ("packages", check_packages),
        ("mediapipe models", check_models),
        ("BlazeFace", lambda: check_detector(config.detector)),
        ("cameras", lambda: check_cameras(config.camera)),
        ("display", lambda: check_display(config.render)),
        ("pool", lambda: check_pool(config.pool, pool)),
        ("pool (service)", lambda: check_service_pool(choose_pool(pool, config.pool.path, build=False)[0])),
        ("log file", lambda: check_log_file(config.log)),
        ("service", check_service),
        ("screen blanking", check_blanking),
    ]
    rows: list[Row] = []
    for name, check in checks:
        try:
            rows.extend(check())
        except Exception as exc:  # noqa: BLE001 - a broken check is reported as a row, not a crash
            log.debug("doctor check %s failed", name, exc_info=True)
            rows.append(Row(name, FAIL, f"check crashed: {type(exc).__name__}: {exc}",
                            "run `monalisa doctor -v` for the traceback and report it"))
    return rows


def format_table(rows: list[Row]) -> str:
    """Plain aligned columns; a fix goes on its own line under the row it belongs to."""
    width = max(len("check"), *(len(r.check) for r in rows))
    lines = [f"{'check':<{width}}  status  detail", f"{'-' * width}  ------  ------"]
    for row in rows:
        lines.append(f"{row.check:<{width}}  {row.status:<6}  {row.detail}")
        if row.fix:
            lines.append(f"{'':<{width}}          -> {row.fix}")
    return "\n".join(lines)


def run_doctor(config: Config, config_path: Path | None, pool: str | None = None) -> int:
    """Print the table and a verdict; 1 if anything the kiosk needs FAILed, else 0."""
    rows = collect(config, config_path, pool)
    print(format_table(rows))
    failed = [r for r in rows if r.status == FAIL]
    warned = [r for r in rows if r.status == WARN]
    if failed:
        print(f"\n{len(failed)} problem(s) to fix, {len(warned)} warning(s): the kiosk will not work until "
              "the FAIL rows are fixed.")
        return 1
    print(f"\nall needed checks passed ({len(warned)} warning(s)).")
    return 0
