"""systemd integration: the sd_notify datagrams, watchdog rate limit, and the unit installer."""

import configparser
import logging
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from monalisa.errors import MonalisaError
from monalisa.ops import service
from monalisa.ops.service import SystemdNotifier, install_service, render_unit


@pytest.fixture
def notify_socket(tmp_path):
    """A bound AF_UNIX datagram socket standing in for systemd's notify socket."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    yield str(path), sock
    sock.close()


def received(sock) -> list[str]:
    """Every datagram waiting on the socket, decoded."""
    messages = []
    sock.setblocking(False)
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            break
    sock.settimeout(2.0)
    return messages


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_ready_status_watchdog_stopping_reach_the_socket(notify_socket):
    path, sock = notify_socket
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000"})
    notifier.ready()
    notifier.status("camera ok")
    notifier.watchdog()
    notifier.stopping()
    notifier.close()
    assert received(sock) == ["READY=1", "STATUS=camera ok", "WATCHDOG=1", "STOPPING=1"]


def test_abstract_socket_address_starting_with_at():
    name = f"monalisa-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": "@" + name})
        notifier.ready()
        assert sock.recv(100) == b"READY=1"
    finally:
        sock.close()


def test_watchdog_is_rate_limited_to_half_the_timeout(notify_socket):
    path, sock = notify_socket
    clock = FakeClock()
    notifier = SystemdNotifier(path, watchdog_usec=10_000_000, clock=clock)  # WatchdogSec=10: every 5 s
    sent_at = []
    for t in [0, 0.1, 1, 4.9, 5.0, 5.1, 9.9, 10.0, 20.0]:
        clock.now = 100.0 + t
        notifier.watchdog()
        sent_at += [t] * len(received(sock))
    assert sent_at == [0, 5.0, 10.0, 20.0]


def test_watchdog_needs_watchdog_usec_and_our_pid(notify_socket):
    path, sock = notify_socket
    SystemdNotifier.from_env({"NOTIFY_SOCKET": path}).watchdog()
    SystemdNotifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000",
                              "WATCHDOG_PID": str(os.getpid() + 1)}).watchdog()
    assert received(sock) == []
    SystemdNotifier.from_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000",
                              "WATCHDOG_PID": str(os.getpid())}).watchdog()
    assert received(sock) == ["WATCHDOG=1"]


def test_status_is_sent_only_when_it_changes(notify_socket):
    path, sock = notify_socket
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": path})
    for text in ["camera ok", "camera ok", "camera lost\nretrying", "camera ok"]:
        notifier.status(text)
    assert received(sock) == ["STATUS=camera ok", "STATUS=camera lost retrying", "STATUS=camera ok"]


def test_without_notify_socket_everything_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SystemdNotifier.from_env()
    assert not notifier.enabled
    notifier.ready()
    notifier.watchdog()
    notifier.status("x")
    notifier.stopping()
    notifier.close()
    assert notifier._sock is None  # never even opened a socket


def test_send_errors_are_logged_once_and_never_raised(tmp_path, caplog):
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone.sock"), "WATCHDOG_USEC": "2"})
    with caplog.at_level(logging.DEBUG, logger="monalisa.ops.service"):
        notifier.ready()
        notifier.watchdog()
        notifier.status("x")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot notify systemd" in warnings[0].getMessage()


# ----------------------------------------------------------------------------- unit file

def parse_unit(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str
    parser.read_string(text)
    return parser


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A temporary HOME and XDG_CONFIG_HOME, and a fixed kiosk command."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    monkeypatch.setenv("DISPLAY", ":1")
    monkeypatch.setattr(service, "kiosk_command", lambda: ["/opt/kiosk venv/bin/monalisa"])
    return tmp_path / "home"


def test_template_ships_both_placeholders_and_the_restart_policy():
    text = service.template_text()
    assert text.count("@EXEC_START@") == 1 and text.count("@DISPLAY@") == 1  # only on their lines
    rendered = render_unit(None, None, program=["/usr/bin/monalisa"], display=":0")
    assert "@" not in rendered.replace("%h", "")
    unit = parse_unit(text)
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"
    assert unit["Service"]["Type"] == "notify"
    assert unit["Service"]["Restart"] == "always"


def tiny_pool(path):
    import numpy as np

    from monalisa.pool.format import PoolWriter
    from monalisa.pool.geometry import Rect

    with PoolWriter(path, np.zeros((32, 32, 3), np.uint8), "0" * 64, Rect(4, 4, 8, 8), [0], [0], "test", {}) as w:
        w.add(0, 0, np.zeros((8, 8, 3), np.uint8))
    return path


def test_a_pool_that_does_not_load_is_refused_before_writing(home, tmp_path):
    from monalisa.errors import PoolError

    with pytest.raises(PoolError, match="no such pool directory"):
        install_service(None, str(tmp_path / "nope"), dry_run=False)
    assert not (home / ".config").exists()


def test_dry_run_prints_the_unit_and_writes_nothing(home, tmp_path, capsys):
    config = tmp_path / "kiosk.toml"
    config.write_text("")
    tiny_pool(tmp_path / "pool")
    assert install_service(config, str(tmp_path / "pool"), dry_run=True) == 0
    out = capsys.readouterr().out
    assert "systemctl --user daemon-reload" in out and "systemctl --user enable --now monalisa" in out
    assert "journalctl --user -u monalisa -f" in out
    unit = parse_unit(out.split(":\n", 1)[1].split("# would run")[0])
    svc = unit["Service"]
    assert svc["Type"] == "notify" and svc["Restart"] == "always" and svc["RestartSec"] == "2"
    assert int(svc["WatchdogSec"]) >= 10
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"
    assert svc["ExecStart"] == (f'"/opt/kiosk venv/bin/monalisa" run --fullscreen --config {config} '
                                f'--pool {tmp_path / "pool"}')
    assert "\nEnvironment=DISPLAY=:1\n" in out
    assert unit["Install"]["WantedBy"] == "default.target"
    assert not (home / ".config").exists()


def test_install_writes_atomically_then_reports_missing_systemctl(home, monkeypatch):
    target = home / ".config" / "systemd" / "user" / "monalisa.service"
    target.parent.mkdir(parents=True)
    target.write_text("old unit")
    monkeypatch.setattr(service.shutil, "which", lambda name: None)
    with pytest.raises(MonalisaError, match="systemctl not found"):
        install_service(None, None)
    text = target.read_text()
    assert "ExecStart=\"/opt/kiosk venv/bin/monalisa\" run --fullscreen\n" in text
    assert "Environment=DISPLAY=:1" in text
    assert sorted(p.name for p in target.parent.iterdir()) == ["monalisa.service"]  # no temp files left


def test_failed_write_keeps_the_old_unit_and_leaves_no_temp_file(home, monkeypatch):
    target = home / ".config" / "systemd" / "user" / "monalisa.service"
    target.parent.mkdir(parents=True)
    target.write_text("old unit")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(service.os, "replace", broken_replace)
    with pytest.raises(MonalisaError, match="No space left"):
        install_service(None, None)
    assert target.read_text() == "old unit"
    assert sorted(p.name for p in target.parent.iterdir()) == ["monalisa.service"]


def test_install_runs_daemon_reload_and_enable(home, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(service.shutil, "which", lambda name: "/usr/bin/systemctl")
    monkeypatch.setattr(service.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or
                        subprocess.CompletedProcess(cmd, 0, "", ""))
    assert install_service(None, None) == 0
    assert calls == [["systemctl", "--user", "daemon-reload"],
                     ["systemctl", "--user", "enable", "--now", "monalisa"]]
    assert "journalctl --user -u monalisa -f" in capsys.readouterr().out


def test_systemctl_failure_is_one_clear_error_with_the_usual_cause(home, monkeypatch):
    monkeypatch.setattr(service.shutil, "which", lambda name: "/usr/bin/systemctl")
    monkeypatch.setattr(service.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 1, "", "Failed to connect to bus: No medium found\n"))
    with pytest.raises(MonalisaError, match="daemon-reload failed: Failed to connect to bus") as info:
        install_service(None, None)
    assert "no user session bus" in str(info.value) and "sudo -u" in str(info.value)
    assert "\n" not in str(info.value)


def test_no_enable_writes_the_unit_only_and_prints_the_commands(home, monkeypatch, capsys):
    def no_systemctl(cmd, **kw):
        raise AssertionError(f"--no-enable ran {cmd}")

    monkeypatch.setattr(service.subprocess, "run", no_systemctl)
    monkeypatch.setattr(service.shutil, "which", lambda name: None)  # works even without systemd
    assert install_service(None, None, enable=False) == 0
    assert (home / ".config" / "systemd" / "user" / "monalisa.service").is_file()
    out = capsys.readouterr().out
    assert "systemctl --user daemon-reload && systemctl --user enable --now monalisa" in out


def test_percent_and_dollar_are_escaped_for_systemd():
    text = render_unit(Path("/srv/100%/$HOME.toml"), None, program=["/usr/bin/monalisa"], display=":0")
    assert 'ExecStart=/usr/bin/monalisa run --fullscreen --config "/srv/100%%/$$HOME.toml"' in text


def test_cli_dry_run_goes_through_the_real_entry_point(home, capsys):
    from monalisa.cli import main

    assert main(["install-service", "--dry-run"]) == 0
    assert "ExecStart=" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_rendered_unit_passes_systemd_analyze_verify(tmp_path):
    unit = tmp_path / "monalisa.service"
    unit.write_text(render_unit(tmp_path / "config.toml", None, program=[sys.executable, "-m", "monalisa"]))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_the_real_kiosk_loop_notifies_systemd(notify_socket, tmp_path, monkeypatch):
    """ready, status on camera change, watchdog pings while the camera is missing, stopping."""
    import numpy as np

    from monalisa.cli import main
    from monalisa.pool.format import PoolWriter
    from monalisa.pool.geometry import Rect

    pool = tmp_path / "pool"
    with PoolWriter(pool, np.zeros((32, 32, 3), np.uint8), "0" * 64, Rect(4, 4, 8, 8), [0], [0], "test", {}) as w:
        w.add(0, 0, np.zeros((8, 8, 3), np.uint8))
    path, sock = notify_socket
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")  # ping every 0.5 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert main(["run", "--headless", "--max-seconds", "2", "--camera", "7", "--pool", str(pool)]) == 0
    messages = received(sock)
    assert messages[0] == "READY=1" and messages[-1] == "STOPPING=1"
    assert any(m.startswith("STATUS=camera") for m in messages)
    assert 3 <= messages.count("WATCHDOG=1") <= 6


def test_a_full_notify_queue_costs_at_most_the_send_timeout(notify_socket, caplog):
    """systemd not reading its socket must not freeze the kiosk loop."""
    import time

    path, sock = notify_socket
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": path})
    with caplog.at_level(logging.WARNING, logger="monalisa.ops.service"):
        slowest = 0.0
        for i in range(5000):
            start = time.monotonic()
            notifier.status(f"message {i}")  # nobody reads: the queue fills up
            slowest = max(slowest, time.monotonic() - start)
            if caplog.records:
                break
    assert caplog.records and "cannot notify systemd" in caplog.records[0].getMessage()
    assert slowest < service.SEND_TIMEOUT_S + 0.5
