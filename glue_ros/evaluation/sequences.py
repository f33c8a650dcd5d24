"""Image sequences that look like a robot's camera, with the true position of every pixel.

Two scenes, both real photographs:

* ``middlebury``: the Middlebury motorcycle left image re-rendered from its ground-truth depth
  along a smooth hand-held trajectory (yaw, pitch, roll, translation in x, y, z), so there is
  real 3D parallax and every frame has a known pose and a depth map. Each frame pixel's ray is
  intersected with the scene surface (depth splatted into the frame, then refined by fixed-point
  iteration against the source depth) and the image sampled there bilinearly: sub-pixel exact,
  no splatting jitter. Pixels with no surface behind them (disocclusions, unknown depth) are
  holes: inpainted in the image, NaN in the depth, never used as truth.
* ``photo``: a scikit-image photograph seen through smooth homographies (pan, roll, zoom,
  tilt): ``real_images.camera_homography``.

Two regimes:

* ``camera``: camera-rate motion, a few pixels per frame (:data:`CAMERA_RATE_PX`) at 30 Hz;
* ``hard``: camera-rate stretches between three hard ones (:class:`Stretch`): 10x the motion
  per frame with motion blur (``fast``), the same with brightness jumps (``light``), and a
  dropped stretch (``drop``: frames missing during the fast motion, then one frame far away).

All frames carry sensor noise. Everything is made from a fixed seed: the same every run.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import cv2
import numpy as np

from glue_ros.evaluation import data
from glue_ros.evaluation.sequence_truth import (
    DepthTruth,
    HomographyTruth,
    Stretch,
    VioSequence,
    sample_depth,
)
from glue_ros.testing import real_images

RATE_HZ = 30.0
CAMERA_RATE_PX = 2.5  # mean image motion per frame at camera rate (pixels, at 640x480)
HARD_FACTOR = 10  # hard stretches: this many times the camera-rate motion per frame
EXPOSURE = 0.5  # share of the frame time the shutter is open (motion blur length)
NOISE = 1.5  # sensor noise, grey levels (standard deviation)
DROPPED = 3  # frames lost in the dropped stretch (hard motion continues)
STRETCH_FRAMES = 4  # frames of a fast or light stretch
LIGHT = ((0.5, 1.3), (1.7, 0.8), (0.7, 1.2), (1.5, 0.85))  # (gain, gamma) of light frames
# Middlebury: the frame sees the middle of the image a little magnified, so that the
# trajectory stays inside the photographed scene (a 640x480 frame covers 556x417 of 741x500).
MIDDLEBURY_ZOOM = 1.15
# Consistency of a ray-surface intersection: its reprojection within this many pixels.
SURFACE_PX = 0.25
Truth = HomographyTruth | DepthTruth


# -- the two regimes ------------------------------------------------------------------------
def schedule(regime: str, frames: int) -> tuple[list, list]:
    """(per-frame (time in camera-rate frames, camera frame counter, effect), stretches).

    Camera rate: one step of time per frame. Hard: calm stretches of `frames` // 6 frames
    between a fast, a light and a dropped stretch, then calm frames up to `frames`.
    """
    if regime == 'camera':
        return [(float(k), k, None) for k in range(frames)], []
    if regime != 'hard':
        raise ValueError(f"regime {regime!r}: expected 'camera' or 'hard'")
    calm = max(frames // 6, 1)
    rows, stretches = [(0.0, 0, None)], []
    tau, counter = 0.0, 0

    def step(count: int, speed: float, effect: tuple | None, advance: int = 1) -> None:
        nonlocal tau, counter
        for _ in range(count):
            tau += speed * advance
            counter += advance
            rows.append((tau, counter, effect))

    step(calm - 1, 1.0, None)
    for kind in ('fast', 'light'):
        first = len(rows)
        for i in range(STRETCH_FRAMES):
            step(1, HARD_FACTOR, ('blur',) if kind == 'fast' else ('blur', *LIGHT[i % 4]))
        stretches.append(Stretch(kind, first, len(rows) - 1))
        step(calm, 1.0, None)
    # frames lost while the camera moves fast: the next one arrives far from the last
    stretches.append(Stretch('drop', len(rows), len(rows)))
    step(1, HARD_FACTOR, None, advance=DROPPED + 1)
    step(max(frames - len(rows), 2), 1.0, None)
    return rows, stretches


def _effects(
    image: np.ndarray, effect: tuple | None, flow: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Motion blur along the frame's flow, brightness (gain, gamma), and sensor noise."""
    x = image.astype(np.float32)
    if effect is not None and 'blur' in effect:
        length = EXPOSURE * float(np.hypot(*flow))
        if length >= 1.5:
            size = int(np.ceil(length)) | 1
            kernel = np.zeros((size, size), np.float32)
            c = size // 2
            d = flow / (np.hypot(*flow) + 1e-9) * length / 2
            cv2.line(
                kernel,
                (int(round(c - d[0])), int(round(c - d[1]))),
                (int(round(c + d[0])), int(round(c + d[1]))),
                1.0,
                1,
                cv2.LINE_AA,
            )
            x = cv2.filter2D(x, -1, kernel / kernel.sum())
    if effect is not None and len(effect) == 3:
        gain, gamma = effect[1], effect[2]
        x = 255.0 * np.clip(x * gain / 255.0, 0, 1) ** gamma
    x = x + rng.normal(0.0, NOISE, x.shape).astype(np.float32)
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


def _flow(truth: Truth, k: int, size: tuple[int, int], previous: int) -> tuple[np.ndarray, float]:
    """(mean displacement (dx, dy), mean distance) of a grid of frame-`previous` points in k."""
    w, h = size
    gx, gy = np.meshgrid(np.linspace(0.1 * w, 0.9 * w, 12), np.linspace(0.1 * h, 0.9 * h, 9))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    mapped, valid = truth.map_points(previous, grid, k)
    if not valid.any():
        return np.zeros(2), 0.0
    moved = mapped[valid] - grid[valid]
    return moved.mean(axis=0), float(np.linalg.norm(moved, axis=1).mean())


# -- the Middlebury scene ----------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _middlebury() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(left image, K, depth with NaN holes, 3D points of the known pixels (3, N))."""
    pair, K, depth = data.middlebury_camera(0)
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan)
    v, u = np.nonzero(np.isfinite(depth))
    rays = np.linalg.inv(K) @ np.stack([u, v, np.ones(len(u))])
    return pair.left, K, depth.astype(np.float32), rays * depth[v, u]


def middlebury_intrinsics(size: tuple[int, int]) -> np.ndarray:
    """K of a frame of `size` that sees the middle of the Middlebury image (see the zoom)."""
    image, K, _, _ = _middlebury()
    scale = MIDDLEBURY_ZOOM * size[0] / 640.0
    f = K[0, 0] * scale
    h, w = image.shape[:2]
    cx = size[0] / 2 - ((w - 1) / 2 - K[0, 2]) * scale
    cy = size[1] / 2 - ((h - 1) / 2 - K[1, 2]) * scale
    return np.array([[f, 0, cx], [0, f, cy], [0, 0, 1.0]])


def hand_held_pose(phase: float) -> tuple[np.ndarray, np.ndarray]:
    """(R, t in mm) of a hand-held camera near the Middlebury left camera at a phase."""
    angles = [
        0.6 * np.sin(0.77 * phase + 1.0),
        1.5 * np.sin(phase),
        1.5 * np.sin(0.53 * phase + 2.0),
    ]
    t = np.array(
        [
            80.0 * np.sin(0.9 * phase + 0.5),
            25.0 * np.sin(1.13 * phase + 1.5),
            100.0 * np.sin(0.61 * phase + 2.5),
        ]
    )
    return data.rotation(angles), t


def render_middlebury(
    K: np.ndarray, size: tuple[int, int], R: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(image, depth NaN at holes) of the scene from a camera X_cam = R X + t (K, size)."""
    image, K_source, depth_source, points = _middlebury()
    w, h = size
    ratio = K_source[0, 0] / K[0, 0]  # source pixels per frame pixel
    if ratio > 1:
        image = cv2.GaussianBlur(image, (0, 0), 0.5 * ratio)  # no aliasing when shrinking
    X = R @ points + t.reshape(3, 1)
    x = K @ X
    z = X[2]
    u, v = x[0] / z, x[1] / z
    zbuffer = np.full(h * w, np.inf)
    # Each scene point covers the 4 pixels around its projection (no cracks when zooming in);
    # the nearest surface wins.
    for du in (0, 1):
        for dv in (0, 1):
            xi, yi = np.floor(u).astype(int) + du, np.floor(v).astype(int) + dv
            inside = (z > 0) & (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            np.minimum.at(zbuffer, yi[inside] * w + xi[inside], z[inside])
    zbuffer = zbuffer.reshape(h, w)
    # Refine: intersect each pixel's ray with the surface (a fixed point of depth lookups).
    pv, pu = np.mgrid[0:h, 0:w].astype(np.float64)
    rays = np.linalg.inv(K) @ np.stack([pu.ravel(), pv.ravel(), np.ones(h * w)])
    K_inv_source = np.linalg.inv(K_source)
    zc = np.where(np.isfinite(zbuffer.ravel()), zbuffer.ravel(), np.nan)
    for _ in range(3):
        world = R.T @ (rays * zc - t.reshape(3, 1))
        s = K_source @ world
        su, sv = (s[0] / s[2]).astype(np.float32), (s[1] / s[2]).astype(np.float32)
        zs = cv2.remap(
            depth_source,
            su.reshape(h, w),
            sv.reshape(h, w),
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=np.nan,
        ).ravel()
        world = K_inv_source @ np.stack([su, sv, np.ones(h * w)]) * zs
        zc = (R @ world + t.reshape(3, 1))[2]
    camera = R @ world + t.reshape(3, 1)
    back = K @ camera
    error = np.hypot(back[0] / back[2] - pu.ravel(), back[1] / back[2] - pv.ravel())
    with np.errstate(invalid='ignore'):
        valid = np.isfinite(error) & (error < SURFACE_PX) & (camera[2] > 0)
    frame = cv2.remap(
        image, su.reshape(h, w), sv.reshape(h, w), cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    holes = (~valid).reshape(h, w).astype(np.uint8)
    if holes.any():
        frame = cv2.inpaint(frame, holes, 3, cv2.INPAINT_TELEA)
    depth = np.where(valid, zc, np.nan).reshape(h, w).astype(np.float32)
    return frame, depth


def _speed_scale(positions: Callable[[float], np.ndarray]) -> float:
    """Phase per camera-rate frame for CAMERA_RATE_PX of mean motion (positions(phase))."""
    phases = np.linspace(0.0, 60.0, 601)
    points = [positions(p) for p in phases]
    speed = np.mean(
        [
            np.linalg.norm(b - a, axis=1).mean() / (phases[1] - phases[0])
            for a, b in zip(points, points[1:])
        ]
    )
    return CAMERA_RATE_PX / speed


def middlebury_sequence(
    regime: str = 'camera', frames: int = 60, size: tuple[int, int] = (640, 480), seed: int = 0
) -> VioSequence:
    """The Middlebury scene along a hand-held trajectory (see the module docstring)."""
    K = middlebury_intrinsics(size)
    _, _, _, points = _middlebury()
    sample = points[:, :: max(points.shape[1] // 400, 1)]

    def positions(phase: float) -> np.ndarray:
        R, t = hand_held_pose(phase)
        x = K @ (R @ sample + t.reshape(3, 1))
        return (x[:2] / x[2]).T * (640.0 / size[0])  # motion measured at 640x480

    speed = _speed_scale(positions)
    rows, stretches = schedule(regime, frames)
    poses = [hand_held_pose(tau * speed) for tau, _, _ in rows]
    truth = DepthTruth(K, [R for R, _ in poses], [t for _, t in poses], [])
    images = []
    for R, t in poses:
        image, depth = render_middlebury(K, size, R, t)
        images.append(image)
        truth.depth.append(depth)
    return _finish(
        f'middlebury-{regime}', 'middlebury', regime, images, rows, stretches, truth, K, size, seed
    )


# -- the photo scene ---------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def _photo(name: str, upscale: float = 2.0) -> np.ndarray:
    source = real_images.photo(name)
    return cv2.resize(source, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)


def photo_homography(
    phase: float, size: tuple[int, int], source_size: tuple[int, int]
) -> np.ndarray:
    """Source -> frame homography of a smooth pan, roll, zoom and tilt at a phase."""
    return real_images.camera_homography(
        size,
        source_size,
        0.5 + 0.3 * np.sin(phase),
        roll_deg=4.0 * np.sin(0.7 * phase + 1.0),
        zoom=1.0 + 0.08 * np.sin(0.5 * phase + 2.0),
        tilt=0.1 * np.sin(0.8 * phase + 0.3),
    )


def photo_sequence(
    regime: str = 'camera',
    frames: int = 60,
    size: tuple[int, int] = (640, 480),
    name: str = 'astronaut',
    seed: int = 0,
) -> VioSequence:
    """A photograph under smooth homographies (see the module docstring)."""
    source = _photo(name)
    source_size = (source.shape[1], source.shape[0])
    gx, gy = np.meshgrid(np.linspace(0.1, 0.9, 10) * size[0], np.linspace(0.1, 0.9, 8) * size[1])
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    reference = photo_homography(0.0, size, source_size)
    source_points = real_images.apply_homography(np.linalg.inv(reference), grid)

    def positions(phase: float) -> np.ndarray:
        H = photo_homography(phase, size, source_size)
        return real_images.apply_homography(H, source_points) * (640.0 / size[0])

    speed = _speed_scale(positions)
    rows, stretches = schedule(regime, frames)
    Hs = [photo_homography(tau * speed, size, source_size) for tau, _, _ in rows]
    images = [real_images.render(source, H, size) for H in Hs]
    return _finish(
        f'photo-{regime}',
        'photo',
        regime,
        images,
        rows,
        stretches,
        HomographyTruth(Hs, source_size),
        None,
        size,
        seed,
    )


def _finish(
    name: str,
    scene: str,
    regime: str,
    images: list,
    rows: list,
    stretches: list,
    truth: Truth,
    K: np.ndarray | None,
    size: tuple[int, int],
    seed: int,
) -> VioSequence:
    """Blur, brightness and noise applied; stamps and per-frame motion measured."""
    rng = np.random.default_rng(seed)
    frames, motion = [], []
    for k, (image, (_, _, effect)) in enumerate(zip(images, rows)):
        flow, distance = _flow(truth, k, size, k - 1) if k else (np.zeros(2), 0.0)
        motion.append(distance)
        frames.append(_effects(image, effect, flow, rng))
    stamps = np.array([counter for _, counter, _ in rows], np.float64) / RATE_HZ
    return VioSequence(name, scene, regime, frames, stamps, truth, K, stretches, np.array(motion))


def vio_sequences(
    camera_frames: int = 60, hard_frames: int = 30, size: tuple[int, int] = (640, 480)
) -> list:
    """The benchmark's sequences: both scenes at both regimes."""
    return [
        middlebury_sequence('camera', camera_frames, size),
        middlebury_sequence('hard', hard_frames, size),
        photo_sequence('camera', camera_frames, size),
        photo_sequence('hard', hard_frames, size),
    ]


__all__ = [
    'VioSequence',
    'Stretch',
    'HomographyTruth',
    'DepthTruth',
    'schedule',
    'middlebury_sequence',
    'photo_sequence',
    'vio_sequences',
    'render_middlebury',
    'middlebury_intrinsics',
    'hand_held_pose',
    'photo_homography',
    'sample_depth',
    'CAMERA_RATE_PX',
    'HARD_FACTOR',
]
