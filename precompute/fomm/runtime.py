"""`FommModel`: animate a still image with FOMM, running the networks in torch or onnxruntime.

Images are float32 RGB arrays (H, W, 3) in [0, 1], 256x256 for the official model. Keypoints
are handled as (values (K, 2), jacobians (K, 2, 2)) float32 numpy pairs, so the relative-motion
normalisation is shared by both runtimes.
"""

from pathlib import Path

import numpy as np

from precompute.fomm.errors import FommError, import_torch

RUNTIMES = ("torch", "onnxruntime")


class TorchRunner:
    """Runs the torch networks on the CPU; NCHW float32 numpy arrays in and out."""

    def __init__(self, kp_detector, generator, threads=None):
        self.torch = import_torch()
        self.kp_detector = kp_detector.eval()
        self.generator = generator.eval()
        if threads:
            self.torch.set_num_threads(threads)

    def keypoints(self, image):
        """image (1, 3, H, W) -> (values (1, K, 2), jacobians (1, K, 2, 2))."""
        with self.torch.inference_mode():
            value, jacobian = self.kp_detector(self.torch.from_numpy(image))
        return value.numpy(), jacobian.numpy()

    def generate(self, source, source_kp, driving_kp):
        """Re-pose `source` (1, 3, H, W) from its keypoints to the driving ones -> (1, 3, H, W)."""
        tensors = [self.torch.from_numpy(array) for array in (source, *source_kp, *driving_kp)]
        with self.torch.inference_mode():
            prediction = self.generator(*tensors)
        return prediction.numpy()


class FommModel:
    """A loaded FOMM model: keypoint detection and image generation behind one runtime.

    Build it with `FommModel.from_checkpoint(path, runtime=...)`.
    """

    def __init__(self, runner, config, image_size=256):
        self.runner = runner
        self.config = config
        self.image_size = image_size

    @classmethod
    def from_checkpoint(cls, path, runtime="torch", config=None, cache_dir=None, threads=None,
                        trust_pickle=False):
        """Load an official-layout checkpoint (e.g. vox-cpk.pth.tar).

        runtime: "torch", or "onnxruntime" (exports ONNX graphs once into `<checkpoint>.onnx-cache/`,
        or under `cache_dir`). config: FommNetworkConfig to check the checkpoint against; inferred from
        the tensor shapes when None. threads: CPU threads for the runtime (default: all cores).
        trust_pickle: allow a full pickle load for files the safe tensor-only loader refuses.
        """
        from precompute.fomm.checkpoint import load_networks

        if runtime not in RUNTIMES:
            raise FommError(f"unknown FOMM runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
        kp_detector, generator, config = load_networks(path, config=config, trust_pickle=trust_pickle)
        if runtime == "torch":
            return cls(TorchRunner(kp_detector, generator, threads), config)

        from precompute.fomm.onnx import prepare_onnx_runner

        runner = prepare_onnx_runner(Path(path), kp_detector, generator, config, image_size=256,
                                     cache_root=cache_dir, threads=threads)
        return cls(runner, config)

    def _to_batch(self, image, name):
        """Check an (H, W, 3) float image and return it as a contiguous (1, 3, H, W) float32 array."""
        array = np.asarray(image)
        expected = (self.image_size, self.image_size, self.config.num_channels)
        if array.shape != expected:
            raise FommError(f"FOMM {name} image must have shape {expected}, got {array.shape}")
        if not np.issubdtype(array.dtype, np.floating):
            raise FommError(f"FOMM {name} image must be float RGB in [0, 1], got dtype {array.dtype}")
        return np.ascontiguousarray(array.astype(np.float32, copy=False).transpose(2, 0, 1)[None])

    def keypoints(self, image):
        """Keypoints of an image: (values (K, 2) in [-1, 1], x first; jacobians (K, 2, 2))."""
        value, jacobian = self.runner.keypoints(self._to_batch(image, "keypoint"))
        return value[0], jacobian[0]

    def animate(self, source, driving, driving_initial, relative=True, adapt_movement_scale=True):
        """The source image moved like `driving` moved from `driving_initial` -> (H, W, 3) float32 in [0, 1]."""
        return next(self.animate_many(source, [driving], driving_initial, relative, adapt_movement_scale))

    def animate_many(self, source, drivings, driving_initial, relative=True, adapt_movement_scale=True):
        """Yield one animated frame per driving image; the source and initial keypoints are computed once."""
        from precompute.fomm.model import normalize_kp

        source_batch = self._to_batch(source, "source")
        source_kp = self.keypoints(source)
        initial_kp = self.keypoints(driving_initial)
        for driving in drivings:
            driving_kp = self.keypoints(driving)
            value, jacobian = normalize_kp(source_kp, driving_kp, initial_kp, relative=relative,
                                           adapt_movement_scale=adapt_movement_scale)
            prediction = self.runner.generate(source_batch, (source_kp[0][None], source_kp[1][None]),
                                              (value[None], jacobian[None]))
            yield prediction[0].transpose(1, 2, 0)
