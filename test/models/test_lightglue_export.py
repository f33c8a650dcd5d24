"""LightGlue's assignment (blocked and dense), its full-depth graph and the ONNX export of it.

The data and the reference features are those of test_lightglue.py.
"""

import numpy as np
import pytest
import torch
from test_lightglue import reference_features, run

from glue_ros.models.lightglue import LightGlue, LightGlueFullDepth, assign_matches, export_onnx


@pytest.fixture(scope='module')
def features():
    return reference_features()


# ---------------------------------------------------------------------------- assignment


def test_blocked_assignment_equals_dense():
    gen = torch.Generator().manual_seed(1)
    n, m, d = 900, 700, 96
    mdesc0 = torch.randn(n, d, generator=gen) * 0.6
    mdesc1 = torch.cat(
        [
            mdesc0[:500] + 0.2 * torch.randn(500, d, generator=gen),
            torch.randn(m - 500, d, generator=gen) * 0.6,
        ]
    )
    z0, z1 = torch.randn(n, generator=gen) + 2, torch.randn(m, generator=gen) + 2
    dense = assign_matches(mdesc0, mdesc1, z0, z1, 0.1)
    assert (dense[0] >= 0).sum() > 300
    # Row blocks may take other GEMM kernels (other accumulation order over d = 96): a
    # similarity moves by up to sqrt(d)..d * eps * sum|a_i b_i| (sum ~ 96 * 0.36 * 0.8 ~ 28,
    # eps = 6e-8: 2e-5..2e-4 at worst); the log-softmax sums over 700 columns add ~log2(700) *
    # eps. Scores are exp(log-assignment) <= 1, so their absolute error is at most that: 2e-4.
    for block in (4096, 50_000, 7 * m + 3):
        blocked = assign_matches(mdesc0, mdesc1, z0, z1, 0.1, block_elements=block)
        assert torch.equal(blocked[0], dense[0]) and torch.equal(blocked[2], dense[2])
        assert torch.allclose(blocked[1], dense[1], atol=2e-4)
        assert torch.allclose(blocked[3], dense[3], atol=2e-4)


def reference_assignment(mdesc0, mdesc1, z0, z1, threshold):
    """The log-assignment of the paper, dense and in float64."""
    sim = mdesc0.double() @ mdesc1.double().T
    scores = (
        sim.log_softmax(1)
        + sim.log_softmax(0)
        + torch.nn.functional.logsigmoid(z0.double())[:, None]
        + torch.nn.functional.logsigmoid(z1.double())[None]
    )
    arg0, arg1 = scores.argmax(1), scores.argmax(0)
    mutual = arg1[arg0] == torch.arange(len(arg0))
    valid = mutual & (scores.max(1).values.exp() > threshold)
    return torch.where(valid, arg0, -1)


def test_assignment_with_a_wide_similarity_range():
    """Rows and columns far below the maximum similarity (exp underflow) stay exact."""
    gen = torch.Generator().manual_seed(3)
    n, m, d = 400, 300, 96
    mdesc0 = torch.randn(n, d, generator=gen)
    mdesc1 = torch.cat(
        [
            mdesc0[:250] + 0.1 * torch.randn(250, d, generator=gen),
            torch.randn(m - 250, d, generator=gen),
        ]
    )
    mdesc0[:5] *= 6.0  # similarities of these rows span hundreds of log units
    mdesc1[-3:] *= 0.01  # columns far below the maximum of the matrix
    z0, z1 = torch.randn(n, generator=gen) + 3, torch.randn(m, generator=gen) + 3
    expected = reference_assignment(mdesc0, mdesc1, z0, z1, 0.1)
    for block in (None, 5000):
        matches0 = assign_matches(mdesc0, mdesc1, z0, z1, 0.1, block_elements=block)[0]
        assert torch.equal(matches0, expected)
    assert (expected >= 0).sum() > 150


def test_assignment_ties_keep_the_first_row():
    """Two identical points of image 0 claim the same column: only the first is matched."""
    gen = torch.Generator().manual_seed(4)
    n, m, d = 60, 50, 96
    mdesc1 = torch.randn(m, d, generator=gen)
    mdesc0 = mdesc1[torch.arange(n) % m] + 0.05 * torch.randn(n, d, generator=gen)
    mdesc0[17] = mdesc0[5]
    z0, z1 = torch.full((n,), 4.0), torch.full((m,), 4.0)
    for block in (None, 3 * m):
        matches0, scores0, matches1, scores1 = assign_matches(
            mdesc0, mdesc1, z0, z1, 0.1, block_elements=block
        )
        column = int(matches0[5])
        assert column == 5 and int(matches1[column]) == 5
        assert int(matches0[17]) == -1 and float(scores0[17]) == 0.0
        assert float(scores1[column]) == float(scores0[5]) > 0.1
        assert torch.equal(matches0, reference_assignment(mdesc0, mdesc1, z0, z1, 0.1))


def test_blocked_assignment_in_the_matcher(features):
    dense = run(LightGlue.for_features('xfeat'), features['astronaut_homography'])
    blocked = run(
        LightGlue.for_features('xfeat', assignment_block_elements=200_000),
        features['astronaut_homography'],
    )
    assert torch.equal(dense['matches'], blocked['matches'])
    # Same argument as test_blocked_assignment_equals_dense (d = 96, scores <= 1).
    assert torch.allclose(dense['scores'], blocked['scores'], atol=2e-4)


# -------------------------------------------------------------------------------- export


def padded(feature, count, limit):
    n = min(limit, feature['keypoints'].shape[0])
    kpts, desc = torch.zeros(1, count, 2), torch.zeros(1, count, 64)
    mask = torch.zeros(1, count, dtype=torch.bool)
    kpts[0, :n], desc[0, :n], mask[0, :n] = (
        feature['keypoints'][:n],
        feature['descriptors'][:n],
        True,
    )
    return kpts, desc, mask, torch.tensor([feature['size']], dtype=torch.float32)


def test_full_depth_graph_matches_the_eager_model(features):
    """Padding and masks do not change the result of a full-depth, unpruned run."""
    lightglue = LightGlue.for_features('xfeat', depth_confidence=-1, width_confidence=-1)
    pair = features['motorcycle']
    static = LightGlueFullDepth(lightglue, 1024)
    assert isinstance(static, LightGlueFullDepth)
    with torch.inference_mode():
        m0, s0, m1, s1 = static(*padded(pair[0], 1024, 900), *padded(pair[1], 1024, 800))
    f0 = {k: v[:900] if torch.is_tensor(v) else v for k, v in pair[0].items()}
    f1 = {k: v[:800] if torch.is_tensor(v) else v for k, v in pair[1].items()}
    eager = run(lightglue, (f0, f1))
    assert torch.equal(m0[0, :900], eager['matches0'])
    assert torch.equal(m1[0, :800], eager['matches1'])
    assert torch.all(m0[0, 900:] == -1) and torch.all(m1[0, 800:] == -1)
    assert_log_scores_close(s0[0, :900], eager['matching_scores0'])


def assert_log_scores_close(scores, expected):
    """Match probabilities equal up to float32 summation order, compared as log-probabilities.

    The padded graph and the eager model differ only in the order of their sums (other matmul
    blocking, 1024 keys instead of 900 / 800, the padded ones adding exact zeros). A float32 sum
    of N terms is off by at most N * eps relative (eps = 2**-23 ~ 1.2e-7): about 1.2e-4 at
    N = 1024, per reduction. Thirteen reductions in a row (6 layers of self and cross attention,
    then the dual softmax) bound the relative error of the log-probabilities by about 1.6e-3, so
    their absolute error grows with their size: |log s - log s_ref| <= 2e-3 * (1 + |log s_ref|).
    Unmatched points have a score of exactly 0 in both.
    """
    zero = expected == 0
    assert torch.equal(scores == 0, zero)
    log_ref = expected[~zero].double().log()
    error = (scores[~zero].double().log() - log_ref).abs()
    bound = 2e-3 * (1 + log_ref.abs())
    assert torch.all(error <= bound), float((error / bound).max())


def test_onnx_export_matches_eager_full_depth(features, tmp_path):
    ort = pytest.importorskip('onnxruntime')
    pytest.importorskip('onnx')
    lightglue = LightGlue.for_features('xfeat')
    path = export_onnx(lightglue, tmp_path / 'lightglue.onnx', num_keypoints=768)
    session = ort.InferenceSession(str(path), providers=['CPUExecutionProvider'])
    pair = features['astronaut_homography']
    inputs = padded(pair[0], 768, 760) + padded(pair[1], 768, 700)
    names = ['kpts0', 'desc0', 'mask0', 'size0', 'kpts1', 'desc1', 'mask1', 'size1']
    assert [i.name for i in session.get_inputs()] == names
    onnx_out = session.run(None, {n: t.numpy() for n, t in zip(names, inputs)})
    with torch.inference_mode():
        torch_out = LightGlueFullDepth(lightglue, 768)(*inputs)
    assert (torch_out[0] >= 0).sum() > 300
    np.testing.assert_array_equal(onnx_out[0], torch_out[0].numpy())
    np.testing.assert_array_equal(onnx_out[2], torch_out[2].numpy())
    np.testing.assert_allclose(onnx_out[1], torch_out[1].numpy(), atol=1e-3)


# ---------------------------------------------------------------------------- prepared images


def test_prepared_images_match_like_a_pair(features):
    """A frame prepared once and matched against two neighbours gives the pair's matches.

    Checked against the static full-depth graph, which shares no code with prepare /
    match_prepared (its own forward_static per block, padding and masks), at full depth.
    """
    model = LightGlue.for_features('xfeat', depth_confidence=-1, width_confidence=-1).eval()
    f0, f1 = features['astronaut_homography']
    with torch.inference_mode():
        p0 = model.prepare(f0['keypoints'], f0['descriptors'], f0['size'])
        p1 = model.prepare(f1['keypoints'], f1['descriptors'], f1['size'])
        forward = model.match_prepared(p1, p0)
        again = model.match_prepared(p1, p0)  # a prepared image is not consumed by a match
        count = max(len(f0['keypoints']), len(f1['keypoints']))
        static = LightGlueFullDepth(model, count)(
            *padded(f1, count, count), *padded(f0, count, count)
        )
    n1 = len(f1['keypoints'])
    expected = torch.nonzero(static[0][0, :n1] >= 0)[:, 0]
    expected = torch.stack([expected, static[0][0, expected]], 1)
    assert len(forward['matches']) > 200
    assert torch.equal(forward['matches'], expected)
    assert torch.equal(again['matches'], forward['matches'])
    assert forward['layers_used'] == model.conf['n_layers']


def test_prepared_images_belong_to_their_model(features):
    f0, f1 = features['astronaut_homography']
    model, other = LightGlue.for_features('xfeat').eval(), LightGlue.for_features('xfeat').eval()
    p0 = model.prepare(f0['keypoints'], f0['descriptors'], f0['size'])
    p1 = model.prepare(f1['keypoints'], f1['descriptors'], f1['size'])
    assert model.owns(p0) and not other.owns(p0)
    with pytest.raises(ValueError, match='another LightGlue'):
        other.match_prepared(p0, p1)
    with torch.no_grad():
        model.transformers[0].self_attn.Wqkv.weight.mul_(1.01)  # new weights: prepare again
    assert not model.owns(p0)
    with pytest.raises(ValueError, match='other weights'):
        model.match_prepared(p0, p1)
