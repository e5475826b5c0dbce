"""`monalisa doctor`: the table, a fix for every failure, and the exit code."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from monalisa.config import Config
from monalisa.kiosk.webcam import CameraInfo
from monalisa.ops import checks, doctor
from monalisa.ops.doctor import FAIL, OK, WARN, Row, format_table, run_doctor
from monalisa.pool.format import PoolWriter
from monalisa.pool.geometry import Rect

WEBCAM = CameraInfo("/dev/video0", "USB Camera", 640, 480, 30.0, True)


def make_pool(directory: Path) -> Path:
    """A tiny valid 1x3 pool."""
    portrait = np.full((64, 48, 3), 120, np.uint8)
    with PoolWriter(directory, portrait, "0" * 64, Rect(8, 8, 16, 16), [-10, 0, 10], [0], "test", {}) as writer:
        for col in range(3):
            writer.add(0, col, np.full((16, 16, 3), 40 * col, np.uint8))
    return directory


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A machine with one webcam, no X, an empty HOME and cache."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.setattr(checks, "_list_cameras", lambda: [WEBCAM])
    monkeypatch.setattr(checks, "systemctl_answer", lambda verb: None)  # no user systemd to ask
    return tmp_path


def rows_named(rows, prefix):
    return [r for r in rows if r.check.startswith(prefix)]


def test_healthy_kiosk_passes_with_a_table(env, capsys):
    config = Config()
    config.pool.path = str(make_pool(env / "pool"))
    assert run_doctor(config, None) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split() == ["check", "status", "detail"]
    status_col = lines[0].index("status")
    for line in lines[2:]:
        if line and not line.lstrip().startswith("->") and not line.startswith("all needed"):
            assert line[status_col:].split()[0] in ("ok", "warn", "FAIL", "skip"), line
    assert "BlazeFace" in out and "found 1 face(s)" in out  # the real detector ran on the built-in portrait
    assert "/dev/video0 (USB Camera): 640x480 @ 30 fps, frame read" in out
    assert "1x3 grid" in out
    assert "SDL_VIDEODRIVER=dummy" in out  # the dummy driver is a warning, not a failure
    assert "all needed checks passed" in out


def test_invalid_pool_fails_with_the_reason_and_a_fix(env, quick, capsys):
    pool = make_pool(env / "pool")
    (pool / "patches" / "r00_c01.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    config = Config()
    config.pool.path = str(pool)
    assert run_doctor(config, None) == 1
    out = capsys.readouterr().out
    assert "FAIL    " in out and "r00_c01.png: not a readable image" in out
    assert "-> rebuild it (monalisa precompute PORTRAIT" in out
    assert "problem(s) to fix" in out


@pytest.fixture
def quick(monkeypatch):
    """Skip the slow checks that are not under test."""
    monkeypatch.setattr(doctor, "check_detector", lambda config: [Row("BlazeFace", OK, "faked")])
    monkeypatch.setattr(doctor, "check_packages", lambda: [Row("packages", OK, "faked")])


def test_no_camera_is_a_failure(env, quick, monkeypatch):
    monkeypatch.setattr(checks, "_list_cameras", lambda: [])
    rows = doctor.collect(Config(), None)
    (cameras,) = rows_named(rows, "cameras")
    assert cameras.status == FAIL and "video group" in cameras.fix
    (configured,) = rows_named(rows, "configured camera")
    assert configured.status == FAIL and "/dev/video0" in configured.detail


def test_configured_camera_must_be_present_and_readable(env, quick, monkeypatch):
    config = Config()
    config.camera.source = "/dev/v4l/by-id/usb-Nope-video-index0"
    (row,) = rows_named(doctor.collect(config, None), "configured camera")
    assert row.status == FAIL and "present: /dev/video0" in row.detail
    monkeypatch.setattr(checks, "_list_cameras", lambda: [CameraInfo("/dev/video0", "", 0, 0, 0.0, False)])
    config.camera.source = "0"
    rows = doctor.collect(config, None)
    assert rows_named(rows, "camera")[0].status == WARN
    (row,) = rows_named(rows, "configured camera")
    assert row.status == FAIL and "delivered no frame" in row.detail
    monkeypatch.setattr(checks, "systemctl_answer", lambda verb: "active")
    (row,) = rows_named(doctor.collect(config, None), "configured camera")
    assert row.status == WARN and "in use by the running kiosk service" in row.detail


def test_video_file_as_camera_is_a_warning_and_a_missing_one_a_failure(env, quick):
    config = Config()
    video = env / "walk.mp4"
    video.write_bytes(b"")
    config.camera.source = str(video)
    assert rows_named(doctor.collect(config, None), "configured camera")[0].status == WARN
    config.camera.source = str(env / "missing.mp4")
    assert rows_named(doctor.collect(config, None), "configured camera")[0].status == FAIL


def test_builtin_pool_not_built_yet_is_a_warning(env, quick):
    (row,) = rows_named(doctor.collect(Config(), None), "pool (built-in)")
    assert row.status == WARN and "not built yet" in row.detail and str(env / "cache") in row.detail


def test_opencv_python_beside_contrib_fails(monkeypatch):
    real = checks.metadata.version
    fake = {"opencv-python": "4.10.0.84", "numpy": "2.0.1"}
    monkeypatch.setattr(checks.metadata, "version", lambda dist: fake.get(dist) or real(dist))
    rows = {r.check: r for r in checks.check_packages()}
    assert rows["opencv conflicts"].status == FAIL
    assert "pip uninstall -y opencv-python" in rows["opencv conflicts"].fix
    assert rows["package numpy"].status == FAIL and "need numpy<2" in rows["package numpy"].detail
    assert rows["package mediapipe"].status == OK


def test_missing_mediapipe_models_fail(tmp_path, monkeypatch):
    (tmp_path / "modules" / "face_detection").mkdir(parents=True)
    (tmp_path / "modules" / "face_detection" / "face_detection_short_range.tflite").write_bytes(b"x")
    monkeypatch.setattr(checks, "mediapipe_dir", lambda: tmp_path)
    rows = checks.check_models()
    assert [r.status for r in rows] == [FAIL, FAIL]
    assert "face_detection_full_range_sparse.tflite" in rows[0].detail
    assert "face_detection_short_range.tflite" not in rows[0].detail
    assert "--force-reinstall mediapipe==0.10.21" in rows[0].fix


def test_log_file_checks(tmp_path):
    config = Config().log
    config.file = str(tmp_path / "new" / "kiosk.log")
    assert doctor.check_log_file(config)[0].status == OK
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    config.file = str(blocker / "kiosk.log")
    assert doctor.check_log_file(config)[0].status == FAIL


def test_invalid_config_file_fails(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text("[camera]\nfps = \"fast\"\n")
    (row,) = doctor.check_config(path)
    assert row.status == FAIL and "[camera] fps must be an integer" in row.detail


def test_a_crashing_check_is_a_row_and_the_rest_still_run(env, quick, monkeypatch):
    def broken(config):
        raise RuntimeError("boom")

    monkeypatch.setattr(doctor, "check_display", broken)
    rows = doctor.collect(Config(), None)
    (row,) = rows_named(rows, "display")
    assert row.status == FAIL and "RuntimeError: boom" in row.detail
    assert rows_named(rows, "pool")  # later checks ran


def test_service_row_sees_the_installed_unit(env, monkeypatch):
    from monalisa.ops.service import render_unit

    monkeypatch.setattr(doctor, "systemctl_state", lambda: ", enabled, active")
    assert doctor.check_service()[0].status == WARN
    unit = env / "home" / ".config" / "systemd" / "user" / "monalisa.service"
    unit.parent.mkdir(parents=True)
    unit.write_text(render_unit(None, None, program=[sys.executable, "-m", "monalisa"], display=":0"))
    (row,) = doctor.check_service()
    assert row.status == OK and "enabled, active" in row.detail
    unit.write_text(render_unit(None, None, program=["/old/venv/bin/monalisa"], display=":0"))
    (row,) = doctor.check_service()
    assert row.status == FAIL and "/old/venv/bin/monalisa does not exist" in row.detail
    assert "install-service" in row.fix


def test_table_puts_fixes_under_their_rows():
    text = format_table([Row("a", OK, "fine"), Row("longer name", FAIL, "broken", "do this")])
    lines = text.splitlines()
    assert lines[2].startswith("a            ok      fine")
    assert lines[3].startswith("longer name  FAIL    broken")
    assert lines[4].strip() == "-> do this" and lines[4].index("->") == lines[3].index("broken")


def test_doctor_through_the_cli(env, quick, capsys, monkeypatch):
    from monalisa.cli import main

    monkeypatch.setattr(checks, "_list_cameras", lambda: [])
    assert main(["doctor"]) == 1
    assert "no video devices found" in capsys.readouterr().out


def test_manifest_json_garbage_fails(env, quick):
    pool = make_pool(env / "pool")
    (pool / "manifest.json").write_text(json.dumps({"format": "monalisa-pool/1"}))
    config = Config()
    config.pool.path = str(pool)
    (row,) = rows_named(doctor.collect(config, None), "pool")
    assert row.status == FAIL and "missing 'portrait'" in row.detail


def test_pool_row_checks_the_doctors_own_pool_flag(env, quick):
    pool = make_pool(env / "given")
    (row,) = rows_named(doctor.collect(Config(), None, pool=str(pool)), "pool")
    assert row.status == OK and str(pool) in row.detail and "(--pool)" in row.detail
    (row,) = rows_named(doctor.collect(Config(), None, pool=str(env / "missing")), "pool")
    assert row.status == FAIL and "fix --pool" in row.fix


def test_pool_row_also_checks_the_installed_services_pool(env, quick):
    from monalisa.ops.service import render_unit

    unit = env / "home" / ".config" / "systemd" / "user" / "monalisa.service"
    unit.parent.mkdir(parents=True)
    good = make_pool(env / "good")
    config = Config()
    config.pool.path = str(good)
    unit.write_text(render_unit(None, str(env / "gone 100%"), program=[sys.executable], display=":0"))
    rows = doctor.collect(config, None)
    assert rows_named(rows, "pool")[0].status == OK
    (service_row,) = rows_named(rows, "pool (service)")
    assert service_row.status == FAIL and str(env / "gone 100%") in service_row.detail
    assert "installed unit's ExecStart" in service_row.detail
    unit.write_text(render_unit(None, str(good), program=[sys.executable], display=":0"))
    assert not rows_named(doctor.collect(config, None), "pool (service)")  # same pool: one row


def test_service_config_names_the_pool_it_shows(env, quick):
    from monalisa.ops.service import render_unit

    unit = env / "home" / ".config" / "systemd" / "user" / "monalisa.service"
    unit.parent.mkdir(parents=True)
    kiosk = env / "kiosk"
    make_pool(kiosk / "pools" / "mona")
    (kiosk / "config.toml").write_text('[pool]\npath = "pools/mona"\n')  # relative to the file
    unit.write_text(render_unit(kiosk / "config.toml", None, program=[sys.executable], display=":0"))
    (row,) = rows_named(doctor.collect(Config(), None), "pool (service)")
    assert row.status == OK and str(kiosk / "pools" / "mona") in row.detail
    (kiosk / "config.toml").write_text("[pool]\npath = 5\n")
    (row,) = rows_named(doctor.collect(Config(), None), "pool (service)")
    assert row.status == FAIL and "[pool] path" in row.detail


def test_log_file_under_proc_fails_even_for_root():
    config = Config().log
    config.file = "/proc/monalisa-nope/kiosk.log"  # os.access says yes for root, mkdir says no
    assert doctor.check_log_file(config)[0].status == FAIL


def test_blanking_names_xset_when_only_xset_is_missing(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(checks.shutil, "which", lambda name: None)
    (row,) = checks.check_blanking()
    assert "xset is not installed" in row.detail and "DISPLAY" not in row.detail
    assert "x11-xserver-utils" in row.fix
