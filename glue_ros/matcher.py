"""The matcher API shared by the node, the CLI tools and the benchmark.

A Matcher extracts features once per image and matches cached features, so a sequential stream
costs one extraction and one match per frame:

    matcher = build_matcher(MatcherConfig(features='xfeat'))
    f0, f1 = matcher.extract(image0), matcher.extract(image1)
    result = matcher.match(f0, f1)          # MatchResult, numpy, input pixel coordinates
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from glue_ros.backends.coarse_loftr_runtime import CoarseLoFTRRuntime
from glue_ros.backends.lightglue_runtime import LightGlueRuntime
from glue_ros.core import schema
from glue_ros.core.errors import BackendUnavailableError, InputImageError
from glue_ros.core.extractor import Extractor
from glue_ros.core.schema import BACKENDS, DEVICES, FEATURES, MATCHERS, PRECISIONS
from glue_ros.core.types import DenseImage, Features, MatchResult
from glue_ros.models.disk import DISK
from glue_ros.models.lightglue import LightGlue
from glue_ros.models.superpoint import SuperPoint
from glue_ros.models.xfeat import XFeat

MIN_IMAGE_SIDE = 16
COARSE_LOFTR_THRESHOLD = schema.MODEL_MATCH_THRESHOLD['coarse_loftr']
_D = schema.default


@dataclass
class MatcherConfig:
    """Everything a user tunes about matching; the node's parameters and the CLI flags map here.

    Unset (None) thresholds take the model's default. The defaults, their descriptions and the
    rules ``validate()`` applies are the settings schema's (glue_ros.core.schema).
    """

    matcher: str = _D('matcher')  # 'lightglue' (sparse features) or 'coarse_loftr'
    features: str = _D('features')  # LightGlue's extractor: xfeat, superpoint, disk
    max_keypoints: int = _D('max_keypoints')  # per image, strongest kept
    weights: str | None = None  # matcher weights file (None: packaged default)
    feature_weights: str | None = None  # extractor weights file (None: packaged default)
    device: str = _D('device')  # 'cpu' or 'cuda'
    depth_confidence: float = _D('depth_confidence')  # early exit; -1 disables
    width_confidence: float = _D('width_confidence')  # pruning; -1 disables
    match_threshold: float | None = None  # None: the model's own (MODEL_MATCH_THRESHOLD)
    backend: str = _D('backend')  # torch, onnxruntime or tensorrt
    precision: str = _D('precision')  # auto, fp32, fp16, bf16 (resolved_precision)
    input_size: tuple = tuple(_D('input_size'))  # coarse_loftr network input (width, height)
    engine_cache_dir: str | None = None  # ONNX exports, TensorRT engines (~/.cache/glue_ros)

    def resolved_precision(self, cpu_flags: set | None = None) -> str:
        """The precision 'auto' stands for on this machine (others unchanged)."""
        if self.precision != 'auto':
            return self.precision
        if self.device == 'cuda':
            return 'fp16'
        native = native_bf16(cpu_flags)
        eager_lightglue = self.matcher == 'lightglue' and self.backend == 'torch'
        return 'bf16' if native and eager_lightglue else 'fp32'

    def validate(self) -> MatcherConfig:
        """Raise ValueError naming the first bad setting (the schema's rules)."""
        schema.check(self.values())
        self.input_size = tuple(int(v) for v in self.input_size)
        return self

    def values(self) -> dict:
        """The settings of this config as parameter values: '' and -1 for the unset ones."""
        return {
            'matcher': self.matcher,
            'features': self.features,
            'max_keypoints': self.max_keypoints,
            'weights': self.weights or '',
            'feature_weights': self.feature_weights or '',
            'device': self.device,
            'depth_confidence': self.depth_confidence,
            'width_confidence': self.width_confidence,
            'match_threshold': -1.0 if self.match_threshold is None else self.match_threshold,
            'backend': self.backend,
            'precision': self.precision,
            'input_size': list(self.input_size),
            'engine_cache_dir': self.engine_cache_dir or '',
        }


def cpu_flags() -> set:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('flags'):
                    return set(line.split(':', 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16(flags: set | None = None) -> bool:
    """True where bf16 attention pays: CPUs with AMX tiles for bf16 (Intel Sapphire Rapids on).

    Measured with glue-ros-bench: on an AMD EPYC with AVX512-BF16 but no AMX, bf16 attention
    matched at the speed of fp32 (210 vs 202 ms) and lost a few matches, so AVX512-BF16 alone
    does not turn it on; without native bf16 torch emulates it, slower than fp32.
    """
    flags = cpu_flags() if flags is None else flags
    return 'amx_bf16' in flags


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


class LightGlueMatcher(Matcher):
    """A sparse extractor (XFeat, SuperPoint or DISK) followed by LightGlue.

    Extraction is eager PyTorch on every backend. Matching is eager LightGlue with early exit
    and pruning (backend 'torch'), or its exported full-depth graph (LightGlueRuntime) padded
    to max_keypoints, which runs all layers: a static graph cannot change depth or shapes.
    """

    supports_early_exit = True  # eager only; False on an instance with an exported backend

    def __init__(self, config: MatcherConfig):
        super().__init__(config)
        self.extractor = (
            build_extractor(config.features, config.max_keypoints, config.feature_weights)
            .eval()
            .to(self.device)
        )
        conf = {
            'depth_confidence': config.depth_confidence,
            'width_confidence': config.width_confidence,
            'mp': self.precision == 'fp16' and self.device.type == 'cuda',
            'cpu_bf16_attention': self.precision == 'bf16',
        }
        if config.match_threshold is not None:
            conf['filter_threshold'] = config.match_threshold
        self.lightglue = (
            LightGlue.for_features(config.features, weights=config.weights, **conf)
            .eval()
            .to(self.device)
        )
        self.layers_total = int(self.lightglue.conf['n_layers'])
        self.name = f'lightglue/{config.features}'
        self.runtime = None
        if config.backend != 'torch':
            self.supports_early_exit = False
            self.runtime = LightGlueRuntime(
                self.lightglue,
                config.backend,
                config.max_keypoints,
                config.device,
                self.precision,
                config.engine_cache_dir,
                torch.get_num_threads(),
            )

    @torch.inference_mode()
    def extract(self, image: np.ndarray) -> Features:
        """Keypoints, scores and descriptors of one image."""
        image = check_image(image)
        size = (image.shape[1], image.shape[0])
        out = self.extractor(to_tensor(image, self.device))
        features = Features(out['keypoints'], out['keypoint_scores'], out['descriptors'], size)
        if self.runtime is None:
            # LightGlue's per-image work, done once although a frame is matched twice in a
            # stream (the exported graph does it inside, on every match).
            features.prepared = self.lightglue.prepare(
                features.keypoints, features.descriptors, size
            )
        return features

    def retune(self, config: MatcherConfig) -> None:
        """As Matcher.retune; LightGlue reads its confidences from its conf on every pair.

        An exported graph has its threshold built in and no early exit or pruning: it refuses
        (ValueError) any change.
        """
        if self.runtime is not None:
            names = ('depth_confidence', 'width_confidence', 'match_threshold')
            changed = [n for n in names if getattr(config, n) != getattr(self.config, n)]
            if changed:
                raise ValueError(
                    f'{", ".join(changed)} cannot change on the exported '
                    f'{self.config.backend} graph (full depth, threshold built '
                    'in): set it at start-up'
                )
        super().retune(config)
        self.lightglue.conf['depth_confidence'] = config.depth_confidence
        self.lightglue.conf['width_confidence'] = config.width_confidence
        self.lightglue.conf['filter_threshold'] = (
            self.lightglue.default_conf['filter_threshold']
            if config.match_threshold is None
            else config.match_threshold
        )

    def _prepared(self, *features: Features) -> list:
        """The per-image work kept by :meth:`extract`, redone where another model made it."""
        kept = [f.prepared for f in features]
        if None not in kept and self.lightglue.owns(*kept):  # the common case: one check
            return kept
        return [
            p
            if p is not None and self.lightglue.owns(p)
            else self.lightglue.prepare(f.keypoints, f.descriptors, f.image_size)
            for p, f in zip(kept, features)
        ]

    @torch.inference_mode()
    def match(self, features0: Features, features1: Features) -> MatchResult:
        """LightGlue on two cached feature sets; empty result when either has no keypoints."""
        n0, n1 = len(features0), len(features1)
        if n0 == 0 or n1 == 0:
            return MatchResult.empty(n0, n1, self.layers_total)
        if self.runtime is not None:
            return self._match_exported(features0, features1)
        start = time.perf_counter()
        out = self.lightglue.match_prepared(*self._prepared(features0, features1))
        pairs = out['matches']
        idx0, idx1 = pairs[:, 0], pairs[:, 1]
        scores = out['scores'].float()
        order = torch.argsort(scores, descending=True)
        idx0, idx1, scores = idx0[order], idx1[order], scores[order]
        result = MatchResult(
            points0=features0.keypoints[idx0].float().cpu().numpy(),
            points1=features1.keypoints[idx1].float().cpu().numpy(),
            scores=scores.cpu().numpy(),
            indices0=idx0.int().cpu().numpy(),
            indices1=idx1.int().cpu().numpy(),
            num_keypoints0=n0,
            num_keypoints1=n1,
            layers_used=int(out['layers_used']),
            layers_total=self.layers_total,
        )
        result.timing_ms['match'] = (time.perf_counter() - start) * 1e3
        return result

    def _match_exported(self, features0: Features, features1: Features) -> MatchResult:
        """The exported full-depth graph: every layer runs, nothing is pruned."""
        start = time.perf_counter()
        out = self.runtime.match(features0, features1)
        order = np.argsort(-out['scores'], kind='stable')
        idx0, idx1 = out['indices0'][order], out['indices1'][order]
        points0 = features0.keypoints.float().cpu().numpy()
        points1 = features1.keypoints.float().cpu().numpy()
        result = MatchResult(
            points0=points0[idx0],
            points1=points1[idx1],
            scores=out['scores'][order],
            indices0=idx0.astype(np.int32),
            indices1=idx1.astype(np.int32),
            num_keypoints0=len(features0),
            num_keypoints1=len(features1),
            layers_used=self.layers_total,
            layers_total=self.layers_total,
        )
        result.timing_ms['match'] = (time.perf_counter() - start) * 1e3
        return result


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


def build_extractor(name: str, max_keypoints: int, weights: str | None = None) -> Extractor:
    """The Extractor named `name` (xfeat, superpoint, disk)."""
    if name == 'xfeat':
        return XFeat(max_keypoints=max_keypoints, weights=weights)
    if name == 'superpoint':
        return SuperPoint(max_keypoints=max_keypoints, weights=weights)
    if name == 'disk':
        return DISK(max_keypoints=max_keypoints, weights=weights)
    raise ValueError(f'unknown features {name!r}; expected one of {", ".join(FEATURES)}')


def build_matcher(config: MatcherConfig | None = None, **overrides) -> Matcher:
    """The Matcher for a configuration (keyword overrides apply on top)."""
    config = MatcherConfig(**{**(config.__dict__ if config else {}), **overrides}).validate()
    if config.matcher == 'coarse_loftr':
        return CoarseLoFTRPipeline(config)
    return LightGlueMatcher(config)


__all__ = [
    'MatcherConfig',
    'Matcher',
    'LightGlueMatcher',
    'CoarseLoFTRPipeline',
    'build_matcher',
    'build_extractor',
    'MATCHERS',
    'FEATURES',
    'BACKENDS',
    'DEVICES',
    'PRECISIONS',
]  # the schema's choices
