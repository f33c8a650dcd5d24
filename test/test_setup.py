"""Set-up scripts: clear errors for bad input, and the environment they promise."""

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # runs scripts/setup.sh

ROOT = Path(__file__).resolve().parents[1]


def test_unsupported_python_is_refused_with_the_versions_that_work(tmp_path):
    # An interpreter that reports 3.9: the check runs inside it, as with a real old Python.
    fake = tmp_path / 'python3.9'
    fake.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" -c "import sys; '
        'sys.version_info = (3, 9, 18); exec(sys.stdin.read())"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    proc = subprocess.run(
        ['bash', str(ROOT / 'scripts' / 'setup.sh')],
        capture_output=True,
        text=True,
        env={**os.environ, 'PYTHON': str(fake)},
        timeout=60,
    )
    assert proc.returncode == 2
    assert 'Python 3.9 is not supported' in proc.stderr
    assert '3.10, 3.11, 3.12 or 3.13' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_missing_interpreter_is_named(tmp_path):
    proc = subprocess.run(
        ['bash', str(ROOT / 'scripts' / 'setup.sh')],
        capture_output=True,
        text=True,
        env={**os.environ, 'PYTHON': 'no-such-python'},
        timeout=60,
    )
    assert proc.returncode == 2 and "no 'no-such-python'" in proc.stderr


def test_env_sh_gives_rclpy_and_the_messages():
    proc = subprocess.run(
        [
            'bash',
            '-c',
            'source env.sh && python -c "import rclpy, '
            'glue_ros.msg; print(glue_ros.msg.Matches.MODE_STEREO)"',
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stderr == '', proc.stderr
    assert proc.stdout.strip() == '1'


def profiles(**preset) -> list:
    """The two Fast DDS profile variables after sourcing env.sh with `preset` in the env."""
    env = {k: v for k, v in os.environ.items() if 'PROFILES_FILE' not in k}
    env.update(preset)
    proc = subprocess.run(
        [
            'bash',
            '-c',
            'source env.sh && echo '
            '"${FASTDDS_DEFAULT_PROFILES_FILE:--}" '
            '"${FASTRTPS_DEFAULT_PROFILES_FILE:--}"',
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_env_sh_points_the_underlays_fast_dds_at_the_large_image_profile(tmp_path):
    """Only the variable the underlay's Fast DDS reads is set.

    Fast DDS 3.x (Kilted, the wheels here) reads FASTDDS_..., 2.x (Humble, Jazzy) FASTRTPS_...,
    and 3.x warns when that one is set.
    """
    ours = str(ROOT / 'config' / 'fastdds_large_images.xml')
    if not os.environ.get('ROS_DISTRO'):  # the wheels: Kilted (Fast DDS 3) or Jazzy (2)
        jazzy = os.environ.get('ROS_DISTRO_WHEELS') == 'jazzy'
        assert profiles() == (['-', ours] if jazzy else [ours, '-'])
    (tmp_path / 'share' / 'fastrtps').mkdir(parents=True)  # a sourced Jazzy-like underlay
    assert profiles(ROS_DISTRO='jazzy', AMENT_PREFIX_PATH=str(tmp_path)) == ['-', ours]
    assert profiles(
        ROS_DISTRO='jazzy',
        AMENT_PREFIX_PATH=str(tmp_path),
        FASTDDS_DEFAULT_PROFILES_FILE='/mine.xml',
    ) == ['/mine.xml', '/mine.xml']


def test_unknown_wheel_distro_is_refused_by_setup_and_env():
    env = {**os.environ, 'ROS_DISTRO_WHEELS': 'rolling'}
    proc = subprocess.run(
        ['bash', str(ROOT / 'scripts' / 'setup.sh')],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2 and 'kilted (default) or jazzy' in proc.stderr
    proc = subprocess.run(
        ['bash', '-c', 'source env.sh'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode != 0 and 'ROS_DISTRO_WHEELS=rolling' in proc.stderr


def run_setup(**env) -> subprocess.CompletedProcess:
    """scripts/setup.sh again on the set-up tree (stamps make it quick)."""
    return subprocess.run(
        ['bash', str(ROOT / 'scripts' / 'setup.sh')],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, 'PYTHON': sys.executable, **env},
    )


def test_ros2_tools_are_optional_and_say_so(tmp_path):
    """Without a folder of ROS 2 tools wheels set-up goes on and says what is missing."""
    if os.environ.get('ROS_DISTRO'):
        pytest.skip('a sourced ROS 2 brings its own launch system and CLI')
    proc = run_setup(GLUE_ROS_ROS2_TOOLS=str(tmp_path / 'nothing-here'))
    assert proc.returncode == 0, proc.stderr
    assert f'no ROS 2 tools wheels in {tmp_path / "nothing-here"}' in proc.stdout
    assert 'the tests that need them skip' in proc.stdout


def test_build_stamp_covers_the_python_sources(tmp_path):
    """A changed module rebuilds install/ (colcon installs a copy of the sources)."""
    tree = tmp_path / 'tree'
    shutil.copytree(
        ROOT,
        tree,
        ignore=shutil.ignore_patterns(
            '.venv*', 'install*', 'build*', 'log*', '.git', '__pycache__', '*_out', 'docs'
        ),
    )

    def stamp() -> str:
        return subprocess.run(
            ['bash', str(ROOT / 'scripts' / 'build_stamp.sh'), str(tree)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout

    before = stamp()
    assert len(before.strip()) == 16 and stamp() == before
    module = tree / 'glue_ros' / 'frontend' / 'flow.py'
    module.write_text(module.read_text() + '\n# changed\n')
    assert stamp() != before
