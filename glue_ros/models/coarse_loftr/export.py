"""Coarse LoFTR as an ONNX graph at a fixed input size.

The exported graph is ``image0, image1`` (1, 1, H, W) float32 in [0, 1] -> ``conf_matrix``
(1, L, S) float32, L = S = (H / stride) * (W / stride). Match selection stays outside the
graph (see :func:`glue_ros.models.coarse_loftr.select_matches`), so every shape in it is
static, which TensorRT needs for its best engines.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch

from glue_ros.core.atomic_files import write_atomically
from glue_ros.models.export_cache import cpu_copy, model_digest

INPUT_NAMES = ('image0', 'image1')
OUTPUT_NAME = 'conf_matrix'
EXPORT_FORMAT_VERSION = 1  # bump when the exported graph changes for the same weights


def export_onnx(
    model: torch.nn.Module,
    path: str | os.PathLike,
    input_size: tuple[int, int] = (640, 480),
    opset: int = 17,
) -> Path:
    """Write `model` (a CoarseLoFTR) to `path` as ONNX for (width, height) = `input_size`.

    The model is traced on CPU in float32 eval mode (TorchScript exporter: static shapes, all
    weights embedded in the one file, positional encoding constant-folded). The file is first
    written next to `path` and then moved into place, so a reader never sees half a model.
    Returns the path.
    """
    width, height = (int(v) for v in input_size)
    stride = getattr(model, 'stride', 1)
    if width % stride or height % stride:
        raise ValueError(f'input_size {tuple(input_size)} must be multiples of {stride}')
    cpu_model = cpu_copy(model).eval()
    dummy = (torch.rand(1, 1, height, width), torch.rand(1, 1, height, width))

    def export(tmp: str) -> None:
        with warnings.catch_warnings():
            # The TorchScript exporter warns that it is deprecated in favour of dynamo=True;
            # that one needs onnxscript and gives no advantage for this static graph.
            warnings.simplefilter('ignore', category=DeprecationWarning)
            warnings.simplefilter('ignore', category=FutureWarning)
            warnings.simplefilter('ignore', category=torch.jit.TracerWarning)
            with torch.no_grad():
                torch.onnx.export(
                    cpu_model,
                    dummy,
                    tmp,
                    input_names=list(INPUT_NAMES),
                    output_names=[OUTPUT_NAME],
                    opset_version=opset,
                    do_constant_folding=True,
                    dynamo=False,
                )

    return write_atomically(path, export)


def cached_onnx_export(
    model: torch.nn.Module,
    cache_dir: str | os.PathLike,
    input_size: tuple[int, int] = (640, 480),
    opset: int = 17,
) -> Path:
    """Export `model` once per (weights, configuration, input size, opset) into `cache_dir`.

    The model's ``conf`` and a hash of its state dict are part of the key, so a changed model
    never reuses a stale file. Returns the path of the ONNX file.
    """
    width, height = (int(v) for v in input_size)
    digest = model_digest(
        model, {'input_size': [width, height], 'opset': opset, 'format': EXPORT_FORMAT_VERSION}
    )
    path = Path(cache_dir) / f'coarse_loftr_{width}x{height}_{digest[:16]}.onnx'
    # export_onnx writes atomically itself.
    return path if path.is_file() else export_onnx(model, path, input_size, opset)


__all__ = ['export_onnx', 'cached_onnx_export', 'INPUT_NAMES', 'OUTPUT_NAME']
