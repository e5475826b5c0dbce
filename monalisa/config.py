"""Typed configuration: one dataclass per part, loaded once from config.toml plus CLI flags.

Every key is declared here with its type, default and allowed values; ``load_config``
rejects unknown keys, wrong types and out-of-range values with a ConfigError that names
the key and what is allowed. ``config.toml`` at the repo root documents every key.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monalisa.errors import ConfigError

RELATIVE_HELP = "; a relative path in a config file is taken from the file's folder"

# keys that were renamed: an old name still works (with a warning) so an upgraded kiosk keeps running
RENAMED_KEYS = {("viewer", "idle_after"): "idle_after_s"}
# keys no longer used: ignored with a warning (the return to neutral is now one saccade, see [life])
REMOVED_KEYS = {("viewer", "idle_ease_s")}

# (section, shortest, longest): pairs of keys whose second must not be below the first
RANGE_PAIRS = (("camera", "reopen_min_s", "reopen_max_s"), ("life", "blink_min_s", "blink_max_s"),
               ("life", "glance_hold_min_s", "glance_hold_max_s"), ("life", "glance_pause_min_s", "glance_pause_max_s"),
               ("life", "look_away_every_min_s", "look_away_every_max_s"))

log = logging.getLogger(__name__)


def _key(default: Any, help: str, *, choices: tuple | None = None, min: float | None = None,
         max: float | None = None, pattern: tuple[str, str] | None = None, path: bool = False) -> Any:
    """Declare a config key with its allowed values; ``help`` is shown by `config show`.

    ``pattern`` is (regular expression the whole string must match, what to call it in errors);
    ``path`` marks a file or directory, resolved against the config file's folder when relative.
    """
    meta = {"help": help + (RELATIVE_HELP if path else ""), "choices": choices, "min": min, "max": max,
            "pattern": pattern, "path": path}
    return field(default=default, metadata=meta)


@dataclass
class CameraConfig:
    """Where frames come from and how the camera is driven."""

    source: str = _key("0", "camera index (0), device path (/dev/video2, /dev/v4l/by-id/...) or video file",
                       path=True)
    width: int = _key(640, "requested capture width in pixels", min=160, max=3840)
    height: int = _key(480, "requested capture height in pixels", min=120, max=2160)
    fps: int = _key(30, "requested capture rate", min=1, max=240)
    fourcc: str = _key("MJPG", "preferred pixel format when the camera offers it (empty: driver default)",
                       pattern=(r"(|[ -~]{4})", "four characters like 'MJPG' or 'YUYV', or empty"))
    pace: bool = _key(True, "play a video file at its own fps (false: as fast as possible)")
    loop: bool = _key(False, "replay a video file when it ends")
    read_timeout_s: float = _key(1.0, "no new frame for this long counts as a stall", min=0.05, max=60)
    frozen_after_s: float = _key(5.0, "identical frames for this long count as a frozen camera", min=0.5, max=600)
    reopen_min_s: float = _key(0.5, "first retry delay after a camera fault", min=0.05, max=60)
    reopen_max_s: float = _key(5.0, "longest retry delay (backoff doubles up to this)", min=0.1, max=600)
    try_other_indices: bool = _key(True, "when a camera index disappears, also try the other /dev/video*"
                                         " devices (a replugged camera may come back as another index)")


@dataclass
class DetectorConfig:
    """BlazeFace face detection through MediaPipe."""

    model: str = _key("short", "short: faces within ~2 m; full: deeper rooms", choices=("short", "full"))
    min_score: float = _key(0.5, "discard detections below this confidence", min=0.0, max=1.0)


@dataclass
class ViewerConfig:
    """Which face to follow, smoothing, and what to do when nobody is there."""

    switch_ratio: float = _key(1.7, "another face's box must be this many times larger in area (closer) to take over",
                               min=1.0, max=10)
    switch_after_s: float = _key(0.7, "...and stay so for this long", min=0.0, max=30)
    match_distance: float = _key(0.15, "max move of the eye midpoint between frames (normalized image units) to"
                                       " count as the same person", min=0.01, max=1)
    hold_s: float = _key(0.5, "keep the last position this long after the viewer is lost", min=0, max=60)
    idle_after_s: float = _key(5.0, "seconds with nobody before the gaze goes back to the neutral frame", min=0,
                               max=3600)
    min_cutoff: float = _key(1.0, "One Euro filter: cutoff (Hz) when still; lower is steadier", min=0.001, max=100)
    beta: float = _key(5.0, "One Euro filter: speed coefficient (per frame-width/s); higher follows motion more"
                            " closely", min=0, max=100)
    d_cutoff: float = _key(1.0, "One Euro filter: cutoff (Hz) for the speed estimate", min=0.001, max=100)


@dataclass
class GazeConfig:
    """How the viewer's position becomes a grid cell."""

    mapping: str = _key("geometric", "geometric: eye contact from camera geometry; linear: the original x-to-column",
                        choices=("geometric", "linear"))
    gain: float = _key(0.25, "geometric: the portrait looks gain x the viewer's angle from the screen's normal."
                             " A flat picture's gaze is seen turned toward every viewer, so 1 (aiming at where they"
                             " stand) reads as looking 9/16/19 deg past them at 10/20/30 deg; 0 reads as eye contact"
                             " from anywhere but never moves. 0.25 keeps the perceived miss within 2.4/4.3/5.3 deg"
                             " (inside the 4-9 deg still taken as eye contact) and the eyes visibly following"
                             " (15 deg over a +-30 deg walk); raise it to follow more visibly, lower it for surer"
                             " contact", min=0, max=1.5)
    mirror: bool = _key(True, "mirror the camera image (a viewer on the screen's left looks toward column 0)")
    camera_hfov_deg: float = _key(60.0, "camera horizontal field of view", min=10, max=170)
    camera_x_mm: float = _key(0.0, "camera position right of the portrait's eyes on screen", min=-5000, max=5000)
    camera_y_mm: float = _key(90.0, "camera position above the portrait's eyes on screen", min=-5000, max=5000)
    camera_z_mm: float = _key(0.0, "camera position in front of the screen plane", min=-2000, max=2000)
    eye_distance_mm: float = _key(63.0, "typical distance between a viewer's pupils", min=40, max=90)
    hysteresis: float = _key(0.35, "fraction of a cell the target must pass beyond a boundary to switch", min=0, max=2)


@dataclass
class LifeConfig:
    """What the portrait does on its own so it looks alive; every behaviour can be turned off."""

    blinks: bool = _key(True, "blink (only pools with blink frames can)")
    blinks_per_min: float = _key(15.0, "average spontaneous blinks a minute, at random intervals (people: 10-20)",
                                 min=1, max=60)
    blink_min_s: float = _key(0.10, "shortest blink", min=0.03, max=1)
    blink_max_s: float = _key(0.15, "longest blink", min=0.03, max=1)
    jump_blink_deg: float = _key(10.0, "a gaze jump this large comes with a blink half the time, twice as large"
                                       " always, as people blink with large gaze shifts (0: never)", min=0, max=90)
    saccade_frames: int = _key(2, "a gaze jump takes 1 frame, or 2 (a large one shows one in-between frame)",
                               choices=(1, 2))
    glances: bool = _key(True, "with nobody there, glance around now and then, like a person waiting")
    glance_deg: float = _key(15.0, "idle glances land within this many degrees of the resting gaze", min=1, max=45)
    glance_hold_min_s: float = _key(0.5, "shortest idle glance", min=0.1, max=60)
    glance_hold_max_s: float = _key(3.0, "longest idle glance", min=0.1, max=60)
    glance_pause_min_s: float = _key(2.0, "shortest rest between idle glances", min=0.1, max=600)
    glance_pause_max_s: float = _key(8.0, "longest rest between idle glances", min=0.1, max=600)
    look_aways: bool = _key(False, "after long eye contact, look aside a little now and then (so it is not a stare)")
    look_away_deg: float = _key(8.0, "how far a look-away turns", min=1, max=10)
    look_away_after_s: float = _key(3.3, "eye contact this long before the first look-away (people prefer ~3.3 s)",
                                    min=0.5, max=600)
    look_away_every_min_s: float = _key(3.0, "shortest time between look-aways", min=0.5, max=600)
    look_away_every_max_s: float = _key(11.0, "longest time between look-aways", min=0.5, max=600)
    look_away_hold_s: float = _key(0.8, "how long a look-away lasts (randomised +-40 %)", min=0.1, max=10)
    seed: int = _key(0, "random seed, for reproducible runs and traces (0: different every run)", min=0,
                     max=2**31 - 1)


@dataclass
class RenderConfig:
    """The pygame window."""

    fullscreen: bool = _key(False, "start fullscreen (cursor hidden)")
    display: int = _key(0, "which display to use", min=0, max=16)
    window_width: int = _key(768, "window width when not fullscreen", min=64, max=16384)
    window_height: int = _key(1024, "window height when not fullscreen", min=64, max=16384)
    background: str = _key("#000000", "letterbox colour as #rrggbb",
                           pattern=(r"#[0-9a-fA-F]{6}", "a colour like '#000000'"))
    debug: bool = _key(False, "start with the debug overlay shown")
    max_fps: int = _key(60, "redraws per second of `preview` and `record` (the kiosk redraws per camera frame)",
                        min=1, max=500)

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        """``background`` ('#rrggbb', checked on load) as (r, g, b)."""
        return int(self.background[1:3], 16), int(self.background[3:5], 16), int(self.background[5:7], 16)


@dataclass
class PoolConfig:
    """Which pool the kiosk shows."""

    path: str = _key("", "pool directory; empty: the built-in portrait's pool (built on first use)",
                     path=True)


@dataclass
class LogConfig:
    """Logging and health reporting."""

    level: str = _key("info", "log level", choices=("debug", "info", "warning", "error"))
    file: str = _key("", "also log to this file, rotated (empty: stderr only)", path=True)
    max_bytes: int = _key(5_000_000, "rotate the log file at this size", min=10_000, max=10**10)
    backups: int = _key(3, "rotated log files kept", min=0, max=100)
    health_interval_s: float = _key(60.0, "seconds between health lines (fps, latency, memory)", min=1, max=86400)


@dataclass
class WarpConfig:
    """The default precompute engine: warp the painting's own pixels."""

    head_follow: float = _key(0.2, "share of a small gaze change the head takes; beyond eye_range it takes "
                              "the rest (with the head limits at 0: eyes only)", min=0, max=1)
    eye_range: float = _key(15.0, "eye-in-head angle in degrees beyond which the head takes the whole turn",
                            min=0, max=40)
    head_yaw_limit: float = _key(20.0, "largest head turn of the mesh in degrees for a frontal sitter, each side "
                                 "(viewers read about two thirds of it; 0: the head stays)", min=0, max=30)
    head_yaw_unseen: float = _key(14.0, "largest head turn toward the side a turned sitter never showed "
                                  "(painted 15 degrees or more aside)", min=0, max=30)
    head_yaw_away: float = _key(20.0, "largest head turn away from that side for a turned sitter", min=0, max=30)
    head_pitch_limit: float = _key(8.0, "largest head nod of the mesh in degrees, up and down", min=0, max=20)
    calibrate: bool = _key(True, "measure probe frames with FaceMesh and scale the turn so every frame shows "
                           "its degrees")
    iris_travel: float = _key(0.8, "how far the iris may travel toward the eye corner (fraction of the free room)",
                              min=0.05, max=1)


@dataclass
class FommConfig:
    """The original method: First Order Motion Model driven by a gaze video."""

    blend_slope: float = _key(0.06, "sigmoid slope s of the blend alpha, per pixel of a 512-pixel patch",
                              min=0.001, max=10)
    blend_inflection: float = _key(180.0, "sigmoid inflection k, pixels from the centre of a 512-pixel patch",
                                   min=1, max=256)
    runtime: str = _key("onnxruntime", "run the network with", choices=("onnxruntime", "torch"))
    record_sweep_s: float = _key(8.0, "seconds the dot of `monalisa record` takes to cross the screen once",
                                 min=1, max=120)


@dataclass
class Config:
    """The whole effective configuration."""

    camera: CameraConfig = field(default_factory=CameraConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    viewer: ViewerConfig = field(default_factory=ViewerConfig)
    gaze: GazeConfig = field(default_factory=GazeConfig)
    life: LifeConfig = field(default_factory=LifeConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    pool: PoolConfig = field(default_factory=PoolConfig)
    log: LogConfig = field(default_factory=LogConfig)
    warp: WarpConfig = field(default_factory=WarpConfig)
    fomm: FommConfig = field(default_factory=FommConfig)


def _describe(f: dataclasses.Field) -> str:
    meta = f.metadata
    kind = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false"}[_type_name(f)]
    if meta.get("pattern"):
        return f"{kind}: {meta['pattern'][1]}"
    if meta.get("choices"):
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    if meta.get("min") is not None and meta.get("max") is not None:
        return f"{kind} from {meta['min']} to {meta['max']}"
    return kind


def _type_name(f: dataclasses.Field) -> str:
    return f.type if isinstance(f.type, str) else f.type.__name__


def check_value(section: str, f: dataclasses.Field, value: Any) -> Any:
    """Return ``value`` converted to the key's type, or raise ConfigError naming the key."""
    name = f"[{section}] {f.name}"
    kind = _type_name(f)
    if kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
        ok = ok and math.isfinite(value)  # nan passes every < and > check
    else:
        ok = isinstance(value, str)
    meta = f.metadata
    if ok and meta.get("choices") and value not in meta["choices"]:
        ok = False
    if ok and meta.get("min") is not None and value < meta["min"]:
        ok = False
    if ok and meta.get("max") is not None and value > meta["max"]:
        ok = False
    if ok and meta.get("pattern") and not re.fullmatch(meta["pattern"][0], value):
        ok = False
    if not ok:
        raise ConfigError(f"config: {name} must be {_describe(f)}, got {value!r}")
    return value


def config_from_dict(data: dict[str, Any], origin: str = "config", base: Path | None = None) -> Config:
    """Build a validated Config from a nested dict (as parsed from TOML).

    ``base``: the config file's folder; relative path keys are resolved against it (not the cwd).
    """
    config = Config()
    for section, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(_outside_section(origin, section, _sections(config)))
        for key, value in values.items():
            if (section, key) in REMOVED_KEYS:
                log.warning("%s: [%s] %s is no longer used; ignoring it (remove it to silence this)",
                            origin, section, key)
                continue
            new = RENAMED_KEYS.get((section, key))
            if new is not None:
                if new in values:
                    raise ConfigError(f"{origin}: [{section}] {key} is the old name of {new}; keep only {new}")
                log.warning("%s: [%s] %s is now called %s; using its value (rename it to silence this)",
                            origin, section, key, new)
                key = new
            _set(config, section, key, value, origin, base)
    _check_relations(config, origin)
    return config


def _sections(config: Config) -> dict[str, Any]:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(Config)}


def _set(config: Config, section: str, key: str, value: Any, origin: str, base: Path | None = None) -> None:
    """Validate ``[section] key = value`` and store it; errors start with ``origin`` (file or flag)."""
    sections = _sections(config)
    if section not in sections:
        raise ConfigError(f"{origin}: unknown section [{section}]; known: {', '.join(sections)}")
    fields = {f.name: f for f in dataclasses.fields(sections[section])}
    if key not in fields:
        raise ConfigError(f"{origin}: unknown key [{section}] {key}; known: {', '.join(fields)}")
    try:
        value = check_value(section, fields[key], value)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("config:", f"{origin}:", 1)) from None
    if base is not None and fields[key].metadata.get("path"):
        value = _from_folder(base, value, index_ok=(section, key) == ("camera", "source"))
    setattr(sections[section], key, value)


def _outside_section(origin: str, name: str, sections: dict[str, Any]) -> str:
    """The message for a top-level ``name = value``: which [section] it belongs in."""
    known = ", ".join(f"[{s}]" for s in sections)
    if name in sections:
        return (f"{origin}: '{name}' must be a [section] table, not a value; "
                f"put its keys under [{name}] (sections: {known})")
    owners = [s for s, part in sections.items() if name in {f.name for f in dataclasses.fields(part)}]
    hint = f"did you mean [{owners[0]}] {name}?" if owners else f"put it under one of {known}"
    return f"{origin}: '{name}' is not inside a [section]; {hint}"


def _from_folder(base: Path, value: str, index_ok: bool = False) -> str:
    """``value`` (after ``~`` expansion) made absolute against ``base`` if relative; empty stays empty."""
    value = _expand_home(value)
    if not value or (index_ok and value.strip().isdigit()) or Path(value).is_absolute():
        return value
    return str(base / value)


def _check_relations(config: Config, origin: str) -> None:
    """Checks that involve more than one key, and ``~`` expanded in paths once for everyone."""
    config.pool.path = _expand_home(config.pool.path)
    config.log.file = _expand_home(config.log.file)
    config.camera.source = _expand_home(config.camera.source)
    for section, low, high in RANGE_PAIRS:
        part = getattr(config, section)
        if getattr(part, high) < getattr(part, low):
            raise ConfigError(f"{origin}: [{section}] {high} must be >= {low} ({getattr(part, low):g})")


def _expand_home(path: str) -> str:
    return str(Path(path).expanduser()) if path.startswith("~") else path


def load_config(path: str | Path | None = None, overrides: dict[str, dict[str, Any]] | None = None,
                flags: dict[str, str] | None = None) -> Config:
    """Read ``path`` (if given), then apply CLI ``overrides`` ({section: {key: value}}), validating all.

    Relative paths in the file are taken from its folder; override paths stay as given (the cwd's).
    ``flags`` maps "section.key" to the flag that set it, so its errors name the flag.
    """
    data: dict[str, Any] = {}
    origin = "config"
    base = None
    if path is not None:
        path = Path(path)
        origin = str(path)
        base = path.expanduser().absolute().parent
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: config file not found") from None
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    config = config_from_dict(data, origin, base)
    for section, values in (overrides or {}).items():
        for key, value in values.items():
            if value is None:
                continue
            _set(config, section, key, value, (flags or {}).get(f"{section}.{key}", "config"))
    _check_relations(config, origin)
    return config


def to_toml(config: Config) -> str:
    """The config as commented TOML, every key with its help text (`monalisa config show`, config.toml)."""
    lines = []
    for section in dataclasses.fields(Config):
        part = getattr(config, section.name)
        lines += [f"# {type(part).__doc__}", f"[{section.name}]"]
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            text = ("true" if value else "false") if isinstance(value, bool) else (
                json.dumps(value) if isinstance(value, str) else repr(value))
            lines += [f"# {f.metadata['help']} ({_describe(f)})", f"{f.name} = {text}"]
        lines.append("")
    return "\n".join(lines)
