"""Sweeps and the roofline: LightGlue against the keypoint count, XFeat against image size.

Each point runs in a fresh worker process, so the peak memory it reports is its own.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from glue_ros.core.types import Features
from glue_ros.matcher import MatcherConfig, build_matcher
from glue_ros.models.lightglue import LightGlue
from glue_ros.testing import real_images
from glue_ros.tools.bench.pipelines import run_worker


def make_sweep_features(args: argparse.Namespace) -> dict:
    """Extract the sweep's features once (inside a worker) and save them to a file."""
    torch.set_num_threads(args.threads)
    image0, image1, _ = real_images.homography_pair(
        'astronaut', size=(1600, 1200), roll_deg=5, zoom=1.05, upscale=4.0
    )
    matcher = build_matcher(MatcherConfig(max_keypoints=max(args.sweep_counts)))
    f0, f1 = matcher.extract(image0), matcher.extract(image1)
    torch.save(
        {
            'kpts0': f0.keypoints,
            'desc0': f0.descriptors,
            'size0': list(f0.image_size),
            'kpts1': f1.keypoints,
            'desc1': f1.descriptors,
            'size1': list(f1.image_size),
        },
        args.make_sweep_features,
    )
    return {'keypoints': [len(f0), len(f1)]}


def sweep_point(args: argparse.Namespace) -> dict:
    """LightGlue matching time and memory at one keypoint count (inside a worker process).

    Only the matcher and the saved features live in this process, so the peak RSS added by
    the first match is the matching's own memory.
    """
    torch.set_num_threads(args.threads)
    data = torch.load(args.sweep_features, weights_only=True)
    count = args.sweep_point
    lightglue = LightGlue.for_features('xfeat').eval()
    f0 = Features(
        data['kpts0'][:count], torch.ones(count), data['desc0'][:count], tuple(data['size0'])
    )
    f1 = Features(
        data['kpts1'][:count], torch.ones(count), data['desc1'][:count], tuple(data['size1'])
    )
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times, layers = [], []
    with torch.inference_mode():
        for _ in range(args.repeat + 1):  # the first run is the warm-up
            t = time.perf_counter()
            out = lightglue(
                f0.keypoints[None],
                f0.descriptors[None],
                f0.image_size,
                f1.keypoints[None],
                f1.descriptors[None],
                f1.image_size,
            )
            times.append((time.perf_counter() - t) * 1e3)
            layers.append(out['layers_used'])
    return {
        'keypoints': len(f0),
        'match_ms': statistics.median(times[1:]),
        'layers_used': statistics.median(layers[1:]),
        'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        'rss_before_first_match_mb': base,
    }


def size_point(args: argparse.Namespace) -> dict:
    """XFeat extraction time at one image size (inside a worker process)."""
    torch.set_num_threads(args.threads)
    w, h = args.size_point
    image, _, _ = real_images.homography_pair('astronaut', size=(w, h), upscale=4.0)
    matcher = build_matcher(MatcherConfig(max_keypoints=args.max_keypoints, device=args.device))
    matcher.extract(image)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        matcher.extract(image)
        times.append((time.perf_counter() - t) * 1e3)
    return {
        'size': [w, h],
        'extract_ms': statistics.median(times),
        'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def roofline(
    keypoints: int, threads: int, layers: int = 6, dim: int = 96, repeat: int = 9
) -> dict:
    """What full-depth LightGlue attention costs at best on this CPU, measured.

    The fused attention of both images at `keypoints` points (one head of `dim`, LighterGlue's
    shape) against the machine's fp32 matrix-multiply rate: when the first runs at the second,
    attention cannot get faster in fp32, and `layers` x (self + cross) of it is the floor of
    full-depth matching. Also the CPU's ISA as torch dispatches it, and bf16 support.
    """
    torch.set_num_threads(threads)

    def median_ms(fn: Callable, *args: torch.Tensor) -> float:
        fn(*args)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            fn(*args)
            times.append(time.perf_counter() - start)
        return sorted(times)[len(times) // 2] * 1e3

    with torch.inference_mode():
        gen = torch.Generator().manual_seed(0)
        a, b = (torch.randn(1024, 1024, generator=gen) for _ in range(2))
        gemm_ms = median_ms(torch.matmul, a, b)
        q, k, v = (torch.randn(2, 1, keypoints, dim, generator=gen) for _ in range(3))
        sdpa_ms = median_ms(F.scaled_dot_product_attention, q, k, v)
    sdpa_flop = 2 * 2 * 2 * keypoints * keypoints * dim  # 2 images, QK^T and AV
    return {
        'keypoints': keypoints,
        'isa': torch.backends.cpu.get_cpu_capability(),
        'mkldnn_bf16': bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        'gemm_gflops': 2 * 1024**3 / gemm_ms / 1e6,
        'attention_ms': sdpa_ms,
        'attention_gflops': sdpa_flop / sdpa_ms / 1e6,
        'full_depth_attention_ms': 2 * layers * sdpa_ms,
    }


def print_roofline(r: dict, rows: list) -> None:
    """The roofline figures, and the frame budget a 2.5x target leaves when the reference ran."""
    print(
        f'\nroofline ({r["isa"]}, bf16 matmul {"native" if r["mkldnn_bf16"] else "emulated"}):'
        f' fp32 matmul {r["gemm_gflops"]:.0f} GFLOP/s; attention of 2 x {r["keypoints"]} '
        f'points {r["attention_ms"]:.1f} ms = {r["attention_gflops"]:.0f} GFLOP/s; full depth '
        f'(6 layers, self + cross) {r["full_depth_attention_ms"]:.0f} ms of attention alone'
    )
    ref = {row['pipeline']: row for row in rows if 'error' not in row}.get('ref-lighterglue-xfeat')
    if ref:
        budget = ref['frame_ms'] / 2.5
        print(
            f'reference at its defaults: {ref["frame_ms"]:.0f} ms per frame; a 2.5x frame is '
            f'{budget:.0f} ms, full-depth attention alone needs '
            f'{r["full_depth_attention_ms"]:.0f} ms'
        )


def plot_sweep(sweep: list, sizes: list, path: Path) -> None:
    """Time and memory against keypoint count (and extraction time against image size)."""
    import matplotlib  # optional: only the plot needs it

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ok = [s for s in sweep if 'error' not in s]
    kp = [s['keypoints'] for s in ok]
    axes[0].plot(kp, [s['match_ms'] for s in ok], 'o-')
    axes[0].set(
        xlabel='keypoints per image',
        ylabel='LightGlue match time (ms)',
        xscale='log',
        yscale='log',
        title='time vs keypoints',
    )
    axes[1].plot(
        kp,
        [s['peak_rss_mb'] - s['rss_before_first_match_mb'] for s in ok],
        'o-',
        label='peak RSS added by matching',
    )
    axes[1].set(
        xlabel='keypoints per image', ylabel='MB', xscale='log', title='memory vs keypoints'
    )
    axes[1].legend()
    for ax in axes[:2]:  # one labelled tick per measured count
        ax.set_xticks(kp, [str(k) for k in kp])
        ax.minorticks_off()
    oks = [s for s in sizes if 'error' not in s]
    axes[2].plot(
        [s['size'][0] * s['size'][1] / 1e6 for s in oks], [s['extract_ms'] for s in oks], 'o-'
    )
    axes[2].set(xlabel='megapixels', ylabel='XFeat extraction (ms)', title='time vs image size')
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def run_sweep(args: argparse.Namespace) -> dict:
    """The --sweep part of a run: workers per point, the table, the plot; the report's part."""
    report = {}
    features = args.json.parent / 'sweep_features.pt'
    features.parent.mkdir(parents=True, exist_ok=True)
    made = run_worker(
        args,
        ['--sweep-counts', *map(str, args.sweep_counts), '--make-sweep-features', str(features)],
    )
    sweep = [
        run_worker(args, ['--sweep-point', str(n), '--sweep-features', str(features)])
        if 'error' not in made
        else made
        for n in tqdm(args.sweep_counts, desc='keypoint sweep', file=sys.stderr)
    ]
    sizes = [
        run_worker(args, ['--size-point', str(w), str(h)])
        for w, h in tqdm([(320, 240), (640, 480), (1280, 960)], desc='size sweep', file=sys.stderr)
    ]
    report['sweep'], report['sizes'] = sweep, sizes
    print(f'\n{"keypoints":>9} {"match ms":>9} {"layers":>6} {"+RSS MB":>8}')
    for s in sweep:
        if 'error' in s:
            print(f'error: {s["error"]}')
            continue
        print(
            f'{s["keypoints"]:>9} {s["match_ms"]:>9.1f} {s["layers_used"]:>6.0f} '
            f'{s["peak_rss_mb"] - s["rss_before_first_match_mb"]:>8.1f}'
        )
    ok = [s for s in sweep if 'error' not in s]
    if len(ok) >= 2:
        (a, b) = ok[-2], ok[-1]
        grow = (b['peak_rss_mb'] - b['rss_before_first_match_mb']) / max(
            a['peak_rss_mb'] - a['rss_before_first_match_mb'], 1e-3
        )
        report['memory_growth_last_doubling'] = grow
        print(
            f'memory added by matching grows {grow:.2f}x from {a["keypoints"]} to '
            f'{b["keypoints"]} keypoints ({b["keypoints"] / a["keypoints"]:.1f}x points)'
        )
    for s in sizes:
        if 'error' not in s:
            print(f'XFeat extraction at {s["size"][0]}x{s["size"][1]}: {s["extract_ms"]:.1f} ms')
    args.plot.parent.mkdir(parents=True, exist_ok=True)
    plot_sweep(sweep, sizes, args.plot)
    print(f'plot: {args.plot}')
    return report
