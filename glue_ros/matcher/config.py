"""The matcher's settings, and the precision 'auto' stands for on this machine."""

from __future__ import annotations

import os
from dataclasses import dataclass

from glue_ros.core import schema

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
    weights: str | os.PathLike | None = None  # matcher weights file (None: packaged default)
    feature_weights: str | os.PathLike | None = None  # extractor weights (None: packaged)
    device: str = _D('device')  # 'cpu' or 'cuda'
    depth_confidence: float = _D('depth_confidence')  # early exit; -1 disables
    width_confidence: float = _D('width_confidence')  # pruning; -1 disables
    match_threshold: float | None = None  # None: the model's own (MODEL_MATCH_THRESHOLD)
    backend: str = _D('backend')  # torch, onnxruntime or tensorrt
    precision: str = _D('precision')  # auto, fp32, fp16, bf16 (resolved_precision)
    input_size: tuple = tuple(_D('input_size'))  # coarse_loftr network input (width, height)
    engine_cache_dir: str | os.PathLike | None = None  # exports, engines (~/.cache/glue_ros)

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
            'weights': os.fspath(self.weights) if self.weights else '',
            'feature_weights': os.fspath(self.feature_weights) if self.feature_weights else '',
            'device': self.device,
            'depth_confidence': self.depth_confidence,
            'width_confidence': self.width_confidence,
            'match_threshold': -1.0 if self.match_threshold is None else self.match_threshold,
            'backend': self.backend,
            'precision': self.precision,
            'input_size': list(self.input_size),
            'engine_cache_dir': os.fspath(self.engine_cache_dir) if self.engine_cache_dir else '',
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
