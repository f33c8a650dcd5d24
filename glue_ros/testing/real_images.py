"""Real photographs with exact ground truth, available offline (scikit-image ships them).

Used by the tests, the demo and the benchmark:
- the Middlebury "motorcycle" stereo pair with the left image's disparity;
- moving-camera sequences rendered from a real photograph by known homographies, so the true
  position of every pixel in every frame is known.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


def photo(name: str) -> np.ndarray:
    """An RGB uint8 sample photograph of scikit-image by name (e.g. 'astronaut', 'rocket')."""
    import skimage.data  # optional (the bench and test extras): only where photos are used

    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


@dataclass
class StereoPair:
    """A rectified stereo pair; a left pixel (x, y) is seen at (x - disparity[y, x], y) right."""

    left: np.ndarray
    right: np.ndarray
    disparity: np.ndarray  # float32, NaN where unknown


def middlebury_stereo(size: tuple[int, int] | None = None) -> StereoPair:
    """The Middlebury motorcycle pair (741x500), optionally resized to size=(width, height)."""
    import skimage.data  # optional, as in photo()

    left, right, disparity = skimage.data.stereo_motorcycle()
    disparity = np.where(np.isfinite(disparity), disparity, np.nan).astype(np.float32)
    if size is not None and tuple(size) != (left.shape[1], left.shape[0]):
        scale_x = size[0] / left.shape[1]
        left = cv2.resize(left, size, interpolation=cv2.INTER_AREA)
        right = cv2.resize(right, size, interpolation=cv2.INTER_AREA)
        disparity = cv2.resize(disparity, size, interpolation=cv2.INTER_NEAREST) * scale_x
    return StereoPair(left, right, disparity)


def disparity_errors(
    pair: StereoPair, left_points: np.ndarray, right_points: np.ndarray
) -> np.ndarray:
    """Pixel error of each left->right match against the ground truth (NaN where unknown)."""
    left_points = np.asarray(left_points, np.float64).reshape(-1, 2)
    right_points = np.asarray(right_points, np.float64).reshape(-1, 2)
    h, w = pair.disparity.shape
    xi = np.clip(np.round(left_points[:, 0]).astype(int), 0, w - 1)
    yi = np.clip(np.round(left_points[:, 1]).astype(int), 0, h - 1)
    d = pair.disparity[yi, xi].astype(np.float64)
    expected = np.stack([left_points[:, 0] - d, left_points[:, 1]], axis=1)
    return np.linalg.norm(expected - right_points, axis=1)


def apply_homography(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map (N, 2) pixel coordinates through the 3x3 homography H."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    ones = np.ones((len(points), 1))
    mapped = np.concatenate([points, ones], axis=1) @ np.asarray(H, np.float64).T
    return mapped[:, :2] / mapped[:, 2:3]


def homography_errors(H_01: np.ndarray, points0: np.ndarray, points1: np.ndarray) -> np.ndarray:
    """Pixel error of each match 0->1 when image 1 is image 0 warped by H_01."""
    return np.linalg.norm(
        apply_homography(H_01, points0) - np.asarray(points1).reshape(-1, 2), axis=1
    )


def camera_homography(
    size: tuple[int, int],
    source_size: tuple[int, int],
    t: float,
    yaw_deg: float = 0.0,
    zoom: float = 1.0,
    roll_deg: float = 0.0,
    tilt: float = 0.0,
) -> np.ndarray:
    """Homography source -> frame of a virtual camera looking at the photograph.

    t in [0, 1] pans the view across the photograph; roll rotates it, zoom scales it and tilt
    adds perspective. The view stays inside the photograph for moderate settings.
    """
    w, h = size
    sw, sh = source_size
    # Frame covers a window of the source: scale so the frame fits with room to pan.
    base = min(sw / w, sh / h) * 0.8 / zoom
    cx = sw * (0.5 + 0.1 * (t - 0.5) * 2) + sw * 0.02 * np.sin(np.deg2rad(yaw_deg))
    cy = sh * (0.5 + 0.05 * np.sin(2 * np.pi * t))
    a = np.deg2rad(roll_deg)
    # frame -> source: centre the frame, rotate, scale, move to (cx, cy), then perspective.
    centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1]], np.float64)
    rot_scale = np.array(
        [
            [base * np.cos(a), -base * np.sin(a), 0],
            [base * np.sin(a), base * np.cos(a), 0],
            [0, 0, 1],
        ]
    )
    move = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]], np.float64)
    persp = np.array([[1, 0, 0], [0, 1, 0], [tilt / w, 0, 1]], np.float64)
    frame_to_source = move @ rot_scale @ persp @ centre
    return np.linalg.inv(frame_to_source)


def render(source: np.ndarray, H_source_to_frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The frame a homography camera sees of `source` (bilinear, black outside)."""
    return cv2.warpPerspective(
        source, H_source_to_frame, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


class HomographyFrames:
    """Frames of one source seen through homographies: H[i] maps source pixels to frame i."""

    H: list

    def relative(self, i: int, j: int) -> np.ndarray:
        """Homography frame i -> frame j."""
        return self.H[j] @ np.linalg.inv(self.H[i])


@dataclass
class Sequence(HomographyFrames):
    """Frames of a moving homography camera; H[i] maps source pixels to frame i pixels."""

    frames: list
    H: list


def homography_sequence(
    name: str = 'astronaut',
    num_frames: int = 20,
    size: tuple[int, int] = (640, 480),
    upscale: float = 2.0,
    roll_per_frame: float = 0.6,
    zoom_per_frame: float = 0.005,
) -> Sequence:
    """A smooth moving-camera sequence over a real photograph (pan, roll and zoom)."""
    source = photo(name)
    if upscale != 1.0:
        source = cv2.resize(source, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
    source_size = (source.shape[1], source.shape[0])
    frames, Hs = [], []
    for i in range(num_frames):
        t = i / max(num_frames - 1, 1)
        H = camera_homography(
            size,
            source_size,
            t,
            roll_deg=roll_per_frame * i,
            zoom=1.0 + zoom_per_frame * i,
            tilt=0.05 * np.sin(t * np.pi),
        )
        Hs.append(H)
        frames.append(render(source, H, size))
    return Sequence(frames, Hs)


class PanningCamera:
    """A camera panning back and forth over one scene, with a new view at every instant.

    A robot that keeps looking at the same place: the view is a window of a real photograph that
    moves along two sines of incommensurate periods (`periods`, seconds), so a view is never
    repeated exactly and the matcher keeps seeing new keypoint layouts. Views are crops: a
    frame costs a copy, so a test can render 60 of them a second.
    """

    def __init__(
        self,
        name: str = 'astronaut',
        size: tuple[int, int] = (640, 480),
        scale: float = 1.6,
        periods: tuple[float, float] = (4.1, 6.7),
    ):
        source = photo(name)
        self.source = cv2.resize(source, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        self.size, self.periods = tuple(size), periods
        self.room = (self.source.shape[1] - size[0], self.source.shape[0] - size[1])
        if min(self.room) < 2:
            raise ValueError(f'{name} scaled by {scale} is too small for {size} views')

    def frame(self, t: float) -> np.ndarray:
        """The view at time t (seconds)."""
        x = int(0.5 * self.room[0] * (1 + 0.9 * np.sin(2 * np.pi * t / self.periods[0])))
        y = int(0.5 * self.room[1] * (1 + 0.9 * np.sin(2 * np.pi * t / self.periods[1])))
        return np.ascontiguousarray(self.source[y : y + self.size[1], x : x + self.size[0]])


def homography_pair(
    name: str,
    size: tuple[int, int] = (640, 480),
    roll_deg: float = 0.0,
    zoom: float = 1.0,
    tilt: float = 0.0,
    pan: float = 0.0,
    upscale: float = 2.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two views of one photograph: (image0, image1, H_01). pan=0, roll=0, zoom=1 is identity."""
    source = photo(name)
    if upscale != 1.0:
        source = cv2.resize(source, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)
    source_size = (source.shape[1], source.shape[0])
    H0 = camera_homography(size, source_size, 0.5)
    H1 = camera_homography(size, source_size, 0.5 + pan, roll_deg=roll_deg, zoom=zoom, tilt=tilt)
    return render(source, H0, size), render(source, H1, size), H1 @ np.linalg.inv(H0)
