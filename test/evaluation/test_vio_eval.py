"""The VIO evaluation: the KLT baseline, the sequences' truth, the metrics on known answers."""

import dataclasses

import cv2
import numpy as np
import pytest

from glue_ros.evaluation import metrics, sequences, vio
from glue_ros.evaluation.klt import KLTConfig, KLTTracker
from glue_ros.testing import real_images

SIZE = (320, 240)


@pytest.fixture(scope='module')
def rendered():
    """A short camera-rate Middlebury sequence at 320x240 (rendered once for the module)."""
    return sequences.middlebury_sequence('camera', 8, SIZE)


def run_klt(frames, config=None, K=None):
    tracker = KLTTracker(config, K)
    return [tracker.process(frame) for frame in frames]


def observations(outputs):
    tracks = {}
    for k, (points, ids) in enumerate(outputs):
        for p, i in zip(points, ids):
            tracks.setdefault(int(i), []).append((k, p))
    return tracks


# -- the KLT baseline --------------------------------------------------------------------------
def test_klt_keeps_each_id_on_one_physical_point():
    sequence = real_images.homography_sequence('astronaut', 8, size=SIZE, roll_per_frame=0.5)
    outputs = run_klt(sequence.frames)
    for _points, ids in outputs:
        assert ids.dtype == np.uint64 and (ids > 0).all() and len(set(ids)) == len(ids)
        assert len(ids) <= 150
    tracks = observations(outputs)
    long = {i: obs for i, obs in tracks.items() if len(obs) >= 3}
    assert len(long) >= 40
    errors = []
    for obs in long.values():
        k0, p0 = obs[0]
        for k, p in obs[1:]:
            errors.append(
                np.linalg.norm(real_images.apply_homography(sequence.relative(k, k0), p)[0] - p0)
            )
    assert np.max(errors) < 2.0 and np.median(errors) < 0.3
    # an id that is lost is never given out again
    for obs in tracks.values():
        frames = [k for k, _ in obs]
        assert frames == list(range(frames[0], frames[0] + len(frames)))
    # corners are kept 30 px apart (VINS MIN_DIST), the older one winning
    points, _ = outputs[-1]
    distances = np.linalg.norm(points[:, None] - points[None], axis=2)
    assert distances[np.triu_indices(len(points), 1)].min() >= 29.0


def occluded_frames():
    """A photograph panning 1.5 px a frame; from frame 3 a patch of another photo covers it."""
    source = cv2.resize(real_images.photo('astronaut'), (480, 360), interpolation=cv2.INTER_AREA)
    cover = cv2.resize(real_images.photo('coffee'), (90, 90), interpolation=cv2.INTER_AREA)
    frames = []
    for k in range(5):
        shift = np.float32([[1, 0, -40 - 1.5 * k], [0, 1, -40]])
        frame = cv2.warpAffine(source, shift, SIZE, flags=cv2.INTER_LINEAR)
        if k >= 3:
            frame[60:150, 110:200] = cover
        frames.append(frame)
    return frames


def test_klt_drops_points_whose_flow_fails_the_forward_backward_check():
    frames = occluded_frames()
    inside = (slice(60, 150), slice(110, 200))

    def under_patch(outputs):
        """Ids of frame 2 under the patch (with a window's margin) that frame 3 still has."""
        points, ids = outputs[2]
        x, y = points[:, 0], points[:, 1]
        covered = (
            (x > inside[1].start + 12)
            & (x < inside[1].stop - 12)
            & (y > inside[0].start + 12)
            & (y < inside[0].stop - 12)
        )
        return set(ids[covered].tolist()), set(outputs[3][1].tolist())

    # without the check nor the F test, LK follows some covered points into the patch
    unchecked = run_klt(frames, KLTConfig(flow_back=0.0, f_threshold=0.0))
    covered, kept = under_patch(unchecked)
    assert covered and covered & kept
    checked = run_klt(frames, KLTConfig(f_threshold=0.0))
    covered, kept = under_patch(checked)
    assert covered and not covered & kept
    # points away from the patch live on
    points, ids = checked[2]
    far = (points[:, 0] < 80) | (points[:, 1] > 190)
    assert np.isin(ids[far], checked[3][1]).mean() > 0.9


def test_klt_fundamental_check_drops_a_point_that_moves_against_the_scene():
    """A point carried off the scene's motion by a wrong flow fails the 1 px F test."""
    tracker = KLTTracker()
    rng = np.random.default_rng(0)
    previous = np.c_[rng.uniform(10, 310, 60), rng.uniform(10, 230, 60)]
    current = previous + [2.0, 0.5]
    current[7] += [6.0, -9.0]
    inliers = tracker._fundamental_inliers(previous, current, (240, 320))
    assert not inliers[7] and inliers.sum() >= 55


# -- the sequences' truth --------------------------------------------------------------------
def test_rendered_truth_agrees_with_the_rendered_pixels(rendered):
    truth = rendered.truth
    a, depth_a = sequences.render_middlebury(truth.K, SIZE, truth.R[1], truth.t[1])
    b, _ = sequences.render_middlebury(truth.K, SIZE, truth.R[6], truth.t[6])
    assert np.array_equal(np.isnan(depth_a), np.isnan(truth.depth[1]))
    gray_a = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gray_b = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float32)
    rng = np.random.default_rng(1)
    points = np.c_[rng.integers(5, 315, 2000), rng.integers(5, 235, 2000)].astype(np.float64)
    mapped, valid = rendered.map_points(1, points, 6)
    valid &= (mapped[:, 0] > 1) & (mapped[:, 0] < 318) & (mapped[:, 1] > 1) & (mapped[:, 1] < 238)
    assert valid.mean() > 0.5

    def sample(image, xy):
        xy = xy.astype(np.float32).reshape(-1, 1, 2)
        return cv2.remap(image, xy[..., 0], xy[..., 1], cv2.INTER_LINEAR).ravel()

    here = gray_a[points[valid, 1].astype(int), points[valid, 0].astype(int)]
    there = sample(gray_b, mapped[valid])
    off = sample(gray_b, mapped[valid] + [1.0, 0.0])
    # the truth finds the same surface point; a pixel beside it is clearly different
    assert np.median(np.abs(here - there)) < 1.0
    assert np.median(np.abs(here - off)) > 2 * np.median(np.abs(here - there))
    # there and back again, and holes are never truth
    back, ok = rendered.map_points(6, mapped[valid], 1)
    assert ok.mean() > 0.95
    assert np.max(np.linalg.norm(back[ok] - points[valid][ok], axis=1)) < 0.05
    hole = np.argwhere(np.isnan(truth.depth[1]))[0][::-1].astype(np.float64)
    assert not rendered.map_points(1, [hole], 6)[1][0]


def test_pose_error_is_zero_on_exact_correspondences(rendered):
    rng = np.random.default_rng(2)
    points = np.c_[rng.uniform(5, 315, 400), rng.uniform(5, 235, 400)]
    mapped, valid = rendered.map_points(0, points, 7)
    R, t = rendered.relative_pose(0, 7)
    rotation, translation = metrics.pose_errors(mapped[valid], points[valid], rendered.K, R, t)
    assert rotation < 0.01 and translation < 0.1
    # and a wrong translation is seen as one
    _, wrong = metrics.pose_errors(mapped[valid], points[valid], rendered.K, R, -t)
    assert wrong > 170


def test_photo_sequence_truth_and_the_hard_regime():
    calm = sequences.photo_sequence('camera', 6, SIZE)
    a = cv2.cvtColor(calm.frames[1], cv2.COLOR_RGB2GRAY).astype(np.float32)
    b = cv2.cvtColor(calm.frames[5], cv2.COLOR_RGB2GRAY).astype(np.float32)
    points = np.c_[np.linspace(30, 290, 200), np.linspace(200, 40, 200)]
    mapped, valid = calm.map_points(1, points, 5)
    assert valid.all()
    there = cv2.remap(
        b, mapped[:, :1].astype(np.float32), mapped[:, 1:].astype(np.float32), cv2.INTER_LINEAR
    ).ravel()
    here = a[points[:, 1].astype(int), points[:, 0].astype(int)]
    assert np.median(np.abs(here - there)) < 4.0  # sensor noise only
    assert 1.0 < np.mean(calm.motion_px[1:]) < 6.0  # a few pixels a frame (at 320: half)

    hard = sequences.photo_sequence('hard', 30, SIZE)
    kinds = [s.kind for s in hard.stretches]
    assert kinds == ['fast', 'light', 'drop'] and len(hard.frames) == 30
    fast = [k for s in hard.stretches for k in range(s.first, s.last + 1)]
    quiet = [k for k in range(1, 30) if k not in fast]
    assert np.mean(hard.motion_px[fast]) > 5 * np.mean(hard.motion_px[quiet])
    drop = hard.stretches[2].first
    gap = np.diff(hard.stamps)
    assert gap[drop - 1] == pytest.approx((sequences.DROPPED + 1) / 30.0)
    assert np.allclose(np.delete(gap, drop - 1), 1 / 30.0)
    # the light stretch changes the brightness, the fast one blurs
    light = hard.stretches[1]
    means = [hard.frames[k].mean() for k in range(light.first, light.last + 1)]
    assert max(means) / min(means) > 1.5
    fastest = max(
        range(hard.stretches[0].first, hard.stretches[0].last + 1), key=lambda k: hard.motion_px[k]
    )

    def sharpness(k):
        return cv2.Laplacian(cv2.cvtColor(hard.frames[k], cv2.COLOR_RGB2GRAY), cv2.CV_32F).var()

    assert sharpness(fastest) < 0.7 * sharpness(1)


# -- metrics on known answers ----------------------------------------------------------------
def plane_truth(frames=3, hole=None, hole_frame=1):
    """Cameras 50 mm apart a frame over a fronto-parallel plane at 1 m; a NaN hole in one.

    Frame k sees a point of frame 0 15 px further right (300 px * 50 mm * k / 1000 mm).
    """
    K = np.array([[300.0, 0, 160], [0, 300.0, 120], [0, 0, 1]])
    depth = [np.full((240, 320), 1000.0, np.float32) for _ in range(frames)]
    if hole is not None:
        depth[hole_frame][hole] = np.nan
    R = [np.eye(3)] * frames
    t = [np.array([50.0 * k, 0, 0]) for k in range(frames)]
    truth = sequences.DepthTruth(K, R, t, depth)
    images = [np.zeros((240, 320, 3), np.uint8)] * frames
    return sequences.VioSequence(
        'plane', 'test', 'camera', images, np.arange(frames) / 30.0, truth, K
    )


def test_track_metrics_use_depth_truth_and_leave_out_holes():
    # frame k sees the plane shifted 15 px per frame (300 * 50 / 1000)
    sequence = plane_truth(hole=(slice(90, 110), slice(140, 180)))
    base = np.array([[40.0, 40.0], [250.0, 200.0], [150.0, 100.0]])
    rows = []
    for k in range(3):
        points = base + [15.0 * k, 0.0]
        if k == 2:
            points[1] += [4.0, 0.0]  # track 2 slides off its point
        if k == 1:
            points[2] += [10.0, 0.0]  # track 3 is wrong only where the truth is a hole
        rows.append((k, points, np.array([1, 2, 3], np.uint64)))
    result = metrics.track_metrics(rows, sequence, (320, 240))
    # track 3 has 2 observations of known truth: not decided; tracks 1 and 2: one of two
    assert result['consistency_checked'] == 2 and result['consistency'] == 0.5
    assert result['mean_length'] == 3 and result['matches_per_frame'] == 3


def test_survival_counts_tracks_still_on_their_point_after_a_stretch():
    sequence = plane_truth(4, hole=(slice(190, 210), slice(90, 120)), hole_frame=3)
    stretch = sequences.Stretch('fast', 1, 1)
    before = np.array([[40.0, 40.0], [100.0, 60.0], [200.0, 150.0], [60.0, 200.0], [250.0, 30.0]])
    after = before + [30.0, 0.0]
    after[1] += [5.0, 0.0]  # id 2 came back on another point
    rows = [
        (0, before, np.array([1, 2, 3, 4, 5], np.uint64)),
        (1, np.zeros((0, 2)), np.zeros(0, np.uint64)),
        (2, after[:3], np.array([1, 2, 3], np.uint64)),
        # a frame later: id 4 where frame 3 has no truth, id 5 right; id 2 right, too late
        (
            3,
            np.array([before[3] + [45.0, 0.0], before[4] + [45.0, 0.0], before[1] + [45.0, 0.0]]),
            np.array([4, 5, 2], np.uint64),
        ),
    ]
    result = vio.survival(rows, sequence, stretch)
    assert result == {
        'kind': 'fast',
        'before': 5,
        'alive_after': 4,
        'wrong_after': 1,
        'unverified_after': 1,
    }


def test_pose_errors_of_tracks_and_observation_rows(rendered):
    """Exact tracks give exact poses; single observations are not tracks."""
    rng = np.random.default_rng(3)
    points = np.c_[rng.uniform(10, 310, 300), rng.uniform(10, 230, 300)]
    frames = {}
    for k in range(len(rendered.frames)):
        mapped, valid = rendered.map_points(0, points, k)
        ids = np.arange(1, len(points) + 1, dtype=np.uint64)
        frames[k] = [(mapped[valid], ids[valid])]
    frames[3].append((np.array([[5.0, 5.0]]), np.array([999], np.uint64)))
    rows = vio.observation_rows(frames, len(rendered.frames))
    assert 999 not in rows[3][2]
    pose = vio.pose_errors(rows, rendered, gap=5)
    assert pose['pairs'] == 3 and pose['failures'] == 0
    assert pose['rotation_median'] < 0.01 and pose['translation_median'] < 0.5


@pytest.mark.slow  # every pipeline over a sequence
def test_klt_and_learned_pipelines_run_over_a_sequence(rendered):
    from glue_ros.frontend.frontend import FrontendConfig
    from glue_ros.matcher import MatcherConfig

    names = ['klt', 'learned'] + (['hybrid'] if vio.hybrid_available() else [])
    report = vio.evaluate(
        names,
        sequences=[rendered],
        threads=2,
        matcher_config=MatcherConfig(max_keypoints=512),
        frontend_config=FrontendConfig(max_tracks=200, min_track_distance=10.0),
    )
    for name in names:
        r = report['pipelines'][name][rendered.name]
        assert r['fps'] > 0 and len(r['tracked_per_frame']) == len(rendered.frames)
        assert r['consistency'] > 0.9 and r['tracks'] > 20
        assert r['pose']['pairs'] == len(rendered.frames) - vio.POSE_GAP
    assert report['pipelines']['klt'][rendered.name]['learned_share'] is None
    assert max(report['pipelines']['learned'][rendered.name]['tracked_per_frame']) <= 200
    if vio.hybrid_available():
        assert report['pipelines']['hybrid'][rendered.name]['learned_share'] < 1.0


def test_hybrid_pipeline_only_where_the_frontend_has_it(monkeypatch):
    from glue_ros.frontend import frontend

    fields = [f for f in dataclasses.fields(frontend.FrontendConfig) if f.name != 'tracking']
    monkeypatch.setattr(dataclasses, 'fields', lambda _: fields)
    assert not vio.hybrid_available() and 'hybrid' not in vio.available_pipelines()
    with pytest.raises(ValueError, match='tracking'):
        vio.build_pipelines(['hybrid'])


def test_bench_presets_map_through_the_settings_schema(tmp_path):
    from glue_ros.tools import vio_bench

    preset = tmp_path / 'vio.yaml'
    preset.write_text(
        '/**/glue_ros_matcher:\n  ros__parameters:\n    max_keypoints: 512\n'
        '    max_tracks: 200\n    min_track_distance: 20.0\n'
        '    reference: previous\n    keyframe_min_matches: 80\n'
    )
    values = vio_bench.load_parameters(preset)
    matcher_config, frontend_config = vio_bench.configs(values)
    assert matcher_config.max_keypoints == 512
    assert (
        frontend_config.max_tracks,
        frontend_config.min_track_distance,
        frontend_config.reference,
        frontend_config.keyframe_min_matches,
    ) == (200, 20.0, 'previous', 80)
    # the rest at the node's defaults
    assert frontend_config.ransac_threshold == 1.0 and matcher_config.features == 'xfeat'
    preset.write_text('max_keypoints: 256\nmax_trakcs: 5\n')
    with pytest.raises(ValueError, match='max_trakcs'):
        vio_bench.load_parameters(preset)
    with pytest.raises(ValueError, match='max_tracks'):
        vio_bench.configs({'max_tracks': 0})


def test_targets_hold_learned_and_hybrid_against_the_issue_and_klt():
    def row(fps, consistency, length, tracked, alive, rotation):
        return {
            'fps': fps,
            'consistency': consistency,
            'mean_length': length,
            'matches_per_frame': tracked,
            'stretches': [{'kind': 'fast', 'alive_after': alive, 'before': 150}],
            'pose': {'rotation_median': rotation, 'translation_median': 5.0},
        }

    klt = {'cam': row(100, 0.95, 20, 150, 0, 1), 'hard': row(100, 0.9, 5, 120, 10, 1.0)}
    hybrid = {'cam': row(31, 0.995, 25, 160, 0, 1), 'hard': row(31, 0.9, 5, 100, 20, None)}
    report = {
        'sequences': {'cam': {'regime': 'camera'}, 'hard': {'regime': 'hard'}},
        'pipelines': {'klt': klt, 'hybrid': hybrid},
    }
    rows = {(r['sequence'], r['target'].split(' (')[0]): r for r in vio.targets(report)}
    camera = (
        'frames per second',
        'track consistency',
        'tracked points per frame',
        'mean track length',
    )
    assert all(rows[('cam', t)]['ok'] for t in camera)
    assert rows[('hard', 'tracks alive after fast')]['ok']  # 20 >= 2 x 10
    assert not rows[('hard', 'pose rotation median')]['ok']  # no pose: worse than 1 deg
    assert rows[('hard', 'pose translation median')]['ok']
    report['pipelines']['hybrid']['hard']['stretches'][0]['alive_after'] = 19
    report['pipelines']['hybrid']['cam']['fps'] = 29.0
    rows = {(r['sequence'], r['target'].split(' (')[0]): r for r in vio.targets(report)}
    assert not rows[('hard', 'tracks alive after fast')]['ok']
    assert not rows[('cam', 'frames per second')]['ok']


def test_bench_uses_the_shipped_vio_preset_unless_told(tmp_path):
    from glue_ros.tools import vio_bench

    assert vio_bench.preset_path(tmp_path / 'x.yaml') == tmp_path / 'x.yaml'
    shipped = vio_bench.preset_path(None)
    assert shipped is not None and shipped.name == 'vio.yaml'
    values = vio_bench.load_parameters(shipped)
    matcher_config, frontend_config = vio_bench.configs(values)
    assert matcher_config.max_keypoints == values['max_keypoints']
    assert frontend_config.max_tracks == values['max_tracks']
