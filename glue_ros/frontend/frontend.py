"""The SLAM front-end: extract, match, verify geometry, keep tracks; one object for every user.

The node, glue-ros-bag, glue-ros-match, the demo and the benchmark all drive a :class:`Frontend`,
so what the published matches are (verified, tracked, budgeted) is decided in one place. It
imports no ROS: the ROS layer converts messages and schedules work, nothing else.

Sequential mode (:meth:`Frontend.process`): each frame is matched against the previous frame
(or a keyframe) plus the tracks still alive; matches are verified per pair of views and the
outliers removed; the survivors get track ids. Stereo mode (:meth:`Frontend.process_stereo`):
left against right, the rectified row test first when ``max_epipolar_error`` is set, then the
robust model; optionally the left image is also tracked over time (VINS-style stereo output).

Hybrid tracking (``tracking='flow'``, sequential mode): the learned extractor and matcher run
on *learned frames* only; in between, the tracked points follow pyramidal Lucas-Kanade flow
(:mod:`glue_ros.frontend.flow`), checked forward and backward and verified with the same
robust model, at a few milliseconds a frame. A learned frame comes every ``flow_max_frames``
frames, or as soon as fewer than ``flow_min_share`` of the tracks it started with are still
followed, or when verification rejects more than a tenth of the flow: it matches against the
track manager's reference (ids re-found by descriptor, lost ones included), starts new tracks
where the budget allows, and replaces the flow's positions (no drift); the flow's own tracks are
merged in by :mod:`glue_ros.frontend.hybrid`. One id space: the flow only carries ids the track
manager gave.

The settings are :mod:`glue_ros.frontend.config`'s, the output :mod:`glue_ros.frontend.output`'s;
stereo and chosen pairs are matched by :mod:`glue_ros.frontend.pairs` (no stream state), and
every name stays importable from here.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np

from glue_ros.core.camera import CameraModel
from glue_ros.core.scheduling import stereo_size_problem
from glue_ros.core.schema import MODES, REFERENCES, TRACKING
from glue_ros.core.types import DenseImage, Features, MatchResult
from glue_ros.frontend import geometry, pairs
from glue_ros.frontend.config import SETTING_FIELDS, FrontendConfig
from glue_ros.frontend.flow import FlowTracker, to_gray
from glue_ros.frontend.geometry import Verification
from glue_ros.frontend.hybrid import merge_flow
from glue_ros.frontend.output import FrameOutput
from glue_ros.frontend.pairs import Cameras
from glue_ros.frontend.tracks import TrackManager

if TYPE_CHECKING:
    from glue_ros.matcher import Matcher

# Matches of tracks last seen in an older frame are verified against that frame, in a group of
# at least this many (RANSAC on fewer accepts nearly anything); smaller groups are dropped.
MIN_REVIVED = 30
# Flow frames whose verification rejects more than this share of the followed points hand over
# to a learned frame: the flow is no longer trustworthy there (blur, a fast turn, occlusion).
FLOW_MAX_REJECTED = 0.1
_log = logging.getLogger(__name__)


class Frontend:
    """Drives a Matcher over a stream (see the module docstring)."""

    def __init__(self, matcher: Matcher, config: FrontendConfig | None = None) -> None:
        self.matcher = matcher
        self.config = (config or FrontendConfig()).validate()
        c = self.config
        self.tracks = TrackManager(
            c.track_max_age,
            c.max_tracks,
            c.min_track_distance,
            keyframe=c.reference == 'keyframe',
            keyframe_min_matches=c.keyframe_min_matches,
        )
        self.last_stamp: float | None = None
        self.last_features: Features | DenseImage | None = None  # of the last query image
        # Hybrid tracking: the points followed since the last learned frame.
        self.flow = FlowTracker(c.flow_back_threshold)
        self._flow_started = 0  # tracks handed to the flow at the last learned frame
        self._flow_frames = 0  # frames since the last learned frame
        self._flow_rejected = False  # the last flow frame's verification rejected too much
        self._flow_tag: object = None  # tag of the frame the flow stands on

    def retune(self, config: FrontendConfig) -> None:
        """Take new thresholds and track limits while running; tracks and ids are kept.

        The mode, the reference kind and the check are fixed for a stream: changing them means
        a new Frontend.
        """
        config = config.validate()
        fixed = ('mode', 'reference', 'geometric_check', 'track_stereo_left', 'tracking')
        changed = [name for name in fixed if getattr(config, name) != getattr(self.config, name)]
        if changed:
            raise ValueError(f'{", ".join(changed)} cannot change while running')
        self.config = config
        self.tracks.max_age = config.track_max_age
        self.tracks.max_tracks = config.max_tracks
        self.tracks.min_distance = config.min_track_distance
        self.tracks.keyframe_min_matches = config.keyframe_min_matches
        self.flow.back_threshold = config.flow_back_threshold

    def reset(self) -> None:
        """Start a new sequence: tracks forgotten, ids from 1."""
        self._new_sequence()
        self.last_stamp = None

    def _new_sequence(self) -> None:
        self.tracks.reset()
        self.flow.reset()

    # -- sequential ------------------------------------------------------------------------
    def process(
        self,
        image: np.ndarray,
        stamp: float,
        camera: CameraModel | None = None,
        tag: object = None,
    ) -> FrameOutput | None:
        """One frame of the sequence; None for the first frame (nothing to match yet).

        With ``tracking='flow'`` most frames are flow frames (``learned`` False, no features).
        """
        self._check_time(stamp)
        start = time.perf_counter()
        gray: np.ndarray | None = None
        followed: tuple[np.ndarray, np.ndarray] | None = None
        if self.config.tracking == 'flow':
            gray = to_gray(image)
            if not self._learned_frame_due(gray):
                return self._flow_frame(gray, camera, tag, start)
            if self.tracks.image_size == gray.shape[1::-1]:
                self.flow.track(gray)  # where the flow's tracks are now, checked
                followed = (self.flow.points, self.flow.ids)
        features = self.last_features = self.matcher.extract(image)
        extract_ms = (time.perf_counter() - start) * 1e3
        output = self._track(features, camera, tag, followed)
        if gray is not None:
            output = self._hand_to_flow(gray, output, camera, tag)
        if output is not None:
            output.timing_ms['extract'] = extract_ms
            output.timing_ms['total'] = (time.perf_counter() - start) * 1e3
        return output

    def _check_time(self, stamp: float) -> None:
        if self.last_stamp is not None and stamp < self.last_stamp:
            _log.warning(
                f'time jumped back ({self.last_stamp:.3f} -> {stamp:.3f} s): tracks and ids reset'
            )
            self._new_sequence()
        self.last_stamp = stamp

    # -- hybrid tracking ---------------------------------------------------------------------
    def _learned_frame_due(self, gray: np.ndarray) -> bool:
        c = self.config
        return (
            len(self.flow) == 0
            or self._flow_rejected
            or self._flow_frames + 1 >= c.flow_max_frames
            or len(self.flow) < c.flow_min_share * self._flow_started
            or self.tracks.image_size != gray.shape[1::-1]
        )

    def _hand_to_flow(
        self, gray: np.ndarray, output: FrameOutput | None, camera: CameraModel | None, tag: object
    ) -> FrameOutput | None:
        """After a learned frame: its tracks and the flow's, one set, followed from here.

        A track both place keeps the learned position (no drift), unless they disagree: then
        one of them left the point and the id is retired. A track only the flow still follows
        (its keypoint not detected or not matched this time) goes on, verified against where
        it was at the last learned frame, and is published with the learned matches.
        """
        if output is None:  # the first frame of a sequence: nothing tracked yet
            self.flow.reset(gray)
        else:
            output, unconfirmed = merge_flow(
                output,
                self.flow,
                self.tracks,
                lambda points, origins, check: self._verify(
                    points, origins, camera, camera, 0.0, check
                ),
            )
            ids = output.track_ids
            assert ids is not None  # sequential
            tracked = ids > 0
            self.flow.reset(
                gray, output.result.points0[tracked], ids[tracked], unconfirmed[tracked]
            )
        self._flow_started, self._flow_frames = len(self.flow), 0
        self._flow_rejected, self._flow_tag = False, tag
        return output

    def _flow_frame(
        self, gray: np.ndarray, camera: CameraModel | None, tag: object, start: float
    ) -> FrameOutput:
        """Follow the tracked points into this frame and verify them as learned matches are."""
        previous, points, ids = self.flow.track(gray)
        flow_ms = (time.perf_counter() - start) * 1e3
        verification = self._verify(points, previous, camera, camera, 0.0)
        keep = verification.inliers
        self.flow.keep(keep)
        followed, count = len(keep), int(keep.sum())
        self._flow_rejected = followed - count > FLOW_MAX_REJECTED * followed
        self._flow_frames += 1
        self.last_features = None
        none = np.full(count, -1, np.int32)
        done = time.perf_counter()
        timing = {
            'extract': 0.0,
            'match': flow_ms,  # the flow is this frame's matching
            'verify_track': (done - start) * 1e3 - flow_ms,
            'total': (done - start) * 1e3,
        }
        result = MatchResult(
            points[keep],
            previous[keep],
            np.ones(count, np.float32),
            none,
            none.copy(),
            0,
            0,
            0,
            0,
            timing_ms=timing,
        )
        reference_tag, self._flow_tag = self._flow_tag, tag
        return FrameOutput(
            result,
            verification,
            ids[keep],
            followed - count,
            None,
            reference_tag=reference_tag,
            learned=False,
        )

    def _track(
        self,
        features: Features | DenseImage,
        camera: CameraModel | None,
        tag: object,
        elsewhere: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> FrameOutput | None:
        """Match a frame's features with the tracks' reference, verify, assign ids."""
        size = self.tracks.image_size
        if size is not None and size != features.image_size:
            _log.info(
                f'image size changed from {size} to {features.image_size}: starting a new sequence'
            )
            self._new_sequence()
        reference = self.tracks.reference()
        cells = self.matcher.dense_cells
        if reference is None:
            self.tracks.start(features, tag, cells)
            return None
        raw = self.matcher.match(features, reference.features)
        start = time.perf_counter()
        sources = reference.sources[raw.indices1]
        verification, keep = self._verify_groups(raw, sources, reference.frame, camera)
        result = raw.subset(keep)
        ids = self.tracks.assign(
            reference,
            features,
            tag,
            result.indices0,
            result.indices1,
            result.points0,
            result.scores,
            cells,
            elsewhere,
        )
        result.timing_ms.setdefault('match', 0.0)  # none when an image had no keypoints
        result.timing_ms['verify_track'] = (time.perf_counter() - start) * 1e3
        return FrameOutput(
            result,
            verification,
            ids,
            int(len(raw) - keep.sum()),
            features,
            reference_tag=reference.tag,
            keyframe=self.tracks.keyframe,
        )

    def _verify_groups(
        self, raw: MatchResult, sources: np.ndarray, main: int, camera: CameraModel | None
    ) -> tuple[Verification, np.ndarray]:
        """(the reference pair's verification, the matches to keep), each pair of views alone.

        The pairs: with the reference frame, and with every older frame that alive tracks were
        last seen in.
        """
        keep = np.zeros(len(raw), bool)
        sel = np.flatnonzero(sources == main)
        verification = self._verify(
            raw.points0[sel], raw.points1[sel], camera, camera, raw.grid_step
        )
        keep[sel] = verification.inliers
        # The scene decides the model: where the reference pair has no parallax (a plane, a
        # rotation), the older pairs are held to a homography too (a fundamental matrix on a
        # small group lets wrong matches slide along their epipolar lines).
        check = 'homography' if verification.status == geometry.ROTATION else None
        for source in np.unique(sources):
            sel = np.flatnonzero(sources == source)
            if source == main or len(sel) < MIN_REVIVED:
                continue  # too few to verify a pair of views on: never trusted unverified
            v = self._verify(
                raw.points0[sel], raw.points1[sel], camera, camera, raw.grid_step, check
            )
            keep[sel] = v.inliers
        return verification, keep

    def _verify(
        self,
        points0: np.ndarray,
        points1: np.ndarray,
        camera0: CameraModel | None,
        camera1: CameraModel | None,
        grid_step: float,
        check: str | None = None,
    ) -> Verification:
        return pairs.verify(self.config, points0, points1, camera0, camera1, grid_step, check)

    # -- one pair and stereo (glue_ros.frontend.pairs) ------------------------------------
    def match_pair(
        self,
        image0: np.ndarray,
        image1: np.ndarray,
        cameras: Cameras = (None, None),
        check: str | None = None,
    ) -> FrameOutput:
        """Two chosen images, verified, outside any stream (no tracks, no state changed).

        `check` overrides the configured geometric check for this pair.
        """
        return pairs.match_pair(self.matcher, self.config, image0, image1, cameras, check)

    def process_stereo(
        self,
        left: np.ndarray,
        right: np.ndarray,
        stamp: float,
        cameras: Cameras = (None, None),
        tag: object = None,
    ) -> FrameOutput:
        """One rectified (or not) stereo pair; with track_stereo_left, left tracked too."""
        problem = stereo_size_problem(left, right)
        if problem:
            raise ValueError(problem)
        self._check_time(stamp)
        start = time.perf_counter()
        output = pairs.match_stereo(self.matcher, self.config, left, right, cameras, tag)
        features_left = self.last_features = output.features
        assert features_left is not None  # a stereo pair is always extracted
        if self.config.track_stereo_left:
            tracked = self._track(features_left, cameras[0], tag)
            if tracked is not None:
                output.temporal, output.temporal_ids = tracked.result, tracked.track_ids
        output.timing_ms['total'] = (time.perf_counter() - start) * 1e3
        return output


__all__ = [
    'Frontend',
    'FrontendConfig',
    'FrameOutput',
    'SETTING_FIELDS',
    'Cameras',
    'MODES',
    'REFERENCES',
    'TRACKING',
]  # MODES to TRACKING: the schema's choices
