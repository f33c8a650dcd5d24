"""sensor_msgs/Image and CompressedImage -> numpy images for matching, without rclpy.

Works on any object with the message's fields, so it is tested without ROS. Where ROS 2's
cv_bridge is installed it does the decoding; our own checks of size, step and buffer length run
first either way, so a malformed message gives the same clear error on every system.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from glue_ros.core.errors import ImageConversionError

try:  # ROS 2's cv_bridge (a system ROS 2 install); the PyPI 'cv-bridge' is ROS 1's.
    from cv_bridge import CvBridge as _CvBridge

    _BRIDGE = _CvBridge()
except Exception:  # noqa: BLE001 - absent or broken: our converter does the work
    _BRIDGE = None

# encoding -> (numpy dtype, channels)
ENCODINGS = {
    'mono8': (np.uint8, 1),
    '8UC1': (np.uint8, 1),
    'mono16': (np.uint16, 1),
    '16UC1': (np.uint16, 1),
    'rgb8': (np.uint8, 3),
    'bgr8': (np.uint8, 3),
    '8UC3': (np.uint8, 3),
    'rgba8': (np.uint8, 4),
    'bgra8': (np.uint8, 4),
    '8UC4': (np.uint8, 4),
    '32FC1': (np.float32, 1),
}


def image_to_numpy(msg: Any) -> np.ndarray:
    """An (H, W) grey or (H, W, 3) RGB uint8 image from a sensor_msgs/Image.

    mono16 and 32FC1 are scaled to 8 bits by the frame's own range (matching needs contrast,
    not units); non-finite float pixels become 0.
    """
    encoding = msg.encoding
    if encoding not in ENCODINGS:
        raise ImageConversionError(
            f'unsupported encoding {encoding!r}; supported: {", ".join(sorted(ENCODINGS))}'
        )
    dtype, channels = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    if height == 0 or width == 0:
        raise ImageConversionError(f'empty image ({width}x{height})')
    row_bytes = width * channels * np.dtype(dtype).itemsize
    if step < row_bytes:
        raise ImageConversionError(
            f'step {step} is smaller than a row of {width} {encoding} pixels ({row_bytes} bytes)'
        )
    data = msg.data
    if len(data) < step * height:
        raise ImageConversionError(
            f'truncated image: {len(data)} bytes for {height} rows of '
            f'step {step} ({step * height} bytes expected)'
        )
    if _BRIDGE is not None:
        image = np.asarray(_BRIDGE.imgmsg_to_cv2(msg, desired_encoding='passthrough'))
    else:
        buffer = np.frombuffer(memoryview(data), dtype=np.uint8, count=step * height)
        rows = buffer.reshape(height, step)[:, :row_bytes]
        order: Literal['>', '<'] = '>' if msg.is_bigendian else '<'
        image = rows.view(np.dtype(dtype).newbyteorder(order) if dtype != np.uint8 else dtype)
        image = (
            image.reshape(height, width, channels)
            if channels > 1
            else image.reshape(height, width)
        )
    return _normalise(image, encoding)


def _normalise(image: np.ndarray, encoding: str) -> np.ndarray:
    """8-bit grey or RGB, as the matchers take."""
    if encoding in ('bgr8', 'bgra8'):
        return np.ascontiguousarray(image[:, :, 2::-1])
    if encoding in ('rgba8', '8UC4'):
        return np.ascontiguousarray(image[:, :, :3])
    if encoding in ('mono16', '16UC1', '32FC1'):
        values = np.nan_to_num(image.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        low, high = float(values.min()), float(values.max())
        if high <= low:
            return np.zeros(values.shape, np.uint8)
        return ((values - low) * (255.0 / (high - low)) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(image)


def compressed_to_numpy(msg: Any) -> np.ndarray:
    """An (H, W) grey or (H, W, 3) RGB uint8 image from a JPEG/PNG sensor_msgs/CompressedImage."""
    import cv2

    data = np.frombuffer(memoryview(msg.data), dtype=np.uint8)
    if data.size == 0:
        raise ImageConversionError('empty compressed image')
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ImageConversionError(
            f'cannot decode compressed image (format {msg.format!r}, {data.size} bytes)'
        )
    if image.dtype == np.uint16:
        return _normalise(image if image.ndim == 2 else image[:, :, 0], 'mono16')
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, 2::-1])
    if image.ndim == 3:
        return np.ascontiguousarray(image[:, :, ::-1])
    return image


def numpy_to_image_fields(image: np.ndarray, encoding: str | None = None) -> dict[str, Any]:
    """Fields of a sensor_msgs/Image for an (H, W) or (H, W, 3|4) array (rgb8 for 3 channels)."""
    image = np.ascontiguousarray(image)
    if encoding is None:
        encoding = {
            (np.dtype(np.uint8), 2): 'mono8',
            (np.dtype(np.uint16), 2): 'mono16',
            (np.dtype(np.float32), 2): '32FC1',
            (np.dtype(np.uint8), 3): 'rgb8',
        }[(image.dtype, image.ndim)]
    return {
        'height': image.shape[0],
        'width': image.shape[1],
        'encoding': encoding,
        'is_bigendian': 0,
        'step': image.strides[0],
        'data': image.tobytes(),
    }
