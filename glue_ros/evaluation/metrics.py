"""What a SLAM back-end cares about, measured: homography and pose accuracy, track quality.

The estimators here are the evaluation's own and the same for every pipeline (OpenCV's USAC
MAGSAC++, a deterministic robust estimator with local optimisation), as in the SuperGlue /
LightGlue evaluations: what differs between pipelines is only the matches they hand over.
"""
from __future__ import annotations

import cv2
import numpy as np

from glue_ros.testing import real_images

# numpy 2 renamed trapz; numpy 1.x (system ROS 2 on Ubuntu 22.04 / 24.04) has only the old name.
_trapezoid = getattr(np, 'trapezoid', None) or getattr(np, 'trapz')
HOMOGRAPHY_THRESHOLDS = (1.0, 3.0, 5.0)     # pixels of mean corner error
POSE_THRESHOLDS = (5.0, 10.0, 20.0)         # degrees
RANSAC_PX = 3.0                             # HPatches homography RANSAC threshold (pixels)
POSE_RANSAC_PX = 1.0                        # essential-matrix RANSAC threshold (pixels)
CONSISTENT_PX = 2.0                         # one physical point: within this many pixels


def auc(errors, thresholds) -> list:
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


def corner_error(H_estimated, H_true, size) -> float:
    """Mean distance (pixels) of the image corners mapped by the estimate and by the truth."""
    if H_estimated is None:
        return np.inf
    w, h = size
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float64)
    a = real_images.apply_homography(H_estimated, corners)
    b = real_images.apply_homography(H_true, corners)
    return float(np.mean(np.linalg.norm(a - b, axis=1)))


def estimate_homography(points0, points1):
    """H (image0 -> image1) by RANSAC, or None with fewer than 4 matches."""
    if len(points0) < 4:
        return None
    H, _ = cv2.findHomography(np.float64(points0), np.float64(points1), cv2.USAC_MAGSAC,
                              RANSAC_PX, maxIters=10000, confidence=0.9999)
    return H


def angle_between(R_a, R_b) -> float:
    """Angle of the rotation R_a^T R_b, degrees."""
    cos = (np.trace(R_a.T @ R_b) - 1) / 2
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def pose_error(points0, points1, K, R_true, t_true) -> float:
    """max(rotation error, translation-direction error) in degrees of the estimated pose.

    points0 are in the query image, points1 in the reference, X_query = R X_reference + t.
    """
    if len(points0) < 5:
        return np.inf
    E, mask = cv2.findEssentialMat(np.float64(points1), np.float64(points0), K,
                                   cv2.USAC_MAGSAC, 0.9999, POSE_RANSAC_PX)
    if E is None or E.shape != (3, 3):
        return np.inf
    _, R, t, _ = cv2.recoverPose(E, np.float64(points1), np.float64(points0), K, mask=mask)
    t = t.reshape(3)
    cos = np.dot(t, t_true) / (np.linalg.norm(t) * np.linalg.norm(t_true))
    t_error = float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return max(angle_between(R, R_true), t_error)


def track_metrics(frames: list, sequence, size, grid: int = 8) -> dict:
    """Track quality of a sequence of (frame index, points (M, 2), track ids (M,)) with truth.

    Consistency: the share of ids seen 3+ times whose observations, mapped by the truth into
    the frame of their first one, lie within CONSISTENT_PX of their median (one physical
    point). Length: observations per id. Coverage: share of a grid x grid partition of the
    image with a tracked point, per frame.
    """
    seen = {}
    matches, coverage = [], []
    for index, points, ids in frames:
        points = np.asarray(points, np.float64).reshape(-1, 2)
        tracked = np.asarray(ids) > 0
        matches.append(int(tracked.sum()))
        cells = set()
        for (x, y), track in zip(points[tracked], np.asarray(ids)[tracked]):
            seen.setdefault(int(track), []).append((index, (x, y)))
            cells.add((min(int(x * grid / size[0]), grid - 1),
                       min(int(y * grid / size[1]), grid - 1)))
        coverage.append(len(cells) / grid ** 2)
    lengths = np.array([len(v) for v in seen.values()]) if seen else np.zeros(1)
    consistent = []
    for observations in seen.values():
        if len(observations) < 3:
            continue
        first = observations[0][0]
        mapped = np.array([real_images.apply_homography(sequence.relative(k, first), p)
                           for k, p in observations]).reshape(-1, 2)
        spread = np.linalg.norm(mapped - np.median(mapped, axis=0), axis=1)
        consistent.append(bool(np.max(spread) <= CONSISTENT_PX))
    return {'tracks': len(seen), 'consistency': float(np.mean(consistent)) if consistent else 0.0,
            'mean_length': float(lengths.mean()), 'median_length': float(np.median(lengths)),
            'tracks_10_frames': int((lengths >= 10).sum()),
            'matches_per_frame': float(np.mean(matches)) if matches else 0.0,
            'coverage': float(np.mean(coverage)) if coverage else 0.0}


__all__ = ['auc', 'corner_error', 'estimate_homography', 'pose_error', 'track_metrics',
           'angle_between', 'HOMOGRAPHY_THRESHOLDS', 'POSE_THRESHOLDS']
