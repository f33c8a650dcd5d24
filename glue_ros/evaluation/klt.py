"""The classical VIO front-end our tracking is measured against: VINS-Fusion's KLT tracker.

Written after HKUST's ``feature_tracker.cpp`` (VINS-Fusion, ``trackImage``), with its
settings of the EuRoC/RealSense configs, so that "better than KLT" means better than what
VIO users run today:

* pyramidal Lucas-Kanade from the previous frame, 21x21 window, maxLevel 3 (4 pyramid
  levels), OpenCV's default stopping rule;
* the flow-back check (``FLOW_BACK``): the new points tracked back into the previous image
  with maxLevel 1, started from the old positions, must land within 0.5 px of them;
* points within 1 px of the image border dropped;
* a fundamental matrix fitted by RANSAC at 1 px (``F_THRESHOLD``) and its outliers dropped,
  in a virtual pinhole image of focal length 460 when the intrinsics are known (VINS-Mono's
  ``rejectWithF``; VINS-Fusion's trackImage has that call commented out, so
  ``f_threshold=0`` is VINS-Fusion exactly);
* ``setMask``: tracks sorted by age, longest first; a track closer than MIN_DIST (30 px) to
  an older kept one is dropped, and each kept track masks a disc of radius MIN_DIST;
* Shi-Tomasi corners (quality 0.01, MIN_DIST apart, outside the mask) refill the budget
  ``MAX_CNT`` (150); each new corner gets a new id, never reused.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# VINS-Fusion's tracker works in a virtual pinhole image of this focal length (FOCAL_LENGTH).
VINS_FOCAL_LENGTH = 460.0


@dataclass
class KLTConfig:
    """The tracker's settings; the defaults are VINS-Fusion's shipped configs."""

    max_count: int = 150  # MAX_CNT: features per frame
    min_distance: float = 30.0  # MIN_DIST, pixels
    window: int = 21  # LK window (square), pixels
    max_level: int = 3  # LK pyramid: levels above the image
    flow_back: float = 0.5  # forward-backward limit, pixels; 0: off (FLOW_BACK = 0)
    f_threshold: float = 1.0  # fundamental-matrix RANSAC, pixels; 0: off
    quality: float = 0.01  # Shi-Tomasi quality level
    border: int = 1  # points closer than this to the border are dropped


class KLTTracker:
    """Shi-Tomasi + pyramidal LK tracks over a stream (see the module docstring)."""

    def __init__(self, config: KLTConfig | None = None, K: np.ndarray | None = None):
        self.config = config or KLTConfig()
        self.K = None if K is None else np.asarray(K, np.float64)
        self.next_id = 1
        self.reset()

    def reset(self) -> None:
        """Forget the stream; ids continue (they are never reused)."""
        self.previous: np.ndarray | None = None
        self.points = np.zeros((0, 2), np.float32)
        self.ids = np.zeros(0, np.uint64)
        self.counts = np.zeros(0, np.int64)  # frames each track has been seen in

    def process(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Track into a new frame: (points (M, 2) float32, ids (M,) uint64, all > 0).

        The points are the tracks that survived plus the corners just detected (age 1, as
        VINS publishes them); :attr:`counts` holds each point's age in frames.
        """
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if self.previous is not None and len(self.points):
            keep, moved = self._flow(self.previous, gray, self.points)
            previous_points = self.points[keep]
            self.points, self.ids, self.counts = moved[keep], self.ids[keep], self.counts[keep]
            if self.config.f_threshold > 0:
                inliers = self._fundamental_inliers(previous_points, self.points, gray.shape)
                self.points, self.ids = self.points[inliers], self.ids[inliers]
                self.counts = self.counts[inliers]
        self.counts = self.counts + 1
        self._mask_and_refill(gray)
        self.previous = gray
        return self.points.copy(), self.ids.copy()

    # -- steps -------------------------------------------------------------------------------
    def _flow(
        self, previous: np.ndarray, current: np.ndarray, points: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(kept, new positions): LK forward, the flow-back check, the border check."""
        c = self.config
        window = (c.window, c.window)
        moved, status, _ = cv2.calcOpticalFlowPyrLK(
            previous, current, points, None, winSize=window, maxLevel=c.max_level
        )
        ok = status.reshape(-1).astype(bool)
        if c.flow_back > 0:
            # VINS starts the backward flow at the old positions, one pyramid level above.
            criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01)
            back, status_back, _ = cv2.calcOpticalFlowPyrLK(
                current,
                previous,
                moved,
                points.copy(),
                winSize=window,
                maxLevel=1,
                criteria=criteria,
                flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
            )
            error = np.linalg.norm(back - points, axis=1)
            ok &= status_back.reshape(-1).astype(bool) & (error <= c.flow_back)
        h, w = current.shape[:2]
        x, y = np.round(moved[:, 0]), np.round(moved[:, 1])
        b = c.border
        ok &= (x >= b) & (x < w - b) & (y >= b) & (y < h - b)
        return ok, moved.reshape(-1, 2).astype(np.float32)

    def _fundamental_inliers(
        self, points0: np.ndarray, points1: np.ndarray, shape: tuple[int, ...]
    ) -> np.ndarray:
        """Inliers of an F fitted by RANSAC (all kept below 8 points, as VINS)."""
        keep = np.ones(len(points0), bool)
        if len(points0) < 8:
            return keep
        a, b = self._virtual(points0, shape), self._virtual(points1, shape)
        cv2.setRNGSeed(0)  # OpenCV's RANSAC draws from the global generator: a fixed run
        _, mask = cv2.findFundamentalMat(b, a, cv2.FM_RANSAC, self.config.f_threshold, 0.99)
        if mask is None:
            return keep
        return mask.reshape(-1).astype(bool)

    def _virtual(self, points: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """Pixels of the virtual pinhole camera VINS fits F in (the pixels when K is unknown)."""
        if self.K is None:
            return np.float64(points)
        h, w = shape[:2]
        normal = (np.float64(points) - self.K[:2, 2]) / np.diag(self.K)[:2]
        return normal * VINS_FOCAL_LENGTH + [w / 2.0, h / 2.0]

    def _mask_and_refill(self, gray: np.ndarray) -> None:
        """setMask (oldest tracks first, MIN_DIST apart), then new corners up to the budget."""
        c = self.config
        h, w = gray.shape[:2]
        mask = np.full((h, w), 255, np.uint8)
        radius = int(round(c.min_distance))
        order = np.argsort(-self.counts, kind='stable')
        kept = []
        for i in order:
            x, y = int(round(float(self.points[i, 0]))), int(round(float(self.points[i, 1])))
            if 0 <= x < w and 0 <= y < h and mask[y, x] == 255:
                kept.append(i)
                cv2.circle(mask, (x, y), radius, 0, -1)
        kept = np.asarray(kept, np.int64)
        self.points, self.ids, self.counts = self.points[kept], self.ids[kept], self.counts[kept]
        room = c.max_count - len(kept)
        if room <= 0:
            return
        corners = cv2.goodFeaturesToTrack(gray, room, c.quality, c.min_distance, mask=mask)
        if corners is None:
            return
        corners = corners.reshape(-1, 2).astype(np.float32)
        fresh = np.arange(self.next_id, self.next_id + len(corners), dtype=np.uint64)
        self.next_id += len(corners)
        self.points = np.concatenate([self.points, corners])
        self.ids = np.concatenate([self.ids, fresh])
        self.counts = np.concatenate([self.counts, np.ones(len(corners), np.int64)])


__all__ = ['KLTTracker', 'KLTConfig', 'VINS_FOCAL_LENGTH']
