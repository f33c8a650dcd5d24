"""Bags for the glue-ros-bag tests: real images and CameraInfo written with rosbags, and read."""

from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import Writer as Writer2
from rosbags.typesys import Stores, get_typestore

ROOT = Path(__file__).resolve().parents[2]
SIZE = (320, 240)
FRAMES = 8
T0_NS = 1_700_000_000 * 10**9
DT_NS = 100_000_000
BAG_DELAY_NS = 7_000_000  # images are recorded a little after their stamp
FAST = ['--max-keypoints', '512', '--no-progress']
K = [260.0, 0.0, 160.0, 0.0, 260.0, 120.0, 0.0, 0.0, 1.0]
BASELINE = 12


def image_stamp(i):
    return T0_NS + i * DT_NS


def make_header(types, i, frame_id, ros1=False):
    stamp = types['builtin_interfaces/msg/Time'](
        sec=image_stamp(i) // 10**9, nanosec=image_stamp(i) % 10**9
    )
    if ros1:
        return types['std_msgs/msg/Header'](seq=i, stamp=stamp, frame_id=frame_id)
    return types['std_msgs/msg/Header'](stamp=stamp, frame_id=frame_id)


def image_message(types, image, header):
    return types['sensor_msgs/msg/Image'](
        header=header,
        height=image.shape[0],
        width=image.shape[1],
        encoding='rgb8',
        is_bigendian=0,
        step=image.shape[1] * 3,
        data=np.ascontiguousarray(image).reshape(-1),
    )


def camera_info_message(types, header, ros1=False, baseline=0.0):
    k = np.array(K)
    p = np.array([K[0], 0, K[2], -K[0] * baseline, 0, K[4], K[5], 0, 0, 0, 1, 0], float)
    names = ('D', 'K', 'R', 'P') if ros1 else ('d', 'k', 'r', 'p')
    arrays = dict(zip(names, (np.zeros(5), k, np.eye(3).ravel(), p)))
    roi = types['sensor_msgs/msg/RegionOfInterest'](
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    return types['sensor_msgs/msg/CameraInfo'](
        header=header,
        height=SIZE[1],
        width=SIZE[0],
        distortion_model='plumb_bob',
        **arrays,
        binning_x=0,
        binning_y=0,
        roi=roi,
    )


def write_ros2_bag(path, frames, topic='/cam0/image_raw', extra=None):
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    types = typestore.types
    with Writer2(path, version=8) as writer:
        conn = writer.add_connection(topic, 'sensor_msgs/msg/Image', typestore=typestore)
        info = writer.add_connection(
            '/cam0/camera_info', 'sensor_msgs/msg/CameraInfo', typestore=typestore
        )
        for i, image in enumerate(frames):
            header = make_header(types, i, 'cam0')
            writer.write(
                conn,
                image_stamp(i) + BAG_DELAY_NS,
                typestore.serialize_cdr(
                    image_message(types, image, header), 'sensor_msgs/msg/Image'
                ),
            )
            writer.write(
                info,
                image_stamp(i) + BAG_DELAY_NS,
                typestore.serialize_cdr(
                    camera_info_message(types, header), 'sensor_msgs/msg/CameraInfo'
                ),
            )
        if extra:
            extra(writer, typestore)
    return path


def read_bag(path):
    """topic -> list of (bag timestamp, message), and the connections' types."""
    out, types = {}, {}
    with AnyReader([path]) as reader:
        for conn in reader.connections:
            types[conn.topic] = conn.msgtype
        for conn, bag_ns, raw in reader.messages():
            out.setdefault(conn.topic, []).append((bag_ns, reader.deserialize(raw, conn.msgtype)))
    return out, types


def stamp_ns(header):
    return header.stamp.sec * 10**9 + header.stamp.nanosec
