"""What is true of a made sequence: where every pixel goes, the poses, the hard stretches.

Apart from the rendering (:mod:`.sequences`) so that the metrics and the tests read the truth
without the renderer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from glue_ros.testing import real_images

# Truth at a sub-pixel point needs its 4 neighbours on one surface: depths within this share.
SMOOTH_DEPTH = 0.02


@dataclass
class Stretch:
    """A hard stretch: frames first..last (inclusive) of a kind ('fast', 'light', 'drop')."""

    kind: str
    first: int
    last: int


@dataclass
class HomographyTruth(real_images.HomographyFrames):
    """Truth of a photo sequence: H[k] maps source (photograph) pixels to frame k pixels."""

    H: list
    source_size: tuple

    def map_points(self, k: int, points: ArrayLike, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(points of frame k seen in frame j, True where they lie on the photograph)."""
        points = np.asarray(points, np.float64).reshape(-1, 2)
        source = real_images.apply_homography(np.linalg.inv(self.H[k]), points)
        w, h = self.source_size
        valid = (
            (source[:, 0] >= 0)
            & (source[:, 0] <= w - 1)
            & (source[:, 1] >= 0)
            & (source[:, 1] <= h - 1)
        )
        return real_images.apply_homography(self.relative(k, j), points), valid


@dataclass
class DepthTruth:
    """Truth of a rendered sequence: intrinsics, poses X_k = R_k X + t_k, depth per frame."""

    K: np.ndarray
    R: list
    t: list
    depth: list  # (h, w) float32 per frame, NaN where there is no known surface

    def map_points(self, k: int, points: ArrayLike, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(points of frame k seen in frame j, True where the truth is known).

        Known: frame k has one surface at the point (no hole, no depth edge) and frame j sees
        that surface there (not occluded, not a hole).
        """
        points = np.asarray(points, np.float64).reshape(-1, 2)
        z = sample_depth(self.depth[k], points)
        valid = np.isfinite(z)
        rays = np.linalg.inv(self.K) @ np.vstack([points.T, np.ones(len(points))])
        X = self.R[k].T @ (rays * np.where(valid, z, 1.0) - self.t[k].reshape(3, 1))
        camera = self.R[j] @ X + self.t[j].reshape(3, 1)
        x = self.K @ camera
        valid &= camera[2] > 0
        mapped = (x[:2] / np.where(valid, x[2], 1.0)).T
        if j != k:
            seen = sample_depth(self.depth[j], mapped)
            with np.errstate(invalid='ignore'):
                valid &= np.abs(seen - camera[2]) <= SMOOTH_DEPTH * camera[2]
        return mapped, valid

    def relative_pose(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(R, t) with X_j = R X_i + t."""
        R = self.R[j] @ self.R[i].T
        return R, self.t[j] - R @ self.t[i]


@dataclass
class VioSequence:
    """Frames of one scene and regime, with their truth and the stretches that are hard."""

    name: str
    scene: str  # 'middlebury' or 'photo'
    regime: str  # 'camera' or 'hard'
    frames: list  # RGB uint8
    stamps: np.ndarray  # seconds (30 Hz; a dropped stretch leaves a gap)
    truth: object  # HomographyTruth or DepthTruth
    K: np.ndarray | None = None  # intrinsics where the scene is 3D
    stretches: list = field(default_factory=list)
    motion_px: np.ndarray = None  # mean image motion from the previous frame (px)

    @property
    def size(self) -> tuple:
        """(width, height)."""
        return self.frames[0].shape[1], self.frames[0].shape[0]

    def map_points(self, k: int, points: ArrayLike, j: int) -> tuple[np.ndarray, np.ndarray]:
        """(points of frame k in frame j by the truth, True where the truth is known)."""
        return self.truth.map_points(k, points, j)

    def relative_pose(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(R, t) with X_j = R X_i + t, or None where the scene has no poses."""
        if not isinstance(self.truth, DepthTruth):
            return None
        return self.truth.relative_pose(i, j)


def sample_depth(depth: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear depth at sub-pixel points; NaN unless the 4 neighbours are one surface."""
    h, w = depth.shape
    x, y = points[:, 0], points[:, 1]
    inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
    x0 = np.clip(np.floor(np.where(inside, x, 0)).astype(int), 0, w - 2)
    y0 = np.clip(np.floor(np.where(inside, y, 0)).astype(int), 0, h - 2)
    fx, fy = np.where(inside, x, 0) - x0, np.where(inside, y, 0) - y0
    corners = np.stack(
        [depth[y0, x0], depth[y0, x0 + 1], depth[y0 + 1, x0], depth[y0 + 1, x0 + 1]]
    ).astype(np.float64)
    weights = np.stack([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy])
    z = (corners * weights).sum(axis=0)
    with np.errstate(invalid='ignore'):
        smooth = (corners.max(axis=0) - corners.min(axis=0)) <= SMOOTH_DEPTH * corners.min(axis=0)
    return np.where(inside & smooth & np.isfinite(z), z, np.nan)
