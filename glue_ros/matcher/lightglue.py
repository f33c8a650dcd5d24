"""LightGlue on sparse features (XFeat, SuperPoint, DISK), eager or an exported graph."""

from __future__ import annotations

import time

import numpy as np
import torch

from glue_ros.backends.lightglue_runtime import LightGlueRuntime
from glue_ros.core.extractor import Extractor
from glue_ros.core.schema import FEATURES
from glue_ros.core.types import Features, MatchResult
from glue_ros.matcher.base import Matcher, check_image, to_tensor
from glue_ros.matcher.config import MatcherConfig
from glue_ros.models.disk import DISK
from glue_ros.models.lightglue import LightGlue
from glue_ros.models.superpoint import SuperPoint
from glue_ros.models.xfeat import XFeat


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


def build_extractor(name: str, max_keypoints: int, weights: str | None = None) -> Extractor:
    """The Extractor named `name` (xfeat, superpoint, disk)."""
    if name == 'xfeat':
        return XFeat(max_keypoints=max_keypoints, weights=weights)
    if name == 'superpoint':
        return SuperPoint(max_keypoints=max_keypoints, weights=weights)
    if name == 'disk':
        return DISK(max_keypoints=max_keypoints, weights=weights)
    raise ValueError(f'unknown features {name!r}; expected one of {", ".join(FEATURES)}')
