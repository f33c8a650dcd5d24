"""glue-ros-bag's bag side: the glue_ros message definitions, the output bag, reading inputs.

What goes into a message is decided by glue_ros.frontend.records (shared with the node); here
the records only become rosbags messages, field by field.
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rosbags.convert.converter import create_connections_converters
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from glue_ros.core.camera import CameraModel
from glue_ros.core.errors import CameraModelError, GlueRosError
from glue_ros.core.image_conversion import compressed_to_numpy, image_to_numpy
from glue_ros.core.scheduling import Frame
from glue_ros.frontend import records
from glue_ros.frontend.vins import VinsFeatures, stamp_ns
from glue_ros.matcher import check_image
from glue_ros.tools.bag_play import ros2_type_name

DECODERS = {
    'sensor_msgs/msg/Image': image_to_numpy,
    'sensor_msgs/msg/CompressedImage': compressed_to_numpy,
}
CAMERA_INFO = 'sensor_msgs/msg/CameraInfo'
MATCHES = 'glue_ros/msg/Matches'
POINT_CLOUD = 'sensor_msgs/msg/PointCloud'
# Where `pip install` (setup.py data_files) and colcon (rosidl) put msg/*.msg, under a prefix.
SHARE_MSG = Path('share') / 'glue_ros' / 'msg'
SOURCE_MSG = Path(__file__).resolve().parents[2] / 'msg'


class BagProcessError(GlueRosError):
    """Input, flags or environment the tool cannot work with; main() exits 2 with it."""


# -- message definitions and the output typestore ------------------------------------------
def msg_candidates() -> list[Path]:
    """Where glue_ros's .msg files may be, first found wins.

    The source tree; the installed data of this Python environment (pip); the ament index
    (colcon install space).
    """
    candidates = [SOURCE_MSG]
    for prefix in (sysconfig.get_path('data'), sys.prefix):
        candidate = Path(prefix) / SHARE_MSG
        if candidate not in candidates:
            candidates.append(candidate)
    try:  # optional: the ament index exists only where ROS is
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory('glue_ros')) / 'msg')
    except Exception:  # noqa: BLE001 - no ament index or package not installed
        pass
    return candidates


def msg_directory() -> Path:
    """The directory holding Matches.msg (see :func:`msg_candidates`)."""
    candidates = msg_candidates()
    for candidate in candidates:
        if (candidate / 'Matches.msg').is_file():
            return candidate
    raise BagProcessError(
        'cannot find glue_ros/msg/Matches.msg (looked in '
        f'{", ".join(str(c) for c in candidates)}); source env.sh or install '
        'the glue_ros package'
    )


def output_typestore() -> Typestore:
    """A ROS 2 typestore that also knows glue_ros/msg/*, parsed from the .msg text.

    Registering the text (not a hand-written copy) keeps the definition and its RIHS01 hash
    stored in the bag identical to what rosidl generates for ROS 2.
    """
    typestore = get_typestore(Stores.LATEST)
    types = {}
    for path in sorted(msg_directory().glob('*.msg')):
        types.update(get_types_from_msg(path.read_text(), f'glue_ros/msg/{path.stem}'))
    typestore.register(types)
    return typestore


# -- output bag ----------------------------------------------------------------------------
class OutputBag:
    """A rosbags rosbag2 Writer with the glue_ros types, writing Matches and PointCloud."""

    def __init__(
        self, path: Path, storage: str, matches_topic: str, features_topic: str | None
    ) -> None:
        self.typestore = output_typestore()
        self.types = self.typestore.types
        plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
        self.writer = Writer(path, version=Writer.VERSION_LATEST, storage_plugin=plugin)
        self.writer.open()
        self.matches = self.writer.add_connection(matches_topic, MATCHES, typestore=self.typestore)
        self.features = (
            self.writer.add_connection(features_topic, POINT_CLOUD, typestore=self.typestore)
            if features_topic
            else None
        )
        self.counts = {'matches': 0, 'features': 0, 'copied': 0}

    def header(self, header: Any) -> Any:
        """The ROS 2 std_msgs/Header of an input header: a ROS 1 one loses its seq."""
        time_type = self.types['builtin_interfaces/msg/Time']
        return self.types['std_msgs/msg/Header'](
            stamp=time_type(sec=int(header.stamp.sec), nanosec=int(header.stamp.nanosec)),
            frame_id=str(header.frame_id),
        )

    def write_matches(self, frame: Frame, record: records.MatchesRecord) -> None:
        """glue_ros/msg/Matches of a record at the query image's bag timestamp.

        numpy arrays go into the rosbags message as they are; the CDR serializer copies them as
        whole buffers.
        """
        msg = self.types[MATCHES](
            **records.message_fields(record, array=lambda values: values, header=self.header)
        )
        self.writer.write(self.matches, frame.bag_ns, self.typestore.serialize_cdr(msg, MATCHES))
        self.counts['matches'] += 1

    def write_features(self, frame: Frame, features: VinsFeatures) -> None:
        """sensor_msgs/msg/PointCloud of VinsFeatures at the image's bag timestamp."""
        point = self.types['geometry_msgs/msg/Point32']
        channel = self.types['sensor_msgs/msg/ChannelFloat32']
        msg = self.types[POINT_CLOUD](
            header=self.header(frame.header),
            points=[point(x=x, y=y, z=z) for x, y, z in features.points_xyz().tolist()],
            channels=[channel(name=name, values=values) for name, values in features.channels()],
        )
        self.writer.write(
            self.features, frame.bag_ns, self.typestore.serialize_cdr(msg, POINT_CLOUD)
        )
        self.counts['features'] += 1

    def close(self) -> None:
        """Finish the bag (metadata.yaml)."""
        self.writer.close()


def copy_converters(
    reader: AnyReader, writer: Writer, connections: Iterable[Connection], skip_topics: set[str]
) -> dict:
    """{connection id: (output connection, bytes converter)} to copy input topics as CDR.

    rosbags' own converter (what rosbags-convert runs) turns ROS 1 messages into ROS 2 CDR,
    dropping Header.seq; ROS 2 messages are copied as they are.
    """
    connections = [c for c in connections if c.topic not in skip_topics]
    connmap, convmap = create_connections_converters(connections, None, reader, writer)
    return {c.id: (connmap[(c.id, c.owner)], convmap[c.msgtype]) for c in connections}


# -- input bag -----------------------------------------------------------------------------
def describe_topics(reader: AnyReader) -> str:
    """'topic (type), ...' of a bag, for error messages."""
    topics = sorted({(c.topic, ros2_type_name(c.msgtype)) for c in reader.connections})
    return ', '.join(f'{t} ({m})' for t, m in topics) or 'none'


def select_image_topics(args: argparse.Namespace, reader: AnyReader) -> list[str]:
    """The image topic(s) to process, checked against the bag."""
    images = sorted({c.topic for c in reader.connections if ros2_type_name(c.msgtype) in DECODERS})
    wanted = (
        [args.left_topic, args.right_topic]
        if args.mode == 'stereo'
        else [args.image_topic]
        if args.image_topic
        else None
    )
    if not images:
        raise BagProcessError(
            f'no image topic (sensor_msgs/Image or CompressedImage) found in '
            f'{args.bag}; its topics: {describe_topics(reader)}'
        )
    if wanted is None:
        if len(images) > 1:
            raise BagProcessError(
                f'{args.bag} has several image topics ({", ".join(images)});'
                f' choose one with --image-topic'
            )
        return images
    missing = [t for t in wanted if t not in images]
    if missing:
        raise BagProcessError(
            f'no image topic {", ".join(missing)} in {args.bag}; its image '
            f'topics: {", ".join(images)}'
        )
    return wanted


def default_camera_info_topic(image_topic: str) -> str:
    """'/cam0/image_raw' or '/cam0/image_raw/compressed' -> '/cam0/camera_info'."""
    topic = (
        image_topic[: -len('/compressed')] if image_topic.endswith('/compressed') else image_topic
    )
    parent = topic.rsplit('/', 1)[0]
    return f'{parent}/camera_info'


def load_cameras(
    args: argparse.Namespace, reader: AnyReader, image_topics: list[str], required: bool = True
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
                f'(choose with --camera-info-topic)'
            )
        msg = None
        for conn, _, raw in reader.messages(connections=[infos[topic]]):
            msg = reader.deserialize(raw, conn.msgtype)
            break
        if msg is None:
            raise BagProcessError(f'CameraInfo topic {topic} has no messages')
        try:
            cameras.append(
                CameraModel.from_camera_info(msg, camera_id=camera_id, rectified=args.rectified)
            )
        except CameraModelError as exc:
            raise BagProcessError(f'CameraInfo on {topic}: {exc}') from None
    return cameras


def decode_image(reader: AnyReader, conn: Connection, bag_ns: int, raw: bytes) -> Frame:
    """The Frame of an image message; raises ImageConversionError or a GlueRosError."""
    msg = reader.deserialize(raw, conn.msgtype)
    image = check_image(DECODERS[ros2_type_name(conn.msgtype)](msg))
    if not image.flags.writeable:  # a view of the message buffer; torch wants to own it
        image = image.copy()
    return Frame(stamp_ns(msg.header), image, msg.header, bag_ns=bag_ns)


__all__ = [
    'BagProcessError',
    'CAMERA_INFO',
    'DECODERS',
    'MATCHES',
    'OutputBag',
    'POINT_CLOUD',
    'copy_converters',
    'decode_image',
    'default_camera_info_topic',
    'describe_topics',
    'load_cameras',
    'msg_candidates',
    'msg_directory',
    'output_typestore',
    'select_image_topics',
]
