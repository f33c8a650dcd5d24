"""Helpers for tests that run real rclpy nodes in separate processes over DDS."""

from __future__ import annotations

import pytest


def require_ros():
    """Skip the calling test module when rclpy or the generated messages are not importable."""
    try:
        import rclpy  # noqa: F401

        import glue_ros.msg  # noqa: F401
    except ImportError as exc:
        pytest.skip(f'needs a ROS 2 environment (source env.sh): {exc}', allow_module_level=True)
