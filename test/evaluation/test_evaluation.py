"""The SLAM evaluation: its metrics on known answers, its data against its own truth."""

import numpy as np
import pytest

from glue_ros.evaluation import data, metrics, run
from glue_ros.testing import real_images


def test_auc_of_known_errors():
    # errors 0, 1, 2, 3 (and a failure): the recall 1/5, 2/5, ... reached at each error,
    # integrated by trapezoids up to the threshold (SuperGlue's definition)
    errors = [0.0, 1.0, 2.0, 3.0, np.inf]
    one, three = metrics.auc(errors, (1.0, 3.0))
    assert one == pytest.approx(0.2)
    assert three == pytest.approx((0.3 + 0.5 + 0.6) / 3)
    assert metrics.auc([0.0] * 4, (1.0,)) == [1.0]
    assert metrics.auc([np.inf] * 4, (5.0,)) == [0.0]
    assert 0 < one < three < 1


def test_corner_and_pose_errors_are_zero_for_the_truth():
    H = data.random_homography((640, 480), np.random.default_rng(3))
    assert metrics.corner_error(H, H, (640, 480)) == pytest.approx(0.0, abs=1e-9)
    assert metrics.corner_error(None, H, (640, 480)) == np.inf
    # a calibrated scene with parallax: exact projections give the pose back
    rng = np.random.default_rng(4)
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    X = np.c_[rng.uniform(-1, 1, (200, 2)), rng.uniform(3, 6, 200)]
    R, t = data.rotation([1.0, -2.0, 0.5]), np.array([0.3, 0.05, 0.1])
    ref = (K @ X.T).T
    query = (K @ (R @ X.T + t[:, None])).T
    error = metrics.pose_error(query[:, :2] / query[:, 2:], ref[:, :2] / ref[:, 2:], K, R, t)
    assert error < 0.1


def test_rendered_views_follow_their_pose():
    """A pixel of the left image, moved by the true pose, shows the same colour there."""
    pair, K, depth = data.middlebury_camera(0)
    R, t = data.rotation([0.0, 2.0, 0.0]), np.array([100.0, 0.0, 0.0])
    view, seen = data.render_view(pair.left, depth, K, R, t)
    assert view.shape == pair.left.shape and 0.6 < seen.mean() < 1.0
    rng = np.random.default_rng(5)
    v, u = rng.integers(50, 450, 300), rng.integers(50, 690, 300)
    ok = np.isfinite(depth[v, u])
    X = np.linalg.inv(K) @ np.stack([u[ok], v[ok], np.ones(ok.sum())]) * depth[v, u][ok]
    x = K @ (R @ X + t[:, None])
    x = np.round(x[:2] / x[2]).astype(int)
    inside = (x[0] >= 0) & (x[0] < view.shape[1]) & (x[1] >= 0) & (x[1] < view.shape[0])
    src = pair.left[v[ok], u[ok]][inside].astype(float)
    dst = view[x[1][inside], x[0][inside]].astype(float)
    # most sampled points are visible in the new view and keep their colour (occluded ones
    # show the occluder)
    assert np.mean(np.abs(src - dst).max(axis=1) < 10) > 0.8


def test_track_metrics_of_hand_made_tracks():
    sequence = real_images.homography_sequence('astronaut', 4, size=(320, 240))
    base = np.array([[50.0, 60.0], [200.0, 100.0]])
    rows = []
    for k in range(1, 4):
        points = real_images.apply_homography(sequence.relative(0, k), base)
        if k == 3:
            points[1] += 15.0  # track 2 jumps to another point in its last frame
        rows.append((k, points, np.array([1, 2])))
    result = metrics.track_metrics(rows, sequence, (320, 240))
    assert result['tracks'] == 2 and result['consistency'] == 0.5
    assert result['median_length'] == 3 and result['matches_per_frame'] == 2


@pytest.mark.slow  # every pipeline over the evaluation data
def test_evaluation_runs_and_ours_is_verified():
    """Small data: our published matches are right, the reference's are not all right."""
    report = run.evaluate(
        names=('ours', 'reference'),
        keypoints=512,
        homography_count=2,
        pose_count=1,
        frames=4,
        size=(320, 240),
    )
    ours, reference = report['ours'], report['reference']
    for r in (ours, reference):
        assert set(r['homography']['auc']) == {'1px', '3px', '5px'}
        assert set(r['pose']['auc']) == {'5deg', '10deg', '20deg'}
    for name, tracks in ours['tracks'].items():
        assert tracks['within_3px'] > 0.97 and tracks['consistency'] > 0.9
        assert tracks['within_3px'] >= reference['tracks'][name]['within_3px']
        assert 0 < tracks['verify_track_share'] < 0.5
    assert ours['pose']['auc']['20deg'] > 0.5
