"""The matcher API shared by the node, the CLI tools and the benchmark.

A Matcher extracts features once per image and matches cached features, so a sequential stream
costs one extraction and one match per frame:

    matcher = build_matcher(MatcherConfig(features='xfeat'))
    f0, f1 = matcher.extract(image0), matcher.extract(image1)
    result = matcher.match(f0, f1)          # MatchResult, numpy, input pixel coordinates

The settings are in ``config``, the base class and the image checks every matcher shares in
``base``, the two matchers in ``lightglue`` and ``coarse_loftr``; import them from here.
"""

from __future__ import annotations

from glue_ros.core.schema import BACKENDS, DEVICES, FEATURES, MATCHERS, PRECISIONS
from glue_ros.matcher.base import (
    MIN_IMAGE_SIDE,
    Matcher,
    check_image,
    resolve_device,
    to_gray_uint8,
    to_tensor,
)
from glue_ros.matcher.coarse_loftr import COARSE_LOFTR_THRESHOLD, CoarseLoFTRPipeline
from glue_ros.matcher.config import MatcherConfig, cpu_flags, native_bf16
from glue_ros.matcher.lightglue import LightGlueMatcher, build_extractor


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
    'check_image',
    'to_gray_uint8',
    'to_tensor',
    'resolve_device',
    'cpu_flags',
    'native_bf16',
    'MIN_IMAGE_SIDE',
    'COARSE_LOFTR_THRESHOLD',
    'MATCHERS',
    'FEATURES',
    'BACKENDS',
    'DEVICES',
    'PRECISIONS',
]  # MATCHERS to PRECISIONS: the schema's choices
