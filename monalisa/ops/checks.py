"""The machine checks of `monalisa doctor`: Python, packages, models, detector, cameras, display.

Each returns rows of the doctor's table (``Row``); `monalisa.ops.doctor` adds the install checks
(config, pool, log file, service) and runs them all.
"""


import importlib
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from monalisa.config import CameraConfig, DetectorConfig, RenderConfig
from monalisa.errors import MonalisaError

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
    """The webcam device scan (its own function so tests can replace it)."""
    from monalisa.kiosk.webcam import list_cameras

    return list_cameras()


def check_cameras(config: CameraConfig) -> list[Row]:
    """Every video device found, and whether the configured source is among them."""
    from monalisa.kiosk.camera import parse_camera_target
    from monalisa.kiosk.webcam import device_node

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
    elif not match[0].readable and systemctl_answer("is-active") == "active":
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


def systemctl_state() -> str:
    """', enabled, active' as systemctl reports it, or '' when there is no user manager to ask."""
    words = [systemctl_answer(verb) for verb in ("is-enabled", "is-active")]
    return "" if None in words else ", " + ", ".join(words)


def systemctl_answer(verb: str) -> str | None:
    """`systemctl --user VERB monalisa` as one state word, or None if systemd cannot be asked."""
    if shutil.which("systemctl") is None:
        return None
    try:
        result = subprocess.run(["systemctl", "--user", verb, "monalisa"], capture_output=True, text=True, timeout=5)
    except subprocess.TimeoutExpired:
        return None
    answer = result.stdout.strip()
    return answer if answer and " " not in answer else None  # no user bus: an error sentence, not a state
