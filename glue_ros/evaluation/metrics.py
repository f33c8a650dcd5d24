"""What a SLAM back-end cares about, measured: homography and pose accuracy, track quality.

The estimators here are the evaluation's own and the same for every pipeline (OpenCV's USAC
MAGSAC++, a deterministic robust estimator with local optimisation), as in the SuperGlue /
LightGlue evaluations: what differs between pipelines is only the matches they hand over.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import cv2
import numpy as np
from numpy.typing import ArrayLike

from glue_ros.evaluation.sequence_truth import VioSequence
from glue_ros.testing import real_images

# numpy 2 renamed trapz; numpy 1.x (system ROS 2 on Ubuntu 22.04 / 24.04) has only the old name.
_trapezoid = getattr(np, 'trapezoid', None) or np.trapz
HOMOGRAPHY_THRESHOLDS = (1.0, 3.0, 5.0)  # pixels of mean corner error
POSE_THRESHOLDS = (5.0, 10.0, 20.0)  # degrees
RANSAC_PX = 3.0  # HPatches homography RANSAC threshold (pixels)
POSE_RANSAC_PX = 1.0  # essential-matrix RANSAC threshold (pixels)
CONSISTENT_PX = 2.0  # one physical point: within this many pixels
CHEIRALITY_BASELINES = 1e4  # recoverPose: farthest voting point, in baselines
# A sequence with truth: homographies (real_images.Sequence) or a VioSequence.
TruthSequence = real_images.Sequence | VioSequence


def auc(errors: Iterable[float], thresholds: Iterable[float]) -> list:
    """Area under the recall curve of `errors` up to each threshold, in [0, 1].

    The SuperGlue / LightGlue definition: errors sorted, recall = rank / N, integrated from 0
    to the threshold and divided by it. A failed estimate counts as an infinite error.
    """
    errors = np.sort(np.asarray(errors, np.float64))
    recall = (np.arange(len(errors)) + 1) / len(errors)
    errors = np.r_[0.0, errors]
    recall = np.r_[0.0, recall]
    out = []
    for threshold in thresholds:
        last = np.searchsorted(errors, threshold)
        x = np.r_[errors[:last], threshold]
        y = np.r_[recall[:last], recall[last - 1]]
        out.append(float(_trapezoid(y, x) / threshold))
    return out


def corner_error(H_estimated: np.ndarray | None, H_true: np.ndarray, size: Sequence[int]) -> float:
    """Mean distance (pixels) of the image corners mapped by the estimate and by the truth."""
    if H_estimated is None:
        return np.inf
    w, h = size
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)
    a = real_images.apply_homography(H_estimated, corners)
    b = real_images.apply_homography(H_true, corners)
    return float(np.mean(np.linalg.norm(a - b, axis=1)))


def estimate_homography(points0: ArrayLike, points1: ArrayLike) -> np.ndarray | None:
    """H (image0 -> image1) by RANSAC, or None with fewer than 4 matches."""
    if len(points0) < 4:
        return None
    H, _ = cv2.findHomography(
        np.float64(points0),
        np.float64(points1),
        cv2.USAC_MAGSAC,
        RANSAC_PX,
        maxIters=10000,
        confidence=0.9999,
    )
    return H


def angle_between(R_a: np.ndarray, R_b: np.ndarray) -> float:
    """Angle of the rotation R_a^T R_b, degrees."""
    cos = (np.trace(R_a.T @ R_b) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def pose_errors(
    points0: ArrayLike, points1: ArrayLike, K: np.ndarray, R_true: np.ndarray, t_true: np.ndarray
) -> tuple[float, float]:
    """(rotation error, translation-direction error) in degrees of the estimated pose.

    points0 are in the query image, points1 in the reference, X_query = R X_reference + t.
    Both are infinite where no pose can be estimated (fewer than 5 matches, no model).
    """
    if len(points0) < 5:
        return np.inf, np.inf
    E, mask = cv2.findEssentialMat(
        np.float64(points1), np.float64(points0), K, cv2.USAC_MAGSAC, 0.9999, POSE_RANSAC_PX
    )
    if E is None or E.shape != (3, 3):
        return np.inf, np.inf
    # Points farther than distanceThresh baselines do not vote in the cheirality test; at
    # OpenCV's usual 50, views a camera's hand-held motion apart (depth ~100 baselines) would
    # have no votes and get an arbitrary one of the four poses.
    _, R, t, _, _ = cv2.recoverPose(
        E,
        np.float64(points1),
        np.float64(points0),
        K,
        distanceThresh=CHEIRALITY_BASELINES,
        mask=mask,
    )
    t = t.reshape(3)
    cos = np.dot(t, t_true) / (np.linalg.norm(t) * np.linalg.norm(t_true))
    t_error = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return angle_between(R, R_true), t_error


def pose_error(
    points0: ArrayLike, points1: ArrayLike, K: np.ndarray, R_true: np.ndarray, t_true: np.ndarray
) -> float:
    """max(rotation error, translation-direction error) in degrees (see pose_errors)."""
    return max(pose_errors(points0, points1, K, R_true, t_true))


def map_points(
    sequence: TruthSequence, k: int, points: ArrayLike, j: int
) -> tuple[np.ndarray, np.ndarray]:
    """(points of frame k mapped into frame j by the truth, True where the truth is known).

    Sequences whose truth is depth and pose (or that know where it is missing) map their own
    (``map_points``); homography sequences map through ``relative`` everywhere.
    """
    if hasattr(sequence, 'map_points'):
        return sequence.map_points(k, points, j)
    mapped = real_images.apply_homography(sequence.relative(k, j), points)
    return mapped, np.ones(len(mapped), bool)


def track_metrics(
    frames: list, sequence: TruthSequence, size: Sequence[int], grid: int = 8
) -> dict:
    """Track quality of a sequence of (frame index, points (M, 2), track ids (M,)) with truth.

    Consistency: the share of ids with 3+ observations of known truth whose observations,
    mapped by the truth into the frame of the first of them, lie within CONSISTENT_PX of
    their median (one physical point); observations where the truth is unknown (holes of a
    rendered view, depth edges, off the photograph) are left out. Length: observations per id.
    Coverage: share of a grid x grid partition of the image with a tracked point, per frame.
    """
    seen = {}
    matches, coverage = [], []
    for index, points, ids in frames:
        points = np.asarray(points, np.float64).reshape(-1, 2)
        tracked = np.asarray(ids) > 0
        matches.append(int(tracked.sum()))
        for (x, y), track in zip(points[tracked], np.asarray(ids)[tracked]):
            seen.setdefault(int(track), []).append((index, (x, y)))
        coverage.append(grid_coverage(points[tracked], size, grid))
    lengths = np.array([len(v) for v in seen.values()]) if seen else np.zeros(1)
    track, mapped = in_first_frames(sequence, seen)
    consistent = list(one_point(track, mapped).values())
    offsets = first_offsets(track, mapped)
    return {
        'tracks': len(seen),
        'consistency': float(np.mean(consistent)) if consistent else 0.0,
        'consistency_checked': len(consistent),
        'mean_length': float(lengths.mean()),
        'median_length': float(np.median(lengths)),
        'tracks_10_frames': int((lengths >= 10).sum()),
        'matches_per_frame': float(np.mean(matches)) if matches else 0.0,
        'coverage': float(np.mean(coverage)) if coverage else 0.0,
        'offset_median': float(np.median(offsets)) if len(offsets) else 0.0,
        'offset_over_3px': float(np.mean(offsets > 3.0)) if len(offsets) else 0.0,
    }


def grid_coverage(points: np.ndarray, size: Sequence[int], grid: int = 8) -> float:
    """Share of the cells of a grid x grid partition of the image with a point in them."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    cx = np.clip((points[:, 0] * grid / size[0]).astype(int), 0, grid - 1)
    cy = np.clip((points[:, 1] * grid / size[1]).astype(int), 0, grid - 1)
    return len(set(zip(cx.tolist(), cy.tolist()))) / grid**2


def in_first_frames(sequence: TruthSequence, tracks: dict) -> tuple[np.ndarray, np.ndarray]:
    """(id, position in the frame of the id's first known observation) of each observation.

    `tracks`: id -> [(frame, (x, y)), ...] in frame order. Observations where the truth is
    unknown are NaN. Batched per frame pair: a rendered view's truth is a depth lookup a call.
    """
    rows = [
        (k, track, x, y) for track, observations in tracks.items() for k, (x, y) in observations
    ]
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 2))
    frame = np.array([r[0] for r in rows])
    track = np.array([r[1] for r in rows])
    points = np.array([(r[2], r[3]) for r in rows], np.float64)
    known = np.zeros(len(rows), bool)
    for k in np.unique(frame):
        sel = np.flatnonzero(frame == k)
        known[sel] = map_points(sequence, int(k), points[sel], int(k))[1]
    first = {}
    for k, t in zip(frame[known], track[known]):
        first.setdefault(int(t), int(k))
    target = np.array([first.get(int(t), -1) for t in track])
    mapped = np.full(points.shape, np.nan)
    for k, j in set(zip(frame[known].tolist(), target[known].tolist())):
        sel = np.flatnonzero(known & (frame == k) & (target == j))
        out, ok = map_points(sequence, k, points[sel], j)
        mapped[sel[ok]] = out[ok]
    return track, mapped


def _groups(track: np.ndarray, mapped: np.ndarray) -> list:
    """(id, its known positions in its first frame, first one first) of each id."""
    finite = np.isfinite(mapped[:, 0])
    track, mapped = track[finite], mapped[finite]
    order = np.argsort(track, kind='stable')
    track, mapped = track[order], mapped[order]
    bounds = np.flatnonzero(np.diff(track)) + 1
    for ids, own in zip(np.split(track, bounds), np.split(mapped, bounds)):
        if len(ids):
            yield int(ids[0]), own


def one_point(track: np.ndarray, mapped: np.ndarray) -> dict:
    """id -> whether its known observations lie within CONSISTENT_PX of their median.

    Ids with fewer than 3 observations of known truth are left out (nothing to decide on).
    """
    result = {}
    for t, own in _groups(track, mapped):
        if len(own) >= 3:
            spread = np.linalg.norm(own - np.median(own, axis=0), axis=1)
            result[t] = bool(np.max(spread) <= CONSISTENT_PX)
    return result


def first_offsets(track: np.ndarray, mapped: np.ndarray) -> np.ndarray:
    """Distances (pixels) of each later known observation from the id's first one."""
    out = [np.linalg.norm(own[1:] - own[0], axis=1) for _, own in _groups(track, mapped)]
    return np.concatenate(out) if out else np.zeros(0)


__all__ = [
    'auc',
    'corner_error',
    'estimate_homography',
    'pose_error',
    'pose_errors',
    'track_metrics',
    'grid_coverage',
    'one_point',
    'first_offsets',
    'in_first_frames',
    'map_points',
    'angle_between',
    'HOMOGRAPHY_THRESHOLDS',
    'POSE_THRESHOLDS',
    'CONSISTENT_PX',
]
