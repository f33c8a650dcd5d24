"""Hybrid tracking (tracking: flow): optical flow between learned frames, one id space.

Real photographs moved by known homographies, made at test time; the truth says where every
tracked point must be.
"""

import numpy as np
import pytest
import torch

from glue_ros.evaluation import metrics
from glue_ros.frontend.flow import FlowTracker, to_gray
from glue_ros.frontend.frontend import Frontend, FrontendConfig
from glue_ros.matcher import MatcherConfig, build_matcher
from glue_ros.testing import real_images

SIZE = (320, 240)


@pytest.fixture(scope='module')
def matcher():
    torch.manual_seed(0)
    return build_matcher(MatcherConfig(max_keypoints=512))


def run(frontend, frames, start=0):
    """(frame index, output) of every frame after the first."""
    outputs = []
    for k, image in enumerate(frames, start):
        out = frontend.process(image, 0.033 * k, tag=k)
        if out is not None:
            outputs.append((k, out))
    return outputs


def test_flow_follows_a_shift_and_drops_a_point_that_slides_off_its_feature():
    """Forward-backward check: a patch replaced between two frames loses its points."""
    image = to_gray(real_images.photo('astronaut'))[:240, :320]
    shifted = np.roll(image, (1, 2), axis=(0, 1))  # 2 px right, 1 px down
    rng = np.random.default_rng(0)
    shifted[100:160, 150:220] = rng.integers(0, 255, (60, 70), dtype=np.uint8)  # occluder
    ys, xs = np.mgrid[30:200:15, 30:280:15]
    points = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
    flow = FlowTracker(back_threshold=0.5)
    flow.reset(image, points, np.arange(1, len(points) + 1))
    previous, moved, ids = flow.track(shifted)
    margin = 11  # half the 21 px window: points nearer the occluder see part of it
    inside = (
        (points[:, 0] >= 150 - margin)
        & (points[:, 0] < 220 + margin)
        & (points[:, 1] >= 100 - margin)
        & (points[:, 1] < 160 + margin)
    )
    kept = np.isin(np.arange(1, len(points) + 1), ids)
    assert not kept[
        (points[:, 0] >= 160) & (points[:, 0] < 210) & (points[:, 1] >= 110) & (points[:, 1] < 150)
    ].any()
    # Elsewhere (away from the image border the roll wraps) flow is right to a tenth of a
    # pixel: a pure shift of a real texture, sub-pixel Lucas-Kanade.
    away = ~inside & (points[:, 0] > 20) & (points[:, 1] > 20)
    assert kept[away].mean() > 0.9
    good = np.isin(ids, np.flatnonzero(away) + 1)
    np.testing.assert_allclose(
        moved[good] - previous[good], [[2.0, 1.0]] * int(good.sum()), atol=0.1
    )
    assert len(flow) == len(ids)


@pytest.mark.slow  # a 60-frame sequence
def test_hybrid_ids_stay_on_one_physical_point_with_few_learned_frames(matcher):
    seq = real_images.homography_sequence(
        'astronaut', 24, size=SIZE, roll_per_frame=0.2, zoom_per_frame=0.002
    )
    frontend = Frontend(
        matcher,
        FrontendConfig(
            tracking='flow', flow_max_frames=6, reference='previous', min_track_distance=10
        ),
    )
    outputs = run(frontend, seq.frames)
    learned = [k for k, out in outputs if out.learned]
    assert learned[0] == 1 and 3 <= len(learned) <= 12, learned
    assert all(b - a <= 6 for a, b in zip(learned, learned[1:])), learned
    for k, out in outputs:
        errors = real_images.homography_errors(
            seq.relative(k, out.reference_tag), out.result.points0, out.result.points1
        )
        assert np.mean(errors < 3.0) > 0.99, (k, out.learned, np.percentile(errors, [50, 99]))
        if not out.learned:
            assert out.features is None and (out.result.indices0 == -1).all()
            assert (out.track_ids > 0).all() and out.reference_tag == k - 1
    rows = [(k, out.result.points0, out.track_ids) for k, out in outputs]
    report = metrics.track_metrics(rows, seq, SIZE)
    assert report['consistency'] >= 0.99, report
    # The same budget tracked every frame by the learned matcher gives far shorter tracks.
    every = Frontend(matcher, FrontendConfig(reference='previous', min_track_distance=10))
    baseline = metrics.track_metrics(
        [(k, out.result.points0, out.track_ids) for k, out in run(every, seq.frames)], seq, SIZE
    )
    assert report['mean_length'] > 1.5 * baseline['mean_length'], (report, baseline)


@pytest.mark.parametrize('max_age', [2, 0])
@pytest.mark.slow  # an occluded sequence, twice
def test_a_learned_frame_refinds_tracks_lost_behind_a_short_occlusion(matcher, max_age):
    """Points hidden for two frames come back with their ids, by descriptor, at a learned frame.

    Tracks unseen by a learned frame stay alive (with their descriptors) for track_max_age
    learned frames; with 0 they are forgotten and come back as new ids.
    """
    seq = real_images.homography_sequence(
        'astronaut', 8, roll_per_frame=0.1, zoom_per_frame=0.001
    )  # 640x480
    frames = [f.copy() for f in seq.frames]
    for k in (3, 4):  # a dark occluder in frames 3 and 4
        frames[k][100:380, 180:500] = 40
    frontend = Frontend(
        matcher,
        FrontendConfig(
            tracking='flow', flow_max_frames=3, reference='previous', track_max_age=max_age
        ),
    )
    outputs = dict(run(frontend, frames))

    def under_box(out):
        x, y = out.result.points0[:, 0], out.result.points0[:, 1]
        hidden = (x > 200) & (x < 480) & (y > 120) & (y < 360)
        return set(out.track_ids[hidden & (out.track_ids > 0)].tolist())

    before = under_box(outputs[2])
    assert len(before) >= 20
    assert not under_box(outputs[3]) & before  # hidden: the flow lets them go
    k_after = min(k for k, out in outputs.items() if k >= 5 and out.learned)
    after = outputs[k_after]
    refound = under_box(after) & before
    if max_age == 0:
        assert not refound
        return
    # Measured: 9 of 47. A hidden point comes back only where the detector finds it again
    # (XFeat's repeatability over 5 frames) and its match passes the same 1 px verification
    # against the frame it was last seen in; the others get new ids. Without the lost tracks
    # (max_age 0) none comes back, and every one that does must be the same point.
    assert len(refound) >= 0.1 * len(before), (len(refound), len(before))
    first = {int(i): p for i, p in zip(outputs[2].track_ids, outputs[2].result.points0)}
    for i, p in zip(after.track_ids, after.result.points0):
        if int(i) in refound:
            truth = real_images.apply_homography(seq.relative(2, k_after), first[int(i)])
            assert np.linalg.norm(truth - p) < 3.0


def test_flow_is_sequential_only_and_its_settings_are_checked():
    with pytest.raises(ValueError, match='tracking'):
        FrontendConfig(mode='stereo', tracking='flow').validate()
    with pytest.raises(ValueError, match='flow_max_frames'):
        FrontendConfig(tracking='flow', flow_max_frames=0).validate()
    with pytest.raises(ValueError, match='tracking'):
        FrontendConfig(tracking='klt').validate()


def test_tracks_the_flow_follows_go_on_through_a_learned_frame(matcher):
    """A learned frame re-finds some tracks by keypoint; the flow's others go on, verified."""
    seq = real_images.homography_sequence(
        'astronaut', 12, size=SIZE, roll_per_frame=0.2, zoom_per_frame=0.002
    )
    frontend = Frontend(
        matcher,
        FrontendConfig(
            tracking='flow', flow_max_frames=5, reference='previous', min_track_distance=10
        ),
    )
    outputs = dict(run(frontend, seq.frames))
    k = sorted(k for k, out in outputs.items() if out.learned)[1]  # the second learned frame
    before, at = outputs[k - 1], outputs[k]
    alive = set(before.track_ids.tolist()) & set(at.track_ids.tolist())
    assert len(alive) >= 0.8 * len(before.track_ids), (len(alive), len(before.track_ids))
    by_flow = at.result.indices0 == -1
    assert by_flow.any() and (at.track_ids[by_flow] > 0).all()
    errors = real_images.homography_errors(
        seq.relative(k, at.reference_tag), at.result.points0, at.result.points1
    )
    assert np.mean(errors[by_flow] < 3.0) > 0.99
