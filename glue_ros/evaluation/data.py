"""Ground-truth data for the SLAM evaluation, made at run time from scikit-image (no download).

* HPatches-protocol homography pairs: a real photograph and a view of it under a random but
  realistic homography (rotation, scale, perspective) with photometric change (brightness,
  contrast, gamma, blur, noise); the homography is the truth.
* Views with real 3D parallax: the Middlebury "motorcycle" left image re-rendered at known
  camera poses from its ground-truth disparity (z-buffered forward warp, holes filled by
  inpainting; every pipeline sees the same images, so matches on filled holes, which carry no
  true parallax, weigh on all alike), intrinsics known.
* Sequences with ground truth for track metrics: ``real_images.homography_sequence``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from glue_ros.testing import real_images

PHOTOS = ('astronaut', 'coffee', 'rocket', 'chelsea', 'immunohistochemistry', 'coins')
# Middlebury 2014 Motorcycle calibration at full size (2964x2000): focal length and principal
# point of cam0, baseline (mm) and the disparity offset between the two principal points.
MIDDLEBURY = {
    'f': 3979.911,
    'cx': 1244.772,
    'cy': 1019.507,
    'baseline': 193.001,
    'doffs': 124.343,
    'width': 2964,
}


@dataclass
class HomographyPair:
    """image1 = image0 seen through H (H maps image0 pixels to image1 pixels)."""

    name: str
    image0: np.ndarray
    image1: np.ndarray
    H: np.ndarray


@dataclass
class PosePair:
    """Two views of a 3D scene: X_query = R X_reference + t (query = image0); K of both."""

    name: str
    image0: np.ndarray
    image1: np.ndarray
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray


def _photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness, contrast, gamma, blur and noise as HPatches' illumination changes do."""
    x = image.astype(np.float32) / 255.0
    x = np.clip(x * rng.uniform(0.7, 1.3) + rng.uniform(-0.12, 0.12), 0, 1)
    x = x ** rng.uniform(0.7, 1.5)
    sigma = rng.uniform(0.0, 1.2)
    if sigma > 0.3:
        x = cv2.GaussianBlur(x, (0, 0), sigma)
    x = x + rng.normal(0.0, rng.uniform(0.0, 0.02), x.shape).astype(np.float32)
    return (np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)


def random_homography(
    size: tuple[int, int],
    rng: np.random.Generator,
    max_angle: float = 30.0,
    scale: tuple[float, float] = (0.75, 1.3),
    perspective: float = 0.12,
) -> np.ndarray:
    """A homography of the image centre: rotation, scale, corner perspective, small shift."""
    w, h = size
    centre = np.array([[1, 0, -w / 2], [0, 1, -h / 2], [0, 0, 1.0]])
    angle = np.radians(rng.uniform(-max_angle, max_angle))
    s = rng.uniform(*scale)
    rotation = np.array(
        [
            [s * np.cos(angle), -s * np.sin(angle), 0],
            [s * np.sin(angle), s * np.cos(angle), 0],
            [0, 0, 1.0],
        ]
    )
    corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
    moved = corners + rng.uniform(-perspective, perspective, (4, 2)) * [w, h]
    warp = cv2.getPerspectiveTransform(corners.astype(np.float32), moved.astype(np.float32))
    shift = np.array(
        [
            [1, 0, w / 2 + rng.uniform(-0.05, 0.05) * w],
            [0, 1, h / 2 + rng.uniform(-0.05, 0.05) * h],
            [0, 0, 1.0],
        ]
    )
    H = shift @ warp @ rotation @ centre
    return H / H[2, 2]


def homography_pairs(count: int = 12, size: tuple[int, int] = (640, 480), seed: int = 0) -> list:
    """HPatches-protocol pairs over scikit-image photographs (fixed seed: the same every run)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for i in range(count):
        name = PHOTOS[i % len(PHOTOS)]
        photo = real_images.photo(name)
        image0 = cv2.resize(photo, size, interpolation=cv2.INTER_AREA)
        H = random_homography(size, rng)
        image1 = cv2.warpPerspective(image0, H, size, flags=cv2.INTER_LINEAR)
        pairs.append(HomographyPair(f'{name}-{i}', image0, _photometric(image1, rng), H))
    return pairs


def middlebury_camera(width: int) -> tuple[real_images.StereoPair, np.ndarray, np.ndarray]:
    """(K, depth in mm per pixel) of scikit-image's Middlebury left image at its size."""
    pair = real_images.middlebury_stereo()
    scale = pair.left.shape[1] / MIDDLEBURY['width']
    K = np.array(
        [
            [MIDDLEBURY['f'] * scale, 0, MIDDLEBURY['cx'] * scale],
            [0, MIDDLEBURY['f'] * scale, MIDDLEBURY['cy'] * scale],
            [0, 0, 1.0],
        ]
    )
    disparity = pair.disparity.astype(np.float64)
    depth = K[0, 0] * MIDDLEBURY['baseline'] / (disparity + MIDDLEBURY['doffs'] * scale)
    return pair, K, depth


def render_view(
    image: np.ndarray, depth: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(the image seen from a camera with X_new = R X + t, mask of pixels really seen there).

    Forward warp with a z-buffer (nearest pixel, nearest surface wins); the holes it leaves
    (disocclusions, unknown depth) are filled by inpainting and are False in the mask.
    """
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w]
    valid = np.isfinite(depth) & (depth > 0)
    rays = np.linalg.inv(K) @ np.stack([u[valid], v[valid], np.ones(valid.sum())])
    points = rays * depth[valid]
    moved = R @ points + t.reshape(3, 1)
    projected = K @ moved
    x = np.round(projected[0] / projected[2]).astype(int)
    y = np.round(projected[1] / projected[2]).astype(int)
    z = moved[2]
    inside = (z > 0) & (x >= 0) & (x < w) & (y >= 0) & (y < h)
    x, y, z = x[inside], y[inside], z[inside]
    colours = image[valid][inside]
    order = np.argsort(-z)  # far first, so that near surfaces overwrite them
    out = np.zeros_like(image)
    seen = np.zeros((h, w), bool)
    out[y[order], x[order]] = colours[order]
    seen[y[order], x[order]] = True
    # Single-pixel cracks of the forward warp are not occlusions: close them before the mask.
    closed = cv2.morphologyEx(seen.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    filled = cv2.inpaint(out, (1 - seen).astype(np.uint8), 3, cv2.INPAINT_TELEA)
    return filled, closed.astype(bool)


def rotation(degrees_xyz: Sequence[float]) -> np.ndarray:
    """Rotation matrix of a rotation vector given in degrees."""
    return cv2.Rodrigues(np.radians(np.asarray(degrees_xyz, np.float64)))[0]


def pose_pairs(count: int = 8, seed: int = 0) -> list:
    """Novel views of the Middlebury scene at known poses, and the real stereo pair itself."""
    rng = np.random.default_rng(seed)
    pair, K, depth = middlebury_camera(0)
    pairs = [
        PosePair(
            'middlebury-stereo', pair.left, pair.right, K, np.eye(3), np.array([1.0, 0.0, 0.0])
        )
    ]  # the right camera is at +x of the left
    for i in range(count):
        R = rotation(rng.uniform(-4, 4, 3))
        t = rng.uniform(-1, 1, 3) * np.array([250.0, 120.0, 250.0])  # mm, scene at ~2-3 m
        # the reference (image1) is the real left image; the query is rendered at (R, t)
        view, _ = render_view(pair.left, depth, K, R, t)
        pairs.append(PosePair(f'middlebury-view{i}', view, pair.left, K, R, t / np.linalg.norm(t)))
    return pairs


__all__ = [
    'HomographyPair',
    'PosePair',
    'homography_pairs',
    'pose_pairs',
    'render_view',
    'random_homography',
    'middlebury_camera',
    'rotation',
]
