"""Export the FOMM networks to ONNX once per checkpoint and run them with onnxruntime.

Exports live beside the checkpoint in `<checkpoint>.onnx-cache/<key>/`, where the key hashes the
checkpoint's bytes, the configuration, the image size and the export format version, so a changed
file or setting never reuses stale graphs. Each graph is written atomically (monalisa.atomic), so an
interrupted export never leaves a half-written model behind.

Graph inputs and outputs (batch 1, float32, images in [0, 1], NCHW):
    kp_detector.onnx: image (1, 3, H, W) -> value (1, K, 2), jacobian (1, K, 2, 2)
    generator.onnx:   source (1, 3, H, W), source_value, source_jacobian, driving_value,
                      driving_jacobian -> prediction (1, 3, H, W)
"""

import hashlib
import logging
import os
import warnings
from dataclasses import asdict
from pathlib import Path

from monalisa.atomic import write_file
from monalisa.images import sha256_file
from precompute.fomm.errors import FommError, import_onnxruntime, import_torch

EXPORT_VERSION = 1
OPSET = 17
KP_DETECTOR_FILE = "kp_detector.onnx"
GENERATOR_FILE = "generator.onnx"
READABLE_FILE_MODE = 0o644

log = logging.getLogger(__name__)


def cache_directory(checkpoint_path, config, image_size, cache_root=None):
    """Where the exported graphs for this checkpoint, config and image size belong."""
    checkpoint_path = Path(checkpoint_path)
    digest = hashlib.sha256()
    digest.update(sha256_file(checkpoint_path).encode())
    digest.update(repr(sorted(asdict(config).items())).encode())
    digest.update(f"size={image_size};export={EXPORT_VERSION};opset={OPSET}".encode())
    root = Path(cache_root) if cache_root else checkpoint_path.with_name(checkpoint_path.name + ".onnx-cache")
    return root / digest.hexdigest()[:16]


def _export_atomically(module, example_inputs, input_names, output_names, destination):
    """torch.onnx.export to `destination` atomically (monalisa.atomic), readable by all like a normal file."""
    torch = import_torch()

    def export(temporary):
        with torch.no_grad(), warnings.catch_warnings():
            # The shapes are fixed per export, so the tracer's notes about shape-dependent Python
            # branches, skipped constant folds and the legacy exporter's deprecation are expected.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export",
                                    category=DeprecationWarning)
            torch.onnx.export(module, example_inputs, str(temporary), input_names=input_names,
                              output_names=output_names, opset_version=OPSET, do_constant_folding=True,
                              dynamo=False)

    write_file(destination, export, FommError, mode=READABLE_FILE_MODE)


def export_networks(kp_detector, generator, config, directory, image_size=256):
    """Write kp_detector.onnx and generator.onnx for the given (eval-mode) torch networks."""
    torch = import_torch()
    from precompute.fomm.rewrites import export_copy

    directory = Path(directory)
    image = torch.rand(1, config.num_channels, image_size, image_size)
    value = torch.rand(1, config.num_kp, 2) * 2 - 1
    jacobian = torch.eye(2).repeat(1, config.num_kp, 1, 1)
    generator_inputs = (image, value, jacobian, value, jacobian)
    kp_detector = export_copy(kp_detector, (image,))
    generator = export_copy(generator, generator_inputs)
    _export_atomically(kp_detector, (image,), ["image"], ["value", "jacobian"], directory / KP_DETECTOR_FILE)
    _export_atomically(generator, generator_inputs,
                       ["source", "source_value", "source_jacobian", "driving_value", "driving_jacobian"],
                       ["prediction"], directory / GENERATOR_FILE)


def available_cores():
    """CPU cores this process may run on (respects affinity masks, unlike os.cpu_count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def session_options(threads=None):
    """onnxruntime settings for a small CPU: all graph optimisations, one thread per core, sequential ops."""
    onnxruntime = import_onnxruntime()
    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = threads or available_cores()
    options.inter_op_num_threads = 1
    return options


class OnnxRunner:
    """Runs the exported keypoint detector and generator with onnxruntime on the CPU.

    Same interface as the torch runner: NCHW float32 arrays in, float32 arrays out.
    """

    def __init__(self, directory, threads=None):
        onnxruntime = import_onnxruntime()
        ort_errors = onnxruntime.capi.onnxruntime_pybind11_state
        directory = Path(directory)
        options = session_options(threads)
        providers = ["CPUExecutionProvider"]
        try:
            self.kp_session = onnxruntime.InferenceSession(str(directory / KP_DETECTOR_FILE), options,
                                                           providers=providers)
            self.generator_session = onnxruntime.InferenceSession(str(directory / GENERATOR_FILE), options,
                                                                  providers=providers)
        except (ort_errors.Fail, ort_errors.InvalidGraph, ort_errors.InvalidProtobuf, ort_errors.NoSuchFile) as error:
            raise FommError(f"cannot load the ONNX FOMM models in {directory} (delete that folder to "
                            f"re-export): {str(error).splitlines()[0]}") from error

    def keypoints(self, image):
        """image (1, 3, H, W) -> (values (1, K, 2), jacobians (1, K, 2, 2))."""
        value, jacobian = self.kp_session.run(["value", "jacobian"], {"image": image})
        return value, jacobian

    def generate(self, source, source_kp, driving_kp):
        """Re-pose `source` (1, 3, H, W) from its keypoints to the driving ones -> (1, 3, H, W)."""
        feeds = {"source": source, "source_value": source_kp[0], "source_jacobian": source_kp[1],
                 "driving_value": driving_kp[0], "driving_jacobian": driving_kp[1]}
        return self.generator_session.run(["prediction"], feeds)[0]


def prepare_onnx_runner(checkpoint_path, kp_detector, generator, config, image_size=256, cache_root=None,
                        threads=None):
    """Return an OnnxRunner for the checkpoint's networks, exporting them first if not cached yet.

    A cached graph that onnxruntime cannot load (e.g. a damaged file) is exported again once.
    """
    directory = cache_directory(checkpoint_path, config, image_size, cache_root)
    cached = (directory / KP_DETECTOR_FILE).is_file() and (directory / GENERATOR_FILE).is_file()
    if cached:
        try:
            return OnnxRunner(directory, threads)
        except FommError as error:
            log.warning("re-exporting unreadable cached FOMM graphs: %s", error)
    log.info("exporting FOMM networks to ONNX in %s (once per checkpoint)", directory)
    try:
        export_networks(kp_detector, generator, config, directory, image_size)
    except OSError as error:
        raise FommError(f"cannot write the ONNX FOMM cache in {directory}: {error}") from error
    return OnnxRunner(directory, threads)
