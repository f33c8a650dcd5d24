"""Numpy <-> glue_ros message fields, fast: flat arrays go in as array.array, never per element.

rclpy's generated setters accept an array.array of the field's type without looking at each
element; a list or a numpy array is checked element by element, which costs milliseconds for a
few thousand matches.
"""
from __future__ import annotations

import array

import numpy as np

from glue_ros.core.types import MatchResult
from glue_ros.msg import Keypoints, Matches

# array.array type codes of the message field types.
_CODES = {np.float32: 'f', np.float64: 'd', np.int32: 'i', np.uint64: 'Q'}


def to_array(values, dtype) -> array.array:
    """A flat array.array of `values` converted to `dtype` (float32, float64, int32, uint64)."""
    flat = np.ascontiguousarray(np.asarray(values, dtype=dtype).reshape(-1))
    out = array.array(_CODES[dtype])
    out.frombytes(flat.tobytes())
    return out


def from_array(field, dtype, columns: int = 0) -> np.ndarray:
    """A numpy view of a message array field (a copy only when the field is a list)."""
    out = np.frombuffer(field, dtype=dtype) if isinstance(field, array.array) \
        else np.asarray(field, dtype=dtype)
    return out.reshape(-1, columns) if columns else out


def keypoints_message(header, image_size, extractor: str, keypoints, scores,
                      descriptors=None) -> Keypoints:
    """Keypoints message; descriptors are included only when given."""
    msg = Keypoints()
    msg.header = header
    msg.width, msg.height = (int(v) for v in image_size)
    msg.extractor = extractor
    msg.keypoints = to_array(keypoints, np.float32)
    msg.scores = to_array(scores, np.float32)
    if descriptors is not None and len(descriptors):
        msg.descriptor_dim = int(np.shape(descriptors)[1])
        msg.descriptors = to_array(descriptors, np.float32)
    return msg


def matches_message(result: MatchResult, header, reference_header, *, mode: int,
                    matcher: str, query_size, reference_size, grid_step: float = 0.0,
                    track_ids=None, keyframe: bool = False, latency_ms: float = 0.0,
                    dropped_frames: int = 0, verification=None, num_outliers: int = 0,
                    learned: bool = True) -> Matches:
    """Matches message from a MatchResult (query = image 0, reference = image 1).

    verification: the front-end's Verification of these matches (None: not checked).
    """
    msg = Matches()
    msg.header = header
    msg.reference_header = reference_header
    msg.mode = mode
    msg.keyframe = bool(keyframe)
    msg.learned = bool(learned)
    msg.query_width, msg.query_height = (int(v) for v in query_size)
    msg.reference_width, msg.reference_height = (int(v) for v in reference_size)
    msg.matcher = matcher
    msg.grid_step = float(grid_step)
    msg.query_points = to_array(result.points0, np.float32)
    msg.reference_points = to_array(result.points1, np.float32)
    msg.confidences = to_array(result.scores, np.float32)
    msg.query_indices = to_array(result.indices0, np.int32)
    msg.reference_indices = to_array(result.indices1, np.int32)
    if track_ids is not None:
        msg.track_ids = to_array(track_ids, np.uint64)
    msg.num_query_keypoints = int(result.num_keypoints0)
    msg.num_reference_keypoints = int(result.num_keypoints1)
    msg.layers_used = int(result.layers_used)
    msg.layers_total = int(result.layers_total)
    msg.extract_ms = float(result.timing_ms.get('extract', 0.0))
    msg.match_ms = float(result.timing_ms.get('match', 0.0))
    msg.latency_ms = float(latency_ms)
    msg.dropped_frames = int(dropped_frames)
    msg.num_outliers = int(num_outliers)
    if verification is None:
        msg.geometric_model, msg.geometric_status = 'none', 'not_checked'
    else:
        msg.geometric_model, msg.geometric_status = verification.model, verification.status
        if verification.rotation is not None:
            msg.rotation = to_array(verification.rotation, np.float64)
        if verification.translation is not None:
            msg.translation = to_array(verification.translation, np.float64)
    return msg


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
