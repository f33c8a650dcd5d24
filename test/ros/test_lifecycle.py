"""The production node over DDS: lifecycle transitions, /diagnostics, the match_images service
and parameters that are read-only or change live. The node runs in its own process.
"""

import time

import numpy as np
import pytest
from ros_helpers import in_child_process, require_ros

require_ros()

from glue_ros.ros.messages import matches_arrays  # noqa: E402
from glue_ros.testing import real_images  # noqa: E402
from glue_ros.testing.harness import MatcherProcess, spin_until  # noqa: E402

SMALL = {'mode': 'sequential', 'max_keypoints': 512}


@pytest.fixture(scope='module')
def sequence():
    return real_images.homography_sequence('astronaut', 6)


@pytest.fixture
def start(tmp_path):
    started = []

    def start(params, connect=True, **kwargs):
        node = MatcherProcess(tmp_path, params, reliable_images=True, **kwargs)
        started.append(node)
        if connect:
            node.wait_connected()
        return node

    yield start
    for node in started:
        node.close()


def frames_matched(node, sequence, stamps, timeout=30.0) -> int:
    """Publish frames at `stamps`, one after the other; how many match messages came back."""
    before = len(node.matches)
    for k, stamp in enumerate(stamps):
        node.publish('image', sequence.frames[k % len(sequence.frames)], stamp)
        if k > 0:
            node.wait_matches(before + k, timeout)
        else:
            node.spin(0.5)
    return len(node.matches) - before


def test_lifecycle_transitions_over_dds(start, sequence):
    node = start({**SMALL, 'autostart': False}, connect=False)
    assert spin_until(node.executor, lambda: node.lifecycle_state() == 'unconfigured', 30), (
        node.log()
    )
    assert 'matcher ready' not in node.log()  # nothing loaded before configure
    assert node.transition('configure'), node.log()
    assert node.lifecycle_state() == 'inactive' and 'matcher ready' in node.log()
    node.spin(1.0)
    assert node.publishers['image'].get_subscription_count() == 0  # inactive: no images
    assert node.transition('activate'), node.log()
    assert node.lifecycle_state() == 'active'
    assert spin_until(
        node.executor, lambda: node.publishers['image'].get_subscription_count() > 0, 10
    )
    node.spin(1.0)
    assert frames_matched(node, sequence, [1.0, 1.1, 1.2]) == 2, node.log()
    assert node.transition('deactivate')
    assert node.lifecycle_state() == 'inactive'
    assert frames_matched(node, sequence, [2.0, 2.1], timeout=2.0) == 0
    assert node.transition('activate')  # no reload: the matcher was kept
    node.spin(1.0)
    assert frames_matched(node, sequence, [3.0, 3.1, 3.2]) == 2, node.log()
    assert node.log().count('matcher ready') == 1
    assert node.transition('deactivate') and node.transition('cleanup')
    assert node.lifecycle_state() == 'unconfigured'
    assert node.transition('shutdown')
    assert node.lifecycle_state() == 'finalized'
    assert node.proc.poll() is None  # finalized, still answering
    assert node.close() == 0


def diagnostics_listener(node):
    from diagnostic_msgs.msg import DiagnosticArray

    received = []
    node.node.create_subscription(DiagnosticArray, '/diagnostics', received.append, 50)
    return received


def last_status(received):
    statuses = [
        s for msg in received for s in msg.status if s.name.endswith('glue_ros_matcher: matching')
    ]
    return statuses[-1] if statuses else None


def values(status):
    return {kv.key: kv.value for kv in status.values}


def test_diagnostics_report_state_rates_and_warn_on_live_thresholds(start, sequence):
    node = start(SMALL)
    received = diagnostics_listener(node)
    assert frames_matched(node, sequence, [1.0 + 0.1 * k for k in range(5)]) == 4, node.log()
    node.spin(1.5)
    status = last_status(received)
    assert status is not None and status.level == b'\x00', status
    v = values(status)
    assert v['state'] == 'active' and v['matcher'] == 'lightglue/xfeat'
    assert v['backend'] == 'torch' and v['early_exit'] == 'True'
    assert float(v['processed rate (frames/s)']) > 0 and float(v['mean latency (ms)']) > 0
    assert int(v['total processed']) == 5 and float(v['drop ratio (frames)']) == 0.0
    # Live threshold: any real latency is above 1 ms, so the next report warns about it.
    result = node.set_parameter('diagnostics_max_latency_ms', 1.0)
    assert result is not None and result.successful, result
    frames_matched(node, sequence, [5.0, 5.1])
    count = len(received)
    assert spin_until(node.executor, lambda: len(received) > count + 1, 5)
    status = last_status(received)
    assert status.level == b'\x01' and 'latency' in status.message, status


def test_matcher_that_cannot_load_is_an_error_in_diagnostics(start):
    node = start({'features': 'superpoint'}, connect=False)
    received = diagnostics_listener(node)
    assert spin_until(
        node.executor,
        lambda: last_status(received) is not None and last_status(received).level == b'\x02',
        30,
    ), node.log()
    status = last_status(received)
    assert 'matcher failed to load' in status.message and 'SuperPoint' in status.message
    assert node.lifecycle_state() == 'unconfigured' and node.proc.poll() is None


def image_msg(image, stamp=1.0, frame_id='camera', **overrides):
    from sensor_msgs.msg import Image

    from glue_ros.core.image_conversion import numpy_to_image_fields

    msg = Image()
    msg.header.frame_id = frame_id
    msg.header.stamp.sec = int(stamp)
    for key, value in {**numpy_to_image_fields(image), **overrides}.items():
        setattr(msg, key, value)
    return msg


def test_match_images_service_answers_verified_matches_and_clear_errors(start):
    from glue_ros.msg import Matches
    from glue_ros.srv import MatchImages

    pair = real_images.middlebury_stereo()
    node = start({'mode': 'sequential'})
    request = MatchImages.Request(
        query=image_msg(pair.left, frame_id='left'),
        reference=image_msg(pair.right, frame_id='right'),
    )
    answer = node.call(MatchImages, 'match_images', request)
    assert answer is not None and answer.success, (answer, node.log())
    msg = answer.matches
    assert msg.mode == Matches.MODE_PAIR and msg.header.frame_id == 'left'
    assert msg.geometric_model == 'fundamental' and msg.num_outliers > 0
    arrays = matches_arrays(msg)
    errors = real_images.disparity_errors(pair, arrays['query_points'], arrays['reference_points'])
    known = np.isfinite(errors)
    assert len(errors) > 200 and np.mean(errors[known] < 3.0) > 0.8
    assert len(arrays['track_ids']) == 0
    # A check asked for in the request wins over the node's.
    request.geometric_check = 'none'
    answer = node.call(MatchImages, 'match_images', request)
    assert answer.success and answer.matches.geometric_status == 'not_checked'
    assert len(answer.matches.confidences) > len(msg.confidences)
    # Bad requests are answered, never fatal.
    for bad, words in (
        (image_msg(pair.left, step=10), 'step'),
        (image_msg(pair.left, encoding='yuv9000'), 'unsupported encoding'),
        (image_msg(pair.left[:8, :8].copy()), 'too small'),
    ):
        answer = node.call(
            MatchImages,
            'match_images',
            MatchImages.Request(query=bad, reference=request.reference),
        )
        assert answer is not None and not answer.success and words in answer.error, answer
        assert len(answer.matches.confidences) == 0
    request.geometric_check = 'sideways'
    answer = node.call(MatchImages, 'match_images', request)
    assert not answer.success and 'sideways' in answer.error
    assert node.proc.poll() is None


def test_service_waits_at_most_one_inference_while_streaming(start, sequence):
    """Requests between live frames: the stream keeps going, frames and requests take turns."""
    from glue_ros.srv import MatchImages

    node = start(SMALL)
    request = MatchImages.Request(
        query=image_msg(sequence.frames[0]), reference=image_msg(sequence.frames[3])
    )
    client = node.node.create_client(MatchImages, 'match_images')
    assert client.wait_for_service(timeout_sec=10)
    futures = []
    for k in range(12):
        node.publish('image', sequence.frames[k % 6], 10.0 + 0.1 * k)
        futures.append(client.call_async(request))
        futures.append(client.call_async(request))  # two at once: they must not starve frames
        node.spin(0.5)
    assert spin_until(node.executor, lambda: all(f.done() for f in futures), 90)
    answers = [f.result() for f in futures]
    assert all(a.success for a in answers)
    node.spin(2.0)
    msgs = node.matches
    assert len(msgs) >= 6, node.log()
    frame_work = max(m.extract_ms + m.match_ms for m in msgs)
    request_work = max(a.matches.extract_ms + a.matches.match_ms for a in answers)
    # In turn: a new frame waits at most for the frame in progress and one request, then runs
    # itself (verification, publication and scheduling: the 300 ms slack). Without turns, the
    # second request of each burst would go first too.
    bound = 2 * frame_work + request_work + 300
    assert max(m.latency_ms for m in msgs) < bound, ([m.latency_ms for m in msgs], bound)


def test_parameters_are_read_only_or_live_and_checked(start, sequence):
    node = start(SMALL)
    result = node.set_parameter('max_keypoints', 1024)
    assert result is not None and not result.successful and 'read-only' in result.reason
    result = node.set_parameter('depth_confidence', 3.0)  # outside the declared range
    assert not result.successful
    result = node.set_parameter('depth_confidence', 0.0)  # in range, refused by the rule
    assert not result.successful and 'depth_confidence' in result.reason
    assert frames_matched(node, sequence, [1.0, 1.1]) == 1
    # Full depth from now on: every layer runs.
    result = node.set_parameter('depth_confidence', -1.0)
    assert result.successful, result
    assert node.set_parameter('width_confidence', -1.0).successful
    assert frames_matched(node, sequence, [2.0, 2.1, 2.2]) == 2
    assert all(m.layers_used == m.layers_total for m in node.matches[-2:])
    # A stricter threshold keeps exactly the matches above it: the mutual nearest neighbours
    # do not depend on it. One pair, unverified, through the service, before and after.
    from glue_ros.srv import MatchImages

    request = MatchImages.Request(
        query=image_msg(sequence.frames[0]),
        reference=image_msg(sequence.frames[5]),
        geometric_check='none',
    )
    before = np.array(node.call(MatchImages, 'match_images', request).matches.confidences)
    assert (before > 0.9).sum() > 20 and (before <= 0.9).sum() > 0, np.sort(before)
    assert node.set_parameter('match_threshold', 0.9).successful
    after = np.array(node.call(MatchImages, 'match_images', request).matches.confidences)
    assert len(after) == (before > 0.9).sum() and after.min() > 0.9
    assert frames_matched(node, sequence, [3.0, 3.1, 3.2]) == 2
    assert min(node.matches[-1].confidences) > 0.9
    assert 'parameters changed' in node.log()


def test_lightglue_on_onnxruntime_in_the_node(start, sequence, tmp_path):
    """The exported graph behind the node: full depth, said so, thresholds not live."""
    pytest.importorskip('onnxruntime')
    node = start({**SMALL, 'backend': 'onnxruntime', 'engine_cache_dir': str(tmp_path)})
    received = diagnostics_listener(node)
    assert frames_matched(node, sequence, [1.0, 1.1, 1.2]) == 2, node.log()
    for query, msg in enumerate(node.matches, start=1):
        assert msg.layers_used == msg.layers_total == 6
        arrays = matches_arrays(msg)
        reference = round(
            (msg.reference_header.stamp.nanosec * 1e-9 + msg.reference_header.stamp.sec - 1.0)
            / 0.1
        )
        errors = real_images.homography_errors(
            sequence.relative(query, reference), arrays['query_points'], arrays['reference_points']
        )
        assert len(errors) > 100 and np.mean(errors < 3.0) > 0.95
    result = node.set_parameter('match_threshold', 0.5)
    assert not result.successful and 'exported' in result.reason
    node.spin(1.5)
    v = values(last_status(received))
    assert v['backend'] == 'onnxruntime' and v['early_exit'] == 'False'


@in_child_process
def test_qos_is_passed_in_or_taken_from_parameters():
    """In process: the QoS given to the constructor wins; otherwise the depth parameters."""
    import rclpy
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from glue_ros.ros.matcher_node import MatcherNode

    context = rclpy.Context()
    rclpy.init(context=context)
    overrides = [
        Parameter('autostart', value=False),
        Parameter('max_keypoints', value=256),
        Parameter('output_qos_depth', value=3),
        Parameter('image_qos_depth', value=2),
    ]
    try:
        node = MatcherNode(context=context, parameter_overrides=overrides)
        node.trigger_configure()
        node.trigger_activate()
        assert node.outputs.matches.qos_profile.depth == 3
        (image_sub,) = node._image_subscriptions.values()
        assert image_sub.qos_profile.depth == 2
        assert image_sub.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        node.trigger_deactivate()
        node.trigger_cleanup()
        node.destroy_node()
        given = QoSProfile(depth=7, reliability=ReliabilityPolicy.RELIABLE)
        node = MatcherNode(
            context=context, parameter_overrides=overrides, output_qos=given, image_qos=given
        )
        node.trigger_configure()
        node.trigger_activate()
        assert node.outputs.matches.qos_profile.depth == 7
        (image_sub,) = node._image_subscriptions.values()
        assert image_sub.qos_profile.reliability == ReliabilityPolicy.RELIABLE
        node.trigger_deactivate()
        node.destroy_node()
    finally:
        rclpy.try_shutdown(context=context)


def test_autostart_with_a_bad_parameter_exits_naming_it(tmp_path):
    node = MatcherProcess(tmp_path, {'max_keypoints': 0})
    try:
        assert node.proc.wait(30) == 2
        assert 'max_keypoints' in node.log()
    finally:
        node.close()


@in_child_process
def test_diagnostics_go_on_while_a_slow_configure_loads(monkeypatch):
    """Autostart configures inside the node's executor, which a long load (an engine build)
    holds: /diagnostics, on a thread of their own, still report it."""
    import threading

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from glue_ros.ros import matcher_node
    from glue_ros.ros.node_main import make_executor

    def slow_build(config):  # stands for an ONNX export or a TensorRT engine build
        time.sleep(3.0)
        return build(config)

    build = matcher_node.build_matcher
    monkeypatch.setattr(matcher_node, 'build_matcher', slow_build)
    context = rclpy.Context()
    rclpy.init(context=context)
    executor = make_executor(context)
    stop = threading.Event()

    def spin():  # as node_main does: spin_once until asked to stop
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.1)

    spinner = threading.Thread(target=spin, daemon=True)
    try:
        node = matcher_node.MatcherNode(
            context=context, parameter_overrides=[Parameter('max_keypoints', value=256)]
        )
        # The listener spins apart from the node's executor, so reports arrive while it waits.
        listener = rclpy.create_node('diagnostics_listener', context=context)
        received = []
        listener.create_subscription(DiagnosticArray, '/diagnostics', received.append, 50)
        listening = SingleThreadedExecutor(context=context)
        listening.add_node(listener)
        executor.add_node(node)
        node.start_automatically()
        spinner.start()

        def messages():
            return [s.message for msg in list(received) for s in msg.status]

        deadline = time.monotonic() + 30  # until a report after the load says it is active
        while (
            node.state != 'active' or 'active, waiting for images' not in messages()
        ) and time.monotonic() < deadline:
            listening.spin_once(timeout_sec=0.1)
        seen = messages()
        assert node.state == 'active'
        assert seen.count('configuring: loading the matcher') >= 2, seen
        assert seen[-1] == 'active, waiting for images', seen
    finally:
        stop.set()
        if spinner.is_alive():
            spinner.join(timeout=5)
        executor.shutdown(timeout_sec=2)
        rclpy.try_shutdown(context=context)
