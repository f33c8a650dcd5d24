"""glue-ros-bag IN_BAG --out OUT_BAG: run the matcher over a bag's images, write a ROS 2 bag.

Offline twin of the matcher node, for evaluating a front-end on recorded data without a
running ROS graph: every image is processed (none dropped), the same matcher configuration and
track ids are used, and the output messages carry the ORIGINAL image stamps (header = the
image's header, bag timestamp = the image's bag timestamp) so that they line up with the other
topics of the input bag, e.g. to play both into VINS-Fusion or to compare with ground truth.

Input: ROS 1 (.bag) or ROS 2 (sqlite3 / MCAP) bags, sensor_msgs/Image or CompressedImage.
Output: a new ROS 2 bag (rosbags writer) with glue_ros/msg/Matches and, with --vins,
sensor_msgs/msg/PointCloud features laid out for VINS-Fusion's estimator. The glue_ros message
definitions are taken from msg/*.msg (the source tree, or share/glue_ros/msg where pip or colcon
installed them) and stored in the bag, so rosbags and `ros2 bag` can read it. Nothing else is
copied unless --copy-input is given. The messages hold what the node publishes: both build them
from the same front-end records (glue_ros.frontend.records).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from pathlib import Path

from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.typesys import Stores, get_typestore
from tqdm import tqdm

from glue_ros import settings
from glue_ros.core.errors import GlueRosError, ImageConversionError
from glue_ros.core.scheduling import StereoPairer
from glue_ros.frontend.frontend import Frontend
from glue_ros.matcher import Matcher, build_matcher
from glue_ros.tools.bag_io import (
    BagProcessError,
    OutputBag,
    copy_converters,
    decode_image,
    load_cameras,
    msg_directory,
    select_image_topics,
)
from glue_ros.tools.bag_processor import Processor, Stats
from glue_ros.tools.console_log import log_to_console
from glue_ros.tools.match_cli import (
    add_frontend_arguments,
    add_matcher_arguments,
    config_from_args,
    frontend_config_from_args,
)

PROG = 'glue-ros-bag'
logger = logging.getLogger(__name__)
# Unpaired images kept per side while looking for a partner: the node's default.
STEREO_QUEUE = settings.SETTINGS['sync_queue_size'].default

# Kept importable from here: the tool's error, the message lookup and the frame processor.
__all__ = [
    'BagProcessError',
    'Processor',
    'Stats',
    'build_parser',
    'main',
    'msg_directory',
    'run',
]


# -- command line --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The flags of glue-ros-bag."""
    parser = argparse.ArgumentParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        'bag',
        type=Path,
        help='input bag: ROS 2 directory (sqlite3 / MCAP), a .db3 / .mcap file or a ROS 1 .bag',
    )
    parser.add_argument(
        '--out', type=Path, required=True, help='output ROS 2 bag directory (must not exist)'
    )
    parser.add_argument(
        '--format',
        choices=('sqlite3', 'mcap'),
        default='sqlite3',
        help='storage of the output bag',
    )
    parser.add_argument(
        '--mode',
        choices=('sequential', 'stereo'),
        default=None,
        help='default: stereo when --left-topic/--right-topic are given',
    )
    parser.add_argument(
        '--image-topic', help="sequential mode image topic (default: the bag's only image topic)"
    )
    parser.add_argument('--left-topic', help='stereo mode left image topic')
    parser.add_argument('--right-topic', help='stereo mode right image topic')
    settings.add_arguments(parser, ('sync_slop', 'max_epipolar_error'))
    parser.add_argument('--matches-topic', default='/matches')
    parser.add_argument(
        '--vins',
        action='store_true',
        help='also write VINS-Fusion features (sensor_msgs/PointCloud); needs camera calibration',
    )
    parser.add_argument(
        '--features-topic',
        default='/feature_tracker/feature',
        help='topic of the --vins features (VINS-Fusion subscribes this one)',
    )
    parser.add_argument(
        '--camera-info-topic',
        nargs='+',
        metavar='TOPIC',
        help='CameraInfo topic(s) for --vins, left then right in stereo '
        '(default: camera_info next to each image topic)',
    )
    parser.add_argument(
        '--rectified',
        action='store_true',
        help='--vins: the images are rectified, normalize with CameraInfo P instead of K and D',
    )
    settings.add_arguments(parser, ('vins_velocity_units',))  # --vins-velocity: older spelling
    parser.add_argument(
        '--copy-input', action='store_true', help='also copy every input topic into the output bag'
    )
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    add_matcher_arguments(parser)
    add_frontend_arguments(parser, camera=False, tracks=True)
    return parser


def check_args(args: argparse.Namespace) -> None:
    """Flag combinations argparse cannot check; BagProcessError names the problem."""
    stereo_topics = args.left_topic is not None or args.right_topic is not None
    if args.mode is None:
        args.mode = 'stereo' if stereo_topics else 'sequential'
    if args.mode == 'stereo':
        if not (args.left_topic and args.right_topic):
            raise BagProcessError('stereo mode needs --left-topic and --right-topic')
        if args.image_topic:
            raise BagProcessError(
                '--image-topic is for sequential mode; stereo mode takes '
                '--left-topic and --right-topic'
            )
    elif stereo_topics:
        raise BagProcessError('--left-topic/--right-topic are for --mode stereo')
    if args.mode == 'stereo' and args.left_topic == args.right_topic:
        raise BagProcessError('--left-topic and --right-topic must differ')
    try:
        settings.validate(
            {
                name: getattr(args, name)
                for name in ('sync_slop', 'keyframe_min_matches', 'max_epipolar_error')
            }
        )
    except ValueError as exc:
        raise BagProcessError(str(exc)) from None
    cameras = 2 if args.mode == 'stereo' else 1
    if args.camera_info_topic and len(args.camera_info_topic) != cameras:
        raise BagProcessError(
            f'{args.mode} mode needs {cameras} --camera-info-topic '
            f'(got {len(args.camera_info_topic)})'
        )
    if args.matches_topic == args.features_topic and args.vins:
        raise BagProcessError('--matches-topic and --features-topic must differ')
    if not args.bag.exists():
        raise BagProcessError(f'no bag at {args.bag}')
    if args.out.exists():
        raise BagProcessError(f'output {args.out} already exists; choose a new --out')


def run(args: argparse.Namespace) -> dict:
    """Process the bag as the parsed flags say; print and return the summary."""
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
        out = OutputBag(
            args.out, args.format, args.matches_topic, args.features_topic if args.vins else None
        )
        try:
            summary = _process(args, reader, out, matcher, topics, cameras)
        finally:
            out.close()
    finally:
        reader.close()
    return summary


def _process(
    args: argparse.Namespace,
    reader: AnyReader,
    out: OutputBag,
    matcher: Matcher,
    topics: list,
    cameras: list,
) -> dict:
    config = frontend_config_from_args(
        args,
        mode=args.mode,
        max_epipolar_error=args.max_epipolar_error or 0.0,
        track_stereo_left=args.vins and args.mode == 'stereo',
    )
    processor = Processor(
        Frontend(matcher, config),
        out,
        cameras=cameras,
        vins_units=args.vins_velocity_units if args.vins else None,
    )
    image_conns = [c for c in reader.connections if c.topic in topics]
    connections = reader.connections if args.copy_input else image_conns
    written = {args.matches_topic} | ({args.features_topic} if args.vins else set())
    copies = (
        copy_converters(reader, out.writer, reader.connections, written) if args.copy_input else {}
    )
    side = {args.left_topic: 'left', args.right_topic: 'right'} if args.mode == 'stereo' else {}
    pairer = StereoPairer(round(args.sync_slop * 1e9), STEREO_QUEUE)
    bar = tqdm(
        total=sum(c.msgcount for c in image_conns),
        unit='img',
        disable=args.no_progress,
        file=sys.stderr,
        desc=PROG,
    )
    for conn, bag_ns, raw in reader.messages(connections=connections):
        if conn.id in copies:
            target, convert = copies[conn.id]
            out.writer.write(target, bag_ns, bytes(convert(raw)))
            out.counts['copied'] += 1
        if conn.topic not in topics:
            continue
        bar.update(1)
        try:
            frame = decode_image(reader, conn, bag_ns, raw)
        except (ImageConversionError, GlueRosError) as exc:
            processor.stats.skipped += 1
            logger.warning('image on %s skipped: %s', conn.topic, exc)
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
            logger.warning('frame at %.3f s skipped: %s', frame.stamp_ns * 1e-9, exc)
    bar.close()
    pairer.flush()
    stats = processor.stats
    summary = {
        'frames': stats.frames,
        'matched': stats.matched,
        'skipped': stats.skipped,
        'unpaired': pairer.unpaired if args.mode == 'stereo' else 0,
        'median_matches': statistics.median(stats.matches) if stats.matches else 0,
        'median_ms': statistics.median(stats.times_ms) if stats.times_ms else 0.0,
        'matches_messages': out.counts['matches'],
        'features_messages': out.counts['features'],
        'copied_messages': out.counts['copied'],
        'topics': topics,
        'matcher': matcher.name,
    }
    unit = 'stereo pairs' if args.mode == 'stereo' else 'frames'
    extra = ''
    if args.vins:
        extra += f', {summary["features_messages"]} VINS feature messages'
    if args.copy_input:
        extra += f', {summary["copied_messages"]} copied messages'
    lost = ''
    if summary['skipped']:
        lost += f', {summary["skipped"]} skipped'
    if summary['unpaired']:
        lost += f', {summary["unpaired"]} unpaired images'
    print(
        f'{PROG}: {summary["frames"]} {unit} from {", ".join(topics)}, {summary["matched"]} '
        f'matched ({matcher.name}), median {summary["median_matches"]:g} matches per matched '
        f'frame, median {summary["median_ms"]:.1f} ms per frame{lost}'
    )
    if args.mode == 'stereo' and not summary['frames'] and summary['unpaired']:
        logger.warning(
            f'no left image had a right image within --sync-slop {args.sync_slop} '
            's; are the stamps of the two cameras offset? try a larger --sync-slop'
        )
    print(
        f'{PROG}: wrote {summary["matches_messages"]} Matches messages on '
        f'{args.matches_topic}{extra} to {args.out} ({args.format})'
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    """Entry point of glue-ros-bag; 0 on success, 2 with a message for unusable input."""
    log_to_console(PROG)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed why; keep the code for callers
        return int(exc.code or 0)
    try:
        run(args)
    except (GlueRosError, ValueError, OSError) as exc:
        print(f'{PROG}: error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f'{PROG}: interrupted; {args.out} holds the frames processed so far', file=sys.stderr
        )
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
