"""The library's stdlib log records reach the node's rclpy log (terminal and /rosout)."""

import subprocess
import sys
import textwrap

import pytest

rclpy = pytest.importorskip('rclpy')

SCRIPT = textwrap.dedent("""
    import logging
    import rclpy
    from glue_ros.ros.log_bridge import forward_library_logs, stop_forwarding
    rclpy.init()
    node = rclpy.create_node('bridge_probe')
    handler = forward_library_logs(node.get_logger())
    logging.getLogger('glue_ros.backends.engine_cache').info('building engine, 3 s so far')
    logging.getLogger('glue_ros.frontend').warning('camera_info missing')
    logging.getLogger('glue_ros.frontend').debug('not shown at the node level INFO')
    stop_forwarding(handler)
    logging.getLogger('glue_ros.frontend').error('after: not the node any more')
    node.destroy_node()
    rclpy.shutdown()
""")


def test_library_records_appear_in_the_node_log():
    proc = subprocess.run(
        [sys.executable, '-c', SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    info = [line for line in lines if 'building engine, 3 s so far' in line]
    assert len(info) == 1 and '[INFO]' in info[0] and '[bridge_probe]' in info[0]
    assert 'glue_ros.backends.engine_cache:' in info[0]
    warn = [line for line in lines if 'camera_info missing' in line]
    assert len(warn) == 1 and '[WARN]' in warn[0] and '[bridge_probe]' in warn[0]
    assert not any('not shown' in line for line in lines)
    after = [line for line in lines if 'after: not the node any more' in line]
    assert len(after) == 1 and '[bridge_probe]' not in after[0]
