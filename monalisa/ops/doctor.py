"""`monalisa doctor`: check everything a gallery kiosk needs and say how to fix what is missing.

Each check gives one or more rows: ``ok``, ``warn`` (works, but worth a look), ``FAIL``
(the kiosk will not work) or ``skip``. The exit code is 1 when anything FAILs. A kiosk
needs a camera and a display: both missing is a FAIL. The SDL dummy video driver
(``SDL_VIDEODRIVER=dummy``) means a headless run is intended, so it is only a warning.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from monalisa.config import CameraConfig, Config, DetectorConfig, LogConfig, PoolConfig, RenderConfig
from monalisa.errors import MonalisaError
from monalisa.pool.builtin import choose_pool

log = logging.getLogger(__name__)

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
PYTHON = (3, 11)
MEDIAPIPE = "0.10.21"
# Files inside the mediapipe package the legacy solutions load at run time.
MEDIAPIPE_MODELS = {
    "face detection": [
        "modules/face_detection/face_detection_short_range.tflite",
        "modules/face_detection/face_detection_short_range_cpu.binarypb",
        "modules/face_detection/face_detection_full_range_sparse.tflite",
        "modules/face_detection/face_detection_full_range_cpu.binarypb",
    ],
    "face mesh + iris": [
        "modules/face_landmark/face_landmark_front_cpu.binarypb",
        "modules/face_landmark/face_landmark.tflite",
        "modules/face_landmark/face_landmark_with_attention.tflite",
        "modules/iris_landmark/iris_landmark.tflite",
    ],
}
# Other wheels that also install a `cv2` module and fight with opencv-contrib-python.
OPENCV_RIVALS = ("opencv-python", "opencv-python-headless", "opencv-contrib-python-headless")


@dataclass
class Row:
    """One line of the doctor's table."""

    check: str
    status: str
    detail: str
    fix: str = ""


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


def check_python() -> list[Row]:
    """The interpreter is the version the pinned wheels are tested with."""
    version = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info[:2] == PYTHON:
        return [Row("python", OK, f"{version} ({sys.executable})")]
    return [Row("python", FAIL, f"{version}; monalisa needs {PYTHON[0]}.{PYTHON[1]}",
                "create the venv with python3.11 -m venv .venv and reinstall")]


def _version_tuple(text: str) -> tuple[int, ...]:
    """'4.11.0.86' -> (4, 11, 0, 86); stops at the first non-numeric part."""
    parts = []
    for part in text.split("."):
        match = re.match(r"\d+", part)
        if not match:
            break
        parts.append(int(match.group()))
    return tuple(parts)


def _package_row(dist: str, module: str, want: str, ok: Callable[[tuple[int, ...]], bool]) -> Row:
    """Is distribution ``dist`` installed in a wanted version and is ``module`` importable?"""
    name = f"package {dist}"
    fix = f"pip install '{dist}{want}'"
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        return Row(name, FAIL, "not installed", fix)
    if not ok(_version_tuple(version)):
        return Row(name, FAIL, f"{version} installed, need {dist}{want}", fix)
    try:
        importlib.import_module(module)
    except ImportError as exc:
        return Row(name, FAIL, f"{version} installed but `import {module}` fails: {exc}",
                   f"pip install --force-reinstall '{dist}{want}'")
    return Row(name, OK, version)


def check_packages() -> list[Row]:
    """The pinned dependencies, and no second OpenCV wheel beside opencv-contrib-python."""
    rows = [
        _package_row("numpy", "numpy", "<2", lambda v: v < (2,)),
        _package_row("opencv-contrib-python", "cv2", ">=4.8,<5", lambda v: (4, 8) <= v < (5,)),
        _package_row("mediapipe", "mediapipe", f"=={MEDIAPIPE}", lambda v: v == _version_tuple(MEDIAPIPE)),
        _package_row("pygame", "pygame", ">=2.6,<3", lambda v: (2, 6) <= v < (3,)),
        _package_row("platformdirs", "platformdirs", ">=3", lambda v: v >= (3,)),
        _package_row("psutil", "psutil", ">=5.9", lambda v: v >= (5, 9)),
    ]
    rivals = []
    for dist in OPENCV_RIVALS:
        try:
            rivals.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            continue
    if rivals:
        rows.append(Row("opencv conflicts", FAIL,
                        f"{', '.join(rivals)} installed beside opencv-contrib-python (both provide cv2)",
                        "pip uninstall -y " + " ".join(r.split()[0] for r in rivals)
                        + " && pip install --force-reinstall opencv-contrib-python"))
    else:
        rows.append(Row("opencv conflicts", OK, "only opencv-contrib-python provides cv2"))
    return rows


def mediapipe_dir() -> Path | None:
    """The installed mediapipe package directory (found without importing it)."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def check_models() -> list[Row]:
    """MediaPipe's bundled model files are present (a broken install can lack them)."""
    root = mediapipe_dir()
    if root is None:
        return [Row("mediapipe models", FAIL, "mediapipe is not installed", f"pip install mediapipe=={MEDIAPIPE}")]
    rows = []
    for group, files in MEDIAPIPE_MODELS.items():
        missing = [f for f in files if not (root / f).is_file()]
        if missing:
            rows.append(Row(f"models: {group}", FAIL, "missing " + ", ".join(Path(f).name for f in missing),
                            f"pip install --force-reinstall mediapipe=={MEDIAPIPE}"))
        else:
            rows.append(Row(f"models: {group}", OK, f"{len(files)} model files in {root / 'modules'}"))
    return rows


def _test_image() -> tuple[np.ndarray, bool]:
    """The built-in portrait (a real face) when available, else a generated gradient; (image, has_face)."""
    from monalisa.images import read_image
    from monalisa.pool.builtin import builtin_portrait_path

    try:
        return read_image(builtin_portrait_path()), True
    except MonalisaError:
        ramp = np.linspace(0, 255, 640, dtype=np.float32)
        image = np.repeat(np.repeat(ramp[None, :, None], 480, axis=0), 3, axis=2)
        return image.astype(np.uint8), False


def check_detector(config: DetectorConfig) -> list[Row]:
    """BlazeFace loads and runs (and finds the face in the built-in portrait)."""
    from monalisa.kiosk.detector import BlazeFaceDetector

    image, has_face = _test_image()
    name = f"BlazeFace ({config.model} range)"
    with BlazeFaceDetector(config) as detector:
        detector.detect(image)  # warm: the timed call below is a steady-state one
        start = time.perf_counter()
        faces = detector.detect(image)
        ms = (time.perf_counter() - start) * 1000
    if has_face and not faces:
        return [Row(name, WARN, f"runs ({ms:.0f} ms) but found no face in the built-in portrait",
                    f"check [detector] min_score ({config.min_score}); reinstall mediapipe=={MEDIAPIPE}")]
    what = f"found {len(faces)} face(s) in the built-in portrait" if has_face else "ran on a generated image"
    return [Row(name, OK, f"{what}, {ms:.0f} ms per frame")]


def _list_cameras():
    """The camera engineer's device scan (a function of its own so tests can replace it)."""
    from monalisa.kiosk.camera import list_cameras

    return list_cameras()


def check_cameras(config: CameraConfig) -> list[Row]:
    """Every video device found, and whether the configured source is among them."""
    from monalisa.kiosk.camera import device_node, parse_camera_target

    cameras = _list_cameras()
    rows = []
    for cam in cameras:
        mode = f"{cam.width}x{cam.height} @ {cam.fps:g} fps" if cam.width else "no mode reported"
        label = f"{cam.path} ({cam.name})" if cam.name else cam.path
        if cam.readable:
            rows.append(Row("camera", OK, f"{label}: {mode}, frame read"))
        else:
            rows.append(Row("camera", WARN, f"{label}: {mode}, no frame read (busy, or a metadata node)",
                            "if this is the kiosk camera: stop what uses it (systemctl --user stop monalisa)"))
    target = parse_camera_target(config.source)
    add_user = "check `ls -l /dev/video*` and that this user is in the video group (sudo usermod -aG video $USER)"
    if target is None:
        path = Path(config.source).expanduser()
        if path.is_file():
            rows.append(Row("configured camera", WARN, f"[camera] source is a video file: {path}",
                            "fine for testing; a gallery needs a camera (set [camera] source = \"0\" "
                            "or a /dev/v4l/by-id/... path)"))
        else:
            rows.append(Row("configured camera", FAIL, f"[camera] source {config.source!r}: no such video file",
                            "set [camera] source to a camera index, /dev/v4l/by-id/... path or a video file"))
        return rows
    if not cameras:
        rows.append(Row("cameras", FAIL, "no video devices found (/dev/video*)", "plug in a USB camera; " + add_user))
    node = device_node(target)
    match = [c for c in cameras if os.path.realpath(c.path) == os.path.realpath(node)]
    described = f"[camera] source {config.source!r} ({node})"
    if not match:
        known = ", ".join(c.path for c in cameras) or "none"
        rows.append(Row("configured camera", FAIL, f"{described} not found; present: {known}",
                        "set [camera] source to a present device; prefer the stable /dev/v4l/by-id/... path"))
    elif not match[0].readable and _systemctl_answer("is-active") == "active":
        rows.append(Row("configured camera", WARN, f"{described} is in use by the running kiosk service",
                        "to test it here: systemctl --user stop monalisa, run the doctor, then start it again"))
    elif not match[0].readable:
        rows.append(Row("configured camera", FAIL, f"{described} present but delivered no frame",
                        "stop other programs using it (systemctl --user stop monalisa), replug it; " + add_user))
    else:
        advice = "" if str(config.source).startswith("/dev/v4l/by-id/") else \
            "tip: a /dev/v4l/by-id/... path survives replugging and reboots (ls /dev/v4l/by-id)"
        rows.append(Row("configured camera", OK, f"{described} delivers frames", advice))
    return rows


def check_display(config: RenderConfig) -> list[Row]:
    """pygame can open the display the kiosk is configured for."""
    import pygame

    try:
        pygame.display.init()
    except pygame.error as exc:
        return [Row("display", FAIL, f"no display: {exc}",
                    "run in the kiosk's desktop session, or set DISPLAY=:0 (over ssh: export DISPLAY=:0)")]
    try:
        driver = pygame.display.get_driver()
        count = pygame.display.get_num_displays()
        sizes = pygame.display.get_desktop_sizes()
    finally:
        pygame.display.quit()
    listed = ", ".join(f"{w}x{h}" for w, h in sizes) or "none"
    if driver in ("dummy", "offscreen"):
        if os.environ.get("SDL_VIDEODRIVER") == driver:
            return [Row("display", WARN, f"SDL_VIDEODRIVER={driver}: no real screen (only headless runs)",
                        "unset SDL_VIDEODRIVER and run in the kiosk's desktop session to check the real screen")]
        return [Row("display", FAIL, f"no display: SDL fell back to its '{driver}' driver (DISPLAY unset?)",
                    "run in the kiosk's desktop session, or set DISPLAY=:0 (over ssh: export DISPLAY=:0)")]
    if count == 0:
        return [Row("display", FAIL, f"driver {driver}: no displays", "connect and switch on the screen")]
    if config.display >= count:
        return [Row("display", FAIL, f"[render] display = {config.display}, but only {count} display(s): {listed}",
                    f"set [render] display to 0..{count - 1}")]
    return [Row("display", OK, f"driver {driver}: {count} display(s): {listed}; using {config.display}")]


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
    state = _systemctl_state()
    return [Row("service", OK, f"installed at {path}{state}; logs: {LOGS_COMMAND}")]


def _systemctl_state() -> str:
    """', enabled, active' as systemctl reports it, or '' when there is no user manager to ask."""
    words = [_systemctl_answer(verb) for verb in ("is-enabled", "is-active")]
    return "" if None in words else ", " + ", ".join(words)


def _systemctl_answer(verb: str) -> str | None:
    """`systemctl --user VERB monalisa` as one state word, or None if systemd cannot be asked."""
    if shutil.which("systemctl") is None:
        return None
    try:
        result = subprocess.run(["systemctl", "--user", verb, "monalisa"], capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return None
    answer = result.stdout.strip()
    return answer if answer and " " not in answer else None  # no user bus: an error sentence, not a state


def check_blanking() -> list[Row]:
    """The screen will not blank or power down after a few idle minutes (no keyboard in a gallery)."""
    fix = "xset s off -dpms s noblank (autostart it; see docs/operations.md)"
    if os.environ.get("DISPLAY") and not shutil.which("xset"):
        return [Row("screen blanking", SKIP, "xset is not installed, so the X screen saver cannot be checked",
                    "apt-get install x11-xserver-utils")]
    if os.environ.get("DISPLAY"):
        result = subprocess.run(["xset", "q"], capture_output=True, text=True, timeout=5)
        if result.returncode != 0:
            return [Row("screen blanking", SKIP, f"xset q failed: {result.stderr.strip()[:80]}")]
        saver = re.search(r"timeout:\s*(\d+)", result.stdout)
        dpms = "DPMS is Enabled" in result.stdout
        problems = ([f"screen saver after {saver.group(1)} s"] if saver and saver.group(1) != "0" else []) + \
                   (["DPMS power saving on"] if dpms else [])
        if problems:
            return [Row("screen blanking", WARN, "; ".join(problems), fix)]
        return [Row("screen blanking", OK, "X screen saver and DPMS off")]
    blank = Path("/sys/module/kernel/parameters/consoleblank")
    if not os.environ.get("DISPLAY") and blank.is_file():
        seconds = blank.read_text().strip()
        if seconds not in ("", "0"):
            return [Row("screen blanking", WARN, f"the console blanks after {seconds} s",
                        "add consoleblank=0 to the kernel command line (see docs/operations.md)")]
        return [Row("screen blanking", OK, "console blanking off")]
    return [Row("screen blanking", SKIP, "no X display to ask (DISPLAY unset)")]


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
