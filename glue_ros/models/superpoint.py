"""SuperPoint (DeTone et al., CVPRW 2018): VGG-style keypoint detector and 256-d descriptor.

The network layout follows the paper and the tensor names of Magic Leap's ``superpoint_v1.pth``
(LightGlue ships the same file). Those weights carry a non-commercial licence, so they are not
distributed with glue_ros: the user passes the file. Detection and descriptor sampling follow
the SuperGlue/LightGlue implementation (9x9 iterative NMS, 4 px border, bilinear sampling with
its coordinate convention) because the LightGlue SuperPoint matcher was trained on that output.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from glue_ros.core.errors import WeightsError
from glue_ros.core.extractor import Extractor, window_max
from glue_ros.core.weights import load_checkpoint, load_into, strip_prefix

# (name, in_channels, out_channels, kernel) of the encoder, a 2x2 max-pool after each pair
# but the last; then the detector (P) and descriptor (D) heads.
_ENCODER = (
    ('conv1a', 1, 64),
    ('conv1b', 64, 64),
    ('conv2a', 64, 64),
    ('conv2b', 64, 64),
    ('conv3a', 64, 128),
    ('conv3b', 128, 128),
    ('conv4a', 128, 128),
    ('conv4b', 128, 128),
)
_CELL = 8
# ITU-R 601 luma, as cv2.cvtColor(..., COLOR_RGB2GRAY) which the weights were trained with.
_LUMA = (0.299, 0.587, 0.114)
_LICENCE_NOTE = (
    'SuperPoint needs its weights file (Magic Leap superpoint_v1.pth, or the identical file '
    'shipped by LightGlue). Those weights carry a non-commercial licence, so glue_ros does not '
    'ship or download them: obtain the file under its licence and pass '
    'SuperPoint(weights=PATH).'
)


class SuperPointNet(nn.Module):
    """The dense network: grey image -> 65-class cell logits and raw descriptors at 1/8."""

    def __init__(self, descriptor_dim: int = 256):
        super().__init__()
        for name, cin, cout in _ENCODER:
            setattr(self, name, nn.Conv2d(cin, cout, 3, padding=1))
        self.convPa = nn.Conv2d(128, 256, 3, padding=1)
        self.convPb = nn.Conv2d(256, _CELL * _CELL + 1, 1)
        self.convDa = nn.Conv2d(128, 256, 3, padding=1)
        self.convDb = nn.Conv2d(256, descriptor_dim, 1)

    def forward(self, grey: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (logits (B, 65, H/8, W/8), descriptors (B, D, H/8, W/8)) for H, W % 8 == 0."""
        x = grey
        for index, (name, _, _) in enumerate(_ENCODER):
            x = torch.relu_(getattr(self, name)(x))
            if index % 2 == 1 and index < len(_ENCODER) - 1:
                x = F.max_pool2d(x, 2)
        logits = self.convPb(torch.relu_(self.convPa(x)))
        descriptors = self.convDb(torch.relu_(self.convDa(x)))
        return logits, descriptors


def _suppress(scores: torch.Tensor, radius: int) -> torch.Tensor:
    """Mask of the kept maxima, as SuperGlue's NMS (what the LightGlue weights expect).

    Two extra rounds recover maxima that only a suppressed neighbour had hidden.
    """
    maxima = scores == window_max(scores, radius)
    for _ in range(2):
        hidden = window_max(maxima.float(), radius) > 0
        rest = torch.where(hidden, torch.zeros_like(scores), scores)
        maxima |= (rest == window_max(rest, radius)) & ~hidden
    return maxima


def _read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a SuperPoint checkpoint, unwrapping the usual training-script containers."""
    state = load_checkpoint(path)
    for key in ('state_dict', 'model'):  # training checkpoints wrap the weights
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping):
            state = state[key]
    if not isinstance(state, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in state.values()
    ):
        raise WeightsError(
            f'{path} is not a SuperPoint state dict (a mapping of tensor names '
            f'to tensors); got {type(state).__name__}'
        )
    return strip_prefix(state, ('module.',))


class SuperPoint(Extractor):
    """SuperPoint sparse features with 256-d unit descriptors; weights supplied by the user."""

    name = 'superpoint'
    descriptor_dim = 256

    def __init__(
        self,
        max_keypoints: int = 2048,
        weights: str | os.PathLike | None = None,
        detection_threshold: float = 0.0005,
        nms_radius: int = 4,
        remove_borders: int = 4,
    ):
        super().__init__(max_keypoints)
        if weights is None:
            raise WeightsError(_LICENCE_NOTE)
        if nms_radius < 0 or remove_borders < 0:
            raise ValueError('nms_radius and remove_borders must be >= 0')
        self.detection_threshold = float(detection_threshold)
        self.nms_radius = int(nms_radius)
        self.remove_borders = int(remove_borders)
        self.net = SuperPointNet(self.descriptor_dim)
        load_into(self.net, _read_weights(weights), str(weights))
        self.net.requires_grad_(False)
        self.eval()
        # oneDNN convolutions on NHWC weights: about 2x faster on CPU, same values.
        self.net.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Detect and describe; see Extractor for the contract."""
        height, width = self.check_input(image)
        image = image.float()
        if image.shape[1] == 3:
            grey = (image * image.new_tensor(_LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
        else:
            grey = image
        # Replicate-pad to whole cells so the last partial cell is seen without a fake edge.
        pad_h, pad_w = -height % _CELL, -width % _CELL
        if pad_h or pad_w:
            grey = F.pad(grey, (0, pad_w, 0, pad_h), mode='replicate')
        logits, dense = self.net(grey)
        heat = F.pixel_shuffle(torch.softmax(logits, dim=1)[:, :-1], _CELL)[0, 0]
        heat = heat[:height, :width]
        keep = (heat > self.detection_threshold) & _suppress(heat, self.nms_radius)
        border = self.remove_borders
        if border:
            keep[:border] = False
            keep[:, :border] = False
            keep[height - border :] = False
            keep[:, width - border :] = False
        rows, cols = keep.nonzero(as_tuple=True)
        scores = heat[rows, cols]
        count = min(self.max_keypoints, int(scores.shape[0]))
        scores, order = torch.topk(scores, count, sorted=True)
        keypoints = torch.stack((cols[order], rows[order]), dim=1).float()
        return {
            'keypoints': keypoints,
            'keypoint_scores': scores,
            'descriptors': self._describe(dense, keypoints),
        }

    @staticmethod
    def _describe(dense: torch.Tensor, keypoints: torch.Tensor) -> torch.Tensor:
        """Bilinear descriptors at the keypoints in SuperGlue's convention, unit length."""
        dense = F.normalize(dense, dim=1)
        _, _, h, w = dense.shape
        # Pixel p lies at (p - 3.5) / (8 n - 4.5) of the map span [-1, 1] (align_corners=True).
        span = keypoints.new_tensor([_CELL * w - _CELL / 2 - 0.5, _CELL * h - _CELL / 2 - 0.5])
        grid = ((keypoints - _CELL / 2 + 0.5) / span) * 2 - 1
        samples = F.grid_sample(dense, grid[None, None], mode='bilinear', align_corners=True)
        return F.normalize(samples[0, :, 0].t(), dim=1)
