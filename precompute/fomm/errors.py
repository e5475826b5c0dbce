"""The one error type the FOMM package raises for problems a user can fix."""

from monalisa.errors import MonalisaError


class FommError(MonalisaError):
    """A FOMM checkpoint, cache or runtime problem (missing file, wrong layout, missing extra)."""


INSTALL_HINT = "pip install torch==2.13.0 (the CPU build, first), then pip install -e '.[fomm]' (see DEVELOPERS.md)"


def import_torch():
    """Import torch, or explain which extra provides it."""
    try:
        import torch
    except ImportError as error:
        raise FommError(f"FOMM needs PyTorch, which is not installed ({error}); run: {INSTALL_HINT}") from error
    return torch


def import_onnxruntime():
    """Import onnxruntime, or explain which extra provides it."""
    try:
        import onnxruntime
    except ImportError as error:
        raise FommError(
            f"the onnxruntime FOMM runtime needs onnxruntime, which is not installed ({error}); run: {INSTALL_HINT}"
        ) from error
    return onnxruntime
