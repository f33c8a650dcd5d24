"""ONNX Runtime sessions and execution providers, shared by every exported model."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import numpy as np

from glue_ros.core.errors import BackendUnavailableError

# Execution providers tried, best first, when the device is not 'cpu'.
_GPU_PROVIDERS = ('TensorrtExecutionProvider', 'CUDAExecutionProvider')


def _import_onnxruntime() -> ModuleType:
    try:  # here, not at the top: its absence is a backend unavailable, not a broken import
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailableError(
            'the onnxruntime backend needs the Python package onnxruntime (CPU) or '
            f'onnxruntime-gpu (CUDA / TensorRT): {exc}'
        ) from exc
    return onnxruntime


def select_providers(
    device: str,
    available: Sequence[str],
    trt_cache_dir: str | os.PathLike | None = None,
    fp16: bool = True,
) -> list:
    """Choose execution providers for `device` ('cpu', 'cuda', 'cuda:N', 'auto').

    `available` is what onnxruntime.get_available_providers() lists.

    'cpu' uses the CPU provider only; otherwise TensorRT and CUDA providers come first where
    ONNX Runtime offers them (the TensorRT one with FP16 and an engine cache under
    `trt_cache_dir`), and the CPU provider is always last as the fallback. 'cuda' without any
    GPU provider raises BackendUnavailableError; 'auto' falls back to the CPU silently.
    """
    if device == 'cpu':
        return ['CPUExecutionProvider']
    if device != 'auto' and not device.startswith('cuda'):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    device_id = int(device.split(':')[1]) if device.startswith('cuda:') else 0
    providers = []
    for name in _GPU_PROVIDERS:
        if name not in available:
            continue
        options = {'device_id': device_id}
        if name == 'TensorrtExecutionProvider':
            options['trt_fp16_enable'] = bool(fp16)
            if trt_cache_dir is not None:
                Path(trt_cache_dir).mkdir(parents=True, exist_ok=True)
                options['trt_engine_cache_enable'] = True
                options['trt_engine_cache_path'] = str(trt_cache_dir)
        providers.append((name, options))
    if not providers and device != 'auto':
        raise BackendUnavailableError(
            f'onnxruntime has no GPU execution provider here (available: {list(available)}); '
            "install onnxruntime-gpu with CUDA, or use device='cpu'"
        )
    return providers + ['CPUExecutionProvider']


class OnnxRuntimeSession:
    """An ONNX Runtime session over named numpy arrays: ``run({name: array}) -> {name: array}``.

    Every model of the package (coarse LoFTR's two images, LightGlue's eight padded inputs)
    runs through this one place, so thread settings, provider choice and the shape checks
    against the exported (static) shapes are the same for all of them.
    """

    def __init__(
        self,
        onnx_path: str | os.PathLike,
        device: str = 'cpu',
        intra_op_num_threads: int | None = None,
        providers: list | None = None,
        trt_cache_dir: str | os.PathLike | None = None,
        fp16: bool = True,
    ):
        ort = _import_onnxruntime()
        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise FileNotFoundError(f'ONNX model not found: {self.onnx_path}')
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if intra_op_num_threads:
            options.intra_op_num_threads = int(intra_op_num_threads)
            options.inter_op_num_threads = 1
        if providers is None:
            providers = select_providers(
                device, ort.get_available_providers(), trt_cache_dir, fp16
            )
        self.session = ort.InferenceSession(
            str(self.onnx_path), sess_options=options, providers=providers
        )
        self.providers = self.session.get_providers()
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.input_shapes = [tuple(i.shape) for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, feeds: dict, outputs: Sequence[str] | None = None) -> dict:
        """Run on ``{input name: numpy array}``; returns ``{output name: numpy array}``.

        Every input must be given, at its exported shape (the graphs are static: a wrong shape
        is a caller's bug, reported by name rather than as ONNX Runtime's index error).
        """
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise ValueError(f'missing inputs {missing} (the model takes {self.input_names})')
        checked = {}
        for name, shape in zip(self.input_names, self.input_shapes):
            array = np.ascontiguousarray(feeds[name])
            if array.shape != shape:
                raise ValueError(f'{name} must have the exported shape {shape}, got {array.shape}')
            checked[name] = array
        names = list(outputs) if outputs is not None else self.output_names
        return dict(zip(names, self.session.run(names, checked)))
