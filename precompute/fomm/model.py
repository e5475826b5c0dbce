"""The First Order Motion Model networks (Siarohin et al., NeurIPS 2019) as plain nn.Modules.

Written to load the official checkpoints unchanged: every attribute that owns weights has the
name, shape and nesting of the reference implementation, so `state_dict()` keys match
`vox-cpk.pth.tar`. The forward passes reproduce the reference (PyTorch >= 1.3 semantics:
`grid_sample` and bilinear `interpolate` use align_corners=False) with two export-friendly
rewrites that give the same numbers up to float rounding: 2x2 matrix inverses are written out
in closed form, and the anti-aliased downsampling uses a strided convolution instead of
computing every pixel and then keeping one in `stride`.

Coordinates are normalised to [-1, 1] with x first, the convention of `grid_sample`.
Keypoints travel as two tensors: values (batch, num_kp, 2) and jacobians (batch, num_kp, 2, 2).
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def make_coordinate_grid(height, width, dtype=torch.float32):
    """Return a (height, width, 2) grid of (x, y) pixel-centre coordinates spanning [-1, 1]."""
    xs = torch.arange(width, dtype=dtype)
    ys = torch.arange(height, dtype=dtype)
    xs = 2 * (xs / (width - 1)) - 1
    ys = 2 * (ys / (height - 1)) - 1
    grid_x = xs.view(1, width).expand(height, width)
    grid_y = ys.view(height, 1).expand(height, width)
    return torch.stack([grid_x, grid_y], dim=2)


def keypoint_gaussians(kp_value, height, width, variance):
    """Return (batch, num_kp, height, width) unnormalised Gaussians centred on the keypoints."""
    grid = make_coordinate_grid(height, width, kp_value.dtype)
    offsets = grid.view(1, 1, height, width, 2) - kp_value.view(*kp_value.shape[:2], 1, 1, 2)
    return torch.exp(-0.5 * (offsets**2).sum(-1) / variance)


def inverse_2x2(matrices):
    """Invert a stack of 2x2 matrices (..., 2, 2) with the closed-form adjugate formula.

    Used instead of torch.inverse because ONNX has no general matrix inverse operator.
    """
    a = matrices[..., 0, 0]
    b = matrices[..., 0, 1]
    c = matrices[..., 1, 0]
    d = matrices[..., 1, 1]
    determinant = a * d - b * c
    rows = [torch.stack([d, -b], dim=-1), torch.stack([-c, a], dim=-1)]
    return torch.stack(rows, dim=-2) / determinant.unsqueeze(-1).unsqueeze(-1)


class ResBlock2d(nn.Module):
    """Pre-activation residual block (norm, relu, conv, twice) that keeps the resolution."""

    def __init__(self, features, kernel_size=3, padding=1):
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, kernel_size=kernel_size, padding=padding)
        self.conv2 = nn.Conv2d(features, features, kernel_size=kernel_size, padding=padding)
        self.norm1 = nn.BatchNorm2d(features, affine=True)
        self.norm2 = nn.BatchNorm2d(features, affine=True)

    def forward(self, x):
        out = self.conv1(F.relu(self.norm1(x)))
        out = self.conv2(F.relu(self.norm2(out)))
        return out + x


class UpBlock2d(nn.Module):
    """Nearest-neighbour 2x upsampling followed by conv, batch norm and relu."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x):
        out = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return F.relu(self.norm(self.conv(out)))


class DownBlock2d(nn.Module):
    """Conv, batch norm and relu followed by 2x2 average pooling (halves the resolution)."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)
        self.pool = nn.AvgPool2d(kernel_size=(2, 2))

    def forward(self, x):
        return self.pool(F.relu(self.norm(self.conv(x))))


class SameBlock2d(nn.Module):
    """Conv, batch norm and relu that keeps the resolution."""

    def __init__(self, in_features, out_features, kernel_size=3, padding=1):
        super().__init__()
        self.conv = nn.Conv2d(in_features, out_features, kernel_size=kernel_size, padding=padding)
        self.norm = nn.BatchNorm2d(out_features, affine=True)

    def forward(self, x):
        return F.relu(self.norm(self.conv(x)))


def hourglass_width(block_expansion, max_features, level):
    """Channel count of hourglass level `level` (0 is the full resolution level)."""
    return min(max_features, block_expansion * (2**level))


class HourglassEncoder(nn.Module):
    """The downsampling half of the hourglass; returns the input and every level's output."""

    def __init__(self, block_expansion, in_features, num_blocks, max_features):
        super().__init__()
        blocks = []
        for level in range(num_blocks):
            block_in = in_features if level == 0 else hourglass_width(block_expansion, max_features, level)
            block_out = hourglass_width(block_expansion, max_features, level + 1)
            blocks.append(DownBlock2d(block_in, block_out))
        self.down_blocks = nn.ModuleList(blocks)

    def forward(self, x):
        levels = [x]
        for block in self.down_blocks:
            levels.append(block(levels[-1]))
        return levels


class HourglassDecoder(nn.Module):
    """The upsampling half: each step upsamples and concatenates the encoder level of the same size."""

    def __init__(self, block_expansion, in_features, num_blocks, max_features):
        super().__init__()
        blocks = []
        for level in reversed(range(num_blocks)):
            skip_factor = 1 if level == num_blocks - 1 else 2
            block_in = skip_factor * hourglass_width(block_expansion, max_features, level + 1)
            block_out = hourglass_width(block_expansion, max_features, level)
            blocks.append(UpBlock2d(block_in, block_out))
        self.up_blocks = nn.ModuleList(blocks)
        self.out_filters = block_expansion + in_features

    def forward(self, levels):
        skips = list(levels)
        out = skips.pop()
        for block in self.up_blocks:
            out = torch.cat([block(out), skips.pop()], dim=1)
        return out


class Hourglass(nn.Module):
    """U-Net style encoder-decoder; output has `out_filters` channels at the input resolution."""

    def __init__(self, block_expansion, in_features, num_blocks=3, max_features=256):
        super().__init__()
        self.encoder = HourglassEncoder(block_expansion, in_features, num_blocks, max_features)
        self.decoder = HourglassDecoder(block_expansion, in_features, num_blocks, max_features)
        self.out_filters = self.decoder.out_filters

    def forward(self, x):
        return self.decoder(self.encoder(x))


def antialias_kernel_size(scale):
    """Size of the Gaussian blur kernel used before downsampling by `scale` (< 1)."""
    sigma = (1 / scale - 1) / 2
    return 2 * round(sigma * 4) + 1


class AntiAliasInterpolation2d(nn.Module):
    """Gaussian blur then keep every (1/scale)-th pixel: downsampling without aliasing.

    The blur kernel is a buffer named `weight` because the official checkpoints store it.
    """

    def __init__(self, channels, scale):
        super().__init__()
        stride = round(1 / scale)
        if abs(stride * scale - 1) > 1e-6:
            raise ValueError(f"anti-alias scale must be 1/integer, got {scale}")
        self.stride = stride
        sigma = (1 / scale - 1) / 2
        size = antialias_kernel_size(scale)
        self.pad_before = size // 2
        self.pad_after = self.pad_before - 1 if size % 2 == 0 else self.pad_before
        positions = torch.arange(size, dtype=torch.float32)
        mean = (size - 1) / 2
        profile = torch.exp(-((positions - mean) ** 2) / (2 * sigma**2))
        kernel = profile.view(size, 1) * profile.view(1, size)
        kernel = kernel / kernel.sum()
        self.register_buffer("weight", kernel.view(1, 1, size, size).repeat(channels, 1, 1, 1))
        self.channels = channels

    def forward(self, x):
        padding = (self.pad_before, self.pad_after, self.pad_before, self.pad_after)
        padded = F.pad(x, padding)
        return F.conv2d(padded, self.weight, stride=self.stride, groups=self.channels)


class KPDetector(nn.Module):
    """Find `num_kp` keypoints and their local 2x2 jacobians in an image.

    Each keypoint is the mean position under a softmax heatmap (sharpened by `temperature`);
    its jacobian is the heatmap-weighted average of a predicted 4-channel map.
    """

    def __init__(self, block_expansion, num_kp, num_channels, max_features, num_blocks, temperature,
                 scale_factor=1.0, single_jacobian_map=False, pad=0):
        super().__init__()
        self.predictor = Hourglass(block_expansion, in_features=num_channels,
                                   max_features=max_features, num_blocks=num_blocks)
        self.kp = nn.Conv2d(self.predictor.out_filters, num_kp, kernel_size=(7, 7), padding=pad)
        self.num_jacobian_maps = 1 if single_jacobian_map else num_kp
        self.jacobian = nn.Conv2d(self.predictor.out_filters, 4 * self.num_jacobian_maps,
                                  kernel_size=(7, 7), padding=pad)
        self.temperature = temperature
        self.down = AntiAliasInterpolation2d(num_channels, scale_factor) if scale_factor != 1 else None

    def forward(self, image):
        """image (batch, channels, H, W) in [0, 1] -> (values (batch, kp, 2), jacobians (batch, kp, 2, 2))."""
        if self.down is not None:
            image = self.down(image)
        features = self.predictor(image)
        logits = self.kp(features)
        batch, num_kp, height, width = logits.shape
        heatmap = F.softmax(logits.view(batch, num_kp, -1) / self.temperature, dim=2)
        heatmap = heatmap.view(batch, num_kp, height, width)

        grid = make_coordinate_grid(height, width, heatmap.dtype)
        values = (heatmap.unsqueeze(-1) * grid.view(1, 1, height, width, 2)).sum(dim=(2, 3))

        jacobian_map = self.jacobian(features).view(batch, self.num_jacobian_maps, 4, height, width)
        weighted = heatmap.unsqueeze(2) * jacobian_map
        jacobians = weighted.view(batch, num_kp, 4, -1).sum(dim=-1).view(batch, num_kp, 2, 2)
        return values, jacobians


class DenseMotionNetwork(nn.Module):
    """Turn sparse keypoint motion into a dense backward flow and an occlusion map.

    For every keypoint (plus an identity "background" motion) it warps the downscaled source
    with the local affine motion, feeds those warps and keypoint heatmaps to an hourglass, and
    blends the motions with the predicted softmax masks.
    """

    def __init__(self, block_expansion, num_blocks, max_features, num_kp, num_channels,
                 estimate_occlusion_map=False, scale_factor=1.0, kp_variance=0.01):
        super().__init__()
        self.hourglass = Hourglass(block_expansion=block_expansion, in_features=(num_kp + 1) * (num_channels + 1),
                                   max_features=max_features, num_blocks=num_blocks)
        self.mask = nn.Conv2d(self.hourglass.out_filters, num_kp + 1, kernel_size=(7, 7), padding=(3, 3))
        if estimate_occlusion_map:
            self.occlusion = nn.Conv2d(self.hourglass.out_filters, 1, kernel_size=(7, 7), padding=(3, 3))
        else:
            self.occlusion = None
        self.num_kp = num_kp
        self.kp_variance = kp_variance
        self.down = AntiAliasInterpolation2d(num_channels, scale_factor) if scale_factor != 1 else None

    def heatmap_representation(self, height, width, source_value, driving_value):
        """(batch, kp + 1, 1, H, W): driving minus source Gaussians, with a zero background channel first."""
        difference = (keypoint_gaussians(driving_value, height, width, self.kp_variance)
                      - keypoint_gaussians(source_value, height, width, self.kp_variance))
        background = torch.zeros_like(difference[:, :1])
        return torch.cat([background, difference], dim=1).unsqueeze(2)

    def sparse_motions(self, height, width, source_value, source_jacobian, driving_value, driving_jacobian):
        """(batch, kp + 1, H, W, 2): where each driving pixel comes from in the source, per keypoint.

        Motion k is z -> source_k + J_source_k inv(J_driving_k) (z - driving_k); motion 0 is identity.
        """
        batch = source_value.shape[0]
        identity = make_coordinate_grid(height, width, source_value.dtype).view(1, 1, height, width, 2)
        relative = identity - driving_value.view(batch, self.num_kp, 1, 1, 2)
        affine = torch.matmul(source_jacobian, inverse_2x2(driving_jacobian))
        relative = relative.view(batch, self.num_kp, height * width, 2)
        relative = torch.matmul(relative, affine.transpose(-1, -2))
        driving_to_source = relative.view(batch, self.num_kp, height, width, 2)
        driving_to_source = driving_to_source + source_value.view(batch, self.num_kp, 1, 1, 2)
        background = identity.expand(batch, 1, height, width, 2)
        return torch.cat([background, driving_to_source], dim=1)

    def deformed_sources(self, source, motions):
        """(batch, kp + 1, channels, H, W): the source warped by each sparse motion."""
        batch, channels, height, width = source.shape
        copies = self.num_kp + 1
        repeated = source.unsqueeze(1).expand(batch, copies, channels, height, width)
        repeated = repeated.reshape(batch * copies, channels, height, width)
        warped = F.grid_sample(repeated, motions.reshape(batch * copies, height, width, 2),
                               mode="bilinear", padding_mode="zeros", align_corners=False)
        return warped.view(batch, copies, channels, height, width)

    def forward(self, source, source_value, source_jacobian, driving_value, driving_jacobian):
        """Return (deformation (batch, h, w, 2), occlusion map (batch, 1, h, w) or None)."""
        if self.down is not None:
            source = self.down(source)
        batch, _, height, width = source.shape
        heatmaps = self.heatmap_representation(height, width, source_value, driving_value)
        motions = self.sparse_motions(height, width, source_value, source_jacobian, driving_value, driving_jacobian)
        deformed = self.deformed_sources(source, motions)

        hourglass_input = torch.cat([heatmaps, deformed], dim=2).view(batch, -1, height, width)
        prediction = self.hourglass(hourglass_input)
        mask = F.softmax(self.mask(prediction), dim=1)
        deformation = (motions * mask.unsqueeze(-1)).sum(dim=1)
        occlusion = torch.sigmoid(self.occlusion(prediction)) if self.occlusion is not None else None
        return deformation, occlusion


class OcclusionAwareGenerator(nn.Module):
    """Encode the source, warp its features with the dense motion, mask occlusions, decode."""

    def __init__(self, num_channels, num_kp, block_expansion, max_features, num_down_blocks,
                 num_bottleneck_blocks, estimate_occlusion_map=False, dense_motion_params=None):
        super().__init__()
        self.dense_motion_network = DenseMotionNetwork(num_kp=num_kp, num_channels=num_channels,
                                                       estimate_occlusion_map=estimate_occlusion_map,
                                                       **(dense_motion_params or {}))
        self.first = SameBlock2d(num_channels, block_expansion, kernel_size=(7, 7), padding=(3, 3))
        widths = [min(max_features, block_expansion * (2**level)) for level in range(num_down_blocks + 1)]
        self.down_blocks = nn.ModuleList(
            DownBlock2d(widths[level], widths[level + 1]) for level in range(num_down_blocks)
        )
        self.up_blocks = nn.ModuleList(
            UpBlock2d(widths[level + 1], widths[level]) for level in reversed(range(num_down_blocks))
        )
        self.bottleneck = nn.Sequential()
        for index in range(num_bottleneck_blocks):
            self.bottleneck.add_module(f"r{index}", ResBlock2d(widths[-1], kernel_size=(3, 3), padding=(1, 1)))
        self.final = nn.Conv2d(block_expansion, num_channels, kernel_size=(7, 7), padding=(3, 3))

    def forward(self, source, source_value, source_jacobian, driving_value, driving_jacobian):
        """Return the source re-posed to the driving keypoints, (batch, channels, H, W) in [0, 1]."""
        features = self.first(source)
        for block in self.down_blocks:
            features = block(features)

        deformation, occlusion = self.dense_motion_network(
            source, source_value, source_jacobian, driving_value, driving_jacobian
        )
        height, width = features.shape[2:]
        if deformation.shape[1:3] != features.shape[2:]:
            deformation = F.interpolate(deformation.permute(0, 3, 1, 2), size=(height, width),
                                        mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
        features = F.grid_sample(features, deformation, mode="bilinear", padding_mode="zeros", align_corners=False)
        if occlusion is not None:
            if occlusion.shape[2:] != features.shape[2:]:
                occlusion = F.interpolate(occlusion, size=(height, width), mode="bilinear", align_corners=False)
            features = features * occlusion

        features = self.bottleneck(features)
        for block in self.up_blocks:
            features = block(features)
        return torch.sigmoid(self.final(features))


def convex_hull_area(points):
    """Area of the convex hull of 2D points (Andrew's monotone chain, then the shoelace formula).

    Returns 0.0 for fewer than three points or when all points are collinear.
    """
    unique = sorted(set(map(tuple, np.asarray(points, dtype=np.float64).tolist())))
    if len(unique) < 3:
        return 0.0

    def cross(origin, a, b):
        return (a[0] - origin[0]) * (b[1] - origin[1]) - (a[1] - origin[1]) * (b[0] - origin[0])

    def half_hull(ordered):
        hull = []
        for point in ordered:
            while len(hull) >= 2 and cross(hull[-2], hull[-1], point) <= 0:
                hull.pop()
            hull.append(point)
        return hull[:-1]

    hull = np.array(half_hull(unique) + half_hull(unique[::-1]))
    xs, ys = hull[:, 0], hull[:, 1]
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2)


def normalize_kp(source, driving, driving_initial, relative=True, adapt_movement_scale=True):
    """Driving keypoints transferred onto the source, as in the official demo's `normalize_kp`.

    Each argument is a (values (kp, 2), jacobians (kp, 2, 2)) pair of float32 arrays. In relative
    mode the source keypoints move by the driving frame's displacement from `driving_initial`,
    scaled by sqrt(source hull area / initial driving hull area) when `adapt_movement_scale`;
    jacobians change by J_driving inv(J_initial). Otherwise the driving keypoints are used as is.
    A degenerate (zero-area) hull leaves the movement unscaled.
    """
    source_value, source_jacobian = source
    driving_value, driving_jacobian = driving
    initial_value, initial_jacobian = driving_initial
    if not relative:
        return driving_value, driving_jacobian

    scale = 1.0
    if adapt_movement_scale:
        source_area = convex_hull_area(source_value)
        initial_area = convex_hull_area(initial_value)
        if source_area > 0 and initial_area > 0:
            scale = np.sqrt(source_area) / np.sqrt(initial_area)
    value = (driving_value - initial_value) * np.float32(scale) + source_value
    jacobian_change = np.matmul(driving_jacobian, np.linalg.inv(initial_jacobian))
    jacobian = np.matmul(jacobian_change, source_jacobian)
    return value.astype(np.float32), jacobian.astype(np.float32)
