"""Persistent track ids for the sequential mode: long, verified, evenly spread tracks.

What a visual-inertial estimator wants of a front-end (VINS-Fusion's KLT tracker is the model):

* a physical point keeps its id while it is seen, and a little longer: a track that was not
  re-detected or not matched in one frame stays *alive* for up to ``max_age`` frames with its
  latest position and descriptor, and the next frames are matched against it too;
* a match that failed geometric verification never carries an id (the front-end removes it
  before :meth:`TrackManager.assign`), so an id never jumps to another point;
* a feature budget with spatial spread (VINS's ``MAX_CNT`` / ``MIN_DIST``): continuing tracks
  are always kept; new tracks start at the most confident new matches only where no tracked
  point lies within ``min_distance`` pixels, and only while fewer than ``max_tracks`` are alive.
  Matches that start no track are still published, with id 0.

The reference a new frame is matched against is the previous frame's keypoints plus the alive
tracks it does not contain (``Reference.sources`` says which frame each point was last seen in,
so that geometry is verified per pair of views). With ``keyframe=True`` the reference is a
keyframe held until fewer than ``keyframe_min_matches`` matches remain, and ids are written back
to it. Detector-free matchers (coarse LoFTR: no descriptors) use the previous frame only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, cast

import numpy as np
import torch
from numpy.typing import ArrayLike

from glue_ros.core import schema
from glue_ros.core.types import DenseImage, Features

_D = schema.default


@dataclass
class Reference:
    """What the next frame is matched against."""

    features: Features | DenseImage  # keypoints (and descriptors) of its points
    ids: np.ndarray  # (R,) uint64 track id per reference point, 0 = none yet
    sources: np.ndarray  # (R,) int64 index of the frame each point was last seen in
    frame: int  # index of the frame the reference was made from
    tag: object  # the caller's tag of that frame (e.g. its message header)


@dataclass
class _Frame:
    features: Features | DenseImage
    ids: np.ndarray  # per keypoint (or coarse cell), 0 = no track
    index: int
    tag: object


class _LostTracks(NamedTuple):
    """Alive tracks the reference frame does not contain: matched against until too old."""

    ids: np.ndarray  # (K,) uint64
    keypoints: torch.Tensor  # (K, 2) where each was last seen
    descriptors: torch.Tensor  # (K, D)
    sources: np.ndarray  # (K,) int64 index of the frame each was last seen in
    ages: np.ndarray  # (K,) int64 frames since then

    def select(self, keep: np.ndarray) -> _LostTracks:
        """The tracks at indices `keep`."""
        index = torch.from_numpy(keep).to(self.keypoints.device)
        return _LostTracks(
            self.ids[keep],
            self.keypoints[index],
            self.descriptors[index],
            self.sources[keep],
            self.ages[keep],
        )


class TrackManager:
    """Track ids over a sequence of frames (see the module docstring)."""

    def __init__(
        self,
        max_age: int = _D('track_max_age'),
        max_tracks: int = _D('max_tracks'),
        min_distance: float = _D('min_track_distance'),
        keyframe: bool = False,
        keyframe_min_matches: int = _D('keyframe_min_matches'),
    ) -> None:
        schema.check(
            {
                'track_max_age': max_age,
                'max_tracks': max_tracks,
                'min_track_distance': min_distance,
                'keyframe_min_matches': keyframe_min_matches,
            }
        )
        self.max_age = int(max_age)
        self.max_tracks = int(max_tracks)
        self.min_distance = float(min_distance)
        self.keyframe = bool(keyframe)
        self.keyframe_min_matches = int(keyframe_min_matches)
        self.sequences = 0  # sequences started: consumers with state of their own compare it
        self.reset()

    def reset(self) -> None:
        """Forget everything; ids restart from 1 (a time jump, a new image size)."""
        self.sequences += 1
        self.next_id = 1
        self.frame_index = 0
        self._reference_frame: _Frame | None = None
        self._lost: _LostTracks | None = None

    @property
    def image_size(self) -> tuple[int, int] | None:
        """Image size of the sequence, None before its first frame."""
        frame = self._reference_frame
        return None if frame is None else frame.features.image_size

    def reference(self) -> Reference | None:
        """The reference for the next frame: the previous frame (or keyframe) + lost tracks."""
        frame = self._reference_frame
        if frame is None:
            return None
        count = max(len(frame.features), len(frame.ids))
        sources = np.full(count, frame.index, np.int64)
        lost = self._lost
        if lost is None or len(lost.ids) == 0:
            return Reference(frame.features, frame.ids, sources, frame.index, frame.tag)
        # Lost tracks are kept only for features with descriptors (see _advance).
        f = cast(Features, frame.features)
        features = Features(
            torch.cat([f.keypoints, lost.keypoints.to(f.keypoints)]),
            torch.cat([f.scores, torch.ones(len(lost.ids)).to(f.scores)]),
            torch.cat([f.descriptors, lost.descriptors.to(f.descriptors)]),
            f.image_size,
        )
        return Reference(
            features,
            np.concatenate([frame.ids, lost.ids]),
            np.concatenate([sources, lost.sources]),
            frame.index,
            frame.tag,
        )

    def start(self, features: Features | DenseImage, tag: object, num_points: int = 0) -> None:
        """First frame of a sequence: it becomes the reference, no ids yet."""
        self.frame_index += 1
        count = max(len(features), num_points)
        self._reference_frame = _Frame(features, np.zeros(count, np.uint64), self.frame_index, tag)
        self._lost = None

    def assign(
        self,
        reference: Reference,
        features: Features | DenseImage,
        tag: object,
        indices0: np.ndarray,
        indices1: np.ndarray,
        points0: np.ndarray,
        scores: np.ndarray,
        num_points: int = 0,
        elsewhere: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Track ids (uint64, 0 = no track) of verified matches, and advance to this frame.

        indices0 index the current frame's keypoints, indices1 the reference's points (in
        `reference`'s order); points0 are the current positions; matches sorted by score.
        elsewhere: (points (K, 2), ids (K,)) of tracks followed by other means in this frame
        (optical flow): they count against the budget and keep new tracks at a distance.
        """
        self.frame_index += 1
        ids: np.ndarray = reference.ids[indices1].copy()
        fresh = np.flatnonzero(ids == 0)
        start = self._budget(points0, ids, fresh, scores, elsewhere)
        ids[start] = np.arange(self.next_id, self.next_id + len(start), dtype=np.uint64)
        self.next_id += len(start)
        count = max(len(features), num_points)
        current_ids = np.zeros(count, np.uint64)
        current_ids[indices0] = ids
        if self.keyframe:
            self._advance_keyframe(reference, features, tag, indices1, ids, current_ids)
        else:
            self._advance(reference, features, tag, indices1, current_ids)
        return ids

    def retire(self, ids: ArrayLike) -> None:
        """Forget these track ids everywhere: no point is ever given them again."""
        ids = np.asarray(ids, np.uint64)
        if len(ids) == 0:
            return
        frame = self._reference_frame
        if frame is not None:
            frame.ids[np.isin(frame.ids, ids)] = 0
        if self._lost is not None:
            self._lost = self._lost.select(np.flatnonzero(~np.isin(self._lost.ids, ids)))

    # -- helpers -----------------------------------------------------------------------------
    def _budget(
        self,
        points: np.ndarray,
        ids: np.ndarray,
        fresh: np.ndarray,
        scores: np.ndarray,
        elsewhere: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> np.ndarray:
        """Indices (into the matches) of the new matches that may start a track."""
        taken = points[ids > 0]
        room = self.max_tracks - int(np.count_nonzero(ids))
        if elsewhere is not None and len(elsewhere[1]):
            other_points, other_ids = elsewhere
            extra = ~np.isin(np.asarray(other_ids, np.uint64), ids)
            room -= int(extra.sum())
            taken = np.concatenate([taken, np.asarray(other_points, taken.dtype)[extra]])
        if room <= 0 or len(fresh) == 0:
            return fresh[:0]
        fresh = fresh[np.argsort(-scores[fresh], kind='stable')]
        if self.min_distance <= 0:
            return np.sort(fresh[:room])
        cell = self.min_distance
        occupied: dict[tuple[int, int], list[tuple[float, float]]] = {}
        for x, y in taken:
            occupied.setdefault((int(x // cell), int(y // cell)), []).append((x, y))
        limit = cell * cell
        chosen: list[int] = []
        for i in fresh:
            x, y = points[i]
            cx, cy = int(x // cell), int(y // cell)
            near = False
            for gx in (cx - 1, cx, cx + 1):
                for gy in (cy - 1, cy, cy + 1):
                    for px, py in occupied.get((gx, gy), ()):
                        if (px - x) ** 2 + (py - y) ** 2 < limit:
                            near = True
                            break
                    if near:
                        break
                if near:
                    break
            if near:
                continue
            occupied.setdefault((cx, cy), []).append((x, y))
            chosen.append(i)
            if len(chosen) == room:
                break
        return np.sort(np.asarray(chosen, np.int64))

    def _advance(
        self,
        reference: Reference,
        features: Features | DenseImage,
        tag: object,
        indices1: np.ndarray,
        current_ids: np.ndarray,
    ) -> None:
        """The current frame becomes the reference; unmatched tracks become (or stay) lost."""
        frame = self._reference_frame
        has_descriptors = (
            isinstance(features, Features)
            and features.descriptors.ndim == 2
            and features.descriptors.shape[1] > 0
        )
        matched = np.zeros(len(reference.ids), bool)
        matched[indices1] = True
        if self.max_age > 0 and has_descriptors:
            assert frame is not None, 'assign() needs a reference'
            n_frame = len(frame.ids)
            unseen = np.flatnonzero(~matched & (reference.ids > 0))
            ages = np.ones(len(reference.ids), np.int64)
            if self._lost is not None:
                ages[n_frame:] = self._lost.ages + 1
            unseen = unseen[ages[unseen] <= self.max_age]
            rf = cast(Features, reference.features)  # the same extractor as `features`
            self._lost = _LostTracks(
                reference.ids, rf.keypoints, rf.descriptors, reference.sources, ages
            ).select(unseen)
        else:
            self._lost = None
        self._reference_frame = _Frame(features, current_ids, self.frame_index, tag)

    def _advance_keyframe(
        self,
        reference: Reference,
        features: Features | DenseImage,
        tag: object,
        indices1: np.ndarray,
        ids: np.ndarray,
        current_ids: np.ndarray,
    ) -> None:
        """Keep the keyframe (with the new ids written back) until too few matches remain."""
        assert self._reference_frame is not None, 'assign() needs a reference'
        self._reference_frame.ids[indices1] = ids
        if len(ids) < self.keyframe_min_matches:
            self._reference_frame = _Frame(features, current_ids, self.frame_index, tag)


__all__ = ['TrackManager', 'Reference']
