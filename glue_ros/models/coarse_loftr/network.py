"""Coarse-only LoFTR: dense detector-free matching on a coarse grid of image cells.

One network in one file, in the order of the paper (backbone, positional encoding,
transformer, confidence matrix, match selection), as the checkpoint names its parts; its export
is in ``export.py``.

Our implementation of the coarse stage of LoFTR (Sun et al., CVPR 2021) as used by the
distilled student of "Local Feature Matching with Transformers for low-end devices"
(Kolodiazhnyi, arXiv 2202.00770), written from the papers and from the tensor names and
shapes of the published checkpoints so that those load unchanged.

Pipeline (``CoarseLoFTR.forward``, the part that is exported to ONNX / TensorRT):

1. ResNet-FPN backbone, both images in one batch, down to the coarse stride (1/16 for the
   student, 1/8 for the original LoFTR). Only the coarsest FPN output is computed; the finer
   FPN branches feed LoFTR's fine stage, which this model does not have.
2. 2-D sine positional encoding added to the coarse feature maps, flattened to sequences.
3. Linear-attention transformer (elu + 1 feature map) alternating self and cross layers.
4. Dual-softmax confidence matrix: ``softmax_rows(S) * softmax_cols(S)`` with
   ``S = <f0 / sqrt(d), f1 / sqrt(d)> / temperature``.

Match selection (threshold, mutual nearest neighbour, border removal) is deliberately *not*
part of the network: ``select_matches`` runs on the confidence matrix as a torch tensor (any
device) or as the numpy array another backend returns. Keeping it outside the graph keeps
every exported output fixed-shape (TensorRT-friendly, no NonZero) and lets all backends share
one exactly identical selection; it costs two max/argmax passes over the (L, S) matrix.

Coordinates: a coarse match is a pair of grid cells. Cell ``i`` (row-major over the grid of
``W / stride`` columns) covers network-input pixels ``[c * stride, (c + 1) * stride)`` with
``c = i % cols``; we report its centre, ``(c + 0.5) * stride - 0.5`` in OpenCV pixel
coordinates (origin at the centre of the top-left pixel), i.e. points lie on a 16 px grid of
the network input for the student. ``glue_ros.backends.coarse_loftr_runtime`` maps them back
to the input image.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from glue_ros.core.errors import WeightsError
from glue_ros.core.weights import load_checkpoint, load_into, strip_prefix

# Configuration of the distilled student (Kolkir/Coarse_LoFTR_TRT, weights/LoFTR_teacher.pt).
default_conf = {
    # (coarse stride, fine stride) of the backbone; only the coarse output is computed.
    # (16, 4): student, 4 ResNet stages; (8, 2): original LoFTR, 3 stages.
    'resolution': (16, 4),
    # Channels of the stem convolution (7x7, stride 2).
    'initial_dim': 8,
    # Channels of the ResNet stages (two BasicBlocks each); one stage per factor of 2 of the
    # coarse stride: len(block_dims) == log2(resolution[0]).
    'block_dims': [8, 16, 32, 32],
    # Transformer width; must equal block_dims[-1] (the coarse FPN output has that many
    # channels).
    'd_model': 32,
    # Attention heads (d_model is split among them).
    'nhead': 1,
    # Order of the transformer layers: 'self' attends within an image, 'cross' to the other.
    'layer_names': ['self', 'cross'] * 2,
    # LoFTR's first sine positional encoding had a misplaced parenthesis in its frequency term
    # (zju3dv/LoFTR issue 41). Models trained with it (the student, LoFTR's released *_ds
    # checkpoints) need False; True selects the corrected frequencies.
    'temp_bug_fix': False,
    # Epsilon of the transformer LayerNorms: the student was trained with 1e-7, the original
    # LoFTR with PyTorch's default 1e-5.
    'layer_norm_eps': 1e-7,
    # Dual-softmax temperature.
    'temperature': 0.1,
    # Match selection defaults (used by select_matches / the matcher, not by forward()).
    'threshold': 0.2,  # keep matches with confidence > threshold
    'border_rm': 2,  # drop cells within this many cells of the grid border (both images)
}

# Coarse stage of the original LoFTR outdoor model (zju3dv/LoFTR outdoor_ds.ckpt: a dict with
# 'state_dict', keys prefixed 'matcher.'; its fine-stage tensors are ignored on loading).
loftr_outdoor_conf = dict(
    default_conf,
    resolution=(8, 2),
    initial_dim=128,
    block_dims=[128, 196, 256],
    d_model=256,
    nhead=8,
    layer_names=['self', 'cross'] * 4,
    temp_bug_fix=False,
    layer_norm_eps=1e-5,
)

# Checkpoint key prefixes that belong to LoFTR's fine stage (never used here).
_FINE_STAGE_PREFIXES = ('fine_preprocess.', 'loftr_fine.', 'fine_matching.')


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class _ResidualBlock(nn.Module):
    """Two 3x3 conv + BN layers with an identity (or 1x1 conv + BN) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = _conv3x3(cin, cout, stride)
        self.conv2 = _conv3x3(cout, cout)
        self.bn1 = nn.BatchNorm2d(cout)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(cout),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(shortcut + y)


class _CoarseBackbone(nn.Module):
    """ResNet stem and stages down to the coarse stride, plus the top FPN projection.

    Stage k (1-based) is ``layer{k}``; stage 1 keeps the stem's 1/2 resolution, every later one
    halves it. The coarse output is ``layer{K}_outconv`` (1x1) of the last stage: in LoFTR's FPN
    the top level is not mixed with finer levels, so the finer branches can be left out.
    """

    def __init__(self, initial_dim: int, block_dims: Sequence[int]):
        super().__init__()
        self.conv1 = nn.Conv2d(1, initial_dim, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(initial_dim)
        cin = initial_dim
        self.num_stages = len(block_dims)
        for k, cout in enumerate(block_dims, start=1):
            stride = 1 if k == 1 else 2
            setattr(
                self,
                f'layer{k}',
                nn.Sequential(_ResidualBlock(cin, cout, stride), _ResidualBlock(cout, cout, 1)),
            )
            cin = cout
        setattr(
            self, f'layer{self.num_stages}_outconv', nn.Conv2d(cin, cin, kernel_size=1, bias=False)
        )

    def unused_checkpoint_prefixes(self) -> tuple[str, ...]:
        """Key prefixes (relative to the backbone) of the finer FPN levels we do not build."""
        return tuple(f'layer{k}_outconv' for k in range(1, self.num_stages))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        for k in range(1, self.num_stages + 1):
            x = getattr(self, f'layer{k}')(x)
        return getattr(self, f'layer{self.num_stages}_outconv')(x)


def sine_positional_encoding(
    d_model: int,
    height: int,
    width: int,
    temp_bug_fix: bool,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Compute LoFTR's 2-D sine encoding of a (height, width) grid: (1, d_model, h, w).

    Channels cycle through sin(x f), cos(x f), sin(y f), cos(y f) over d_model / 4 frequencies
    f; positions x, y count from 1. With ``temp_bug_fix=False`` the frequencies reproduce the
    original implementation's operator-precedence slip, ``exp(-2k)`` for k = 0, 1, ...,
    instead of ``10000 ** (-4k / d_model)``.
    """
    if d_model % 4:
        raise ValueError(f'd_model must be a multiple of 4 for the sine encoding, got {d_model}')
    steps = torch.arange(0, d_model // 2, 2, dtype=torch.float32)
    if temp_bug_fix:
        rate = -math.log(10000.0) / (d_model // 2)
    else:
        rate = (-math.log(10000.0) / d_model) // 2
    freq = torch.exp(steps * rate)[:, None, None]
    ys = torch.arange(1, height + 1, dtype=torch.float32)[None, :, None].expand(1, height, width)
    xs = torch.arange(1, width + 1, dtype=torch.float32)[None, None, :].expand(1, height, width)
    pe = torch.stack(
        [torch.sin(xs * freq), torch.cos(xs * freq), torch.sin(ys * freq), torch.cos(ys * freq)],
        dim=1,
    )  # (C/4, 4, H, W)
    return pe.reshape(1, d_model, height, width).to(device=device, dtype=dtype)


class _AttentionLayer(nn.Module):
    """One LoFTR encoder layer: linear multi-head attention, then an MLP on [x, message]."""

    def __init__(self, d_model: int, nhead: int, eps: float):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f'd_model {d_model} is not divisible by nhead {nhead}')
        self.nhead = nhead
        self.head_dim = d_model // nhead
        self.q_proj = nn.Linear(d_model, d_model, bias=False)
        self.k_proj = nn.Linear(d_model, d_model, bias=False)
        self.v_proj = nn.Linear(d_model, d_model, bias=False)
        self.merge = nn.Linear(d_model, d_model, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(2 * d_model, 2 * d_model, bias=False),
            nn.ReLU(),
            nn.Linear(2 * d_model, d_model, bias=False),
        )
        self.norm1 = nn.LayerNorm(d_model, eps=eps)
        self.norm2 = nn.LayerNorm(d_model, eps=eps)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        n, length = int(x.shape[0]), int(x.shape[1])
        return x.reshape(n, length, self.nhead, self.head_dim).transpose(1, 2)  # (N, H, L, D)

    def forward(self, x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        # Shapes as plain ints keep the fixed-size ONNX graph free of shape arithmetic.
        n, length, channels = (int(v) for v in x.shape)
        q = F.elu(self._heads(self.q_proj(x))) + 1.0
        k = F.elu(self._heads(self.k_proj(source))) + 1.0
        # Linear attention (Katharopoulos et al. 2020): phi(Q) (phi(K)^T V) normalised by
        # phi(Q) sum(phi(K)). V is divided by the source length before the products and the
        # result multiplied back, as in LoFTR, to keep FP16 engines from overflowing.
        source_len = int(source.shape[1])
        v = self._heads(self.v_proj(source)) / source_len
        kv = torch.matmul(k.transpose(2, 3), v)  # (N, H, D, D)
        norm = torch.matmul(q, k.sum(dim=2).unsqueeze(-1))  # (N, H, L, 1)
        message = torch.matmul(q, kv) / (norm + 1e-6) * source_len  # (N, H, L, D)
        message = message.transpose(1, 2).reshape(n, length, channels)
        message = self.norm1(self.merge(message))
        message = self.norm2(self.mlp(torch.cat([x, message], dim=2)))
        return x + message


class _CoarseTransformer(nn.Module):
    def __init__(self, d_model: int, nhead: int, layer_names: Sequence[str], eps: float):
        super().__init__()
        bad = [name for name in layer_names if name not in ('self', 'cross')]
        if bad:
            raise ValueError(f"layer_names may only hold 'self' and 'cross', got {bad}")
        self.layer_names = list(layer_names)
        self.layers = nn.ModuleList(_AttentionLayer(d_model, nhead, eps) for _ in layer_names)

    def forward(
        self, feat0: torch.Tensor, feat1: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        for name, layer in zip(self.layer_names, self.layers):
            if name == 'self':
                feat0, feat1 = layer(feat0, feat0), layer(feat1, feat1)
            else:  # cross: image 1 attends to the already updated image 0, as in LoFTR
                feat0 = layer(feat0, feat1)
                feat1 = layer(feat1, feat0)
        return feat0, feat1


class CoarseLoFTR(nn.Module):
    """Coarse LoFTR network: two grey images -> dual-softmax confidence matrix.

    ``forward(image0, image1)`` takes (N, 1, H, W) float tensors in [0, 1] with H and W
    multiples of the coarse stride (``self.stride``: 16 for the student) and returns
    ``conf_matrix`` (N, L, S), L = (H0/stride)(W0/stride) cells of image 0 (row-major) and S
    cells of image 1. Use ``select_matches`` on it to obtain matches.
    """

    def __init__(self, **conf):
        super().__init__()
        unknown = sorted(set(conf) - set(default_conf))
        if unknown:
            raise ValueError(f'unknown CoarseLoFTR option(s): {", ".join(unknown)}')
        self.conf = copy.deepcopy({**default_conf, **conf})
        c = self.conf
        self.stride = int(c['resolution'][0])
        if 2 ** len(c['block_dims']) != self.stride:
            raise ValueError(
                f'resolution {tuple(c["resolution"])} needs '
                f'log2({self.stride}) ResNet stages, block_dims has '
                f'{len(c["block_dims"])}'
            )
        if c['block_dims'][-1] != c['d_model']:
            raise ValueError(
                f'd_model ({c["d_model"]}) must equal the coarse feature width '
                f'block_dims[-1] ({c["block_dims"][-1]})'
            )
        self.backbone = _CoarseBackbone(c['initial_dim'], c['block_dims'])
        self.loftr_coarse = _CoarseTransformer(
            c['d_model'], c['nhead'], c['layer_names'], c['layer_norm_eps']
        )
        self.eval()

    # ---------------------------------------------------------------- weights
    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, **conf) -> CoarseLoFTR:
        """Build the model from `conf` (defaults: the student) and load a checkpoint into it.

        Accepted layouts: the student's ``{'model_state_dict': ...}`` (Kolkir/Coarse_LoFTR_TRT),
        LoFTR's ``{'state_dict': {'matcher.…': ...}}`` (e.g. outdoor_ds.ckpt with
        ``**loftr_outdoor_conf``; fine-stage and finer-FPN tensors are ignored) or a bare state
        dict. Raises WeightsError when the file is missing, unreadable, not a checkpoint, or
        its tensors do not fit (missing / unexpected / misshaped names are listed).
        """
        model = cls(**conf)
        model.load_checkpoint(path)
        return model

    def load_checkpoint(self, path: str | os.PathLike) -> None:
        """Load weights from `path` (see from_checkpoint); raises WeightsError on failure."""
        checkpoint = load_checkpoint(path)
        state = _find_state_dict(checkpoint, path)
        state = strip_prefix(state, ('matcher.', 'module.'))
        if 'coarse_matching.bin_score' in state:
            raise WeightsError(
                f'weights {path} are a LoFTR optimal-transport (sinkhorn) '
                f'model; only dual-softmax (*_ds) checkpoints are supported'
            )
        ignore = (
            _FINE_STAGE_PREFIXES
            + ('pos_encoding.', 'coarse_matching.')
            + tuple('backbone.' + p for p in self.backbone.unused_checkpoint_prefixes())
        )
        load_into(self, state, str(path), ignore=ignore)
        bad = [
            k
            for k, v in self.state_dict().items()
            if v.is_floating_point() and not torch.isfinite(v).all()
        ]
        if bad:
            raise WeightsError(
                f'weights {path} hold non-finite values in '
                f'{", ".join(bad[:6])}' + (' …' if len(bad) > 6 else '')
            )
        self.eval()

    # ---------------------------------------------------------------- network
    def forward(self, image0: torch.Tensor, image1: torch.Tensor) -> torch.Tensor:
        """Return the (N, L, S) confidence matrix of two (N, 1, H, W) images in [0, 1]."""
        for name, image in (('image0', image0), ('image1', image1)):
            if image.dim() != 4 or image.shape[1] != 1:
                raise ValueError(f'{name} must be (N, 1, H, W), got {tuple(image.shape)}')
            if image.shape[2] % self.stride or image.shape[3] % self.stride:
                raise ValueError(
                    f'{name} height and width must be multiples of '
                    f'{self.stride}, got {tuple(image.shape[2:])}'
                )
        if image0.shape == image1.shape:  # one backbone pass for both (BN is in eval mode)
            feats = self.backbone(torch.cat([image0, image1], dim=0))
            n = int(image0.shape[0])
            feat0, feat1 = feats[:n], feats[n:]
        else:
            feat0, feat1 = self.backbone(image0), self.backbone(image1)
        feat0 = self._to_sequence(feat0)
        feat1 = self._to_sequence(feat1)
        feat0, feat1 = self.loftr_coarse(feat0, feat1)
        return dual_softmax(feat0, feat1, self.conf['temperature'])

    def _to_sequence(self, feat: torch.Tensor) -> torch.Tensor:
        # Plain ints: for a fixed-size export the encoding becomes one constant tensor (the
        # TorchScript ONNX exporter mis-folds it when it is built from traced shapes).
        n, c, h, w = (int(v) for v in feat.shape)
        pe = sine_positional_encoding(c, h, w, self.conf['temp_bug_fix'], feat.device, feat.dtype)
        return (feat + pe).reshape(n, c, h * w).transpose(1, 2)  # (N, h * w, C)


def _find_state_dict(checkpoint: object, path: str | os.PathLike) -> Mapping[str, torch.Tensor]:
    if isinstance(checkpoint, Mapping):
        for key in ('model_state_dict', 'state_dict'):
            if isinstance(checkpoint.get(key), Mapping):
                checkpoint = checkpoint[key]
                break
        if checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
            return checkpoint
    raise WeightsError(
        f'{path} is not a CoarseLoFTR/LoFTR checkpoint: expected a dict with '
        f"'model_state_dict' (coarse LoFTR student), 'state_dict' (LoFTR) or a "
        f'bare state dict of tensors, got {type(checkpoint).__name__}'
        + (
            f' with keys {sorted(map(str, checkpoint))[:6]}'
            if isinstance(checkpoint, Mapping)
            else ''
        )
    )


def dual_softmax(feat0: torch.Tensor, feat1: torch.Tensor, temperature: float) -> torch.Tensor:
    """Confidence (N, L, S) = softmax over L * softmax over S of <f0, f1> / (sqrt(C) T)."""
    scale = float(int(feat0.shape[-1])) ** 0.5
    sim = torch.matmul(feat0 / scale, (feat1 / scale).transpose(1, 2)) / temperature
    return F.softmax(sim, dim=1) * F.softmax(sim, dim=2)


def _border_ok(
    index: torch.Tensor | np.ndarray, rows: int, cols: int, border: int
) -> torch.Tensor | np.ndarray:
    r, c = index // cols, index % cols
    return (r >= border) & (r < rows - border) & (c >= border) & (c < cols - border)


def select_matches(
    conf_matrix: torch.Tensor | np.ndarray,
    grid0: tuple[int, int],
    grid1: tuple[int, int],
    threshold: float = 0.2,
    border_rm: int = 2,
) -> tuple:
    """Pick coarse matches from a confidence matrix by LoFTR's rule.

    A pair (i, j) is kept when conf[i, j] > threshold, j is the maximum of row i and i the
    maximum of column j (mutual nearest neighbours; on exact ties the first index wins, so the
    result is one-to-one), and neither cell lies within `border_rm` cells of its grid border.

    conf_matrix: (L, S) or (1, L, S), a torch tensor (any device) or a numpy array.
    grid0, grid1: (rows, cols) of the coarse grids, L = rows0 * cols0, S = rows1 * cols1.
    Returns (i, j, scores) of the same library as the input: int64 row-major cell indices in
    image 0 and image 1 and float confidences, ordered by i.
    """
    if conf_matrix.ndim == 3:
        if conf_matrix.shape[0] != 1:
            raise ValueError(
                f'select_matches handles one pair; got a batch of {conf_matrix.shape[0]}'
            )
        conf_matrix = conf_matrix[0]
    rows0, cols0 = grid0
    rows1, cols1 = grid1
    if tuple(conf_matrix.shape) != (rows0 * cols0, rows1 * cols1):
        raise ValueError(
            f'conf_matrix shape {tuple(conf_matrix.shape)} does not fit grids '
            f'{tuple(grid0)} and {tuple(grid1)}'
        )
    if isinstance(conf_matrix, torch.Tensor):
        row_max, j = conf_matrix.max(dim=1)
        col_arg = conf_matrix.argmax(dim=0)
        i = torch.arange(conf_matrix.shape[0], device=conf_matrix.device)
    else:
        conf_matrix = np.asarray(conf_matrix)
        j = conf_matrix.argmax(axis=1)
        i = np.arange(conf_matrix.shape[0])
        row_max = conf_matrix[i, j]
        col_arg = conf_matrix.argmax(axis=0)
    keep = (
        (row_max > threshold)
        & (col_arg[j] == i)
        & _border_ok(i, rows0, cols0, border_rm)
        & _border_ok(j, rows1, cols1, border_rm)
    )
    return i[keep], j[keep], row_max[keep]


def cell_centers(indices: np.ndarray, cols: int, stride: int) -> np.ndarray:
    """(M, 2) float32 x, y of the centres of row-major cells, in network-input pixels."""
    indices = np.asarray(indices)
    xy = np.stack([indices % cols, indices // cols], axis=1).astype(np.float32)
    return (xy + 0.5) * stride - 0.5
