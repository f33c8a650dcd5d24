"""The front-end's output as plain records, one per message the node and glue-ros-bag write.

A record has exactly the fields of its message (msg/Matches.msg, msg/Keypoints.msg), as numpy
arrays of the field's type, ints, floats, strings and the two headers passed through untouched.
The node (rclpy) and the bag tool (rosbags) only turn a record into their own message class
with :func:`message_fields`, driven by the field names: a field added to a message is added
here once, and both outputs carry it. The VINS feature record is
:class:`glue_ros.frontend.vins.VinsFeatures`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from glue_ros.core.types import Features, MatchResult

if TYPE_CHECKING:  # annotations only: records need neither OpenCV nor the front-end
    from glue_ros.frontend.geometry import Verification
    from glue_ros.frontend.output import FrameOutput

# glue_ros/msg/Matches constants.
MODE_SEQUENTIAL, MODE_STEREO, MODE_PAIR = 0, 1, 2
HEADER_FIELDS = ('header', 'reference_header')


def _empty(dtype: DTypeLike) -> np.ndarray:
    return field(default_factory=lambda: np.zeros(0, dtype))


@dataclass
class MatchesRecord:
    """glue_ros/msg/Matches, field for field (see msg/Matches.msg for their meaning)."""

    header: Any = None
    reference_header: Any = None
    mode: int = MODE_SEQUENTIAL
    keyframe: bool = False
    learned: bool = True
    query_width: int = 0
    query_height: int = 0
    reference_width: int = 0
    reference_height: int = 0
    matcher: str = ''
    grid_step: float = 0.0
    query_points: np.ndarray = _empty(np.float32)
    reference_points: np.ndarray = _empty(np.float32)
    confidences: np.ndarray = _empty(np.float32)
    query_indices: np.ndarray = _empty(np.int32)
    reference_indices: np.ndarray = _empty(np.int32)
    track_ids: np.ndarray = _empty(np.uint64)
    geometric_model: str = 'none'
    geometric_status: str = 'not_checked'
    num_outliers: int = 0
    rotation: np.ndarray = _empty(np.float64)
    translation: np.ndarray = _empty(np.float64)
    num_query_keypoints: int = 0
    num_reference_keypoints: int = 0
    layers_used: int = 0
    layers_total: int = 0
    extract_ms: float = 0.0
    match_ms: float = 0.0
    latency_ms: float = 0.0
    dropped_frames: int = 0


@dataclass
class KeypointsRecord:
    """glue_ros/msg/Keypoints, field for field (see msg/Keypoints.msg)."""

    header: Any = None
    width: int = 0
    height: int = 0
    extractor: str = ''
    keypoints: np.ndarray = _empty(np.float32)
    scores: np.ndarray = _empty(np.float32)
    descriptor_dim: int = 0
    descriptors: np.ndarray = _empty(np.float32)


def flat(values: ArrayLike, dtype: DTypeLike) -> np.ndarray:
    """A contiguous 1-D array of `values` as `dtype` (a message array field)."""
    return np.ascontiguousarray(np.asarray(values, dtype).reshape(-1))


def matches_record(
    result: MatchResult,
    header: Any,
    reference_header: Any,
    *,
    mode: int,
    matcher: str,
    query_size: Sequence[int],
    reference_size: Sequence[int],
    track_ids: ArrayLike | None = None,
    keyframe: bool = False,
    latency_ms: float = 0.0,
    dropped_frames: int = 0,
    verification: Verification | None = None,
    num_outliers: int = 0,
    learned: bool = True,
) -> MatchesRecord:
    """The Matches record of a MatchResult (query = image 0, reference = image 1).

    verification: the front-end's Verification of these matches (None: not checked).
    """
    record = MatchesRecord(
        header=header,
        reference_header=reference_header,
        mode=int(mode),
        keyframe=bool(keyframe),
        learned=bool(learned),
        query_width=int(query_size[0]),
        query_height=int(query_size[1]),
        reference_width=int(reference_size[0]),
        reference_height=int(reference_size[1]),
        matcher=str(matcher),
        grid_step=float(result.grid_step),
        query_points=flat(result.points0, np.float32),
        reference_points=flat(result.points1, np.float32),
        confidences=flat(result.scores, np.float32),
        query_indices=flat(result.indices0, np.int32),
        reference_indices=flat(result.indices1, np.int32),
        num_outliers=int(num_outliers),
        num_query_keypoints=int(result.num_keypoints0),
        num_reference_keypoints=int(result.num_keypoints1),
        layers_used=int(result.layers_used),
        layers_total=int(result.layers_total),
        extract_ms=float(result.timing_ms.get('extract', 0.0)),
        match_ms=float(result.timing_ms.get('match', 0.0)),
        latency_ms=float(latency_ms),
        dropped_frames=int(dropped_frames),
    )
    if track_ids is not None:
        record.track_ids = flat(track_ids, np.uint64)
    if verification is not None:
        record.geometric_model = verification.model
        record.geometric_status = verification.status
        if verification.rotation is not None:
            record.rotation = flat(verification.rotation, np.float64)
        if verification.translation is not None:
            record.translation = flat(verification.translation, np.float64)
    return record


def output_record(
    output: FrameOutput,
    header: Any,
    reference_header: Any,
    *,
    mode: int,
    matcher: str,
    query_size: Sequence[int],
    reference_size: Sequence[int],
    latency_ms: float = 0.0,
    dropped_frames: int = 0,
) -> MatchesRecord:
    """The Matches record of a front-end FrameOutput (sequential, stereo or pair)."""
    return matches_record(
        output.result,
        header,
        reference_header,
        mode=mode,
        matcher=matcher,
        query_size=query_size,
        reference_size=reference_size,
        track_ids=output.track_ids,
        keyframe=output.keyframe,
        latency_ms=latency_ms,
        dropped_frames=dropped_frames,
        verification=output.verification,
        num_outliers=output.num_outliers,
        learned=output.learned,
    )


def keypoints_record(
    header: Any,
    image_size: Sequence[int],
    extractor: str,
    keypoints: ArrayLike,
    scores: ArrayLike,
    descriptors: np.ndarray | None = None,
) -> KeypointsRecord:
    """The Keypoints record; descriptors are included only when given and not empty."""
    record = KeypointsRecord(
        header=header,
        width=int(image_size[0]),
        height=int(image_size[1]),
        extractor=str(extractor),
        keypoints=flat(keypoints, np.float32),
        scores=flat(scores, np.float32),
    )
    if descriptors is not None and len(descriptors):
        record.descriptor_dim = int(np.shape(descriptors)[1])
        record.descriptors = flat(descriptors, np.float32)
    return record


def features_record(
    header: Any, features: Features, extractor: str, descriptors: bool
) -> KeypointsRecord:
    """The Keypoints record of a Features (torch tensors on any device)."""
    return keypoints_record(
        header,
        features.image_size,
        extractor,
        features.keypoints.float().cpu().numpy(),
        features.scores.float().cpu().numpy(),
        features.descriptors.float().cpu().numpy() if descriptors else None,
    )


def message_fields(
    record: Any, *, array: Callable[[np.ndarray], Any], header: Callable[[Any], Any] | None = None
) -> dict[str, Any]:
    """{field name: value} of a record for a message constructor.

    array converts each numpy field (to array.array for rclpy, as is for rosbags), header each
    header field (None: as it is).
    """
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if isinstance(value, np.ndarray):
            value = array(value)
        elif f.name in HEADER_FIELDS and header is not None:
            value = header(value)
        out[f.name] = value
    return out


__all__ = [
    'KeypointsRecord',
    'MODE_PAIR',
    'MODE_SEQUENTIAL',
    'MODE_STEREO',
    'MatchesRecord',
    'features_record',
    'flat',
    'keypoints_record',
    'matches_record',
    'message_fields',
    'output_record',
]
