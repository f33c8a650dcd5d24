"""Whether TensorRT can run here, and the precision it should build engines in."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import torch

from glue_ros.core.errors import BackendUnavailableError

PRECISIONS = ('auto', 'fp16', 'fp32')


def check_tensorrt_available() -> tuple[ModuleType, ModuleType]:
    """Return the (tensorrt, torch) modules, or raise BackendUnavailableError saying why not."""
    problems = []
    trt = None
    try:  # optional: NVIDIA machines only
        import tensorrt as trt
    except ImportError as exc:
        problems.append(f"the Python package 'tensorrt' is not installed ({exc})")
    if not torch.cuda.is_available():
        problems.append(
            'torch sees no CUDA GPU (torch.cuda.is_available() is False; '
            'a CUDA build of torch is used for the device buffers)'
        )
    if trt is not None:
        version = tuple(int(v) for v in trt.__version__.split('.')[:2] if v.isdigit())
        if version < (8, 5):
            problems.append(f'TensorRT {trt.__version__} is too old (need >= 8.5)')
    if problems:
        raise BackendUnavailableError(
            'TensorRT backend unavailable: '
            + '; '.join(problems)
            + ". Use backend='onnxruntime' or 'torch' instead."
        )
    return trt, torch


def has_fast_fp16(compute_capability: Sequence[int]) -> bool:
    """Whether a GPU of this CUDA compute capability runs FP16 at full or double rate."""
    major, minor = (int(v) for v in compute_capability)
    return (major, minor) in ((5, 3), (6, 0), (6, 2)) or major >= 7


def resolve_precision(precision: str, compute_capability: Sequence[int]) -> str:
    """'auto' -> 'fp16' on GPUs with fast FP16, else 'fp32'; 'fp16' / 'fp32' unchanged."""
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {PRECISIONS}, got {precision!r}')
    if precision == 'auto':
        return 'fp16' if has_fast_fp16(compute_capability) else 'fp32'
    return precision
