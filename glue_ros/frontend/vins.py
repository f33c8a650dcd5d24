"""Tracked matches -> sensor_msgs/PointCloud as VINS-Fusion's feature tracker publishes it.

VINS-Fusion's estimator (feature_callback) reads, for point i of the cloud:
  points[i] = (x, y, 1): normalized camera coordinates (it asserts z == 1);
  channels[0..5] = feature_id, camera_id, u, v, velocity_x, velocity_y;
  channels[6..8] = gx, gy, gz (a ground-truth point) whenever channels.size() > 5.
Because that test is "> 5" and not "> 8", a six-channel cloud would be read out of bounds: we
always publish nine channels and fill gx, gy, gz with 0.0 (VINS only stores them for debugging).
In stereo, camera 1's observations follow camera 0's in the same cloud under the same feature
id, the order the estimator relies on (camera 0 first in each feature's observation list).

This module is the numeric work (VinsFeatures, computed by VinsFeatureBuilder.compute), free of
ROS, so that the bag tool writes the same content with rosbags; glue_ros.ros.vins turns it into
the rclpy message for the node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from glue_ros.core.schema import VELOCITY_UNITS

if TYPE_CHECKING:
    from glue_ros.core.camera import CameraModel
    from glue_ros.core.types import MatchResult
    from glue_ros.frontend.output import FrameOutput

CHANNEL_NAMES = ('feature_id', 'camera_id', 'u', 'v', 'velocity_x', 'velocity_y', 'gx', 'gy', 'gz')
# Channels are float32, which holds integers exactly only up to 2**24; track ids grow without
# bound (a few thousand new tracks a second), so feature ids wrap there. A wrapped id can only
# collide with a track still alive after 16.7 million newer tracks, long out of VINS's window.
FEATURE_ID_MODULUS = 1 << 24


def stamp_ns(stamp: Any) -> int:
    """Nanoseconds of a builtin_interfaces/Time, a header (its stamp) or an int."""
    if isinstance(stamp, (int, np.integer)):
        return int(stamp)
    stamp = getattr(stamp, 'stamp', stamp)
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass
class VinsFeatures:
    """One frame's observations, row i of each array is point i of the cloud.

    track_ids: (N,) uint64 as the tracker gave them (the channel carries them modulo 2**24);
    camera_ids: (N,) int; normalized, pixels, velocity: (N, 2) float64.
    """

    stamp_ns: int
    track_ids: np.ndarray
    camera_ids: np.ndarray
    normalized: np.ndarray
    pixels: np.ndarray
    velocity: np.ndarray

    def __len__(self) -> int:
        return int(self.track_ids.shape[0])

    def points_xyz(self) -> np.ndarray:
        """(N, 3) float32 points (x, y, 1)."""
        out = np.ones((len(self), 3), np.float32)
        out[:, :2] = self.normalized
        return out

    def channels(self) -> list[tuple[str, np.ndarray]]:
        """(name, float32 values) of the nine channels, in VINS-Fusion's order."""
        zeros = np.zeros(len(self), np.float32)
        ids = (self.track_ids % np.uint64(FEATURE_ID_MODULUS)).astype(np.float32)
        columns = [
            ids,
            self.camera_ids.astype(np.float32),
            self.pixels[:, 0],
            self.pixels[:, 1],
            self.velocity[:, 0],
            self.velocity[:, 1],
            zeros,
            zeros,
            zeros,
        ]
        return [
            (name, np.asarray(values, np.float32)) for name, values in zip(CHANNEL_NAMES, columns)
        ]


class VinsFeatureBuilder:
    """Keeps each track's previous position per camera so that velocities can be published.

    Velocity = (position now - position in the previous frame) / stamp difference, for tracks
    seen by the same camera in the previous call; 0 for a track's first observation, after a
    reset, and when the stamp did not advance. A stamp earlier than the previous one (a bag
    replayed, a time jump) resets the state by itself.

    velocity_units='pixels' (the default) gives pixels per second. Note that
    VINS-Fusion's own tracker publishes velocities of the normalized coordinates (1/s) and its
    time-offset factor uses them as such: choose 'normalized' when VINS estimates td.
    """

    def __init__(self, velocity_units: str = 'pixels') -> None:
        if velocity_units not in VELOCITY_UNITS:
            raise ValueError(
                f'velocity_units={velocity_units!r}; expected one of {", ".join(VELOCITY_UNITS)}'
            )
        self.velocity_units = velocity_units
        self._previous: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._stamp_ns: int | None = None

    def reset(self) -> None:
        """Forget previous positions (time jumped, tracks restarted)."""
        self._previous = {}
        self._stamp_ns = None

    def compute(
        self,
        stamp: Any,
        track_ids: ArrayLike,
        points_cam0: ArrayLike,
        camera0: CameraModel,
        points_cam1: ArrayLike | None = None,
        camera1: CameraModel | None = None,
    ) -> VinsFeatures:
        """The frame's VinsFeatures; `stamp` is a header, a Time or nanoseconds.

        track_ids (M,) and points_cam0 (M, 2) pixels are camera 0's tracked matches; in stereo,
        points_cam1 (M, 2) holds each track's pixel in camera 1, NaN where camera 1 did not see
        it (see stereo_partner_points). camera0 / camera1 are CameraModels; their camera_id
        fields go into the camera_id channel and must differ.
        """
        now = stamp_ns(stamp)
        ids = np.asarray(track_ids, np.uint64).reshape(-1)
        cams = [(camera0, _points(points_cam0, len(ids), 'points_cam0'))]
        if points_cam1 is not None:
            if camera1 is None:
                raise ValueError('points_cam1 given without camera1')
            if camera1.camera_id == camera0.camera_id:
                raise ValueError(
                    f'both cameras have camera_id {camera0.camera_id}; build the '
                    f'second with CameraModel.from_camera_info(info, camera_id=1)'
                )
            cams.append((camera1, _points(points_cam1, len(ids), 'points_cam1')))
        if self._stamp_ns is not None and now < self._stamp_ns:
            self.reset()
        dt = (now - self._stamp_ns) * 1e-9 if self._stamp_ns is not None else 0.0
        parts: list[tuple[np.ndarray, ...]] = []
        previous: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for camera, pixels in cams:
            seen = np.isfinite(pixels).all(axis=1)
            cam_ids, cam_pixels = ids[seen], pixels[seen]
            normalized = camera.normalize(cam_pixels)
            tracked = cam_pixels if self.velocity_units == 'pixels' else normalized
            velocity = self._velocity(camera.camera_id, cam_ids, tracked, dt)
            order = np.argsort(cam_ids, kind='stable')
            previous[camera.camera_id] = (cam_ids[order], tracked[order])
            parts.append(
                (
                    cam_ids,
                    np.full(len(cam_ids), camera.camera_id),
                    normalized,
                    cam_pixels,
                    velocity,
                )
            )
        self._previous, self._stamp_ns = previous, now
        return VinsFeatures(now, *(np.concatenate(column) for column in zip(*parts)))

    def _velocity(
        self, camera_id: int, ids: np.ndarray, positions: np.ndarray, dt: float
    ) -> np.ndarray:
        velocity = np.zeros((len(ids), 2))
        previous = self._previous.get(camera_id)
        if previous is None or dt <= 0.0 or not len(previous[0]) or not len(ids):
            return velocity
        prev_ids, prev_positions = previous
        slot = np.minimum(np.searchsorted(prev_ids, ids), len(prev_ids) - 1)
        found = prev_ids[slot] == ids
        velocity[found] = (positions[found] - prev_positions[slot[found]]) / dt
        return velocity


class VinsOutput:
    """The VINS feature record of each front-end output, velocities restarted with the tracks.

    One logic for the node and glue-ros-bag: sequential outputs give their tracked matches;
    stereo outputs with the left image tracked (track_stereo_left) give the tracked left points
    and their right partners; a stereo output without tracking gives nothing.
    """

    def __init__(self, velocity_units: str = 'pixels') -> None:
        self.builder = VinsFeatureBuilder(velocity_units)
        self._sequence = 0

    def sync(self, sequences: int) -> None:
        """Restart the velocities when the front-end started a new sequence of track ids."""
        if self._sequence != sequences:
            self.builder.reset()
            self._sequence = sequences

    def features(
        self,
        output: FrameOutput,
        stamp: Any,
        sequences: int,
        camera: Callable[[int], CameraModel | None],
        stereo: bool,
    ) -> VinsFeatures | None:
        """VinsFeatures of a FrameOutput, or None (nothing tracked, or a camera still unknown).

        camera(i) gives camera i's CameraModel or None; it is asked only for the cameras this
        output needs.
        """
        if stereo and output.temporal is None:
            return None
        self.sync(sequences)
        if stereo:
            camera0 = camera(0)
            camera1 = camera(1) if camera0 is not None else None
            if camera0 is None or camera1 is None:
                return None
            temporal, temporal_ids = output.temporal, output.temporal_ids
            assert temporal is not None and temporal_ids is not None  # set together
            tracked = temporal_ids > 0
            return self.builder.compute(
                stamp,
                temporal_ids[tracked],
                temporal.points0[tracked],
                camera0,
                stereo_partner_points(temporal.indices0[tracked], output.result),
                camera1,
            )
        camera0 = camera(0)
        if camera0 is None:
            return None
        track_ids = output.track_ids
        assert track_ids is not None  # None only in stereo
        tracked = track_ids > 0
        return self.builder.compute(
            stamp, track_ids[tracked], output.result.points0[tracked], camera0
        )


def _points(points: ArrayLike, count: int, name: str) -> np.ndarray:
    out = np.asarray(points, np.float64).reshape(-1, 2)
    if len(out) != count:
        raise ValueError(f'{name} has {len(out)} points for {count} track ids')
    return out


def stereo_partner_points(query_indices: ArrayLike, stereo_result: MatchResult) -> np.ndarray:
    """(M, 2) camera-1 pixels of the tracked camera-0 keypoints `query_indices`, NaN if none.

    query_indices are the camera-0 keypoint indices of the tracked matches (the sequential
    MatchResult.indices0) and stereo_result matches the same camera-0 features (image 0) with
    camera 1 (image 1), so a keypoint index joins the two. For coarse LoFTR the indices are
    coarse cells, which join the same way when both matches use one input size.
    """
    query_indices = np.asarray(query_indices, np.int64).reshape(-1)
    left = np.asarray(stereo_result.indices0, np.int64)
    size = int(max(query_indices.max(initial=-1), left.max(initial=-1))) + 1
    lookup = np.full((size, 2), np.nan)
    lookup[left] = stereo_result.points1
    partners: np.ndarray = lookup[query_indices]
    return partners


__all__ = [
    'CHANNEL_NAMES',
    'FEATURE_ID_MODULUS',
    'VELOCITY_UNITS',
    'VinsFeatures',
    'VinsFeatureBuilder',
    'VinsOutput',
    'stereo_partner_points',
    'stamp_ns',
]
