"""Helpers for tests that run real rclpy nodes in separate processes over DDS."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
IN_CHILD = 'GLUE_ROS_TEST_IN_CHILD'


def require_ros():
    """Skip the calling test module when rclpy or the generated messages are not importable."""
    try:
        import rclpy  # noqa: F401

        import glue_ros.msg  # noqa: F401
    except ImportError as exc:
        pytest.skip(f'needs a ROS 2 environment (source env.sh): {exc}', allow_module_level=True)


def in_child_process(test: Callable[..., Any]) -> Callable[..., Any]:
    """Run a test that builds a MatcherNode inside the test process in a pytest of its own.

    With Fast DDS 2 (Jazzy), once a MatcherNode has lived and gone in a process, that process's
    later participants no longer get large images across processes (shared memory); the
    tests after it would fail for a reason of their own. The child process takes it along.
    """

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if os.environ.get(IN_CHILD):
            return test(*args, **kwargs)
        node_id = os.environ['PYTEST_CURRENT_TEST'].rsplit(' ', 1)[0]
        proc = subprocess.run(
            [sys.executable, '-m', 'pytest', node_id, '-q', '-p', 'no:cacheprovider'],
            cwd=ROOT,
            env={**os.environ, IN_CHILD: '1'},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
        return None

    return wrapper
