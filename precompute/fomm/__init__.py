"""Our First Order Motion Model: loads the official checkpoints, runs in torch or onnxruntime.

    model = FommModel.from_checkpoint("vox-cpk.pth.tar", runtime="onnxruntime")
    frame = model.animate(source, driving, driving_initial)

Importing this package is cheap: torch and onnxruntime are imported when a model is loaded.
"""

from precompute.fomm.checkpoint import FommNetworkConfig, make_random_checkpoint
from precompute.fomm.errors import FommError
from precompute.fomm.runtime import FommModel

__all__ = ["FommError", "FommModel", "FommNetworkConfig", "make_random_checkpoint"]
