"""The one interface every feature extractor implements: image in, sparse features out."""

from __future__ import annotations

import torch

from glue_ros.core.errors import InputImageError


class Extractor(torch.nn.Module):
    """Base class of the sparse extractors (XFeat, SuperPoint, DISK).

    ``forward(image)`` takes a (1, C, H, W) float32 tensor in [0, 1] (C = 1 grey or 3 RGB; the
    extractor converts to what its network wants) and returns a dict with ``keypoints`` (N, 2)
    float32 pixel coordinates in that image, ``keypoint_scores`` (N,) and ``descriptors`` (N, D),
    at most ``max_keypoints`` of them, strongest first. Zero keypoints is a valid answer.
    """

    name = ''
    descriptor_dim = 0

    def __init__(self, max_keypoints: int = 2048):
        super().__init__()
        if max_keypoints <= 0:
            raise ValueError(f'max_keypoints must be positive, got {max_keypoints}')
        self.max_keypoints = int(max_keypoints)

    def check_input(self, image: torch.Tensor) -> tuple[int, int]:
        """(height, width) of a valid forward() input; rejects it before it fails deep inside."""
        name = type(self).__name__
        if not isinstance(image, torch.Tensor) or image.dim() != 4:
            got = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise InputImageError(f'{name} expects a (1, C, H, W) tensor, got {got}')
        b, c, h, w = image.shape
        if b != 1 or c not in (1, 3):
            raise InputImageError(
                f'{name} expects one grey or RGB image (1, 1|3, H, W), got {tuple(image.shape)}'
            )
        if h < 1 or w < 1:
            raise InputImageError(f'{name} got an empty image of size {w}x{h}')
        if not image.is_floating_point():
            raise InputImageError(f'{name} expects a float image in [0, 1], got {image.dtype}')
        return h, w


def window_max(heat: torch.Tensor, radius: int) -> torch.Tensor:
    """Max over the (2r+1)^2 window of each pixel of a (H, W) map, clipped at the borders.

    Two 1-D passes of shifted maxima: on one channel this is far cheaper than max_pool2d.
    """
    across = heat.clone()
    for shift in range(1, radius + 1):
        torch.maximum(across[:, shift:], heat[:, :-shift], out=across[:, shift:])
        torch.maximum(across[:, :-shift], heat[:, shift:], out=across[:, :-shift])
    out = across.clone()
    for shift in range(1, radius + 1):
        torch.maximum(out[shift:], across[:-shift], out=out[shift:])
        torch.maximum(out[:-shift], across[shift:], out=out[:-shift])
    return out
