"""The one interface every feature extractor implements: image in, sparse features out."""
from __future__ import annotations

import torch


class Extractor(torch.nn.Module):
    """Base class of the sparse extractors (XFeat, SuperPoint, DISK).

    ``forward(image)`` takes a (1, C, H, W) float32 tensor in [0, 1] (C = 1 grey or 3 RGB; the
    extractor converts to what its network wants) and returns a dict with ``keypoints`` (N, 2)
    float32 pixel coordinates in that image, ``keypoint_scores`` (N,) and ``descriptors`` (N, D),
    at most ``max_keypoints`` of them, strongest first. Zero keypoints is a valid answer.
    """

    name = ''
    descriptor_dim = 0
    # LightGlue checkpoint that pairs with this extractor (key of PACKAGED_WEIGHTS, or None when
    # the user must supply it).
    lightglue_weights = None

    def __init__(self, max_keypoints: int = 2048):
        super().__init__()
        if max_keypoints <= 0:
            raise ValueError(f'max_keypoints must be positive, got {max_keypoints}')
        self.max_keypoints = int(max_keypoints)
