"""Numpy <-> glue_ros message fields, fast: flat arrays go in as array.array, never per element.

rclpy's generated setters accept an array.array of the field's type without looking at each
element; a list or a numpy array is checked element by element, which costs milliseconds for a
few thousand matches.
"""

from __future__ import annotations

import array
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from std_msgs.msg import Header

from glue_ros.core.types import MatchResult
from glue_ros.frontend import records
from glue_ros.msg import Keypoints, Matches

# array.array type codes of the message field types.
_CODES = {np.float32: 'f', np.float64: 'd', np.int32: 'i', np.uint64: 'Q'}


def to_array(values: ArrayLike, dtype: type) -> array.array:
    """A flat array.array of `values` converted to `dtype` (float32, float64, int32, uint64)."""
    flat = np.ascontiguousarray(np.asarray(values, dtype=dtype).reshape(-1))
    out = array.array(_CODES[dtype])
    out.frombytes(flat.tobytes())
    return out


def from_array(field: array.array | Sequence, dtype: type, columns: int = 0) -> np.ndarray:
    """A numpy view of a message array field (a copy only when the field is a list)."""
    out = (
        np.frombuffer(field, dtype=dtype)
        if isinstance(field, array.array)
        else np.asarray(field, dtype=dtype)
    )
    return out.reshape(-1, columns) if columns else out


def array_field(values: np.ndarray) -> array.array:
    """A record's numpy field as the array.array rclpy takes without checking each element."""
    return to_array(values, values.dtype.type)


def to_message(record: records.KeypointsRecord | records.MatchesRecord) -> Keypoints | Matches:
    """The rclpy message of a front-end record (glue_ros.frontend.records)."""
    cls = Keypoints if isinstance(record, records.KeypointsRecord) else Matches
    return cls(**records.message_fields(record, array=array_field))


def keypoints_message(
    header: Header,
    image_size: Sequence[int],
    extractor: str,
    keypoints: ArrayLike,
    scores: ArrayLike,
    descriptors: ArrayLike | None = None,
) -> Keypoints:
    """Keypoints message; descriptors are included only when given."""
    return to_message(
        records.keypoints_record(header, image_size, extractor, keypoints, scores, descriptors)
    )


def matches_message(
    result: MatchResult, header: Header, reference_header: Header, **fields: Any
) -> Matches:
    """Matches message from a MatchResult (query = image 0, reference = image 1).

    ``fields``: the keyword arguments of :func:`glue_ros.frontend.records.matches_record`.
    """
    return to_message(records.matches_record(result, header, reference_header, **fields))


def matches_arrays(msg: Matches) -> dict:
    """The per-match arrays of a Matches message as numpy arrays (points as (M, 2))."""
    return {
        'query_points': from_array(msg.query_points, np.float32, 2),
        'reference_points': from_array(msg.reference_points, np.float32, 2),
        'confidences': from_array(msg.confidences, np.float32),
        'query_indices': from_array(msg.query_indices, np.int32),
        'reference_indices': from_array(msg.reference_indices, np.int32),
        'track_ids': from_array(msg.track_ids, np.uint64),
    }
