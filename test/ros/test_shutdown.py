"""Stopping the node while it matches a frame: the frame is published, the last word is said.

A node under `ros2 launch` or in a terminal is stopped by SIGINT, often while the worker is in
the middle of a frame, and a terminal's Ctrl-C reaches it twice (once from the terminal, once
from launch). The worker must finish or stop before the ROS context goes, so no publish fails,
no frame is counted bad, the final `stopping:` line reaches /rosout and the exit code is 0.
"""

import ast
import re
import signal
import time

import pytest
from ros_helpers import require_ros

require_ros()

from glue_ros.testing import real_images  # noqa: E402
from glue_ros.testing.harness import MatcherProcess  # noqa: E402


@pytest.fixture(scope='module')
def sequence():
    return real_images.homography_sequence('astronaut', 8)


@pytest.mark.parametrize('signals', [1, 2], ids=['one SIGINT', 'two SIGINTs'])
def test_sigint_during_a_frame_stops_cleanly(tmp_path, sequence, signals):
    from rcl_interfaces.msg import Log
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    node = MatcherProcess(tmp_path, {'mode': 'sequential'}, reliable_images=True)
    rosout = []
    node.node.create_subscription(
        Log,
        '/rosout',
        rosout.append,
        QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE),
    )
    try:
        node.wait_connected(120)
        # Frames every 50 ms, faster than the node matches: from the second match on, the
        # worker takes the next frame as soon as it publishes, so it is always mid-frame.
        k = 0
        deadline = time.monotonic() + 60
        while len(node.matches) < 2 and time.monotonic() < deadline:
            node.publish('image', sequence.frames[k % len(sequence.frames)], 100 + 0.05 * k)
            node.spin(0.05)
            k += 1
        assert len(node.matches) >= 2, node.log()
        node.publish('image', sequence.frames[k % len(sequence.frames)], 100 + 0.05 * k)
        node.spin(0.15)  # the worker has taken this frame: a match takes 100s of ms here
        for _ in range(signals):
            node.proc.send_signal(signal.SIGINT)
            node.spin(0.05)
        deadline = time.monotonic() + 30
        while node.proc.poll() is None and time.monotonic() < deadline:
            node.spin(0.1)
        node.spin(0.5)  # the last /rosout samples
        code = node.proc.poll()
    finally:
        node.close()
    log = node.log()
    assert code == 0, log
    for trouble in (
        'Traceback',
        'KeyboardInterrupt',
        'RCLError',
        'context is invalid',
        'frame skipped',
    ):
        assert trouble not in log, log
    stats = re.search(r'stopping: (\{.*\})', log)
    assert stats, log
    totals = ast.literal_eval(stats.group(1))
    assert totals['bad'] == 0 and totals['processed'] >= 3, totals
    # Every frame that reached the node is accounted for, the one in progress included.
    assert totals['received'] == totals['processed'] + totals['dropped'], totals
    said = [m.msg for m in rosout if m.name.endswith('glue_ros_matcher')]
    assert any(text.startswith('stopping:') for text in said), said[-5:]
