"""Export the coarse LoFTR network to ONNX at a fixed input size.

The exported graph is ``image0, image1`` (1, 1, H, W) float32 in [0, 1] -> ``conf_matrix``
(1, L, S) float32, L = S = (H / stride) * (W / stride). Match selection stays outside the
graph (see glue_ros.models.coarse_loftr.select_matches), so every shape in it is static,
which TensorRT needs for its best engines.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path

import torch

INPUT_NAMES = ('image0', 'image1')
OUTPUT_NAME = 'conf_matrix'
EXPORT_FORMAT_VERSION = 1  # bump when the exported graph changes for the same weights


def export_coarse_loftr(model: torch.nn.Module, path: str | os.PathLike,
                        input_size: tuple[int, int] = (640, 480), opset: int = 17) -> Path:
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
    # Export a CPU copy so that a model living on the GPU is left where it is.
    cpu_model = _cpu_copy(model).eval()
    dummy = (torch.rand(1, 1, height, width), torch.rand(1, 1, height, width))

    def export(tmp):
        with warnings.catch_warnings():
            # The TorchScript exporter warns that it is deprecated in favour of dynamo=True;
            # that one needs onnxscript and gives no advantage for this static graph.
            warnings.simplefilter('ignore', category=DeprecationWarning)
            warnings.simplefilter('ignore', category=FutureWarning)
            warnings.simplefilter('ignore', category=torch.jit.TracerWarning)
            with torch.no_grad():
                torch.onnx.export(cpu_model, dummy, tmp, input_names=list(INPUT_NAMES),
                                  output_names=[OUTPUT_NAME], opset_version=opset,
                                  do_constant_folding=True, dynamo=False)
    return write_atomically(path, export)


def _cpu_copy(model: torch.nn.Module) -> torch.nn.Module:
    params = list(model.parameters())
    if all(p.device.type == 'cpu' and p.dtype == torch.float32 for p in params):
        return model
    import copy
    return copy.deepcopy(model).to('cpu', torch.float32)


def model_digest(model: torch.nn.Module, settings: dict, conf=None) -> str:
    """Hex sha256 of a model's weights, its `conf` and the export `settings`.

    The torch version is part of it too (another exporter may write another graph). Keying the
    file by content means a changed checkpoint, configuration or setting never reuses a stale
    export, and the same model always finds its own.
    """
    digest = hashlib.sha256()
    conf = getattr(model, 'conf', None) if conf is None else conf
    digest.update(json.dumps({'conf': conf, **settings, 'torch': torch.__version__},
                             sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def write_atomically(path: str | os.PathLike, write) -> Path:
    """Write `path` with ``write(tmp_path)`` under a temporary name, then move it into place.

    A concurrent reader never sees half a model; with two writers the last one wins.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + '.', suffix='.tmp', dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def cached_export(path: str | os.PathLike, export) -> Path:
    """Return `path`, first writing it (atomically) with ``export(tmp_path)`` when missing."""
    path = Path(path)
    return path if path.is_file() else write_atomically(path, export)


def cached_onnx_export(model: torch.nn.Module, cache_dir: str | os.PathLike,
                       input_size: tuple[int, int] = (640, 480), opset: int = 17) -> Path:
    """Export `model` once per (weights, configuration, input size, opset) into `cache_dir`.

    The model's ``conf`` and a hash of its state dict are part of the key, so a changed model
    never reuses a stale file. Returns the path of the ONNX file.
    """
    width, height = (int(v) for v in input_size)
    digest = model_digest(model, {'input_size': [width, height], 'opset': opset,
                                  'format': EXPORT_FORMAT_VERSION})
    path = Path(cache_dir) / f'coarse_loftr_{width}x{height}_{digest[:16]}.onnx'
    # export_coarse_loftr writes atomically itself.
    return path if path.is_file() else export_coarse_loftr(model, path, input_size, opset)
