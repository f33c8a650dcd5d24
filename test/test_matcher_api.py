"""The matcher API the node, the CLI and the benchmark share."""

import numpy as np
import pytest

from glue_ros.core.errors import InputImageError, WeightsError
from glue_ros.matcher import MatcherConfig, build_matcher
from glue_ros.testing import real_images


@pytest.fixture(scope='module')
def matcher():
    return build_matcher(MatcherConfig(max_keypoints=1024))


@pytest.fixture(scope='module')
def pair():
    return real_images.homography_pair('coffee', roll_deg=10, zoom=1.1, tilt=0.2)


def test_extract_once_match_cached(matcher, pair):
    image0, image1, H = pair
    f0, f1 = matcher.extract(image0), matcher.extract(image1)
    first, again = matcher.match(f0, f1), matcher.match(f0, f1)
    np.testing.assert_array_equal(first.indices0, again.indices0)
    full = matcher.match_images(image0, image1)
    np.testing.assert_array_equal(first.indices0, full.indices0)
    assert set(full.timing_ms) >= {'extract', 'match', 'total'}
    assert np.all(np.diff(full.scores) <= 0), 'matches sorted by confidence'
    errors = real_images.homography_errors(H, full.points0, full.points1)
    assert len(errors) > 200 and np.mean(errors < 3.0) > 0.75


def test_features_from_another_matcher_are_matched_too(matcher, pair):
    """Features keep LightGlue's per-image work for their own matcher; another one redoes it."""
    image0, image1, _ = pair
    other = build_matcher(MatcherConfig(max_keypoints=1024))
    f0, f1 = matcher.extract(image0), matcher.extract(image1)
    mine, theirs = matcher.match(f0, f1), other.match(f0, f1)
    np.testing.assert_array_equal(mine.indices0, theirs.indices0)
    np.testing.assert_array_equal(mine.indices1, theirs.indices1)


def test_blank_image_gives_an_empty_result(matcher, pair):
    blank = np.full((480, 640, 3), 128, np.uint8)
    result = matcher.match_images(blank, pair[0])
    assert len(result) == 0 and result.num_keypoints0 == 0
    assert result.points0.shape == (0, 2)


@pytest.mark.parametrize(
    'image, message',
    [
        (np.zeros((0, 0), np.uint8), 'too small'),
        (np.zeros((8, 640), np.uint8), 'too small'),
        (np.zeros((32, 32, 2), np.uint8), 'shape'),
        ('not an image', 'numpy'),
    ],
)
def test_unusable_images_raise_input_errors(matcher, image, message):
    with pytest.raises(InputImageError, match=message):
        matcher.extract(image)


def test_missing_weights_are_named(tmp_path):
    with pytest.raises(WeightsError, match='not found'):
        build_matcher(MatcherConfig(weights=str(tmp_path / 'nope.pt')))
    with pytest.raises(WeightsError, match='(?i)superpoint'):
        build_matcher(MatcherConfig(features='superpoint'))


@pytest.mark.parametrize(
    'change, name',
    [
        ({'matcher': 'sift'}, 'matcher'),
        ({'max_keypoints': 0}, 'max_keypoints'),
        ({'depth_confidence': 1.5}, 'depth_confidence'),
        ({'backend': 'openvino'}, 'backend'),
        ({'precision': 'bf16', 'device': 'cuda'}, 'precision'),
        ({'precision': 'bf16', 'backend': 'onnxruntime'}, 'precision'),
        ({'input_size': (600, 480)}, 'input_size'),
    ],
)
def test_bad_settings_name_the_setting(change, name):
    with pytest.raises(ValueError, match=name):
        MatcherConfig(**change).validate()


@pytest.mark.slow  # bf16 attention is slow on CPUs without AMX
def test_bf16_attention_keeps_the_matches(pair):
    image0, image1, H = pair
    fp32 = build_matcher(MatcherConfig(max_keypoints=1024, precision='fp32'))
    bf16 = build_matcher(MatcherConfig(max_keypoints=1024, precision='bf16'))
    f0, f1 = fp32.extract(image0), fp32.extract(image1)
    a, b = fp32.match(f0, f1), bf16.match(f0, f1)
    same = set(zip(a.indices0.tolist(), a.indices1.tolist())) & set(
        zip(b.indices0.tolist(), b.indices1.tolist())
    )
    assert len(same) >= 0.95 * len(a)
    errors = real_images.homography_errors(H, b.points0, b.points1)
    reference = real_images.homography_errors(H, a.points0, a.points1)
    assert np.mean(errors < 3.0) >= np.mean(reference < 3.0) - 0.01


def test_auto_precision_follows_the_cpu():
    """bf16 attention only where the CPU has AMX (where it was measured to pay); fp16 on CUDA."""
    auto = MatcherConfig()
    assert auto.precision == 'auto'
    assert auto.resolved_precision({'avx512f', 'avx512_bf16'}) == 'fp32'  # measured: no gain
    assert auto.resolved_precision({'amx_bf16', 'amx_tile', 'avx512_bf16'}) == 'bf16'
    assert auto.resolved_precision({'avx2', 'avx512f', 'fma'}) == 'fp32'  # emulated: slower
    assert auto.resolved_precision(set()) == 'fp32'
    assert MatcherConfig(matcher='coarse_loftr').resolved_precision({'amx_bf16'}) == 'fp32'
    assert MatcherConfig(precision='fp32').resolved_precision({'amx_bf16'}) == 'fp32'
    # bf16 attention is eager LightGlue's; the exported graph runs in float32 on the CPU.
    assert MatcherConfig(backend='onnxruntime').resolved_precision({'amx_bf16'}) == 'fp32'
    assert MatcherConfig(device='cuda').resolved_precision(set()) == 'fp16'


def test_file_settings_take_paths_as_well_as_strings(tmp_path):
    """A Path for a weights file or the cache folder is as good as its string."""
    config = MatcherConfig(
        matcher='coarse_loftr', weights=tmp_path / 'w.pt', engine_cache_dir=tmp_path
    ).validate()
    assert config.values()['weights'] == str(tmp_path / 'w.pt')
    assert config.values()['engine_cache_dir'] == str(tmp_path)
