"""The Matcher base class and the image checks and conversions every matcher shares."""

from __future__ import annotations

import time

import cv2
import numpy as np
import torch

from glue_ros.core.errors import BackendUnavailableError, InputImageError
from glue_ros.core.types import DenseImage, Features, MatchResult
from glue_ros.matcher.config import MatcherConfig

MIN_IMAGE_SIDE = 16


def resolve_device(device: str) -> torch.device:
    """torch.device for 'cpu' / 'cuda', refusing CUDA clearly when there is none."""
    if device == 'cuda' and not torch.cuda.is_available():
        raise BackendUnavailableError(
            'device=cuda was asked for but torch sees no CUDA GPU '
            '(CPU-only torch build or no driver); use device=cpu'
        )
    return torch.device(device)


def check_image(image: object) -> np.ndarray:
    """Validate an image for matching: numpy (H, W) or (H, W, 1|3), uint8 or float in [0, 1]."""
    if not isinstance(image, np.ndarray):
        raise InputImageError(f'expected a numpy image, got {type(image).__name__}')
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise InputImageError(f'expected an (H, W) or (H, W, 3) image, got shape {image.shape}')
    if min(image.shape[:2]) < MIN_IMAGE_SIDE:
        raise InputImageError(
            f'image of {image.shape[1]}x{image.shape[0]} pixels is too '
            f'small: both sides must be at least {MIN_IMAGE_SIDE}'
        )
    return image


def to_gray_uint8(image: np.ndarray) -> np.ndarray:
    """An (H, W) uint8 grey image (RGB converted as OpenCV's RGB2GRAY)."""
    if image.dtype != np.uint8:
        image = (np.clip(image.astype(np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def to_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    """(1, C, H, W) float32 in [0, 1] from a checked numpy image."""
    tensor = torch.from_numpy(np.ascontiguousarray(image))
    tensor = tensor.float().div_(255.0) if image.dtype == np.uint8 else tensor.float()
    tensor = tensor[None, None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)[None]
    return tensor.to(device)


class Matcher:
    """Base class: `extract` once per image, `match` two extracted images."""

    name = ''
    layers_total = 0
    supports_early_exit = False

    def __init__(self, config: MatcherConfig):
        self.config = config.validate()
        self.device = resolve_device(config.device)
        self.precision = config.resolved_precision()

    @property
    def dense_cells(self) -> int:
        """Match positions per image of a detector-free matcher (its grid cells), 0 otherwise.

        A keypoint matcher's matches index the keypoints it extracted; a detector-free one's
        index this many cells, whatever the image shows (track ids are kept per cell).
        """
        return 0

    def extract(self, image: np.ndarray) -> Features | DenseImage:
        """Features of one image (numpy, (H, W) or (H, W, 3) RGB)."""
        raise NotImplementedError

    def match(
        self, features0: Features | DenseImage, features1: Features | DenseImage
    ) -> MatchResult:
        """Matches between two extracted images, query = 0, reference = 1."""
        raise NotImplementedError

    def match_images(self, image0: np.ndarray, image1: np.ndarray) -> MatchResult:
        """Extract both images and match them; timing_ms has extract, match and total."""
        start = time.perf_counter()
        features0, features1 = self.extract(image0), self.extract(image1)
        extracted = time.perf_counter()
        result = self.match(features0, features1)
        done = time.perf_counter()
        result.timing_ms.update(
            extract=(extracted - start) * 1e3,
            match=(done - extracted) * 1e3,
            total=(done - start) * 1e3,
        )
        return result

    def retune(self, config: MatcherConfig) -> None:
        """Take the thresholds of `config` while running (the node's live parameters).

        Only confidences and the match threshold change; anything else needs a new matcher.
        """
        self.config = config.validate()

    def describe(self) -> dict:
        """What this matcher is and can do, for logs, JSON output and the benchmark."""
        return {
            'name': self.name,
            'device': str(self.device),
            'backend': self.config.backend,
            'precision': self.precision,
            'layers_total': self.layers_total,
            'early_exit': self.supports_early_exit,
        }
