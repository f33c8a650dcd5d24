"""CameraModel: pixels -> normalized coordinates for every distortion model, and stereo checks."""

from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from glue_ros.core.camera import (
    CameraModel,
    CameraModelError,
    epipolar_errors,
    filter_stereo_matches,
)
from glue_ros.core.types import MatchResult

K = np.array([[412.5, 0.0, 318.2], [0.0, 409.8, 241.7], [0.0, 0.0, 1.0]])
DISTORTIONS = {
    'plumb_bob': [-0.28, 0.07, 0.0012, -0.0007, 0.01],
    # a real 8-coefficient calibration's magnitudes (k4..k6 make the ratio well conditioned)
    'rational_polynomial': [2.1, 0.9, 0.0005, -0.0003, 0.03, 2.45, 1.6, 0.2],
    'equidistant': [0.021, -0.013, 0.004, -0.001],
}


def scene_points(count=400, half_fov=0.75, seed=0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(-half_fov, half_fov, (count, 2))
    depth = rng.uniform(0.5, 20.0, (count, 1))
    return np.concatenate([xy, np.ones((count, 1))], axis=1) * depth


def camera_info(model, d, **changes):
    info = {
        'width': 640,
        'height': 480,
        'distortion_model': model,
        'd': list(d),
        'k': K.ravel().tolist(),
        'r': np.eye(3).ravel().tolist(),
        'p': np.concatenate([K, np.zeros((3, 1))], axis=1).ravel().tolist(),
    }
    info.update(changes)
    return info


@pytest.mark.parametrize('model', sorted(DISTORTIONS))
def test_normalize_inverts_the_projection(model):
    points = scene_points()
    d = np.array(DISTORTIONS[model])
    if model == 'equidistant':
        pixels, _ = cv2.fisheye.projectPoints(
            points.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), K, d
        )
    else:
        pixels, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), K, d)
    pixels = pixels.reshape(-1, 2)
    # The distortion is strong: undistorting must do real work, not just subtract cx / fx.
    naive = (pixels - K[:2, 2]) / np.diag(K)[:2]
    truth = points[:, :2] / points[:, 2:]
    assert np.abs(naive - truth).max() > 0.01
    camera = CameraModel.from_camera_info(camera_info(model, d))
    assert camera.distortion_model == model and camera.camera_id == 0
    normalized = camera.normalize(pixels)
    assert normalized.shape == (len(points), 2)
    np.testing.assert_allclose(normalized, truth, atol=1e-4)
    # flat [x0, y0, x1, y1, ...] input, as in the Matches message, gives the same
    np.testing.assert_allclose(camera.normalize(pixels.ravel()), normalized)


def test_ros1_message_fields_and_objects_are_accepted():
    info = camera_info('plumb_bob', DISTORTIONS['plumb_bob'])
    ros1 = SimpleNamespace(
        width=640,
        height=480,
        distortion_model='plumb_bob',
        D=info['d'],
        K=info['k'],
        R=info['r'],
        P=info['p'],
    )
    a = CameraModel.from_camera_info(ros1, camera_id=1)
    b = CameraModel.from_camera_info(SimpleNamespace(**info))
    assert a.camera_id == 1
    pixels = np.array([[10.0, 20.0], [600.0, 400.0]])
    np.testing.assert_allclose(a.normalize(pixels), b.normalize(pixels))


def test_rectified_images_use_the_projection_matrix():
    # right camera of a rectified pair: P has its own fx, cx and Tx = -fx * baseline
    P = np.array(
        [[380.0, 0.0, 300.0, -380.0 * 0.11], [0.0, 380.0, 240.0, 0.0], [0.0, 0.0, 1.0, 0.0]]
    )
    info = camera_info('plumb_bob', DISTORTIONS['plumb_bob'], p=P.ravel().tolist())
    camera = CameraModel.from_camera_info(info, rectified=True)
    assert camera.intrinsics == (380.0, 380.0, 300.0, 240.0)
    pixels = np.array([[300.0, 240.0], [680.0, 50.0]])
    np.testing.assert_allclose(camera.normalize(pixels), [[0.0, 0.0], [1.0, -0.5]])


def test_no_distortion_and_empty_model_are_plain_pinhole():
    camera = CameraModel.from_camera_info(camera_info('', [0.0] * 5))
    pixels = np.array([[318.2, 241.7], [730.7, 651.5]])
    np.testing.assert_allclose(camera.normalize(pixels), [[0.0, 0.0], [1.0, 1.0]])


def test_non_finite_and_empty_inputs():
    camera = CameraModel.from_camera_info(camera_info('plumb_bob', DISTORTIONS['plumb_bob']))
    out = camera.normalize([[np.nan, 3.0], [318.2, 241.7]])
    assert np.isnan(out[0]).all() and np.allclose(out[1], 0.0, atol=1e-12)
    assert camera.normalize(np.zeros((0, 2))).shape == (0, 2)


@pytest.mark.parametrize(
    'changes, words',
    [
        ({'distortion_model': 'kannala_brandt'}, 'unsupported distortion_model'),
        ({'distortion_model': '', 'd': [0.1, 0, 0, 0, 0]}, 'unsupported distortion_model'),
        ({'k': [0.0] * 9}, 'focal length is zero'),
        ({'distortion_model': 'equidistant', 'd': [0.1, 0.2]}, '4 coefficients'),
        ({'k': [1.0, 2.0]}, 'K has 2 values'),
    ],
)
def test_bad_calibrations_are_refused_clearly(changes, words):
    with pytest.raises(CameraModelError, match=words):
        CameraModel.from_camera_info({**camera_info('plumb_bob', [0.0] * 5), **changes})


def test_rectified_needs_a_projection_matrix():
    with pytest.raises(CameraModelError, match='zero in P'):
        CameraModel.from_camera_info(
            camera_info('plumb_bob', [0.0] * 5, p=[0.0] * 12), rectified=True
        )


def test_not_a_camera_info():
    with pytest.raises(CameraModelError, match='not a CameraInfo'):
        CameraModel.from_camera_info({'width': 4})


def test_epipolar_errors_and_disparity_sign():
    left = np.array([[100.0, 50.0], [200.0, 80.0], [50.0, 10.0], [70.0, 30.0]])
    right = np.array([[90.0, 50.5], [150.0, 84.0], [60.0, 10.0], [70.0, 30.0]])
    np.testing.assert_allclose(epipolar_errors(left, right), [0.5, 4.0, 0.0, 0.0])
    errors = epipolar_errors(left.ravel(), right.ravel(), min_disparity=0.0)
    assert errors[2] == np.inf  # x_right > x_left: behind the cameras
    assert errors[3] == 0.0  # zero disparity (a point at infinity) is kept
    with pytest.raises(ValueError):
        epipolar_errors(left, right[:2])


def test_filter_stereo_matches_keeps_order_and_fields():
    left = np.array([[100.0, 50.0], [200.0, 80.0], [50.0, 10.0]], np.float32)
    right = np.array([[90.0, 50.5], [150.0, 84.0], [60.0, 10.0]], np.float32)
    result = MatchResult(
        left,
        right,
        np.array([0.9, 0.8, 0.7], np.float32),
        np.array([4, 5, 6], np.int32),
        np.array([7, 8, 9], np.int32),
        10,
        12,
        3,
        9,
        timing_ms={'match': 1.0},
    )
    kept, mask = filter_stereo_matches(result, max_error_px=1.0)
    assert mask.tolist() == [True, False, False]
    assert len(kept) == 1 and kept.indices0.tolist() == [4] and kept.indices1.tolist() == [7]
    assert kept.num_keypoints0 == 10 and kept.layers_used == 3 and kept.timing_ms['match'] == 1
    assert len(result) == 3  # the input is left alone
