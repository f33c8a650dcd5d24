"""glue-ros-bench --live [CONFIG]: the node with a parameters file, fed a camera in real time.

A smooth hand-held 640x480 camera over a real photograph (known homographies: a slow pan, roll
and zoom) is published over DDS at --live-rate Hz, in real time and best effort, as a camera
driver does, while the node (its own process, `--params-file CONFIG`) matches what it can.
Reported: the frames it published for (against those sent), how many were learned frames, the
share of published matches within 3 px of the truth, and the tracks (consistency, lengths,
points per frame) of what it published.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from glue_ros.evaluation import metrics
from glue_ros.ros.matcher_node import stamp_seconds
from glue_ros.ros.messages import matches_arrays
from glue_ros.testing import real_images
from glue_ros.testing.harness import MatcherProcess


def live(
    config: Path | None, rate: float = 30.0, frames: int = 150, workdir: Path = Path('bench_out')
) -> dict:
    """Run one live camera against the node; the figures as a dict."""
    sequence = real_images.homography_sequence(
        'astronaut', frames, roll_per_frame=0.05, zoom_per_frame=0.0005
    )
    workdir.mkdir(parents=True, exist_ok=True)
    args = ['--params-file', str(config)] if config else []
    node = MatcherProcess(workdir, {}, node_args=args)
    period, base = 1.0 / rate, 1000.0
    try:
        node.wait_connected(120)
        start = time.monotonic()
        for k, image in enumerate(sequence.frames):
            node.publish('image', image, base + k * period)
            node.spin(max(0.0, start + (k + 1) * period - time.monotonic()))
        elapsed = time.monotonic() - start
        node.spin(3.0)  # the frame in progress
    finally:
        node.close()
    rows, errors, learned = [], [], 0
    for msg in node.matches:
        k = int(round((stamp_seconds(msg.header) - base) / period))
        ref = int(round((stamp_seconds(msg.reference_header) - base) / period))
        a = matches_arrays(msg)
        errors.append(
            real_images.homography_errors(
                sequence.relative(k, ref), a['query_points'], a['reference_points']
            )
        )
        rows.append((k, a['query_points'], a['track_ids']))
        learned += bool(msg.learned)
    errors = np.concatenate(errors) if errors else np.zeros(0)
    tracks = metrics.track_metrics(rows, sequence, (640, 480)) if rows else {}
    result = {
        'config': str(config) if config else 'defaults',
        'rate': rate,
        'frames_sent': frames,
        'seconds': elapsed,
        'published': len(node.matches),
        'published_share': len(node.matches) / max(frames - 1, 1),
        'published_fps': len(node.matches) / elapsed,
        'learned_frames': learned,
        'within_3px': float(np.mean(errors < 3.0)) if len(errors) else 0.0,
        'matches_per_message': len(errors) / max(len(node.matches), 1),
        'tracks': tracks,
    }
    return result


def summary_line(result: dict) -> str:
    """One live run's figures on one line."""
    tracks = result['tracks']
    return (
        f'live {result["config"]} at {result["rate"]:.0f} Hz: published '
        f'{result["published"]} of {result["frames_sent"] - 1} frames '
        f'({result["published_fps"]:.1f} per second, {result["learned_frames"]} learned), '
        f'{result["within_3px"]:.2%} within 3 px; tracks: consistency '
        f'{tracks.get("consistency", 0):.3f}, mean / median length '
        f'{tracks.get("mean_length", 0):.1f} / {tracks.get("median_length", 0):.0f}, '
        f'{tracks.get("matches_per_frame", 0):.0f} tracked points per message'
    )


__all__ = ['live', 'summary_line']
