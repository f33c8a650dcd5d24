"""LightGlue's exported full-depth graph on ONNX Runtime: parity, padding, export cache."""

import copy

import numpy as np
import pytest
import torch

from glue_ros.core.errors import BackendUnavailableError
from glue_ros.core.types import Features
from glue_ros.matcher import LightGlueMatcher, MatcherConfig, build_matcher
from glue_ros.testing import real_images

pytestmark = pytest.mark.slow  # exports LightGlue to ONNX

pytest.importorskip('onnxruntime')
pytest.importorskip('onnx')
pytest.importorskip('skimage.data')

K = 512
THRESHOLD = 0.1  # LightGlue's default filter_threshold


def log_tolerance(scores):
    """Allowed |log s - log s_ref| between the graph on ONNX Runtime and eager PyTorch.

    Both compute the same float32 maths and differ only in the order of their sums (ONNX
    Runtime's GEMM blocking and fused attention, K = 512 padded keys adding exact zeros). A
    float32 sum of N terms is off by at most N * eps relative (eps = 2**-23): 6.1e-5 at N = 512,
    per reduction. Thirteen reductions in a row (6 layers of self and cross attention, then the
    dual softmax) bound the relative error of the log-probabilities by about 8e-4; doubled for
    the exp / log of the softmaxes: |log s - log s_ref| <= 2e-3 * (1 + |log s_ref|).
    """
    return 2e-3 * (1 + np.abs(np.log(scores)))


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp('glue_ros_cache')


@pytest.fixture(scope='module')
def eager():
    torch.set_num_threads(2)
    return build_matcher(
        MatcherConfig(max_keypoints=K, depth_confidence=-1, width_confidence=-1, precision='fp32')
    )


@pytest.fixture(scope='module')
def exported(cache):
    return build_matcher(
        MatcherConfig(
            max_keypoints=K, backend='onnxruntime', precision='fp32', engine_cache_dir=str(cache)
        )
    )


@pytest.fixture(scope='module')
def features(eager):
    """XFeat features of the Middlebury motorcycle pair at 640x480 (K strongest each)."""
    pair = real_images.middlebury_stereo((640, 480))
    return eager.extract(pair.left), eager.extract(pair.right)


def pairs(result):
    return dict(
        zip(zip(result.indices0.tolist(), result.indices1.tolist()), result.scores.tolist())
    )


def assert_same_matches(ours, reference):
    """Same pairs, except where a score is within float32 tolerance of the filter threshold.

    A pair whose probability is within the tolerance of log_tolerance of THRESHOLD may fall on
    either side of it in either runtime; any other difference is a real one.
    """
    a, b = pairs(ours), pairs(reference)
    assert len(b) > 50
    for pair in set(a) ^ set(b):
        score = a.get(pair, b.get(pair))
        assert abs(np.log(score) - np.log(THRESHOLD)) <= log_tolerance(THRESHOLD), (pair, score)
    assert len(set(a) ^ set(b)) <= 0.01 * len(b)
    common = sorted(set(a) & set(b))
    ref = np.array([b[p] for p in common])
    error = np.abs(np.log([a[p] for p in common]) - np.log(ref))
    assert np.all(error <= log_tolerance(ref)), float((error / log_tolerance(ref)).max())


def subset(features, index):
    """Features of the points `index` (no prepared state: the matcher redoes it)."""
    index = torch.as_tensor(index)
    return Features(
        features.keypoints[index],
        features.scores[index],
        features.descriptors[index],
        features.image_size,
    )


def test_onnxruntime_matches_eager_full_depth(eager, exported, features):
    assert len(features[0]) == len(features[1]) == K
    reference, ours = eager.match(*features), exported.match(*features)
    assert_same_matches(ours, reference)
    assert ours.layers_used == ours.layers_total == reference.layers_total
    assert np.all(np.diff(ours.scores) <= 0)  # best first, as the eager matcher
    np.testing.assert_array_equal(ours.points0, features[0].keypoints[ours.indices0].numpy())


def test_fewer_keypoints_than_k_are_padded(eager, exported, features):
    f0, f1 = subset(features[0], range(300)), subset(features[1], range(1, 400, 2))
    assert_same_matches(exported.match(f0, f1), eager.match(f0, f1))
    # One point against many: 511 padded slots, still finite and in range.
    one = exported.runtime.match(subset(features[0], [5]), features[1])
    assert len(one['indices0']) <= 1 and np.all(one['indices1'] < K)


def test_more_keypoints_than_k_keep_the_strongest(eager, features, cache):
    from glue_ros.backends.lightglue_runtime import LightGlueRuntime

    runtime = LightGlueRuntime(eager.lightglue, 'onnxruntime', 256, cache_dir=cache, num_threads=2)
    out = runtime.match(*features)
    strongest = [torch.sort(torch.topk(f.scores, 256).indices).values for f in features]
    reference = eager.match(subset(features[0], strongest[0]), subset(features[1], strongest[1]))
    expected = set(
        zip(strongest[0][reference.indices0].tolist(), strongest[1][reference.indices1].tolist())
    )
    got = set(zip(out['indices0'].tolist(), out['indices1'].tolist()))
    assert len(expected) > 50 and len(got ^ expected) <= 0.01 * len(expected)


def test_zero_keypoints_give_an_empty_result(exported, features):
    empty = Features.empty((640, 480), 64)
    for pair in ((empty, features[1]), (features[0], empty), (empty, empty)):
        result = exported.match(*pair)
        assert len(result) == 0 and result.layers_total == exported.layers_total
        assert len(exported.runtime.match(*pair)['indices0']) == 0


def test_export_is_cached_and_keyed_by_the_weights(eager, exported, cache):
    from glue_ros.backends.lightglue_runtime import LightGlueRuntime

    first = exported.runtime.onnx_path
    assert first.parent == cache / 'onnx' and f'_k{K}_' in first.name
    stamp = first.stat().st_mtime_ns
    again = LightGlueRuntime(eager.lightglue, 'onnxruntime', K, cache_dir=cache)
    assert again.onnx_path == first and first.stat().st_mtime_ns == stamp
    # Eager-only options (early exit, pruning) do not change the graph: same file.
    adaptive = build_matcher(
        MatcherConfig(max_keypoints=K, backend='onnxruntime', engine_cache_dir=str(cache))
    )
    assert adaptive.runtime.onnx_path == first
    changed = copy.deepcopy(eager.lightglue)
    with torch.no_grad():
        changed.transformers[0].cross_attn.to_qk.weight.mul_(1.01)
    other = LightGlueRuntime(changed, 'onnxruntime', K, cache_dir=cache)
    assert other.onnx_path != first and other.onnx_path.is_file()


def test_tensorrt_is_refused_with_a_reason(tmp_path):
    """Without TensorRT here (and LightGlue has no engine runner yet), a clear refusal."""
    with pytest.raises(BackendUnavailableError, match='(?i)tensorrt'):
        build_matcher(
            MatcherConfig(max_keypoints=K, backend='tensorrt', engine_cache_dir=str(tmp_path))
        )
    assert not (tmp_path / 'onnx').exists()  # refused before any export work


def test_exported_backends_say_they_have_no_early_exit(eager, exported):
    assert exported.describe()['early_exit'] is False
    assert exported.describe()['backend'] == 'onnxruntime'
    assert exported.supports_early_exit is False
    assert eager.describe()['early_exit'] is True and LightGlueMatcher.supports_early_exit
    assert exported.runtime.providers == ['CPUExecutionProvider']


def test_exported_graph_refuses_live_threshold_changes(tmp_path):
    from dataclasses import replace

    config = MatcherConfig(max_keypoints=64, backend='onnxruntime', engine_cache_dir=str(tmp_path))
    matcher = build_matcher(config)
    matcher.retune(replace(matcher.config))  # nothing changed: accepted
    with pytest.raises(ValueError, match='match_threshold cannot change'):
        matcher.retune(replace(matcher.config, match_threshold=0.5))
    eager = build_matcher(MatcherConfig(max_keypoints=64))
    eager.retune(replace(eager.config, match_threshold=0.5, depth_confidence=-1.0))
    assert eager.lightglue.conf['filter_threshold'] == 0.5
    assert not eager.lightglue.conf['depth_confidence'] > 0
