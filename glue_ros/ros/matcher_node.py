"""The glue_ros matcher node: a managed (lifecycle) node, images in, glue_ros/Matches out.

Lifecycle: `configure` checks the parameters and loads the matcher (exports and engine builds
included), `activate` subscribes and starts matching, `deactivate` stops without unloading,
`cleanup` / `shutdown` release everything. With `autostart` (default) the node configures and
activates itself, so a plain `ros2 run` or launch just works; a lifecycle manager sets it false.

Reception and inference are decoupled: subscription callbacks only store the newest frame (or
stereo pair), still serialized, and return; a worker thread decodes and matches the newest one
and counts the frames it never got to. Latency therefore stays bounded when images come faster
than inference, and a dropped frame costs next to nothing (glue_ros.ros.stream, raw_images).
The match_images service shares the matcher with the worker, one inference at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from sensor_msgs.msg import Image

from glue_ros import settings
from glue_ros.core.allocator import HeapTrimmer
from glue_ros.core.errors import GlueRosError, ParameterError
from glue_ros.core.health import StreamHealth
from glue_ros.core.scheduling import Frame, LatestSlot, StereoPairer, StopRequest, TurnLock
from glue_ros.frontend.frontend import Frontend
from glue_ros.matcher import build_matcher
from glue_ros.ros import parameters as node_parameters
from glue_ros.ros.camera_infos import CameraInfos
from glue_ros.ros.input_watch import InputWatch
from glue_ros.ros.log_bridge import forward_library_logs, stop_forwarding
from glue_ros.ros.publishing import Outputs, diagnostics_message
from glue_ros.ros.service import answer_match_images
from glue_ros.ros.stream import THROTTLE_S, ImageStream, stamp_seconds
from glue_ros.ros.topics import camera_info_topic
from glue_ros.srv import MatchImages

# Re-exported: users and tests know these from the node module.
__all__ = [
    'Frame',
    'LatestSlot',
    'MatcherNode',
    'StereoPairer',
    'StopRequest',
    'TurnLock',
    'stamp_seconds',
]

SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE
DIAGNOSTICS_PERIOD_S = 1.0


class MatcherNode(ImageStream, LifecycleNode):
    """Subscribes images, matches them on a worker thread and publishes glue_ros/Matches.

    image_qos / output_qos: the QoS of the image subscriptions and of the outputs; None builds
    them from the image_qos_depth / output_qos_depth parameters (best-effort images, so camera
    drivers and `ros2 bag play` both connect; reliable outputs).
    """

    def __init__(
        self,
        *,
        image_qos: QoSProfile | None = None,
        output_qos: QoSProfile | None = None,
        **kwargs,
    ):
        # Before the node exists: a failed __init__ still ends in destroy_node (context cleanup).
        self._diagnostics_stop = threading.Event()
        self._diagnostics_thread: threading.Thread | None = None
        super().__init__('glue_ros_matcher', **kwargs)
        # The library's log records (front-end events, engine builds) go to this node's log.
        self._log_handler = forward_library_logs(self.get_logger())
        self.params = node_parameters.declare(self)
        self._image_qos, self._output_qos = image_qos, output_qos
        self.state = 'unconfigured'
        self.mode = self.params['mode']
        self.config = None  # the MatcherConfig (configure)
        self.outputs: Outputs | None = None  # the publishers (configure)
        self.cameras = CameraInfos()  # camera id -> CameraModel (CameraInfo topics)
        self.slot = LatestSlot()  # the newest job for the worker (activate)
        self.input_watch = InputWatch()
        self._received = {}  # side -> images received (activate)
        self.health = StreamHealth()  # the frame account: stats, /diagnostics
        self.matcher = None
        self.matcher_error: str | None = None
        self.frontend: Frontend | None = None
        self.inference = TurnLock()  # one inference at a time, stream and service in turn
        self.worker: threading.Thread | None = None
        # New views give new tensor sizes: free heap memory is handed back between frames.
        self.trim_heap = HeapTrimmer()
        self._running = False
        self._entities = []  # (entity, destroy): made by configure
        self._image_subscriptions = {}
        self._image_type = Image  # or CompressedImage (use_compressed), at activate
        self.sync: StereoPairer | None = None
        self._watch_timer = None
        self.add_on_set_parameters_callback(self._on_set_parameters)
        # Diagnostics report in every state, a failed configure included, from a thread of
        # their own: they go on while a long configure (an engine build) holds the executor.
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self._diagnostics_thread = threading.Thread(
            target=self._diagnostics_loop, name='glue_ros_diagnostics', daemon=True
        )
        self._diagnostics_thread.start()

    # -- lifecycle ----------------------------------------------------------------------------
    def start_automatically(self) -> None:
        """Configure and activate as soon as the executor spins (the autostart parameter).

        From inside the executor, not before it: /diagnostics goes on while the matcher loads.
        """

        def autostart() -> None:
            timer.cancel()
            if self.trigger_configure() == SUCCESS:
                self.trigger_activate()

        timer = self.create_timer(0.01, autostart)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the parameters, load the matcher, create publishers and the service."""
        try:
            self.params = node_parameters.read(self)
        except ParameterError as exc:
            self.get_logger().error(f'cannot configure: {exc}')
            self.matcher_error = f'invalid parameters: {exc}'
            return FAILURE
        self.mode = self.params['mode']
        self.config = settings.matcher_config(self.params)
        self.state = 'configuring'
        if not self._load_matcher():
            self.state = 'unconfigured'
            return FAILURE
        self.outputs = Outputs(
            self,
            self.params,
            self._output_qos or QoSProfile(depth=self.params['output_qos_depth']),
        )
        self._entities = [(p, self.destroy_lifecycle_publisher) for p in self.outputs.publishers()]
        topics = {}
        if self.outputs.vins is not None or self.params['geometric_check'] in (
            'auto',
            'essential',
        ):
            topics = {
                camera_id: camera_info_topic(
                    self,
                    self._image_name(side, transport=False),
                    'camera_info' if side is None else f'{side}/camera_info',
                )
                for camera_id, side in enumerate(self._sides())
            }
        self._entities += [
            (s, self.destroy_subscription)
            for s in self.cameras.subscribe(
                self, topics, rectified=self.mode == 'stereo', on_bad=self._bad_frame
            )
        ]
        # Under the node's one-thread executor images wait in DDS while a request is served
        # (one match); its own group lets a multi-threaded executor take them meanwhile.
        self._entities.append(
            (
                self.create_service(
                    MatchImages,
                    'match_images',
                    self._on_match_images,
                    callback_group=MutuallyExclusiveCallbackGroup(),
                ),
                self.destroy_service,
            )
        )
        self.state = 'inactive'
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe the images and start the worker."""
        self._start_stream()
        self.state = 'active'
        self.get_logger().info(
            f'active: {self.mode} mode, {self.matcher.name} on {self.config.device}, backend '
            f'{self.config.backend}; subscribed to '
            f'{", ".join(s.topic_name for s in self._image_subscriptions.values())}'
        )
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop matching and unsubscribe; the matcher stays loaded."""
        self._stop_stream()
        self.state = 'inactive'
        self.get_logger().info(f'inactive: {self.stats}')
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release the matcher, the publishers and the service."""
        self._release()
        self.state = 'unconfigured'
        return SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Release everything, from whatever state."""
        self._release()
        self.state = 'finalized'
        return SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: release and go back to unconfigured."""
        self._release()
        self.state = 'unconfigured'
        return SUCCESS

    def _sides(self) -> tuple:
        return (None,) if self.mode == 'sequential' else ('left', 'right')

    def _image_name(self, side: str | None, transport: bool = True) -> str:
        """The relative, remappable image topic of a side (transport=False: the base topic)."""
        name = 'image' if side is None else f'{side}/image_rect'
        compressed = transport and self.params['use_compressed']
        return name + ('/compressed' if compressed else '')

    def _release(self) -> None:
        self._stop_stream()
        for entity, destroy in self._entities:
            destroy(entity)
        self._entities = []
        with self.inference:
            self.matcher = self.frontend = None

    def _load_matcher(self) -> bool:
        """Build the matcher; on failure the node stays up, unconfigured, and says why."""
        what = self.config.matcher + (
            f'/{self.config.features}' if self.config.matcher == 'lightglue' else ''
        )
        self.get_logger().info(
            f'loading {what} on {self.config.device}, backend '
            f'{self.config.backend} (exports and engine builds can take '
            'minutes the first time)'
        )
        start = time.monotonic()
        try:
            matcher = build_matcher(self.config)
            frontend = Frontend(matcher, settings.frontend_config(self.params))
        except (GlueRosError, OSError, RuntimeError, ValueError) as exc:
            self.matcher_error = f'{type(exc).__name__}: {exc}'
            self.get_logger().error(f'matcher unavailable, configure failed: {self.matcher_error}')
            return False
        with self.inference:
            self.matcher, self.frontend, self.matcher_error = matcher, frontend, None
        self.get_logger().info(
            f'matcher ready in {time.monotonic() - start:.1f} s: {matcher.describe()}'
        )
        return True

    # -- parameters, diagnostics ---------------------------------------------------------------
    def _on_set_parameters(self, changed: Sequence[Parameter]) -> SetParametersResult:
        """Check live changes together, then hand them to the matcher and the front-end."""
        reason = node_parameters.apply_live_changes(self, changed)
        return SetParametersResult(successful=reason is None, reason=reason or '')

    def _diagnostics_loop(self) -> None:
        """Publish /diagnostics every DIAGNOSTICS_PERIOD_S until the node is destroyed."""
        while not self._diagnostics_stop.wait(DIAGNOSTICS_PERIOD_S):
            try:
                self.diagnostics_pub.publish(diagnostics_message(self))
            except Exception:  # noqa: BLE001 - the context went down under us: nothing to report to
                if not self.context.ok():
                    return
                raise

    # -- on request (service callback group) ------------------------------------------------
    def _on_match_images(
        self, request: MatchImages.Request, response: MatchImages.Response
    ) -> MatchImages.Response:
        """Match two chosen images; every failure is an answer with `error`, never a raise."""
        response = answer_match_images(self, request, response)
        if not response.success:
            self.get_logger().warning(
                f'match_images: {response.error}', throttle_duration_sec=THROTTLE_S
            )
        return response

    @property
    def stats(self) -> dict:
        """Frames received, processed, dropped, bad and published since the start."""
        return dict(self.health.totals)

    def close(self) -> None:
        """Stop the worker thread; the library's records stop going to this node's log."""
        self._stop_stream()
        stop_forwarding(self._log_handler)

    def destroy_node(self) -> None:
        """Stop the diagnostics thread before the publisher it uses goes."""
        self._diagnostics_stop.set()
        if self._diagnostics_thread is not None and self._diagnostics_thread.is_alive():
            self._diagnostics_thread.join(timeout=2 * DIAGNOSTICS_PERIOD_S)
        super().destroy_node()


if __name__ == '__main__':  # as before; the process itself is glue_ros.ros.node_main's
    from glue_ros.ros.node_main import main

    raise SystemExit(main())
