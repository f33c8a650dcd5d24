"""LightGlue's exported full-depth graph on ONNX Runtime."""

from __future__ import annotations

import numpy as np

from glue_ros.backends.onnxruntime_session import OnnxRuntimeSession


class LightGlueOnnxRuntime(OnnxRuntimeSession):
    """LightGlue's graph on ONNX Runtime: callable ``(feeds) -> (matches0, scores0)``.

    ``feeds`` holds the eight padded inputs of both images (see
    ``glue_ros.models.lightglue.export.LightGlueFullDepth``); the outputs are ``(1, K)``.
    """

    def __call__(self, feeds: dict) -> tuple[np.ndarray, np.ndarray]:
        """Run the graph; image 1's side (matches1, scores1) is not read back."""
        out = self.run(feeds, ['matches0', 'scores0'])
        return out['matches0'], out['scores0']
