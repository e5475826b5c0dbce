"""The `monalisa` command: argument parsing and dispatch only; the work lives in the modules."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from monalisa.cliargs import Parser, csv_floats, finite_float, positive_float, positive_int
from monalisa.errors import MonalisaError, UsageError

CONFIG_ENV = "MONALISA_CONFIG"


def _command(sub, name: str, summary: str, description: str, parents=()) -> argparse.ArgumentParser:
    return sub.add_parser(name, parents=list(parents), help=summary, description=description)


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand and flag; config keys they override are named in their help."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, metavar="FILE",
                        help=f"config file (default: ${CONFIG_ENV}, else ~/.config/monalisa/config.toml if present)")
    common.add_argument("-v", "--verbose", action="store_true", help="log debug details")

    parser = Parser(prog="monalisa", description="A portrait whose eyes follow the person looking at it.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")

    run = _command(sub, "run", "start the kiosk", "Watch the room through the camera and show the frame "
                   "of the pool that looks at the viewer.", [common])
    _camera_flags(run)
    run.add_argument("--pool", metavar="DIR", help="pool directory (default: [pool] path, else the built-in portrait)")
    screen = run.add_mutually_exclusive_group()
    screen.add_argument("--fullscreen", action="store_true", default=None, help="fullscreen, cursor hidden")
    screen.add_argument("--windowed", dest="fullscreen", action="store_false",
        help="a window, even if the config says fullscreen")
    run.add_argument("--display", type=int, metavar="N", help="display (screen) number")
    run.add_argument("--mapping", choices=("geometric", "linear"),
                     help="geometric: eye contact (default); linear: camera x picks the column")
    run.add_argument("--debug", action="store_true", default=None, help="start with the debug overlay (key d)")
    run.add_argument("--headless", action="store_true", help="no window (SDL dummy driver), for tests and servers")
    run.add_argument("--max-seconds", type=positive_float, metavar="S", help="stop after S seconds")
    run.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N camera frames")
    run.add_argument("--trace", type=Path, metavar="FILE", help="write one JSON line per processed camera frame")

    bench = _command(sub, "bench", "measure the loop's latency on a video",
                     "Run the kiosk loop on a video as fast as it goes, headless and in a real window; "
                     "print per-stage latency percentiles and throughput.", [common])
    bench.add_argument("--camera", metavar="FILE", help="video file (default: a generated one of a face walking)")
    bench.add_argument("--pool", metavar="DIR", help="pool directory (default: [pool] path, else built-in)")
    bench.add_argument("--frames", type=positive_int, metavar="N", help="process at most N frames")
    bench.add_argument("--headless", action="store_true",
                       help="measure off-screen only (default: also in a real window, on $DISPLAY or Xvfb)")

    preview = _command(sub, "preview", "show a pool, driven by the mouse",
                       "The kiosk's renderer with the mouse in place of the viewer: move it across the "
                       "portrait to see every frame. q or Esc quits.", [common])
    preview.add_argument("pool", metavar="POOL", help="pool directory")
    preview.add_argument("--fullscreen", action="store_true", default=None, help="fullscreen")
    preview.add_argument("--headless", action="store_true", help=argparse.SUPPRESS)
    preview.add_argument("--max-seconds", type=positive_float, help=argparse.SUPPRESS)

    pre = _command(sub, "precompute", "make a pool from a portrait",
                   "Turn a portrait's gaze toward a grid of directions and write the frame pool, "
                   "atomically, with a contact sheet.", [common])
    pre.add_argument("portrait", type=Path, metavar="PORTRAIT", help="image file (JPEG, PNG, ...)")
    pre.add_argument("--out", type=Path, required=True, metavar="DIR", help="pool directory to write")
    pre.add_argument("--engine", choices=("warp", "fomm"), default="warp",
                     help="warp: warp the painting itself, no weights (default); fomm: the original method")
    pre.add_argument("--yaw-steps", type=int, default=33, metavar="N", help="columns, left to right (default 33)")
    pre.add_argument("--pitch-steps", type=int, default=1, metavar="N", help="rows, top to bottom (default 1)")
    pre.add_argument("--max-yaw", type=finite_float, default=30.0, metavar="DEG",
        help="degrees to each side (default 30)")
    pre.add_argument("--max-pitch", type=finite_float, default=15.0, metavar="DEG",
        help="degrees up and down (default 15)")
    pre.add_argument("--faces", default="all", help="all (default), largest, or the N largest")
    pre.add_argument("--eyes", type=csv_floats, action="append", default=[], metavar="LX,LY,RX,RY[,R]",
                     help="eye centres in pixels (and iris radius), one set per face, repeated for each face; "
                     "they replace FaceMesh detection for the whole portrait (not only when no face is "
                     "found) and cannot be combined with --faces")
    pre.add_argument("--iris-radius", type=positive_float, metavar="PX",
                     help="iris radius in pixels for every eye, keeping everything else detected (or, with "
                     "--eyes, for the sets that give no R)")
    pre.add_argument("--head-follow", type=finite_float, metavar="F",
        help="share of a small gaze change the head takes ([warp] head_follow)")
    pre.add_argument("--checkpoint", type=Path, metavar="FILE", help="FOMM checkpoint, e.g. vox-cpk.pth.tar")
    pre.add_argument("--driving", type=Path, metavar="VIDEO", help="gaze video from `monalisa record`")
    pre.add_argument("--runtime", choices=("onnxruntime", "torch"), help="FOMM runtime ([fomm] runtime)")
    pre.add_argument("--no-sheet", action="store_true", help="skip the contact sheet")
    pre.add_argument("--no-blinks", action="store_true", help="skip the blink stages")
    pre.add_argument("--blink-stages", type=csv_floats, default=(0.5, 1.0), metavar="C,C",
                     help="lid closures of the blink stages, 0 open to 1 shut (default 0.5,1)")
    pre.add_argument("--idle", choices=("painted", "straight"), default="painted",
                     help="the frame the idle kiosk rests on: the painting's own gaze (default) or the one "
                     "looking straight out of the picture")

    eyes = _command(sub, "eyes", "pick the eye centres on a portrait",
                    "Open the portrait in a window and click each eye's centre (drag to adjust, wheel or [ ] "
                    "for the iris radius, Ctrl+wheel or +/- to zoom, right-drag to pan, Tab for the next "
                    "face); it shows the eye openings and irises precompute will use. Enter prints the "
                    "--eyes arguments (or builds the pool with --out); Esc saves nothing.", [common])
    eyes.add_argument("portrait", type=Path, metavar="PORTRAIT", help="image file (JPEG, PNG, ...)")
    eyes.add_argument("--eyes", type=csv_floats, action="append", default=[], metavar="LX,LY,RX,RY[,R]",
                      help="start from these eye points (repeat for each face)")
    eyes.add_argument("--out", type=Path, metavar="DIR",
                      help="build the pool here with the picked eyes (precompute's defaults otherwise)")

    pool = _command(sub, "pool", "inspect or export a pool", "Inspect, export and preview pools.")
    pool_sub = pool.add_subparsers(dest="pool_command", required=True, parser_class=Parser, metavar="ACTION")
    info = _command(pool_sub, "info", "summary of a pool", "Check a pool and print its summary.", [common])
    export = _command(pool_sub, "export", "every composited frame as PNG",
                      "Write every frame exactly as the kiosk shows it: frame_000.png, ... row by row, "
                      "columns left to right.", [common])
    sheet = _command(pool_sub, "sheet", "contact sheet PNG", "A contact sheet of every cell's face.", [common])
    gif = _command(pool_sub, "gif", "animated sweep (.gif or .mp4)",
                   "The middle row's sweep, left to right and back, as an animation.", [common])
    for action, out_help in ((info, None), (export, "directory to write"), (sheet, "PNG to write"),
                             (gif, ".gif or .mp4 to write")):
        action.add_argument("pool", metavar="POOL", help="pool directory")
        if out_help:
            action.add_argument("--out", type=Path, required=True, metavar="PATH", help=out_help)
    export.add_argument("--blinks", action="store_true",
                        help="also every frame's blink stages: blink_NNN_sK.png (frame NNN, stage K)")
    gif.add_argument("--full", action="store_true", help="whole frames instead of the face")
    gif.add_argument("--width", type=positive_int, default=360, metavar="PX", help="width in pixels (default 360)")

    record = _command(sub, "record", "record a gaze video for the FOMM engine",
                      "Follow a dot with your eyes while the camera records; saves VIDEO and its dot "
                      "positions as JSON beside it. Esc cancels and saves nothing.", [common])
    record.add_argument("--out", type=Path, required=True, metavar="VIDEO", help="video to write (e.g. gaze.mp4)")
    record.add_argument("--pitch-steps", type=positive_int, default=1, metavar="N",
        help="rows the dot sweeps (default 1)")
    record.add_argument("--camera", help="camera index, /dev/video path or video file ([camera] source)")

    doctor = _command(sub, "doctor", "check the installation, cameras, displays and pool",
                      "Check everything the kiosk needs; a table of pass/fail with the fix for each failure. "
                      "The pool row checks the pool `run` would show with the same --config/--pool, and "
                      "the installed service's own --config/--pool when they differ.", [common])
    doctor.add_argument("--pool", metavar="DIR", help="check this pool (as `run --pool DIR` would show)")
    service = _command(sub, "install-service", "install the systemd user unit",
                       "Write ~/.config/systemd/user/monalisa.service and enable it.", [common])
    service.add_argument("--pool", metavar="DIR", help="pool directory for the service to show")
    service.add_argument("--dry-run", action="store_true", help="print the unit instead of installing it")
    service.add_argument("--no-enable", action="store_true",
                         help="write the unit only (no systemctl) and print the commands that enable it")

    config = _command(sub, "config", "configuration", "Configuration commands.")
    config_sub = config.add_subparsers(dest="config_command", required=True, parser_class=Parser, metavar="ACTION")
    _command(config_sub, "show", "print the effective config",
             "Print the effective config (file, then flags) as commented TOML.", [common])
    return parser


def _camera_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--camera", help="camera index, /dev/video path, or a video file ([camera] source)")
    parser.add_argument("--no-pace", action="store_true", default=None, help="read a video file as fast as possible")
    parser.add_argument("--loop", action="store_true", default=None, help="replay a video file")


# ----------------------------------------------------------------------------- config

def config_path(args: argparse.Namespace) -> Path | None:
    """--config, else $MONALISA_CONFIG, else the user's config.toml if it exists."""
    if getattr(args, "config", None):
        return args.config
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    from platformdirs import user_config_dir

    default = Path(user_config_dir("monalisa")) / "config.toml"
    return default if default.is_file() else None


# The flag that sets each overridden key, so that its errors name the flag the user typed.
FLAGS = {"camera.source": "--camera", "camera.pace": "--no-pace", "camera.loop": "--loop",
         "render.fullscreen": "--fullscreen", "render.display": "--display", "render.debug": "--debug",
         "gaze.mapping": "--mapping", "warp.head_follow": "--head-follow", "fomm.runtime": "--runtime"}


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Config values given as flags (None means not given)."""
    get = lambda name: getattr(args, name, None)  # noqa: E731
    no_pace = get("no_pace")
    return {
        "camera": {"source": get("camera"), "pace": (not no_pace) if no_pace else None, "loop": get("loop")},
        "render": {"fullscreen": get("fullscreen"), "display": get("display"), "debug": get("debug")},
        "gaze": {"mapping": get("mapping")},
        "warp": {"head_follow": get("head_follow")},
        "fomm": {"runtime": get("runtime")},
    }


# ----------------------------------------------------------------------------- commands

def cmd_run(args, config) -> int:
    """Load the pool (building the built-in one on first use) and run the kiosk loop."""
    from monalisa.kiosk.loop import KioskOptions, run_kiosk
    from monalisa.pool.builtin import choose_pool
    from monalisa.pool.format import load_pool

    if args.headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
    if args.trace is not None:
        _check_writable("--trace", args.trace)  # before the window opens, not mid-run
    pool = load_pool(choose_pool(args.pool, config.pool.path, progress=sys.stderr.isatty())[0])
    options = KioskOptions(pool=pool, headless=args.headless, max_seconds=args.max_seconds,
                           max_frames=args.max_frames, trace=args.trace)
    return run_kiosk(config, options)


def _check_writable(flag: str, path: Path) -> None:
    """Fail early, as one line naming ``flag``, if ``path`` cannot be opened for writing."""
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise UsageError(f"{flag}: cannot write {path} ({exc.strerror or exc})") from None


def cmd_bench(args, config) -> int:
    """Latency percentiles and throughput of the loop on a video."""
    from monalisa.ops.bench import run_bench
    from monalisa.pool.format import load_pool

    pool = None if args.pool is None else load_pool(args.pool)
    return run_bench(config, args.camera, args.frames, pool=pool, window=not args.headless)


def cmd_preview(args, config) -> int:
    """The renderer driven by the mouse, to check a pool by eye."""
    from monalisa.kiosk.preview import run_preview
    from monalisa.pool.format import load_pool

    if args.headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
    return run_preview(load_pool(args.pool), config.render, headless=args.headless, max_seconds=args.max_seconds)


def cmd_precompute(args, config) -> int:
    """Build a pool and print the one-line summary."""
    from precompute.build import PrecomputeOptions, build_pool

    options = PrecomputeOptions(
        portrait=args.portrait, out=args.out, engine=args.engine, yaw_steps=args.yaw_steps,
        pitch_steps=args.pitch_steps, max_yaw=args.max_yaw, max_pitch=args.max_pitch, faces=args.faces,
        eyes=args.eyes, iris_radius=args.iris_radius, checkpoint=args.checkpoint, driving=args.driving,
        sheet=not args.no_sheet, blinks=not args.no_blinks, blink_stages=tuple(args.blink_stages), idle=args.idle)
    summary = build_pool(options, config, progress=sys.stderr.isatty())
    print(summary.line())
    return 0


def cmd_eyes(args, config) -> int:
    """Pick eye points in a window; print the --eyes arguments or build the pool."""
    from precompute.eye_picker import PickedFace, PickerCancelled, run_picker
    from precompute.portrait import load_portrait

    for values in args.eyes:
        if len(values) not in (4, 5):
            raise UsageError("--eyes takes LX,LY,RX,RY or LX,LY,RX,RY,R (pixels)")
    image = load_portrait(args.portrait)
    start = [PickedFace([(v[0], v[1]), (v[2], v[3])], v[4] if len(v) == 5 else None) for v in args.eyes]
    try:
        picked = run_picker(image, args.portrait.name, start)
    except PickerCancelled as cancelled:  # Esc: the user's choice, not a failure to report as an error
        print(f"monalisa eyes: {cancelled}", file=sys.stderr)
        return cancelled.exit_code
    if args.out is None:
        print(" ".join(f"--eyes {value}" for value in picked))
        return 0
    from precompute.build import PrecomputeOptions, build_pool

    eyes = [tuple(float(v) for v in value.split(",")) for value in picked]
    summary = build_pool(PrecomputeOptions(portrait=args.portrait, out=args.out, eyes=eyes), config,
                         progress=sys.stderr.isatty())
    print(summary.line())
    return 0


def cmd_pool(args, config) -> int:
    """pool info / export / sheet / gif."""
    from monalisa.pool import views
    from monalisa.pool.format import load_pool

    pool = load_pool(args.pool)
    if args.pool_command == "info":
        print(views.info_text(pool))
    elif args.pool_command == "export":
        paths = views.export_frames(pool, args.out, blinks=args.blinks)
        blinks = sum(p.name.startswith("blink_") for p in paths)
        print(f"wrote {len(paths) - blinks} frames" + (f" and {blinks} blink stages" if blinks else "")
              + f" to {args.out}")
    elif args.pool_command == "sheet":
        print(f"wrote {views.write_sheet(pool, args.out)}")
    else:
        print(f"wrote {views.write_gif(pool, args.out, width=args.width, full=args.full)}")
    return 0


def cmd_record(args, config) -> int:
    """Record a gaze video for the FOMM engine."""
    from precompute.driving.record import record_gaze

    return record_gaze(args.out, args.pitch_steps, config)


def cmd_doctor(args, config) -> int:
    """Check the installation; the exit code says whether the kiosk can work."""
    from monalisa.ops.doctor import run_doctor

    return run_doctor(config, config_path(args), pool=args.pool)


def cmd_install_service(args, config) -> int:
    """Write and enable the systemd user unit."""
    from monalisa.ops.service import install_service

    return install_service(config_path(args), args.pool, enable=not args.no_enable, dry_run=args.dry_run)


def cmd_config(args, config) -> int:
    """Print the effective config as TOML."""
    from monalisa.config import to_toml

    source = config_path(args)
    print(f"# effective config: {source if source else 'defaults'}, then command-line flags\n")
    print(to_toml(config), end="")
    return 0


COMMANDS = {
    "run": cmd_run, "bench": cmd_bench, "preview": cmd_preview, "precompute": cmd_precompute, "eyes": cmd_eyes,
    "pool": cmd_pool, "record": cmd_record, "doctor": cmd_doctor,
    "install-service": cmd_install_service, "config": cmd_config,
}


def _load_config(args: argparse.Namespace):
    """The effective config; `doctor` falls back to defaults so that it can report a bad file itself."""
    from monalisa.config import Config, load_config
    from monalisa.errors import ConfigError

    try:
        return load_config(config_path(args), _overrides(args), FLAGS)
    except ConfigError:
        if args.command != "doctor":
            raise
        return Config()


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived: unwind like Ctrl-C (cleaning up), then exit 128 + the signal."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _interrupt_on_termination() -> None:
    """Make SIGTERM and SIGHUP act like Ctrl-C, so half-written pools and files are cleaned up."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum, frame):
        raise Terminated(signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, load config, dispatch; known failures become one line on stderr."""
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    _interrupt_on_termination()
    try:
        args = build_parser().parse_args(argv)
        from monalisa.ops.logs import setup_logging_or_stderr

        config = _load_config(args)
        # an unwritable [log] file must not stop the kiosk (a black screen) nor the doctor (it reports it)
        setup_logging_or_stderr(config.log, verbose=getattr(args, "verbose", False),
                                warn=args.command != "doctor")
        return COMMANDS[args.command](args, config)
    except BrokenPipeError:  # `monalisa config show | head -1`: the reader left; exit quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the final flush at exit does not fail again
        return 141  # 128 + SIGPIPE, as the shell reports a killed writer
    except MonalisaError as exc:
        print(f"monalisa: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # files and devices we could not read or write: still one line
        print(f"monalisa: error: {exc}", file=sys.stderr)
        return 1
    except Terminated as stop:
        print(f"monalisa: stopped by signal {stop.signum}", file=sys.stderr)
        return 128 + stop.signum
    except KeyboardInterrupt:
        print("monalisa: interrupted", file=sys.stderr)
        return 130

