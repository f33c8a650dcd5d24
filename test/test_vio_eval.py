"""The VIO evaluation: the KLT baseline, the sequences' truth."""
import cv2
import numpy as np
import pytest

from glue_ros.evaluation import metrics, sequences
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
    for points, ids in outputs:
        assert ids.dtype == np.uint64 and (ids > 0).all() and len(set(ids)) == len(ids)
        assert len(ids) <= 150
    tracks = observations(outputs)
    long = {i: obs for i, obs in tracks.items() if len(obs) >= 3}
    assert len(long) >= 40
    errors = []
    for obs in long.values():
        k0, p0 = obs[0]
        for k, p in obs[1:]:
            errors.append(np.linalg.norm(
                real_images.apply_homography(sequence.relative(k, k0), p)[0] - p0))
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
        covered = ((x > inside[1].start + 12) & (x < inside[1].stop - 12)
                   & (y > inside[0].start + 12) & (y < inside[0].stop - 12))
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
    there = cv2.remap(b, mapped[:, :1].astype(np.float32), mapped[:, 1:].astype(np.float32),
                      cv2.INTER_LINEAR).ravel()
    here = a[points[:, 1].astype(int), points[:, 0].astype(int)]
    assert np.median(np.abs(here - there)) < 4.0          # sensor noise only
    assert 1.0 < np.mean(calm.motion_px[1:]) < 6.0        # a few pixels a frame (at 320: half)

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
    fastest = max(range(hard.stretches[0].first, hard.stretches[0].last + 1),
                  key=lambda k: hard.motion_px[k])

    def sharpness(k):
        return cv2.Laplacian(cv2.cvtColor(hard.frames[k], cv2.COLOR_RGB2GRAY), cv2.CV_32F).var()
    assert sharpness(fastest) < 0.7 * sharpness(1)
