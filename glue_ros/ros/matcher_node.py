"""The glue_ros matcher node: images in, glue_ros/Matches out, in sequential or stereo mode.

Reception and inference are decoupled: subscription callbacks only store the newest frame (or
stereo pair) and return, a worker thread runs the matcher on the newest one and counts the
frames it never got to. Latency therefore stays bounded when images come faster than inference.
"""
from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Optional

import rclpy
import rclpy.executors
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud

from glue_ros.core.allocator import configure_for_streaming
from glue_ros.core.camera import CameraModel
from glue_ros.core.errors import (CameraModelError, GlueRosError, ImageConversionError,
                                  ParameterError)
from glue_ros.core.image_conversion import (compressed_to_numpy, image_to_numpy,
                                            numpy_to_image_fields)
from glue_ros.matcher import MatcherConfig, build_matcher, check_image
from glue_ros.frontend.frontend import Frontend, FrontendConfig
from glue_ros.frontend.geometry import CHECKS
from glue_ros.msg import Keypoints, Matches
from glue_ros.ros import messages
from glue_ros.ros.input_watch import InputWatch
from glue_ros.frontend.vins import stereo_partner_points
from glue_ros.ros.vins import VinsCloudBuilder
from glue_ros.core.drawing import draw_matches

THROTTLE_S = 5.0

FRONTEND = FrontendConfig()   # the front-end's defaults are the node's
# name: (default, description). Types follow the defaults; validated at start-up.
PARAMETERS = {
    'mode': ('sequential', "'sequential': match each frame against the previous one or a "
             "keyframe; 'stereo': match left/image_rect against right/image_rect"),
    'matcher': ('lightglue', "'lightglue' (sparse features) or 'coarse_loftr'"),
    'features': ('xfeat', "LightGlue's extractor: 'xfeat', 'superpoint' or 'disk'"),
    'max_keypoints': (2048, 'keypoints per image, strongest kept'),
    'weights': ('', 'matcher weights file; empty: the packaged default'),
    'feature_weights': ('', 'extractor weights file; empty: the packaged default '
                        '(SuperPoint: required, users supply it)'),
    'device': ('cpu', "'cpu' or 'cuda'"),
    'depth_confidence': (0.95, 'LightGlue early exit confidence; -1 disables'),
    'width_confidence': (0.99, 'LightGlue point pruning confidence; -1 disables'),
    'match_threshold': (-1.0, 'minimum match confidence; -1: the model default '
                        '(LightGlue 0.1, coarse LoFTR 0.2)'),
    'backend': ('torch', "matcher backend: 'torch', 'onnxruntime' or 'tensorrt' (exported "
                "LightGlue runs all layers: no early exit, no pruning)"),
    'precision': ('auto', "'auto' (fp16 on CUDA, bf16 on CPUs with AMX, else fp32); "
                  "'fp32'; 'fp16' (CUDA: LightGlue mixed precision, TensorRT FP16); "
                  "'bf16' (CPU: LightGlue attention in bfloat16, fast with AMX)"),
    'input_size': ([640, 480], 'coarse_loftr network input [width, height], multiples of 16'),
    'engine_cache_dir': ('', 'TensorRT engine cache; empty: ~/.cache/glue_ros/engines'),
    'reference': (FRONTEND.reference, "sequential mode: match each frame against a "
                  "'keyframe' (held until too few matches remain: longer tracks) or the "
                  "'previous' frame"),
    'keyframe_min_matches': (FRONTEND.keyframe_min_matches, "with reference='keyframe': a new "
                             'keyframe is taken when fewer verified matches than this remain'),
    'geometric_check': (FRONTEND.geometric_check, "robust model the published matches must "
                        "fit: 'none', 'fundamental', 'essential' (needs camera_info), "
                        "'homography', or 'auto' (essential when camera_info is known, else "
                        'fundamental)'),
    'ransac_threshold': (FRONTEND.ransac_threshold, 'inlier threshold of the geometric check, '
                         'pixels'),
    'track_max_age': (FRONTEND.track_max_age, "reference='previous': frames an unmatched track "
                      'stays alive and is looked for again'),
    'max_tracks': (FRONTEND.max_tracks, 'feature budget: new tracks start only while fewer are '
                   'alive'),
    'min_track_distance': (FRONTEND.min_track_distance, 'pixels: new tracks start only this far '
                           'from tracked points'),
    'use_compressed': (False, 'subscribe <image>/compressed (sensor_msgs/CompressedImage)'),
    'sync_slop': (0.0, 'stereo: largest stamp difference (s) of a left/right pair; 0: exact'),
    'sync_queue_size': (10, 'stereo: unpaired images kept per side'),
    'publish_keypoints': (False, 'publish glue_ros/Keypoints on keypoints'),
    'publish_descriptors': (False, 'include descriptors in the keypoints message'),
    'publish_debug_image': (False, 'publish matches/image with the matches drawn'),
    'image_qos_depth': (5, 'depth of the image subscriptions (best effort, keep last)'),
    'max_epipolar_error': (0.0, 'stereo (rectified): drop matches whose rows differ by more '
                           'pixels than this, or with negative disparity; 0: keep all'),
    'publish_vins_features': (False, 'publish VINS-Fusion feature-tracker PointClouds '
                              '(needs camera_info)'),
    'vins_topic': ('feature_tracker/feature', 'topic of the VINS-style PointCloud'),
    'vins_velocity_units': ('pixels', "'pixels' per second, or 'normalized' coordinates per "
                            'second as VINS-Fusion\'s own tracker'),
}


def read_config(node: Node) -> tuple[dict, MatcherConfig]:
    """Declare the parameters, read them and validate them; ParameterError names the bad one."""
    values = {}
    for name, (default, description) in PARAMETERS.items():
        node.declare_parameter(name, default, ParameterDescriptor(description=description))
        values[name] = node.get_parameter(name).value
    choices = {'mode': ('sequential', 'stereo'), 'reference': ('previous', 'keyframe'),
               'vins_velocity_units': ('pixels', 'normalized'),
               'geometric_check': CHECKS}
    for name, allowed in choices.items():
        if values[name] not in allowed:
            raise ParameterError(f"parameter '{name}' is {values[name]!r}; expected one of "
                                 f"{', '.join(allowed)}")
    for name in ('sync_slop', 'max_epipolar_error', 'min_track_distance', 'track_max_age'):
        if values[name] < 0:
            raise ParameterError(f"parameter '{name}' must be >= 0, got {values[name]}")
    if values['ransac_threshold'] <= 0:
        raise ParameterError(f"parameter 'ransac_threshold' must be > 0, got "
                             f"{values['ransac_threshold']}")
    for name in ('sync_queue_size', 'image_qos_depth', 'keyframe_min_matches', 'max_tracks'):
        if values[name] < 1:
            raise ParameterError(f"parameter '{name}' must be >= 1, got {values[name]}")
    config = MatcherConfig(
        matcher=values['matcher'], features=values['features'],
        max_keypoints=values['max_keypoints'], weights=values['weights'] or None,
        feature_weights=values['feature_weights'] or None, device=values['device'],
        depth_confidence=values['depth_confidence'], width_confidence=values['width_confidence'],
        match_threshold=None if values['match_threshold'] < 0 else values['match_threshold'],
        backend=values['backend'], precision=values['precision'],
        input_size=tuple(values['input_size']),
        engine_cache_dir=values['engine_cache_dir'] or None)
    try:
        config.validate()
    except ValueError as exc:
        raise ParameterError(f'parameter {exc}') from None
    return values, config


def frontend_config(values: dict) -> FrontendConfig:
    """The front-end settings among the node's parameters."""
    return FrontendConfig(
        mode=values['mode'], geometric_check=values['geometric_check'],
        ransac_threshold=values['ransac_threshold'], reference=values['reference'],
        keyframe_min_matches=values['keyframe_min_matches'],
        track_max_age=values['track_max_age'], max_tracks=values['max_tracks'],
        min_track_distance=values['min_track_distance'],
        max_epipolar_error=values['max_epipolar_error'],
        track_stereo_left=values['mode'] == 'stereo' and values['publish_vins_features'])


def stamp_seconds(header) -> float:
    """A header stamp in seconds."""
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class Frame:
    """One received image: message header, decoded pixels, arrival time."""

    __slots__ = ('header', 'image', 'arrival')

    def __init__(self, header, image, arrival):
        self.header, self.image, self.arrival = header, image, arrival


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


class StereoSync:
    """Pairs left and right images by stamp: exactly, or within `slop` seconds."""

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
            t = stamp_seconds(frame.header)
            best, best_dt = None, None
            for candidate in other:
                dt = abs(stamp_seconds(candidate.header) - t)
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


class MatcherNode(Node):
    """Subscribes images, matches them on a worker thread and publishes glue_ros/Matches."""

    def __init__(self, **kwargs):
        super().__init__('glue_ros_matcher', **kwargs)
        self.params, self.config = read_config(self)
        self.mode = self.params['mode']
        self.stats = {'received': 0, 'processed': 0, 'dropped': 0, 'bad': 0, 'published': 0}
        self.matcher = None
        self.matcher_error: Optional[str] = None
        self.frontend: Optional[Frontend] = None
        self._load_matcher()

        self.matches_pub = self.create_publisher(Matches, 'matches', 10)
        self.keypoints_pub = (self.create_publisher(Keypoints, 'keypoints', 10)
                              if self.params['publish_keypoints'] else None)
        self.debug_pub = (self.create_publisher(Image, 'matches/image', 2)
                          if self.params['publish_debug_image'] else None)
        self.vins = None
        self.cameras = {}
        if self.params['publish_vins_features']:
            self.vins = VinsCloudBuilder(self.params['vins_velocity_units'])
            self.vins_pub = self.create_publisher(PointCloud, self.params['vins_topic'], 10)
        if self.vins is not None or self.params['geometric_check'] in ('auto', 'essential'):
            infos = (('camera_info', 0),) if self.mode == 'sequential' else \
                (('left/camera_info', 0), ('right/camera_info', 1))
            for topic, camera_id in infos:
                self.create_subscription(
                    CameraInfo, topic, lambda m, i=camera_id: self._on_camera_info(m, i), 10)
        # Best effort subscriptions connect to best-effort camera drivers and to reliable
        # publishers such as `ros2 bag play` alike.
        qos = QoSProfile(depth=self.params['image_qos_depth'],
                         reliability=qos_profile_sensor_data.reliability,
                         history=qos_profile_sensor_data.history)
        self.slot = LatestSlot()
        compressed = self.params['use_compressed']
        msg_type = CompressedImage if compressed else Image
        suffix = '/compressed' if compressed else ''
        sides = (None,) if self.mode == 'sequential' else ('left', 'right')
        if self.mode == 'stereo':
            self.sync = StereoSync(self.params['sync_slop'], self.params['sync_queue_size'])
        self._image_subscriptions = {
            side: self.create_subscription(
                msg_type, ('image' if side is None else f'{side}/image_rect') + suffix,
                lambda m, s=side: self._on_image(m, s), qos)
            for side in sides}
        self._received = dict.fromkeys(sides, 0)
        self.input_watch = InputWatch()
        self.create_timer(1.0, self._watch_inputs)
        self._running = True
        self.worker = threading.Thread(target=self._work, name='glue_ros_matcher', daemon=True)
        self.worker.start()
        self.get_logger().info(
            f'{self.mode} mode, matcher {self.config.matcher}'
            f'{"/" + self.config.features if self.config.matcher == "lightglue" else ""}'
            f' on {self.config.device}, backend {self.config.backend}; subscribed to '
            f'{", ".join(s.topic_name for s in self.subscriptions)}')

    # -- set-up ---------------------------------------------------------------------------
    def _load_matcher(self) -> None:
        """Build the matcher; on failure the node stays up and says why on every frame."""
        try:
            self.matcher = build_matcher(self.config)
            self.frontend = Frontend(self.matcher, frontend_config(self.params),
                                     on_event=self.get_logger().info)
            self.get_logger().info(f'matcher ready: {self.matcher.describe()}')
        except (GlueRosError, OSError, RuntimeError) as exc:
            self.matcher_error = f'{type(exc).__name__}: {exc}'
            self.get_logger().error(f'matcher unavailable, frames are skipped: '
                                    f'{self.matcher_error}')

    # -- reception (executor thread: never blocks) --------------------------------------
    def _on_image(self, msg, side: Optional[str]) -> None:
        arrival = time.monotonic()
        self.stats['received'] += 1
        self._received[side] += 1
        try:
            image = (compressed_to_numpy(msg) if isinstance(msg, CompressedImage)
                     else image_to_numpy(msg))
            check_image(image)
        except (ImageConversionError, GlueRosError) as exc:
            self._bad_frame(f'{side + " " if side else ""}image skipped: {exc}')
            return
        frame = Frame(msg.header, image, arrival)
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
            topic = 'camera_info' if self.mode == 'sequential' else \
                ('left', 'right')[camera_id] + '/camera_info'
            self.get_logger().warning(f'no CameraInfo received on {topic} yet: VINS features '
                                      f'are not published until it arrives',
                                      throttle_duration_sec=THROTTLE_S)
        return camera

    def _bad_frame(self, text: str) -> None:
        self.stats['bad'] += 1
        self.get_logger().warning(text, throttle_duration_sec=THROTTLE_S)

    # -- inference (worker thread) -------------------------------------------------------
    def _work(self) -> None:
        while self._running:
            job, dropped = self.slot.take()
            if job is None:
                continue
            self.stats['dropped'] += dropped
            if self.matcher is None:
                self.get_logger().error(f'matcher unavailable, frame skipped: '
                                        f'{self.matcher_error}', throttle_duration_sec=THROTTLE_S)
                continue
            try:
                if job[0] == 'sequential':
                    self._process_sequential(job[1], dropped)
                else:
                    self._process_stereo(*job[1], dropped)
                self.stats['processed'] += 1
            except GlueRosError as exc:
                self._bad_frame(f'frame skipped: {exc}')
            except Exception as exc:  # noqa: BLE001 - a bad frame must never end the node
                self._bad_frame(f'frame skipped after an unexpected {type(exc).__name__}: '
                                f'{exc}')

    def _process_sequential(self, frame: Frame, dropped: int) -> None:
        out = self.frontend.process(frame.image, stamp_seconds(frame.header),
                                    camera=self.cameras.get(0), tag=frame)
        self._publish_keypoints(frame, self.frontend.last_features)
        if out is None:
            return
        self._sync_vins()
        reference = out.reference_tag
        self._publish_matches(out, frame, reference.header, frame.image, reference.image,
                              track_ids=out.track_ids, dropped=dropped,
                              keyframe=out.keyframe, arrival=frame.arrival,
                              mode=Matches.MODE_SEQUENTIAL,
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
                         *, track_ids, dropped, keyframe, arrival, mode, reference_size):
        result = out.result
        latency_ms = (time.monotonic() - arrival) * 1e3
        msg = messages.matches_message(
            result, frame.header, reference_header, mode=mode, matcher=self.matcher.name,
            query_size=(image.shape[1], image.shape[0]), reference_size=reference_size,
            grid_step=result.grid_step, track_ids=track_ids, keyframe=keyframe,
            latency_ms=latency_ms, dropped_frames=dropped, verification=out.verification,
            num_outliers=out.num_outliers)
        self.matches_pub.publish(msg)
        self.stats['published'] += 1
        self.get_logger().debug(f'{len(result)} matches, layers {result.layers_used}/'
                                f'{result.layers_total}, latency {latency_ms:.1f} ms')
        if self.debug_pub is not None:
            self._publish_debug(frame.header, image, reference_image, result)

    def _publish_debug(self, header, image, reference_image, result) -> None:
        canvas = draw_matches(image, reference_image, result.points0, result.points1,
                              result.scores)
        msg = Image(header=header, **numpy_to_image_fields(canvas, 'rgb8'))
        self.debug_pub.publish(msg)

    def close(self) -> None:
        """Stop the worker thread."""
        self._running = False
        self.slot.close()
        self.worker.join(timeout=5)


def main(args=None) -> int:
    """Entry point of `ros2 run glue_ros matcher_node` and the matcher_node script."""
    # Before the big allocations: memory that stays flat over hours (glue_ros.core.allocator);
    # GLUE_ROS_ALLOCATOR=system keeps the C library's own settings.
    allocator = os.environ.get('GLUE_ROS_ALLOCATOR') != 'system' and configure_for_streaming()
    rclpy.init(args=args)
    try:
        node = MatcherNode()
    except ParameterError as exc:
        rclpy.logging.get_logger('glue_ros_matcher').fatal(f'cannot start: {exc}')
        rclpy.try_shutdown()
        return 2
    node.get_logger().info('allocator: ' + ('glibc mmap threshold fixed at 16 MiB, 2 arenas'
                                            if allocator else "the C library's own settings"))
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.close()
        node.get_logger().info(f'stopping: {node.stats}')
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
