"""The node's hint when a connected camera's images never arrive."""

from glue_ros.ros.input_watch import InputWatch


def test_warns_only_when_connected_and_silent():
    watch = InputWatch(silence_s=5.0)
    assert watch.check('/image', 0.0, publishers=0, received=0) is None  # nobody there
    assert watch.check('/image', 1.0, publishers=1, received=0) is None  # connected now
    assert watch.check('/image', 5.0, publishers=1, received=0) is None  # 4 s: not yet
    text = watch.check('/image', 6.5, publishers=1, received=0)
    assert '/image' in text and 'FASTRTPS_DEFAULT_PROFILES_FILE' in text and 'no message' in text


def test_arriving_messages_and_gone_publishers_reset_the_clock():
    watch = InputWatch(silence_s=5.0)
    watch.check('/image', 0.0, 1, 0)
    assert watch.check('/image', 4.0, 1, 3) is None  # images came
    assert watch.check('/image', 8.0, 1, 3) is None  # 4 s since
    assert watch.check('/image', 9.5, 1, 3) is not None
    assert watch.check('/image', 10.0, 0, 3) is None  # camera gone
    assert watch.check('/image', 11.0, 1, 3) is None  # back: clock anew
