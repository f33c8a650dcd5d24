"""Geometric verification of matches: a robust two-view model fitted, outliers flagged.

A SLAM back-end must not see matches that no camera motion explains. We fit, with OpenCV's
USAC MAGSAC++ (fixed random state, so a run repeats exactly), one of

* ``fundamental``: uncalibrated two-view geometry, threshold in pixels (Sampson distance);
* ``essential``: calibrated (both cameras known, distortion removed), threshold in pixels
  turned into normalized units by the focal length; gives the relative rotation and the
  direction of translation (``cv2.recoverPose``);
* ``homography``: planar scenes or pure rotation;
* ``auto``: essential when both cameras are known, fundamental otherwise.

Why MAGSAC++ of OpenCV rather than poselib: on real pairs both find the same
inliers (within a few matches) and poses within a tenth of a degree, poselib's essential
estimation is about as fast; OpenCV is a dependency already, poselib would add one (see
docs/design.md for the measurement).

Degenerate inputs never raise: too few matches, points on a line, or a near-pure rotation (a
homography explains almost every match the fundamental matrix does, so epipolar geometry and the
translation are not observable) give a status and keep what can be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np
from numpy.typing import ArrayLike

from glue_ros.core.schema import CHECKS

if TYPE_CHECKING:
    from glue_ros.core.camera import CameraModel

# Minimal sample sizes of the solvers, and a margin so that RANSAC has something to verify.
MIN_MATCHES = {'fundamental': 15, 'essential': 10, 'homography': 8}
# A pair counts as rotation-only / planar when a homography, at PLANAR_SCALE times the
# threshold, explains this share of the epipolar inliers (measured: real 3D scenes, the
# Middlebury pair and views rendered from its depth, 19-27%; homography sequences 85-90%, and
# 75-80% with a seventh of the matches wrong). Sampson distances of F let a point slide along
# its epipolar line, so the homography's inliers within PLANAR_KEEP times the threshold are kept
# then: the tighter test (1.5 balances track consistency and length, glue-ros-bench --slam).
ROTATION_SHARE = 0.7
PLANAR_SCALE = 2.0
PLANAR_KEEP = 1.5
# Smallest ratio of the smallest to the largest singular value of a normalized homography for it
# to be taken as a rotation (a camera that rotates only).
ROTATION_SINGULAR_RATIO = 0.98
# Smallest ratio of the point cloud's second to first principal extent for a non-collinear set.
MIN_SPREAD = 1e-3

# Verification statuses, as published in glue_ros/Matches.
OK = 'ok'
NOT_CHECKED = 'not_checked'
TOO_FEW = 'too_few_matches'
COLLINEAR = 'degenerate_collinear'
ROTATION = 'degenerate_rotation'
FAILED = 'estimation_failed'


@dataclass
class Verification:
    """What verification decided for a set of matches (in their order)."""

    status: str  # OK, NOT_CHECKED, TOO_FEW, COLLINEAR, ROTATION, FAILED
    model: str  # 'none', 'fundamental', 'essential', 'homography'
    inliers: np.ndarray  # (M,) bool
    rotation: np.ndarray | None = None  # (3, 3): X_query = R X_reference + t
    translation: np.ndarray | None = None  # (3,) unit vector t
    matrix: np.ndarray | None = None  # the fitted F, E or H (3, 3)

    @property
    def num_inliers(self) -> int:
        """Matches the model explains."""
        return int(self.inliers.sum())

    @staticmethod
    def unchecked(count: int, status: str = NOT_CHECKED, model: str = 'none') -> Verification:
        """Every match kept, nothing fitted."""
        return Verification(status, model, np.ones(count, bool))


def choose_model(check: str, calibrated: bool) -> str:
    """The model `check` asks for, given whether both cameras are known."""
    if check not in CHECKS:
        raise ValueError(f'geometric_check must be one of {", ".join(CHECKS)}, got {check!r}')
    if check == 'auto':
        return 'essential' if calibrated else 'fundamental'
    if check == 'essential' and not calibrated:
        return 'fundamental'
    return check


def _usac(threshold: float, seed: int, max_iters: int, confidence: float) -> cv2.UsacParams:
    params = cv2.UsacParams()
    params.confidence = confidence
    params.maxIterations = max_iters
    params.threshold = threshold
    params.randomGeneratorState = seed
    params.sampler = cv2.SAMPLING_UNIFORM
    params.score = cv2.SCORE_METHOD_MAGSAC
    params.loMethod = cv2.LOCAL_OPTIM_SIGMA
    params.loIterations = 10
    params.loSampleSize = 20
    params.final_polisher = cv2.LSQ_POLISHER
    params.final_polisher_iterations = 3
    params.isParallel = False
    return params


def _mask(mask: ArrayLike | None, count: int) -> np.ndarray:
    if mask is None:
        return np.zeros(count, bool)
    return np.asarray(mask).reshape(-1).astype(bool)[:count]


def _collinear(points: np.ndarray) -> bool:
    centred = points - points.mean(0)
    singular = np.linalg.svd(centred, compute_uv=False)
    return bool(singular[0] == 0 or singular[-1] / singular[0] < MIN_SPREAD)


def verify(
    points0: ArrayLike,
    points1: ArrayLike,
    check: str = 'auto',
    camera0: CameraModel | None = None,
    camera1: CameraModel | None = None,
    threshold_px: float = 1.0,
    seed: int = 0,
    max_iters: int = 2000,
    confidence: float = 0.9999,
) -> Verification:
    """Fit the model `check` asks for to matches query (points0) <-> reference (points1).

    camera0/camera1: CameraModel of the query / reference camera (normalize() removes the
    distortion), or None. threshold_px: inlier threshold in pixels.
    """
    p0 = np.ascontiguousarray(np.asarray(points0, np.float64).reshape(-1, 2))
    p1 = np.ascontiguousarray(np.asarray(points1, np.float64).reshape(-1, 2))
    count = len(p0)
    model = choose_model(check, camera0 is not None and camera1 is not None)
    if model == 'none':
        return Verification.unchecked(count)
    if count < MIN_MATCHES[model]:
        return Verification(TOO_FEW, model, np.zeros(count, bool))
    if _collinear(p0) or _collinear(p1):
        return Verification(COLLINEAR, model, np.zeros(count, bool))
    try:
        if model == 'homography':
            return _homography(p0, p1, threshold_px, seed, max_iters, confidence)
        if model == 'fundamental':
            return _fundamental(p0, p1, threshold_px, seed, max_iters, confidence)
        assert camera0 is not None and camera1 is not None  # choose_model: calibrated
        return _essential(p0, p1, camera0, camera1, threshold_px, seed, max_iters, confidence)
    except cv2.error:
        return Verification(FAILED, model, np.zeros(count, bool))


def _homography(
    p0: np.ndarray, p1: np.ndarray, threshold: float, seed: int, max_iters: int, confidence: float
) -> Verification:
    H, mask = cv2.findHomography(
        p1, p0, mask=None, params=_usac(threshold, seed, max_iters, confidence)
    )
    inliers = _mask(mask, len(p0))
    if H is None or inliers.sum() < MIN_MATCHES['homography']:
        return Verification(FAILED, 'homography', np.zeros(len(p0), bool))
    return Verification(OK, 'homography', inliers, matrix=H)


def _rotation_only(
    p0: np.ndarray,
    p1: np.ndarray,
    inliers: np.ndarray,
    threshold: float,
    seed: int,
    max_iters: int,
    confidence: float,
) -> np.ndarray | None:
    """Homography inliers where a homography explains almost all epipolar inliers, else None.

    No parallax: a rotating camera or a planar scene. The homography is fitted and the test made
    at PLANAR_SCALE times the threshold (robust to keypoint noise); the matches kept are those
    it maps within PLANAR_KEEP times the threshold.
    """
    idx = np.flatnonzero(inliers)
    H, mask = cv2.findHomography(
        p1[idx],
        p0[idx],
        mask=None,
        params=_usac(PLANAR_SCALE * threshold, seed, max_iters, confidence),
    )
    if H is None:
        return None
    kept = _mask(mask, len(idx))
    if kept.sum() < ROTATION_SHARE * len(idx):
        return None
    mapped = cv2.perspectiveTransform(p1[idx].reshape(-1, 1, 2), H).reshape(-1, 2)
    close = np.linalg.norm(mapped - p0[idx], axis=1) <= PLANAR_KEEP * threshold
    planar = np.zeros(len(p0), bool)
    planar[idx[close]] = True
    return planar


def _pure_rotation(n0: np.ndarray, n1: np.ndarray) -> np.ndarray | None:
    """R with n0 ~ R n1 when the normalized homography is a rotation, else None.

    Without translation the homography of normalized points is R up to scale, so its singular
    values are equal; a plane seen under translation gives unequal ones (R is then ambiguous).
    """
    H, _ = cv2.findHomography(n1, n0, 0)
    if H is None:
        return None
    U, S, Vt = np.linalg.svd(H)
    if S[2] / S[0] < ROTATION_SINGULAR_RATIO:
        return None
    R = U @ Vt
    return R if np.linalg.det(R) > 0 else None


def _fundamental(
    p0: np.ndarray, p1: np.ndarray, threshold: float, seed: int, max_iters: int, confidence: float
) -> Verification:
    F, mask = cv2.findFundamentalMat(
        p1, p0, mask=None, params=_usac(threshold, seed, max_iters, confidence)
    )
    inliers = _mask(mask, len(p0))
    if F is None or F.shape != (3, 3) or inliers.sum() < MIN_MATCHES['fundamental']:
        return Verification(FAILED, 'fundamental', np.zeros(len(p0), bool))
    planar = _rotation_only(p0, p1, inliers, threshold, seed, max_iters, confidence)
    if planar is not None:  # F is not determined; the homography's inliers are the tighter set
        return Verification(ROTATION, 'fundamental', planar, matrix=F)
    return Verification(OK, 'fundamental', inliers, matrix=F)


def _essential(
    p0: np.ndarray,
    p1: np.ndarray,
    camera0: CameraModel,
    camera1: CameraModel,
    threshold: float,
    seed: int,
    max_iters: int,
    confidence: float,
) -> Verification:
    n0 = np.asarray(camera0.normalize(p0), np.float64).reshape(-1, 2)
    n1 = np.asarray(camera1.normalize(p1), np.float64).reshape(-1, 2)
    finite = np.isfinite(n0).all(1) & np.isfinite(n1).all(1)
    focal = float(np.mean(camera0.intrinsics[:2] + camera1.intrinsics[:2]))
    inliers = np.zeros(len(p0), bool)
    if finite.sum() < MIN_MATCHES['essential']:
        return Verification(TOO_FEW, 'essential', inliers)
    idx = np.flatnonzero(finite)
    eye, no_distortion = np.eye(3), np.zeros(5)
    E, mask = cv2.findEssentialMat(
        n1[idx],
        n0[idx],
        eye,
        eye,
        no_distortion,
        no_distortion,
        params=_usac(threshold / focal, seed, max_iters, confidence),
    )
    if E is None or E.shape != (3, 3):
        return Verification(FAILED, 'essential', inliers)
    inliers[idx] = _mask(mask, len(idx))
    if inliers.sum() < MIN_MATCHES['essential']:
        return Verification(FAILED, 'essential', inliers)
    planar = _rotation_only(p0, p1, inliers, threshold, seed, max_iters, confidence)
    if planar is not None:  # E is not determined: no translation, a rotation only if pure
        return Verification(
            ROTATION,
            'essential',
            planar,
            rotation=_pure_rotation(n0[planar], n1[planar]),
            matrix=E,
        )
    # R, t with X_query = R X_reference + t (points of the reference camera first).
    _, R, t, _ = cv2.recoverPose(E, n1[inliers], n0[inliers], np.eye(3))
    t = t.reshape(3)
    return Verification(
        OK, 'essential', inliers, rotation=R, translation=t / np.linalg.norm(t), matrix=E
    )


__all__ = [
    'CHECKS',
    'Verification',
    'verify',
    'choose_model',
    'OK',
    'NOT_CHECKED',
    'TOO_FEW',
    'COLLINEAR',
    'ROTATION',
    'FAILED',
]
