"""How the front-end verifies and tracks: its settings, as the schema describes them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from glue_ros.core import schema

_D = schema.default


@dataclass
class FrontendConfig:
    """How matches are verified and tracked; the node's parameters and CLI flags map here.

    The defaults, their descriptions and the rules ``validate()`` applies are the settings
    schema's (glue_ros.core.schema).
    """

    mode: str = _D('mode')  # 'sequential' or 'stereo'
    geometric_check: str = _D('geometric_check')  # none, fundamental, essential, homography, auto
    ransac_threshold: float = _D('ransac_threshold')  # inlier threshold, pixels
    ransac_seed: int = 0  # fixed: the same input gives the same output
    reference: str = _D('reference')  # sequential: 'keyframe' (longer tracks) or 'previous'
    keyframe_min_matches: int = _D('keyframe_min_matches')  # keyframe: new one below this
    track_max_age: int = _D('track_max_age')  # 'previous': frames an unmatched track lives
    max_tracks: int = _D('max_tracks')  # feature budget (VINS MAX_CNT)
    min_track_distance: float = _D('min_track_distance')  # pixels (VINS MIN_DIST)
    max_epipolar_error: float = _D('max_epipolar_error')  # stereo, rectified; 0: off
    track_stereo_left: bool = False  # stereo: also track the left image over time
    tracking: str = _D('tracking')  # sequential: 'match' every frame, or 'flow' (hybrid)
    flow_max_frames: int = _D('flow_max_frames')  # flow: a learned frame at least this often
    flow_min_share: float = _D('flow_min_share')  # flow: learned below this share of tracks
    flow_back_threshold: float = _D('flow_back_threshold')  # flow: forward-backward, pixels

    def validate(self) -> FrontendConfig:
        """Raise ValueError naming the first bad setting (the schema's rules)."""
        schema.check(self.values())
        return self

    def values(self) -> dict[str, Any]:
        """The settings of this config as parameter values."""
        return {name: getattr(self, name) for name in SETTING_FIELDS}


# The FrontendConfig fields that are settings (ransac_seed and track_stereo_left are not).
SETTING_FIELDS = (
    'mode',
    'geometric_check',
    'ransac_threshold',
    'reference',
    'keyframe_min_matches',
    'track_max_age',
    'max_tracks',
    'min_track_distance',
    'max_epipolar_error',
    'tracking',
    'flow_max_frames',
    'flow_min_share',
    'flow_back_threshold',
)
