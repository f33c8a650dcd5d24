"""Hybrid tracking at a learned frame: the tracks the flow still follows merged into its matches.

Between learned frames the flow (:mod:`glue_ros.frontend.flow`) carries the track ids; a learned
frame matches anew, so the two sets overlap. One id is one point: where the learned match and the
flow place a track far apart, one of them left the point and the id is retired. Tracks only the
flow still follows go on, verified against where they stood at the last learned frame, through
at most FLOW_MAX_UNCONFIRMED learned frames without a learned match to confirm them (the flow
drifts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from glue_ros.frontend import geometry
from glue_ros.frontend.flow import FlowTracker
from glue_ros.frontend.geometry import Verification
from glue_ros.frontend.tracks import TrackManager

if TYPE_CHECKING:  # frontend imports this module
    from glue_ros.frontend.output import FrameOutput

# On a learned frame, a track the flow and the learned matcher place more than this many pixels
# apart is on two different points by one of them: its id is retired (never reused).
FLOW_AGREEMENT_PX = 2.0
# A track followed by flow alone goes on through this many learned frames at most before a
# learned match must confirm it: LK drifts by a fraction of a pixel a frame, and only a learned
# match puts a point back on its keypoint.
FLOW_MAX_UNCONFIRMED = 1

# (query points, reference points, check or None for the configured one) -> their verification
Verify = Callable[[np.ndarray, np.ndarray, str | None], Verification]


def merge_flow(
    output: FrameOutput, flow: FlowTracker, tracks: TrackManager, verify: Verify
) -> tuple[FrameOutput, np.ndarray]:
    """(the output with the flow's tracks merged in, learned frames unconfirmed per match)."""
    ids = output.track_ids
    assert ids is not None  # a sequential output: every match has its track id
    flow_ids, flow_points, origins = flow.ids, flow.points, flow.origins
    if len(flow_ids) == 0:
        return output, np.zeros(len(ids), np.int64)
    points = output.result.points0
    # Both: agree, or retire the id.
    where = {int(i): k for k, i in enumerate(flow_ids)}
    both = np.array([int(i) in where for i in ids], np.bool_) & (ids > 0)
    at = np.array([where[int(i)] for i in ids[both]], np.int64)
    apart = np.linalg.norm(points[both] - flow_points[at], axis=1) > FLOW_AGREEMENT_PX
    retired = ids[both][apart]
    if len(retired):
        tracks.retire(retired)
        ids = ids.copy()
        ids[np.isin(ids, retired)] = 0
    # Only the flow: verified against their places at the last learned frame.
    only = np.flatnonzero(
        ~np.isin(flow_ids, ids)
        & ~np.isin(flow_ids, retired)
        & (flow.unconfirmed < FLOW_MAX_UNCONFIRMED)
    )
    if len(only):
        check = 'homography' if output.verification.status == geometry.ROTATION else None
        only = only[verify(flow_points[only], origins[only], check).inliers]
    r = output.result
    none = np.full(len(only), -1, np.int32)
    result = dataclasses.replace(
        r,
        points0=np.concatenate([r.points0, flow_points[only]]).astype(np.float32),
        points1=np.concatenate([r.points1, origins[only]]).astype(np.float32),
        scores=np.concatenate([r.scores, np.ones(len(only), r.scores.dtype)]),
        indices0=np.concatenate([r.indices0, none]).astype(np.int32),
        indices1=np.concatenate([r.indices1, none]).astype(np.int32),
    )
    unconfirmed = np.concatenate([np.zeros(len(ids), np.int64), flow.unconfirmed[only] + 1])
    return dataclasses.replace(
        output, result=result, track_ids=np.concatenate([ids, flow_ids[only]])
    ), unconfirmed


__all__ = ['FLOW_AGREEMENT_PX', 'FLOW_MAX_UNCONFIRMED', 'merge_flow']
