"""The kiosk's built-in portrait (shipped inside matplotlib) and its pool, built once and cached."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from monalisa.errors import MonalisaError

log = logging.getLogger(__name__)

# Bump when the built-in pool's recipe changes, so caches rebuild (warp-3: the head turns, true degrees).
RECIPE = "warp-3"


def builtin_portrait_path() -> Path:
    """Grace Hopper's portrait from matplotlib's sample data (an installed dependency)."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise MonalisaError("the built-in portrait needs matplotlib: pip install matplotlib")
    path = Path(spec.submodule_search_locations[0]) / "mpl-data" / "sample_data" / "grace_hopper.jpg"
    if not path.is_file():
        raise MonalisaError(f"the built-in portrait is missing from matplotlib ({path})")
    return path


def cache_dir() -> Path:
    """Where built pools are cached (the user's cache directory; honours XDG_CACHE_HOME)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("monalisa")) / "pools"


def choose_pool(explicit: str | None, configured: str, build: bool = True,
                progress: bool = False) -> tuple[Path, str]:
    """The pool to show and why: the --pool flag, else ``[pool] path``, else the built-in pool.

    The built-in one is built on first use unless ``build`` is false (doctor only looks).
    """
    if explicit:
        return Path(explicit).expanduser().absolute(), "--pool"
    if configured:
        return Path(configured).expanduser().absolute(), "[pool] path"
    return builtin_pool_path(build=build, progress=progress), "built-in"


def builtin_pool_path(build: bool = True, progress: bool = True) -> Path:
    """The built-in pool's directory, building it on first use (unless ``build`` is false)."""
    from monalisa.images import sha256_file

    portrait = builtin_portrait_path()
    out = cache_dir() / f"builtin-{RECIPE}-{sha256_file(portrait)[:12]}"
    if build and not (out / "manifest.json").is_file():
        from monalisa.config import Config
        from precompute.build import PrecomputeOptions, build_pool

        log.info("building the built-in pool in %s (first run only)", out)
        summary = build_pool(PrecomputeOptions(portrait=portrait, out=out), Config(), progress=progress)
        log.info("%s", summary.line())
    return out
