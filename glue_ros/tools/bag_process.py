"""glue-ros-bag IN_BAG --out OUT_BAG: run the matcher over a bag's images, write a ROS 2 bag.

Offline twin of the matcher node, for evaluating a front-end on recorded data without a
running ROS graph: every image is processed (none dropped), the same matcher configuration and
track ids are used, and the output messages carry the ORIGINAL image stamps (header = the
image's header, bag timestamp = the image's bag timestamp) so that they line up with the other
topics of the input bag, e.g. to play both into VINS-Fusion or to compare with ground truth.

Input: ROS 1 (.bag) or ROS 2 (sqlite3 / MCAP) bags, sensor_msgs/Image or CompressedImage.
Output: a new ROS 2 bag (rosbags writer) with glue_ros/msg/Matches and, with --vins,
sensor_msgs/msg/PointCloud features laid out for VINS-Fusion's estimator. The glue_ros message
definitions are taken from msg/*.msg and stored in the bag, so rosbags and `ros2 bag` can read
it. Nothing else is copied unless --copy-input is given.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from glue_ros import settings
from glue_ros.core.camera import CameraModel
from glue_ros.core.errors import CameraModelError, GlueRosError, ImageConversionError
from glue_ros.core.image_conversion import compressed_to_numpy, image_to_numpy
from glue_ros.matcher import build_matcher, check_image
from glue_ros.frontend.frontend import Frontend
from glue_ros.frontend.vins import VinsFeatureBuilder, stamp_ns, stereo_partner_points
from glue_ros.tools.bag_play import ros2_type_name
from glue_ros.tools.match_cli import (add_frontend_arguments, add_matcher_arguments,
                                      config_from_args, frontend_config_from_args)

PROG = 'glue-ros-bag'
MODE_SEQUENTIAL, MODE_STEREO = 0, 1     # glue_ros/msg/Matches constants
DECODERS = {'sensor_msgs/msg/Image': image_to_numpy,
            'sensor_msgs/msg/CompressedImage': compressed_to_numpy}
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
MATCHES = 'glue_ros/msg/Matches'
POINT_CLOUD = 'sensor_msgs/msg/PointCloud'
STEREO_QUEUE = 30   # unpaired images kept per side while looking for a partner


class BagProcessError(GlueRosError):
    """Input, flags or environment the tool cannot work with; main() exits 2 with it."""


# -- message definitions and the output typestore ------------------------------------------
def msg_directory() -> Path:
    """Where glue_ros's .msg files are: the source tree, else the installed share directory."""
    candidates = [Path(__file__).resolve().parents[2] / 'msg']
    try:
        from ament_index_python.packages import get_package_share_directory
        candidates.append(Path(get_package_share_directory('glue_ros')) / 'msg')
    except Exception:  # noqa: BLE001 - no ament index or package not installed
        pass
    for candidate in candidates:
        if (candidate / 'Matches.msg').is_file():
            return candidate
    raise BagProcessError('cannot find glue_ros/msg/Matches.msg (looked in '
                          f'{", ".join(str(c) for c in candidates)}); source env.sh or install '
                          'the glue_ros package')


def output_typestore():
    """A ROS 2 typestore that also knows glue_ros/msg/*, parsed from the .msg text.

    Registering the text (not a hand-written copy) keeps the definition and its RIHS01 hash
    stored in the bag identical to what rosidl generates for ROS 2.
    """
    from rosbags.typesys import Stores, get_typestore, get_types_from_msg
    typestore = get_typestore(getattr(Stores, 'LATEST', Stores.ROS2_HUMBLE))
    types = {}
    for path in sorted(msg_directory().glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'glue_ros/msg/{path.stem}'))
    typestore.register(types)
    return typestore


# -- frames, stereo pairing ----------------------------------------------------------------
@dataclass
class Frame:
    """A decoded image with what the output needs of its message."""

    bag_ns: int          # bag timestamp of the image message
    header: object       # its header (rosbags message, ROS 1 or 2)
    stamp_ns: int        # header stamp
    image: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return self.image.shape[1], self.image.shape[0]


class StereoPairer:
    """Pairs left and right frames by header stamp within `slop_ns`, in bag order.

    As the node's StereoSync: a frame pairs with the closest waiting frame of the other side;
    older waiting frames are then unpaired for good (counted in `unpaired`).
    """

    def __init__(self, slop_ns: int, queue_size: int = STEREO_QUEUE):
        self.slop_ns = slop_ns
        self.queues = {'left': deque(), 'right': deque()}
        self.queue_size = queue_size
        self.unpaired = 0

    def add(self, side: str, frame: Frame) -> Optional[tuple[Frame, Frame]]:
        """Add a frame; returns (left, right) when it completes a pair."""
        mine = self.queues[side]
        other = self.queues['right' if side == 'left' else 'left']
        best, best_dt = None, None
        for candidate in other:
            dt = abs(candidate.stamp_ns - frame.stamp_ns)
            if dt <= self.slop_ns and (best_dt is None or dt < best_dt):
                best, best_dt = candidate, dt
        if best is None:
            mine.append(frame)
            if len(mine) > self.queue_size:
                mine.popleft()
                self.unpaired += 1
            return None
        while other[0] is not best:
            other.popleft()
            self.unpaired += 1
        other.popleft()
        self.unpaired += len(mine)
        mine.clear()
        return (frame, best) if side == 'left' else (best, frame)

    def flush(self) -> None:
        """Count the frames still waiting at the end of the bag as unpaired."""
        self.unpaired += sum(len(q) for q in self.queues.values())
        for queue in self.queues.values():
            queue.clear()


# -- output bag ----------------------------------------------------------------------------
class OutputBag:
    """A rosbags rosbag2 Writer with the glue_ros types, writing Matches and PointCloud."""

    def __init__(self, path: Path, storage: str, matches_topic: str,
                 features_topic: Optional[str]):
        from rosbags.rosbag2 import StoragePlugin, Writer
        self.typestore = output_typestore()
        self.types = self.typestore.types
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self.writer = Writer(path, version=getattr(Writer, 'VERSION_LATEST', 8),
                             storage_plugin=plugin)
        self.writer.open()
        self.matches = self.writer.add_connection(matches_topic, MATCHES,
                                                  typestore=self.typestore)
        self.features = (self.writer.add_connection(features_topic, POINT_CLOUD,
                                                    typestore=self.typestore)
                         if features_topic else None)
        self.counts = {'matches': 0, 'features': 0, 'copied': 0}

    def header(self, header):
        """The ROS 2 std_msgs/Header of an input header: a ROS 1 one loses its seq."""
        time_type = self.types['builtin_interfaces/msg/Time']
        return self.types['std_msgs/msg/Header'](
            stamp=time_type(sec=int(header.stamp.sec), nanosec=int(header.stamp.nanosec)),
            frame_id=str(header.frame_id))

    def write_matches(self, frame: Frame, reference: Frame, output, *, mode: int,
                      matcher, latency_ms: float = 0.0) -> None:
        """glue_ros/msg/Matches of a MatchResult at the query image's bag timestamp.

        numpy arrays go into the rosbags message as they are; the CDR serializer copies them as
        whole buffers. `output` is the front-end's FrameOutput.
        """
        result, verification, track_ids = output.result, output.verification, output.track_ids
        msg = self.types[MATCHES](
            header=self.header(frame.header), reference_header=self.header(reference.header),
            mode=mode, keyframe=bool(output.keyframe), learned=bool(output.learned),
            query_width=frame.size[0], query_height=frame.size[1],
            reference_width=reference.size[0], reference_height=reference.size[1],
            matcher=matcher.name, grid_step=float(result.grid_step),
            query_points=_flat(result.points0, np.float32),
            reference_points=_flat(result.points1, np.float32),
            confidences=_flat(result.scores, np.float32),
            query_indices=_flat(result.indices0, np.int32),
            reference_indices=_flat(result.indices1, np.int32),
            track_ids=_flat(track_ids if track_ids is not None else [], np.uint64),
            num_query_keypoints=int(result.num_keypoints0),
            num_reference_keypoints=int(result.num_keypoints1),
            layers_used=int(result.layers_used), layers_total=int(result.layers_total),
            extract_ms=float(result.timing_ms.get('extract', 0.0)),
            match_ms=float(result.timing_ms.get('match', 0.0)),
            latency_ms=float(latency_ms), dropped_frames=0,
            geometric_model=verification.model, geometric_status=verification.status,
            num_outliers=int(output.num_outliers),
            rotation=_flat(verification.rotation if verification.rotation is not None else [],
                           np.float64),
            translation=_flat(verification.translation
                              if verification.translation is not None else [], np.float64))
        self.writer.write(self.matches, frame.bag_ns, self.typestore.serialize_cdr(msg, MATCHES))
        self.counts['matches'] += 1

    def write_features(self, frame: Frame, features) -> None:
        """sensor_msgs/msg/PointCloud of VinsFeatures at the image's bag timestamp."""
        point = self.types['geometry_msgs/msg/Point32']
        channel = self.types['sensor_msgs/msg/ChannelFloat32']
        msg = self.types[POINT_CLOUD](
            header=self.header(frame.header),
            points=[point(x=x, y=y, z=z) for x, y, z in features.points_xyz().tolist()],
            channels=[channel(name=name, values=values) for name, values in features.channels()])
        self.writer.write(self.features, frame.bag_ns,
                          self.typestore.serialize_cdr(msg, POINT_CLOUD))
        self.counts['features'] += 1

    def close(self) -> None:
        """Finish the bag (metadata.yaml)."""
        self.writer.close()


def _flat(values, dtype) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype).reshape(-1))


def copy_converters(reader, writer, connections, skip_topics):
    """{connection id: (output connection, bytes converter)} to copy input topics as CDR.

    rosbags' own converter (what rosbags-convert runs) turns ROS 1 messages into ROS 2 CDR,
    dropping Header.seq; ROS 2 messages are copied as they are.
    """
    connections = [c for c in connections if c.topic not in skip_topics]
    try:
        from rosbags.convert.converter import create_connections_converters
    except ImportError:
        create_connections_converters = None
    if create_connections_converters is not None:
        connmap, convmap = create_connections_converters(connections, None, reader, writer)
        return {c.id: (connmap[(c.id, c.owner)], convmap[c.msgtype]) for c in connections}
    if not reader.is2:
        raise BagProcessError('--copy-input of a ROS 1 bag needs rosbags >= 0.11')
    out = {}
    for conn in connections:
        target = writer.add_connection(conn.topic, conn.msgtype, typestore=reader.typestore)
        out[conn.id] = (target, bytes)
    return out


# -- processing ----------------------------------------------------------------------------
@dataclass
class Stats:
    """What the summary reports."""

    frames: int = 0                  # images (sequential) or stereo pairs processed
    matched: int = 0                 # frames that produced a Matches message
    skipped: int = 0                 # images that could not be decoded or matched
    matches: list = field(default_factory=list)
    times_ms: list = field(default_factory=list)


class Processor:
    """Drives the front-end over the bag's frames and writes what it publishes."""

    def __init__(self, frontend: Frontend, out: OutputBag, cameras=(),
                 vins_units: Optional[str] = None, log=print):
        self.frontend = frontend
        self.matcher = frontend.matcher
        self.out = out
        self.cameras = list(cameras) + [None] * (2 - len(cameras))
        self.vins = VinsFeatureBuilder(vins_units) if vins_units else None
        self._vins_sequence = 0
        self.stats = Stats()
        self.log = log

    def _sync_vins(self) -> None:
        """Restart the VINS velocities when the front-end started a new sequence of ids."""
        if self.vins is not None and self._vins_sequence != self.frontend.tracks.sequences:
            self.vins.reset()
            self._vins_sequence = self.frontend.tracks.sequences

    def sequential(self, frame: Frame) -> None:
        """One image: match with the keyframe (or previous frame), write Matches [+ features]."""
        start = time.perf_counter()
        output = self.frontend.process(frame.image, frame.stamp_ns * 1e-9,
                                       camera=self.cameras[0], tag=frame)
        self.stats.frames += 1
        if output is None:
            self.stats.times_ms.append((time.perf_counter() - start) * 1e3)
            return
        self._sync_vins()
        elapsed_ms = (time.perf_counter() - start) * 1e3
        self.out.write_matches(frame, output.reference_tag, output, mode=MODE_SEQUENTIAL,
                               matcher=self.matcher, latency_ms=elapsed_ms)
        if self.vins is not None:
            tracked = output.track_ids > 0
            self.out.write_features(frame, self.vins.compute(
                frame.stamp_ns, output.track_ids[tracked], output.result.points0[tracked],
                self.cameras[0]))
        self._done(start, len(output.result))

    def stereo(self, left: Frame, right: Frame) -> None:
        """One synchronised pair: left/right Matches [+ features tracked on the left image]."""
        if left.size != right.size:
            self.log(f'stereo pair skipped: left is {left.size[0]}x{left.size[1]}, right is '
                     f'{right.size[0]}x{right.size[1]}')
            self.stats.skipped += 1
            return
        start = time.perf_counter()
        output = self.frontend.process_stereo(left.image, right.image, left.stamp_ns * 1e-9,
                                              cameras=tuple(self.cameras[:2]), tag=left)
        self.stats.frames += 1
        self.out.write_matches(left, right, output, mode=MODE_STEREO, matcher=self.matcher,
                               latency_ms=(time.perf_counter() - start) * 1e3)
        if self.vins is not None and output.temporal is not None:
            self._sync_vins()
            tracked = output.temporal_ids > 0
            temporal = output.temporal
            partners = stereo_partner_points(temporal.indices0[tracked], output.result)
            self.out.write_features(left, self.vins.compute(
                left.stamp_ns, output.temporal_ids[tracked], temporal.points0[tracked],
                self.cameras[0], partners, self.cameras[1]))
        self._done(start, len(output.result))

    def _done(self, start: float, num_matches: int) -> None:
        self.stats.matched += 1
        self.stats.matches.append(num_matches)
        self.stats.times_ms.append((time.perf_counter() - start) * 1e3)


# -- command line --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The flags of glue-ros-bag."""
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('bag', type=Path, help='input bag: ROS 2 directory (sqlite3 / MCAP), '
                        'a .db3 / .mcap file or a ROS 1 .bag')
    parser.add_argument('--out', type=Path, required=True, help='output ROS 2 bag directory '
                        '(must not exist)')
    parser.add_argument('--format', choices=('sqlite3', 'mcap'), default='sqlite3',
                        help='storage of the output bag')
    parser.add_argument('--mode', choices=('sequential', 'stereo'), default=None,
                        help='default: stereo when --left-topic/--right-topic are given')
    parser.add_argument('--image-topic', help='sequential mode image topic (default: the '
                        "bag's only image topic)")
    parser.add_argument('--left-topic', help='stereo mode left image topic')
    parser.add_argument('--right-topic', help='stereo mode right image topic')
    settings.add_arguments(parser, ('sync_slop', 'max_epipolar_error'))
    parser.add_argument('--matches-topic', default='/matches')
    parser.add_argument('--vins', action='store_true', help='also write VINS-Fusion features '
                        '(sensor_msgs/PointCloud); needs camera calibration')
    parser.add_argument('--features-topic', default='/feature_tracker/feature',
                        help='topic of the --vins features (VINS-Fusion subscribes this one)')
    parser.add_argument('--camera-info-topic', nargs='+', metavar='TOPIC',
                        help='CameraInfo topic(s) for --vins, left then right in stereo '
                        '(default: camera_info next to each image topic)')
    parser.add_argument('--rectified', action='store_true', help='--vins: the images are '
                        'rectified, normalize with CameraInfo P instead of K and D')
    settings.add_arguments(parser, ('vins_velocity_units',))   # --vins-velocity: older spelling
    parser.add_argument('--copy-input', action='store_true',
                        help='also copy every input topic into the output bag')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    add_matcher_arguments(parser)
    add_frontend_arguments(parser, camera=False, tracks=True)
    return parser


def check_args(args) -> None:
    """Flag combinations argparse cannot check; BagProcessError names the problem."""
    stereo_topics = args.left_topic is not None or args.right_topic is not None
    if args.mode is None:
        args.mode = 'stereo' if stereo_topics else 'sequential'
    if args.mode == 'stereo':
        if not (args.left_topic and args.right_topic):
            raise BagProcessError('stereo mode needs --left-topic and --right-topic')
        if args.image_topic:
            raise BagProcessError('--image-topic is for sequential mode; stereo mode takes '
                                  '--left-topic and --right-topic')
    elif stereo_topics:
        raise BagProcessError('--left-topic/--right-topic are for --mode stereo')
    if args.mode == 'stereo' and args.left_topic == args.right_topic:
        raise BagProcessError('--left-topic and --right-topic must differ')
    try:
        settings.validate({name: getattr(args, name) for name in (
            'sync_slop', 'keyframe_min_matches', 'max_epipolar_error')})
    except ValueError as exc:
        raise BagProcessError(str(exc)) from None
    cameras = 2 if args.mode == 'stereo' else 1
    if args.camera_info_topic and len(args.camera_info_topic) != cameras:
        raise BagProcessError(f'{args.mode} mode needs {cameras} --camera-info-topic '
                              f'(got {len(args.camera_info_topic)})')
    if args.matches_topic == args.features_topic and args.vins:
        raise BagProcessError('--matches-topic and --features-topic must differ')
    if not args.bag.exists():
        raise BagProcessError(f'no bag at {args.bag}')
    if args.out.exists():
        raise BagProcessError(f'output {args.out} already exists; choose a new --out')


def describe_topics(reader) -> str:
    """'topic (type), ...' of a bag, for error messages."""
    topics = sorted({(c.topic, ros2_type_name(c.msgtype)) for c in reader.connections})
    return ', '.join(f'{t} ({m})' for t, m in topics) or 'none'


def select_image_topics(args, reader) -> list[str]:
    """The image topic(s) to process, checked against the bag."""
    images = sorted({c.topic for c in reader.connections
                     if ros2_type_name(c.msgtype) in DECODERS})
    wanted = ([args.left_topic, args.right_topic] if args.mode == 'stereo'
              else [args.image_topic] if args.image_topic else None)
    if not images:
        raise BagProcessError(f'no image topic (sensor_msgs/Image or CompressedImage) found in '
                              f'{args.bag}; its topics: {describe_topics(reader)}')
    if wanted is None:
        if len(images) > 1:
            raise BagProcessError(f'{args.bag} has several image topics ({", ".join(images)});'
                                  f' choose one with --image-topic')
        return images
    missing = [t for t in wanted if t not in images]
    if missing:
        raise BagProcessError(f'no image topic {", ".join(missing)} in {args.bag}; its image '
                              f'topics: {", ".join(images)}')
    return wanted


def default_camera_info_topic(image_topic: str) -> str:
    """'/cam0/image_raw' or '/cam0/image_raw/compressed' -> '/cam0/camera_info'."""
    topic = image_topic[:-len('/compressed')] if image_topic.endswith('/compressed') \
        else image_topic
    parent = topic.rsplit('/', 1)[0]
    return f'{parent}/camera_info'


def load_cameras(args, reader, image_topics: list[str], required: bool = True
                 ) -> list[CameraModel]:
    """CameraModels from the first message of each CameraInfo topic (calibration is static).

    Not required (only the geometric check would use them): [] when a topic is missing.
    """
    infos = {c.topic: c for c in reader.connections if ros2_type_name(c.msgtype) == CAMERA_INFO}
    topics = args.camera_info_topic or [default_camera_info_topic(t) for t in image_topics]
    if not required and not all(topic in infos for topic in topics):
        return []
    cameras = []
    for camera_id, topic in enumerate(topics):
        if topic not in infos:
            raise BagProcessError(
                f'--vins needs camera calibration: no CameraInfo topic {topic} in {args.bag}; '
                f'CameraInfo topics: {", ".join(sorted(infos)) or "none"} '
                f'(choose with --camera-info-topic)')
        msg = None
        for conn, _, raw in reader.messages(connections=[infos[topic]]):
            msg = reader.deserialize(raw, conn.msgtype)
            break
        if msg is None:
            raise BagProcessError(f'CameraInfo topic {topic} has no messages')
        try:
            cameras.append(CameraModel.from_camera_info(msg, camera_id=camera_id,
                                                        rectified=args.rectified))
        except CameraModelError as exc:
            raise BagProcessError(f'CameraInfo on {topic}: {exc}') from None
    return cameras


def run(args, log=print) -> dict:
    """Process the bag as the parsed flags say; returns the summary."""
    from rosbags.highlevel import AnyReader, AnyReaderError
    from rosbags.typesys import Stores, get_typestore
    from tqdm import tqdm

    check_args(args)
    config = config_from_args(args)
    try:
        reader = AnyReader([args.bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        reader.open()
    except AnyReaderError as exc:
        raise BagProcessError(f'cannot read bag {args.bag}: {exc}') from None
    try:
        topics = select_image_topics(args, reader)
        cameras = load_cameras(args, reader, topics, required=args.vins)
        matcher = build_matcher(config)
        out = OutputBag(args.out, args.format, args.matches_topic,
                        args.features_topic if args.vins else None)
        try:
            summary = _process(args, reader, out, matcher, topics, cameras, log, tqdm)
        finally:
            out.close()
    finally:
        reader.close()
    return summary


def _process(args, reader, out, matcher, topics, cameras, log, tqdm) -> dict:
    def log_line(text):
        tqdm.write(f'{PROG}: {text}', file=sys.stderr)
    config = frontend_config_from_args(
        args, mode=args.mode, max_epipolar_error=args.max_epipolar_error or 0.0,
        track_stereo_left=args.vins and args.mode == 'stereo')
    processor = Processor(Frontend(matcher, config, on_event=log_line), out, cameras=cameras,
                          vins_units=args.vins_velocity_units if args.vins else None, log=log_line)
    image_conns = [c for c in reader.connections if c.topic in topics]
    connections = reader.connections if args.copy_input else image_conns
    written = {args.matches_topic} | ({args.features_topic} if args.vins else set())
    copies = (copy_converters(reader, out.writer, reader.connections, written)
              if args.copy_input else {})
    side = {args.left_topic: 'left', args.right_topic: 'right'} if args.mode == 'stereo' else {}
    pairer = StereoPairer(int(round(args.sync_slop * 1e9)))
    bar = tqdm(total=sum(c.msgcount for c in image_conns), unit='img',
               disable=args.no_progress, file=sys.stderr, desc=PROG)
    for conn, bag_ns, raw in reader.messages(connections=connections):
        if conn.id in copies:
            target, convert = copies[conn.id]
            out.writer.write(target, bag_ns, bytes(convert(raw)))
            out.counts['copied'] += 1
        if conn.topic not in topics:
            continue
        bar.update(1)
        frame = _decode(reader, conn, bag_ns, raw, processor)
        if frame is None:
            continue
        try:
            if args.mode == 'sequential':
                processor.sequential(frame)
            else:
                pair = pairer.add(side[conn.topic], frame)
                if pair is not None:
                    processor.stereo(*pair)
        except GlueRosError as exc:
            processor.stats.skipped += 1
            processor.log(f'frame at {frame.stamp_ns * 1e-9:.3f} s skipped: {exc}')
    bar.close()
    pairer.flush()
    stats = processor.stats
    summary = {
        'frames': stats.frames, 'matched': stats.matched, 'skipped': stats.skipped,
        'unpaired': pairer.unpaired if args.mode == 'stereo' else 0,
        'median_matches': statistics.median(stats.matches) if stats.matches else 0,
        'median_ms': statistics.median(stats.times_ms) if stats.times_ms else 0.0,
        'matches_messages': out.counts['matches'], 'features_messages': out.counts['features'],
        'copied_messages': out.counts['copied'], 'topics': topics, 'matcher': matcher.name,
    }
    unit = 'stereo pairs' if args.mode == 'stereo' else 'frames'
    extra = ''
    if args.vins:
        extra += f', {summary["features_messages"]} VINS feature messages'
    if args.copy_input:
        extra += f', {summary["copied_messages"]} copied messages'
    log(f'{PROG}: {summary["frames"]} {unit} from {", ".join(topics)}, {summary["matched"]} '
        f'matched ({matcher.name}), median {summary["median_matches"]:g} matches per matched '
        f'frame, median {summary["median_ms"]:.1f} ms per frame'
        f'{", %d skipped" % summary["skipped"] if summary["skipped"] else ""}'
        f'{", %d unpaired images" % summary["unpaired"] if summary["unpaired"] else ""}')
    if args.mode == 'stereo' and not summary['frames'] and summary['unpaired']:
        log(f'{PROG}: no left image had a right image within --sync-slop {args.sync_slop} s; '
            f'are the stamps of the two cameras offset? try a larger --sync-slop')
    log(f'{PROG}: wrote {summary["matches_messages"]} Matches messages on '
        f'{args.matches_topic}{extra} to {args.out} ({args.format})')
    return summary


def _decode(reader, conn, bag_ns: int, raw, processor: Processor) -> Optional[Frame]:
    msg = reader.deserialize(raw, conn.msgtype)
    try:
        image = check_image(DECODERS[ros2_type_name(conn.msgtype)](msg))
        if not image.flags.writeable:   # a view of the message buffer; torch wants to own it
            image = image.copy()
    except (ImageConversionError, GlueRosError) as exc:
        processor.stats.skipped += 1
        processor.log(f'image on {conn.topic} skipped: {exc}')
        return None
    return Frame(bag_ns, msg.header, stamp_ns(msg.header), image)


def main(argv=None) -> int:
    """Entry point of glue-ros-bag; 0 on success, 2 with a message for unusable input."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:      # argparse has printed why; keep the code for callers
        return int(exc.code or 0)
    try:
        run(args)
    except (GlueRosError, ValueError, OSError) as exc:
        print(f'{PROG}: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f'{PROG}: interrupted; {args.out} holds the frames processed so far',
              file=sys.stderr)
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
