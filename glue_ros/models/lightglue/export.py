"""LightGlue as a static, full-depth graph for ONNX Runtime and TensorRT.

An exported graph cannot change its depth or shapes at run time: no early exit, no
pruning; inputs are padded to a fixed keypoint count and masked.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from glue_ros.models.export_cache import cached_export, cpu_copy, model_digest
from glue_ros.models.lightglue.assignment import mutual_matches
from glue_ros.models.lightglue.network import LightGlue

INPUT_NAMES = ('kpts0', 'desc0', 'mask0', 'size0', 'kpts1', 'desc1', 'mask1', 'size1')
OUTPUT_NAMES = ('matches0', 'scores0', 'matches1', 'scores1')
EXPORT_FORMAT_VERSION = 1  # bump when the exported graph changes for the same weights
# Options the static graph does not read (early exit, pruning, eager precision modes): a
# change of them must not cost a new export.
_EAGER_ONLY = (
    'depth_confidence',
    'width_confidence',
    'mp',
    'cpu_bf16_attention',
    'assignment_block_elements',
)

# Additive attention bias of padded keys in the static graph: exp(-1e4) is 0 in float32 and
# float16, and -1e4 stays finite in float16 (unlike -inf, which gives NaN for an all-padded row).
_PAD_BIAS = -1e4


class LightGlueFullDepth(nn.Module):
    """Static-graph LightGlue for ONNX / TensorRT: fixed-size padded inputs, all layers.

    A static graph cannot change its depth or its shapes at run time, so this variant runs all
    ``n_layers`` layers on every input: no early exit and no point pruning (it matches like
    ``LightGlue(depth_confidence=-1, width_confidence=-1)``, only slower on easy pairs).

    ``forward(kpts0, desc0, mask0, size0, kpts1, desc1, mask1, size1)`` takes, per image, the
    keypoints ``(1, K, 2)`` in pixels, descriptors ``(1, K, input_dim)``, a validity mask
    ``(1, K)`` bool (False for padding) and the image size ``(1, 2)`` = (width, height), with
    ``K = num_keypoints``. It returns ``matches0 (1, K)`` int64 (index into image 1, or -1),
    ``scores0 (1, K)``, ``matches1 (1, K)`` and ``scores1 (1, K)``.
    """

    def __init__(self, lightglue: LightGlue, num_keypoints: int):
        super().__init__()
        if num_keypoints < 1:
            raise ValueError('num_keypoints must be positive')
        self.lightglue = lightglue
        self.num_keypoints = int(num_keypoints)

    def forward(
        self,
        kpts0: torch.Tensor,
        desc0: torch.Tensor,
        mask0: torch.Tensor,
        size0: torch.Tensor,
        kpts1: torch.Tensor,
        desc1: torch.Tensor,
        mask1: torch.Tensor,
        size1: torch.Tensor,
    ) -> tuple:
        """Match two padded keypoint sets with all layers (see the class docstring)."""
        lg = self.lightglue
        if lg.conf['add_scale_ori']:
            raise NotImplementedError('the export graph does not encode scale/orientation')
        kpts = torch.cat([kpts0, kpts1], 0).float()
        size = torch.cat([size0.reshape(1, 2), size1.reshape(1, 2)], 0).to(kpts)
        coords = (kpts - size[:, None] / 2) / (size.max(1, keepdim=True).values[:, None] / 2)
        valid = torch.cat([mask0.reshape(1, -1), mask1.reshape(1, -1)], 0).bool()
        key_bias = torch.where(valid, 0.0, _PAD_BIAS).to(kpts)[:, None, None, :]
        other_key_bias = key_bias.flip(0)
        rope = lg.posenc(coords)
        x = lg.input_proj(torch.cat([desc0, desc1], 0))
        for layer in lg.transformers:
            x = layer.self_attn.forward_static(x, rope, key_bias)
            x = layer.cross_attn.forward_static(x, other_key_bias)
        out = F.linear(x, *lg.log_assignment[-1].projection())
        dim = lg.conf['descriptor_dim']  # explicit indices: the exporter mishandles negative ones
        mdesc, z = out[:, :, :dim], out[:, :, dim]
        sim = mdesc[0] @ mdesc[1].T + key_bias[0, 0, 0][:, None] + key_bias[1, 0, 0][None]
        scores = F.log_softmax(sim, 1) + F.log_softmax(sim, 0)
        scores = scores + F.logsigmoid(z[0])[:, None] + F.logsigmoid(z[1])[None]
        max0, arg0 = scores.max(1)
        arg1 = scores.max(0).indices
        m0, s0, m1, s1 = mutual_matches(max0, arg0, arg1, lg.conf['filter_threshold'])
        m0 = torch.where(valid[0], m0, torch.full_like(m0, -1))
        m1 = torch.where(valid[1], m1, torch.full_like(m1, -1))
        s0 = torch.where(valid[0], s0, torch.zeros_like(s0))
        s1 = torch.where(valid[1], s1, torch.zeros_like(s1))
        return m0[None], s0[None], m1[None], s1[None]


def export_onnx(
    lightglue: LightGlue, path: str | os.PathLike, num_keypoints: int, opset: int = 17
) -> Path:
    """Write the full-depth static graph of ``lightglue`` for ``num_keypoints`` points to ONNX.

    Inputs: ``kpts0, desc0, mask0, size0, kpts1, desc1, mask1, size1`` as described in
    :class:`LightGlueFullDepth`; outputs: ``matches0, scores0, matches1, scores1``.
    """
    module = LightGlueFullDepth(lightglue, num_keypoints).eval()
    k, dim = int(num_keypoints), lightglue.conf['input_dim']
    device = next(lightglue.parameters()).device
    gen = torch.Generator().manual_seed(0)

    def image() -> tuple[torch.Tensor, ...]:
        kpts = torch.rand(1, k, 2, generator=gen) * torch.tensor([640.0, 480.0])
        desc = F.normalize(torch.randn(1, k, dim, generator=gen), dim=-1)
        mask = torch.ones(1, k, dtype=torch.bool, device=device)
        return (
            kpts.to(device),
            desc.to(device),
            mask,
            torch.tensor([[640.0, 480.0]], device=device),
        )

    path = Path(path)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter('ignore')  # tracer and deprecation chatter of the exporter
        torch.onnx.export(
            module,
            image() + image(),
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            opset_version=opset,
            dynamo=False,
        )
    return path


def cached_onnx_export(
    lightglue: LightGlue, cache_dir: str | os.PathLike, num_keypoints: int, opset: int = 17
) -> Path:
    """Export the full-depth graph once per (weights, graph options, K, opset) to `cache_dir`.

    The key hashes the weights, so another checkpoint or K never reuses a file; options only
    the eager model reads (early exit, pruning, autocast) are left out of it.
    """
    k = int(num_keypoints)
    conf = {key: v for key, v in lightglue.conf.items() if key not in _EAGER_ONLY}
    digest = model_digest(
        lightglue, {'num_keypoints': k, 'opset': opset, 'format': EXPORT_FORMAT_VERSION}, conf
    )
    path = Path(cache_dir) / f'lightglue_k{k}_{digest[:16]}.onnx'
    return cached_export(path, lambda tmp: export_onnx(cpu_copy(lightglue).eval(), tmp, k, opset))
