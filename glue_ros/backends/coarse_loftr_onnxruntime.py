"""Coarse LoFTR's exported two-image graph on ONNX Runtime."""

from __future__ import annotations

import numpy as np

from glue_ros.backends.onnxruntime_session import OnnxRuntimeSession


class CoarseLoFTROnnxRuntime(OnnxRuntimeSession):
    """Coarse LoFTR's graph on ONNX Runtime: callable ``(image0, image1) -> conf_matrix``.

    Inputs are (1, 1, H, W) float32 numpy arrays at the model's fixed input size; the output
    is the (1, L, S) float32 numpy confidence matrix.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.output_name = self.output_names[0]

    def __call__(self, image0: np.ndarray, image1: np.ndarray) -> np.ndarray:
        """Run the model on two (1, 1, H, W) float32 images; returns conf_matrix (1, L, S)."""
        feeds = {
            name: np.asarray(image, dtype=np.float32)
            for name, image in zip(self.input_names, (image0, image1))
        }
        return self.run(feeds, [self.output_name])[self.output_name]
