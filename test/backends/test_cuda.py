"""Both matchers on an NVIDIA GPU: the same answers as on the CPU, in fp32 and fp16.

Run by `make gpu-check` on a machine with CUDA (with test_backends.py's TensorRT tests); here,
without a GPU, it skips, and the CPU paths are covered by test_lightglue.py and
test_coarse_loftr.py. Accuracy is compared against the Middlebury ground truth rather than
match by match: cuDNN convolutions run in TF32 by default and fp16 autocast rounds to 11 bits,
so keypoint scores near the selection threshold and matches near the confidence threshold can
flip; a few percent of the matches may change while their correctness must not.
"""

import numpy as np
import pytest
import torch

from glue_ros.core import data_files
from glue_ros.matcher import MatcherConfig, build_matcher
from glue_ros.testing import real_images

# A mark, not a module-level skip: launch_testing's pytest plugin imports every test module
# itself, and a Skipped raised there ends the whole session's collection.
pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason='needs CUDA: '
    + ('torch is a CPU build' if torch.version.cuda is None else 'no GPU visible to torch'),
)

WEIGHTS = data_files.data_file(data_files.COARSE_LOFTR_WEIGHTS)
WEIGHTS_MISSING = data_files.missing_reason(data_files.COARSE_LOFTR_WEIGHTS)


def correct_share(result, pair, within_px: float) -> tuple:
    errors = real_images.disparity_errors(pair, result.points0, result.points1)
    known = np.isfinite(errors)
    return len(errors), float(np.mean(errors[known] < within_px))


@pytest.fixture(scope='module')
def pair():
    return real_images.middlebury_stereo()


@pytest.mark.parametrize('precision', ['fp32', 'fp16'])
def test_lightglue_on_cuda_is_as_accurate_as_on_the_cpu(pair, precision):
    cpu = build_matcher(MatcherConfig(device='cpu', precision='fp32'))
    gpu = build_matcher(MatcherConfig(device='cuda', precision=precision))
    n_cpu, ok_cpu = correct_share(cpu.match_images(pair.left, pair.right), pair, 3.0)
    result = gpu.match_images(pair.left, pair.right)
    n_gpu, ok_gpu = correct_share(result, pair, 3.0)
    assert abs(n_gpu - n_cpu) <= 0.05 * n_cpu, (n_cpu, n_gpu)
    assert ok_gpu >= ok_cpu - 0.02, (ok_cpu, ok_gpu)
    assert 0 < result.layers_used <= result.layers_total


@pytest.mark.skipif(bool(WEIGHTS_MISSING), reason=WEIGHTS_MISSING or 'there')
@pytest.mark.parametrize('precision', ['fp32', 'fp16'])
def test_coarse_loftr_on_cuda_is_as_accurate_as_on_the_cpu(pair, precision):
    config = dict(matcher='coarse_loftr', weights=str(WEIGHTS))
    cpu = build_matcher(MatcherConfig(device='cpu', precision='fp32', **config))
    gpu = build_matcher(MatcherConfig(device='cuda', precision=precision, **config))
    n_cpu, ok_cpu = correct_share(cpu.match_images(pair.left, pair.right), pair, 16.0)
    n_gpu, ok_gpu = correct_share(gpu.match_images(pair.left, pair.right), pair, 16.0)
    assert abs(n_gpu - n_cpu) <= 0.05 * n_cpu, (n_cpu, n_gpu)
    assert ok_gpu >= ok_cpu - 0.02, (ok_cpu, ok_gpu)
