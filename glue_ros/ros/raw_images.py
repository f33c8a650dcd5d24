"""Images as they arrive: serialized bytes until the worker takes one.

The node subscribes its images raw (serialized). Most frames of a fast camera are replaced by a
newer one before the worker gets to them; such a frame costs the copy rclpy makes and a read of
its stamp, not a deserialization, a conversion and a check that compete with inference for the
cores and the interpreter lock. The frame the worker takes is decoded and checked there, once.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import Any

import numpy as np
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from glue_ros.core.errors import GlueRosError, ImageConversionError
from glue_ros.core.image_conversion import compressed_to_numpy, image_to_numpy
from glue_ros.core.scheduling import Frame
from glue_ros.matcher import check_image

# The two image message classes the node subscribes raw.
ImageType = type[Image] | type[CompressedImage]
# CDR encapsulations of plain (final) data, XCDR1 and XCDR2, big and little endian: the message
# starts right after these 4 bytes, and a header's stamp (int32 sec, uint32 nanosec) first.
_PLAIN = {b'\x00\x00': '>', b'\x00\x01': '<', b'\x00\x06': '>', b'\x00\x07': '<'}


def stamp_ns_of(raw: bytes, msg_type: ImageType) -> int:
    """The header stamp (ns) of a serialized Image or CompressedImage, read without decoding.

    Another encapsulation than plain CDR is deserialized whole; a message that cannot be read
    raises ImageConversionError.
    """
    order = _PLAIN.get(bytes(raw[:2]))
    if order is not None and len(raw) >= 12:
        sec, nanosec = struct.unpack_from(order + 'iI', raw, 4)
    else:
        stamp = _deserialize(raw, msg_type).header.stamp
        sec, nanosec = stamp.sec, stamp.nanosec
    return int(sec) * 1_000_000_000 + int(nanosec)


def stamp_of(raw: bytes, msg_type: ImageType) -> float:
    """The header stamp (s) of a serialized image message (see :func:`stamp_ns_of`)."""
    return stamp_ns_of(raw, msg_type) / 1e9


def decode(raw: bytes, msg_type: ImageType) -> tuple[Header, np.ndarray]:
    """(header, image) of a serialized image message, checked for matching.

    Raises ImageConversionError or InputImageError (a glue_ros error) on a malformed image.
    """
    msg = _deserialize(raw, msg_type)
    image = compressed_to_numpy(msg) if msg_type is CompressedImage else image_to_numpy(msg)
    check_image(image)
    return msg.header, image


def decode_frames(frames: Iterable[Frame], msg_type: ImageType) -> str | None:
    """Decode the serialized frames of a job (glue_ros.core.scheduling.Frame).

    Returns why the job is a bad frame when one image is malformed, else None.
    """
    for frame in frames:
        side = frame.side + ' ' if frame.side else ''
        try:
            frame.decode(lambda raw: decode(raw, msg_type))
        except GlueRosError as exc:
            return f'{side}image skipped: {exc}'
        except Exception as exc:  # noqa: BLE001 - a bad frame must never end the node
            return f'{side}image skipped after an unexpected {type(exc).__name__}: {exc}'
    return None


def _deserialize(raw: bytes, msg_type: ImageType) -> Any:
    try:
        return deserialize_message(raw, msg_type)
    except Exception as exc:  # noqa: BLE001 - rclpy raises several kinds for bad bytes
        raise ImageConversionError(
            f'cannot deserialize {msg_type.__name__} ({len(raw)} bytes): {exc}'
        ) from exc


__all__ = ['stamp_of', 'stamp_ns_of', 'decode', 'decode_frames']
