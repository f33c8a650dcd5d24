"""What the benchmark prints and writes: the machine, the tables, the ratios, the other modes.

The message cost (a glue_ros/Matches built and serialised) needs ROS; the soak and live modes
run the node over DDS (glue_ros.tools.soak, glue_ros.tools.live_camera).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from glue_ros.core.types import MatchResult
from glue_ros.tools import soak
from glue_ros.tools.bench.pipelines import COMPARISONS


def message_cost(repeat: int = 200) -> dict:
    """Build + serialise time of a 2000-match glue_ros/Matches message."""
    # ROS only here: the bench's other modes run without it
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from glue_ros.ros.messages import matches_message

    rng = np.random.default_rng(0)
    m = 2000
    result = MatchResult(
        rng.random((m, 2), np.float32),
        rng.random((m, 2), np.float32),
        rng.random(m, np.float32),
        np.arange(m, dtype=np.int32),
        np.arange(m, dtype=np.int32),
        m,
        m,
        6,
        9,
    )
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        msg = matches_message(
            result,
            Header(),
            Header(),
            mode=0,
            matcher='lightglue/xfeat',
            query_size=(640, 480),
            reference_size=(640, 480),
            track_ids=np.arange(m, dtype=np.uint64),
        )
        data = serialize_message(msg)
        times.append((time.perf_counter() - t) * 1e3)
    return {'matches': m, 'bytes': len(data), 'build_and_serialise_ms': statistics.median(times)}


def machine() -> dict:
    """Where the figures come from."""
    info = {
        'cpu': platform.processor() or platform.machine(),
        'cores': os.cpu_count(),
        'python': platform.python_version(),
        'torch': torch.__version__,
    }
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                info['cpu'] = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    if torch.cuda.is_available():
        info['gpu'] = torch.cuda.get_device_name(0)
    return info


def print_table(rows: list) -> None:
    """The human-readable table."""
    head = (
        f'{"pipeline":<28} {"kp":>5} {"extract":>8} {"match":>8} {"pair":>8} '
        f'{"frame":>8} {"pairs/s":>7} {"layers":>7} {"RSS MB":>7} {"ok@1px":>6} '
        f'{"ok@3px":>6} {"prec@3":>6}'
    )
    print(head)
    print('-' * len(head))
    for r in rows:
        if 'error' in r:
            print(f'{r["pipeline"]:<28} error: {r["error"]}')
            continue
        print(
            f'{r["pipeline"]:<28} {r["keypoints"]:>5} {r["extract_ms"]:>8.1f} '
            f'{r["match_ms"]:>8.1f} {r["pair_ms"]:>8.1f} {r["frame_ms"]:>8.1f} '
            f'{r["pairs_per_s"]:>7.2f} {r["layers_used"]:>3.0f}/{r["layers_total"]:<3} '
            f'{r["peak_rss_mb"]:>7.0f} {r["correct1"]:>6} {r["correct3"]:>6} '
            f'{r["precision3"]:>6.1%}'
        )
    print(
        '(times: ms, medians over the stereo, easy and hard pairs; pair = extract both + '
        'match; frame = extract one + match against cached features; ok@Npx: correct '
        'matches summed over all ground-truth pairs; coarse LoFTR points are 16 px cell '
        'centres, so its ok@1px/3px are low by construction)'
    )
    for r in rows:
        if 'error' not in r and r['layers_total'] and 'easy' in r.get('per_pair', {}):
            easy, hard = r['per_pair']['easy'], r['per_pair']['hard']
            print(
                f'{r["pipeline"]}: easy pair {easy["layers_used"]:.0f} layers '
                f'{easy["match_ms"]:.0f} ms match; hard pair {hard["layers_used"]:.0f} layers '
                f'{hard["match_ms"]:.0f} ms'
            )


def print_ratios(rows: list) -> list:
    """Our speed-up and accuracy against each reference present in the run."""
    by_name = {r['pipeline']: r for r in rows if 'error' not in r}
    ratios = []
    for ours, ref, what in COMPARISONS:
        if ours in by_name and ref in by_name:
            a, b = by_name[ours], by_name[ref]
            print(f'[{what}]')
            ratio = {
                'ours': ours,
                'reference': ref,
                'comparison': what,
                'pair_speedup': b['pair_ms'] / a['pair_ms'],
                'frame_speedup': b['frame_ms'] / a['frame_ms'],
                'frame_speedup_vs_uncached': b['pair_ms'] / a['frame_ms'],
                'correct3': [a['correct3'], b['correct3']],
                'precision3': [a['precision3'], b['precision3']],
            }
            ratios.append(ratio)
            print(
                f'{ours} vs {ref}: {ratio["pair_speedup"]:.2f}x faster per pair; per '
                f'sequential frame {ratio["frame_speedup"]:.2f}x (both caching features), '
                f'{ratio["frame_speedup_vs_uncached"]:.2f}x (reference extracting both images '
                f'per frame); correct matches '
                f'(<3 px) {a["correct3"]} vs {b["correct3"]}, precision '
                f'{a["precision3"]:.1%} vs {b["precision3"]:.1%}'
            )
    return ratios


def run_soak(args: argparse.Namespace) -> int:
    """The soak mode: one soak per --soak-pattern, --soak-size and --soak-executor, in turn."""
    results = []
    for pattern in args.soak_pattern or list(soak.PATTERNS):
        for size in args.soak_size or [(640, 480)]:
            for executor in args.soak_executor or ['events']:
                result = soak.soak(
                    args.soak,
                    tuple(size),
                    args.soak_rate,
                    args.json.parent,
                    pattern=pattern,
                    executor=executor,
                )
                result['summary'] = soak.summarise(result)
                soak.print_report(result, result['summary'])
                results.append(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    path = args.json.with_name('soak.json')
    path.write_text(json.dumps({'machine': machine(), 'soaks': results}, indent=1))
    soak.plot(results, args.plot.with_name('soak.png'))
    print(f'JSON: {path}; plot: {args.plot.with_name("soak.png")}')
    return 0


def run_live(args: argparse.Namespace) -> int:
    """The live mode: one real-time camera run per parameters file, one JSON."""
    # needs ROS (the node's modules): here, so that the bench's other modes run without it
    from glue_ros.tools import live_camera

    results = []
    for config in args.live or [None]:
        results.append(
            live_camera.live(
                None if str(config) == 'defaults' else config,
                args.live_rate,
                workdir=args.json.parent,
            )
        )
        print(live_camera.summary_line(results[-1]))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    path = args.json.with_name('live.json')
    path.write_text(json.dumps({'machine': machine(), 'runs': results}, indent=1))
    print(f'JSON: {path}')
    return 0
