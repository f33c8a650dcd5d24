"""Image messages of every common encoding, and malformed ones, through our converter."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from glue_ros.core import image_conversion as conv
from glue_ros.core.image_conversion import (
    ImageConversionError,
    compressed_to_numpy,
    image_to_numpy,
)
from glue_ros.testing.real_images import photo


@pytest.fixture(scope='module')
def rgb():
    return np.ascontiguousarray(photo('astronaut')[:120, :160])


def message(array, encoding, step=None, bigendian=False, data=None):
    array = np.ascontiguousarray(array)
    if bigendian:
        array = array.astype(array.dtype.newbyteorder('>'))
    row = array.strides[0]
    step = row if step is None else step
    raw = array.tobytes()
    if step > row:  # padded rows
        rows = [raw[i * row : (i + 1) * row] + b'\0' * (step - row) for i in range(array.shape[0])]
        raw = b''.join(rows)
    return SimpleNamespace(
        height=array.shape[0],
        width=array.shape[1],
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=step,
        data=raw if data is None else data,
    )


@pytest.fixture(autouse=True, params=['fallback'])
def no_bridge(monkeypatch, request):
    """Test our own converter (cv_bridge, where present, is exercised by its own tests)."""
    monkeypatch.setattr(conv, '_BRIDGE', None)


def test_colour_encodings(rgb):
    bgr = rgb[:, :, ::-1]
    np.testing.assert_array_equal(image_to_numpy(message(rgb, 'rgb8')), rgb)
    np.testing.assert_array_equal(image_to_numpy(message(bgr, 'bgr8')), rgb)
    rgba = np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(image_to_numpy(message(rgba, 'rgba8')), rgb)
    bgra = np.concatenate([bgr, np.full(rgb.shape[:2] + (1,), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(image_to_numpy(message(bgra, 'bgra8')), rgb)


def test_mono_encodings(rgb):
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    np.testing.assert_array_equal(image_to_numpy(message(grey, 'mono8')), grey)
    mono16 = grey.astype(np.uint16) * 256 + 17
    for big in (False, True):
        out = image_to_numpy(message(mono16, 'mono16', bigendian=big))
        assert out.dtype == np.uint8
        expected = (grey.astype(float) - grey.min()) * 255 / (grey.max() - grey.min())
        assert np.abs(out - expected).max() <= 1.0
    depth = grey.astype(np.float32) / 255.0
    depth[0, 0] = np.nan
    out = image_to_numpy(message(depth, '32FC1'))
    assert out.dtype == np.uint8 and out[0, 0] == 0 and out.max() == 255


def test_padded_rows_are_cropped(rgb):
    out = image_to_numpy(message(rgb, 'rgb8', step=rgb.shape[1] * 3 + 64))
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize(
    'case, pattern',
    [
        ('short_step', 'step'),
        ('truncated', 'truncated'),
        ('zero', 'empty'),
        ('encoding', 'unsupported encoding'),
    ],
)
def test_malformed_messages_raise_clear_errors(rgb, case, pattern):
    msg = message(rgb, 'rgb8')
    if case == 'short_step':
        msg.step = rgb.shape[1] * 3 - 1
    elif case == 'truncated':
        msg.data = msg.data[: len(msg.data) // 2]
    elif case == 'zero':
        msg.height = 0
    else:
        msg.encoding = 'yuv422_yuy2_weird'
    with pytest.raises(ImageConversionError, match=pattern):
        image_to_numpy(msg)


def test_compressed_jpeg_and_png(rgb):
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    png = SimpleNamespace(format='png', data=cv2.imencode('.png', bgr)[1].tobytes())
    np.testing.assert_array_equal(compressed_to_numpy(png), rgb)
    jpeg = SimpleNamespace(format='jpeg', data=cv2.imencode('.jpg', bgr)[1].tobytes())
    out = compressed_to_numpy(jpeg)
    assert out.shape == rgb.shape and np.abs(out.astype(int) - rgb).mean() < 6
    with pytest.raises(ImageConversionError, match='cannot decode'):
        compressed_to_numpy(SimpleNamespace(format='jpeg', data=b'\xff\xd8 not a jpeg'))
    with pytest.raises(ImageConversionError, match='empty'):
        compressed_to_numpy(SimpleNamespace(format='jpeg', data=b''))


def test_round_trip_of_image_fields(rgb):
    fields = conv.numpy_to_image_fields(rgb)
    np.testing.assert_array_equal(image_to_numpy(SimpleNamespace(**fields)), rgb)
