"""FOMM checkpoints in the official layout: configuration, loading, validation and random ones for tests.

The official `vox-cpk.pth.tar` is a `torch.save`d dict whose `generator` and `kp_detector` entries
are state dicts of the reference modules; other entries (discriminator, optimizers, epoch) are
ignored. The network widths are not stored explicitly, so they are inferred from tensor shapes.
Torch is imported only inside the functions that need it.
"""

import dataclasses
import pickle
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from monalisa.atomic import write_file
from precompute.fomm.errors import FommError, import_torch

NETWORKS = ("kp_detector", "generator")
BATCH_COUNTER_SUFFIX = "num_batches_tracked"
# What torch.load raises for a damaged or foreign file (found by loading truncated, bit-flipped and
# non-torch files with torch 2.x): the weights-only unpickler, the zip reader (RuntimeError, OSError)
# and the legacy format (EOFError, struct.error, bogus sizes: MemoryError). ValueError covers UnicodeDecodeError.
CORRUPT_FILE_ERRORS = (pickle.UnpicklingError, EOFError, RuntimeError, OSError, ValueError, IndexError,
                       KeyError, AssertionError, struct.error, zipfile.BadZipFile, MemoryError)
# A full pickle load of a damaged file can also fail while resolving (misspelt) classes or calling them.
TRUSTED_LOAD_ERRORS = CORRUPT_FILE_ERRORS + (AttributeError, ImportError, TypeError)


@dataclass(frozen=True)
class FommNetworkConfig:
    """Hyper-parameters of the two networks (defaults are the official config/vox-256.yaml)."""

    num_kp: int = 10
    num_channels: int = 3
    # keypoint detector
    kp_block_expansion: int = 32
    kp_max_features: int = 1024
    kp_num_blocks: int = 5
    kp_temperature: float = 0.1
    kp_scale_factor: float = 0.25
    kp_padding: int = 0
    single_jacobian_map: bool = False
    # generator
    gen_block_expansion: int = 64
    gen_max_features: int = 512
    num_down_blocks: int = 2
    num_bottleneck_blocks: int = 6
    estimate_occlusion_map: bool = True
    # dense motion network inside the generator
    dm_block_expansion: int = 64
    dm_max_features: int = 1024
    dm_num_blocks: int = 5
    dm_scale_factor: float = 0.25
    kp_variance: float = 0.01

    @classmethod
    def vox256(cls):
        """The configuration of the official face model `vox-cpk.pth.tar`."""
        return cls()

    @classmethod
    def tiny(cls):
        """Same structure as vox-256 with few channels: fast random-weight models for tests."""
        return cls(kp_block_expansion=8, kp_max_features=64, gen_block_expansion=8, gen_max_features=32,
                   num_bottleneck_blocks=2, dm_block_expansion=8, dm_max_features=64)

    def replace(self, **changes):
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def build_kp_detector(config):
    """A KPDetector (eval mode) shaped by `config`."""
    from precompute.fomm.model import KPDetector

    detector = KPDetector(block_expansion=config.kp_block_expansion, num_kp=config.num_kp,
                          num_channels=config.num_channels, max_features=config.kp_max_features,
                          num_blocks=config.kp_num_blocks, temperature=config.kp_temperature,
                          scale_factor=config.kp_scale_factor, single_jacobian_map=config.single_jacobian_map,
                          pad=config.kp_padding)
    return detector.eval()


def build_generator(config):
    """An OcclusionAwareGenerator (eval mode) shaped by `config`."""
    from precompute.fomm.model import OcclusionAwareGenerator

    dense_motion_params = dict(block_expansion=config.dm_block_expansion, num_blocks=config.dm_num_blocks,
                               max_features=config.dm_max_features, scale_factor=config.dm_scale_factor,
                               kp_variance=config.kp_variance)
    generator = OcclusionAwareGenerator(num_channels=config.num_channels, num_kp=config.num_kp,
                                        block_expansion=config.gen_block_expansion,
                                        max_features=config.gen_max_features,
                                        num_down_blocks=config.num_down_blocks,
                                        num_bottleneck_blocks=config.num_bottleneck_blocks,
                                        estimate_occlusion_map=config.estimate_occlusion_map,
                                        dense_motion_params=dense_motion_params)
    return generator.eval()


def read_checkpoint(path, trust_pickle=False):
    """Return the (kp_detector, generator) state dicts stored in an official-layout checkpoint.

    Uses torch's safe `weights_only` unpickler; files needing other pickled objects load only with `trust_pickle`.
    """
    torch = import_torch()
    path = Path(path)
    if not path.is_file():
        raise FommError(f"FOMM checkpoint not found: {path}")
    try:
        contents = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        needs = _unsafe_global(error)
        if needs is None:  # the safe unpickler also reports plain corruption this way
            raise _unreadable(path, error) from error
        if not trust_pickle:
            raise FommError(
                f"{path} holds pickled Python objects ({needs}), which the safe loader refuses; if you trust "
                f"its source, load it once in Python with torch.load(..., weights_only=False) and torch.save "
                f"only its 'generator' and 'kp_detector' entries, then use that file "
                f"(Python API: trust_pickle=True)"
            ) from error
        contents = _load_trusted_pickle(torch, path)
    except CORRUPT_FILE_ERRORS as error:
        raise _unreadable(path, error) from error

    if not isinstance(contents, dict) or not all(isinstance(contents.get(name), dict) for name in NETWORKS):
        found = sorted(contents)[:8] if isinstance(contents, dict) else type(contents).__name__
        raise FommError(f"{path} is not a FOMM checkpoint: expected 'generator' and 'kp_detector' "
                        f"state dicts, found {found}")
    return contents["kp_detector"], contents["generator"]


def _unsafe_global(error):
    """What a weights-only refusal says the file needs (e.g. "GLOBAL argparse.Namespace"), or None if corrupt."""
    match = re.search(r"GLOBAL \S+ was not an allowed global|\S+ must be \S+ to load", str(error))
    return match.group(0) if match else None


def _unreadable(path, error):
    """The one-line error for a file torch.load cannot parse."""
    # a weights-only failure wraps the real problem in advice to unpickle unsafely: show the problem alone
    _, wrapped, inner = str(error).partition("WeightsUnpickler error:")
    detail = next((line.strip() for line in inner.splitlines() if line.strip()), None) if wrapped else None
    return FommError(f"cannot read FOMM checkpoint {path}: not a PyTorch checkpoint file, or damaged "
                     f"({type(error).__name__}: {detail or _first_line(error)})")


def _load_trusted_pickle(torch, path):
    """Full pickle load, used only when the caller vouched for the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except TRUSTED_LOAD_ERRORS as error:
        raise _unreadable(path, error) from error


def _first_line(error):
    """The first line of an exception message (torch errors can span many lines)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _indexed_children(state_dict, prefix, separator="."):
    """Number of consecutive children `prefix.0`, `prefix.1`, ... that have keys in the state dict.

    With separator="" the children are named `prefix0`, `prefix1`, ... (the bottleneck's `r0`, `r1`).
    """
    pattern = re.compile(re.escape(prefix + separator) + r"(\d+)\.")
    indices = {int(match.group(1)) for key in state_dict for match in [pattern.match(key)] if match}
    count = 0
    while count in indices:
        count += 1
    return count


def _shape(state_dict, key, network):
    """The shape of the convolution weight `key`, or a FommError saying the checkpoint lacks it."""
    if key not in state_dict:
        raise FommError(f"not a FOMM checkpoint: {network} has no '{key}'")
    shape = tuple(getattr(state_dict[key], "shape", ()))
    if len(shape) != 4:
        raise FommError(f"wrong shape in FOMM checkpoint: {network} '{key}' expected a 4-D convolution "
                        f"weight, got {shape}")
    return shape


def _scale_from_blur(state_dict, key, network):
    """Recover an anti-alias downsampling scale from its stored blur kernel (1.0 if absent)."""
    from precompute.fomm.model import antialias_kernel_size

    if key not in state_dict:
        return 1.0
    size = _shape(state_dict, key, network)[-1]
    scale = 1 / ((size - 1) / 4 + 1)
    if antialias_kernel_size(scale) != size:
        raise FommError(f"{network} '{key}' has an unsupported blur kernel size {size}")
    return scale


def _max_features(state_dict, prefix, count, block_expansion, preferred, network):
    """The `max_features` cap that explains the widths of the down blocks `prefix.i` (i < count).

    Any cap at or above the widest block gives the same shapes, so `preferred` (the base config's
    value) is kept when it fits; otherwise the widest block's width is the cap.
    """
    widths = [_shape(state_dict, f"{prefix}.{index}.conv.weight", network)[0] for index in range(count)]
    if widths == [min(preferred, block_expansion * 2 ** (index + 1)) for index in range(count)]:
        return preferred
    return max(widths)


def infer_config(kp_state, generator_state, base=None):
    """Work out the network widths from state-dict shapes; other fields come from `base` (vox-256).

    Temperature, keypoint padding and kp variance are not stored in checkpoints; they keep the
    values of `base`.
    """
    base = base or FommNetworkConfig.vox256()
    kp_blocks = _indexed_children(kp_state, "predictor.encoder.down_blocks")
    dm_prefix = "dense_motion_network.hourglass"
    dm_blocks = _indexed_children(generator_state, f"{dm_prefix}.encoder.down_blocks")
    down_blocks = _indexed_children(generator_state, "down_blocks")
    if kp_blocks == 0 or dm_blocks == 0 or down_blocks == 0:
        raise FommError("not a FOMM checkpoint: the state dicts lack the hourglass / encoder blocks")

    num_kp, kp_in_features = _shape(kp_state, "kp.weight", "kp_detector")[:2]
    jacobian_maps = _shape(kp_state, "jacobian.weight", "kp_detector")[0] // 4
    first_out, num_channels = _shape(generator_state, "first.conv.weight", "generator")[:2]
    kp_expansion = kp_in_features - num_channels
    dm_expansion = (_shape(generator_state, "dense_motion_network.mask.weight", "generator")[1]
                    - (num_kp + 1) * (num_channels + 1))
    if kp_expansion <= 0 or dm_expansion <= 0:
        raise FommError("not a FOMM checkpoint: the keypoint or mask heads do not fit the hourglass widths")
    return base.replace(
        num_kp=num_kp,
        num_channels=num_channels,
        kp_block_expansion=kp_expansion,
        kp_max_features=_max_features(kp_state, "predictor.encoder.down_blocks", kp_blocks, kp_expansion,
                                      base.kp_max_features, "kp_detector"),
        kp_num_blocks=kp_blocks,
        kp_scale_factor=_scale_from_blur(kp_state, "down.weight", "kp_detector"),
        single_jacobian_map=jacobian_maps == 1 and num_kp != 1,
        gen_block_expansion=first_out,
        gen_max_features=_max_features(generator_state, "down_blocks", down_blocks, first_out,
                                       base.gen_max_features, "generator"),
        num_down_blocks=down_blocks,
        num_bottleneck_blocks=_indexed_children(generator_state, "bottleneck.r", separator=""),
        estimate_occlusion_map="dense_motion_network.occlusion.weight" in generator_state,
        dm_block_expansion=dm_expansion,
        dm_max_features=_max_features(generator_state, f"{dm_prefix}.encoder.down_blocks", dm_blocks,
                                      dm_expansion, base.dm_max_features, "generator"),
        dm_num_blocks=dm_blocks,
        dm_scale_factor=_scale_from_blur(generator_state, "dense_motion_network.down.weight", "generator"),
    )


def check_state_dict(module, state_dict, network):
    """Raise FommError unless `state_dict` has exactly the module's keys and shapes.

    A missing batch-norm `num_batches_tracked` counter is tolerated (older PyTorch did not save it).
    """
    expected = module.state_dict()
    missing = [key for key in expected if key not in state_dict and not key.endswith(BATCH_COUNTER_SUFFIX)]
    unexpected = [key for key in state_dict if key not in expected]
    if missing or unexpected:
        details = []
        if missing:
            details.append(f"{len(missing)} missing keys (e.g. '{missing[0]}')")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected keys (e.g. '{unexpected[0]}')")
        raise FommError(f"not a FOMM checkpoint: the {network} state dict has {' and '.join(details)}")
    for key, tensor in expected.items():
        if key not in state_dict:
            continue
        got = tuple(getattr(state_dict[key], "shape", ()))
        if got != tuple(tensor.shape):
            raise FommError(f"wrong shape in FOMM checkpoint: {network} '{key}' expected "
                            f"{tuple(tensor.shape)}, got {got}")


def load_networks(path, config=None, trust_pickle=False):
    """Build both networks from a checkpoint file and return (kp_detector, generator, config).

    With `config=None` the widths are inferred from the checkpoint; an explicit config is checked
    against it key by key and shape by shape.
    """
    kp_state, generator_state = read_checkpoint(path, trust_pickle=trust_pickle)
    if config is None:
        config = infer_config(kp_state, generator_state)
    try:
        kp_detector = build_kp_detector(config)
        generator = build_generator(config)
    except (ValueError, RuntimeError) as error:
        raise FommError(f"unsupported FOMM configuration from {path}: {_first_line(error)}") from error
    for network, module, state in (("kp_detector", kp_detector, kp_state), ("generator", generator, generator_state)):
        check_state_dict(module, state, network)
        module.load_state_dict(state, strict=False)
    return kp_detector, generator, config


def randomize_(module, generator):
    """Give a module random but well-behaved weights in place (deterministic for a torch.Generator).

    Convolutions get He-style weights with small biases; batch norms get statistics near the
    identity; the keypoint jacobian head is kept near [[1, 0], [0, 1]] like the official init, so
    the jacobians stay invertible.
    """
    import torch

    with torch.no_grad():
        for name, child in module.named_modules():
            if isinstance(child, torch.nn.Conv2d):
                fan_in = child.weight[0].numel()
                child.weight.copy_(torch.randn(child.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                child.bias.copy_(torch.randn(child.bias.shape, generator=generator) * 0.05)
                if name == "jacobian":
                    child.weight.mul_(0.01)
                    identity = torch.tensor([1.0, 0.0, 0.0, 1.0]).repeat(child.bias.numel() // 4)
                    child.bias.copy_(identity + child.bias * 0.1)
            elif isinstance(child, torch.nn.BatchNorm2d):
                features = child.num_features
                child.weight.copy_(1 + 0.1 * torch.randn(features, generator=generator))
                child.bias.copy_(0.1 * torch.randn(features, generator=generator))
                child.running_mean.copy_(0.1 * torch.randn(features, generator=generator))
                child.running_var.copy_(1 + 0.2 * torch.rand(features, generator=generator))
                child.num_batches_tracked.fill_(1000)


def make_random_checkpoint(path, config=None, seed=0):
    """Write a random-weight checkpoint in the official layout (for tests and benchmarks); return the path.

    `config` defaults to FommNetworkConfig.tiny(). The file is written atomically.
    """
    torch = import_torch()
    config = config or FommNetworkConfig.tiny()
    generator = torch.Generator().manual_seed(seed)
    kp_detector = build_kp_detector(config)
    image_generator = build_generator(config)
    randomize_(kp_detector, generator)
    randomize_(image_generator, generator)
    contents = {"kp_detector": kp_detector.state_dict(), "generator": image_generator.state_dict(), "epoch": 0}
    write_file(path, lambda temporary: torch.save(contents, temporary), FommError, mode=0o644)
    return Path(path)
