"""LightGlue on an exported runtime: the static full-depth graph on ONNX Runtime.

The graph (``glue_ros.models.lightglue.export``) has a fixed keypoint count K: each image's
features are padded to K with a validity mask (or cut to the K strongest), and matches are
read back only among the valid points. It runs all layers on every pair: early exit and
pruning change shapes at run time, which only eager PyTorch can do. Like the coarse LoFTR
runtime, it changes no process-wide setting.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from glue_ros.backends.engine_cache import default_cache_root
from glue_ros.backends.lightglue_onnxruntime import LightGlueOnnxRuntime
from glue_ros.backends.tensorrt_support import check_tensorrt_available
from glue_ros.core.errors import BackendUnavailableError
from glue_ros.core.types import Features
from glue_ros.models.lightglue.export import cached_onnx_export

BACKENDS = ('onnxruntime', 'tensorrt')


class LightGlueRuntime:
    """Match two feature sets with LightGlue's exported full-depth graph.

    backend: 'onnxruntime' (CPU provider on device 'cpu'; TensorRT and CUDA providers first on
    'cuda', FP16 unless precision is 'fp32') or 'tensorrt'. The TensorRT engine runner
    (coarse_loftr_tensorrt.CoarseLoFTRTensorRT) is built around coarse LoFTR's graph, so
    'tensorrt' raises BackendUnavailableError: on machines without TensorRT with its reason,
    elsewhere pointing at ONNX Runtime's TensorRT provider, which runs this same graph.
    num_keypoints: K of the graph (the extractor's max_keypoints). cache_dir: cache root, the
    export goes to ``<cache_dir>/onnx`` next to coarse LoFTR's (default ~/.cache/glue_ros).
    num_threads: ONNX Runtime's intra-op threads on the CPU.
    """

    def __init__(
        self,
        lightglue: torch.nn.Module,
        backend: str = 'onnxruntime',
        num_keypoints: int = 2048,
        device: str = 'cpu',
        precision: str = 'auto',
        cache_dir: str | os.PathLike | None = None,
        num_threads: int | None = None,
    ):
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {", ".join(BACKENDS)}, got {backend!r}')
        if int(num_keypoints) < 1:
            raise ValueError(f'num_keypoints must be positive, got {num_keypoints}')
        if backend == 'tensorrt':  # before any export work
            check_tensorrt_available()
            raise BackendUnavailableError(
                'LightGlue has no TensorRT engine runner yet (CoarseLoFTRTensorRT runs '
                "coarse LoFTR's two-image graph); use backend='onnxruntime' with "
                "device='cuda', whose TensorRT execution provider builds and caches an engine "
                'of the same graph'
            )
        self.backend_name = backend
        self.num_keypoints = int(num_keypoints)
        self.input_dim = int(lightglue.conf['input_dim'])
        self.layers_total = int(lightglue.conf['n_layers'])
        cache_root = Path(cache_dir) if cache_dir is not None else default_cache_root()
        self.onnx_path = cached_onnx_export(lightglue, cache_root / 'onnx', self.num_keypoints)
        self._backend = LightGlueOnnxRuntime(
            self.onnx_path,
            device=device,
            intra_op_num_threads=num_threads,
            trt_cache_dir=cache_root / 'ort_trt',
            fp16=precision != 'fp32',
        )
        self.providers = self._backend.providers

    def pad(
        self,
        keypoints: torch.Tensor,
        descriptors: torch.Tensor,
        scores: torch.Tensor,
        image_size: tuple[int, int],
        suffix: str,
    ) -> tuple:
        """Graph inputs of one image and the original index of each valid slot.

        More than K points: the K highest `scores` are kept (extraction already keeps the
        max_keypoints strongest, so this only bites when K is smaller).
        """
        k = self.num_keypoints
        keypoints = _numpy(keypoints, np.float32).reshape(-1, 2)
        descriptors = _numpy(descriptors, np.float32).reshape(len(keypoints), -1)
        index = np.arange(len(keypoints))
        if len(keypoints) > k:
            strength = _numpy(scores, np.float32)
            index = np.sort(np.argsort(-strength, kind='stable')[:k])
        n = len(index)
        if descriptors.shape[1] != self.input_dim:
            raise ValueError(
                f'descriptors have {descriptors.shape[1]} dimensions, the '
                f'exported LightGlue takes {self.input_dim}'
            )
        kpts = np.zeros((1, k, 2), np.float32)
        desc = np.zeros((1, k, self.input_dim), np.float32)
        mask = np.zeros((1, k), bool)
        kpts[0, :n], desc[0, :n], mask[0, :n] = keypoints[index], descriptors[index], True
        size = np.asarray(image_size, np.float32).reshape(1, 2)
        feeds = {
            f'kpts{suffix}': kpts,
            f'desc{suffix}': desc,
            f'mask{suffix}': mask,
            f'size{suffix}': size,
        }
        return feeds, index

    def match(self, features0: Features, features1: Features) -> dict:
        """Match two Features (glue_ros.core.types); numpy results among the valid points.

        Returns indices0, indices1 (M,) int64 into each image's keypoints (image 0 order) and
        scores (M,) float32 match probabilities, from ``matches0[i] >= 0`` and ``scores0``.
        """
        if len(features0) == 0 or len(features1) == 0:
            return {
                'indices0': np.zeros(0, np.int64),
                'indices1': np.zeros(0, np.int64),
                'scores': np.zeros(0, np.float32),
            }
        feeds0, index0 = self.pad(
            features0.keypoints, features0.descriptors, features0.scores, features0.image_size, '0'
        )
        feeds1, index1 = self.pad(
            features1.keypoints, features1.descriptors, features1.scores, features1.image_size, '1'
        )
        matches0, scores0 = self._backend({**feeds0, **feeds1})
        matches0, scores0 = matches0[0, : len(index0)], scores0[0, : len(index0)]
        slots0 = np.nonzero(matches0 >= 0)[0]
        slots1 = matches0[slots0]
        # Padded slots of image 1 are masked in the graph; a match into one would be a bug.
        if np.any(slots1 >= len(index1)):
            raise RuntimeError('the exported LightGlue matched a padded keypoint')
        return {
            'indices0': index0[slots0].astype(np.int64),
            'indices1': index1[slots1].astype(np.int64),
            'scores': scores0[slots0].astype(np.float32),
        }


def _numpy(value: torch.Tensor | np.ndarray, dtype: type | np.dtype) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().float().cpu().numpy()
    return np.asarray(value, dtype=dtype)
