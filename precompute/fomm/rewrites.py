"""Cheaper stand-ins for FOMM blocks, swapped in only for the ONNX export.

Each replacement computes the same function as the block it replaces (equal up to float
rounding, ~1e-6) with fewer multiply-adds, so the onnxruntime graph is faster than a literal
export. Batch norms (inference mode) are folded into the neighbouring convolution weights.

- PhaseSplitUpBlock: nearest 2x upsampling + 3x3 conv as a single 2x2 conv per output phase
  (4/9 of the work).
- WinogradResBlock / WinogradDownBlock: wide 3x3 convolutions on large maps (the generator's
  bottleneck and second down block) with Winograd F(4x4, 3x3) (Lavin & Gray 2015): 36 products
  per 6x6 input tile instead of 144 per 4x4 output tile.
"""

import copy

import torch
import torch.nn.functional as F
from torch import nn

from precompute.fomm.model import DownBlock2d, ResBlock2d, UpBlock2d

# Winograd F(4, 3) transforms for correlation (interpolation points 0, 1, -1, 2, -2, infinity):
# output tile = A^T [(G g G^T) * (B^T d B)] A for a 6x6 input tile d and a 3x3 kernel g.
WINOGRAD_BT = [
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
]
WINOGRAD_G = [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
]
WINOGRAD_AT = [
    [1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 0],
    [0, 1, 1, 4, 4, 0],
    [0, 1, -1, 8, -8, 1],
]
TILE_OUT = 4
TILE_IN = 6


def folded_batch_norm(conv, norm):
    """(weight, bias) of a single convolution equal to `norm(conv(x))` in inference mode."""
    scale = norm.weight / (norm.running_var + norm.eps).sqrt()
    weight = conv.weight * scale.view(-1, 1, 1, 1)
    bias = (conv.bias - norm.running_mean) * scale + norm.bias
    return weight, bias


def phase_kernels(weight):
    """Split a 3x3 kernel applied after nearest 2x upsampling into four 2x2 low-resolution kernels.

    Output pixel (2i + a, 2j + b) of conv3x3(upsample(x)) reads only x rows {i - 1, i} when a = 0
    and {i, i + 1} when a = 1 (likewise for columns), so phase (a, b) is a 2x2 convolution whose
    taps are sums of the 3x3 taps landing on the same input pixel. Returns (2, 2, out, in, 2, 2).
    """
    # merge[a, t, r] = 1 when 3x3 row r lands on 2x2 tap t for output phase a (columns alike)
    merge = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]],
                          [[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]], dtype=weight.dtype)
    return torch.einsum("atr,oirc,bsc->aboits", merge, weight, merge)


class PhaseSplitUpBlock(nn.Module):
    """UpBlock2d (nearest 2x upsample, 3x3 conv, batch norm, relu) with 4/9 of the multiply-adds.

    One 2x2 convolution (padding 1) on the low-resolution input computes all four output phases;
    phase (a, b) of output pixel (i, j) sits at position (i + a, j + b), and the phases are then
    interleaved into the 2x larger image.
    """

    def __init__(self, block):
        super().__init__()
        weight, bias = folded_batch_norm(block.conv, block.norm)
        out_features, in_features = weight.shape[:2]
        self.conv = nn.Conv2d(in_features, 4 * out_features, kernel_size=2, padding=1)
        self.conv.weight.data.copy_(phase_kernels(weight).reshape(4 * out_features, in_features, 2, 2))
        self.conv.bias.data.copy_(bias.repeat(4))
        self.out_features = out_features

    def forward(self, x):
        batch, _, height, width = x.shape
        phases = torch.relu(self.conv(x)).view(batch, 2, 2, self.out_features, height + 1, width + 1)
        rows = []
        for a in range(2):
            rows.append(torch.stack([phases[:, a, b, :, a:a + height, b:b + width] for b in range(2)], dim=-1))
        interleaved = torch.stack(rows, dim=3)  # (batch, out, height, a, width, b)
        return interleaved.reshape(batch, self.out_features, 2 * height, 2 * width)


class WinogradConv3x3(nn.Module):
    """A 3x3, padding 1, stride 1 convolution of a batch-1 image computed with Winograd F(4x4, 3x3).

    Every channel is cut into overlapping 6x6 tiles (stride 4) and transformed by B^T d B, done as
    one small strided convolution with 36 fixed 6x6 kernels; each of the 36 transformed positions
    is then one (out x in) @ (in x tiles) matrix product with the transformed kernels G g G^T;
    finally A^T . A turns every 36-vector into a 4x4 output tile, and a depth-to-space puts the
    tiles in place. Height and width must be multiples of 4.
    """

    def __init__(self, weight, bias):
        super().__init__()
        weight = weight.detach().double()
        transform_g = torch.tensor(WINOGRAD_G, dtype=torch.float64)
        transform_bt = torch.tensor(WINOGRAD_BT, dtype=torch.float64)
        transform_at = torch.tensor(WINOGRAD_AT, dtype=torch.float64)
        out_features, in_features = weight.shape[:2]
        kernels = torch.einsum("ur,oirc,vc->uvoi", transform_g, weight, transform_g)
        self.register_buffer("kernels", kernels.reshape(TILE_IN**2, out_features, in_features).float())
        # tile_transform[u * 6 + v] = outer(B^T[u], B^T[v]) as a 6x6 convolution kernel
        tile_transform = torch.einsum("ui,vj->uvij", transform_bt, transform_bt)
        self.register_buffer("tile_transform", tile_transform.reshape(TILE_IN**2, 1, TILE_IN, TILE_IN).float())
        self.register_buffer("output_transform", torch.kron(transform_at, transform_at).float())
        self.register_buffer("bias", bias.detach().clone().float())

    def forward(self, x):
        _, channels, height, width = x.shape
        tiles_y, tiles_x = height // TILE_OUT, width // TILE_OUT
        padded = F.pad(x, (1, 1, 1, 1)).view(channels, 1, height + 2, width + 2)
        tiles = F.conv2d(padded, self.tile_transform, stride=TILE_OUT)  # (in, 36, tiles_y, tiles_x)
        tiles = tiles.view(channels, TILE_IN**2, -1).transpose(0, 1)  # (36, in, tiles)
        products = torch.matmul(self.kernels, tiles)  # (36, out, tiles)
        out_features = products.shape[1]
        outputs = torch.matmul(self.output_transform, products.transpose(0, 1))  # (out, 16, tiles)
        outputs = F.pixel_shuffle(outputs.reshape(1, out_features * TILE_OUT**2, tiles_y, tiles_x), TILE_OUT)
        return outputs + self.bias.view(1, -1, 1, 1)


class WinogradResBlock(nn.Module):
    """ResBlock2d with Winograd convolutions and its second batch norm folded into the first conv."""

    def __init__(self, block):
        super().__init__()
        self.norm1 = copy.deepcopy(block.norm1)
        self.conv1 = WinogradConv3x3(*folded_batch_norm(block.conv1, block.norm2))
        self.conv2 = WinogradConv3x3(block.conv2.weight, block.conv2.bias)

    def forward(self, x):
        out = self.conv1(torch.relu(self.norm1(x)))
        return self.conv2(torch.relu(out)) + x


class WinogradDownBlock(nn.Module):
    """DownBlock2d (conv, batch norm, relu, 2x2 average pool) with a Winograd convolution."""

    def __init__(self, block):
        super().__init__()
        self.conv = WinogradConv3x3(*folded_batch_norm(block.conv, block.norm))

    def forward(self, x):
        return F.avg_pool2d(torch.relu(self.conv(x)), kernel_size=2)


# Winograd pays off only for wide convolutions on enough tiles (measured on a 2-core AVX2 CPU:
# 2x faster at 256 channels on 64x64, no gain at 64 channels, slower on tiny 4x4 / 8x8 maps).
WINOGRAD_MIN_CHANNELS = 128
WINOGRAD_MIN_TILES = 64


def suits_winograd(conv, input_shape):
    """True when a conv is 3x3 / stride 1 / padding 1 and its input is big enough to gain."""
    _, channels, height, width = input_shape
    return (conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
            and conv.dilation == (1, 1) and conv.groups == 1 and channels >= WINOGRAD_MIN_CHANNELS
            and height % TILE_OUT == 0 and width % TILE_OUT == 0
            and (height // TILE_OUT) * (width // TILE_OUT) >= WINOGRAD_MIN_TILES)


def record_input_shapes(network, example_inputs):
    """Run the network once and return {block: input shape} for the blocks we may replace."""
    shapes = {}

    def remember_shape(module, inputs):
        shapes[module] = tuple(inputs[0].shape)  # returns None: the inputs pass through unchanged

    hooks = [module.register_forward_pre_hook(remember_shape)
             for module in network.modules() if isinstance(module, (UpBlock2d, ResBlock2d, DownBlock2d))]
    try:
        network(*example_inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return shapes


def faster_block(block, input_shape):
    """The cheaper equivalent of `block` for this input shape, or None to keep it."""
    if isinstance(block, UpBlock2d) and block.conv.kernel_size == (3, 3) and block.conv.padding == (1, 1):
        return PhaseSplitUpBlock(block)
    if isinstance(block, ResBlock2d) and input_shape[0] == 1 and suits_winograd(block.conv1, input_shape):
        return WinogradResBlock(block)
    if isinstance(block, DownBlock2d) and input_shape[0] == 1 and suits_winograd(block.conv, input_shape):
        return WinogradDownBlock(block)
    return None


def export_copy(network, example_inputs):
    """A deep copy of `network` (eval mode) with faster equivalent blocks swapped in.

    `example_inputs` (a tuple) fixes the tensor shapes the export will use; blocks are only
    rewritten where the rewrite is faster at those shapes.
    """
    with torch.no_grad():
        network = copy.deepcopy(network).eval()
        shapes = record_input_shapes(network, example_inputs)
        for parent in list(network.modules()):
            for name, child in parent.named_children():
                replacement = faster_block(child, shapes[child]) if child in shapes else None
                if replacement is not None:
                    setattr(parent, name, replacement)
    return network
