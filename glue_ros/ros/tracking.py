"""Persistent track ids and frame selection for the sequential mode, free of ROS."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from glue_ros.core.types import Features


@dataclass
class Reference:
    """The frame new frames are matched against, with a track id per keypoint (0 = none)."""

    features: Features
    header: object
    track_ids: np.ndarray


class TrackBook:
    """Gives every match a track id that persists while a physical point keeps being matched.

    A match (current i, reference j) inherits the reference keypoint's id, or opens a new track
    whose id is also written back to the reference keypoint, so later frames matched against the
    same keyframe continue it. With `keyframe=False` the reference is always the previous frame;
    with `keyframe=True` it is kept until fewer than `min_matches` matches remain.
    """

    def __init__(self, keyframe: bool = False, min_matches: int = 100):
        self.keyframe = keyframe
        self.min_matches = int(min_matches)
        self.reference: Optional[Reference] = None
        self.next_id = 1

    def reset(self) -> None:
        """Forget the reference and restart ids from 1 (a jump back in time)."""
        self.reference = None
        self.next_id = 1

    def assign(self, indices0: np.ndarray, indices1: np.ndarray, num_current: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """Track ids of the matches and of every current keypoint (0 where unmatched)."""
        reference_ids = self.reference.track_ids
        ids = reference_ids[indices1].copy()
        fresh = ids == 0
        count = int(fresh.sum())
        ids[fresh] = np.arange(self.next_id, self.next_id + count, dtype=np.uint64)
        self.next_id += count
        reference_ids[indices1[fresh]] = ids[fresh]
        current_ids = np.zeros(num_current, np.uint64)
        current_ids[indices0] = ids
        return ids, current_ids

    def advance(self, features: Features, header, current_ids: np.ndarray, num_matches: int
                ) -> bool:
        """Make the current frame the reference when due; True when it became the reference."""
        if (self.reference is None or not self.keyframe
                or num_matches < self.min_matches):
            self.reference = Reference(features, header, current_ids)
            return True
        return False
