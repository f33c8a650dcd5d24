"""Detector-free coarse LoFTR: the matcher over the network's runtimes (torch, ONNX, TensorRT)."""

from __future__ import annotations

import time

import numpy as np
import torch

from glue_ros.backends.coarse_loftr_runtime import CoarseLoFTRRuntime
from glue_ros.core import schema
from glue_ros.core.types import DenseImage, MatchResult
from glue_ros.matcher.base import Matcher, check_image, to_gray_uint8
from glue_ros.matcher.config import MatcherConfig

COARSE_LOFTR_THRESHOLD = schema.MODEL_MATCH_THRESHOLD['coarse_loftr']


class CoarseLoFTRPipeline(Matcher):
    """Detector-free coarse LoFTR: extraction only prepares the image; matching runs the net.

    Matches lie on the 16-pixel grid of the network input (scaled back to the image), and the
    indices are the row-major coarse cells. Exported backends run the whole network.
    """

    def __init__(self, config: MatcherConfig):
        super().__init__(config)
        kwargs = {
            'backend': config.backend,
            'input_size': config.input_size,
            'weights': config.weights,
            'device': config.device,
            'precision': self.precision,
            'cache_dir': config.engine_cache_dir,
            'num_threads': torch.get_num_threads(),
        }
        if config.match_threshold is not None:
            kwargs['threshold'] = config.match_threshold
        self.impl = CoarseLoFTRRuntime(**kwargs)
        self.layers_total = len(self.impl.conf['layer_names'])
        self.name = 'coarse_loftr'
        w, h = config.input_size
        self._cells = (w // self.impl.stride) * (h // self.impl.stride)

    @property
    def dense_cells(self) -> int:
        """The coarse cells of the network input: every match is a pair of them."""
        return self._cells

    def describe(self) -> dict:
        """As Matcher.describe, plus the grid its matches lie on (cells of the network input)."""
        return {
            **super().describe(),
            'grid_cell_px': self.impl.stride,
            'input_size': list(self.config.input_size),
        }

    def retune(self, config: MatcherConfig) -> None:
        """As Matcher.retune: the confidence threshold of the match selection."""
        super().retune(config)
        self.impl.threshold = float(
            COARSE_LOFTR_THRESHOLD if config.match_threshold is None else config.match_threshold
        )

    def extract(self, image: np.ndarray) -> DenseImage:
        """Only checks and converts the image to grey; the network sees both images at once."""
        return DenseImage(to_gray_uint8(check_image(image)))

    def match(self, features0: DenseImage, features1: DenseImage) -> MatchResult:
        """Run the network on both images and select mutual, confident coarse matches."""
        start = time.perf_counter()
        out = self.impl.match(features0.pixels, features1.pixels)
        grid_step = self.impl.stride * features0.image_size[0] / self.config.input_size[0]
        order = np.argsort(-out['scores'], kind='stable')
        result = MatchResult(
            points0=out['points0'][order].astype(np.float32),
            points1=out['points1'][order].astype(np.float32),
            scores=out['scores'][order].astype(np.float32),
            indices0=out['indices0'][order].astype(np.int32),
            indices1=out['indices1'][order].astype(np.int32),
            num_keypoints0=self._cells,
            num_keypoints1=self._cells,
            layers_used=self.layers_total,
            layers_total=self.layers_total,
            grid_step=grid_step,
        )
        result.timing_ms['match'] = (time.perf_counter() - start) * 1e3
        return result
