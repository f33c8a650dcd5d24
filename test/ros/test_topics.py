"""Topic names as ROS 2 camera drivers publish them: CameraInfo beside its image.

A driver publishes `/cam/image_raw` and `/cam/camera_info`; remapping the image alone must be
enough for the node to hear the calibration (image_transport's rule), or `geometric_check:
auto` silently falls back to the fundamental matrix and no pose is published. A remap of the
camera_info topic itself still wins.
"""

import pytest
from ros_helpers import require_ros

require_ros()

from glue_ros.testing import real_images  # noqa: E402
from glue_ros.testing.harness import MatcherProcess  # noqa: E402


def camera_info():
    from sensor_msgs.msg import CameraInfo

    info = CameraInfo(width=640, height=480, distortion_model='plumb_bob')
    info.d = [0.0] * 5
    info.k = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [500.0, 0.0, 320.0, 0.0, 0.0, 500.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


@pytest.mark.parametrize(
    'remaps, info_topic',
    [
        (['-r', 'image:=/cam/image_raw'], '/cam/camera_info'),
        (
            ['-r', 'image:=/cam/image_raw', '-r', 'camera_info:=/calibration/cam'],
            '/calibration/cam',
        ),
    ],
    ids=['beside the remapped image', 'remapped itself'],
)
def test_camera_info_follows_the_image_topic(tmp_path, remaps, info_topic):
    from sensor_msgs.msg import CameraInfo

    sequence = real_images.homography_sequence('astronaut', 3)
    node = MatcherProcess(
        tmp_path,
        {'mode': 'sequential', 'max_keypoints': 512},
        reliable_images=True,
        topics=('/cam/image_raw',),
        node_args=remaps,
    )
    try:
        node.wait_connected(120)
        info_pub = node.node.create_publisher(CameraInfo, info_topic, 10)
        assert node.spin_until(lambda: info_pub.get_subscription_count() > 0, 30), node.log()
        for _ in range(5):
            info_pub.publish(camera_info())
            node.spin(0.1)
        node.publish_in_turn('/cam/image_raw', sequence.frames, [100 + 0.1 * k for k in range(3)])
    finally:
        node.close()
    # With the calibration heard, the essential matrix (the scene is a plane seen by a
    # panning camera, so its status is degenerate_rotation); without, the fundamental matrix.
    assert {m.geometric_model for m in node.matches} == {'essential'}, node.log()
    assert 'no CameraInfo' not in node.log()
