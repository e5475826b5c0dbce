"""The precompute pipeline: portrait -> faces -> engine -> pool on disk, with progress and a summary."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monalisa.config import Config
from monalisa.errors import UsageError
from monalisa.images import sha256_file, write_image
from monalisa.pool.format import PoolWriter, load_pool
from monalisa.pool.geometry import Rect, nearest_index
from monalisa.pool.views import contact_sheet
from precompute.engine import Engine, grid_angles

log = logging.getLogger(__name__)

SHEET_FILE = "sheet.png"
ENGINES = ("warp", "fomm")
DEFAULT_FACES = "all"  # also the CLI's default; any other --faces value was given on purpose
DEFAULT_BLINK_STAGES = (0.5, 1.0)   # lid closures written per cell: half and fully shut
IDLE = ("painted", "straight")      # the idle frame: the painting's own gaze, or the one looking straight out
LIMITS = {  # flag: (min, max)
    "yaw_steps": (1, 181),
    "pitch_steps": (1, 61),
    "max_yaw": (1.0, 60.0),
    "max_pitch": (1.0, 45.0),
}


@dataclass
class PrecomputeOptions:
    """What `monalisa precompute` was asked to do."""

    portrait: Path
    out: Path
    engine: str = "warp"
    yaw_steps: int = 33
    pitch_steps: int = 1
    max_yaw: float = 30.0
    max_pitch: float = 15.0
    faces: str = DEFAULT_FACES
    eyes: list[tuple[float, ...]] = field(default_factory=list)
    iris_radius: float | None = None
    checkpoint: Path | None = None
    driving: Path | None = None
    sheet: bool = True
    blinks: bool = True
    blink_stages: tuple[float, ...] = DEFAULT_BLINK_STAGES
    idle: str = "painted"

    def validate(self) -> None:
        """Raise UsageError naming the first flag whose value is out of range."""
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise UsageError(f"--{name.replace('_', '-')} must be from {low:g} to {high:g}, got {value:g}")
        if self.engine not in ENGINES:
            raise UsageError(f"--engine must be one of {', '.join(ENGINES)}, got {self.engine!r}")
        if self.faces not in ("all", "largest") and not (self.faces.isdigit() and int(self.faces) >= 1):
            raise UsageError(f"--faces must be all, largest or a count >= 1, got {self.faces!r}")
        for eye in self.eyes:
            if len(eye) not in (4, 5):
                raise UsageError("--eyes takes LX,LY,RX,RY or LX,LY,RX,RY,R (pixels)")
        if self.iris_radius is not None and not (0 < self.iris_radius < float("inf")):
            raise UsageError(f"--iris-radius must be a number of pixels > 0, got {self.iris_radius:g}")
        if self.engine == "fomm" and (self.eyes or self.faces != DEFAULT_FACES or self.iris_radius is not None):
            flag = "--eyes" if self.eyes else "--iris-radius" if self.iris_radius is not None else "--faces"
            raise UsageError(f"--engine fomm always animates the largest detected face; "
                             f"{flag} works only with --engine warp")
        if self.eyes and self.faces != DEFAULT_FACES:
            raise UsageError("--faces picks among detected faces and cannot be used with --eyes "
                             "(give one --eyes per face instead)")
        if self.engine == "fomm" and (self.checkpoint is None or self.driving is None):
            raise UsageError("--engine fomm needs --checkpoint FILE and --driving VIDEO")
        stages = self.blink_stages
        if not stages or any(not 0 < s <= 1 for s in stages) or list(stages) != sorted(set(stages)):
            raise UsageError(f"--blink-stages must be increasing lid closures in (0, 1] like 0.5,1, "
                             f"got {','.join(f'{s:g}' for s in stages) or 'nothing'}")
        if self.idle not in IDLE:
            raise UsageError(f"--idle must be one of {', '.join(IDLE)}, got {self.idle!r}")

    @property
    def yaws(self) -> list[float]:
        return grid_angles(self.yaw_steps, self.max_yaw)

    @property
    def pitches(self) -> list[float]:
        return sorted(grid_angles(self.pitch_steps, self.max_pitch), reverse=True)

    def warn_if_no_centre(self) -> None:
        """Log which frame the idle kiosk will rest on when an even step count leaves no straight-ahead one."""
        even = [f"--{name}-steps {steps}" for name, steps in (("yaw", self.yaw_steps), ("pitch", self.pitch_steps))
                if steps % 2 == 0]
        if even:
            yaw = self.yaws[nearest_index(self.yaws, 0.0)]
            pitch = self.pitches[nearest_index(self.pitches, 0.0)]
            log.warning("%s %s no frame looking straight ahead; the idle frame will be the one at yaw %+g, "
                        "pitch %+g degrees (use an odd count to get a centre frame)", " and ".join(even),
                        "leaves" if len(even) == 1 else "leave", yaw, pitch)

    def warn_if_still(self) -> None:
        """Log that the eyes will never move (sideways) when the grid has a single column."""
        if self.yaw_steps == 1 and self.pitch_steps == 1:
            log.warning("--yaw-steps 1 and --pitch-steps 1 make a single frame: the eyes will never move "
                        "(use --yaw-steps 33 or more)")
        elif self.yaw_steps == 1:
            log.warning("--yaw-steps 1: the eyes will never move left or right, only up and down "
                        "(use --yaw-steps 33 or more)")


@dataclass
class BuildSummary:
    """What a build produced, for the one-line summary."""

    out: Path
    rows: int
    cols: int
    patch: Rect
    seconds: float
    sheet: Path | None
    blink_stages: tuple[float, ...] = ()
    head: str = ""       # the engine's head limits and painted gaze, when it turns heads
    faces: str = ""             # how the faces were found, e.g. "1 face by facemesh"

    def line(self) -> str:
        stages = len(self.blink_stages)
        blinks = f" + {stages} blink stage{'s' if stages != 1 else ''} each" if stages else ""
        frames = self.rows * self.cols
        text = (f"pool {self.out}: {frames} frame{'s' if frames != 1 else ''} ({self.rows}x{self.cols}){blinks}, "
                f"patch {self.patch.width}x{self.patch.height} at ({self.patch.x}, {self.patch.y}), "
                f"{self.seconds:.1f} s")
        text += f"; {self.faces}" if self.faces else ""
        text += f"; {self.head}" if self.head else ""
        return text + (f"; contact sheet: {self.sheet}" if self.sheet else "")


def head_text(engine: Engine) -> str:
    """"painted gaze Y/P, head yaw -a..+b, pitch -c..+d, reach yaw -e..+f degrees" for engines that
    turn heads, else ""."""
    painted = getattr(engine, "painted_gaze", None)
    limits = getattr(engine, "head_limits", None)
    reach = getattr(engine, "reach", None)
    if painted is None or limits is None or reach is None:
        return ""
    yaw, pitch = painted()
    low, high, down, up = limits()
    reach_low, reach_high, reach_down, reach_up = reach()
    return (f"painted gaze {yaw:+.1f}/{pitch:+.1f}, head yaw {low:+.1f}..{high:+.1f}, "
            f"pitch {down:+.1f}..{up:+.1f}, reach yaw {reach_low:+.1f}..{reach_high:+.1f}, "
            f"pitch {reach_down:+.1f}..{reach_up:+.1f} degrees")


def make_engine(image: np.ndarray, options: PrecomputeOptions, config: Config) -> Engine:
    """Find the faces (or take the given eye points) and construct the chosen engine."""
    from precompute import portrait

    if options.engine == "fomm":
        from precompute.fomm.engine import FommEngine

        face = portrait.find_faces(image, "largest")[0]
        return FommEngine(image, face, options.checkpoint, options.driving, config.fomm,
                          options.yaws, options.pitches)
    from precompute.warp import WarpEngine

    if options.eyes:
        faces = portrait.faces_from_eye_points(image, options.eyes, iris_radius=options.iris_radius)
        return WarpEngine(image, faces, config.warp, options.yaws, options.pitches)
    from precompute.gaze_plan import FaceMeshReader

    with FaceMeshReader() as reader:  # one FaceMesh graph finds the faces and reads their gaze
        which = int(options.faces) if options.faces.isdigit() else options.faces
        faces = portrait.find_faces(image, which, session=reader.session)
        if options.iris_radius is not None:
            faces = portrait.with_iris_radius(faces, options.iris_radius)
        return WarpEngine(image, faces, config.warp, options.yaws, options.pitches, reader=reader)


def build_pool(options: PrecomputeOptions, config: Config, progress: bool = True) -> BuildSummary:
    """Build the pool described by ``options``; nothing is left at ``out`` if anything fails."""
    from tqdm import tqdm

    from precompute.portrait import load_portrait

    options.validate()
    options.warn_if_no_centre()
    options.warn_if_still()
    start = time.perf_counter()
    image = load_portrait(options.portrait, background=config.render.background_rgb)
    engine = make_engine(image, options, config)
    yaws, pitches = options.yaws, options.pitches
    cells = [(row, col) for row in range(len(pitches)) for col in range(len(yaws))]
    painted = tuple(engine.painted_gaze()) if hasattr(engine, "painted_gaze") else (0.0, 0.0)
    idle = painted if options.idle == "painted" else (0.0, 0.0)
    stages = options.blink_stages if options.blinks and _blinks(engine) else ()
    params = engine.params()
    writer = PoolWriter(options.out, image, sha256_file(options.portrait), engine.patch_rect(), yaws,
                        pitches, engine.name, params, source=options.portrait.name,
                        before_publish=_add_sheet if options.sheet else None, painted_gaze=painted,
                        neutral=(nearest_index(pitches, idle[1]), nearest_index(yaws, idle[0])),
                        blink_stages=stages, blink_rect=engine.blink_rect() if stages else None)
    shows = getattr(engine, "shows", None)
    first, moves = None, False
    with contextlib.closing(engine), writer, tqdm(cells, desc=f"{engine.name} {options.portrait.name}", unit="frame",
                      disable=not progress, leave=False) as bar:
        for row, col in bar:
            patch = engine.render(yaws[col], pitches[row])
            writer.add(row, col, patch, shows(yaws[col], pitches[row]) if shows else None)
            first = patch if first is None else first
            moves = moves or not np.array_equal(patch, first)
            for stage, closure in enumerate(stages):
                writer.add_blink(row, col, stage, engine.render_blink(yaws[col], pitches[row], closure))
        if not moves and len(cells) > 1:
            log.warning("all %d frames are identical: the eyes will never move (is the face too small, or "
                        "[warp] iris_travel too low?)", len(cells))
    return BuildSummary(options.out, len(pitches), len(yaws), engine.patch_rect(),
                        time.perf_counter() - start, options.out / SHEET_FILE if options.sheet else None,
                        tuple(stages), head_text(engine), faces_found(params.get("faces", [])))


def _blinks(engine: Engine) -> bool:
    """Whether the engine can close the lids (precompute.engine.BlinkingEngine)."""
    return callable(getattr(engine, "render_blink", None)) and callable(getattr(engine, "blink_rect", None))


def faces_found(entries: list[dict]) -> str:
    """How the faces in the manifest were found, for the summary: "2 faces: facemesh, blazeface (...)"."""
    if not entries:
        return ""
    ways = [entry.get("from", "?") + (f" ({entry['how']})" if entry.get("how") else "") for entry in entries]
    if len(set(ways)) == 1:
        return f"{len(ways)} face{'s' * (len(ways) > 1)} by {ways[0]}"
    return f"{len(ways)} faces by " + ", ".join(ways)


def _add_sheet(tmp_pool: Path) -> None:
    """Draw the contact sheet into the finished temp pool, so it is published with it (or not at all)."""
    write_image(tmp_pool / SHEET_FILE, contact_sheet(load_pool(tmp_pool)))
