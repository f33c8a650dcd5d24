"""DISK (Tyszkiewicz et al., NeurIPS 2020) through kornia, behind the Extractor interface.

kornia already implements the U-Net and its detector faithfully; this wrapper only loads the
depth-supervised weights shipped with LightGlue (read as a file, never downloaded), feeds RGB,
pads to the U-Net's multiple of 16 and orders the output strongest first.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch

from glue_ros.core.errors import WeightsError
from glue_ros.core.extractor import Extractor
from glue_ros.core.weights import load_checkpoint, load_into, packaged_weights, strip_prefix


class DISK(Extractor):
    """DISK sparse features with 128-d unit descriptors (kornia network, packaged weights)."""

    name = 'disk'
    descriptor_dim = 128

    def __init__(
        self,
        max_keypoints: int = 2048,
        weights: str | os.PathLike | None = None,
        detection_threshold: float = 0.0,
        nms_window: int = 5,
    ):
        super().__init__(max_keypoints)
        from kornia.feature import DISK as KorniaDISK  # heavy import, only when DISK is used

        if nms_window < 1 or nms_window % 2 == 0:
            raise ValueError(f'nms_window must be a positive odd number, got {nms_window}')
        self.detection_threshold = float(detection_threshold)
        self.nms_window = int(nms_window)
        path = packaged_weights('disk') if weights is None else weights
        state = load_checkpoint(path)
        # The authors' training checkpoints keep the network under 'extractor'.
        if isinstance(state, Mapping) and isinstance(state.get('extractor'), Mapping):
            state = state['extractor']
        if not isinstance(state, Mapping):
            raise WeightsError(
                f'{path} is not a DISK checkpoint (expected a state dict, '
                f'optionally under "extractor"); got {type(state).__name__}'
            )
        self.net = KorniaDISK(desc_dim=self.descriptor_dim)
        load_into(self.net, strip_prefix(state, ('module.',)), str(path))
        self.net.requires_grad_(False)
        self.eval()

    @torch.inference_mode()
    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Detect and describe; see Extractor for the contract."""
        self.check_input(image)
        rgb = image.float().expand(-1, 3, -1, -1)  # DISK was trained on colour images
        found = self.net(
            rgb,
            n=self.max_keypoints,
            window_size=self.nms_window,
            score_threshold=self.detection_threshold,
            pad_if_not_divisible=True,
        )[0]
        # kornia lists keypoints in raster order; the contract wants the strongest first.
        order = torch.argsort(found.detection_scores, descending=True, stable=True)
        return {
            'keypoints': found.keypoints[order].float().contiguous(),
            'keypoint_scores': found.detection_scores[order].contiguous(),
            'descriptors': found.descriptors[order].contiguous(),
        }
