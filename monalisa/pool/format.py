"""The frame pool: the contract between the offline stage and the kiosk.

A pool is a directory holding ``manifest.json``, the full-resolution portrait, one image per
grid cell with only the rectangle (the *patch*) that differs from the portrait, and (format 2)
per cell per blink stage an image of the smaller *blink rect*. Reading validates everything
(an edited portrait.png is refused); writing is atomic (temp dir, then rename).

Conventions: yaw < 0 looks toward the screen's left edge (smaller image x), pitch > 0
looks up. Column 0 holds the most negative yaw; row 0 the highest pitch.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from monalisa.atomic import os_error_text, staged_dir
from monalisa.errors import ImageError, PoolError
from monalisa.images import read_image, write_image
from monalisa.pool.geometry import Rect, nearest_index
from monalisa.pool.manifest import MANIFEST, BlinkEntry, Manifest, PatchEntry, fail, parse_manifest, read_manifest

PORTRAIT_FILE = "portrait.png"
PATCHES_DIR = "patches"
BLINKS_DIR = "blinks"


class Pool:
    """A validated pool in memory: the portrait, one patch per grid cell and its blink stages (RGB uint8)."""

    def __init__(self, directory: Path, manifest: Manifest, portrait: np.ndarray,
                 patches: dict[tuple[int, int], np.ndarray],
                 blinks: dict[tuple[int, int, int], np.ndarray] | None = None):
        self.directory = directory
        self.manifest = manifest
        self.portrait = portrait
        self.patches = patches
        self.blinks = blinks or {}
        self._entries = {(e.row, e.col): e for e in manifest.patches}

    @property
    def rows(self) -> int:
        return self.manifest.rows

    @property
    def cols(self) -> int:
        return self.manifest.cols

    @property
    def patch_rect(self) -> Rect:
        return self.manifest.patch

    @property
    def painted_gaze(self) -> tuple[float, float]:
        """The painting's own gaze (yaw, pitch), true degrees; (0, 0) for format-1 pools."""
        return self.manifest.painted_gaze

    @property
    def blink_stages(self) -> tuple[float, ...]:
        """Lid closures of the blink stages, increasing (empty: the pool has no blinks)."""
        return self.manifest.blink_stages

    @property
    def blink_rect(self) -> Rect | None:
        """The rectangle each blink patch covers (inside patch_rect), or None without blinks."""
        return self.manifest.blink_rect

    def cells(self) -> Iterator[tuple[int, int]]:
        """Every (row, col) in export order: rows top to bottom, columns left to right."""
        for row in range(self.rows):
            for col in range(self.cols):
                yield row, col

    def neutral_cell(self) -> tuple[int, int]:
        """The cell the idle kiosk rests on: the manifest's ``neutral`` (format 2, by default the one nearest
        the painted gaze), else the one nearest straight ahead."""
        return self.manifest.neutral_cell

    def nearest_cell(self, yaw: float, pitch: float) -> tuple[int, int]:
        """The cell whose manifest direction is nearest to (yaw, pitch) in degrees (ties: see nearest_index)."""
        return nearest_index(self.manifest.pitches, pitch), nearest_index(self.manifest.yaws, yaw)

    def shows(self, row: int, col: int) -> tuple[float, float]:
        """The (yaw, pitch) degrees a cell's patch really shows (its grid direction unless beyond the reach)."""
        entry = self._entries[(row, col)]
        return entry.yaw, entry.pitch

    def frame(self, row: int, col: int) -> np.ndarray:
        """The full composited frame for a cell: exactly what the kiosk shows."""
        out = self.portrait.copy()
        out[self.patch_rect.slices] = self.patches[(row, col)]
        return out

    def blink_patch(self, row: int, col: int, stage: int) -> np.ndarray:
        """The blink rect's pixels of one cell at blink stage ``stage`` (an index into blink_stages)."""
        if not 0 <= stage < len(self.blink_stages):
            raise IndexError(f"blink stage {stage} of a pool with {len(self.blink_stages)} stages")
        return self.blinks[(row, col, stage)]

    def blink_frame(self, row: int, col: int, stage: int) -> np.ndarray:
        """The full composited frame of a cell at a blink stage."""
        out = self.frame(row, col)
        assert self.blink_rect is not None
        out[self.blink_rect.slices] = self.blink_patch(row, col, stage)
        return out


def pixels_sha256(image: np.ndarray) -> str:
    """Digest of an image's decoded pixels and shape (a re-encoded but unchanged PNG keeps it)."""
    digest = hashlib.sha256(repr(image.shape).encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()


# ----------------------------------------------------------------------------- reading

def _read_image(path: Path) -> np.ndarray:
    """read_image for a file of the pool: an unreadable one makes the pool malformed (PoolError)."""
    try:
        return read_image(path)
    except ImageError as exc:
        raise PoolError(str(exc)) from exc


def _read_patch(path: Path, rect: Rect, rect_name: str, what: str) -> np.ndarray:
    """One patch file, which must exist and have the size of ``rect`` (called ``rect_name``)."""
    if not path.is_file():
        raise fail(path, f"missing {what}")
    patch = _read_image(path)
    if patch.shape[:2] != (rect.height, rect.width):
        raise fail(path, f"is {patch.shape[1]}x{patch.shape[0]}, {rect_name} is {rect.width}x{rect.height}")
    return patch


def load_pool(directory: str | os.PathLike) -> Pool:
    """Read a pool, checking that every file exists, decodes and has the size the manifest says, and
    (format 2) that portrait.png still holds the pixels the pool was built from."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    portrait_path = directory / manifest.portrait_file
    portrait = _read_image(portrait_path)
    if portrait.shape[:2] != (manifest.height, manifest.width):
        raise fail(portrait_path, f"is {portrait.shape[1]}x{portrait.shape[0]}, manifest says "
                                  f"{manifest.width}x{manifest.height}")
    if manifest.pixels_sha256 and pixels_sha256(portrait) != manifest.pixels_sha256:
        raise PoolError(f"{directory}: {manifest.portrait_file} was changed after the pool was built (its pixels "
                        "no longer match the manifest's sha256); rebuild the pool with `monalisa precompute`")
    patches = {(e.row, e.col): _read_patch(directory / e.file, manifest.patch, "the patch rectangle",
                                           f"frame for cell ({e.row}, {e.col})")
               for e in manifest.patches}
    blinks = {}
    if manifest.blink_rect is not None:
        blinks = {(b.row, b.col, b.stage): _read_patch(directory / b.file, manifest.blink_rect, "the blink rect",
                                                       f"blink stage {b.stage} of cell ({b.row}, {b.col})")
                  for b in manifest.blinks}
    return Pool(directory, manifest, portrait, patches, blinks)


# ----------------------------------------------------------------------------- writing

class PoolWriter:
    """Write a pool atomically: everything goes to a temp dir renamed into place on success.

    Use as a context manager; call ``add`` once per cell (and ``add_blink`` once per cell per stage
    when ``blink_stages`` are given). An exception (or Ctrl-C) inside the block removes the temp dir
    and leaves any previous pool at ``out`` untouched. ``before_publish(tmp_dir)``, if given, runs on
    the complete temp pool to add extra files. ``neutral`` defaults to the cell nearest ``painted_gaze``.
    """

    def __init__(self, out: str | os.PathLike, portrait: np.ndarray, portrait_sha256: str,
                 patch: Rect, yaws: list[float], pitches: list[float], engine: str,
                 engine_params: dict[str, Any], source: str = "",
                 before_publish: Callable[[Path], object] | None = None, *,
                 painted_gaze: tuple[float, float] = (0.0, 0.0), neutral: tuple[int, int] | None = None,
                 blink_stages: Sequence[float] = (), blink_rect: Rect | None = None):
        self.out = Path(out)
        if self.out.exists() and not _replaceable(self.out):
            raise PoolError(f"{self.out}: exists and is not a pool; refusing to overwrite it")
        height, width = portrait.shape[:2]
        if not patch.fits_in(width, height):
            raise PoolError(f"patch {patch} does not fit in the {width}x{height} portrait")
        self.blink_stages = tuple(float(s) for s in blink_stages)
        if self.blink_stages and (blink_rect is None
                                  or not blink_rect.relative_to(patch).fits_in(patch.width, patch.height)):
            raise PoolError(f"blink rect {blink_rect} must lie inside the patch {patch}")
        self.portrait = portrait
        self.patch = patch
        self.blink_rect = blink_rect if self.blink_stages else None
        self.yaws, self.pitches = [float(v) for v in yaws], [float(v) for v in pitches]
        if neutral is None:
            neutral = nearest_index(self.pitches, painted_gaze[1]), nearest_index(self.yaws, painted_gaze[0])
        self.meta = dict(portrait_sha256=portrait_sha256, engine=engine, engine_params=engine_params,
                         source=source, painted_gaze=(float(painted_gaze[0]), float(painted_gaze[1])),
                         neutral=(int(neutral[0]), int(neutral[1])), pixels_sha256=pixels_sha256(portrait))
        self.before_publish = before_publish
        self.entries: list[PatchEntry] = []
        self.blinks: list[BlinkEntry] = []
        self.tmp: Path | None = None
        self._encoder: ThreadPoolExecutor | None = None
        self._pending: list[Future] = []
        self._writing: AbstractContextManager[PoolWriter] | None = None

    def __enter__(self) -> PoolWriter:
        self._writing = self._write()
        return self._writing.__enter__()

    def __exit__(self, exc_type, exc, tb) -> bool | None:
        assert self._writing is not None
        return self._writing.__exit__(exc_type, exc, tb)

    @contextmanager
    def _write(self) -> Iterator[PoolWriter]:
        # PNG encoding runs on its own thread (OpenCV releases the GIL), overlapping the engine's rendering;
        # the executor is left (its writes finished) before the temp dir is published or removed.
        with staged_dir(self.out, PoolError) as tmp, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="pool-writer") as encoder:
            self.tmp, self._encoder, self._pending = tmp, encoder, []
            try:
                (tmp / PATCHES_DIR).mkdir()
                if self.blink_stages:
                    (tmp / BLINKS_DIR).mkdir()
                write_image(tmp / PORTRAIT_FILE, self.portrait)
                yield self
                for pending in self._pending:
                    pending.result()  # an OSError from a write surfaces here
                self._write_manifest()
                if self.before_publish is not None:
                    self.before_publish(tmp)
            except OSError as exc:  # e.g. the disk filled up mid-build
                raise PoolError(f"{self.out}: cannot write the pool ({os_error_text(exc)})") from None

    def add(self, row: int, col: int, patch: np.ndarray, shows: tuple[float, float] | None = None) -> None:
        """Store the patch image for one grid cell; ``shows`` is the (yaw, pitch) it really shows when that
        differs from the cell's grid direction (a cell beyond what the engine can reach)."""
        assert self.tmp is not None, "use PoolWriter as a context manager"
        _check_patch(patch, self.patch, f"patch for cell ({row}, {col})")
        name = f"{PATCHES_DIR}/r{row:02d}_c{col:02d}.png"
        self._store(name, patch)
        yaw, pitch = shows if shows is not None else (self.yaws[col], self.pitches[row])
        self.entries.append(PatchEntry(name, row, col, round(float(yaw), 3), round(float(pitch), 3)))

    def add_blink(self, row: int, col: int, stage: int, patch: np.ndarray) -> None:
        """Store the blink rect's pixels of one cell at blink stage ``stage`` (index into blink_stages)."""
        assert self.tmp is not None, "use PoolWriter as a context manager"
        if self.blink_rect is None or not 0 <= stage < len(self.blink_stages):
            raise PoolError(f"blink stage {stage} for cell ({row}, {col}): the pool has "
                            f"{len(self.blink_stages)} blink stages")
        _check_patch(patch, self.blink_rect, f"blink stage {stage} of cell ({row}, {col})")
        name = f"{BLINKS_DIR}/r{row:02d}_c{col:02d}_s{stage}.png"
        self._store(name, patch)
        self.blinks.append(BlinkEntry(name, row, col, stage))

    def _store(self, name: str, pixels: np.ndarray) -> None:
        """Queue one image for the encoder thread (a copy: the caller may reuse its buffer)."""
        assert self.tmp is not None and self._encoder is not None
        self._pending.append(self._encoder.submit(write_image, self.tmp / name, pixels.copy()))

    def _write_manifest(self) -> None:
        assert self.tmp is not None
        height, width = self.portrait.shape[:2]
        manifest = Manifest(
            portrait_file=PORTRAIT_FILE, width=width, height=height, patch=self.patch,
            yaws=tuple(self.yaws), pitches=tuple(self.pitches),
            patches=tuple(sorted(self.entries, key=lambda f: (f.row, f.col))),
            blink_stages=self.blink_stages, blink_rect=self.blink_rect,
            blinks=tuple(sorted(self.blinks, key=lambda b: (b.row, b.col, b.stage))),
            created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), **self.meta)
        text = json.dumps(manifest.to_json(), indent=1)
        parse_manifest(json.loads(text), self.tmp / MANIFEST)  # never publish a pool we can't read
        (self.tmp / MANIFEST).write_text(text, encoding="utf-8")


def _check_patch(patch: np.ndarray, rect: Rect, what: str) -> None:
    if patch.shape != (rect.height, rect.width, 3) or patch.dtype != np.uint8:
        raise PoolError(f"{what} is {patch.shape} {patch.dtype}, expected ({rect.height}, {rect.width}, 3) uint8")


def _replaceable(path: Path) -> bool:
    """Only an old pool or an empty directory may be replaced by a new pool."""
    return path.is_dir() and ((path / MANIFEST).is_file() or not any(path.iterdir()))
