"""Run an exported coarse LoFTR ONNX model as a cached TensorRT engine.

The engine is built from the ONNX file with the TensorRT Python API (static input shapes;
FP16 where the GPU has fast FP16 unless told otherwise), stored under the engine cache (see
engine_cache.py for the key and the reuse / rebuild rules) and reused on the next start.
Device buffers are torch CUDA tensors, so no pycuda is needed. Requires TensorRT >= 8.5
(named-tensor API: set_tensor_address / execute_async_v3).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from glue_ros.backends.engine_cache import EngineCache, make_key
from glue_ros.backends.tensorrt_support import check_tensorrt_available, resolve_precision


def onnx_input_size(onnx_path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) of the first input of a fixed-size ONNX model (needs the onnx package)."""
    import onnx  # only for a bare ONNX file: the TensorRT path needs no onnx otherwise

    model = onnx.load(str(onnx_path), load_external_data=False)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or not all(d.HasField('dim_value') for d in dims):
        raise ValueError(f'{onnx_path} does not have a fixed (1, 1, H, W) input')
    return int(dims[3].dim_value), int(dims[2].dim_value)


class CoarseLoFTRTensorRT:
    """Coarse LoFTR's graph as a cached TensorRT engine: ``(image0, image1) -> conf_matrix``.

    Inputs are (1, 1, H, W) float32 numpy arrays or torch tensors (any device) at the model's
    fixed size; the output is the (1, L, S) confidence matrix as a float32 torch CUDA tensor
    (select_matches runs on it on the GPU). Construction raises BackendUnavailableError
    without TensorRT or a CUDA GPU. `how` tells whether the engine was 'built', 'rebuilt' or
    'reused' from the cache.
    """

    def __init__(
        self,
        onnx_path: str | os.PathLike,
        input_size: tuple | None = None,
        precision: str = 'auto',
        cache_dir: str | os.PathLike | None = None,
        device: str = 'cuda',
        workspace_mb: int = 1024,
    ):
        trt, torch = check_tensorrt_available()
        self._trt, self._torch = trt, torch
        self.onnx_path = Path(onnx_path)
        if not self.onnx_path.is_file():
            raise FileNotFoundError(f'ONNX model not found: {self.onnx_path}')
        self.device = torch.device(device)
        if self.device.type != 'cuda':
            raise ValueError(f'TensorRT runs on a CUDA device, got {device!r}')
        if self.device.index is None:
            self.device = torch.device('cuda', torch.cuda.current_device())
        torch.cuda.set_device(self.device)
        capability = torch.cuda.get_device_capability(self.device)
        self.precision = resolve_precision(precision, capability)
        self.input_size = tuple(input_size) if input_size else onnx_input_size(self.onnx_path)
        self.workspace_bytes = int(workspace_mb) << 20
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        key = make_key(
            self.onnx_path,
            self.input_size,
            self.precision,
            torch.cuda.get_device_name(self.device),
            capability,
            trt.__version__,
        )
        self.cache = EngineCache(cache_dir)
        self.engine, self.how = self.cache.load_or_build(key, self._build, self._deserialize)
        self.engine_path = self.cache.paths(key)[0]
        self._setup_buffers()

    # ------------------------------------------------------------ build / load
    def _build(self) -> bytes:
        trt = self._trt
        builder = trt.Builder(self._logger)
        flags = 0
        if int(trt.__version__.split('.')[0]) < 10:  # explicit batch is implicit from 10 on
            flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse(self.onnx_path.read_bytes()):
            errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f'TensorRT cannot parse {self.onnx_path}: {errors}')
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self.workspace_bytes)
        if self.precision == 'fp16':
            config.set_flag(trt.BuilderFlag.FP16)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError(f'TensorRT failed to build an engine from {self.onnx_path}')
        return bytes(serialized)

    def _deserialize(self, data: bytes) -> Any:
        engine = self._runtime.deserialize_cuda_engine(data)
        if engine is None:
            return None
        # An engine of another model deserialises fine: check that its I/O fits ours.
        width, height = self.input_size
        shapes = {
            engine.get_tensor_name(i): tuple(engine.get_tensor_shape(engine.get_tensor_name(i)))
            for i in range(engine.num_io_tensors)
        }
        if shapes.get('image0') != (1, 1, height, width) or 'conf_matrix' not in shapes:
            raise ValueError(f'engine I/O {shapes} does not fit a {width}x{height} model')
        return engine

    # ------------------------------------------------------------ run
    def _setup_buffers(self) -> None:
        trt, torch = self._trt, self._torch
        dtypes = {
            trt.float32: torch.float32,
            trt.float16: torch.float16,
            trt.int32: torch.int32,
            trt.int8: torch.int8,
            trt.bool: torch.bool,
        }
        if hasattr(trt, 'int64'):
            dtypes[trt.int64] = torch.int64
        self.context = self.engine.create_execution_context()
        self.inputs, self.outputs = {}, {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.engine.get_tensor_shape(name))
            buffer = torch.empty(
                shape, dtype=dtypes[self.engine.get_tensor_dtype(name)], device=self.device
            )
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs)[name] = buffer
            self.context.set_tensor_address(name, buffer.data_ptr())
        self.stream = torch.cuda.Stream(self.device)

    def __call__(self, image0: Any, image1: Any) -> Any:
        """Run the engine on two (1, 1, H, W) images; returns conf_matrix as a CUDA tensor."""
        torch = self._torch
        with torch.cuda.stream(self.stream):
            for name, image in (('image0', image0), ('image1', image1)):
                buffer = self.inputs[name]
                if isinstance(image, np.ndarray):
                    image = torch.from_numpy(np.ascontiguousarray(image))
                if tuple(image.shape) != tuple(buffer.shape):
                    raise ValueError(
                        f'{name} must have the engine shape '
                        f'{tuple(buffer.shape)}, got {tuple(image.shape)}'
                    )
                buffer.copy_(image)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise RuntimeError('TensorRT execution failed')
            out = self.outputs['conf_matrix'].float().clone()
        self.stream.synchronize()
        return out
