"""What the front-end gives for one frame or pair: the published matches and how they came."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glue_ros.core.types import DenseImage, Features, MatchResult
from glue_ros.frontend.geometry import Verification


@dataclass
class FrameOutput:
    """What one frame (or stereo pair) produced, ready to publish."""

    result: MatchResult  # the published matches: outliers removed
    verification: Verification  # of the query-reference pair (inliers over `raw`)
    track_ids: np.ndarray | None  # (M,) uint64, 0 = no track (budget); None in stereo
    num_outliers: int  # matches removed by verification
    features: Features | DenseImage | None  # the query image's; None on flow frames
    reference_tag: object = None  # tag of the reference frame (e.g. its header)
    keyframe: bool = False  # the reference is a held keyframe
    temporal: MatchResult | None = None  # stereo + tracking: left over time
    temporal_ids: np.ndarray | None = None
    learned: bool = True  # False: points followed by optical flow (no features)

    @property
    def timing_ms(self) -> dict[str, float]:
        """Milliseconds per stage of this frame: those of its published matches."""
        return self.result.timing_ms
