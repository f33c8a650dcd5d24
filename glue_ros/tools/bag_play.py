"""glue-ros-play BAG: publish a ROS 2 or ROS 1 bag's topics with its timing and /clock.

A replay path that needs no rosbag2: the bag is read with the `rosbags` library and its
messages are published as serialized CDR, so any message type that this ROS 2 environment knows
can be played. Run the node with use_sim_time:=true to follow the bag's clock.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader
from rosbags.typesys import Stores, get_typestore


def ros2_type_name(msgtype: str) -> str:
    """'sensor_msgs/Image' (ROS 1) or 'sensor_msgs/msg/Image' -> 'sensor_msgs/msg/Image'."""
    parts = msgtype.split('/')
    return msgtype if len(parts) == 3 else f'{parts[0]}/msg/{parts[-1]}'


def message_class(msgtype: str) -> type:
    """The rclpy message class of a ROS 2 type name."""
    package, _, name = ros2_type_name(msgtype).split('/')
    return getattr(importlib.import_module(f'{package}.msg'), name)


def read_bag(
    path: Path, topics: Sequence[str] | None = None
) -> tuple[list, Iterator[tuple[Any, int, bytes]]]:
    """(connections, iterator of (connection, timestamp_ns, cdr_bytes)) of a bag in any format."""
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    reader = AnyReader([path], default_typestore=typestore)
    reader.open()
    connections = [c for c in reader.connections if not topics or c.topic in topics]

    def messages() -> Iterator[tuple[Any, int, bytes]]:
        try:
            for conn, stamp, raw in reader.messages(connections=connections):
                if reader.is2:
                    yield conn, stamp, raw
                else:
                    yield conn, stamp, reader.typestore.ros1_to_cdr(raw, conn.msgtype)
        finally:
            reader.close()

    return connections, messages()


def play(
    path: Path,
    rate: float = 1.0,
    topics: Sequence[str] | None = None,
    clock: bool = True,
    loop: bool = False,
    wait_for_subscribers: float = 0.0,
    node: Any = None,
) -> int:
    """Publish the bag; returns the number of messages published."""
    # ROS only here: glue-ros-bag reads bags through this module without ROS
    import rclpy
    from rclpy.qos import QoSProfile
    from rosgraph_msgs.msg import Clock

    own = node is None
    if own:
        rclpy.init()
        node = rclpy.create_node('glue_ros_bag_play')
    published = 0
    try:
        while True:
            connections, stream = read_bag(path, topics)
            publishers = {}
            for conn in connections:
                if conn.topic not in publishers:
                    publishers[conn.topic] = node.create_publisher(
                        message_class(conn.msgtype), conn.topic, QoSProfile(depth=100)
                    )
            clock_pub = node.create_publisher(Clock, '/clock', 10) if clock else None
            deadline = time.monotonic() + wait_for_subscribers
            while time.monotonic() < deadline and not all(
                p.get_subscription_count() for p in publishers.values()
            ):
                time.sleep(0.05)
            start_wall, start_bag = None, None
            for conn, stamp, cdr in stream:
                if start_wall is None:
                    start_wall, start_bag = time.monotonic(), stamp
                due = start_wall + (stamp - start_bag) * 1e-9 / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if clock_pub is not None:
                    msg = Clock()
                    msg.clock.sec, msg.clock.nanosec = divmod(int(stamp), 1_000_000_000)
                    clock_pub.publish(msg)
                publishers[conn.topic].publish(bytes(cdr))
                published += 1
            if not loop:
                return published
    finally:
        if own:
            node.destroy_node()
            rclpy.try_shutdown()


def main(argv: list[str] | None = None) -> int:
    """Entry point of glue-ros-play."""
    parser = argparse.ArgumentParser(prog='glue-ros-play', description=__doc__)
    parser.add_argument('bag', type=Path, help='ROS 2 bag directory (sqlite3/MCAP) or .bag')
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed factor')
    parser.add_argument('--topics', nargs='*', help='only these topics')
    parser.add_argument('--no-clock', action='store_true', help='do not publish /clock')
    parser.add_argument('--loop', action='store_true', help='play again from the start')
    parser.add_argument(
        '--wait-for-subscribers',
        type=float,
        default=2.0,
        metavar='S',
        help='wait up to S seconds for every topic to have a subscriber',
    )
    args = parser.parse_args(argv)
    if not args.bag.exists():
        print(f'glue-ros-play: error: no bag at {args.bag}', file=sys.stderr)
        return 2
    if args.rate <= 0:
        print('glue-ros-play: error: --rate must be positive', file=sys.stderr)
        return 2
    try:
        count = play(
            args.bag,
            args.rate,
            args.topics,
            not args.no_clock,
            args.loop,
            args.wait_for_subscribers,
        )
    except KeyboardInterrupt:
        return 0
    print(f'published {count} messages from {args.bag}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
