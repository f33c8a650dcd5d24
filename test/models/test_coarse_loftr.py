"""Coarse LoFTR: parity with the original implementation, checkpoints, match selection."""

import numpy as np
import pytest
import torch

from glue_ros.backends.coarse_loftr_runtime import CoarseLoFTRRuntime
from glue_ros.core import data_files
from glue_ros.core.errors import InputImageError, WeightsError
from glue_ros.models.coarse_loftr import (
    CoarseLoFTR,
    cell_centers,
    default_conf,
    loftr_outdoor_conf,
    select_matches,
    sine_positional_encoding,
)

WEIGHTS = data_files.data_file(data_files.COARSE_LOFTR_WEIGHTS)
REFERENCE = data_files.data_file(data_files.COARSE_LOFTR_REFERENCE)
GRID = (30, 40)  # 480x640 input at stride 16

WEIGHTS_MISSING = data_files.missing_reason(data_files.COARSE_LOFTR_WEIGHTS)
needs_weights = pytest.mark.skipif(bool(WEIGHTS_MISSING), reason=WEIGHTS_MISSING)
REFERENCE_MISSING = WEIGHTS_MISSING or data_files.missing_reason(data_files.COARSE_LOFTR_REFERENCE)
needs_reference = pytest.mark.skipif(bool(REFERENCE_MISSING), reason=REFERENCE_MISSING)


def _as_tensor(image):
    return torch.from_numpy(image.astype(np.float32) / 255.0)[None, None]


def _pairs(i, j):
    return set(zip(np.asarray(i).tolist(), np.asarray(j).tolist()))


@pytest.fixture(scope='module')
def student():
    return CoarseLoFTR.from_checkpoint(WEIGHTS)


@pytest.fixture(scope='module')
def reference():
    return dict(np.load(REFERENCE))


@pytest.fixture(scope='module')
def torch_conf(student, reference):
    with torch.inference_mode():
        return student(_as_tensor(reference['image0']), _as_tensor(reference['image1']))


@pytest.fixture(scope='module')
def matcher():
    return CoarseLoFTRRuntime('torch', (640, 480), weights=WEIGHTS)


# ----------------------------------------------------------------------------- parity
@needs_reference
def test_conf_matrix_matches_reference(torch_conf, reference):
    assert torch_conf.shape == (1, 1200, 1200)
    diff = np.abs(torch_conf[0].numpy() - reference['conf_matrix']).max()
    # Same network, other kernels/machine: d_model 32 and 4 linear-attention layers sum over
    # <= 1200 cells, ~sqrt(1200) * eps ~ 2e-6 relative per sum; confidences are dual-softmax
    # probabilities <= 1, so 1e-4 leaves a decade and more on any x86 kernel set.
    assert diff < 1e-4, f'max abs diff {diff}'


@needs_reference
def test_selected_matches_equal_reference_selection(torch_conf, reference):
    ours = select_matches(torch_conf, GRID, GRID, threshold=0.2, border_rm=2)
    ref = select_matches(reference['conf_matrix'], GRID, GRID, threshold=0.2, border_rm=2)
    assert len(ref[0]) > 100  # a real pair: hundreds of coarse matches
    assert _pairs(ours[0], ours[1]) == _pairs(ref[0], ref[1])
    np.testing.assert_allclose(ours[2].numpy(), ref[2], atol=1e-4)


@needs_reference
def test_matcher_matches_reference_selection(matcher, reference):
    out = matcher.match(reference['image0'], reference['image1'])
    ref_i, ref_j, _ = select_matches(reference['conf_matrix'], GRID, GRID, 0.2, 2)
    assert _pairs(out['indices0'], out['indices1']) == _pairs(ref_i, ref_j)
    for name, dtype in (
        ('points0', np.float32),
        ('points1', np.float32),
        ('scores', np.float32),
        ('indices0', np.int32),
        ('indices1', np.int32),
    ):
        assert out[name].dtype == dtype
        assert out[name].shape[0] == len(ref_i)
    # Cell centres on the 16 px grid of the (here unscaled) network input.
    np.testing.assert_array_equal((out['points0'] + 0.5) % 16, 8.0)
    np.testing.assert_array_equal(out['points0'][:, 0], (out['indices0'] % 40) * 16 + 7.5)
    np.testing.assert_array_equal(out['points0'][:, 1], (out['indices0'] // 40) * 16 + 7.5)
    assert (out['scores'] > 0.2).all()


# ----------------------------------------------------------------------------- input sizes
@needs_reference
def test_points_map_back_to_input_pixels(matcher, reference):
    base = matcher.match(reference['image0'], reference['image1'])
    # 2x nearest upsampling: INTER_AREA brings it back to exactly the reference image.
    big0 = np.repeat(np.repeat(reference['image0'], 2, axis=0), 2, axis=1)
    big1 = np.repeat(np.repeat(reference['image1'], 2, axis=0), 2, axis=1)
    assert big0.shape == (960, 1280)
    out = matcher.match(big0, big1)
    np.testing.assert_array_equal(out['indices0'], base['indices0'])
    np.testing.assert_array_equal(out['indices1'], base['indices1'])
    np.testing.assert_array_equal(out['scores'], base['scores'])
    # Pixel-edge coordinates (x + 0.5) scale by 2: the centre of a 16 px cell becomes the
    # centre of the 32 px block it came from.
    np.testing.assert_allclose(out['points0'] + 0.5, 2 * (base['points0'] + 0.5))
    np.testing.assert_allclose(out['points1'] + 0.5, 2 * (base['points1'] + 0.5))
    # Mixed sizes: each image is scaled back with its own factor.
    mixed = matcher.match(big0, reference['image1'])
    np.testing.assert_array_equal(mixed['indices0'], base['indices0'])
    np.testing.assert_allclose(mixed['points0'], out['points0'])
    np.testing.assert_allclose(mixed['points1'], base['points1'])


@needs_reference
@pytest.mark.parametrize('size', [(800, 500), (333, 250)])
def test_any_input_size_gives_points_inside_the_image(matcher, reference, size):
    import cv2

    width, height = size
    image0 = cv2.resize(reference['image0'], size, interpolation=cv2.INTER_AREA)
    image1 = cv2.resize(reference['image1'], size, interpolation=cv2.INTER_AREA)
    out = matcher.match(image0, image1)
    assert len(out['scores']) > 50
    for points, idx in ((out['points0'], out['indices0']), (out['points1'], out['indices1'])):
        assert (points >= 0).all() and (points[:, 0] < width).all()
        assert (points[:, 1] < height).all()
        expected = (cell_centers(idx, 40, 16) + 0.5) * [width / 640, height / 480] - 0.5
        np.testing.assert_allclose(points, expected, rtol=1e-6, atol=1e-4)


@needs_weights
@pytest.mark.parametrize(
    'bad',
    [
        np.zeros((48, 64, 3), np.uint8),
        np.zeros((48, 64), np.float32),
        np.zeros((0, 64), np.uint8),
        [[1, 2], [3, 4]],
    ],
)
def test_matcher_rejects_unsupported_images(matcher, bad):
    with pytest.raises(InputImageError):
        matcher.match(bad, np.zeros((48, 64), np.uint8))


@needs_weights
def test_matcher_rejects_input_size_off_the_grid():
    with pytest.raises(ValueError, match='multiples'):
        CoarseLoFTRRuntime('torch', (630, 480), weights=WEIGHTS)
    with pytest.raises(WeightsError, match='no weights'):
        CoarseLoFTRRuntime('torch', (640, 480))


# ----------------------------------------------------------------------------- checkpoints
def _outdoor_style_checkpoint(path, model):
    """LoFTR's own layout: {'state_dict': {'matcher.<name>': tensor}} with fine-stage keys."""
    state = {f'matcher.{k}': v.clone() for k, v in model.state_dict().items()}
    extra = {  # tensors of LoFTR's fine stage and finer FPN levels, unused by the coarse model
        'backbone.layer2_outconv.weight': (256, 196, 1, 1),
        'backbone.layer2_outconv2.0.weight': (256, 256, 3, 3),
        'backbone.layer2_outconv2.1.running_mean': (256,),
        'backbone.layer2_outconv2.3.weight': (196, 256, 3, 3),
        'backbone.layer1_outconv.weight': (196, 128, 1, 1),
        'backbone.layer1_outconv2.3.weight': (128, 196, 3, 3),
        'fine_preprocess.down_proj.weight': (128, 256),
        'fine_preprocess.merge_feat.bias': (128,),
        'loftr_fine.layers.0.q_proj.weight': (128, 128),
        'loftr_fine.layers.1.mlp.2.weight': (128, 256),
    }
    for name, shape in extra.items():
        state[f'matcher.{name}'] = torch.randn(shape)
    torch.save({'epoch': 30, 'global_step': 1, 'state_dict': state}, path)


def test_loftr_outdoor_checkpoint_format_loads(tmp_path):
    torch.manual_seed(0)
    source = CoarseLoFTR(**loftr_outdoor_conf)
    for module in source.modules():  # non-trivial BN statistics
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    path = tmp_path / 'outdoor_ds.ckpt'
    _outdoor_style_checkpoint(path, source)
    loaded = CoarseLoFTR.from_checkpoint(path, **loftr_outdoor_conf)
    assert loaded.stride == 8
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    images = torch.rand(1, 1, 64, 80), torch.rand(1, 1, 64, 80)
    with torch.inference_mode():
        conf = loaded(*images)
        assert torch.equal(conf, source(*images))
    assert conf.shape == (1, 80, 80)
    rows = conf[0].sum(dim=1)
    assert (rows <= 1 + 1e-5).all()


@needs_weights
def test_student_checkpoint_layout(student):
    raw = torch.load(WEIGHTS, map_location='cpu', weights_only=True)
    assert 'model_state_dict' in raw
    # The finer FPN levels of the student are in the file but not in the model.
    assert 'backbone.layer3_outconv.weight' in raw['model_state_dict']
    assert 'backbone.layer3_outconv.weight' not in student.state_dict()
    assert student.conf == default_conf
    assert student.stride == 16


def test_bare_state_dict_loads(tmp_path):
    torch.manual_seed(1)
    source = CoarseLoFTR()
    path = tmp_path / 'bare.pt'
    torch.save({f'module.{k}': v for k, v in source.state_dict().items()}, path)
    loaded = CoarseLoFTR.from_checkpoint(path)
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / 'noise.pt'
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(WeightsError, match='cannot read weights file'):
        CoarseLoFTR.from_checkpoint(path)
    with pytest.raises(WeightsError, match='not found'):
        CoarseLoFTR.from_checkpoint(tmp_path / 'missing.pt')
    torch.save({'epoch': 3, 'note': 'no tensors'}, tmp_path / 'meta.pt')
    with pytest.raises(WeightsError, match='not a CoarseLoFTR/LoFTR checkpoint'):
        CoarseLoFTR.from_checkpoint(tmp_path / 'meta.pt')


def test_checkpoint_with_random_tensors(tmp_path):
    path = tmp_path / 'random.pt'
    torch.save(
        {'model_state_dict': {'encoder.weight': torch.randn(4, 4), 'head.bias': torch.randn(4)}},
        path,
    )
    with pytest.raises(WeightsError) as err:
        CoarseLoFTR.from_checkpoint(path)
    message = str(err.value)
    assert 'missing' in message and 'backbone.conv1.weight' in message
    assert 'unexpected' in message and 'encoder.weight' in message


@needs_weights
def test_checkpoint_with_wrong_shapes(tmp_path):
    # The student's file against the original LoFTR configuration.
    with pytest.raises(WeightsError) as err:
        CoarseLoFTR.from_checkpoint(WEIGHTS, **loftr_outdoor_conf)
    assert 'wrong shape' in str(err.value)
    assert 'backbone.conv1.weight: file (8, 1, 7, 7) vs model (128, 1, 7, 7)' in str(err.value)


def test_checkpoint_sinkhorn_and_nan_rejected(tmp_path):
    state = dict(CoarseLoFTR().state_dict())
    torch.save(
        {'state_dict': {**state, 'coarse_matching.bin_score': torch.tensor(1.0)}},
        tmp_path / 'ot.ckpt',
    )
    with pytest.raises(WeightsError, match='sinkhorn'):
        CoarseLoFTR.from_checkpoint(tmp_path / 'ot.ckpt')
    state['loftr_coarse.layers.0.q_proj.weight'] = torch.full((32, 32), float('nan'))
    torch.save({'model_state_dict': state}, tmp_path / 'nan.pt')
    with pytest.raises(WeightsError, match='non-finite.*q_proj'):
        CoarseLoFTR.from_checkpoint(tmp_path / 'nan.pt')


# ----------------------------------------------------------------------------- components
def test_select_matches_rules():
    grid = (6, 6)
    conf = np.full((36, 36), 0.01, np.float32)
    cell = lambda r, c: r * 6 + c  # noqa: E731
    conf[cell(2, 2), cell(3, 3)] = 0.9  # kept
    conf[cell(2, 3), cell(2, 2)] = 0.2  # not above the threshold (strictly greater)
    conf[cell(3, 2), cell(3, 2)] = 0.6  # kept ...
    conf[cell(3, 3), cell(3, 2)] = 0.7  # ... no: column max is this row; this one kept
    conf[cell(1, 3), cell(3, 3)] = 0.95  # border cell in image0: dropped, but it is the
    #                                           column max, so (2,2)->(3,3) is not mutual
    conf[cell(2, 3), cell(2, 3)] = 0.5
    conf[cell(2, 3), cell(0, 0)] = 0.8  # row max in image1's border: dropped
    i, j, s = select_matches(conf, grid, grid, threshold=0.2, border_rm=2)
    assert _pairs(i, j) == {(cell(3, 3), cell(3, 2))}
    np.testing.assert_allclose(s, [0.7])
    i, j, _ = select_matches(conf, grid, grid, threshold=0.2, border_rm=1)
    assert _pairs(i, j) == {(cell(1, 3), cell(3, 3)), (cell(3, 3), cell(3, 2))}
    # Torch gives the same answer, with the same types of result.
    ti, tj, ts = select_matches(torch.from_numpy(conf)[None], grid, grid, 0.2, 1)
    assert isinstance(ti, torch.Tensor) and _pairs(ti, tj) == _pairs(i, j)
    # Exact ties stay one-to-one.
    tie = np.zeros((36, 36), np.float32)
    tie[cell(2, 2), cell(2, 2)] = tie[cell(2, 2), cell(2, 3)] = 0.5
    tie[cell(2, 3), cell(2, 2)] = 0.5
    i, j, _ = select_matches(tie, grid, grid, 0.2, 2)
    assert len(set(i.tolist())) == len(i) and len(set(j.tolist())) == len(j) == 1
    with pytest.raises(ValueError, match='does not fit'):
        select_matches(conf, (5, 6), grid)


def test_positional_encoding_frequencies():
    pe = sine_positional_encoding(32, 3, 5, temp_bug_fix=False)
    assert pe.shape == (1, 32, 3, 5)
    # Buggy (trained) frequencies exp(-2k); x counts from 1 along the width.
    np.testing.assert_allclose(
        pe[0, 4, 0, :].numpy(), np.sin(np.arange(1, 6) * np.exp(-2.0)), rtol=1e-5
    )
    np.testing.assert_allclose(
        pe[0, 7, :, 0].numpy(), np.cos(np.arange(1, 4) * np.exp(-2.0)), rtol=1e-5
    )
    fixed = sine_positional_encoding(32, 3, 5, temp_bug_fix=True)
    freq = 10000 ** (-2 / 16)
    np.testing.assert_allclose(
        fixed[0, 4, 0, :].numpy(), np.sin(np.arange(1, 6) * freq), rtol=1e-5
    )


def test_configuration_is_validated():
    with pytest.raises(ValueError, match='unknown'):
        CoarseLoFTR(dmodel=32)
    with pytest.raises(ValueError, match='stages'):
        CoarseLoFTR(block_dims=[8, 16, 32])
    with pytest.raises(ValueError, match='multiples of 16'):
        CoarseLoFTR()(torch.zeros(1, 1, 40, 64), torch.zeros(1, 1, 48, 64))


def test_different_image_sizes_in_one_pair():
    model = CoarseLoFTR()
    with torch.inference_mode():
        conf = model(torch.rand(1, 1, 64, 96), torch.rand(1, 1, 48, 64))
    assert conf.shape == (1, 24, 12)
