"""The VIO evaluation: the KLT baseline."""
import cv2
import numpy as np

from glue_ros.evaluation.klt import KLTConfig, KLTTracker
from glue_ros.testing import real_images

SIZE = (320, 240)


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
