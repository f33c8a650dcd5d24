"""XFeat (Potje et al., CVPR 2024): a lightweight CNN for sparse keypoints and 64-d descriptors.

Written from the paper and from the tensor layout of the authors' checkpoint. Every hidden
convolution of the checkpoint is followed by a non-affine BatchNorm; we fold it into the
convolution when loading, so inference runs one biased convolution + ReLU per layer.

The network sees a grey image whose sides are multiples of 32 (the input is resized to the
largest such size, at least 32, as the reference implementation does). From its 1/8-resolution
outputs the sparse detector keeps the 5x5 maxima of the 8x8 depth-to-space keypoint heatmap,
scores them by heatmap x bilinear reliability and samples bicubic descriptors at the winners.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn

from glue_ros.core.extractor import Extractor, window_max
from glue_ros.core.weights import load_checkpoint, load_into, packaged_weights

# Conv + BatchNorm + ReLU units of each stage as the checkpoint stores them:
# (in_channels, out_channels, kernel, stride); 3x3 kernels are padded by 1, 1x1 by 0.
_UNITS = {
    'block1': ((1, 4, 3, 1), (4, 8, 3, 2), (8, 8, 3, 1), (8, 24, 3, 2)),
    'block2': ((24, 24, 3, 1), (24, 24, 3, 1)),
    'block3': ((24, 64, 3, 2), (64, 64, 3, 1), (64, 64, 1, 1)),
    'block4': ((64, 64, 3, 2), (64, 64, 3, 1), (64, 64, 3, 1)),
    'block5': ((64, 128, 3, 2), (128, 128, 3, 1), (128, 128, 3, 1), (128, 64, 1, 1)),
    'block_fusion': ((64, 64, 3, 1), (64, 64, 3, 1)),
    'heatmap_head': ((64, 64, 1, 1), (64, 64, 1, 1)),
    'keypoint_head': ((64, 64, 1, 1), (64, 64, 1, 1), (64, 64, 1, 1)),
}
# Stages that end in a plain biased 1x1 convolution: (in_channels, out_channels).
_TAILS = {'block_fusion': (64, 64), 'heatmap_head': (64, 1), 'keypoint_head': (64, 65)}
_CELL = 8  # the keypoint head classifies 8x8 cells (64 positions + "no keypoint")
_MULTIPLE = 32  # the backbone downsamples five times
_NMS_RADIUS = 2  # 5x5 suppression window


class _Unit(nn.Module):
    """Checkpoint layout of one hidden layer (convolution, then non-affine BatchNorm)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int):
        super().__init__()
        self.layer = nn.Sequential(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
            nn.BatchNorm2d(cout, affine=False),
        )

    def folded(self) -> nn.Conv2d:
        """Return the one convolution equal to conv -> BatchNorm (eval statistics)."""
        conv, norm = self.layer
        scale = torch.rsqrt(norm.running_var.double() + norm.eps)
        fused = nn.Conv2d(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            bias=True,
        )
        with torch.no_grad():
            fused.weight.copy_(conv.weight.double() * scale[:, None, None, None])
            fused.bias.copy_(-norm.running_mean.double() * scale)
        return fused


class _Checkpoint(nn.Module):
    """The tensors of the authors' xfeat.pt under their names; loaded, folded, never run."""

    def __init__(self):
        super().__init__()
        for stage, units in _UNITS.items():
            layers = [_Unit(*unit) for unit in units]
            if stage in _TAILS:
                layers.append(nn.Conv2d(*_TAILS[stage], 1))
            setattr(self, stage, nn.Sequential(*layers))
        # 4x4 average pooling, then a 1x1 projection of the grey image to 24 channels.
        self.skip1 = nn.Sequential(nn.AvgPool2d(4), nn.Conv2d(1, 24, 1))


def _instance_norm(grey: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit variance per image (InstanceNorm2d without affine, eps 1e-5).

    Two passes with a dot product: several times faster than var_mean on one channel.
    """
    centred = grey - grey.mean(dim=(2, 3), keepdim=True)
    flat = centred.reshape(centred.shape[0], 1, -1)
    var = torch.bmm(flat, flat.transpose(1, 2)) / flat.shape[-1]  # (B, 1, 1)
    return centred * torch.rsqrt(var[..., None] + 1e-5)


def _unit(vectors: torch.Tensor, dim: int) -> torch.Tensor:
    """L2-normalise along `dim` like F.normalize (eps 1e-12), but without its slow norm kernel."""
    return vectors * torch.rsqrt((vectors * vectors).sum(dim, keepdim=True).clamp_min_(1e-24))


def _onednn_usable() -> bool:
    """Whether oneDNN's fused convolution (what torch.compile emits on x86 CPUs) is there."""
    ops = torch.ops.mkldnn
    try:
        return (
            torch.backends.mkldnn.is_available()
            and hasattr(ops, '_convolution_pointwise')
            and hasattr(torch._C._nn, 'mkldnn_reorder_conv2d_weight')
            # Arm Compute Library builds lack the fused kernels (torch.compile skips them).
            and not (hasattr(ops, '_is_mkldnn_acl_supported') and ops._is_mkldnn_acl_supported())
        )
    except (AttributeError, RuntimeError):
        return False


_compiling = getattr(getattr(torch, 'compiler', None), 'is_compiling', lambda: False)


def _tracing() -> bool:
    """Whether a graph is being captured (ONNX/TorchScript/torch.export/compile)."""
    return torch.jit.is_tracing() or torch.jit.is_scripting() or _compiling()


class _Conv(nn.Conv2d):
    """Biased convolution, optionally followed by ReLU.

    On CPU in float32 it runs as one oneDNN primitive, with the weight reordered once into
    oneDNN's blocked layout instead of at every call and the ReLU fused in (5-10 % of the
    network time on a 2-core x86). Elsewhere (CUDA, other dtypes, builds without oneDNN, graph
    capture for export) it is plain nn.Conv2d + ReLU, which computes the same values.
    """

    fast = _onednn_usable()

    def __init__(self, conv: nn.Conv2d, relu: bool):
        super().__init__(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            bias=True,
        )
        with torch.no_grad():
            self.weight.copy_(conv.weight)
            self.bias.copy_(conv.bias)
        self.relu = relu
        self._packed = None  # (key: weight storage, version, input size; oneDNN weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve (and rectify)."""
        if (
            self.fast
            and x.device.type == 'cpu'
            and x.dtype == torch.float32
            and self.weight.dtype == torch.float32
            and not self.weight.requires_grad
            and not _tracing()
        ):
            try:
                return torch.ops.mkldnn._convolution_pointwise(
                    x,
                    self._onednn_weight(x.shape),
                    self.bias,
                    list(self.padding),
                    list(self.stride),
                    [1, 1],
                    1,
                    'relu' if self.relu else 'none',
                    [],
                    '',
                )
            except RuntimeError:  # an unexpected build: use the portable path from now on
                type(self).fast = False
        y = super().forward(x)
        return torch.relu_(y) if self.relu else y

    def __getstate__(self) -> dict:
        """Copy or pickle without the oneDNN weight (an opaque tensor; rebuilt on demand)."""
        state = self.__dict__.copy()
        state['_packed'] = None
        return state

    def _onednn_weight(self, size: torch.Size) -> torch.Tensor:
        """Reorder the weight for oneDNN once per input size (a camera stream keeps one)."""
        key = (self.weight.data_ptr(), self.weight._version, tuple(size))
        if self._packed is None or self._packed[0] != key:
            with torch.inference_mode(False), torch.no_grad():
                packed = torch._C._nn.mkldnn_reorder_conv2d_weight(
                    self.weight.detach().to_mkldnn(),
                    list(self.padding),
                    list(self.stride),
                    [1, 1],
                    1,
                    list(size),
                )
            self._packed = (key, packed)
        return self._packed[1]


def _stage(checkpoint: _Checkpoint, stage: str) -> nn.Sequential:
    """Folded conv + ReLU layers of one stage, ending with its plain conv if it has one."""
    return nn.Sequential(
        *[
            _Conv(m.folded(), True) if isinstance(m, _Unit) else _Conv(m, False)
            for m in getattr(checkpoint, stage)
        ]
    )


class XFeatNet(nn.Module):
    """The dense XFeat network with BatchNorm folded away (inference only).

    ``forward(grey)`` takes (B, 1, H, W) with H, W multiples of 32 and returns the raw descriptor
    map (B, 64, H/8, W/8), the keypoint logits (B, 65, H/8, W/8) and the reliability map
    (B, 1, H/8, W/8) in [0, 1].
    """

    def __init__(self, checkpoint: _Checkpoint):
        super().__init__()
        self.block1 = _stage(checkpoint, 'block1')
        self.block2 = _stage(checkpoint, 'block2')
        self.block3 = _stage(checkpoint, 'block3')
        self.block4 = _stage(checkpoint, 'block4')
        self.block5 = _stage(checkpoint, 'block5')
        self.fusion = _stage(checkpoint, 'block_fusion')
        self.reliability = _stage(checkpoint, 'heatmap_head')
        # avg-pool 4x4 + 1x1 conv is one 4x4 stride-4 conv with the weight spread over the cell.
        skip = checkpoint.skip1[1]
        skip_conv = nn.Conv2d(1, 24, 4, stride=4)
        # The keypoint head reads each 8x8 cell as 64 channels (row-major): its first 1x1 conv
        # is an 8x8 stride-8 conv.
        head = _stage(checkpoint, 'keypoint_head')
        first = head[0]
        cell = nn.Conv2d(1, first.out_channels, _CELL, stride=_CELL)
        with torch.no_grad():
            skip_conv.weight.copy_(skip.weight.expand(-1, -1, 4, 4) / 16.0)
            skip_conv.bias.copy_(skip.bias)
            cell.weight.copy_(first.weight.reshape(first.out_channels, 1, _CELL, _CELL))
            cell.bias.copy_(first.bias)
        self.skip = _Conv(skip_conv, False)
        self.keypoints = nn.Sequential(_Conv(cell, True), *head[1:])
        self.requires_grad_(False)
        self.eval()
        # oneDNN runs these small-channel convolutions much faster on NHWC weights (about
        # 1.6x for the whole network on a 2-core x86 CPU); outputs come out channels-last too.
        self.to(memory_format=torch.channels_last)

    def forward(self, grey: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the backbone and the three heads."""
        x = _instance_norm(grey)
        s8 = self.block3(self.block2(self.block1(x) + self.skip(x)))
        s16 = self.block4(s8)
        s32 = self.block5(s16)
        size = s8.shape[-2:]
        pyramid = (
            s8
            + F.interpolate(s16, size, mode='bilinear', align_corners=False)
            + F.interpolate(s32, size, mode='bilinear', align_corners=False)
        )
        features = self.fusion(pyramid)
        reliability = torch.sigmoid(self.reliability(features))
        logits = self.keypoints(x)
        return features, logits, reliability


def _cells_to_pixels(cells: torch.Tensor) -> torch.Tensor:
    """(64, h, w) per-cell maps -> (8h, 8w) image; channel 8i + j is row i, column j."""
    _, h, w = cells.shape
    return cells.reshape(_CELL, _CELL, h, w).permute(2, 0, 3, 1).reshape(h * _CELL, w * _CELL)


def _sample_grid(points: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """grid_sample grid for integer pixels of the network input, as XFeat was trained.

    The authors map pixel x to 2x/(W-1) - 1 and sample with align_corners=False; the maps are
    read at that position (a slight stretch), which the scores and descriptors depend on.
    """
    scale = points.new_tensor([2.0 / (width - 1), 2.0 / (height - 1)])
    return (points * scale - 1.0)[None, None]  # (1, 1, N, 2)


class XFeat(Extractor):
    """XFeat sparse features: up to ``max_keypoints`` keypoints with 64-d unit descriptors."""

    name = 'xfeat'
    descriptor_dim = 64

    def __init__(
        self,
        max_keypoints: int = 2048,
        weights: str | os.PathLike | None = None,
        detection_threshold: float = 0.05,
    ):
        super().__init__(max_keypoints)
        if not 0.0 <= detection_threshold < 1.0:
            raise ValueError(f'detection_threshold must be in [0, 1), got {detection_threshold}')
        self.detection_threshold = float(detection_threshold)
        path = packaged_weights('xfeat') if weights is None else weights
        state = load_checkpoint(path)
        checkpoint = _Checkpoint()
        # The fine matcher MLP serves the semi-dense mode, which this extractor does not run.
        load_into(checkpoint, state, str(path), ignore=('fine_matcher.',))
        self.net = XFeatNet(checkpoint)

    def train(self, mode: bool = True) -> XFeat:
        """Stay in eval mode: the BatchNorm statistics are folded into the convolutions."""
        return super().train(False)

    @torch.inference_mode()
    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Detect and describe; see Extractor for the contract."""
        height, width = self.check_input(image)
        grey = image.to(self.net.skip.weight.dtype)  # float32 unless the user converted us
        if grey.shape[1] == 3:  # channel mean, as the authors; cheaper than mean() on NCHW
            grey = (grey[:, 0:1] + grey[:, 1:2] + grey[:, 2:3]) / 3
        # Largest multiple-of-32 size (bilinear, no antialias), as the authors' pipeline does.
        net_h = max(_MULTIPLE, height // _MULTIPLE * _MULTIPLE)
        net_w = max(_MULTIPLE, width // _MULTIPLE * _MULTIPLE)
        if (net_h, net_w) != (height, width):
            grey = F.interpolate(grey, (net_h, net_w), mode='bilinear', align_corners=False)
        features, logits, reliability = self.net(grey)
        keypoints, scores, descriptors = self._sparse(features, logits, reliability, net_h, net_w)
        keypoints = keypoints * keypoints.new_tensor([width / net_w, height / net_h])
        return {
            'keypoints': keypoints.float(),
            'keypoint_scores': scores.float(),
            'descriptors': descriptors.float(),
        }

    def _sparse(
        self,
        features: torch.Tensor,
        logits: torch.Tensor,
        reliability: torch.Tensor,
        height: int,
        width: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Keypoints (integer pixels of the network input), scores, descriptors; best first."""
        # Per-pixel keypoint probability: softmax over the 65 classes, the 64 cell positions
        # laid out back into 8x8 pixels.
        heat = _cells_to_pixels(torch.softmax(logits[0], dim=0)[:-1])
        peaks = (heat > self.detection_threshold) & (heat == window_max(heat, _NMS_RADIUS))
        # The authors' nearest-neighbour score lookup falls outside the map on the last row and
        # column (so those score 0), and their padding sentinel discards pixel (0, 0).
        peaks[-1, :] = False
        peaks[:, -1] = False
        peaks[0, 0] = False
        rows, cols = peaks.nonzero(as_tuple=True)
        points = torch.stack((cols, rows), dim=1).to(heat.dtype)
        grid = _sample_grid(points, height, width)
        reliable = F.grid_sample(reliability, grid, mode='bilinear', align_corners=False)
        scores = heat[rows, cols] * reliable[0, 0, 0]
        count = min(self.max_keypoints, int(scores.shape[0]))
        scores, order = torch.topk(scores, count, sorted=True)
        valid = scores > 0
        if not bool(valid.all()):
            scores, order = scores[valid], order[valid]
        points = points[order]
        # Unit-length descriptor map, sampled bicubically, normalised again.
        features = _unit(features, 1)
        descriptors = F.grid_sample(
            features, _sample_grid(points, height, width), mode='bicubic', align_corners=False
        )[0, :, 0]
        return points, scores, _unit(descriptors.t(), 1).contiguous()
