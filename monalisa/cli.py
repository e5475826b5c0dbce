"""The `monalisa` command: argument parsing and dispatch only; the work lives in the modules."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from monalisa.errors import MonalisaError

CONFIG_ENV = "MONALISA_CONFIG"


class UsageError(MonalisaError):
    """Bad command-line usage."""

    exit_code = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line (through main) instead of exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


# ----------------------------------------------------------------------------- parsing

def _csv_floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help=f"config file (default: ${CONFIG_ENV} or the user config dir)")
    common.add_argument("-v", "--verbose", action="store_true", help="log debug details")

    parser = _Parser(prog="monalisa", description="A portrait whose eyes follow the person looking at it.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", parents=[common], help="start the kiosk")
    _camera_flags(run)
    run.add_argument("--pool", help="pool directory (default: the built-in portrait's pool)")
    run.add_argument("--fullscreen", action="store_true", default=None, help="fullscreen, cursor hidden")
    run.add_argument("--display", type=int, help="display number for the window")
    run.add_argument("--mapping", choices=("geometric", "linear"), help="how the viewer's position picks a frame")
    run.add_argument("--debug", action="store_true", default=None, help="start with the debug overlay")
    run.add_argument("--headless", action="store_true", help="no window (SDL dummy driver)")
    run.add_argument("--max-seconds", type=float, help="stop after this many seconds")
    run.add_argument("--max-frames", type=int, help="stop after this many camera frames")
    run.add_argument("--trace", type=Path, help="write one JSON line per processed camera frame")

    bench = sub.add_parser("bench", parents=[common], help="measure the loop's latency on a video")
    bench.add_argument("--camera", help="video file (default: a generated one)")
    bench.add_argument("--frames", type=int, help="process at most this many frames")

    preview = sub.add_parser("preview", parents=[common], help="show a pool, driven by the mouse")
    preview.add_argument("pool", help="pool directory")
    preview.add_argument("--fullscreen", action="store_true", default=None)
    preview.add_argument("--headless", action="store_true", help=argparse.SUPPRESS)
    preview.add_argument("--max-seconds", type=float, help=argparse.SUPPRESS)

    pre = sub.add_parser("precompute", parents=[common], help="make a pool from a portrait")
    pre.add_argument("portrait", type=Path)
    pre.add_argument("--out", type=Path, required=True, help="pool directory to write")
    pre.add_argument("--engine", default="warp", help="warp (default, no weights) or fomm")
    pre.add_argument("--yaw-steps", type=int, default=33, help="columns, left to right (default 33)")
    pre.add_argument("--pitch-steps", type=int, default=1, help="rows, up to down (default 1)")
    pre.add_argument("--max-yaw", type=float, default=30.0, help="degrees to each side (default 30)")
    pre.add_argument("--max-pitch", type=float, default=15.0, help="degrees up and down (default 15)")
    pre.add_argument("--faces", default="all", help="all (default), largest, or the N largest")
    pre.add_argument("--eyes", type=_csv_floats, action="append", default=[],
                     metavar="LX,LY,RX,RY[,R]", help="eye centres in pixels (repeat per face) when detection fails")
    pre.add_argument("--head-follow", type=float, help="fraction of the turn the head follows (warp)")
    pre.add_argument("--checkpoint", type=Path, help="FOMM checkpoint (vox-cpk.pth.tar)")
    pre.add_argument("--driving", type=Path, help="gaze video from `monalisa record`")
    pre.add_argument("--runtime", choices=("onnxruntime", "torch"), help="FOMM runtime")
    pre.add_argument("--no-sheet", action="store_true", help="skip the contact sheet")

    pool = sub.add_parser("pool", help="inspect or export a pool")
    pool_sub = pool.add_subparsers(dest="pool_command", required=True, parser_class=_Parser)
    info = pool_sub.add_parser("info", parents=[common], help="summary of a pool")
    info.add_argument("pool")
    export = pool_sub.add_parser("export", parents=[common], help="every composited frame as PNG")
    export.add_argument("pool")
    export.add_argument("--out", type=Path, required=True)
    sheet = pool_sub.add_parser("sheet", parents=[common], help="contact sheet PNG")
    sheet.add_argument("pool")
    sheet.add_argument("--out", type=Path, required=True)
    gif = pool_sub.add_parser("gif", parents=[common], help="animated sweep (.gif or .mp4)")
    gif.add_argument("pool")
    gif.add_argument("--out", type=Path, required=True)
    gif.add_argument("--full", action="store_true", help="whole frames instead of the face")
    gif.add_argument("--width", type=int, default=360)

    record = sub.add_parser("record", parents=[common], help="record a gaze video for the FOMM engine")
    record.add_argument("--out", type=Path, required=True, help="video to write (e.g. gaze.mp4)")
    record.add_argument("--pitch-steps", type=int, default=1)
    record.add_argument("--camera", help="camera index or device")

    sub.add_parser("doctor", parents=[common], help="check the installation, cameras, displays and pool")
    service = sub.add_parser("install-service", parents=[common], help="install the systemd user unit")
    service.add_argument("--pool", help="pool directory for the service to show")
    service.add_argument("--dry-run", action="store_true", help="print the unit instead of installing it")
    service.add_argument("--no-enable", action="store_true", help="write the unit but do not enable it")

    config = sub.add_parser("config", help="configuration")
    config_sub = config.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    config_sub.add_parser("show", parents=[common], help="print the effective config")
    return parser


def _camera_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--camera", help="camera index, /dev/video path, or a video file")
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

def _resolve_pool(path: str | None, config) -> "Path":
    from monalisa.builtin import builtin_pool_path

    chosen = path or config.pool.path
    return Path(chosen) if chosen else builtin_pool_path()


def cmd_run(args, config) -> int:
    from monalisa.app import KioskOptions, run_kiosk
    from monalisa.pool import load_pool

    if args.headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
    pool = load_pool(_resolve_pool(args.pool, config))
    options = KioskOptions(pool=pool, headless=args.headless, max_seconds=args.max_seconds,
                           max_frames=args.max_frames, trace=args.trace)
    return run_kiosk(config, options)


def cmd_bench(args, config) -> int:
    from monalisa.bench import run_bench

    return run_bench(config, args.camera, args.frames)


def cmd_preview(args, config) -> int:
    from monalisa.pool import load_pool
    from monalisa.preview import run_preview

    if args.headless:
        os.environ["SDL_VIDEODRIVER"] = "dummy"
    return run_preview(load_pool(args.pool), config.render, headless=args.headless, max_seconds=args.max_seconds)


def cmd_precompute(args, config) -> int:
    from precompute.build import PrecomputeOptions, build_pool

    options = PrecomputeOptions(
        portrait=args.portrait, out=args.out, engine=args.engine, yaw_steps=args.yaw_steps,
        pitch_steps=args.pitch_steps, max_yaw=args.max_yaw, max_pitch=args.max_pitch, faces=args.faces,
        eyes=args.eyes, checkpoint=args.checkpoint, driving=args.driving, sheet=not args.no_sheet)
    summary = build_pool(options, config, progress=sys.stderr.isatty())
    print(summary.line())
    return 0


def cmd_pool(args, config) -> int:
    from monalisa import pool_views
    from monalisa.pool import load_pool

    pool = load_pool(args.pool)
    if args.pool_command == "info":
        print(pool_info(pool))
    elif args.pool_command == "export":
        paths = pool_views.export_frames(pool, args.out)
        print(f"wrote {len(paths)} frames to {args.out}")
    elif args.pool_command == "sheet":
        print(f"wrote {pool_views.write_sheet(pool, args.out)}")
    else:
        print(f"wrote {pool_views.write_gif(pool, args.out, width=args.width, full=args.full)}")
    return 0


def pool_info(pool) -> str:
    """A few lines describing a pool."""
    m = pool.manifest
    params = ", ".join(f"{k}={v}" for k, v in m.engine_params.items() if not isinstance(v, (list, dict)))
    return "\n".join([
        f"pool       {pool.directory}",
        f"portrait   {m.source or m.portrait_file} {m.width}x{m.height} sha256 {m.portrait_sha256[:16]}",
        f"grid       {m.rows} row(s) x {m.cols} column(s) = {len(m.frames)} frames",
        f"yaw        {m.yaws[0]:+.1f} .. {m.yaws[-1]:+.1f} deg",
        f"pitch      {m.pitches[0]:+.1f} .. {m.pitches[-1]:+.1f} deg",
        f"patch      {m.patch.width}x{m.patch.height} at ({m.patch.x}, {m.patch.y})",
        f"engine     {m.engine}" + (f" ({params})" if params else ""),
        f"created    {m.created}",
    ])


def cmd_record(args, config) -> int:
    from monalisa.record import record_gaze

    return record_gaze(args.out, args.pitch_steps, config)


def cmd_doctor(args, config) -> int:
    from monalisa.doctor import run_doctor

    return run_doctor(config, config_path(args))


def cmd_install_service(args, config) -> int:
    from monalisa.service import install_service

    return install_service(config_path(args), args.pool, enable=not args.no_enable, dry_run=args.dry_run)


def cmd_config(args, config) -> int:
    from monalisa.config import to_toml

    print(to_toml(config), end="")
    return 0


COMMANDS = {
    "run": cmd_run, "bench": cmd_bench, "preview": cmd_preview, "precompute": cmd_precompute,
    "pool": cmd_pool, "record": cmd_record, "doctor": cmd_doctor,
    "install-service": cmd_install_service, "config": cmd_config,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: parse, load config, dispatch; known failures become one line on stderr."""
    try:
        args = build_parser().parse_args(argv)
        from monalisa.config import load_config
        from monalisa.logs import setup_logging

        config = load_config(config_path(args), _overrides(args))
        setup_logging(config.log, verbose=getattr(args, "verbose", False))
        return COMMANDS[args.command](args, config)
    except MonalisaError as exc:
        print(f"monalisa: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("monalisa: interrupted", file=sys.stderr)
        return 130

