"""Topic names the node derives, following the conventions of ROS 2 camera drivers."""

from __future__ import annotations

from rclpy.node import Node


def camera_info_topic(node: Node, image_topic: str, info_topic: str) -> str:
    """Where the CameraInfo of `image_topic` is published.

    image_transport's rule: beside the image, `<image namespace>/camera_info`, so remapping
    `image:=/cam/image_raw` alone is enough to hear a driver's `/cam/camera_info`. A remap of
    `info_topic` itself (e.g. `camera_info:=/other/info`) overrides the rule.
    """
    remapped = node.resolve_topic_name(info_topic)
    if remapped != node.resolve_topic_name(info_topic, only_expand=True):
        return remapped
    image = node.resolve_topic_name(image_topic)
    return image.rsplit('/', 1)[0] + '/camera_info'
