"""Exported graphs on disk, keyed by content: a changed model never reuses a stale file."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from glue_ros.core.atomic_files import write_atomically


def cpu_copy(model: torch.nn.Module) -> torch.nn.Module:
    """`model` itself when it is on the CPU in float32, else a CPU float32 copy.

    Exports trace this, so that a model living on the GPU is left where it is.
    """
    params = list(model.parameters())
    if all(p.device.type == 'cpu' and p.dtype == torch.float32 for p in params):
        return model
    return copy.deepcopy(model).to('cpu', torch.float32)


def model_digest(model: torch.nn.Module, settings: dict, conf: dict | None = None) -> str:
    """Hex sha256 of a model's weights, its `conf` and the export `settings`.

    The torch version is part of it too (another exporter may write another graph). Keying the
    file by content means a changed checkpoint, configuration or setting never reuses a stale
    export, and the same model always finds its own.
    """
    digest = hashlib.sha256()
    conf = getattr(model, 'conf', None) if conf is None else conf
    digest.update(
        json.dumps(
            {'conf': conf, **settings, 'torch': torch.__version__}, sort_keys=True, default=str
        ).encode()
    )
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def cached_export(path: str | os.PathLike, export: Callable[[str], object]) -> Path:
    """Return `path`, first writing it (atomically) with ``export(tmp_path)`` when missing."""
    path = Path(path)
    return path if path.is_file() else write_atomically(path, export)


__all__ = ['cpu_copy', 'model_digest', 'cached_export']
