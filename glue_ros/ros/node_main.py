"""The matcher node's process: signals, allocator, executor, and an orderly stop.

`main` is the entry point of `ros2 run glue_ros matcher_node` (scripts/matcher_node) and of
`python -m glue_ros.ros.node_main`.
"""

from __future__ import annotations

import os
import time

import rclpy
import rclpy.executors
from rclpy.experimental import EventsExecutor
from rclpy.signals import SignalHandlerOptions

from glue_ros.core.allocator import configure_for_streaming
from glue_ros.core.errors import ParameterError
from glue_ros.core.scheduling import StopRequest
from glue_ros.ros import parameters as node_parameters
from glue_ros.ros.matcher_node import MatcherNode

ROSOUT_GRACE_S = 0.25  # for the last log line to leave before the node's publishers go


def make_executor(context: rclpy.Context | None = None) -> rclpy.executors.Executor:
    """rclpy's EventsExecutor, the node's: one thread, its event queue in C++.

    With a camera at 60 Hz rclpy's Python executors rebuild and scan a wait set for every
    image: the MultiThreadedExecutor spent 40% of a core and the interpreter lock doing so, and
    matching under the stream took 1.8-2.9x its time one frame at a time (docs/benchmarks.md, a
    stream at 60 Hz). Callbacks now run one at a time; nothing in the node needs more: the
    worker thread matches and publishes, /diagnostics has a thread of its own.
    GLUE_ROS_EXECUTOR=multi keeps rclpy's MultiThreadedExecutor, to compare.
    """
    if os.environ.get('GLUE_ROS_EXECUTOR') == 'multi':
        return rclpy.executors.MultiThreadedExecutor(num_threads=3, context=context)
    return EventsExecutor(context=context)


def run(args: list[str] | None = None) -> int:
    """Run a MatcherNode until SIGINT / SIGTERM; 2 when the parameters stop the start-up."""
    stop = StopRequest()
    stop.install()
    # Before the big allocations: memory that stays flat over hours (glue_ros.core.allocator);
    # GLUE_ROS_ALLOCATOR=system keeps the C library's own settings.
    allocator = os.environ.get('GLUE_ROS_ALLOCATOR') != 'system' and configure_for_streaming()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = MatcherNode()
        if node.params['autostart']:
            node.params = node_parameters.read(node)  # a bad value stops the start-up
    except ParameterError as exc:
        rclpy.logging.get_logger('glue_ros_matcher').fatal(f'cannot start: {exc}')
        rclpy.try_shutdown()
        return 2
    node.get_logger().info(
        'allocator: '
        + (
            'glibc mmap threshold fixed at 16 MiB, 2 arenas'
            if allocator
            else "the C library's own settings"
        )
    )
    if node.params['autostart']:
        node.start_automatically()
    else:
        node.get_logger().info('unconfigured: waiting for a lifecycle manager (autostart off)')
    executor = make_executor()
    executor.add_node(node)
    try:
        # A signal is seen within one wait (0.1 s).
        while not stop.requested.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except rclpy.executors.ExternalShutdownException:
        pass
    finally:
        # In this order: the frame in progress is published, the final line reaches /rosout,
        # and only then does the context go.
        node.close()
        node.get_logger().info(f'stopping: {node.stats}')
        # /rosout is reliable, but a sample still in flight when its writer is deleted is lost
        # (seen in about 1 of 8 stops); rcl gives no handle to wait for its acknowledgement.
        time.sleep(ROSOUT_GRACE_S)
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


def main(args: list[str] | None = None) -> int:
    """Entry point of `ros2 run glue_ros matcher_node` and the matcher_node script."""
    return run(args)


__all__ = ['main', 'make_executor', 'run']

if __name__ == '__main__':
    raise SystemExit(main())
