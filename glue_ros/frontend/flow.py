"""Tracked points followed by pyramidal Lucas-Kanade optical flow between learned frames.

What VINS-Fusion's tracker does every frame, and what costs a few milliseconds: each point is
followed forward into the new image, then back; a point whose backward flow does not land
within ``back_threshold`` pixels of where it started has slid off its feature (an occlusion, a
repetitive texture, motion blur) and is dropped. The front-end verifies the survivors with the
same robust model as learned matches, and runs the learned matcher again when too few are left
(:class:`glue_ros.frontend.frontend.Frontend`, ``tracking: flow``).
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import ArrayLike

WINDOW = 21  # pixels, VINS-Fusion's LK window
LEVELS = 3  # pyramid levels above the image (VINS-Fusion: 3)
CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01)


def to_gray(image: np.ndarray) -> np.ndarray:
    """uint8 grey image of an (H, W), (H, W, 1) or RGB (H, W, 3) image."""
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    elif image.ndim == 3:
        image = image[..., 0]
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(image)


class FlowTracker:
    """The points being followed (positions and track ids) and the image they stand on.

    ``origins`` are the points' positions in the image of the last reset (the last learned
    frame): where a learned frame's message says they were in its reference. ``unconfirmed``
    counts the learned frames each point went through on flow alone (its drift is unbounded
    until a learned match puts it back on its keypoint).
    """

    def __init__(self, back_threshold: float = 0.5) -> None:
        self.back_threshold = float(back_threshold)
        self.points = np.zeros((0, 2), np.float32)
        self.origins = np.zeros((0, 2), np.float32)
        self.ids = np.zeros(0, np.uint64)
        self.unconfirmed = np.zeros(0, np.int64)
        self._gray: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def reset(
        self,
        gray: np.ndarray | None = None,
        points: ArrayLike | None = None,
        ids: ArrayLike | None = None,
        unconfirmed: ArrayLike | None = None,
    ) -> None:
        """Follow `points` (with their ids) from the image `gray` on; nothing without them."""
        self.points = (
            np.zeros((0, 2), np.float32)
            if points is None
            else np.asarray(points, np.float32).reshape(-1, 2).copy()
        )
        self.ids = np.zeros(0, np.uint64) if ids is None else np.asarray(ids, np.uint64).copy()
        self.origins = self.points.copy()
        self.unconfirmed = (
            np.zeros(len(self.ids), np.int64)
            if unconfirmed is None
            else np.asarray(unconfirmed, np.int64).copy()
        )
        self._gray = gray

    def track(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(previous positions, new positions, ids) of the points that pass the check.

        The tracker then stands on `gray`: the next call follows the survivors from there.
        """
        if self._gray is None or gray.shape != self._gray.shape:
            self.reset(gray)
            return self.points, self.points.copy(), self.ids
        # (OpenCV's Python binding takes images, not prebuilt pyramids: it builds them.)
        keep = np.zeros(len(self.ids), bool)
        moved = self.points.copy()
        if len(self.ids):
            start = self.points.reshape(-1, 1, 2)
            # The stubs want an array for nextPts; the binding takes None (no initial guess).
            forward, ok, _ = cv2.calcOpticalFlowPyrLK(  # type: ignore[call-overload]
                self._gray,
                gray,
                start,
                None,
                winSize=(WINDOW, WINDOW),
                maxLevel=LEVELS,
                criteria=CRITERIA,
            )
            back, ok_back, _ = cv2.calcOpticalFlowPyrLK(
                gray,
                self._gray,
                forward,
                start.copy(),
                winSize=(WINDOW, WINDOW),
                maxLevel=LEVELS,
                criteria=CRITERIA,
                flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
            )
            moved = forward.reshape(-1, 2)
            h, w = gray.shape
            error = np.linalg.norm(back.reshape(-1, 2) - self.points, axis=1)
            keep = (
                (ok.reshape(-1) == 1)
                & (ok_back.reshape(-1) == 1)
                & (error <= self.back_threshold)
                & (moved[:, 0] >= 0)
                & (moved[:, 0] <= w - 1)
                & (moved[:, 1] >= 0)
                & (moved[:, 1] <= h - 1)
            )
        previous, ids = self.points[keep], self.ids[keep]
        self.points, self.ids = moved[keep].astype(np.float32), ids
        self.origins, self.unconfirmed = self.origins[keep], self.unconfirmed[keep]
        self._gray = gray
        return previous, self.points.copy(), ids

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the points where mask is True (after verification)."""
        self.points, self.ids = self.points[mask], self.ids[mask]
        self.origins, self.unconfirmed = self.origins[mask], self.unconfirmed[mask]


__all__ = ['FlowTracker', 'to_gray']
