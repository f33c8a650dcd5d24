"""Helpers for tests that run real rclpy nodes in separate processes over DDS."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def require_ros():
    """Skip the calling test when rclpy or the generated messages are not importable."""
    try:
        import rclpy  # noqa: F401
        import glue_ros.msg  # noqa: F401
    except ImportError as exc:
        pytest.skip(f'needs a ROS 2 environment (source env.sh): {exc}')


def start_process(args, log_path: Path, env=None) -> subprocess.Popen:
    """Start `python args...` in its own process group, output to log_path."""
    env = dict(os.environ if env is None else env)
    env.setdefault('PYTHONUNBUFFERED', '1')
    log = open(log_path, 'w')
    return subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT,
                            env=env, cwd=ROOT, start_new_session=True)


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGINT, then SIGKILL if it does not stop; returns the exit code."""
    import signal
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def spin_until(executor, predicate, timeout: float) -> bool:
    """Spin `executor` until predicate() is true or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.05)
    return predicate()
