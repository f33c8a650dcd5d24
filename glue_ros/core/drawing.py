"""Pictures of matches: the two images side by side with a line per match."""

from __future__ import annotations

import cv2
import numpy as np


def _rgb(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image


def draw_matches(
    image0: np.ndarray,
    image1: np.ndarray,
    points0: np.ndarray,
    points1: np.ndarray,
    scores: np.ndarray | None = None,
    max_lines: int = 300,
    text: str = '',
) -> np.ndarray:
    """RGB canvas: image0 left, image1 right, a line per match (red: low, green: high score)."""
    image0, image1 = _rgb(image0), _rgb(image1)
    h = max(image0.shape[0], image1.shape[0])
    w0 = image0.shape[1]
    canvas = np.zeros((h, w0 + image1.shape[1], 3), np.uint8)
    canvas[: image0.shape[0], :w0] = image0
    canvas[: image1.shape[0], w0:] = image1
    points0 = np.asarray(points0, np.float32).reshape(-1, 2)
    points1 = np.asarray(points1, np.float32).reshape(-1, 2)
    scores = np.ones(len(points0)) if scores is None else np.asarray(scores)
    step = max(1, len(points0) // max_lines)
    for (x0, y0), (x1, y1), s in zip(points0[::step], points1[::step], scores[::step]):
        colour = (int(255 * (1 - s)), int(255 * s), 0)
        a = (int(round(x0)), int(round(y0)))
        b = (int(round(x1)) + w0, int(round(y1)))
        cv2.line(canvas, a, b, colour, 1, cv2.LINE_AA)
        cv2.circle(canvas, a, 2, colour, -1, cv2.LINE_AA)
        cv2.circle(canvas, b, 2, colour, -1, cv2.LINE_AA)
    if text:
        cv2.putText(
            canvas, text, (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA
        )
    return canvas


def save_rgb(path: str, image: np.ndarray) -> None:
    """Write an RGB image (PNG/JPEG by extension)."""
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f'cannot write image {path}')
