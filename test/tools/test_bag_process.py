"""glue-ros-bag: real images in ROS 1 / 2 bags -> Matches (and VINS features) in a ROS 2 bag."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from bag_helpers import (
    BAG_DELAY_NS,
    BASELINE,
    DT_NS,
    FAST,
    FRAMES,
    SIZE,
    T0_NS,
    K,
    camera_info_message,
    image_message,
    image_stamp,
    make_header,
    read_bag,
    stamp_ns,
    write_ros2_bag,
)
from rosbags.highlevel import AnyReader
from rosbags.rosbag1 import Writer as Writer1
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Writer2
from rosbags.typesys import Stores, get_typestore

from glue_ros.core.scheduling import Frame, StereoPairer
from glue_ros.testing import real_images
from glue_ros.tools.bag_process import main

pytestmark = pytest.mark.slow  # writes and reads whole bags


@pytest.fixture(scope='module')
def sequence():
    return real_images.homography_sequence(num_frames=FRAMES, size=SIZE)


def check_sequential_matches(messages, sequence, first=1):
    """Verified matches of each frame against its keyframe, tracks unique and mostly present."""
    assert len(messages) == FRAMES - first
    for (bag_ns, msg), i in zip(messages, range(first, FRAMES)):
        assert bag_ns == image_stamp(i) + BAG_DELAY_NS
        assert stamp_ns(msg.header) == image_stamp(i) and msg.header.frame_id == 'cam0'
        reference = (stamp_ns(msg.reference_header) - T0_NS) // DT_NS
        assert stamp_ns(msg.reference_header) == image_stamp(reference) and reference < i
        assert msg.keyframe and msg.mode == 0 and msg.matcher == 'lightglue/xfeat'
        assert (msg.query_width, msg.query_height) == SIZE
        # CameraInfo in the bag: the essential matrix; the homography scene has no parallax
        assert (msg.geometric_model, msg.geometric_status) == ('essential', 'degenerate_rotation')
        assert len(msg.translation) == 0
        m = len(msg.confidences)
        assert m > 50 and len(msg.query_points) == len(msg.reference_points) == 2 * m
        tracked = msg.track_ids[msg.track_ids > 0]
        assert len(msg.track_ids) == m and len(np.unique(tracked)) == len(tracked) > m / 2
        errors = real_images.homography_errors(
            sequence.relative(i, reference),
            msg.query_points.reshape(-1, 2),
            msg.reference_points.reshape(-1, 2),
        )
        # XFeat keypoints at 320x240 are about a pixel precise, and outliers are removed
        assert np.median(errors) < 1.5 and np.mean(errors < 3.0) > 0.95, np.percentile(
            errors, [50, 80, 90]
        )
        assert msg.extract_ms > 0 and msg.match_ms > 0


def test_sequential_ros2_bag(tmp_path, sequence, capsys):
    bag = write_ros2_bag(tmp_path / 'in', sequence.frames)
    out = tmp_path / 'out'
    assert main([str(bag), '--out', str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert f'{FRAMES} frames' in printed and f'{FRAMES - 1} matched' in printed
    assert 'median' in printed and 'ms per frame' in printed
    messages, types = read_bag(out)
    assert types == {'/matches': 'glue_ros/msg/Matches'}  # nothing else copied
    check_sequential_matches(messages['/matches'], sequence)
    # track ids persist: a point matched in frames 1 and 2 keeps its id
    first, second = messages['/matches'][0][1], messages['/matches'][1][1]
    shared = set(first.track_ids) & set(second.track_ids) - {0}
    assert len(shared) > 30


def test_output_is_valid_ros2_cdr_with_the_rosidl_definition(tmp_path, sequence):
    from rclpy.serialization import deserialize_message

    from glue_ros.msg import Matches

    bag = write_ros2_bag(tmp_path / 'in', sequence.frames[:3])
    out = tmp_path / 'out'
    assert main([str(bag), '--out', str(out), '--format', 'mcap', *FAST]) == 0
    assert list(out.glob('*.mcap'))
    with AnyReader([out]) as reader:
        (conn,) = reader.connections
        # the stored definition hashes like the one rosidl generated for ROS 2 (the generated
        # messages import here, so their description is installed beside them)
        from ament_index_python.packages import get_package_share_directory

        generated = Path(get_package_share_directory('glue_ros')) / 'msg' / 'Matches.json'
        hashes = json.loads(generated.read_text())['type_hashes']
        assert conn.digest == next(
            h['hash_string'] for h in hashes if h['type_name'] == 'glue_ros/msg/Matches'
        )
        raws = [raw for _, _, raw in reader.messages()]
    assert len(raws) == 2
    msg = deserialize_message(bytes(raws[0]), Matches)  # rclpy reads what rosbags wrote
    assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec == image_stamp(1)
    assert len(msg.track_ids) == len(msg.confidences) > 50


def write_ros1_bag(path, frames):
    """Compressed (JPEG) images and CameraInfo, as ROS 1 drivers record them."""
    typestore = get_typestore(Stores.ROS1_NOETIC)
    types = typestore.types
    with Writer1(path) as writer:
        conn = writer.add_connection(
            '/camera/image_raw/compressed', 'sensor_msgs/msg/CompressedImage', typestore=typestore
        )
        info = writer.add_connection(
            '/camera/camera_info', 'sensor_msgs/msg/CameraInfo', typestore=typestore
        )
        for i, image in enumerate(frames):
            header = make_header(types, i, 'cam0', ros1=True)
            ok, jpeg = cv2.imencode(
                '.jpg', cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
            )
            msg = types['sensor_msgs/msg/CompressedImage'](
                header=header, format='jpeg', data=jpeg.reshape(-1)
            )
            writer.write(
                info,
                image_stamp(i) + BAG_DELAY_NS,
                typestore.serialize_ros1(
                    camera_info_message(types, header, ros1=True), 'sensor_msgs/msg/CameraInfo'
                ),
            )
            writer.write(
                conn,
                image_stamp(i) + BAG_DELAY_NS,
                typestore.serialize_ros1(msg, 'sensor_msgs/msg/CompressedImage'),
            )
    return path


def test_ros1_compressed_bag_with_vins_features_and_copy(tmp_path, sequence):
    bag = write_ros1_bag(tmp_path / 'in.bag', sequence.frames)
    out = tmp_path / 'out'
    assert main([str(bag), '--out', str(out), '--vins', '--copy-input', *FAST]) == 0
    messages, types = read_bag(out)
    assert types['/matches'] == 'glue_ros/msg/Matches'
    assert types['/feature_tracker/feature'] == 'sensor_msgs/msg/PointCloud'
    check_sequential_matches(messages['/matches'], sequence)
    # copied input, converted to ROS 2 messages
    assert len(messages['/camera/image_raw/compressed']) == FRAMES
    assert len(messages['/camera/camera_info']) == FRAMES
    features = messages['/feature_tracker/feature']
    assert len(features) == FRAMES - 1
    for (bag_ns, cloud), (match_ns, matches) in zip(features, messages['/matches']):
        assert bag_ns == match_ns and stamp_ns(cloud.header) == stamp_ns(matches.header)
        names = [c.name for c in cloud.channels]
        assert names == [
            'feature_id',
            'camera_id',
            'u',
            'v',
            'velocity_x',
            'velocity_y',
            'gx',
            'gy',
            'gz',
        ]
        values = {c.name: c.values for c in cloud.channels}
        tracked = matches.track_ids > 0  # VINS gets the tracks, not budget-less matches
        assert len(cloud.points) == tracked.sum()
        np.testing.assert_array_equal(values['feature_id'], matches.track_ids[tracked])
        np.testing.assert_array_equal(values['u'], matches.query_points[0::2][tracked])
        xs = np.array([p.x for p in cloud.points])
        np.testing.assert_allclose(xs, (values['u'] - K[2]) / K[0], atol=1e-5)
        assert all(p.z == 1.0 for p in cloud.points)
    assert not features[0][1].channels[4].values.any()  # first observations
    assert features[1][1].channels[4].values.any()


def write_stereo_bag(path, count=4, right_delay_ns=2_000_000):
    """A fronto-parallel scene: the right image is the left one shifted by BASELINE pixels."""
    source = real_images.photo('astronaut')
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    types = typestore.types
    w, h = SIZE
    with Writer2(path, version=8, storage_plugin=StoragePlugin.MCAP) as writer:
        conns = {
            side: writer.add_connection(
                f'/stereo/{side}/image_rect', 'sensor_msgs/msg/Image', typestore=typestore
            )
            for side in ('left', 'right')
        }
        infos = {
            side: writer.add_connection(
                f'/stereo/{side}/camera_info', 'sensor_msgs/msg/CameraInfo', typestore=typestore
            )
            for side in ('left', 'right')
        }
        for i in range(count):
            for side, shift, delay in (('left', 0, 0), ('right', BASELINE, right_delay_ns)):
                x, y = 40 + shift + 4 * i, 60 + 2 * i
                image = np.ascontiguousarray(source[y : y + h, x : x + w])
                header = make_header(types, i, side)
                header.stamp.nanosec += delay
                at = image_stamp(i) + delay + BAG_DELAY_NS
                writer.write(
                    conns[side],
                    at,
                    typestore.serialize_cdr(
                        image_message(types, image, header), 'sensor_msgs/msg/Image'
                    ),
                )
                baseline = 0.05 if side == 'right' else 0.0
                writer.write(
                    infos[side],
                    at,
                    typestore.serialize_cdr(
                        camera_info_message(types, header, baseline=baseline),
                        'sensor_msgs/msg/CameraInfo',
                    ),
                )
    return path


def test_stereo_bag_with_slop_epipolar_filter_and_vins(tmp_path):
    bag = write_stereo_bag(tmp_path / 'stereo')
    out = tmp_path / 'out'
    args = [
        str(bag),
        '--out',
        str(out),
        '--left-topic',
        '/stereo/left/image_rect',
        '--right-topic',
        '/stereo/right/image_rect',
        '--sync-slop',
        '0.005',
        '--max-epipolar-error',
        '2',
        '--vins',
        '--rectified',
        *FAST,
    ]
    assert main(args) == 0
    messages, _ = read_bag(out)
    matches = messages['/matches']
    assert len(matches) == 4
    for i, (bag_ns, msg) in enumerate(matches):
        assert bag_ns == image_stamp(i) + BAG_DELAY_NS
        assert stamp_ns(msg.header) == image_stamp(i)
        assert stamp_ns(msg.reference_header) == image_stamp(i) + 2_000_000
        assert msg.reference_header.frame_id == 'right' and msg.mode == 1
        assert len(msg.track_ids) == 0 and len(msg.confidences) > 50
        left, right = msg.query_points.reshape(-1, 2), msg.reference_points.reshape(-1, 2)
        assert np.all(np.abs(left[:, 1] - right[:, 1]) <= 2.0)  # filtered
        assert np.all(left[:, 0] >= right[:, 0])
        assert np.mean(np.abs(left[:, 0] - right[:, 0] - BASELINE) < 3.0) > 0.9
    clouds = messages['/feature_tracker/feature']
    assert len(clouds) == 3  # the first pair only starts the tracks
    for _, cloud in clouds:
        values = {c.name: np.asarray(c.values) for c in cloud.channels}
        cams = values['camera_id']
        assert set(cams) == {0.0, 1.0}
        right_ids = set(values['feature_id'][cams == 1])
        assert right_ids <= set(values['feature_id'][cams == 0])


def test_stereo_pairer_pairs_by_stamp_within_slop():
    frame = lambda t: Frame(t, np.zeros((2, 2), np.uint8), bag_ns=t)  # noqa: E731
    pairer = StereoPairer(slop_ns=5, queue_size=10)
    assert pairer.add('left', frame(100)) is None
    assert pairer.add('left', frame(200)) is None
    left, right = pairer.add('right', frame(203))
    assert (left.stamp_ns, right.stamp_ns) == (200, 203)
    assert pairer.unpaired == 1  # left 100 can no longer pair
    assert pairer.add('right', frame(300)) is None
    assert pairer.add('left', frame(310)) is None  # outside the slop
    pairer.flush()
    assert pairer.unpaired == 3
