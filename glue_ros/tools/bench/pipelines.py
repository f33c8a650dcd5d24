"""The pipelines the benchmark times, each in a worker process of its own.

A worker (``python -m glue_ros.tools.bench --worker NAME``) loads one pipeline, answers timing
rounds on demand and finally its accuracy on the ground-truth pairs; the driver keeps every
worker alive so that the rounds of all pipelines interleave.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import numpy as np
import torch

from glue_ros.core import data_files
from glue_ros.evaluation.references import LighterGluePipeline, ReferencePipeline
from glue_ros.matcher import Matcher, MatcherConfig, build_matcher
from glue_ros.testing import real_images

Pipeline = Matcher | LighterGluePipeline | ReferencePipeline

# name -> pipeline spec. 'kind' ours runs through build_matcher; reference through references.
PIPELINES = {
    'lightglue-xfeat': {'kind': 'ours', 'matcher': 'lightglue', 'features': 'xfeat'},
    'lightglue-xfeat-fp32': {
        'kind': 'ours',
        'matcher': 'lightglue',
        'features': 'xfeat',
        'precision': 'fp32',
    },
    # Exported LightGlue runs all layers: compare it with eager at full depth too.
    'lightglue-xfeat-fulldepth': {
        'kind': 'ours',
        'matcher': 'lightglue',
        'features': 'xfeat',
        'precision': 'fp32',
        'depth_confidence': -1,
        'width_confidence': -1,
    },
    'lightglue-xfeat-onnxruntime': {
        'kind': 'ours',
        'matcher': 'lightglue',
        'features': 'xfeat',
        'backend': 'onnxruntime',
        'precision': 'fp32',
    },
    'ref-lighterglue-xfeat': {'kind': 'reference', 'features': 'xfeat', 'lighterglue': True},
    'ref-lightglue-xfeat': {'kind': 'reference', 'features': 'xfeat'},
    'lightglue-disk': {
        'kind': 'ours',
        'matcher': 'lightglue',
        'features': 'disk',
        'max_keypoints': 1024,
    },
    'ref-lightglue-disk': {'kind': 'reference', 'features': 'disk', 'max_keypoints': 1024},
    'coarse_loftr-torch': {'kind': 'ours', 'matcher': 'coarse_loftr', 'backend': 'torch'},
    'coarse_loftr-onnxruntime': {
        'kind': 'ours',
        'matcher': 'coarse_loftr',
        'backend': 'onnxruntime',
    },
    # NVIDIA GPUs with TensorRT only (make gpu-check).
    'coarse_loftr-tensorrt': {'kind': 'ours', 'matcher': 'coarse_loftr', 'backend': 'tensorrt'},
}
DEFAULT = [
    'lightglue-xfeat',
    'lightglue-xfeat-fp32',
    'lightglue-xfeat-onnxruntime',
    'coarse_loftr-torch',
    'coarse_loftr-onnxruntime',
]
# (ours, reference, what the comparison is). The headline: our default against the reference
# at the reference's own shipped defaults; beside it, like-for-like at equal settings.
COMPARISONS = [
    ('lightglue-xfeat', 'ref-lighterglue-xfeat', 'headline: both at their shipped defaults'),
    (
        'lightglue-xfeat-fp32',
        'ref-lightglue-xfeat',
        'like-for-like: same weights, confidences 0.95/0.99, fp32',
    ),
    ('lightglue-disk', 'ref-lightglue-disk', "like-for-like: kornia's defaults are ours"),
]
REFERENCE_OF = {}
for _ours, _reference, _ in COMPARISONS:
    REFERENCE_OF.setdefault(_ours, []).append(_reference)
COARSE_LOFTR_WEIGHTS = data_files.data_file(data_files.COARSE_LOFTR_WEIGHTS)


# -- data --------------------------------------------------------------------------------


def timing_pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Real pairs the speed is measured on: (name, image0, image1)."""
    stereo = real_images.middlebury_stereo((640, 480))
    a0, a1, _ = real_images.homography_pair('rocket', roll_deg=3, zoom=1.02, pan=0.01)
    h0, h1, _ = real_images.homography_pair('coffee', roll_deg=25, zoom=1.25, tilt=0.3)
    return [('stereo', stereo.left, stereo.right), ('easy', a0, a1), ('hard', h0, h1)]


def accuracy_pairs() -> list[tuple[str, np.ndarray, np.ndarray, Callable]]:
    """Pairs with ground truth: (name, image0, image1, errors(points0, points1))."""
    stereo = real_images.middlebury_stereo((640, 480))
    pairs = [
        (
            'middlebury',
            stereo.left,
            stereo.right,
            lambda p0, p1: real_images.disparity_errors(stereo, p0, p1),
        )
    ]
    seq = real_images.homography_sequence('astronaut', 6)
    for k in range(1, 6, 2):
        H = seq.relative(k, k - 1)
        pairs.append(
            (
                f'astronaut-seq{k}',
                seq.frames[k],
                seq.frames[k - 1],
                lambda p0, p1, H=H: real_images.homography_errors(H, p0, p1),
            )
        )
    for name, kwargs in (
        ('coffee-rot15', {'roll_deg': 15, 'zoom': 1.15, 'tilt': 0.2}),
        ('rocket-rot30', {'roll_deg': 30, 'zoom': 1.3, 'tilt': 0.3, 'pan': 0.1}),
    ):
        i0, i1, H = real_images.homography_pair(name.split('-')[0], **kwargs)
        pairs.append((name, i0, i1, lambda p0, p1, H=H: real_images.homography_errors(H, p0, p1)))
    return pairs


# -- one pipeline, in its own process ----------------------------------------------------


def build(spec: dict, args: argparse.Namespace) -> Pipeline:
    """The pipeline object of a spec: our Matcher or a ReferencePipeline."""
    keypoints = spec.get('max_keypoints', args.max_keypoints)
    if spec['kind'] == 'reference':
        if spec.get('lighterglue'):
            return LighterGluePipeline(keypoints)
        return ReferencePipeline(spec['features'], keypoints)
    weights = None
    if spec['matcher'] == 'coarse_loftr':
        weights = args.coarse_loftr_weights
    return build_matcher(
        MatcherConfig(
            matcher=spec['matcher'],
            features=spec.get('features', 'xfeat'),
            max_keypoints=keypoints,
            backend=spec.get('backend', 'torch'),
            device=args.device,
            precision=spec.get('precision', args.precision),
            weights=weights,
            **{k: spec[k] for k in ('depth_confidence', 'width_confidence') if k in spec},
        )
    )


def synchronise(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock times are complete."""
    if device.type == 'cuda':
        torch.cuda.synchronize()


class PipelineRun:
    """One pipeline inside its worker process: warm-up, timing rounds on demand, accuracy."""

    def __init__(self, spec: dict, args: argparse.Namespace) -> None:
        torch.set_num_threads(args.threads)
        self.spec, self.args = spec, args
        self.rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        self.pipe = build(spec, args)
        self.pairs = timing_pairs()
        self.samples = {name: [] for name, _, _ in self.pairs}
        for _, image0, image1 in self.pairs:  # warm-up
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
            self.samples[name].append(
                {
                    'pair': t3 - t0,
                    'frame': t3 - t1,
                    'extract': t2 - t0,
                    'match': t3 - t2,
                    'layers': result.layers_used,
                }
            )

    def finish(self) -> dict:
        """Medians of the rounds, accuracy on the ground-truth pairs, and peak memory."""
        pipe, med = self.pipe, statistics.median
        everything = [s for samples in self.samples.values() for s in samples]
        if not everything:
            raise RuntimeError('no timing round ran')

        def ms(key: str, samples: list = everything) -> float:
            return med(s[key] for s in samples) * 1e3

        per_pair = {
            name: {
                'match_ms': ms('match', samples),
                'layers_used': med(s['layers'] for s in samples),
            }
            for name, samples in self.samples.items()
        }
        accuracy = {}
        for name, image0, image1, errors_of in accuracy_pairs():
            result = pipe.match(pipe.extract(image0), pipe.extract(image1))
            errors = errors_of(result.points0, result.points1)
            known = np.isfinite(errors)
            accuracy[name] = {
                'matches': int(len(errors)),
                'known': int(known.sum()),
                'correct1': int((errors[known] < 1.0).sum()),
                'correct3': int((errors[known] < 3.0).sum()),
                'layers': int(result.layers_used),
            }
        totals = {
            k: sum(a[k] for a in accuracy.values()) for k in ('known', 'correct1', 'correct3')
        }
        memory = {
            'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            'rss_before_model_mb': self.rss_start,
        }
        if pipe.device.type == 'cuda':
            memory['gpu_peak_mb'] = torch.cuda.max_memory_allocated() / 2**20
        spec, args = self.spec, self.args
        return {
            'pipeline': spec['name'],
            'kind': spec['kind'],
            'name': pipe.name,
            'keypoints': spec.get('max_keypoints', args.max_keypoints),
            'device': str(pipe.device),
            'precision': getattr(pipe, 'precision', 'fp32'),
            'backend': spec.get('backend', 'torch'),
            'rounds': len(everything) // len(self.samples),
            'extract_ms': ms('extract'),
            'match_ms': ms('match'),
            'pair_ms': ms('pair'),
            'frame_ms': ms('frame'),
            'pairs_per_s': 1e3 / ms('pair'),
            'frames_per_s': 1e3 / ms('frame'),
            'layers_used': med(s['layers'] for s in everything),
            'layers_total': pipe.layers_total,
            **memory,
            'accuracy': accuracy,
            'correct1': totals['correct1'],
            'correct3': totals['correct3'],
            'precision3': totals['correct3'] / max(totals['known'], 1),
            'stereo_correct3': accuracy['middlebury']['correct3'],
            'per_pair': per_pair,
        }


def serve(name: str, args: argparse.Namespace) -> int:
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


REPLY = 'glue-ros-bench-reply'


def worker_command(args: argparse.Namespace, extra: list) -> list:
    """Command line of this module in a worker process."""
    return [
        sys.executable,
        '-m',
        'glue_ros.tools.bench',
        '--threads',
        str(args.threads),
        '--repeat',
        str(args.repeat),
        '--max-keypoints',
        str(args.max_keypoints),
        '--device',
        args.device,
        '--precision',
        args.precision,
        '--coarse-loftr-weights',
        str(args.coarse_loftr_weights),
        *extra,
    ]


def run_worker(args: argparse.Namespace, extra: list) -> dict:
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

    def __init__(self, args: argparse.Namespace, name: str) -> None:
        self.name, self.error = name, None
        self.stderr = tempfile.TemporaryFile('w+')
        self.proc = subprocess.Popen(
            worker_command(args, ['--worker', name]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        self.ask(None)

    def ask(self, command: str | None) -> str | None:
        """Send a command (None: only read) and return the reply, or None after a failure."""
        if self.error:
            return None
        try:
            if command is not None:
                self.proc.stdin.write(command + '\n')
                self.proc.stdin.flush()
            for line in self.proc.stdout:
                if line.startswith(REPLY + ' '):
                    return line[len(REPLY) + 1 :].strip()
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
