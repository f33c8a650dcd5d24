"""The matcher node's outputs: front-end records in, rclpy messages out.

Everything the node publishes per frame goes through :class:`Outputs`, which the node creates at
configure; what the messages hold is decided by glue_ros.frontend.records, shared with
glue-ros-bag.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.lifecycle import LifecycleNode
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image, PointCloud

from glue_ros.core.camera import CameraModel
from glue_ros.core.drawing import draw_matches
from glue_ros.core.image_conversion import numpy_to_image_fields
from glue_ros.core.scheduling import Frame
from glue_ros.core.types import Features
from glue_ros.frontend import records
from glue_ros.frontend.frontend import FrameOutput
from glue_ros.frontend.vins import VinsOutput
from glue_ros.matcher import MatcherConfig
from glue_ros.msg import Keypoints, Matches
from glue_ros.ros.messages import to_message
from glue_ros.ros.vins import point_cloud_message

if TYPE_CHECKING:  # the node imports this module
    from glue_ros.ros.matcher_node import MatcherNode


class Outputs:
    """The lifecycle publishers of one configuration and what goes out on each."""

    def __init__(self, node: LifecycleNode, params: dict, qos: QoSProfile) -> None:
        self.node = node
        self.params = params
        create = node.create_lifecycle_publisher
        self.matches = create(Matches, 'matches', qos)
        self.keypoints = (
            create(Keypoints, 'keypoints', qos) if params['publish_keypoints'] else None
        )
        self.debug = create(Image, 'matches/image', qos) if params['publish_debug_image'] else None
        self.vins = self.vins_pub = None
        if params['publish_vins_features']:
            self.vins = VinsOutput(params['vins_velocity_units'])
            self.vins_pub = create(PointCloud, params['vins_topic'], qos)

    def publishers(self) -> list:
        """The publishers created, for the node to destroy at cleanup."""
        return [
            p for p in (self.matches, self.keypoints, self.debug, self.vins_pub) if p is not None
        ]

    def keypoints_of(self, frame: Frame, features: Features, config: MatcherConfig) -> None:
        """Keypoints of a frame's features (LightGlue only: detector-free has none)."""
        if self.keypoints is None or config.matcher != 'lightglue':
            return
        self.keypoints.publish(
            to_message(
                records.features_record(
                    frame.header, features, config.features, self.params['publish_descriptors']
                )
            )
        )

    def matches_of(
        self,
        out: FrameOutput,
        frame: Frame,
        reference: Frame,
        *,
        mode: int,
        matcher: str,
        dropped: int,
        arrival: float,
    ) -> float:
        """Matches of a FrameOutput (+ the debug image); returns the latency, ms."""
        latency_ms = (time.monotonic() - arrival) * 1e3
        self.matches.publish(
            to_message(
                records.output_record(
                    out,
                    frame.header,
                    reference.header,
                    mode=mode,
                    matcher=matcher,
                    query_size=frame.size,
                    reference_size=reference.size,
                    latency_ms=latency_ms,
                    dropped_frames=dropped,
                )
            )
        )
        if self.debug is not None:
            result = out.result
            canvas = draw_matches(
                frame.image, reference.image, result.points0, result.points1, result.scores
            )
            self.debug.publish(Image(header=frame.header, **numpy_to_image_fields(canvas, 'rgb8')))
        return latency_ms

    def vins_of(
        self,
        out: FrameOutput,
        frame: Frame,
        sequences: int,
        camera: Callable[[int], CameraModel | None],
        stereo: bool,
    ) -> None:
        """VINS-Fusion features of a FrameOutput, when asked for and the cameras are known."""
        if self.vins is None:
            return
        features = self.vins.features(out, frame.header, sequences, camera, stereo)
        if features is not None:
            self.vins_pub.publish(point_cloud_message(frame.header, features))


def diagnostics_message(node: MatcherNode) -> DiagnosticArray:
    """/diagnostics of the node now: its StreamHealth report, in every state."""
    params = node.params
    report = node.health.report(
        time.monotonic(),
        node.state,
        node.matcher.describe() if node.matcher is not None else None,
        error=node.matcher_error,
        max_drop_ratio=params['diagnostics_max_drop_ratio'],
        max_latency_ms=params['diagnostics_max_latency_ms'],
        unit='pairs' if params['mode'] == 'stereo' else 'frames',
    )
    status = DiagnosticStatus(
        level=bytes([report.level]),
        name=f'{node.get_name()}: matching',
        message=report.message,
        hardware_id=params['device'],
        values=[KeyValue(key=k, value=v) for k, v in report.values.items()],
    )
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = node.get_clock().now().to_msg()
    return msg


__all__ = ['Outputs', 'diagnostics_message']
