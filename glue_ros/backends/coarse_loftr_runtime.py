"""Coarse LoFTR on a chosen runtime: eager PyTorch, ONNX Runtime or TensorRT.

The network (``glue_ros.models.coarse_loftr``) knows nothing of runtimes; this module picks one,
exports the graph when a runtime needs it, and turns the confidence matrix into matches with
the one selection every runtime shares (``select_matches``). It changes no process-wide
setting: the number of torch threads is the caller's business (the node, the CLI tools).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch

from glue_ros.backends.coarse_loftr_onnxruntime import CoarseLoFTROnnxRuntime
from glue_ros.backends.coarse_loftr_tensorrt import CoarseLoFTRTensorRT
from glue_ros.backends.engine_cache import default_cache_root
from glue_ros.backends.tensorrt_support import check_tensorrt_available
from glue_ros.core import schema
from glue_ros.core.errors import InputImageError, WeightsError
from glue_ros.core.schema import BACKENDS
from glue_ros.models.coarse_loftr import CoarseLoFTR, cell_centers, default_conf, select_matches
from glue_ros.models.coarse_loftr.export import cached_onnx_export

_D = schema.default


class CoarseLoFTRRuntime:
    """Match two grey images with coarse LoFTR on a chosen backend.

    backend: 'torch' (CoarseLoFTR on `device`), 'onnxruntime' (ONNX exported once and cached,
    run by ONNX Runtime; CUDA/TensorRT execution providers where available and `device` is not
    'cpu') or 'tensorrt' (TensorRT engine built from that ONNX and cached; needs a CUDA GPU).
    input_size: (width, height) of the network input, multiples of the coarse stride; every
    image is resized to it (cv2.INTER_AREA), whatever its own size.
    weights: checkpoint path (the student's LoFTR_teacher.pt by default conf); for
    'onnxruntime' / 'tensorrt' an existing ``onnx_path`` may be given instead.
    threshold, border_rm: match selection (see select_matches). conf: CoarseLoFTR options.
    cache_dir: where exported ONNX models (and, in a sub-folder, TensorRT engines) are kept;
    default $XDG_CACHE_HOME/glue_ros (or ~/.cache/glue_ros).
    precision: 'fp16' lets TensorRT (the engine, or ONNX Runtime's TensorRT provider) use FP16;
    'fp32' keeps it in FP32; 'auto' is FP16 where the GPU is fast at it.
    num_threads: ONNX Runtime's intra-op threads on the CPU (torch uses the process's setting).
    """

    def __init__(
        self,
        backend: str = _D('backend'),
        input_size: tuple[int, int] = tuple(_D('input_size')),
        weights: str | os.PathLike | None = None,
        threshold: float = schema.MODEL_MATCH_THRESHOLD['coarse_loftr'],
        device: str = _D('device'),
        border_rm: int = 2,
        onnx_path: str | os.PathLike | None = None,
        cache_dir: str | os.PathLike | None = None,
        precision: str = _D('precision'),
        num_threads: int | None = None,
        conf: dict | None = None,
    ):
        conf = dict(conf or {})
        self.conf = {**default_conf, **conf}
        self.stride = int(self.conf['resolution'][0])
        width, height = (int(v) for v in input_size)
        if width <= 0 or height <= 0 or width % self.stride or height % self.stride:
            raise ValueError(
                f'input_size {tuple(input_size)} must be positive multiples of '
                f'the coarse stride {self.stride}'
            )
        self.input_size = (width, height)
        self.grid = (height // self.stride, width // self.stride)
        self.threshold = float(threshold)
        self.border_rm = int(border_rm)
        self.backend_name = backend
        self.device = device
        self.model = None
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {", ".join(BACKENDS)}, got {backend!r}')
        if backend == 'tensorrt':  # fail fast, before any export work, on machines without it
            check_tensorrt_available()
        if onnx_path is None or backend == 'torch':
            if weights is None:
                raise WeightsError(
                    'no weights given: pass weights= the coarse LoFTR checkpoint '
                    '(e.g. LoFTR_teacher.pt from Kolkir/Coarse_LoFTR_TRT)'
                )
            self.model = CoarseLoFTR.from_checkpoint(weights, **conf)
        if backend == 'torch':
            self.model.to(device)
            self._run = self._run_torch
            return
        cache_root = Path(cache_dir) if cache_dir is not None else default_cache_root()
        if onnx_path is None:
            onnx_path = cached_onnx_export(self.model, cache_root / 'onnx', self.input_size)
        self.onnx_path = Path(onnx_path)
        if backend == 'onnxruntime':
            self._backend = CoarseLoFTROnnxRuntime(
                self.onnx_path,
                device=device,
                intra_op_num_threads=num_threads,
                trt_cache_dir=cache_root / 'ort_trt',
                fp16=precision != 'fp32',
            )
        else:
            self._backend = CoarseLoFTRTensorRT(
                self.onnx_path,
                precision=precision,
                cache_dir=cache_root / 'engines',
                device=device if device != 'cpu' else 'cuda',
            )
        self._run = self._backend

    def _run_torch(self, image0: np.ndarray, image1: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            return self.model(
                torch.from_numpy(image0).to(self.device), torch.from_numpy(image1).to(self.device)
            )

    def preprocess(self, image: np.ndarray, name: str = 'image') -> np.ndarray:
        """Uint8 grey (H, W) image -> (1, 1, h, w) float32 in [0, 1] at the input size."""
        if not isinstance(image, np.ndarray):
            raise InputImageError(f'{name} must be a numpy array, got {type(image).__name__}')
        if image.ndim == 3 and image.shape[2] == 1:
            image = image[:, :, 0]
        if image.ndim != 2 or image.dtype != np.uint8:
            raise InputImageError(
                f'{name} must be a uint8 grey image (H, W), got {image.dtype} {image.shape}'
            )
        if image.shape[0] < 1 or image.shape[1] < 1:
            raise InputImageError(f'{name} is empty: {image.shape}')
        width, height = self.input_size
        if image.shape != (height, width):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        return (image.astype(np.float32) / np.float32(255.0))[None, None]

    def conf_matrix(self, image0: np.ndarray, image1: np.ndarray) -> torch.Tensor | np.ndarray:
        """Network output (1, L, S) for two uint8 grey images (a tensor or a numpy array)."""
        return self._run(self.preprocess(image0, 'image0'), self.preprocess(image1, 'image1'))

    def match(self, image0: np.ndarray, image1: np.ndarray) -> dict:
        """Match two uint8 grey images of any size (each is resized to input_size).

        Returns a dict of numpy arrays: points0, points1 (M, 2) float32 in INPUT pixel
        coordinates of each image (OpenCV convention, origin at the centre of the top-left
        pixel) -- the centres of the matched coarse cells, which lie on a `stride` px (16 for
        the student) grid of the network input, scaled back to each image; scores (M,)
        float32 confidences; indices0, indices1 (M,) int32 row-major cell indices i and j.
        """
        conf = self.conf_matrix(image0, image1)
        i, j, scores = select_matches(conf, self.grid, self.grid, self.threshold, self.border_rm)
        if isinstance(i, torch.Tensor):
            i, j, scores = i.cpu().numpy(), j.cpu().numpy(), scores.float().cpu().numpy()
        cols = self.grid[1]
        return {
            'points0': self._to_input(cell_centers(i, cols, self.stride), image0.shape),
            'points1': self._to_input(cell_centers(j, cols, self.stride), image1.shape),
            'scores': np.asarray(scores, dtype=np.float32),
            'indices0': np.asarray(i, dtype=np.int32),
            'indices1': np.asarray(j, dtype=np.int32),
        }

    def _to_input(self, points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        width, height = self.input_size
        scale = np.array([shape[1] / width, shape[0] / height], np.float32)
        # Pixel-edge coordinates (x + 0.5) scale with the resize; centres shift back by 0.5.
        return ((points + 0.5) * scale - 0.5).astype(np.float32)
