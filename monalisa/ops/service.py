"""Running under systemd: the sd_notify protocol (ready, watchdog, status) and the unit installer.

``SystemdNotifier`` speaks the protocol itself (one datagram per message to
``$NOTIFY_SOCKET``), so the kiosk needs no extra dependency; outside systemd it does nothing.
``install_service`` fills the unit template ``assets/monalisa.service`` and enables it.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from importlib import metadata, resources
from pathlib import Path

from monalisa.atomic import write_file
from monalisa.errors import MonalisaError

log = logging.getLogger(__name__)

UNIT_NAME = "monalisa.service"
LOGS_COMMAND = "journalctl --user -u monalisa -f"
SEND_TIMEOUT_S = 0.5
SYSTEMCTL_HINT = ("the usual cause is no user session bus (`sudo -u`, `su`, or ssh while the kiosk user "
                  "has no login session): run it as the kiosk user in its own session, or use "
                  "--no-enable and run the printed commands there")


class SystemdNotifier:
    """Tell systemd we are ready, alive (watchdog) and what we are doing; a no-op elsewhere."""

    def __init__(self, address: str | None = None, watchdog_usec: int | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.address = address
        self.enabled = bool(address)
        self.watchdog_interval_s = watchdog_usec / 2e6 if watchdog_usec else None
        self.clock = clock
        self._last_ping: float | None = None
        self._last_status: str | None = None
        self._failed = False
        self._sock: socket.socket | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SystemdNotifier:
        """Read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID`` (os.environ by default)."""
        env = os.environ if env is None else env
        watchdog_usec = None
        pid = env.get("WATCHDOG_PID", "")
        if env.get("WATCHDOG_USEC", "").isdigit() and (not pid or pid == str(os.getpid())):
            watchdog_usec = int(env["WATCHDOG_USEC"]) or None
        return cls(env.get("NOTIFY_SOCKET") or None, watchdog_usec)

    def ready(self) -> None:
        """Startup finished: systemd marks the unit active and starts the watchdog."""
        self._send("READY=1")

    def watchdog(self) -> None:
        """Prove we are alive; call every loop turn, it sends at most every WatchdogSec/2."""
        if self.watchdog_interval_s is None or not self.enabled:
            return
        now = self.clock()
        if self._last_ping is not None and now - self._last_ping < self.watchdog_interval_s:
            return
        self._last_ping = now
        self._send("WATCHDOG=1")

    def status(self, text: str) -> None:
        """One-line status shown by ``systemctl --user status monalisa`` (sent on change only)."""
        if text == self._last_status or not self.enabled:
            return
        self._last_status = text
        self._send("STATUS=" + text.replace("\n", " "))

    def stopping(self) -> None:
        """We are shutting down on purpose (not a crash)."""
        self._send("STOPPING=1")

    def close(self) -> None:
        """Release the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _send(self, message: str) -> None:
        """Send one datagram; a failure is logged once and never raised (the kiosk must go on)."""
        if not self.enabled:
            return
        address = self.address
        if address.startswith("@"):
            address = "\0" + address[1:]  # Linux abstract socket namespace
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.settimeout(SEND_TIMEOUT_S)  # a busy systemd must not freeze the loop
            self._sock.sendto(message.encode("utf-8"), address)
        except OSError as exc:
            if not self._failed:
                self._failed = True
                log.warning("cannot notify systemd at %s (%s); watchdog pings may be missed",
                            self.address, exc.strerror or exc)
            else:
                log.debug("sd_notify %s failed: %s", message, exc)


# ----------------------------------------------------------------------------- unit file

def template_text() -> str:
    """The unit template: package data in an installed wheel, ``assets/`` in a source checkout."""
    packaged = resources.files("monalisa").joinpath("data", UNIT_NAME)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    checkout = Path(__file__).resolve().parent.parent / "assets" / UNIT_NAME
    if checkout.is_file():
        return checkout.read_text(encoding="utf-8")
    raise MonalisaError(f"unit template {UNIT_NAME} is missing from the installation "
                        f"(looked in the package data and {checkout})")


def kiosk_command() -> list[str]:
    """How systemd should start monalisa: the installed console script, else ``python -m monalisa``."""
    beside = Path(sys.executable).parent / "monalisa"
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside.absolute())]
    found = shutil.which("monalisa")
    if found:
        return [str(Path(found).absolute())]
    try:
        metadata.distribution("monalisa")
    except metadata.PackageNotFoundError:
        raise MonalisaError("cannot find the 'monalisa' command; install the package "
                            "(pip install .) into the Python the kiosk should use") from None
    return [str(Path(sys.executable).absolute()), "-m", "monalisa"]


def _unit_quote(arg: str) -> str:
    """Quote one ExecStart argument for systemd (which expands % and $ itself)."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and all(c.isalnum() or c in "/._-:+=@,~" for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_unit(config_path: Path | None, pool: str | None, program: list[str] | None = None,
                display: str | None = None) -> str:
    """The unit file text: the template with ExecStart and DISPLAY filled in."""
    command = [*(program or kiosk_command()), "run", "--fullscreen"]
    if config_path is not None:
        command += ["--config", str(Path(config_path).expanduser().resolve())]
    if pool:
        command += ["--pool", str(Path(pool).expanduser().resolve())]
    display = display if display is not None else os.environ.get("DISPLAY") or ":0"
    text = template_text()
    for placeholder, value in (("@EXEC_START@", " ".join(_unit_quote(a) for a in command)),
                               ("@DISPLAY@", display.replace("%", "%%"))):
        if placeholder not in text:
            raise MonalisaError(f"unit template {UNIT_NAME} lacks the {placeholder} placeholder")
        text = text.replace(placeholder, value)
    return text


def unit_path() -> Path:
    """Where systemd looks for the user's own units: $XDG_CONFIG_HOME/systemd/user."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "systemd" / "user" / UNIT_NAME


def install_service(config_path: Path | None, pool: str | None, enable: bool = True,
                    dry_run: bool = False) -> int:
    """Install the kiosk as a systemd user service that starts at login and restarts on failure."""
    from monalisa.config import load_config
    from monalisa.pool.format import load_pool

    shown = pool or load_config(config_path).pool.path  # the config is checked here too
    if shown:
        load_pool(Path(shown).expanduser())  # a bad pool would only crash-loop the service
    text = render_unit(config_path, pool)
    target = unit_path()
    commands = [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "--now", "monalisa"]]
    if dry_run:
        print(f"# would write {target}:\n{text}")
        for command in commands:
            print(("# would run: " if enable else "# to run yourself later: ") + shlex.join(command))
        print(f"# logs: {LOGS_COMMAND}")
        return 0
    write_file(target, text, mode=0o644)  # MonalisaError naming the target if it fails
    print(f"wrote {target}")
    if not enable:  # the unit only: the user runs systemctl later, in a session that has a user bus
        print("to enable and start it: " + " && ".join(shlex.join(c) for c in commands))
        print(f"logs: {LOGS_COMMAND}")
        return 0
    if shutil.which("systemctl") is None:
        raise MonalisaError("systemctl not found: this system does not run systemd; start "
                            "'monalisa run --fullscreen' from the session's autostart instead")
    for command in commands:
        print("running: " + shlex.join(command))
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise MonalisaError(f"{shlex.join(command)} failed: "
                                f"{detail[-1] if detail else 'exit code ' + str(result.returncode)}"
                                f" (the unit is written; {SYSTEMCTL_HINT})")
    print("status: systemctl --user status monalisa")
    print(f"logs:   {LOGS_COMMAND}")
    return 0
