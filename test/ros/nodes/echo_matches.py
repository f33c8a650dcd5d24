"""A node in its own process that republishes every Matches message it receives."""

import rclpy
from rclpy.node import Node

from glue_ros.msg import Matches


class EchoMatches(Node):
    """Subscribe `in`, publish the same message on `out`."""

    def __init__(self):
        super().__init__('echo_matches')
        self.pub = self.create_publisher(Matches, 'out', 10)
        self.create_subscription(Matches, 'in', self.pub.publish, 10)


def main():
    """Spin until interrupted."""
    rclpy.init()
    node = EchoMatches()
    try:
        rclpy.spin(node)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
