"""Inference backends: ONNX export, ONNX Runtime, TensorRT engine cache and availability."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from glue_ros.backends import engine_cache
from glue_ros.backends.coarse_loftr_onnxruntime import CoarseLoFTROnnxRuntime
from glue_ros.backends.coarse_loftr_runtime import CoarseLoFTRRuntime
from glue_ros.backends.coarse_loftr_tensorrt import CoarseLoFTRTensorRT
from glue_ros.backends.engine_cache import EngineCache, EngineKey, make_key
from glue_ros.backends.onnxruntime_session import select_providers
from glue_ros.backends.tensorrt_support import (
    check_tensorrt_available,
    has_fast_fp16,
    resolve_precision,
)
from glue_ros.core import data_files
from glue_ros.core.errors import BackendUnavailableError
from glue_ros.models.coarse_loftr import (
    CoarseLoFTR,
    cached_onnx_export,
    export_onnx,
    select_matches,
)

pytestmark = pytest.mark.slow  # exports coarse LoFTR to ONNX

WEIGHTS = data_files.data_file(data_files.COARSE_LOFTR_WEIGHTS)
REFERENCE = data_files.data_file(data_files.COARSE_LOFTR_REFERENCE)
GRID = (30, 40)

DATA_MISSING = data_files.missing_reason(
    data_files.COARSE_LOFTR_WEIGHTS
) or data_files.missing_reason(data_files.COARSE_LOFTR_REFERENCE)
needs_data = pytest.mark.skipif(bool(DATA_MISSING), reason=DATA_MISSING)


def _tensorrt_problem():
    try:
        check_tensorrt_available()
    except BackendUnavailableError as exc:
        return str(exc)
    return ''


TRT_PROBLEM = _tensorrt_problem()
needs_tensorrt = pytest.mark.skipif(bool(TRT_PROBLEM), reason=TRT_PROBLEM or 'available')


def _pairs(i, j):
    return set(zip(np.asarray(i).tolist(), np.asarray(j).tolist()))


@pytest.fixture(scope='module')
def model():
    return CoarseLoFTR.from_checkpoint(WEIGHTS)


@pytest.fixture(scope='module')
def images():
    data = np.load(REFERENCE)
    return [(data[k].astype(np.float32) / 255.0)[None, None] for k in ('image0', 'image1')]


@pytest.fixture(scope='module')
def torch_conf(model, images):
    with torch.inference_mode():
        return model(*(torch.from_numpy(i) for i in images)).numpy()


@pytest.fixture(scope='module')
def onnx_path(model, tmp_path_factory):
    return export_onnx(
        model, tmp_path_factory.mktemp('onnx') / 'student.onnx', (640, 480), opset=17
    )


# ----------------------------------------------------------------------------- ONNX
@needs_data
def test_onnx_export_is_fixed_size(onnx_path):
    import onnx

    graph = onnx.load(str(onnx_path)).graph
    shapes = {
        v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in list(graph.input) + list(graph.output)
    }
    assert shapes == {
        'image0': [1, 1, 480, 640],
        'image1': [1, 1, 480, 640],
        'conf_matrix': [1, 1200, 1200],
    }
    assert not [n.op_type for n in graph.node if n.op_type in ('NonZero', 'Loop', 'If')]


@needs_data
def test_onnxruntime_cpu_equals_torch(onnx_path, images, torch_conf):
    backend = CoarseLoFTROnnxRuntime(onnx_path, device='cpu', intra_op_num_threads=2)
    assert backend.providers == ['CPUExecutionProvider']
    conf = backend(*images)
    assert conf.shape == (1, 1200, 1200) and conf.dtype == np.float32
    assert np.abs(conf - torch_conf).max() < 1e-4
    ours = select_matches(conf, GRID, GRID, 0.2, 2)
    ref = select_matches(torch_conf, GRID, GRID, 0.2, 2)
    assert len(ref[0]) > 100 and _pairs(ours[0], ours[1]) == _pairs(ref[0], ref[1])
    with pytest.raises(ValueError, match='exported shape'):
        backend(np.zeros((1, 1, 240, 320), np.float32), images[1])


@needs_data
def test_matcher_onnxruntime_backend_and_export_cache(tmp_path, images):
    image0, image1 = ((i[0, 0] * 255).round().astype(np.uint8) for i in images)
    reference = CoarseLoFTRRuntime('torch', weights=WEIGHTS).match(image0, image1)
    matcher = CoarseLoFTRRuntime('onnxruntime', weights=WEIGHTS, cache_dir=tmp_path, num_threads=2)
    out = matcher.match(image0, image1)
    expected = _pairs(reference['indices0'], reference['indices1'])
    assert _pairs(out['indices0'], out['indices1']) == expected
    np.testing.assert_allclose(out['points0'], reference['points0'])
    exported = list((tmp_path / 'onnx').glob('*.onnx'))
    assert len(exported) == 1 and matcher.onnx_path == exported[0]
    stamp = exported[0].stat().st_mtime_ns
    again = CoarseLoFTRRuntime('onnxruntime', weights=WEIGHTS, cache_dir=tmp_path)
    assert again.onnx_path == exported[0] and exported[0].stat().st_mtime_ns == stamp
    # A pre-exported model runs without weights.
    direct = CoarseLoFTRRuntime('onnxruntime', onnx_path=exported[0], num_threads=2)
    assert direct.model is None
    np.testing.assert_array_equal(direct.match(image0, image1)['indices1'], out['indices1'])


def test_onnx_export_cache_key_follows_the_model(tmp_path):
    torch.manual_seed(0)
    model = CoarseLoFTR()
    first = cached_onnx_export(model, tmp_path, (64, 48))
    assert cached_onnx_export(model, tmp_path, (64, 48)) == first
    assert cached_onnx_export(model, tmp_path, (64, 32)) != first
    with torch.no_grad():
        model.loftr_coarse.layers[0].merge.weight.mul_(2)
    assert cached_onnx_export(model, tmp_path, (64, 48)) != first


def test_onnxruntime_backend_without_weights(tmp_path):
    """The two-image wrapper over the generic session, on a random small model (no data)."""
    pytest.importorskip('onnxruntime')
    torch.manual_seed(0)
    model = CoarseLoFTR().eval()
    backend = CoarseLoFTROnnxRuntime(
        cached_onnx_export(model, tmp_path, (64, 48)), intra_op_num_threads=2
    )
    images = [torch.rand(1, 1, 48, 64) for _ in range(2)]
    with torch.no_grad():
        expected = model(*images).numpy()
    conf = backend(*(i.numpy() for i in images))
    assert conf.shape == expected.shape == (1, 12, 12) and conf.dtype == np.float32
    assert np.abs(conf - expected).max() < 1e-4
    assert backend.run({n: i.numpy() for n, i in zip(backend.input_names, images)})[
        'conf_matrix'
    ].shape == (1, 12, 12)
    with pytest.raises(ValueError, match='exported shape'):
        backend(np.zeros((1, 1, 32, 64), np.float32), images[1].numpy())
    with pytest.raises(ValueError, match='missing inputs'):
        backend.run({'image0': images[0].numpy()})


def test_provider_selection():
    everything = ['TensorrtExecutionProvider', 'CUDAExecutionProvider', 'CPUExecutionProvider']
    assert select_providers('cpu', everything) == ['CPUExecutionProvider']
    providers = select_providers('cuda:1', everything, fp16=False)
    assert [p[0] if isinstance(p, tuple) else p for p in providers] == everything
    assert providers[0][1]['device_id'] == 1 and providers[0][1]['trt_fp16_enable'] is False
    assert select_providers('auto', ['CPUExecutionProvider']) == ['CPUExecutionProvider']
    with pytest.raises(BackendUnavailableError, match='onnxruntime-gpu'):
        select_providers('cuda', ['CPUExecutionProvider'])


# ----------------------------------------------------------------------------- engine cache
KEY = EngineKey('ab' * 32, (640, 480), 'fp16', 'NVIDIA Orin', (8, 7), '10.3.0')


class FakeTensorRT:
    """Stands in for TensorRT's builder and runtime: an 'engine' is bytes with a header."""

    def __init__(self):
        self.builds = 0
        self.deserialised = 0

    def build(self):
        self.builds += 1
        return b'ENGINE:' + KEY.digest().encode() + b':%d' % self.builds

    def deserialize(self, data):
        self.deserialised += 1
        if not data.startswith(b'ENGINE:'):
            raise RuntimeError('Serialization assertion failed: magic tag mismatch')
        return {'engine': data}


@pytest.mark.parametrize(
    'field, value',
    [
        ('onnx_sha256', 'cd' * 32),
        ('input_size', (320, 240)),
        ('precision', 'fp32'),
        ('gpu_name', 'NVIDIA GeForce RTX 3060'),
        ('compute_capability', (8, 6)),
        ('tensorrt_version', '10.4.0'),
    ],
)
def test_engine_key_changes_with_each_component(field, value, tmp_path):
    other = dataclasses.replace(KEY, **{field: value})
    assert other.digest() != KEY.digest()
    cache = EngineCache(tmp_path)
    assert cache.paths(other)[0] != cache.paths(KEY)[0]


def test_engine_key_from_onnx_file(tmp_path):
    onnx_file = tmp_path / 'm.onnx'
    onnx_file.write_bytes(b'model-a')
    key = make_key(onnx_file, [640, 480], 'fp16', 'gpu', [8, 7], '10.3.0')
    assert key.input_size == (640, 480) and key.compute_capability == (8, 7)
    onnx_file.write_bytes(b'model-b')
    assert make_key(onnx_file, (640, 480), 'fp16', 'gpu', (8, 7), '10.3.0') != key


def test_default_engine_dir(monkeypatch, tmp_path):
    monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
    assert engine_cache.default_engine_dir() == tmp_path / 'glue_ros' / 'engines'
    monkeypatch.delenv('XDG_CACHE_HOME')
    monkeypatch.setenv('HOME', str(tmp_path / 'home'))
    assert EngineCache().cache_dir == tmp_path / 'home' / '.cache' / 'glue_ros' / 'engines'


def test_engine_built_once_then_reused(tmp_path):
    fake = FakeTensorRT()
    engine, how = EngineCache(tmp_path).load_or_build(KEY, fake.build, fake.deserialize)
    assert how == 'built' and fake.builds == 1
    engine_file, meta_file = EngineCache(tmp_path).paths(KEY)
    assert engine_file.read_bytes() == engine['engine']
    assert json.loads(meta_file.read_text())['key'] == KEY.to_dict()
    again, how = EngineCache(tmp_path).load_or_build(KEY, fake.build, fake.deserialize)
    assert how == 'reused' and fake.builds == 1 and again == engine
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([engine_file.name, meta_file.name])


def test_corrupt_engine_is_rebuilt(tmp_path):
    fake = FakeTensorRT()
    cache = EngineCache(tmp_path)
    cache.load_or_build(KEY, fake.build, fake.deserialize)
    engine_file = cache.paths(KEY)[0]
    engine_file.write_bytes(engine_file.read_bytes()[:9])  # truncated
    engine, how = cache.load_or_build(KEY, fake.build, fake.deserialize)
    assert how == 'rebuilt' and fake.builds == 2
    assert engine_file.read_bytes() == engine['engine']
    assert cache.load_or_build(KEY, fake.build, fake.deserialize)[1] == 'reused'


def test_engine_that_fails_to_deserialise_is_rebuilt(tmp_path):
    fake = FakeTensorRT()
    cache = EngineCache(tmp_path)
    cache.load_or_build(KEY, fake.build, fake.deserialize)
    engine_file, meta_file = cache.paths(KEY)
    garbage = b'\x00not an engine'
    engine_file.write_bytes(garbage)  # consistent metadata, so only TensorRT can tell
    meta = json.loads(meta_file.read_text())
    meta['engine_sha256'] = __import__('hashlib').sha256(garbage).hexdigest()
    meta_file.write_text(json.dumps(meta))
    engine, how = cache.load_or_build(KEY, fake.build, fake.deserialize)
    assert how == 'rebuilt' and fake.builds == 2 and engine['engine'].startswith(b'ENGINE:')
    # A deserialiser that answers None (TensorRT's way) counts as a failure too.
    engine_file.write_bytes(garbage)
    meta_file.write_text(json.dumps(meta))
    _, how = cache.load_or_build(KEY, fake.build, lambda d: None if d == garbage else d)
    assert how == 'rebuilt' and fake.builds == 3


@pytest.mark.parametrize('tamper', ['foreign_key', 'missing_meta', 'broken_meta'])
def test_foreign_engine_is_rebuilt(tmp_path, tamper):
    fake = FakeTensorRT()
    cache = EngineCache(tmp_path)
    cache.load_or_build(KEY, fake.build, fake.deserialize)
    engine_file, meta_file = cache.paths(KEY)
    if tamper == 'foreign_key':  # e.g. copied from another machine under our name
        meta = json.loads(meta_file.read_text())
        meta['key']['gpu_name'] = 'NVIDIA Jetson Xavier'
        meta['key']['compute_capability'] = [7, 2]
        meta_file.write_text(json.dumps(meta))
    elif tamper == 'missing_meta':
        meta_file.unlink()
    else:
        meta_file.write_text('{"key": ')
    _, how = cache.load_or_build(KEY, fake.build, fake.deserialize)
    assert how == 'rebuilt' and fake.builds == 2
    assert json.loads(meta_file.read_text())['key'] == KEY.to_dict()


def test_freshly_built_engine_must_deserialise(tmp_path):
    cache = EngineCache(tmp_path)
    with pytest.raises(RuntimeError, match='cannot be deserialised'):
        cache.load_or_build(KEY, lambda: b'bad', lambda data: None)
    assert not cache.paths(KEY)[0].exists()


def test_unwritable_cache_still_returns_engine(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('not a folder')
    fake = FakeTensorRT()
    cache = EngineCache(blocker / 'engines')
    engine, how = cache.load_or_build(KEY, fake.build, fake.deserialize)
    assert how == 'built' and engine['engine'].startswith(b'ENGINE:')


# ----------------------------------------------------------------------------- TensorRT
def test_precision_resolution():
    assert resolve_precision('auto', (8, 7)) == 'fp16'  # Orin
    assert resolve_precision('auto', (6, 1)) == 'fp32'  # GTX 10xx: slow FP16
    assert resolve_precision('fp32', (8, 9)) == 'fp32'
    assert has_fast_fp16((5, 3)) and has_fast_fp16((7, 2)) and not has_fast_fp16((5, 2))
    with pytest.raises(ValueError):
        resolve_precision('int8', (8, 7))


@pytest.mark.skipif(not TRT_PROBLEM, reason='TensorRT and a CUDA GPU are available here')
def test_tensorrt_unavailable_is_reported(tmp_path):
    onnx_file = tmp_path / 'm.onnx'
    onnx_file.write_bytes(b'')
    with pytest.raises(BackendUnavailableError, match='TensorRT backend unavailable'):
        CoarseLoFTRTensorRT(onnx_file, cache_dir=tmp_path)
    with pytest.raises(BackendUnavailableError, match='TensorRT backend unavailable'):
        CoarseLoFTRRuntime('tensorrt', weights=WEIGHTS, cache_dir=tmp_path)


@needs_data
@needs_tensorrt
@pytest.mark.parametrize('precision', ['fp32', 'fp16'])
def test_tensorrt_engine_matches_torch_and_is_cached(
    onnx_path, images, torch_conf, tmp_path, precision
):
    backend = CoarseLoFTRTensorRT(onnx_path, precision=precision, cache_dir=tmp_path)
    assert backend.how == 'built'
    conf = backend(*images).cpu().numpy()
    diff = np.abs(conf - torch_conf).max()
    ours = select_matches(conf, GRID, GRID, 0.2, 2)
    ref = select_matches(torch_conf, GRID, GRID, 0.2, 2)
    if precision == 'fp32':
        assert diff < 1e-4 and _pairs(ours[0], ours[1]) == _pairs(ref[0], ref[1])
    else:  # FP16 moves confidences near the threshold; most matches must survive
        common = _pairs(ours[0], ours[1]) & _pairs(ref[0], ref[1])
        assert diff < 0.05 and len(common) >= 0.9 * len(ref[0])
    again = CoarseLoFTRTensorRT(onnx_path, precision=precision, cache_dir=tmp_path)
    assert again.how == 'reused'
    np.testing.assert_array_equal(again(*images).cpu().numpy(), conf)
