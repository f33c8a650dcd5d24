"""make demo: the matcher node on real images replayed through topics, checked against truth.

1. sequential mode: a camera moving over a real photograph (scikit-image's 'astronaut', known
   homographies), frame after frame;
2. stereo mode: the Middlebury motorcycle pair with its ground-truth disparity.
Prints per-frame matches, their accuracy, layers used and latency, a summary, and writes
pictures of the matches.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from glue_ros import settings
from glue_ros.core.drawing import draw_matches, save_rgb
from glue_ros.ros.messages import matches_arrays
from glue_ros.testing import real_images
from glue_ros.testing.harness import MatcherProcess
from glue_ros.tools.console_log import log_to_console

# The node's settings the demo passes on (the schema's flags).
DEMO_SETTINGS = ('matcher', 'features', 'weights')


def run_sequential(workdir: Path, out: Path, frames: int, params: dict) -> dict:
    """Stream a homography sequence through the node in sequential mode."""
    sequence = real_images.homography_sequence('astronaut', frames)
    node = MatcherProcess(workdir, {'mode': 'sequential', **params}, reliable_images=True)
    rows = []
    try:
        node.wait_connected(60)
        print(
            f'sequential: {frames} frames of 640x480 over scikit-image "astronaut" '
            f'(moving camera, known homographies)'
        )
        print(
            f'{"frame":>5} {"ref":>4} {"matches":>7} {"outliers":>8} {"<3px":>6} '
            f'{"layers":>6} {"tracks>=3":>9} {"latency ms":>10}'
        )
        seen = {}
        for k in range(frames):
            node.publish('image', sequence.frames[k], 100.0 + k / 30)
            if k == 0:
                node.spin(0.5)
                continue
            if not node.wait_matches(k, 60):
                raise RuntimeError(f'no matches for frame {k}:\n{node.log()}')
            msg = node.matches[-1]
            arrays = matches_arrays(msg)
            stamp = msg.reference_header.stamp.sec + msg.reference_header.stamp.nanosec * 1e-9
            reference = int(round((stamp - 100.0) * 30))  # the keyframe's index
            errors = real_images.homography_errors(
                sequence.relative(k, reference), arrays['query_points'], arrays['reference_points']
            )
            tracks = [t for t in arrays['track_ids'].tolist() if t]
            for track in tracks:
                seen[track] = seen.get(track, 0) + 1
            long_tracks = sum(1 for track in tracks if seen[track] >= 2)
            correct = float(np.mean(errors < 3.0)) if len(errors) else 0.0
            rows.append(
                {
                    'matches': len(errors),
                    'correct': correct,
                    'layers': msg.layers_used,
                    'latency': msg.latency_ms,
                }
            )
            print(
                f'{k:>5} {reference:>4} {len(errors):>7} {msg.num_outliers:>8} {correct:>6.1%} '
                f'{msg.layers_used:>3}/{msg.layers_total:<2} {long_tracks:>9} '
                f'{msg.latency_ms:>10.1f}'
            )
            if k == 1:
                save_rgb(
                    out / 'sequential.png',
                    draw_matches(
                        sequence.frames[1],
                        sequence.frames[reference],
                        arrays['query_points'],
                        arrays['reference_points'],
                        arrays['confidences'],
                        text=f'{msg.matcher}: {len(errors)} matches, {correct:.0%} < 3 px, '
                        f'layers {msg.layers_used}/{msg.layers_total}',
                    ),
                )
    finally:
        node.close()
    return {
        'frames': len(rows),
        'matches': statistics.median(r['matches'] for r in rows),
        'correct': statistics.mean(r['correct'] for r in rows),
        'layers': statistics.median(r['layers'] for r in rows),
        'latency': statistics.median(r['latency'] for r in rows),
    }


def run_stereo(workdir: Path, out: Path, params: dict) -> dict:
    """Publish the Middlebury pair through the node in stereo mode."""
    pair = real_images.middlebury_stereo()
    node = MatcherProcess(
        workdir,
        {'mode': 'stereo', **params},
        reliable_images=True,
        topics=('left/image_rect', 'right/image_rect'),
    )
    try:
        node.wait_connected(60)
        node.publish('left/image_rect', pair.left, 1.0, frame_id='left')
        node.publish('right/image_rect', pair.right, 1.0, frame_id='right')
        if not node.wait_matches(1, 60):
            raise RuntimeError(f'no stereo matches:\n{node.log()}')
        msg = node.matches[0]
    finally:
        node.close()
    arrays = matches_arrays(msg)
    errors = real_images.disparity_errors(pair, arrays['query_points'], arrays['reference_points'])
    known = np.isfinite(errors)
    correct = float(np.mean(errors[known] < 3.0)) if known.any() else 0.0
    print(
        f'stereo: Middlebury motorcycle {pair.left.shape[1]}x{pair.left.shape[0]}: '
        f'{len(errors)} matches ({msg.num_outliers} outliers removed, {msg.geometric_model}: '
        f'{msg.geometric_status}), {correct:.1%} within 3 px of the true disparity '
        f'({known.sum()} with known disparity), layers {msg.layers_used}/{msg.layers_total},'
        f' latency {msg.latency_ms:.0f} ms'
    )
    save_rgb(
        out / 'stereo.png',
        draw_matches(
            pair.left,
            pair.right,
            arrays['query_points'],
            arrays['reference_points'],
            arrays['confidences'],
            text=f'{msg.matcher}: {len(errors)} matches, {correct:.0%} < 3 px',
        ),
    )
    return {'matches': len(errors), 'correct': correct, 'latency': msg.latency_ms}


def main(argv: list[str] | None = None) -> int:
    """Entry point of make demo."""
    log_to_console('glue-ros-demo')
    parser = argparse.ArgumentParser(
        prog='glue-ros-demo',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('--frames', type=int, default=20)
    parser.add_argument('--out', type=Path, default=Path('demo_out'))
    settings.add_arguments(parser, DEMO_SETTINGS)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    params = {'matcher': args.matcher, 'features': args.features}
    if args.weights:
        params['weights'] = args.weights
    with tempfile.TemporaryDirectory(prefix='glue_ros_demo_') as tmp:
        seq = run_sequential(Path(tmp), args.out, args.frames, params)
        stereo = run_stereo(Path(tmp), args.out, params)
    print(
        f'\nsummary: sequential {seq["frames"]} pairs, median {seq["matches"]:.0f} matches, '
        f'{seq["correct"]:.1%} within 3 px, median layers {seq["layers"]}, median latency '
        f'{seq["latency"]:.0f} ms; stereo {stereo["matches"]} matches, '
        f'{stereo["correct"]:.1%} within 3 px'
    )
    print(f'pictures: {args.out / "sequential.png"}, {args.out / "stereo.png"}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
