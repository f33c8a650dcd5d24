"""VinsFeatures (glue_ros.frontend.vins) -> the sensor_msgs/PointCloud VINS-Fusion reads."""

from __future__ import annotations

import array

import numpy as np
from geometry_msgs.msg import Point32
from numpy.typing import ArrayLike
from sensor_msgs.msg import ChannelFloat32, PointCloud
from std_msgs.msg import Header

from glue_ros.core.camera import CameraModel
from glue_ros.frontend.vins import VinsFeatureBuilder, VinsFeatures


def to_float_array(values: ArrayLike) -> array.array:
    """array.array('f') of `values`: rclpy takes it without checking each element."""
    out = array.array('f')
    out.frombytes(np.ascontiguousarray(np.asarray(values, np.float32).reshape(-1)).tobytes())
    return out


def _point32_list(xyz: np.ndarray) -> list:
    """geometry_msgs/Point32 objects for (N, 3) points, a few times faster than the setters.

    A PointCloud's points cannot be filled from a buffer, one object per point is unavoidable;
    creating them without the generated setters (which only check that each value is a float,
    true by construction of tolist()) saves about 1 us a point. Falls back to the constructor
    when the generated class does not have the expected slots.
    """
    rows = np.asarray(xyz, np.float32).tolist()
    slots = set(getattr(Point32, '__slots__', ()))
    if not {'_x', '_y', '_z'} <= slots or not slots <= {'_x', '_y', '_z', '_check_fields'}:
        return [Point32(x=x, y=y, z=z) for x, y, z in rows]
    new, check = Point32.__new__, '_check_fields' in slots
    points = []
    for x, y, z in rows:
        p = new(Point32)
        p._x, p._y, p._z = x, y, z
        if check:
            p._check_fields = False
        points.append(p)
    return points


def point_cloud_message(header: Header, features: VinsFeatures) -> PointCloud:
    """sensor_msgs/msg/PointCloud (rclpy) of VinsFeatures; channel values set as buffers."""
    msg = PointCloud()
    msg.header = header
    msg.points = _point32_list(features.points_xyz())
    msg.channels = [
        ChannelFloat32(name=name, values=to_float_array(values))
        for name, values in features.channels()
    ]
    return msg


class VinsCloudBuilder(VinsFeatureBuilder):
    """VinsFeatureBuilder that also makes the rclpy message (the node's side)."""

    def build(
        self,
        header: Header,
        track_ids: ArrayLike,
        points_cam0: np.ndarray,
        camera0: CameraModel,
        points_cam1: np.ndarray | None = None,
        camera1: CameraModel | None = None,
    ) -> PointCloud:
        """sensor_msgs/msg/PointCloud (rclpy) of one frame, header = the query image's."""
        return point_cloud_message(
            header, self.compute(header, track_ids, points_cam0, camera0, points_cam1, camera1)
        )


__all__ = ['VinsCloudBuilder', 'point_cloud_message', 'to_float_array']
