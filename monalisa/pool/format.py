"""The frame pool: the contract between the offline stage and the kiosk.

A pool is a directory holding ``manifest.json``, the full-resolution portrait and one
image per grid cell with only the rectangle (the *patch*) that differs from the portrait.
Reading validates everything; writing is atomic (temp dir, then rename).

Conventions: yaw < 0 looks toward the screen's left edge (smaller image x), pitch > 0
looks up. Column 0 holds the most negative yaw; row 0 the highest pitch.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from monalisa.atomic import os_error_text, staged_dir
from monalisa.errors import ImageError, PoolError
from monalisa.images import read_image, write_image
from monalisa.pool.geometry import Rect, nearest_index

FORMAT = "monalisa-pool/1"
MANIFEST = "manifest.json"
PORTRAIT_FILE = "portrait.png"
FRAMES_DIR = "frames"


@dataclass(frozen=True)
class FrameEntry:
    """One grid cell: its patch file and the gaze direction (degrees) it shows."""

    file: str
    row: int
    col: int
    yaw: float
    pitch: float


@dataclass(frozen=True)
class Manifest:
    """Everything ``manifest.json`` says about a pool."""

    portrait_file: str
    width: int
    height: int
    portrait_sha256: str
    patch: Rect
    yaws: tuple[float, ...]
    pitches: tuple[float, ...]
    frames: tuple[FrameEntry, ...]
    engine: str
    engine_params: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    source: str = ""

    @property
    def rows(self) -> int:
        return len(self.pitches)

    @property
    def cols(self) -> int:
        return len(self.yaws)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "portrait": {"file": self.portrait_file, "width": self.width, "height": self.height,
                         "sha256": self.portrait_sha256, "source": self.source},
            "patch": {"x": self.patch.x, "y": self.patch.y,
                      "width": self.patch.width, "height": self.patch.height},
            "grid": {"yaw": list(self.yaws), "pitch": list(self.pitches)},
            "frames": [{"file": f.file, "row": f.row, "col": f.col, "yaw": f.yaw, "pitch": f.pitch}
                       for f in self.frames],
            "engine": {"name": self.engine, "params": self.engine_params},
            "created": self.created,
        }


class Pool:
    """A validated pool in memory: the portrait and one patch per grid cell (RGB uint8)."""

    def __init__(self, directory: Path, manifest: Manifest, portrait: np.ndarray,
                 patches: dict[tuple[int, int], np.ndarray]):
        self.directory = directory
        self.manifest = manifest
        self.portrait = portrait
        self.patches = patches

    @property
    def rows(self) -> int:
        return self.manifest.rows

    @property
    def cols(self) -> int:
        return self.manifest.cols

    @property
    def patch_rect(self) -> Rect:
        return self.manifest.patch

    def cells(self) -> Iterator[tuple[int, int]]:
        """Every (row, col) in export order: rows top to bottom, columns left to right."""
        for row in range(self.rows):
            for col in range(self.cols):
                yield row, col

    def neutral_cell(self) -> tuple[int, int]:
        """The cell looking straight out of the painting (nearest to yaw 0, pitch 0)."""
        return self.nearest_cell(0.0, 0.0)

    def nearest_cell(self, yaw: float, pitch: float) -> tuple[int, int]:
        """The cell whose manifest direction is nearest to (yaw, pitch) in degrees (ties: see nearest_index)."""
        return nearest_index(self.manifest.pitches, pitch), nearest_index(self.manifest.yaws, yaw)

    def frame(self, row: int, col: int) -> np.ndarray:
        """The full composited frame for a cell: exactly what the kiosk shows."""
        out = self.portrait.copy()
        out[self.patch_rect.slices] = self.patches[(row, col)]
        return out


# ----------------------------------------------------------------------------- reading

def _fail(path: Path, problem: str) -> PoolError:
    return PoolError(f"{path}: {problem}")


def _read_image(path: Path) -> np.ndarray:
    """read_image for a file of the pool: an unreadable one makes the pool malformed (PoolError)."""
    try:
        return read_image(path)
    except ImageError as exc:
        raise PoolError(str(exc)) from exc


def _get(obj: Any, key: str, kind: type | tuple[type, ...], where: str, path: Path) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise _fail(path, f"missing '{where}{key}'")
    value = obj[key]
    if kind in (int, float) or kind == (int, float):
        ok = isinstance(value, kind) and not isinstance(value, bool)
    else:
        ok = isinstance(value, kind)
    if not ok:
        names = kind.__name__ if isinstance(kind, type) else "number"
        raise _fail(path, f"'{where}{key}' should be {names}, got {json.dumps(value)[:40]}")
    return value


def _numbers(values: list, where: str, path: Path) -> tuple[float, ...]:
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise _fail(path, f"'{where}' should hold only numbers (degrees)")
    return tuple(float(v) for v in values)


def _inside(name: str, where: str, path: Path) -> str:
    """A file name from the manifest, refused if it would point outside the pool directory."""
    parts = Path(name).parts
    if Path(name).is_absolute() or ".." in parts or not parts:
        raise _fail(path, f"'{where}' must be a path inside the pool, got {name!r}")
    return name


def parse_manifest(data: Any, path: Path) -> Manifest:
    """Check the manifest's structure and consistency; raise PoolError naming the problem."""
    if not isinstance(data, dict):
        raise _fail(path, "manifest is not a JSON object")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise _fail(path, f"unknown pool format {json.dumps(fmt)} (this version reads '{FORMAT}')")
    portrait = _get(data, "portrait", dict, "", path)
    width = _get(portrait, "width", int, "portrait.", path)
    height = _get(portrait, "height", int, "portrait.", path)
    if width <= 0 or height <= 0:
        raise _fail(path, f"portrait size {width}x{height} is not positive")
    patch_obj = _get(data, "patch", dict, "", path)
    patch = Rect(*(_get(patch_obj, k, int, "patch.", path) for k in ("x", "y", "width", "height")))
    if not patch.fits_in(width, height):
        raise _fail(path, f"patch {patch} does not fit in the {width}x{height} portrait")
    grid = _get(data, "grid", dict, "", path)
    yaws = _numbers(_get(grid, "yaw", list, "grid.", path), "grid.yaw", path)
    pitches = _numbers(_get(grid, "pitch", list, "grid.", path), "grid.pitch", path)
    if not yaws or not pitches:
        raise _fail(path, "grid needs at least one yaw and one pitch")
    if list(yaws) != sorted(yaws) or list(pitches) != sorted(pitches, reverse=True):
        raise _fail(path, "grid.yaw must increase and grid.pitch must decrease")
    frames_raw = _get(data, "frames", list, "", path)
    frames = []
    for i, f in enumerate(frames_raw):
        where = f"frames[{i}]."
        frames.append(FrameEntry(
            file=_inside(_get(f, "file", str, where, path), where + "file", path), row=_get(f, "row", int, where, path),
            col=_get(f, "col", int, where, path), yaw=float(_get(f, "yaw", (int, float), where, path)),
            pitch=float(_get(f, "pitch", (int, float), where, path))))
    cells = sorted((f.row, f.col) for f in frames)
    expected = [(r, c) for r in range(len(pitches)) for c in range(len(yaws))]
    if cells != expected:
        raise _fail(path, f"frames cover {len(cells)} cells with repeats or gaps; the "
                          f"{len(pitches)}x{len(yaws)} grid needs each of {len(expected)} exactly once")
    engine = _get(data, "engine", dict, "", path)
    return Manifest(
        portrait_file=_inside(_get(portrait, "file", str, "portrait.", path), "portrait.file", path),
        width=width, height=height,
        portrait_sha256=_get(portrait, "sha256", str, "portrait.", path), patch=patch,
        yaws=yaws, pitches=pitches, frames=tuple(sorted(frames, key=lambda f: (f.row, f.col))),
        engine=_get(engine, "name", str, "engine.", path), engine_params=dict(engine.get("params", {})),
        created=str(data.get("created", "")), source=str(portrait.get("source", "")))


def read_manifest(directory: str | os.PathLike) -> Manifest:
    """Read and validate ``manifest.json`` only (no images)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise _fail(directory, "no such pool directory")
    path = directory / MANIFEST
    if not path.is_file():
        raise _fail(path, "missing (not a pool directory?)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(path, f"bad JSON ({exc})") from exc
    return parse_manifest(data, path)


def load_pool(directory: str | os.PathLike) -> Pool:
    """Read a pool, checking that every file exists, decodes and has the size the manifest says."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    portrait_path = directory / manifest.portrait_file
    portrait = _read_image(portrait_path)
    if portrait.shape[:2] != (manifest.height, manifest.width):
        raise _fail(portrait_path, f"is {portrait.shape[1]}x{portrait.shape[0]}, manifest says "
                                   f"{manifest.width}x{manifest.height}")
    patches = {}
    want = (manifest.patch.height, manifest.patch.width)
    for entry in manifest.frames:
        frame_path = directory / entry.file
        if not frame_path.is_file():
            raise _fail(frame_path, f"missing frame for cell ({entry.row}, {entry.col})")
        patch = _read_image(frame_path)
        if patch.shape[:2] != want:
            raise _fail(frame_path, f"is {patch.shape[1]}x{patch.shape[0]}, the patch rectangle "
                                    f"is {want[1]}x{want[0]}")
        patches[(entry.row, entry.col)] = patch
    return Pool(directory, manifest, portrait, patches)


# ----------------------------------------------------------------------------- writing

class PoolWriter:
    """Write a pool atomically: everything goes to a temp dir renamed into place on success.

    Use as a context manager; call ``add`` once per cell. An exception (or Ctrl-C) inside
    the block removes the temp dir and leaves any previous pool at ``out`` untouched.
    ``before_publish(tmp_dir)``, if given, runs on the complete temp pool to add extra files.
    """

    def __init__(self, out: str | os.PathLike, portrait: np.ndarray, portrait_sha256: str,
                 patch: Rect, yaws: list[float], pitches: list[float], engine: str,
                 engine_params: dict[str, Any], source: str = "",
                 before_publish: Callable[[Path], object] | None = None):
        self.out = Path(out)
        if self.out.exists() and not _replaceable(self.out):
            raise PoolError(f"{self.out}: exists and is not a pool; refusing to overwrite it")
        height, width = portrait.shape[:2]
        if not patch.fits_in(width, height):
            raise PoolError(f"patch {patch} does not fit in the {width}x{height} portrait")
        self.portrait = portrait
        self.patch = patch
        self.yaws, self.pitches = [float(v) for v in yaws], [float(v) for v in pitches]
        self.meta = dict(portrait_sha256=portrait_sha256, engine=engine,
                         engine_params=engine_params, source=source)
        self.before_publish = before_publish
        self.frames: list[FrameEntry] = []
        self.tmp: Path | None = None
        self._writing: AbstractContextManager[PoolWriter] | None = None

    def __enter__(self) -> PoolWriter:
        self._writing = self._write()
        return self._writing.__enter__()

    def __exit__(self, exc_type, exc, tb) -> bool | None:
        assert self._writing is not None
        return self._writing.__exit__(exc_type, exc, tb)

    @contextmanager
    def _write(self) -> Iterator[PoolWriter]:
        with staged_dir(self.out, PoolError) as tmp:
            self.tmp = tmp
            try:
                (tmp / FRAMES_DIR).mkdir()
                write_image(tmp / PORTRAIT_FILE, self.portrait)
                yield self
                self._write_manifest()
                if self.before_publish is not None:
                    self.before_publish(tmp)
            except OSError as exc:  # e.g. the disk filled up mid-build
                raise PoolError(f"{self.out}: cannot write the pool ({os_error_text(exc)})") from None

    def add(self, row: int, col: int, patch: np.ndarray) -> None:
        """Store the patch image for one grid cell."""
        assert self.tmp is not None, "use PoolWriter as a context manager"
        if patch.shape != (self.patch.height, self.patch.width, 3) or patch.dtype != np.uint8:
            raise PoolError(f"patch for cell ({row}, {col}) is {patch.shape} {patch.dtype}, expected "
                            f"({self.patch.height}, {self.patch.width}, 3) uint8")
        name = f"{FRAMES_DIR}/r{row:02d}_c{col:02d}.png"
        write_image(self.tmp / name, patch)
        self.frames.append(FrameEntry(name, row, col, self.yaws[col], self.pitches[row]))

    def _write_manifest(self) -> None:
        assert self.tmp is not None
        height, width = self.portrait.shape[:2]
        manifest = Manifest(
            portrait_file=PORTRAIT_FILE, width=width, height=height, patch=self.patch,
            yaws=tuple(self.yaws), pitches=tuple(self.pitches),
            frames=tuple(sorted(self.frames, key=lambda f: (f.row, f.col))),
            created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), **self.meta)
        text = json.dumps(manifest.to_json(), indent=1)
        parse_manifest(json.loads(text), self.tmp / MANIFEST)  # never publish a pool we can't read
        (self.tmp / MANIFEST).write_text(text, encoding="utf-8")


def _replaceable(path: Path) -> bool:
    """Only an old pool or an empty directory may be replaced by a new pool."""
    return path.is_dir() and ((path / MANIFEST).is_file() or not any(path.iterdir()))
