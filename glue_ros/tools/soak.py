"""glue-ros-bench --soak SECONDS: the node under a sustained camera stream, memory over time.

The node runs in its own process, fed over DDS faster than it can match (a moving-camera
sequence at --soak-rate Hz, cycling through distinct frames so that early exit and pruning
give the matcher a different shape on every frame). Every 5 s the node's resident memory is
sampled; at the end come the latency percentiles and the frame accounting (sent = received
by the node + lost in transport; received = processed + dropped + bad), and a plot.
"""
from __future__ import annotations

import ast
import statistics
import time
from pathlib import Path

import numpy as np

SAMPLE_S = 5.0


def node_stats(log: str) -> dict:
    """The frame accounting the node logs when it stops."""
    for line in reversed(log.splitlines()):
        if 'stopping: {' in line:
            return ast.literal_eval(line[line.index('{'):])
    return {}


def soak(seconds: float, size=(640, 480), rate: float = 60.0, workdir: Path = Path('bench_out'),
         params=None, log=print) -> dict:
    """Run the soak; returns RSS samples, latencies and the accounting."""
    import cv2

    from glue_ros.testing import real_images
    from glue_ros.testing.harness import MatcherProcess, rss_mb, stop_process

    sequence = real_images.homography_sequence('astronaut', 30)
    frames = [f if tuple(size) == (640, 480) else cv2.resize(f, tuple(size))
              for f in sequence.frames]
    workdir.mkdir(parents=True, exist_ok=True)
    node = MatcherProcess(workdir, {'mode': 'sequential', **(params or {})})
    samples, sent = [], 0
    try:
        node.wait_connected(60)
        start = time.monotonic()
        next_sample = start
        period = 1.0 / rate
        while time.monotonic() - start < seconds:
            node.publish('image', frames[sent % len(frames)], 1000.0 + sent * period)
            sent += 1
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - start, rss_mb(node.proc.pid)))
                log(f'{samples[-1][0]:6.0f} s  RSS {samples[-1][1]:7.1f} MB  '
                    f'published {len(node.matches)}')
                next_sample += SAMPLE_S
            node.spin(max(0.0, start + sent * period - time.monotonic()))
        node.spin(3.0)
        samples.append((time.monotonic() - start, rss_mb(node.proc.pid)))
        stop_process(node.proc)
        stats = node_stats(node.log())
    finally:
        node.close()
    latencies = np.array([m.latency_ms for m in node.matches])
    return {'seconds': seconds, 'size': list(size), 'rate': rate, 'sent': sent,
            'node': stats, 'published_received': len(node.matches), 'rss': samples,
            'latency_ms': {p: float(np.percentile(latencies, p)) for p in (50, 90, 99)}
            if len(latencies) else {},
            'work_ms': statistics.median(m.extract_ms + m.match_ms for m in node.matches)
            if node.matches else 0.0}


def summarise(result: dict) -> dict:
    """RSS at one minute and after (within 15% of the one-minute value?), frame accounting.

    accounted: every frame the node received was processed, dropped or rejected as bad; frames
    sent but never received were lost in best-effort transport, counted on their own.
    """
    rss = result['rss']
    at_minute = next((r for t, r in rss if t >= 60.0), rss[-1][1])
    after = [r for t, r in rss if t >= 60.0] or [rss[-1][1]]
    stats = result['node']
    accounted = (stats.get('received', -1) == stats.get('processed', 0)
                 + stats.get('dropped', 0) + stats.get('bad', 0))
    return {'rss_start_mb': rss[0][1], 'rss_1min_mb': at_minute, 'rss_max_after_mb': max(after),
            'rss_end_mb': rss[-1][1], 'growth_after_1min': max(after) / at_minute - 1.0,
            'within_15pct': max(after) <= 1.15 * at_minute, 'accounted': accounted,
            'lost_in_transport': result['sent'] - stats.get('received', 0)}


def plot(results: list, path: Path) -> None:
    """RSS against time, one line per soak."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        t, rss = zip(*r['rss'])
        ax.plot(t, rss, label=f'{r["size"][0]}x{r["size"][1]} at {r["rate"]:.0f} Hz')
    ax.set(xlabel='seconds', ylabel='node RSS (MB)', title='glue_ros node under a stream')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def print_report(result: dict, summary: dict) -> None:
    """One soak's figures."""
    s, n = summary, result['node']
    print(f'soak {result["size"][0]}x{result["size"][1]} at {result["rate"]:.0f} Hz for '
          f'{result["seconds"]:.0f} s: RSS {s["rss_start_mb"]:.0f} MB at start, '
          f'{s["rss_1min_mb"]:.0f} MB at 1 min, max {s["rss_max_after_mb"]:.0f} MB after '
          f'({s["growth_after_1min"]:+.1%}), {s["rss_end_mb"]:.0f} MB at the end')
    lat = result['latency_ms']
    print(f'  frames: sent {result["sent"]} ({s["lost_in_transport"]} lost in best-effort '
          f'transport), received {n.get("received")}, processed '
          f'{n.get("processed")}, dropped {n.get("dropped")}, bad {n.get("bad")}, published '
          f'{n.get("published")} (accounted: {s["accounted"]}); latency ms p50 '
          f'{lat.get(50, 0):.0f} p90 {lat.get(90, 0):.0f} p99 {lat.get(99, 0):.0f}; matching '
          f'{result["work_ms"]:.0f} ms per frame')
