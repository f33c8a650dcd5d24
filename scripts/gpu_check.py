"""`make gpu-check`: everything that needs an NVIDIA GPU, in one run, into one JSON.

The tests that need CUDA or TensorRT (test/backends/test_cuda.py, the TensorRT tests of
test/backends/test_backends.py), then `glue-ros-bench --device cuda` for both matchers in fp32
and fp16, coarse LoFTR on TensorRT too where the package is installed. Each step has its share
of an 8-minute budget. On a machine without a usable GPU it says why, writes that in the JSON and
exits 0.

    python scripts/gpu_check.py [--json bench_out/gpu-check.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 8 * 60
STEP_TIMEOUT_S = {'tests': 240, 'bench fp32': 110, 'bench fp16': 110}


def gpu_problem() -> str:
    """Why the CUDA path cannot run here; '' when it can."""
    if torch.cuda.is_available():
        return ''
    gpu = shutil.which('nvidia-smi') is not None
    if torch.version.cuda is None:
        return (
            'torch '
            + torch.__version__
            + ' is a CPU build'
            + (
                ' although an NVIDIA GPU is present: install a CUDA build of torch'
                if gpu
                else ' and no NVIDIA GPU is present'
            )
        )
    return 'no GPU is visible to torch (CUDA_VISIBLE_DEVICES, driver)'


def tensorrt_version() -> str:
    """The installed TensorRT's version, '' without one."""
    try:  # optional: NVIDIA machines only
        import tensorrt
    except ImportError:
        return ''
    return tensorrt.__version__


def run(name: str, command: list, timeout: float) -> dict:
    """One step as a subprocess: its exit code, duration and the tail of its output."""
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        code, out = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as exc:
        code = 'timeout'
        out = (
            (exc.stdout or b'').decode(errors='replace')
            if isinstance(exc.stdout, bytes)
            else (exc.stdout or '')
        )
    seconds = time.monotonic() - start
    print(f'[gpu-check] {name}: exit {code} in {seconds:.0f} s', flush=True)
    return {
        'step': name,
        'command': ' '.join(command),
        'exit': code,
        'seconds': round(seconds, 1),
        'output_tail': out[-4000:],
    }


def main(argv: list[str] | None = None) -> int:
    """Exit 0 when every step passed or there is no GPU to check; 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--json', type=Path, default=ROOT / 'bench_out' / 'gpu-check.json')
    args = parser.parse_args(argv)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        'machine': platform.node(),
        'torch': torch.__version__,
        'torch_cuda': torch.version.cuda,
        'tensorrt': tensorrt_version() or None,
    }
    problem = gpu_problem()
    if problem:
        report['skipped'] = problem
        args.json.write_text(json.dumps(report, indent=1) + '\n')
        print(f'[gpu-check] skipped: {problem} (written to {args.json})')
        return 0
    report['gpu'] = torch.cuda.get_device_name(0)
    print(
        f'[gpu-check] {report["gpu"]}, torch {torch.__version__} (CUDA '
        f'{torch.version.cuda}), TensorRT {report["tensorrt"] or "not installed"}',
        flush=True,
    )
    start = time.monotonic()
    steps = [
        run(
            'tests',
            [
                sys.executable,
                '-m',
                'pytest',
                '-ra',
                '-p',
                'no:cacheprovider',
                'test/backends/test_cuda.py',
                'test/backends/test_backends.py',
            ],
            STEP_TIMEOUT_S['tests'],
        )
    ]
    pipelines = ['lightglue-xfeat', 'coarse_loftr-torch']
    if report['tensorrt']:
        pipelines.append('coarse_loftr-tensorrt')
    for precision in ('fp32', 'fp16'):
        name = f'bench {precision}'
        left = BUDGET_S - (time.monotonic() - start)
        if left < 30:
            steps.append({'step': name, 'exit': 'not run: out of time'})
            continue
        out = ROOT / 'bench_out' / f'gpu-bench-{precision}.json'
        step = run(
            name,
            [
                sys.executable,
                '-m',
                'glue_ros.tools.bench',
                '--device',
                'cuda',
                '--precision',
                precision,
                '--pipelines',
                ','.join(pipelines),
                '--repeat',
                '3',
                '--json',
                str(out),
            ],
            min(STEP_TIMEOUT_S[name], left),
        )
        if out.is_file():
            step['results'] = json.loads(out.read_text())
        steps.append(step)
    report['steps'] = steps
    report['seconds'] = round(time.monotonic() - start, 1)
    report['ok'] = all(s.get('exit') == 0 for s in steps)
    args.json.write_text(json.dumps(report, indent=1) + '\n')
    print(
        f'[gpu-check] {"passed" if report["ok"] else "FAILED"} in {report["seconds"]} s; '
        f'report: {args.json}'
    )
    return 0 if report['ok'] else 1


if __name__ == '__main__':
    raise SystemExit(main())
