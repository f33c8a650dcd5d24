"""glue-ros-bench --soak SECONDS: the node under a sustained camera stream, memory over time.

The node runs in its own process, fed over DDS faster than it can match, at --soak-rate Hz, with
one of the input patterns a robot produces (--soak-pattern):

- ``back-and-forth``: a camera panning back and forth over one scene, a new view every frame
  (glue_ros.testing.real_images.PanningCamera);
- ``still``: a camera standing still, the same image every frame;
- ``cycle``: a 30-frame moving-camera sequence played in a loop.

First a few frames are matched one at a time (each sent after the previous one was published),
which gives the matching time without a stream; then the stream. Every 5 s the node's resident
memory (RSS) and its anonymous part (RssAnon: heaps and tensors, without the mapped libraries
and DDS shared memory) are sampled; at the end come the matching time per frame under the
stream beside the one-at-a-time time, the latency percentiles, the frame accounting (sent =
received by the node + lost in transport; received = processed + dropped + bad), the CPU the
node and the camera (this process) used during the stream, and a plot.

--soak-executor multi runs the node on rclpy's MultiThreadedExecutor instead of its
EventsExecutor (GLUE_ROS_EXECUTOR, glue_ros.ros.node_main), to compare the two.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from glue_ros.testing import real_images
from glue_ros.testing.harness import MatcherProcess, cpu_seconds, rss_mb, stop_process

logger = logging.getLogger(__name__)

SAMPLE_S = 5.0
PATTERNS = ('back-and-forth', 'still', 'cycle')
EXECUTORS = ('events', 'multi')
ONE_AT_A_TIME = 8
SINGLE_SPACING_S = 0.55


def pattern_frames(
    pattern: str, size: tuple[int, int] = (640, 480)
) -> Callable[[int, float], np.ndarray]:
    """frame(k, t): the k-th frame a camera of `pattern` sends, at t seconds."""
    if pattern == 'back-and-forth':
        camera = real_images.PanningCamera(
            'astronaut', tuple(size), scale=1.6 * max(size[0] / 640, size[1] / 480)
        )
        return lambda k, t: camera.frame(t)
    frames = real_images.homography_sequence('astronaut', 30).frames
    if tuple(size) != (640, 480):
        frames = [cv2.resize(f, tuple(size)) for f in frames]
    if pattern == 'still':
        return lambda k, t: frames[0]
    if pattern == 'cycle':
        return lambda k, t: frames[k % len(frames)]
    raise ValueError(f'unknown soak pattern {pattern!r}: one of {", ".join(PATTERNS)}')


def work_ms(msg: Any) -> float:
    """Matching time of a published frame: extraction and matching, as the message says."""
    return msg.extract_ms + msg.match_ms


def soak(
    seconds: float,
    size: tuple[int, int] = (640, 480),
    rate: float = 60.0,
    workdir: Path = Path('bench_out'),
    params: dict | None = None,
    pattern: str = 'cycle',
    executor: str = 'events',
) -> dict:
    """Run one soak; returns memory samples, matching times, latencies and the accounting."""
    frame_at = pattern_frames(pattern, size)
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, 'GLUE_ROS_EXECUTOR': executor}
    node = MatcherProcess(workdir, {'mode': 'sequential', **(params or {})}, env=env)
    samples, sent = [], 0

    def one_at_a_time(stamp: float, first: bool) -> tuple[list, float]:
        # Frames matched one at a time, each sent after the previous one was published (best
        # effort: a lost one is sent again); the frames are those the stream gives every
        # SINGLE_SPACING_S seconds, about as far apart as those the worker takes from it, so
        # that both match the same kind of pairs. Returns (their messages, the next stamp).
        nonlocal sent
        start = len(node.matches)
        for k in range(ONE_AT_A_TIME + 1):
            t = k * SINGLE_SPACING_S
            for _ in range(3):
                before = len(node.matches)
                node.publish('image', frame_at(int(round(t * rate)), t), stamp)
                stamp += 0.5
                sent += 1
                if k == 0 and first:
                    node.spin(1.0)
                    break
                if node.wait_matches(before + 1, 60):
                    break
        return node.matches[start:], stamp

    try:
        node.wait_connected(60)
        # Before and after the stream: a drift of a shared machine's speed during the soak falls
        # on the one-at-a-time baseline as on the stream.
        single, stamp = one_at_a_time(1000.0, first=True)
        first_streamed, single_sent = len(node.matches), sent
        start = time.monotonic()
        cpu_start = cpu_seconds(node.proc.pid), time.process_time()
        next_sample = start
        period = 1.0 / rate
        while time.monotonic() - start < seconds:
            k = sent - single_sent
            node.publish('image', frame_at(k, k * period), stamp + k * period)
            sent += 1
            now = time.monotonic()
            if now >= next_sample:
                pid = node.proc.pid
                samples.append((now - start, rss_mb(pid), rss_mb(pid, 'RssAnon')))
                logger.info(
                    f'{samples[-1][0]:6.0f} s  RSS {samples[-1][1]:7.1f} MB  RssAnon '
                    f'{samples[-1][2]:7.1f} MB  published '
                    f'{len(node.matches) - first_streamed}'
                )
                next_sample += SAMPLE_S
            node.spin(max(0.0, start + sent * period - time.monotonic()))
        streamed_s = time.monotonic() - start
        node_cpu = (cpu_seconds(node.proc.pid) - cpu_start[0]) / streamed_s
        camera_cpu = (time.process_time() - cpu_start[1]) / streamed_s
        node.spin(3.0)
        pid = node.proc.pid
        samples.append((time.monotonic() - start, rss_mb(pid), rss_mb(pid, 'RssAnon')))
        last_streamed = len(node.matches)
        after, _ = one_at_a_time(stamp + seconds + 10.0, first=False)
        single = single + after
        stop_process(node.proc)
        stats = node.stats()
    finally:
        node.close()
    stream = node.matches[first_streamed:last_streamed]
    latencies = np.array([m.latency_ms for m in stream])
    single_ms = statistics.median(work_ms(m) for m in single) if single else 0.0
    single_latency = statistics.median(m.latency_ms for m in single) if single else 0.0
    return {
        'seconds': seconds,
        'size': list(size),
        'rate': rate,
        'pattern': pattern,
        'executor': executor,
        'sent': sent,
        'node': stats,
        'published_received': len(node.matches),
        'published_in_stream': len(stream),
        'stream_s': streamed_s,
        'node_cpu_cores': node_cpu,
        'camera_cpu_cores': camera_cpu,
        'rss': [(t, r) for t, r, _ in samples],
        'rss_anon': [(t, a) for t, _, a in samples],
        'latency_ms': {p: float(np.percentile(latencies, p)) for p in (50, 90, 99)}
        if len(latencies)
        else {},
        'work_ms': statistics.median(work_ms(m) for m in stream) if stream else 0.0,
        'single_work_ms': single_ms,
        'single_latency_ms': single_latency,
        'single_frames': len(single),
    }


def _at_minute(series: list) -> tuple[float, list]:
    at_minute = next((v for t, v in series if t >= 60.0), series[-1][1])
    after = [v for t, v in series if t >= 60.0] or [series[-1][1]]
    return at_minute, after


def window_median(series: list, start: float, end: float) -> float:
    """Median of the samples taken from start to end seconds (the nearest one if none)."""
    inside = [v for t, v in series if start <= t <= end]
    if inside:
        return float(statistics.median(inside))
    return min(series, key=lambda sample: abs(sample[0] - (start + end) / 2))[1]


def summarise(result: dict) -> dict:
    """Memory at one minute and after, matching time against one at a time, accounting.

    within_15pct: RSS after the first minute within 15% of its one-minute value.
    RssAnon swings by about +-50 MB between two heap releases, so it is compared as medians:
    anon_1min_mb over 45-75 s, anon_last_min_mb over the last minute of the stream, and
    anon_growth their ratio (target <= 1.1); anon_end_mb is the sample taken after the stream
    stopped. work_ratio: matching time per frame under the stream over one frame at a time
    (target <= 1.3); rate_ratio: frames published per second under the stream over the
    one-at-a-time rate (1000 / its median latency). accounted: every frame the node received
    was processed, dropped or rejected as bad; frames sent but never received were lost in
    best-effort transport, counted on their own.
    """
    rss, anon = result['rss'], result.get('rss_anon') or result['rss']
    at_minute, after = _at_minute(rss)
    _, anon_after = _at_minute(anon)
    stream_s = result.get('stream_s', anon[-1][0])
    anon_minute = window_median(anon, 45.0, 75.0)
    anon_last = window_median(anon, max(stream_s - 60.0, 45.0), stream_s)
    stats = result['node']
    accounted = stats.get('received', -1) == stats.get('processed', 0) + stats.get(
        'dropped', 0
    ) + stats.get('bad', 0)
    single, work = result.get('single_work_ms', 0.0), result['work_ms']
    single_rate = 1000.0 / result['single_latency_ms'] if result.get('single_latency_ms') else 0
    stream_rate = result.get('published_in_stream', 0) / max(result.get('stream_s', 1.0), 1e-9)
    return {
        'rss_start_mb': rss[0][1],
        'rss_1min_mb': at_minute,
        'rss_max_after_mb': max(after),
        'rss_end_mb': rss[-1][1],
        'growth_after_1min': max(after) / at_minute - 1.0,
        'within_15pct': max(after) <= 1.15 * at_minute,
        'anon_start_mb': anon[0][1],
        'anon_1min_mb': anon_minute,
        'anon_max_after_mb': max(anon_after),
        'anon_last_min_mb': anon_last,
        'anon_growth': anon_last / anon_minute,
        'anon_end_mb': anon[-1][1],
        'work_ms': work,
        'single_work_ms': single,
        'work_ratio': work / single if single else float('nan'),
        'stream_fps': stream_rate,
        'single_fps': single_rate,
        'rate_ratio': stream_rate / single_rate if single_rate else float('nan'),
        'accounted': accounted,
        'lost_in_transport': result['sent'] - stats.get('received', 0),
    }


def plot(results: list, path: Path) -> None:
    """RssAnon against time, one line per soak."""
    import matplotlib  # optional: only the plot needs it

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        t, anon = zip(*(r.get('rss_anon') or r['rss']))
        ax.plot(
            t,
            anon,
            label=f'{r.get("pattern", "cycle")}, {r["size"][0]}x{r["size"][1]} '
            f'at {r["rate"]:.0f} Hz, {r.get("executor", "multi")} executor',
        )
    ax.set(xlabel='seconds', ylabel='node RssAnon (MB)', title='glue_ros node under a stream')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def print_report(result: dict, summary: dict) -> None:
    """One soak's figures."""
    s, n = summary, result['node']
    print(
        f'soak {result.get("pattern", "cycle")} {result["size"][0]}x{result["size"][1]} at '
        f'{result["rate"]:.0f} Hz for {result["seconds"]:.0f} s, '
        f'{result.get("executor", "multi")} executor: RSS {s["rss_start_mb"]:.0f} '
        f'MB at start, {s["rss_1min_mb"]:.0f} MB at 1 min, max {s["rss_max_after_mb"]:.0f} MB '
        f'after ({s["growth_after_1min"]:+.1%}), {s["rss_end_mb"]:.0f} MB at the end; RssAnon '
        f'{s["anon_start_mb"]:.0f} at start, median {s["anon_1min_mb"]:.0f} at 1 min and '
        f'{s["anon_last_min_mb"]:.0f} over the last minute ({s["anon_growth"]:.2f}x), max '
        f'{s["anon_max_after_mb"]:.0f}, {s["anon_end_mb"]:.0f} MB after the stream'
    )
    print(
        f'  matching {s["work_ms"]:.0f} ms per frame under the stream, '
        f'{s["single_work_ms"]:.0f} ms one frame at a time ({s["work_ratio"]:.2f}x); '
        f'published {s["stream_fps"]:.2f} frames/s, one at a time {s["single_fps"]:.2f} '
        f'({s["rate_ratio"]:.0%}); CPU during the stream: node '
        f'{result.get("node_cpu_cores", 0):.2f} cores, camera '
        f'{result.get("camera_cpu_cores", 0):.2f}'
    )
    lat = result['latency_ms']
    print(
        f'  frames: sent {result["sent"]} ({s["lost_in_transport"]} lost in best-effort '
        f'transport), received {n.get("received")}, processed '
        f'{n.get("processed")}, dropped {n.get("dropped")}, bad {n.get("bad")}, published '
        f'{n.get("published")} (accounted: {s["accounted"]}); latency ms p50 '
        f'{lat.get(50, 0):.0f} p90 {lat.get(90, 0):.0f} p99 {lat.get(99, 0):.0f}'
    )
