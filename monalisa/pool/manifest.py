"""``manifest.json``: what a pool holds, read and checked (formats 1 and 2) and written (format 2).

Format 2 adds the painting's own gaze (``gaze.painted``, true degrees), the idle cell (``neutral``),
blink stages (``blinks``: closures, a rectangle inside the patch, one file per cell per stage) and
the stored portrait's pixel digest (``portrait.pixels_sha256``) so an edited ``portrait.png`` is
refused. Format 1 pools read as painted gaze (0, 0), idle cell nearest straight ahead, no blinks.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monalisa.errors import PoolError
from monalisa.pool.geometry import Rect, nearest_index

FORMAT = "monalisa-pool/2"
FORMATS = ("monalisa-pool/1", FORMAT)   # what this version reads
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PatchEntry:
    """One grid cell: its patch file and the gaze direction (degrees) it shows."""

    file: str
    row: int
    col: int
    yaw: float
    pitch: float


@dataclass(frozen=True)
class BlinkEntry:
    """One blink stage of one cell: a file of the blink rectangle's pixels."""

    file: str
    row: int
    col: int
    stage: int          # index into Manifest.blink_stages


@dataclass(frozen=True)
class Manifest:
    """Everything ``manifest.json`` says about a pool."""

    portrait_file: str
    width: int
    height: int
    portrait_sha256: str            # of the source image file the pool was built from
    patch: Rect
    yaws: tuple[float, ...]
    pitches: tuple[float, ...]
    patches: tuple[PatchEntry, ...]
    engine: str
    engine_params: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    source: str = ""
    painted_gaze: tuple[float, float] = (0.0, 0.0)
    neutral: tuple[int, int] | None = None          # None: nearest to straight ahead
    blink_stages: tuple[float, ...] = ()
    blink_rect: Rect | None = None
    blinks: tuple[BlinkEntry, ...] = ()
    pixels_sha256: str = ""         # of portrait.png's decoded pixels ("" in format 1: not checked)
    format: str = FORMAT

    @property
    def rows(self) -> int:
        return len(self.pitches)

    @property
    def cols(self) -> int:
        return len(self.yaws)

    @property
    def neutral_cell(self) -> tuple[int, int]:
        """The idle cell: as recorded, else the one nearest straight ahead."""
        if self.neutral is not None:
            return self.neutral
        return nearest_index(self.pitches, 0.0), nearest_index(self.yaws, 0.0)

    def to_json(self) -> dict[str, Any]:
        """The format-2 manifest."""
        blinks = None
        if self.blink_stages:
            assert self.blink_rect is not None
            blinks = {"stages": list(self.blink_stages), "rect": _rect_json(self.blink_rect),
                      "patches": [{"file": b.file, "row": b.row, "col": b.col, "stage": b.stage}
                                 for b in self.blinks]}
        return {
            "format": FORMAT,
            "portrait": {"file": self.portrait_file, "width": self.width, "height": self.height,
                         "sha256": self.portrait_sha256, "pixels_sha256": self.pixels_sha256,
                         "source": self.source},
            "patch": _rect_json(self.patch),
            "grid": {"yaw": list(self.yaws), "pitch": list(self.pitches)},
            "gaze": {"painted": [round(self.painted_gaze[0], 2), round(self.painted_gaze[1], 2)]},
            "neutral": list(self.neutral_cell),
            "patches": [{"file": f.file, "row": f.row, "col": f.col, "yaw": f.yaw, "pitch": f.pitch}
                        for f in self.patches],
            "blinks": blinks,
            "engine": {"name": self.engine, "params": self.engine_params},
            "created": self.created,
        }


def _rect_json(rect: Rect) -> dict[str, int]:
    return {"x": rect.x, "y": rect.y, "width": rect.width, "height": rect.height}


# ----------------------------------------------------------------------------- reading

def fail(path: Path, problem: str) -> PoolError:
    return PoolError(f"{path}: {problem}")


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str, path: Path) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise fail(path, f"missing '{where}{key}'")
    value = obj[key]
    if kind in (int, float) or kind == (int, float):
        ok = isinstance(value, kind) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        names = kind.__name__ if isinstance(kind, type) else "number"
        raise fail(path, f"'{where}{key}' should be {names}, got {json.dumps(value)[:40]}")
    return value


def _numbers(values: list, where: str, path: Path) -> tuple[float, ...]:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise fail(path, f"'{where}' should hold only numbers")
    return tuple(float(v) for v in values)


def _inside(name: str, where: str, path: Path) -> str:
    """A file name from the manifest, refused if it would point outside the pool directory."""
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts or not parts:
        raise fail(path, f"'{where}' must be a path inside the pool, got {name!r}")
    return name


def _rect(obj: Any, where: str, path: Path) -> Rect:
    return Rect(*(_get(obj, k, int, where, path) for k in ("x", "y", "width", "height")))


def parse_manifest(data: Any, path: Path) -> Manifest:
    """Check the manifest's structure and consistency; raise PoolError naming the problem."""
    if not isinstance(data, dict):
        raise fail(path, "manifest is not a JSON object")
    fmt = data.get("format")
    if fmt not in FORMATS:
        raise fail(path, f"unknown pool format {json.dumps(fmt)} (this version reads "
                         f"{' and '.join(repr(f) for f in FORMATS)})")
    portrait = _get(data, "portrait", dict, "", path)
    width = _get(portrait, "width", int, "portrait.", path)
    height = _get(portrait, "height", int, "portrait.", path)
    if width <= 0 or height <= 0:
        raise fail(path, f"portrait size {width}x{height} is not positive")
    patch = _rect(_get(data, "patch", dict, "", path), "patch.", path)
    if not patch.fits_in(width, height):
        raise fail(path, f"patch {patch} does not fit in the {width}x{height} portrait")
    grid = _get(data, "grid", dict, "", path)
    yaws = _numbers(_get(grid, "yaw", list, "grid.", path), "grid.yaw", path)
    pitches = _numbers(_get(grid, "pitch", list, "grid.", path), "grid.pitch", path)
    if not yaws or not pitches:
        raise fail(path, "grid needs at least one yaw and one pitch")
    if list(yaws) != sorted(yaws) or list(pitches) != sorted(pitches, reverse=True):
        raise fail(path, "grid.yaw must increase and grid.pitch must decrease")
    patches = []
    key = "frames" if fmt == FORMATS[0] else "patches"   # format 1 called its patch list "frames"
    for i, f in enumerate(_get(data, key, list, "", path)):
        where = f"{key}[{i}]."
        patches.append(PatchEntry(
            file=_inside(_get(f, "file", str, where, path), where + "file", path),
            row=_get(f, "row", int, where, path), col=_get(f, "col", int, where, path),
            yaw=float(_get(f, "yaw", (int, float), where, path)),
            pitch=float(_get(f, "pitch", (int, float), where, path))))
    cells = sorted((f.row, f.col) for f in patches)
    expected = [(r, c) for r in range(len(pitches)) for c in range(len(yaws))]
    if cells != expected:
        raise fail(path, f"{key} cover {len(cells)} cells with repeats or gaps; the "
                         f"{len(pitches)}x{len(yaws)} grid needs each of {len(expected)} exactly once")
    engine = _get(data, "engine", dict, "", path)
    if not isinstance(engine.get("params", {}), dict):
        raise fail(path, "'engine.params' should be an object")
    extra = _format2(data, portrait, patch, expected, path) if fmt == FORMAT else {}
    return Manifest(
        portrait_file=_inside(_get(portrait, "file", str, "portrait.", path), "portrait.file", path),
        width=width, height=height,
        portrait_sha256=_get(portrait, "sha256", str, "portrait.", path), patch=patch,
        yaws=yaws, pitches=pitches, patches=tuple(sorted(patches, key=lambda f: (f.row, f.col))),
        engine=_get(engine, "name", str, "engine.", path), engine_params=dict(engine.get("params", {})),
        created=str(data.get("created", "")), source=str(portrait.get("source", "")), format=fmt, **extra)


def _format2(data: dict, portrait: dict, patch: Rect, cells: list[tuple[int, int]], path: Path) -> dict[str, Any]:
    """The fields format 2 adds, checked."""
    painted = _numbers(_get(_get(data, "gaze", dict, "", path), "painted", list, "gaze.", path),
                       "gaze.painted", path)
    if len(painted) != 2:
        raise fail(path, "'gaze.painted' should be [yaw, pitch] in degrees")
    neutral = _get(data, "neutral", list, "", path)
    if (len(neutral) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in neutral)
            or tuple(neutral) not in cells):
        raise fail(path, f"'neutral' should be the [row, col] of a grid cell, got {json.dumps(neutral)[:40]}")
    extra: dict[str, Any] = {"painted_gaze": (painted[0], painted[1]), "neutral": (neutral[0], neutral[1]),
                             "pixels_sha256": _get(portrait, "pixels_sha256", str, "portrait.", path)}
    blinks = data.get("blinks")
    if blinks is None:
        return extra
    if not isinstance(blinks, dict):
        raise fail(path, "'blinks' should be an object or null")
    stages = _numbers(_get(blinks, "stages", list, "blinks.", path), "blinks.stages", path)
    if not stages or any(not 0 < s <= 1 for s in stages) or list(stages) != sorted(set(stages)):
        raise fail(path, "'blinks.stages' should be increasing lid closures in (0, 1]")
    rect = _rect(_get(blinks, "rect", dict, "blinks.", path), "blinks.rect.", path)
    inner = rect.relative_to(patch)
    if not inner.fits_in(patch.width, patch.height):
        raise fail(path, f"blink rect {rect} is not inside the patch {patch}")
    entries = []
    for i, b in enumerate(_get(blinks, "patches", list, "blinks.", path)):
        where = f"blinks.patches[{i}]."
        entries.append(BlinkEntry(file=_inside(_get(b, "file", str, where, path), where + "file", path),
                                  row=_get(b, "row", int, where, path), col=_get(b, "col", int, where, path),
                                  stage=_get(b, "stage", int, where, path)))
    have = sorted((b.row, b.col, b.stage) for b in entries)
    want = [(r, c, s) for r, c in cells for s in range(len(stages))]
    if have != want:
        raise fail(path, f"blink patches cover {len(have)} cell stages with repeats or gaps; "
                         f"{len(cells)} cells x {len(stages)} stages need each exactly once")
    extra.update(blink_stages=stages, blink_rect=rect,
                 blinks=tuple(sorted(entries, key=lambda b: (b.row, b.col, b.stage))))
    return extra


def read_manifest(directory: str | os.PathLike) -> Manifest:
    """Read and validate ``manifest.json`` only (no images)."""
    directory = Path(directory)
    if directory.is_file():
        import cv2

        hint = ""
        if cv2.haveImageReader(str(directory)):  # by content: a portrait given where a pool belongs
            hint = f"; to make a pool from this image: monalisa precompute {directory} --out POOL_DIR"
        raise fail(directory, f"is a file, not a pool directory{hint}")
    if not directory.is_dir():
        raise fail(directory, "no such pool directory")
    path = directory / MANIFEST
    if not path.is_file():
        raise fail(path, "missing (not a pool directory?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise fail(path, f"bad JSON ({exc})") from exc
    return parse_manifest(data, path)
