"""Pixel -> normalized camera coordinates from a CameraInfo, and stereo epipolar checks.

Free of ROS so that the node, the bag tool and the tests share it: a CameraModel is built from
any object with CameraInfo's fields (an rclpy or rosbags message, ROS 1's upper-case D/K/R/P
included) or from a dict with those keys.

Two kinds of image are handled, because a SLAM front-end sees both:
- raw images (`rectified=False`): pixels are undistorted with K and the distortion model and
  the result is in the camera's own frame, which is what VINS-Fusion expects on `image_raw`;
- rectified images (`rectified=True`, e.g. `image_rect` of a stereo pair): pixels already obey
  the ideal pinhole P, so normalization only uses P (no distortion) and the result is in the
  rectified frame. The epipolar check of a stereo pair is only meaningful there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import ArrayLike

from glue_ros.core.errors import CameraModelError
from glue_ros.core.types import MatchResult

DISTORTION_MODELS = ('plumb_bob', 'rational_polynomial', 'equidistant')

# Iterative undistortion stops far below a thousandth of a pixel: the default of OpenCV's
# pinhole undistortion (5 iterations) leaves errors of a pixel and more on wide lenses.
_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
# Coefficient counts cv2.undistortPoints accepts; shorter vectors are zero-padded up to one.
_PINHOLE_LENGTHS = (4, 5, 8, 12, 14)


def _field(info: object, *names: str) -> Any:
    """The first of `names` that `info` (object or mapping) has, else None."""
    for name in names:
        if isinstance(info, dict):
            if name in info:
                return info[name]
        elif hasattr(info, name):
            return getattr(info, name)
    return None


def _matrix(values: ArrayLike | None, shape: tuple[int, int], name: str) -> np.ndarray:
    array = np.asarray(values if values is not None else [], np.float64).reshape(-1)
    if array.size != shape[0] * shape[1]:
        raise CameraModelError(
            f'{name} has {array.size} values, expected '
            f'{shape[0] * shape[1]} ({shape[0]}x{shape[1]})'
        )
    return array.reshape(shape)


@dataclass
class CameraModel:
    """A calibrated camera: turns matched pixels into the normalized coordinates VIO wants.

    K: 3x3 intrinsics, d: distortion coefficients of `distortion_model`, R: 3x3 rectification
    rotation, P: 3x4 projection of the rectified image. camera_id is the index the camera has
    in a multi-camera estimator (VINS-Fusion: 0 left, 1 right).
    """

    width: int
    height: int
    distortion_model: str
    d: np.ndarray
    K: np.ndarray
    R: np.ndarray
    P: np.ndarray
    camera_id: int = 0
    rectified: bool = False

    def __post_init__(self) -> None:
        self.K = _matrix(self.K, (3, 3), 'K')
        self.R = _matrix(self.R, (3, 3), 'R') if np.size(self.R) else np.eye(3)
        self.P = _matrix(self.P, (3, 4), 'P') if np.size(self.P) else np.zeros((3, 4))
        self.d = np.asarray(self.d if self.d is not None else [], np.float64).reshape(-1)
        self.width, self.height = int(self.width), int(self.height)
        self.camera_id = int(self.camera_id)
        model = self.distortion_model
        if model in ('', 'none') and not np.any(self.d):
            # Drivers of already rectified or ideal cameras often leave the model empty.
            model = 'plumb_bob'
        if model not in DISTORTION_MODELS:
            raise CameraModelError(
                f'unsupported distortion_model {self.distortion_model!r}; '
                f'supported: {", ".join(DISTORTION_MODELS)}'
            )
        self.distortion_model = model
        if model == 'equidistant' and self.d.size not in (0, 4):
            raise CameraModelError(
                f'equidistant distortion needs 4 coefficients (k1..k4), got {self.d.size}'
            )
        if model != 'equidistant' and self.d.size > 14:
            raise CameraModelError(
                f'{model} distortion has {self.d.size} coefficients; OpenCV takes at most 14'
            )
        intrinsics = self.P if self.rectified else self.K
        name = 'P' if self.rectified else 'K'
        if intrinsics[0, 0] == 0.0 or intrinsics[1, 1] == 0.0:
            raise CameraModelError(
                f'focal length is zero in {name} (fx={intrinsics[0, 0]}, fy={intrinsics[1, 1]})'
                f': the camera is not calibrated'
            )

    @classmethod
    def from_camera_info(
        cls, info: object, camera_id: int = 0, rectified: bool = False
    ) -> CameraModel:
        """Model of a sensor_msgs/CameraInfo (ROS 1 or 2, any message object) or dict."""
        fields = {
            'width': ('width',),
            'height': ('height',),
            'distortion_model': ('distortion_model',),
            'd': ('d', 'D'),
            'K': ('k', 'K'),
            'R': ('r', 'R'),
            'P': ('p', 'P'),
        }
        values = {key: _field(info, *names) for key, names in fields.items()}
        missing = [key for key in ('width', 'height', 'K') if values[key] is None]
        if missing:
            raise CameraModelError(f'not a CameraInfo: no {", ".join(missing)}')
        values['distortion_model'] = values['distortion_model'] or ''
        return cls(**values, camera_id=camera_id, rectified=rectified)

    @property
    def intrinsics(self) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) of the pixels this model normalizes (P when rectified, else K)."""
        m = self.P if self.rectified else self.K
        return float(m[0, 0]), float(m[1, 1]), float(m[0, 2]), float(m[1, 2])

    def normalize(self, points_px: ArrayLike) -> np.ndarray:
        """(N, 2) normalized coordinates x = X/Z, y = Y/Z of (N, 2) or flat pixel points.

        Non-finite input rows give NaN rows, so that callers can keep their match order.
        """
        points = np.asarray(points_px, np.float64).reshape(-1, 2)
        out = np.full(points.shape, np.nan)
        finite = np.isfinite(points).all(axis=1)
        if not finite.any():
            return out
        src = points[finite]
        if self.rectified:
            fx, fy, cx, cy = self.intrinsics
            skew = self.P[0, 1]
            y = (src[:, 1] - cy) / fy
            out[finite] = np.stack([(src[:, 0] - cx - skew * y) / fx, y], axis=1)
            return out
        if self.distortion_model == 'equidistant':
            out[finite] = _undistort_fisheye(src, self.K, self.d)
        else:
            out[finite] = _undistort_pinhole(src, self.K, self.d)
        return out


def _undistort_pinhole(points: np.ndarray, K: np.ndarray, d: np.ndarray) -> np.ndarray:
    if not np.any(d):
        skew = K[0, 1]
        y = (points[:, 1] - K[1, 2]) / K[1, 1]
        return np.stack([(points[:, 0] - K[0, 2] - skew * y) / K[0, 0], y], axis=1)
    length = next(n for n in _PINHOLE_LENGTHS if n >= d.size)
    coeffs = np.zeros(length)
    coeffs[: d.size] = d
    src = points.reshape(-1, 1, 2)
    dst: np.ndarray
    if hasattr(cv2, 'undistortPointsIter'):  # OpenCV 4: criteria only on the Iter variant
        dst = cv2.undistortPointsIter(src, K, coeffs, np.eye(3), np.eye(3), _CRITERIA)
    else:  # OpenCV 5 merged the two
        dst = cv2.undistortPoints(src, K, coeffs, R=np.eye(3), P=np.eye(3), criteria=_CRITERIA)
    return dst.reshape(-1, 2)


def _undistort_fisheye(points: np.ndarray, K: np.ndarray, d: np.ndarray) -> np.ndarray:
    coeffs = np.zeros(4)
    coeffs[: d.size] = d
    src = points.reshape(-1, 1, 2)
    dst = cv2.fisheye.undistortPoints(src, K, coeffs, R=np.eye(3), P=np.eye(3), criteria=_CRITERIA)
    return dst.reshape(-1, 2)


def epipolar_errors(
    left_points: ArrayLike, right_points: ArrayLike, min_disparity: float | None = None
) -> np.ndarray:
    """|y_left - y_right| in pixels of each match of a RECTIFIED stereo pair, shape (M,).

    In a rectified pair a true match lies on the same row, so the row difference is the match's
    error. With `min_disparity` set (0.0: reject x_right > x_left, a point behind the cameras),
    matches whose disparity x_left - x_right is below it get an error of +inf, so one threshold
    drops both kinds. For coarse LoFTR, whose points sit on a grid of `grid_step` pixels, pass
    thresholds of at least grid_step (and min_disparity=-grid_step).
    """
    left = np.asarray(left_points, np.float64).reshape(-1, 2)
    right = np.asarray(right_points, np.float64).reshape(-1, 2)
    if left.shape != right.shape:
        raise ValueError(f'{len(left)} left points but {len(right)} right points')
    errors = np.abs(left[:, 1] - right[:, 1])
    if min_disparity is not None:
        errors[left[:, 0] - right[:, 0] < min_disparity] = np.inf
    return errors


def filter_stereo_matches(
    result: MatchResult, max_error_px: float, min_disparity: float | None = 0.0
) -> tuple[MatchResult, np.ndarray]:
    """(the matches of a rectified left/right result within max_error_px, the kept mask).

    The node and the bag tool drop outliers with this before publishing; the order of the kept
    matches (descending confidence) is preserved.
    """
    keep = epipolar_errors(result.points0, result.points1, min_disparity) <= max_error_px
    return result.subset(keep), keep


__all__ = [
    'CameraModel',
    'CameraModelError',
    'DISTORTION_MODELS',
    'epipolar_errors',
    'filter_stereo_matches',
]
