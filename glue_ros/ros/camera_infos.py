"""The calibration of each camera the node matches, from its CameraInfo topic."""

from __future__ import annotations

from collections.abc import Callable

from rclpy.node import Node
from sensor_msgs.msg import CameraInfo

from glue_ros.core.camera import CameraModel
from glue_ros.core.errors import CameraModelError

THROTTLE_S = 5.0


class CameraInfos:
    """camera id -> CameraModel of the latest valid CameraInfo; subscriptions made by the node.

    Camera 0 is the sequential camera or the left one, camera 1 the right one; rectified
    (stereo) cameras normalize with P instead of K and D.
    """

    def __init__(self) -> None:
        self.models: dict[int, CameraModel] = {}
        self.topics: dict[int, str] = {}
        self._logger = None

    def subscribe(
        self, node: Node, topics: dict, rectified: bool, on_bad: Callable[[str], None]
    ) -> list:
        """Subscribe each camera's topic; returns the subscriptions (the node destroys them)."""
        self.models, self.topics, self._logger = {}, dict(topics), node.get_logger()

        def receive(msg: CameraInfo, camera_id: int) -> None:
            try:
                self.models[camera_id] = CameraModel.from_camera_info(
                    msg, camera_id=camera_id, rectified=rectified
                )
            except CameraModelError as exc:
                on_bad(f'camera_info of camera {camera_id} ignored: {exc}')

        return [
            node.create_subscription(CameraInfo, topic, lambda m, i=camera_id: receive(m, i), 10)
            for camera_id, topic in self.topics.items()
        ]

    def get(self, camera_id: int) -> CameraModel | None:
        """The camera's model, None while its CameraInfo has not arrived."""
        return self.models.get(camera_id)

    def for_vins(self, camera_id: int) -> CameraModel | None:
        """As :meth:`get`, saying (throttled) that VINS features wait for a missing one."""
        camera = self.models.get(camera_id)
        if camera is None and self._logger is not None:
            topic = self.topics.get(camera_id, 'camera_info')
            self._logger.warning(
                f'no CameraInfo received on {topic} yet: VINS features are '
                f'not published until it arrives',
                throttle_duration_sec=THROTTLE_S,
            )
        return camera


__all__ = ['CameraInfos']
