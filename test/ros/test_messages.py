"""The glue_ros messages: fields, fast flat arrays, and a round trip between two processes."""

from pathlib import Path

import numpy as np
import pytest
from ros_helpers import require_ros

require_ros()

from glue_ros.core.types import MatchResult  # noqa: E402
from glue_ros.frontend import records  # noqa: E402
from glue_ros.msg import Keypoints, Matches  # noqa: E402
from glue_ros.ros import messages  # noqa: E402
from glue_ros.testing import harness  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def random_result(m, rng):
    return MatchResult(
        points0=(rng.random((m, 2)) * 640).astype(np.float32),
        points1=(rng.random((m, 2)) * 640).astype(np.float32),
        scores=rng.random(m).astype(np.float32),
        indices0=rng.permutation(m).astype(np.int32),
        indices1=rng.permutation(m).astype(np.int32),
        num_keypoints0=m + 7,
        num_keypoints1=m + 9,
        layers_used=4,
        layers_total=9,
        timing_ms={'extract': 12.5, 'match': 30.25},
    )


def build(result, rng):
    from std_msgs.msg import Header

    header, ref = Header(frame_id='cam_left'), Header(frame_id='cam_right')
    header.stamp.sec, ref.stamp.sec = 100, 99
    return messages.matches_message(
        result,
        header,
        ref,
        mode=Matches.MODE_SEQUENTIAL,
        matcher='lightglue/xfeat',
        query_size=(640, 480),
        reference_size=(640, 480),
        track_ids=rng.integers(0, 2**40, len(result)).astype(np.uint64),
        latency_ms=55.5,
        dropped_frames=3,
    )


def test_matches_message_holds_flat_arrays():
    rng = np.random.default_rng(0)
    result = random_result(2000, rng)
    msg = build(result, rng)
    arrays = messages.matches_arrays(msg)
    np.testing.assert_array_equal(arrays['query_points'], result.points0)
    np.testing.assert_array_equal(arrays['reference_points'], result.points1)
    np.testing.assert_array_equal(arrays['query_indices'], result.indices0)
    assert len(msg.query_points) == 4000 and len(msg.confidences) == 2000
    assert (msg.layers_used, msg.layers_total) == (4, 9)
    assert msg.extract_ms == pytest.approx(12.5) and msg.dropped_frames == 3


def msg_fields(name):
    """The field names of msg/<name>.msg, in order (constants left out)."""
    fields = []
    for line in (ROOT / 'msg' / f'{name}.msg').read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line and '=' not in line:
            fields.append(line.split()[1])
    return fields


@pytest.mark.parametrize(
    'record, name', [(records.MatchesRecord, 'Matches'), (records.KeypointsRecord, 'Keypoints')]
)
def test_records_have_exactly_the_message_fields(record, name):
    """One record per message, field for field: the node and glue-ros-bag map them by name."""
    import dataclasses

    assert [f.name for f in dataclasses.fields(record)] == msg_fields(name)
    message = {'Matches': Matches, 'Keypoints': Keypoints}[name]
    assert set(message.get_fields_and_field_types()) == set(msg_fields(name))
    assert records.MODE_STEREO == Matches.MODE_STEREO and records.MODE_PAIR == Matches.MODE_PAIR


def test_keypoints_message_descriptors_optional():
    from std_msgs.msg import Header

    kp = np.arange(20, dtype=np.float32).reshape(10, 2)
    msg = messages.keypoints_message(Header(), (64, 48), 'xfeat', kp, np.ones(10))
    assert msg.descriptor_dim == 0 and len(msg.descriptors) == 0
    desc = np.random.default_rng(1).random((10, 64)).astype(np.float32)
    msg = messages.keypoints_message(Header(), (64, 48), 'xfeat', kp, np.ones(10), desc)
    assert isinstance(msg, Keypoints) and msg.descriptor_dim == 64
    np.testing.assert_array_equal(messages.from_array(msg.descriptors, np.float32, 64), desc)


def test_round_trip_between_two_processes(tmp_path):
    """A Matches message of 5000 matches goes to a node in another process and comes back."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    rng = np.random.default_rng(2)
    result = random_result(5000, rng)
    sent = build(result, rng)
    echo = harness.start_process(
        [str(Path(__file__).parent / 'nodes' / 'echo_matches.py')], tmp_path / 'echo.log'
    )
    context = rclpy.Context()
    rclpy.init(context=context)
    received = []
    try:
        node = rclpy.create_node('round_trip_test', context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        pub = node.create_publisher(Matches, 'in', 10)
        node.create_subscription(Matches, 'out', received.append, 10)
        # Publish until the echo node is up and the message has come back.
        for _ in range(100):
            pub.publish(sent)
            if harness.spin_until(executor, lambda: received, 0.3):
                break
            assert echo.poll() is None, (tmp_path / 'echo.log').read_text()
        assert received, 'no message came back from the echo node'
    finally:
        rclpy.shutdown(context=context)
        harness.stop_process(echo)
    back = received[0]
    a, b = messages.matches_arrays(back), messages.matches_arrays(sent)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert len(a['query_points']) == 5000
    assert back.header.frame_id == 'cam_left' and back.reference_header.stamp.sec == 99
    assert back.matcher == 'lightglue/xfeat' and back.latency_ms == pytest.approx(55.5)
