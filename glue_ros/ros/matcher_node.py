"""The glue_ros matcher node: a managed (lifecycle) node, images in, glue_ros/Matches out.

Lifecycle: `configure` checks the parameters and loads the matcher (exports and engine builds
included), `activate` subscribes and starts matching, `deactivate` stops without unloading,
`cleanup` / `shutdown` release everything. With `autostart` (default) the node configures and
activates itself, so a plain `ros2 run` or launch just works; a lifecycle manager sets it false.

Reception and inference are decoupled: subscription callbacks only store the newest frame (or
stereo pair), still serialized, and return; a worker thread decodes and matches the newest one
and counts the frames it never got to. Latency therefore stays bounded when images come faster
than inference, and a dropped frame costs next to nothing (glue_ros.ros.raw_images).
The match_images service shares the matcher with the worker, one inference at a time.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from collections import deque
from typing import Optional

import rclpy
import rclpy.executors
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud

from glue_ros import settings
from glue_ros.core.allocator import HeapTrimmer, configure_for_streaming
from glue_ros.core.camera import CameraModel
from glue_ros.core.errors import (CameraModelError, GlueRosError, ImageConversionError,
                                  ParameterError)
from glue_ros.core.health import StreamHealth
from glue_ros.core.image_conversion import image_to_numpy, numpy_to_image_fields
from glue_ros.matcher import build_matcher, check_image
from glue_ros.frontend.frontend import Frontend
from glue_ros.msg import Keypoints, Matches
from glue_ros.srv import MatchImages
from glue_ros.ros import messages
from glue_ros.ros import parameters as node_parameters
from glue_ros.ros import raw_images
from glue_ros.ros.input_watch import InputWatch
from glue_ros.ros.topics import camera_info_topic
from glue_ros.frontend.vins import stereo_partner_points
from glue_ros.ros.vins import VinsCloudBuilder
from glue_ros.core.drawing import draw_matches

THROTTLE_S = 5.0
ROSOUT_GRACE_S = 0.25   # for the last log line to leave before the node's publishers go
SUCCESS, FAILURE = TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE


def stamp_seconds(header) -> float:
    """A header stamp in seconds."""
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class Frame:
    """One received image: its stamp and serialized message until the worker decodes it.

    header and image are set by :meth:`decode`, which also lets the serialized bytes go (a frame
    kept as the keyframe holds its pixels once).
    """

    __slots__ = ('stamp', 'arrival', 'side', 'raw', 'header', 'image')

    def __init__(self, stamp: float, arrival: float, raw: bytes, side: Optional[str] = None):
        self.stamp, self.arrival, self.side, self.raw = stamp, arrival, side, raw
        self.header = self.image = None

    def decode(self, msg_type) -> None:
        """Deserialize, convert and check; raises a GlueRosError on a malformed image."""
        self.header, self.image = raw_images.decode(self.raw, msg_type)
        self.raw = None


class LatestSlot:
    """Holds only the newest job; counts the ones replaced before the worker took them."""

    def __init__(self):
        self._job = None
        self._dropped = 0
        self._closed = False
        self._cv = threading.Condition()

    def put(self, job) -> None:
        """Store a job, replacing (and counting as dropped) an untaken one."""
        with self._cv:
            if self._job is not None:
                self._dropped += 1
            self._job = job
            self._cv.notify()

    def take(self, timeout: float = 0.5):
        """(job, dropped since the last take), or (None, 0) on timeout or close."""
        with self._cv:
            if self._job is None and not self._closed:
                self._cv.wait(timeout)
            job, dropped = self._job, self._dropped
            self._job, self._dropped = None, 0
            return job, dropped

    def close(self) -> None:
        """Wake the worker for shutdown."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()


class TurnLock:
    """A lock granted in the order it was asked for.

    threading.Lock lets a thread that releases take it straight back, so back-to-back service
    requests could keep the worker waiting for several inferences; here each waits its turn.
    """

    def __init__(self):
        self._cv = threading.Condition()
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self):
        with self._cv:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cv.wait()
        return self

    def __exit__(self, *exc_info):
        with self._cv:
            self._serving += 1
            self._cv.notify_all()


class StereoSync:
    """Pairs left and right images by stamp (headers only): exactly, or within `slop` s."""

    def __init__(self, slop: float, queue_size: int):
        self.slop = slop
        self.left = deque(maxlen=queue_size)
        self.right = deque(maxlen=queue_size)
        self.lock = threading.Lock()

    def add(self, side: str, frame: Frame):
        """Add a frame; returns a (left, right) pair when one is complete, else None."""
        with self.lock:
            mine, other = (self.left, self.right) if side == 'left' else (self.right, self.left)
            mine.append(frame)
            t = frame.stamp
            best, best_dt = None, None
            for candidate in other:
                dt = abs(candidate.stamp - t)
                if dt <= self.slop + 1e-9 and (best_dt is None or dt < best_dt):
                    best, best_dt = candidate, dt
            if best is None:
                return None
            # Everything up to the pair is consumed: older images can no longer pair better.
            while other and other[0] is not best:
                other.popleft()
            other.popleft()
            while mine and mine[0] is not frame:
                mine.popleft()
            mine.popleft()
            return (frame, best) if side == 'left' else (best, frame)


class MatcherNode(LifecycleNode):
    """Subscribes images, matches them on a worker thread and publishes glue_ros/Matches.

    image_qos / output_qos: the QoS of the image subscriptions and of the outputs; None builds
    them from the image_qos_depth / output_qos_depth parameters (best-effort images, so camera
    drivers and `ros2 bag play` both connect; reliable outputs).
    """

    def __init__(self, *, image_qos: Optional[QoSProfile] = None,
                 output_qos: Optional[QoSProfile] = None, **kwargs):
        super().__init__('glue_ros_matcher', **kwargs)
        self.params = node_parameters.declare(self)
        self._image_qos, self._output_qos = image_qos, output_qos
        self.state = 'unconfigured'
        self.health = StreamHealth()   # the frame account: stats, /diagnostics
        self.matcher = None
        self.matcher_error: Optional[str] = None
        self.frontend: Optional[Frontend] = None
        self.inference = TurnLock()   # one inference at a time, stream and service in turn
        self.worker: Optional[threading.Thread] = None
        # New views give new tensor sizes: free heap memory is handed back between frames.
        self.trim_heap = HeapTrimmer()
        self._running = False
        self._entities = []                 # (entity, destroy): made by configure
        self._image_subscriptions = {}
        self._image_type = Image            # or CompressedImage (use_compressed), at activate
        self.camera_info_topics = {}        # camera id -> CameraInfo topic (configure)
        self.sync: Optional[StereoSync] = None
        self._watch_timer = None
        self.add_on_set_parameters_callback(self._on_set_parameters)
        # Diagnostics report in every state, a failed configure included, and in a callback
        # group of their own: they go on while a long configure (an engine build) runs.
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', 10)
        self.create_timer(1.0, self._publish_diagnostics,
                          callback_group=MutuallyExclusiveCallbackGroup())

    # -- lifecycle ----------------------------------------------------------------------------
    def start_automatically(self) -> None:
        """Configure and activate as soon as the executor spins (the autostart parameter).

        From inside the executor, not before it: /diagnostics goes on while the matcher loads.
        """
        def autostart():
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
        depth = self.params['output_qos_depth']
        output_qos = self._output_qos or QoSProfile(depth=depth)
        self.matches_pub = self.create_lifecycle_publisher(Matches, 'matches', output_qos)
        self.keypoints_pub = (self.create_lifecycle_publisher(Keypoints, 'keypoints', output_qos)
                              if self.params['publish_keypoints'] else None)
        self.debug_pub = (self.create_lifecycle_publisher(Image, 'matches/image', output_qos)
                          if self.params['publish_debug_image'] else None)
        self.vins = self.vins_pub = None
        if self.params['publish_vins_features']:
            self.vins = VinsCloudBuilder(self.params['vins_velocity_units'])
            self.vins_pub = self.create_lifecycle_publisher(PointCloud, self.params['vins_topic'],
                                                            output_qos)
        self._entities = [(p, self.destroy_lifecycle_publisher)
                          for p in (self.matches_pub, self.keypoints_pub, self.debug_pub,
                                    self.vins_pub) if p is not None]
        self.cameras = {}
        self.camera_info_topics = {}
        if self.vins is not None or self.params['geometric_check'] in ('auto', 'essential'):
            for camera_id, side in enumerate(self._sides()):
                topic = camera_info_topic(self, self._image_name(side, transport=False),
                                          'camera_info' if side is None
                                          else f'{side}/camera_info')
                self.camera_info_topics[camera_id] = topic
                self._entities.append((self.create_subscription(
                    CameraInfo, topic, lambda m, i=camera_id: self._on_camera_info(m, i), 10),
                    self.destroy_subscription))
        # Its own callback group: a request is served while image callbacks keep arriving.
        self._entities.append((self.create_service(
            MatchImages, 'match_images', self._on_match_images,
            callback_group=MutuallyExclusiveCallbackGroup()), self.destroy_service))
        self.state = 'inactive'
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe the images and start the worker."""
        self.slot = LatestSlot()
        self.sync = StereoSync(self.params['sync_slop'], self.params['sync_queue_size'])
        image_qos = self._image_qos or QoSProfile(
            depth=self.params['image_qos_depth'],
            reliability=qos_profile_sensor_data.reliability,
            history=qos_profile_sensor_data.history)
        self._image_type = CompressedImage if self.params['use_compressed'] else Image
        sides = self._sides()
        # Serialized (raw): only the frame the worker takes is decoded.
        self._image_subscriptions = {
            side: self.create_subscription(self._image_type, self._image_name(side),
                                           lambda m, s=side: self._on_image(m, s), image_qos,
                                           raw=True)
            for side in sides}
        self._received = dict.fromkeys(sides, 0)
        self.input_watch = InputWatch()
        self._watch_timer = self.create_timer(1.0, self._watch_inputs)
        self._running = True
        self.worker = threading.Thread(target=self._work, name='glue_ros_matcher', daemon=True)
        self.worker.start()
        self.state = 'active'
        self.get_logger().info(
            f'active: {self.mode} mode, {self.matcher.name} on {self.config.device}, backend '
            f'{self.config.backend}; subscribed to '
            f'{", ".join(s.topic_name for s in self._image_subscriptions.values())}')
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

    def _image_name(self, side: Optional[str], transport: bool = True) -> str:
        """The relative, remappable image topic of a side (transport=False: the base topic)."""
        name = 'image' if side is None else f'{side}/image_rect'
        compressed = transport and self.params['use_compressed']
        return name + ('/compressed' if compressed else '')

    def _stop_stream(self) -> None:
        self._running = False
        if self.worker is not None:
            self.slot.close()
            self.worker.join(timeout=10)
            self.worker = None
        for subscription in self._image_subscriptions.values():
            self.destroy_subscription(subscription)
        if self._image_subscriptions:
            # What arrived after the worker's last take is dropped: every frame is accounted.
            job, dropped = self.slot.take(timeout=0)
            self.health.add(time.monotonic(), 'dropped', dropped + (job is not None))
        self._image_subscriptions = {}
        if self._watch_timer is not None:
            self.destroy_timer(self._watch_timer)
            self._watch_timer = None

    def _release(self) -> None:
        self._stop_stream()
        for entity, destroy in self._entities:
            destroy(entity)
        self._entities = []
        with self.inference:
            self.matcher = self.frontend = None

    def _load_matcher(self) -> bool:
        """Build the matcher; on failure the node stays up, unconfigured, and says why."""
        what = self.config.matcher + (f'/{self.config.features}'
                                      if self.config.matcher == 'lightglue' else '')
        self.get_logger().info(f'loading {what} on {self.config.device}, backend '
                               f'{self.config.backend} (exports and engine builds can take '
                               'minutes the first time)')
        start = time.monotonic()
        try:
            matcher = build_matcher(self.config)
            frontend = Frontend(matcher, settings.frontend_config(self.params),
                                on_event=self.get_logger().info)
        except (GlueRosError, OSError, RuntimeError, ValueError) as exc:
            self.matcher_error = f'{type(exc).__name__}: {exc}'
            self.get_logger().error(f'matcher unavailable, configure failed: '
                                    f'{self.matcher_error}')
            return False
        with self.inference:
            self.matcher, self.frontend, self.matcher_error = matcher, frontend, None
        self.get_logger().info(f'matcher ready in {time.monotonic() - start:.1f} s: '
                               f'{matcher.describe()}')
        return True

    # -- parameters ---------------------------------------------------------------------------
    def _on_set_parameters(self, changed) -> SetParametersResult:
        """Check live changes together, then hand them to the matcher and the front-end."""
        changes = {p.name: node_parameters.plain(p.value) for p in changed}
        reason = node_parameters.check_changes(self.params, changes)
        if reason:
            return SetParametersResult(successful=False, reason=reason)
        params = {**self.params, **{k: v for k, v in changes.items() if k in settings.SETTINGS}}
        with self.inference:
            if self.matcher is not None:
                try:
                    self.matcher.retune(settings.matcher_config(params))
                except ValueError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
                self.frontend.retune(settings.frontend_config(params))
            if self.sync is not None:
                self.sync.slop = params['sync_slop']
            self.params = params
        self.get_logger().info(f'parameters changed: {changes}')
        return SetParametersResult(successful=True)

    # -- diagnostics --------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        report = self.health.report(
            time.monotonic(), self.state,
            self.matcher.describe() if self.matcher is not None else None,
            error=self.matcher_error,
            max_drop_ratio=self.params['diagnostics_max_drop_ratio'],
            max_latency_ms=self.params['diagnostics_max_latency_ms'],
            unit='pairs' if self.params['mode'] == 'stereo' else 'frames')
        status = DiagnosticStatus(
            level=bytes([report.level]), name=f'{self.get_name()}: matching',
            message=report.message, hardware_id=self.params['device'],
            values=[KeyValue(key=k, value=v) for k, v in report.values.items()])
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(msg)

    # -- reception (executor thread: never blocks) --------------------------------------
    def _on_image(self, raw: bytes, side: Optional[str]) -> None:
        """Count the frame and store it serialized: the stamp is all pairing needs."""
        arrival = time.monotonic()
        self.health.add(arrival, 'received')
        self._received[side] += 1
        try:
            frame = Frame(raw_images.stamp_of(raw, self._image_type), arrival, raw, side)
        except ImageConversionError as exc:
            self._bad_frame(f'{side + " " if side else ""}image skipped: {exc}')
            return
        if side is None:
            self.slot.put(('sequential', frame))
            return
        pair = self.sync.add(side, frame)
        if pair is not None:
            self.slot.put(('stereo', pair))

    def _watch_inputs(self) -> None:
        """Say why images are missing when a publisher is connected but nothing arrives."""
        now = time.monotonic()
        for side, subscription in self._image_subscriptions.items():
            topic = subscription.topic_name
            warning = self.input_watch.check(topic, now, self.count_publishers(topic),
                                             self._received[side])
            if warning:
                self.get_logger().warning(warning, throttle_duration_sec=THROTTLE_S)

    def _on_camera_info(self, msg, camera_id: int) -> None:
        try:
            self.cameras[camera_id] = CameraModel.from_camera_info(
                msg, camera_id=camera_id, rectified=self.mode == 'stereo')
        except CameraModelError as exc:
            self._bad_frame(f'camera_info of camera {camera_id} ignored: {exc}')

    def _camera(self, camera_id: int):
        camera = self.cameras.get(camera_id)
        if camera is None:
            topic = self.camera_info_topics.get(camera_id, 'camera_info')
            self.get_logger().warning(f'no CameraInfo received on {topic} yet: VINS features '
                                      f'are not published until it arrives',
                                      throttle_duration_sec=THROTTLE_S)
        return camera

    def _bad_frame(self, text: str) -> None:
        self.health.add(time.monotonic(), 'bad')
        self.get_logger().warning(text, throttle_duration_sec=THROTTLE_S)

    # -- inference (worker thread) -------------------------------------------------------
    def _work(self) -> None:
        while self._running:
            job, dropped = self.slot.take()
            if job is None:
                continue
            self.health.add(time.monotonic(), 'dropped', dropped)
            if not self._decode(job[1] if job[0] == 'stereo' else (job[1],)):
                continue
            with self.inference:
                if self.matcher is None:
                    continue
                try:
                    if job[0] == 'sequential':
                        self._process_sequential(job[1], dropped)
                    else:
                        self._process_stereo(*job[1], dropped)
                    self.health.add(time.monotonic(), 'processed')
                except GlueRosError as exc:
                    self._bad_frame(f'frame skipped: {exc}')
                except Exception as exc:  # noqa: BLE001 - a bad frame must never end the node
                    self._bad_frame(f'frame skipped after an unexpected {type(exc).__name__}: '
                                    f'{exc}')
            self.trim_heap()

    def _decode(self, frames) -> bool:
        """Decode the frames of a job; a malformed one makes the job a bad frame (False)."""
        for frame in frames:
            side = frame.side + ' ' if frame.side else ''
            try:
                frame.decode(self._image_type)
            except GlueRosError as exc:
                self._bad_frame(f'{side}image skipped: {exc}')
                return False
            except Exception as exc:  # noqa: BLE001 - a bad frame must never end the node
                self._bad_frame(f'{side}image skipped after an unexpected '
                                f'{type(exc).__name__}: {exc}')
                return False
        return True

    # -- on request (service callback group) ------------------------------------------------
    def _on_match_images(self, request, response):
        """Match two chosen images; every failure is an answer with `error`, never a raise."""
        try:
            if self.state != 'active':
                raise GlueRosError(f'the node is {self.state}: activate it to match')
            images = [image_to_numpy(request.query), image_to_numpy(request.reference)]
            for image in images:
                check_image(image)
            cameras = [CameraModel.from_camera_info(info, camera_id=k)
                       if info.width > 0 else None
                       for k, info in enumerate((request.query_camera_info,
                                                 request.reference_camera_info))]
            start = time.monotonic()
            with self.inference:
                if self.frontend is None:
                    raise GlueRosError('the matcher was unloaded')
                out = self.frontend.match_pair(*images, cameras=cameras,
                                               check=request.geometric_check or None)
                name = self.matcher.name
            result = out.result
            response.matches = messages.matches_message(
                result, request.query.header, request.reference.header,
                mode=Matches.MODE_PAIR, matcher=name,
                query_size=images[0].shape[1::-1], reference_size=images[1].shape[1::-1],
                grid_step=result.grid_step, track_ids=None, keyframe=False,
                latency_ms=(time.monotonic() - start) * 1e3, dropped_frames=0,
                verification=out.verification, num_outliers=out.num_outliers)
            response.success = True
        except (GlueRosError, ImageConversionError, CameraModelError, ValueError) as exc:
            response.success, response.error = False, f'{type(exc).__name__}: {exc}'
        except Exception as exc:  # noqa: BLE001 - a bad request must never end the node
            response.success = False
            response.error = f'unexpected {type(exc).__name__}: {exc}'
        if not response.success:
            self.get_logger().warning(f'match_images: {response.error}',
                                      throttle_duration_sec=THROTTLE_S)
        return response

    def _process_sequential(self, frame: Frame, dropped: int) -> None:
        out = self.frontend.process(frame.image, stamp_seconds(frame.header),
                                    camera=self.cameras.get(0), tag=frame)
        if self.frontend.last_features is not None:   # None on a flow frame
            self._publish_keypoints(frame, self.frontend.last_features)
        if out is None:
            return
        self._sync_vins()
        reference = out.reference_tag
        self._publish_matches(out, frame, reference.header, frame.image, reference.image,
                              track_ids=out.track_ids, dropped=dropped,
                              keyframe=out.keyframe, arrival=frame.arrival,
                              mode=Matches.MODE_SEQUENTIAL, learned=out.learned,
                              reference_size=reference.image.shape[1::-1])
        if self.vins is not None and self._camera(0) is not None:
            tracked = out.track_ids > 0
            self.vins_pub.publish(self.vins.build(frame.header, out.track_ids[tracked],
                                                  out.result.points0[tracked],
                                                  self.cameras[0]))

    def _sync_vins(self) -> None:
        """Restart the VINS velocities when the front-end started a new sequence of ids."""
        if self.vins is not None and self._vins_sequence != self.frontend.tracks.sequences:
            self.vins.reset()
            self._vins_sequence = self.frontend.tracks.sequences

    _vins_sequence = 0

    def _process_stereo(self, left: Frame, right: Frame, dropped: int) -> None:
        if left.image.shape[:2] != right.image.shape[:2]:
            self._bad_frame(f'stereo pair skipped: left is {left.image.shape[1]}x'
                            f'{left.image.shape[0]}, right is {right.image.shape[1]}x'
                            f'{right.image.shape[0]}')
            return
        out = self.frontend.process_stereo(left.image, right.image,
                                           stamp_seconds(left.header),
                                           cameras=(self.cameras.get(0), self.cameras.get(1)),
                                           tag=left)
        self._publish_keypoints(left, out.features)
        self._publish_matches(out, left, right.header, left.image, right.image,
                              track_ids=None, dropped=dropped, keyframe=False,
                              arrival=max(left.arrival, right.arrival),
                              mode=Matches.MODE_STEREO,
                              reference_size=(right.image.shape[1], right.image.shape[0]))
        if self.vins is None or out.temporal is None:
            return
        self._sync_vins()
        if self._camera(0) is not None and self._camera(1) is not None:
            tracked = out.temporal_ids > 0
            temporal = out.temporal
            self.vins_pub.publish(self.vins.build(
                left.header, out.temporal_ids[tracked], temporal.points0[tracked],
                self.cameras[0],
                stereo_partner_points(temporal.indices0[tracked], out.result),
                self.cameras[1]))

    # -- publication ---------------------------------------------------------------------
    def _publish_keypoints(self, frame: Frame, features) -> None:
        if self.keypoints_pub is None or self.config.matcher != 'lightglue':
            return
        descriptors = (features.descriptors.float().cpu().numpy()
                       if self.params['publish_descriptors'] else None)
        self.keypoints_pub.publish(messages.keypoints_message(
            frame.header, features.image_size, self.config.features,
            features.keypoints.float().cpu().numpy(), features.scores.float().cpu().numpy(),
            descriptors))

    def _publish_matches(self, out, frame: Frame, reference_header, image, reference_image,
                         *, track_ids, dropped, keyframe, arrival, mode, reference_size,
                         learned=True):
        result = out.result
        latency_ms = (time.monotonic() - arrival) * 1e3
        msg = messages.matches_message(
            result, frame.header, reference_header, mode=mode, matcher=self.matcher.name,
            query_size=(image.shape[1], image.shape[0]), reference_size=reference_size,
            grid_step=result.grid_step, track_ids=track_ids, keyframe=keyframe,
            latency_ms=latency_ms, dropped_frames=dropped, verification=out.verification,
            num_outliers=out.num_outliers, learned=learned)
        self.matches_pub.publish(msg)
        now = time.monotonic()
        self.health.add(now, 'published')
        self.health.add(now, 'latency_ms', latency_ms)
        self.get_logger().debug(f'{len(result)} matches, layers {result.layers_used}/'
                                f'{result.layers_total}, latency {latency_ms:.1f} ms')
        if self.debug_pub is not None:
            self._publish_debug(frame.header, image, reference_image, result)

    def _publish_debug(self, header, image, reference_image, result) -> None:
        canvas = draw_matches(image, reference_image, result.points0, result.points1,
                              result.scores)
        msg = Image(header=header, **numpy_to_image_fields(canvas, 'rgb8'))
        self.debug_pub.publish(msg)

    @property
    def stats(self) -> dict:
        """Frames received, processed, dropped, bad and published since the start."""
        return dict(self.health.totals)

    def close(self) -> None:
        """Stop the worker thread."""
        self._stop_stream()


class StopRequest:
    """SIGINT / SIGTERM ask the spin loop to end; the node then winds down in order.

    rclpy's own handler shuts the context down inside the signal, while the worker may still be
    publishing a frame (its publish then fails and the final log line never reaches /rosout),
    and a second SIGINT (a terminal's Ctrl-C, then `ros2 launch`'s own) raises
    KeyboardInterrupt inside the shutdown. Here every signal only sets a flag.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = threading.Event()

    def install(self) -> None:
        """Handle SIGINT and SIGTERM from now on (main thread only)."""
        for signum in self.SIGNALS:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self.requested.set()


def main(args=None) -> int:
    """Entry point of `ros2 run glue_ros matcher_node` and the matcher_node script."""
    stop = StopRequest()
    stop.install()
    # Before the big allocations: memory that stays flat over hours (glue_ros.core.allocator);
    # GLUE_ROS_ALLOCATOR=system keeps the C library's own settings.
    allocator = os.environ.get('GLUE_ROS_ALLOCATOR') != 'system' and configure_for_streaming()
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    try:
        node = MatcherNode()
        if node.params['autostart']:
            node.params = node_parameters.read(node)   # a bad value stops the start-up
    except ParameterError as exc:
        rclpy.logging.get_logger('glue_ros_matcher').fatal(f'cannot start: {exc}')
        rclpy.try_shutdown()
        return 2
    node.get_logger().info('allocator: ' + ('glibc mmap threshold fixed at 16 MiB, 2 arenas'
                                            if allocator else "the C library's own settings"))
    if node.params['autostart']:
        node.start_automatically()
    else:
        node.get_logger().info('unconfigured: waiting for a lifecycle manager (autostart off)')
    # Image callbacks, the worker's publications and the service run side by side.
    executor = rclpy.executors.MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)
    try:
        # A signal is seen within one wait (0.1 s).
        while not stop.requested.is_set() and rclpy.ok():
            executor.spin_once(timeout_sec=0.1)
    except rclpy.executors.ExternalShutdownException:
        pass
    finally:
        # In this order: the frame in progress is published, the final line reaches /rosout,
        # and only then does the context go.
        node.close()
        node.get_logger().info(f'stopping: {node.stats}')
        # /rosout is reliable, but a sample still in flight when its writer is deleted is lost
        # (seen in about 1 of 8 stops); rcl gives no handle to wait for its acknowledgement.
        time.sleep(ROSOUT_GRACE_S)
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
