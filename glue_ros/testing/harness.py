"""Drive a matcher node running in its own process: publish images, collect matches.

Used by `make demo` and the integration tests; plain rclpy, no launch system needed. The ROS
imports are inside MatcherProcess: the process helpers and rss_mb serve callers without ROS.
"""

from __future__ import annotations

import ast
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from glue_ros.core.image_conversion import numpy_to_image_fields


def start_process(
    args: Sequence[str], log_path: Path, env: dict | None = None
) -> subprocess.Popen:
    """Start `python args...` in its own process group, output to log_path."""
    env = dict(os.environ if env is None else env)
    env.setdefault('PYTHONUNBUFFERED', '1')
    log = open(log_path, 'w')
    return subprocess.Popen(
        [sys.executable, *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGINT, then SIGKILL if it does not stop; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def spin_until(executor: Any, predicate: Callable[[], bool], timeout: float) -> bool:
    """Spin `executor` until predicate() is true or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.05)
    return predicate()


class MatcherProcess:
    """The matcher node in its own process, and an in-process rclpy node that talks to it."""

    def __init__(
        self,
        workdir: Path,
        params: dict,
        reliable_images: bool = False,
        topics: Iterable[str] = ('image',),
        node_args: Sequence[str] = (),
        env: dict | None = None,
    ) -> None:
        # ROS only here (see the module docstring)
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image

        from glue_ros.msg import Matches

        args = ['-m', 'glue_ros.ros.node_main', '--ros-args', *node_args]
        for key, value in params.items():
            if isinstance(value, (list, tuple)):
                value = '[' + ','.join(str(v) for v in value) + ']'
            elif isinstance(value, bool):
                value = str(value).lower()
            args += ['-p', f'{key}:={value}']
        self.log_path = Path(workdir) / 'node.log'
        self.proc = start_process(args, self.log_path, env)
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node('glue_ros_test_driver', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        reliability = (
            ReliabilityPolicy.RELIABLE if reliable_images else ReliabilityPolicy.BEST_EFFORT
        )
        qos = QoSProfile(depth=10, reliability=reliability)
        self.publishers = {t: self.node.create_publisher(Image, t, qos) for t in topics}
        self.matches = []
        self.node.create_subscription(Matches, 'matches', self.matches.append, 100)

    def log(self) -> str:
        """What the node printed so far."""
        return self.log_path.read_text() if self.log_path.exists() else ''

    def stats(self) -> dict:
        """The frame accounting the node logged when it stopped ({} before it has)."""
        for line in reversed(self.log().splitlines()):
            if 'stopping: {' in line:
                return ast.literal_eval(line[line.index('{') :])
        return {}

    def wait_connected(self, timeout: float = 30.0) -> None:
        """Wait until the node subscribes every image topic and publishes matches."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f'node exited early:\n{self.log()}')
            return (
                all(p.get_subscription_count() for p in self.publishers.values())
                and self.node.count_publishers('matches') > 0
                and 'matcher ready' in self.log()
            )

        if not spin_until(self.executor, ready, timeout):
            raise RuntimeError(f'node not ready after {timeout} s:\n{self.log()}')
        # Our side has seen the node's subscriptions; give the node time to see our publishers
        # too, or the first best-effort image can be dropped on arrival.
        self.spin(1.0)

    def publish(
        self,
        topic: str,
        image: np.ndarray,
        stamp: float,
        frame_id: str = 'camera',
        encoding: str | None = None,
        **overrides: Any,
    ) -> None:
        """Publish an image (numpy) with a stamp in seconds; overrides set message fields."""
        from sensor_msgs.msg import Image  # ROS only in MatcherProcess (module docstring)

        fields = numpy_to_image_fields(image, encoding)
        fields.update(overrides)
        msg = Image()
        msg.header.frame_id = frame_id
        msg.header.stamp.sec, ns = divmod(int(round(stamp * 1e9)), 1_000_000_000)
        msg.header.stamp.nanosec = ns
        for key, value in fields.items():
            setattr(msg, key, value)
        self.publishers[topic].publish(msg)

    def call(self, srv_type: type, name: str, request: Any, timeout: float = 60.0) -> Any:
        """Call a service of the node and wait for the answer (None on timeout)."""
        client = self.node.create_client(srv_type, name)
        try:
            if not spin_until(self.executor, client.service_is_ready, timeout):
                return None
            future = client.call_async(request)
            spin_until(self.executor, future.done, timeout)
            return future.result() if future.done() else None
        finally:
            self.node.destroy_client(client)

    def lifecycle_state(self) -> str:
        """The node's lifecycle state label ('unconfigured', 'inactive', 'active', ...)."""
        from lifecycle_msgs.srv import GetState  # ROS only in MatcherProcess

        answer = self.call(GetState, 'glue_ros_matcher/get_state', GetState.Request(), 30)
        return answer.current_state.label if answer is not None else 'no answer'

    def transition(self, label: str) -> bool:
        """Ask for a lifecycle transition by its label; True on success.

        Labels: configure, activate, deactivate, cleanup, shutdown (from unconfigured),
        active_shutdown (from active).
        """
        # ROS only in MatcherProcess (module docstring)
        from lifecycle_msgs.msg import Transition
        from lifecycle_msgs.srv import ChangeState

        ids = {
            'configure': Transition.TRANSITION_CONFIGURE,
            'activate': Transition.TRANSITION_ACTIVATE,
            'deactivate': Transition.TRANSITION_DEACTIVATE,
            'cleanup': Transition.TRANSITION_CLEANUP,
            'shutdown': Transition.TRANSITION_UNCONFIGURED_SHUTDOWN,
            'active_shutdown': Transition.TRANSITION_ACTIVE_SHUTDOWN,
        }
        request = ChangeState.Request()
        request.transition.id = ids[label]
        answer = self.call(ChangeState, 'glue_ros_matcher/change_state', request, 120)
        return bool(answer is not None and answer.success)

    def set_parameter(self, name: str, value: object) -> Any:
        """Set one parameter of the node; the SetParametersResult (None on timeout)."""
        # ROS only in MatcherProcess (module docstring)
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        message = Parameter(name, value=value).to_parameter_msg()
        request = SetParameters.Request(parameters=[message])
        answer = self.call(SetParameters, 'glue_ros_matcher/set_parameters', request, 30)
        return answer.results[0] if answer is not None else None

    def wait_matches(self, count: int, timeout: float) -> bool:
        """Spin until `count` match messages arrived in total."""
        return spin_until(self.executor, lambda: len(self.matches) >= count, timeout)

    def publish_in_turn(
        self,
        topic: str,
        images: Iterable[np.ndarray],
        stamps: Iterable[float],
        timeout: float = 60.0,
    ) -> None:
        """Publish images one at a time, each after the node matched the one before.

        The first image of a sequence gives no match (nothing to match it against yet): the
        second follows it after a moment instead. Raises AssertionError naming the image the
        node did not match in time.
        """
        expected = len(self.matches)
        for k, (image, stamp) in enumerate(zip(images, stamps)):
            self.publish(topic, image, stamp)
            if k == 0:
                self.spin(0.5)
                continue
            expected += 1
            if not self.wait_matches(expected, timeout):
                raise AssertionError(f'image {k} not matched after {timeout} s:\n{self.log()}')

    def spin_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Process callbacks until predicate() is true or timeout seconds pass."""
        return spin_until(self.executor, predicate, timeout)

    def spin(self, seconds: float) -> None:
        """Process callbacks for a while."""
        spin_until(self.executor, lambda: False, seconds)

    def close(self) -> int:
        """Stop both nodes; returns the matcher node's exit code."""
        import rclpy  # ROS only in MatcherProcess (module docstring)

        code = stop_process(self.proc)
        rclpy.try_shutdown(context=self.context)
        return code


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far, user and system, in seconds (Linux)."""
    stat = Path(f'/proc/{pid}/stat').read_text()
    fields = stat[stat.rindex(')') + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def rss_mb(pid: int, field: str = 'VmRSS') -> float:
    """Resident memory of a process, MiB (Linux).

    field 'RssAnon': its anonymous part only (heaps, tensors), without the mapped libraries and
    the DDS shared-memory segments that VmRSS also counts.
    """
    for line in Path(f'/proc/{pid}/status').read_text().splitlines():
        if line.startswith(field + ':'):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f'no {field}')
