"""Data passed between extractors, matchers, the CLI, the benchmark and the node."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass
class Features:
    """Sparse features of one image, in its pixel coordinates.

    Pixel coordinates: x right, y down, the centre of the top-left pixel at (0, 0) as in OpenCV.
    keypoints: (N, 2) float32, scores: (N,), descriptors: (N, D); all on the model's device.
    image_size: (width, height) of the image they came from.
    prepared: the matcher's per-image work kept for every pair the image is in (LightGlue: the
    output of ``LightGlue.prepare``, tied to the model that made it); None when not prepared.
    """

    keypoints: torch.Tensor
    scores: torch.Tensor
    descriptors: torch.Tensor
    image_size: tuple[int, int]
    prepared: dict[str, Any] | None = None

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    @staticmethod
    def empty(
        image_size: tuple[int, int], dim: int, device: str | torch.device = 'cpu'
    ) -> Features:
        """No keypoints (a blank image)."""
        return Features(
            torch.zeros(0, 2, device=device),
            torch.zeros(0, device=device),
            torch.zeros(0, dim, device=device),
            image_size,
        )


@dataclass
class DenseImage:
    """What a detector-free matcher (coarse LoFTR) extracts: the image itself, grey.

    Such a matcher sees both images at once, so nothing is computed per image. It has no
    keypoints (``len`` is 0): its matches index cells of a grid (``Matcher.dense_cells``).
    pixels: (H, W) uint8.
    """

    pixels: np.ndarray

    @property
    def image_size(self) -> tuple[int, int]:
        """(width, height)."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])

    def __len__(self) -> int:
        return 0


@dataclass
class MatchResult:
    """Matches between image 0 (query) and image 1 (reference), as numpy arrays on the CPU.

    points0/points1: (M, 2) float32 pixel coordinates; scores: (M,) float32 in [0, 1];
    indices0/indices1: (M,) int32 indices into the keypoints of each image (for detector-free
    matchers: the row-major index of the coarse cell); layers_used/layers_total: attention
    layers run (early exit) out of those the network has; timing_ms: milliseconds per stage
    (extract, match, verify_track, total: those that ran), the one record of the work's time;
    grid_step: pixels of image 0 between possible match positions (0 for keypoint matchers;
    coarse LoFTR: its 16 px cells scaled to the image).
    """

    points0: np.ndarray
    points1: np.ndarray
    scores: np.ndarray
    indices0: np.ndarray
    indices1: np.ndarray
    num_keypoints0: int
    num_keypoints1: int
    layers_used: int
    layers_total: int
    timing_ms: dict[str, float] = field(default_factory=dict)
    grid_step: float = 0.0

    def __len__(self) -> int:
        return int(self.points0.shape[0])

    def subset(self, keep: np.ndarray) -> MatchResult:
        """The matches where `keep` (a mask or indices) selects, in their order.

        The timings are copied: the subset's later stages do not write into this result's.
        """
        return dataclasses.replace(
            self,
            points0=self.points0[keep],
            points1=self.points1[keep],
            scores=self.scores[keep],
            indices0=self.indices0[keep],
            indices1=self.indices1[keep],
            timing_ms=dict(self.timing_ms),
        )

    @staticmethod
    def empty(
        num_keypoints0: int = 0, num_keypoints1: int = 0, layers_total: int = 0
    ) -> MatchResult:
        """No matches (an image without keypoints)."""
        z2 = np.zeros((0, 2), np.float32)
        zi = np.zeros(0, np.int32)
        return MatchResult(
            z2,
            z2.copy(),
            np.zeros(0, np.float32),
            zi,
            zi.copy(),
            num_keypoints0,
            num_keypoints1,
            0,
            layers_total,
        )
