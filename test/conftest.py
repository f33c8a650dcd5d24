"""Session-wide test settings and the markers that select subsets.

Tests mirror the package: test/core, test/frontend, test/models, ... The ``ros`` marker goes on
every test under test/ros (real rclpy nodes, DDS, the ROS 2 tools); ``slow`` on tests that take
more than a few seconds. ``make test-fast`` runs ``-m "not ros and not slow"``.
"""

import os
import random
from pathlib import Path

import pytest
import torch

# Every test run gets its own DDS domain so parallel runs on one machine do not see each other.
os.environ.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
torch.set_num_threads(min(2, os.cpu_count() or 1))

ROS_TESTS = Path(__file__).parent / 'ros'


def pytest_collection_modifyitems(items: list) -> None:
    """Mark the tests of test/ros with ``ros``."""
    for item in items:
        if ROS_TESTS in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.ros)
