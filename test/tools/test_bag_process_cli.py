"""glue-ros-bag as a command: the process, its exit codes and messages, the msg lookup."""

import os
import subprocess
import sys

import numpy as np
import pytest
from bag_helpers import FAST, FRAMES, ROOT, SIZE, T0_NS, read_bag, write_ros2_bag
from rosbags.rosbag2 import Writer as Writer2
from rosbags.typesys import Stores, get_typestore

from glue_ros.testing import real_images
from glue_ros.tools import bag_io
from glue_ros.tools.bag_process import main

pytestmark = pytest.mark.slow  # writes and reads bags, one as a subprocess


@pytest.fixture(scope='module')
def sequence():
    return real_images.homography_sequence(num_frames=FRAMES, size=SIZE)


def test_cli_as_a_subprocess(tmp_path, sequence):
    bag = write_ros2_bag(tmp_path / 'in', sequence.frames[:3])
    out = tmp_path / 'out'
    env = dict(os.environ)
    env['PYTHONPATH'] = f'{ROOT}{os.pathsep}{env.get("PYTHONPATH", "")}'
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'glue_ros.tools.bag_process',
            str(bag),
            '--out',
            str(out),
            '--image-topic',
            '/cam0/image_raw',
            '--threads',
            '2',
            *FAST,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert '3 frames from /cam0/image_raw, 2 matched' in proc.stdout
    messages, _ = read_bag(out)
    assert len(messages['/matches']) == 2
    # the CLI refuses bad input with exit code 2 and a message
    proc = subprocess.run(
        [
            sys.executable,
            '-m',
            'glue_ros.tools.bag_process',
            str(tmp_path / 'nothing'),
            '--out',
            str(tmp_path / 'o2'),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 2 and 'no bag at' in proc.stderr


def write_bag_without_images(path):
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    with Writer2(path, version=8) as writer:
        conn = writer.add_connection('/chatter', 'std_msgs/msg/String', typestore=typestore)
        msg = typestore.types['std_msgs/msg/String'](data='hello')
        writer.write(conn, T0_NS, typestore.serialize_cdr(msg, 'std_msgs/msg/String'))
    return path


@pytest.mark.parametrize(
    'case, words',
    [
        ('missing', 'no bag at'),
        ('no_images', 'no image topic (sensor_msgs/Image or CompressedImage) found'),
        ('wrong_topic', 'no image topic /nope'),
        ('stereo_without_right', 'stereo mode needs --left-topic and --right-topic'),
        ('vins_without_info', 'no CameraInfo topic /elsewhere/camera_info'),
        ('out_exists', 'already exists'),
        ('bad_matcher_flag', 'max_keypoints'),
    ],
)
def test_unusable_input_exits_2_with_a_clear_message(tmp_path, case, words, capsys):
    bag = tmp_path / 'in'
    out = tmp_path / 'out'
    args = [str(bag), '--out', str(out), '--no-progress']
    if case == 'missing':
        pass
    elif case == 'no_images':
        write_bag_without_images(bag)
    else:
        write_ros2_bag(bag, [np.zeros((SIZE[1], SIZE[0], 3), np.uint8)] * 2)
    if case == 'wrong_topic':
        args += ['--image-topic', '/nope']
    elif case == 'stereo_without_right':
        args += ['--left-topic', '/cam0/image_raw']
    elif case == 'vins_without_info':
        args += ['--vins', '--camera-info-topic', '/elsewhere/camera_info']
    elif case == 'out_exists':
        out.mkdir()
    elif case == 'bad_matcher_flag':
        args += ['--max-keypoints', '0']
    assert main(args) == 2
    err = capsys.readouterr().err
    assert words in err
    if case == 'no_images':
        assert '/chatter (std_msgs/msg/String)' in err  # the bag's topics are listed
    if case not in ('out_exists',):
        assert not out.exists()


def test_bad_flags_exit_2():
    assert main(['--format', 'zip']) == 2
    assert main([]) == 2


def test_msg_definitions_installed_by_setup_py_are_found(tmp_path, monkeypatch):
    """pip's install puts msg/*.msg under the environment's data prefix; the lookup finds them."""
    prefix = tmp_path / 'prefix'
    proc = subprocess.run(
        [sys.executable, 'setup.py', '-q', 'install_data', '--install-dir', str(prefix)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    installed = prefix / bag_io.SHARE_MSG
    assert sorted(p.name for p in installed.glob('*.msg')) == sorted(
        p.name for p in (ROOT / 'msg').glob('*.msg')
    )
    monkeypatch.setattr(bag_io, 'SOURCE_MSG', tmp_path / 'no-source-tree' / 'msg')
    monkeypatch.setattr(
        bag_io.sysconfig, 'get_path', lambda name, *a, **k: str(prefix) if name == 'data' else None
    )
    assert bag_io.msg_directory() == installed
    assert bag_io.output_typestore().types['glue_ros/msg/Matches']


def test_msg_definitions_found_in_the_source_tree():
    assert bag_io.msg_directory() == ROOT / 'msg'
