"""Image and file I/O shared by the pool format, the offline stage and tools: RGB read/write, file hashes.

Kept apart from the pool format so that readers of portraits and checkpoints need not import the pool format.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from monalisa.errors import ImageError

OPENCV_LOG_ERROR = 2  # cv::utils::logging::LOG_LEVEL_ERROR (the Python binding has no name for it)
READABLE = ("PNG", "JPEG", "WebP", "TIFF", "BMP", "PPM/PGM", "JPEG 2000")  # what cv2.imdecode reads here
_PIL_READABLE = {"PNG", "JPEG", "MPO", "WEBP", "TIFF", "BMP", "DIB", "PPM", "JPEG2000"}  # same, in PIL's names


def _fail(path: Path, problem: str) -> ImageError:
    return ImageError(f"{path}: {problem}")


def read_image(path: Path) -> np.ndarray:
    """Read an image file as RGB uint8, raising ImageError if missing or undecodable."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise _fail(path, f"cannot read file ({exc.strerror or exc})") from exc
    with _opencv_errors_only():
        image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        kind = _unsupported_kind(path)
        if kind:
            raise _fail(path, f"{kind} is not supported; use {', '.join(READABLE)}")
        raise _fail(path, "not a readable image (corrupt or truncated?)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@contextmanager
def _opencv_errors_only() -> Iterator[None]:
    """Keep OpenCV's own warnings (``[ WARN ] grfmt_png ... incomplete``) off stderr: the caller reports."""
    previous = cv2.getLogLevel()
    cv2.setLogLevel(OPENCV_LOG_ERROR)
    try:
        yield
    finally:
        cv2.setLogLevel(previous)


def _unsupported_kind(path: Path) -> str | None:
    """The format name of a valid image cv2 cannot decode (GIF, ICO, ...), or None if it is not such an image."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            kind = image.format
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError):  # nothing PIL knows either
        return None
    return kind if kind and kind not in _PIL_READABLE else None


def write_image(path: Path, rgb: np.ndarray) -> None:
    """Write an RGB uint8 image; the format follows the suffix.

    ImageError if the suffix is no image type; OSError if writing fails (callers name their target, not temps).
    """
    try:
        ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    except cv2.error:
        ok = False
    if not ok:
        raise ImageError(f"{path}: cannot write an image of this type (use .png or .jpg)")
    with open(path, "wb") as fh:  # unlike ndarray.tofile, a full disk raises ENOSPC, not a byte count
        fh.write(buf.tobytes())


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's contents, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
