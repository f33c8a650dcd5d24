"""Geometric verification and the front-end on real images with ground truth."""

import dataclasses
import logging

import cv2
import numpy as np
import pytest

from glue_ros.core.camera import CameraModel
from glue_ros.frontend import geometry
from glue_ros.frontend.frontend import Frontend, FrontendConfig
from glue_ros.matcher import MatcherConfig, build_matcher
from glue_ros.testing import real_images

# Middlebury 2014 "Motorcycle" calibration (cam0: f 3979.911, c (1244.772, 1019.507) at
# 2964x2000), for scikit-image's copy at a quarter of that size; the pair is rectified.
MIDDLEBURY_K = np.array(
    [[3979.911 / 4, 0, 1244.772 / 4], [0, 3979.911 / 4, 1019.507 / 4], [0, 0, 1]]
)


def pinhole(K, size):
    return CameraModel(
        size[0], size[1], 'plumb_bob', np.zeros(5), K, np.eye(3), np.c_[K, np.zeros(3)]
    )


@pytest.fixture(scope='module')
def matcher():
    return build_matcher(MatcherConfig(max_keypoints=1024))


def angle_deg(R):
    return np.degrees(np.arccos(np.clip((np.trace(R) - 1) / 2, -1, 1)))


def test_verification_removes_injected_outliers_from_a_real_pair(matcher):
    image0, image1, H = real_images.homography_pair('coffee', roll_deg=10, zoom=1.1)
    result = matcher.match_images(image0, image1)
    rng = np.random.default_rng(0)
    fake = rng.uniform((0, 0), (640, 480), (200, 2))  # random partners: outliers
    points0 = np.concatenate([result.points0, result.points0[:200]])
    points1 = np.concatenate([result.points1, fake])
    errors = real_images.homography_errors(H, points0, points1)
    for check in ('homography', 'fundamental'):
        v = geometry.verify(points0, points1, check, threshold_px=1.0)
        assert v.status == (geometry.OK if check == 'homography' else geometry.ROTATION)
        injected = np.arange(len(points0)) >= len(result)
        assert v.inliers[injected].mean() < 0.02  # outliers removed
        assert np.mean(errors[v.inliers] < 3.0) > 0.99  # what is kept is right
        assert v.inliers[errors < 1.0].mean() > 0.85  # and most good ones are kept
        again = geometry.verify(points0, points1, check, threshold_px=1.0)
        assert np.array_equal(again.inliers, v.inliers)  # fixed seed: repeatable


def test_essential_matrix_recovers_the_middlebury_rig(matcher):
    pair = real_images.middlebury_stereo()
    size = pair.left.shape[1::-1]
    result = matcher.match_images(pair.left, pair.right)
    camera = pinhole(MIDDLEBURY_K, size)
    v = geometry.verify(result.points0, result.points1, 'auto', camera, camera)
    assert (v.model, v.status) == ('essential', geometry.OK)
    # rectified: no rotation; the right (reference) camera is along +x of the left (query)
    assert angle_deg(v.rotation) < 1.0 and v.translation[0] > 0.99, v.translation
    errors = real_images.disparity_errors(pair, result.points0, result.points1)
    known = np.isfinite(errors)
    assert np.mean(errors[known & v.inliers] < 3) > np.mean(errors[known] < 3)


def test_degenerate_inputs_give_a_status_never_an_exception():
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 500, (200, 2))
    few = geometry.verify(points[:8], points[:8] + 1, 'fundamental')
    assert few.status == geometry.TOO_FEW and not few.inliers.any()
    line = np.stack([np.linspace(0, 400, 100), np.linspace(0, 300, 100)], axis=1)
    collinear = geometry.verify(line, line + 3, 'fundamental')
    assert collinear.status == geometry.COLLINEAR and not collinear.inliers.any()
    assert geometry.verify(points, points, 'none').status == geometry.NOT_CHECKED
    empty = geometry.verify(np.zeros((0, 2)), np.zeros((0, 2)), 'essential')
    assert empty.status == geometry.TOO_FEW and empty.inliers.shape == (0,)
    # a pure rotation of a calibrated camera: the rotation is found, the translation is not
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    R = cv2.Rodrigues(np.radians([2.0, -3.0, 1.0]))[0]
    reference = rng.uniform((0, 0), (640, 480), (300, 2))
    query = real_images.apply_homography(K @ R @ np.linalg.inv(K), reference)
    camera = pinhole(K, (640, 480))
    v = geometry.verify(query, reference, 'essential', camera, camera)
    assert v.status == geometry.ROTATION and v.translation is None
    assert angle_deg(v.rotation.T @ R) < 0.2


class OutlierInjector:
    """A matcher whose every 7th match points at a wrong keypoint of the reference."""

    def __init__(self, matcher):
        self.matcher = matcher

    def __getattr__(self, name):
        return getattr(self.matcher, name)

    def match(self, features0, features1):
        result = self.matcher.match(features0, features1)
        wrong = np.arange(len(result)) % 7 == 3
        indices1 = result.indices1.copy()
        indices1[wrong] = (indices1[wrong] + 97) % len(features1)
        points1 = features1.keypoints.numpy()[indices1]
        return dataclasses.replace(result, indices1=indices1, points1=points1)


@pytest.mark.parametrize('reference', ['keyframe', 'previous'])
@pytest.mark.slow  # a 30-frame sequence, twice
def test_front_end_ids_stay_on_one_physical_point_despite_outliers(matcher, reference):
    sequence = real_images.homography_sequence('astronaut', 10, size=(320, 240))
    frontend = Frontend(OutlierInjector(matcher), FrontendConfig(reference=reference))
    seen = {}
    published = outliers = 0
    for k, image in enumerate(sequence.frames):
        out = frontend.process(image, 0.1 * k, tag=k)
        if out is None:
            continue
        errors = real_images.homography_errors(
            sequence.relative(k, out.reference_tag), out.result.points0, out.result.points1
        )
        assert np.mean(errors < 3.0) > 0.98, np.percentile(errors, [50, 99])
        published += len(out.result)
        outliers += out.num_outliers
        for track, point in zip(out.track_ids, out.result.points0):
            if track:
                seen.setdefault(int(track), []).append((k, point))
    assert outliers > published / 7 * 0.9  # the injected ones, at least
    # every observation of a track, mapped by the truth into the frame of its first one, is
    # one point: within 3 px of their median (keypoints are a pixel or two precise at this
    # size; an id that jumped to another keypoint lands 8 px or more away, the budget's
    # min_track_distance)
    spread = []
    for observations in seen.values():
        if len(observations) >= 3:
            first = observations[0][0]
            mapped = np.array(
                [
                    real_images.apply_homography(sequence.relative(k, first), p)
                    for k, p in observations
                ]
            ).reshape(-1, 2)
            spread.append(np.max(np.linalg.norm(mapped - np.median(mapped, 0), axis=1)))
    assert len(spread) > 50
    assert np.mean(np.array(spread) < 3.0) > 0.98, np.percentile(spread, [50, 90, 99])


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_time_jumps_and_size_changes_start_new_sequences(matcher, monkeypatch):
    caplog = Records()
    library = logging.getLogger('glue_ros')
    library.setLevel(logging.INFO)
    library.addHandler(caplog)
    # launch's pytest plugin installs its logger class, whose loggers do not propagate
    monkeypatch.setattr(logging.getLogger('glue_ros.frontend.frontend'), 'propagate', True)
    frontend = Frontend(matcher, FrontendConfig())
    sequence = real_images.homography_sequence('astronaut', 3, size=(320, 240))
    assert frontend.process(sequence.frames[0], 5.0) is None
    out = frontend.process(sequence.frames[1], 5.1)
    assert out.track_ids.max() > 1
    assert frontend.process(sequence.frames[0], 1.0) is None  # back in time: new start
    assert 'time jumped back' in caplog.records[-1].getMessage()
    assert caplog.records[-1].levelno == logging.WARNING
    assert frontend.process(cv2.resize(sequence.frames[1], (160, 120)), 1.1) is None
    assert 'image size changed' in caplog.records[-1].getMessage()
    out = frontend.process(cv2.resize(sequence.frames[2], (160, 120)), 1.2)
    tracked = out.track_ids[out.track_ids > 0]
    assert tracked.min() == 1 and tracked.max() == len(tracked)
    library.removeHandler(caplog)
