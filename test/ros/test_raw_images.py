"""Frames stay serialized until the worker takes one: stamps read from the bytes, one decode."""

import time

import numpy as np
import pytest
from ros_helpers import in_child_process, require_ros

require_ros()

from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image  # noqa: E402

from glue_ros.core.errors import ImageConversionError, InputImageError  # noqa: E402
from glue_ros.core.image_conversion import numpy_to_image_fields  # noqa: E402
from glue_ros.ros import raw_images  # noqa: E402
from glue_ros.testing import real_images  # noqa: E402


def image_message(image, sec=0, nanosec=0, **overrides):
    msg = Image(**{**numpy_to_image_fields(image), **overrides})
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
    msg.header.frame_id = 'camera'
    return msg


def test_stamp_read_from_the_bytes_and_the_image_decoded_as_sent():
    image = real_images.homography_sequence('astronaut', 1).frames[0]
    raw = serialize_message(image_message(image, 1_700_000_123, 456_789_000))
    assert raw_images.stamp_of(raw, Image) == pytest.approx(1_700_000_123.456789, abs=1e-6)
    header, decoded = raw_images.decode(raw, Image)
    assert header.frame_id == 'camera' and header.stamp.nanosec == 456_789_000
    np.testing.assert_array_equal(decoded, image)
    import cv2

    ok, jpeg = cv2.imencode('.png', image[:, :, ::-1])
    compressed = CompressedImage(format='png', data=jpeg.tobytes())
    compressed.header.stamp.sec = 42
    raw = serialize_message(compressed)
    assert raw_images.stamp_of(raw, CompressedImage) == 42.0
    np.testing.assert_array_equal(raw_images.decode(raw, CompressedImage)[1], image)


def test_malformed_bytes_and_images_raise_glue_ros_errors():
    image = np.zeros((8, 8), np.uint8)
    raw = serialize_message(image_message(image, 3))
    with pytest.raises(InputImageError, match='too small'):
        raw_images.decode(raw, Image)
    with pytest.raises(ImageConversionError, match='cannot deserialize'):
        raw_images.decode(raw[:20], Image)
    # An encapsulation we do not read in place is deserialized whole; garbage is an error.
    with pytest.raises(ImageConversionError, match='cannot deserialize'):
        raw_images.stamp_of(b'\x00\x03' + raw[2:20], Image)


@in_child_process
def test_frames_replaced_before_the_worker_takes_them_are_never_decoded(monkeypatch):
    """In process: the worker is held while 40 frames arrive; only the one it takes is decoded."""
    import rclpy
    from rclpy.parameter import Parameter

    from glue_ros.ros import matcher_node

    decoded = []
    decode = raw_images.decode
    monkeypatch.setattr(
        raw_images, 'decode', lambda raw, msg_type: decoded.append(raw) or decode(raw, msg_type)
    )
    sequence = real_images.homography_sequence('astronaut', 2)
    raws = [serialize_message(image_message(f, 10 + k)) for k, f in enumerate(sequence.frames)]
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = matcher_node.MatcherNode(
            context=context,
            parameter_overrides=[
                Parameter('autostart', value=False),
                Parameter('max_keypoints', value=256),
            ],
        )
        node.trigger_configure()
        node.trigger_activate()
        with node.inference:  # the worker is busy with another inference
            node._on_image(raws[0], None)
            deadline = time.monotonic() + 10
            while not decoded and time.monotonic() < deadline:
                time.sleep(0.01)  # the worker takes and decodes the first frame, then waits
            for k in range(40):
                node._on_image(raws[k % 2], None)
        deadline = time.monotonic() + 60
        while node.stats['processed'] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = node.stats
        node.trigger_deactivate()
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)
    assert len(decoded) == 2 and decoded[1] is raws[1]  # the first, and the newest of 40
    assert stats['received'] == 41 and stats['processed'] == 2 and stats['dropped'] == 39
    assert stats['bad'] == 0
