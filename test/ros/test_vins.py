"""VINS-Fusion feature clouds from real matches of rendered sequences with known motion."""

import cv2
import numpy as np
import pytest
from ros_helpers import require_ros

require_ros()

from builtin_interfaces.msg import Time  # noqa: E402
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402
from sensor_msgs.msg import PointCloud  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from glue_ros.core.camera import CameraModel  # noqa: E402
from glue_ros.frontend.frontend import Frontend, FrontendConfig  # noqa: E402
from glue_ros.frontend.vins import CHANNEL_NAMES, FEATURE_ID_MODULUS, stereo_partner_points  # noqa: E402
from glue_ros.matcher import MatcherConfig, build_matcher  # noqa: E402
from glue_ros.ros.vins import VinsCloudBuilder as VinsFeatureBuilder  # noqa: E402
from glue_ros.testing import real_images  # noqa: E402

SIZE = (320, 240)
DT_NS = 50_000_000  # 20 Hz
STEP = (4, 2)  # pixels the scene moves by per frame: (-4, -2) in the image
BASELINE = 12  # disparity of the fronto-parallel stereo scene, pixels
K = np.array([[300.0, 0.0, 161.0], [0.0, 302.0, 119.0], [0.0, 0.0, 1.0]])
D = np.array([-0.12, 0.03, 0.0005, -0.0004, 0.0])


def camera(camera_id=0):
    return CameraModel.from_camera_info(
        {
            'width': SIZE[0],
            'height': SIZE[1],
            'distortion_model': 'plumb_bob',
            'd': D,
            'k': K.ravel(),
            'r': np.eye(3).ravel(),
            'p': np.c_[K, np.zeros(3)].ravel(),
        },
        camera_id=camera_id,
    )


def header(i):
    stamp_ns = 1_700_000_000 * 10**9 + i * DT_NS
    return Header(stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id='cam0')


def translation_frames(count, offset_x=0):
    """Windows of a photograph sliding by STEP per frame: every pixel's motion is known."""
    source = real_images.photo('astronaut')
    w, h = SIZE
    frames = []
    for i in range(count):
        x, y = 40 + offset_x + STEP[0] * i, 60 + STEP[1] * i
        frames.append(np.ascontiguousarray(source[y : y + h, x : x + w]))
    return frames


def columns(cloud):
    """name -> values of a PointCloud's channels, and its (N, 3) points."""
    values = {c.name: np.asarray(c.values, np.float64) for c in cloud.channels}
    points = np.array([(p.x, p.y, p.z) for p in cloud.points]).reshape(-1, 3)
    return values, points


@pytest.fixture(scope='module')
def matcher():
    return build_matcher(MatcherConfig(max_keypoints=512))


def run_mono(matcher, frames, builder, cam):
    """The node's sequential path: the front-end against the previous frame, then the cloud."""
    frontend = Frontend(matcher, FrontendConfig(reference='previous'))
    clouds = []
    for i, image in enumerate(frames):
        out = frontend.process(image, i * DT_NS * 1e-9, camera=cam)
        if out is None:
            continue
        tracked = out.track_ids > 0
        clouds.append(
            (i, builder.build(header(i), out.track_ids[tracked], out.result.points0[tracked], cam))
        )
    return clouds


def check_layout(cloud, cam):
    values, points = columns(cloud)
    assert [c.name for c in cloud.channels] == list(CHANNEL_NAMES)
    assert all(len(c.values) == len(points) for c in cloud.channels)
    assert len(points) > 100
    assert np.all(points[:, 2] == 1.0)
    for name in ('gx', 'gy', 'gz'):
        assert not values[name].any()
    # normalized coordinates project back to (u, v) through the intrinsics and distortion
    reprojected, _ = cv2.projectPoints(points.astype(np.float64), np.zeros(3), np.zeros(3), K, D)
    uv = np.stack([values['u'], values['v']], axis=1)
    np.testing.assert_allclose(reprojected.reshape(-1, 2), uv, atol=2e-3)
    assert np.all(values['feature_id'] == np.round(values['feature_id']))
    return values


def test_mono_cloud_layout_ids_and_velocities(matcher):
    cam = camera()
    clouds = run_mono(matcher, translation_frames(6), VinsFeatureBuilder(), cam)
    assert [i for i, _ in clouds] == [1, 2, 3, 4, 5]
    dt = DT_NS * 1e-9
    true_velocity = -np.array(STEP) / dt  # (-80, -40) px/s
    first_seen, previous = {}, {}
    for index, (i, cloud) in enumerate(clouds):
        values = check_layout(cloud, cam)
        assert not values['camera_id'].any()
        ids = values['feature_id'].astype(np.int64)
        assert len(set(ids)) == len(ids)
        uv = np.stack([values['u'], values['v']], axis=1)
        velocity = np.stack([values['velocity_x'], values['velocity_y']], axis=1)
        # same id -> same physical point: it moved with the scene. XFeat keypoints at this size
        # are integer pixels, 1-2 px precise, so a track's error stays within a few pixels;
        # a track jumping to another point would be off by tens of pixels.
        errors = []
        for track, point in zip(ids, uv):
            if track in first_seen:
                j, start = first_seen[track]
                errors.append(np.linalg.norm(point - (start - np.array(STEP) * (i - j))))
            else:
                first_seen[track] = (i, point)
        known = np.array([t in previous for t in ids])
        # 0 on a track's first observation (all of them in the first cloud)
        assert not velocity[~known].any()
        if not index:
            assert not known.any()
        else:
            assert len(errors) > 60 and np.median(errors) < 1.5  # verified, budgeted tracks
            assert np.mean(np.array(errors) < 4.0) > 0.9
            # velocity = displacement of the same track since the previous frame / dt ...
            displacement = uv[known] - np.array([previous[t] for t in ids[known]])
            np.testing.assert_allclose(velocity[known], displacement / dt, atol=0.05)
            # ... which is the scene's motion: exact on the median, within 3 px / dt for most
            assert known.sum() > 60
            np.testing.assert_allclose(
                np.median(velocity[known], axis=0), true_velocity, atol=0.5 / dt
            )
            error = np.linalg.norm(velocity[known] - true_velocity, axis=1)
            assert np.mean(error < 3.0 / dt) > 0.9
        previous = dict(zip(ids, uv))


def test_ids_follow_the_homography(matcher):
    sequence = real_images.homography_sequence(num_frames=6, size=SIZE)
    clouds = run_mono(matcher, sequence.frames, VinsFeatureBuilder(), camera())
    first_seen, errors = {}, []
    for i, cloud in clouds:
        values, _ = columns(cloud)
        for track, u, v in zip(values['feature_id'].astype(int), values['u'], values['v']):
            if track not in first_seen:
                first_seen[track] = (i, (u, v))
                continue
            j, start = first_seen[track]
            expected = real_images.apply_homography(sequence.relative(j, i), [start])[0]
            errors.append(np.hypot(*(expected - (u, v))))
    errors = np.array(errors)
    assert len(errors) > 300
    assert np.mean(errors < 3.0) > 0.9, np.percentile(errors, [50, 90])


def test_stereo_cloud_shares_ids_between_cameras(matcher):
    left_frames, right_frames = translation_frames(4), translation_frames(4, BASELINE)
    cam0, cam1 = camera(0), camera(1)
    builder = VinsFeatureBuilder()
    frontend = Frontend(
        matcher, FrontendConfig(mode='stereo', reference='previous', track_stereo_left=True)
    )
    clouds = []
    for i, (left, right) in enumerate(zip(left_frames, right_frames)):
        out = frontend.process_stereo(left, right, i * DT_NS * 1e-9, cameras=(cam0, cam1))
        if out.temporal is None:
            continue
        tracked = out.temporal_ids > 0
        temporal = out.temporal
        partners = stereo_partner_points(temporal.indices0[tracked], out.result)
        clouds.append(
            builder.build(
                header(i),
                out.temporal_ids[tracked],
                temporal.points0[tracked],
                cam0,
                partners,
                cam1,
            )
        )
    assert len(clouds) == 3
    for index, cloud in enumerate(clouds):
        values = check_layout(cloud, cam0)
        camera_ids = values['camera_id']
        assert set(camera_ids) == {0.0, 1.0}
        n0 = int((camera_ids == 0).sum())
        assert np.all(camera_ids[:n0] == 0) and np.all(camera_ids[n0:] == 1)  # camera 0 first
        ids = values['feature_id'].astype(np.int64)
        left = dict(zip(ids[:n0], zip(values['u'][:n0], values['v'][:n0])))
        right = dict(zip(ids[n0:], zip(values['u'][n0:], values['v'][n0:])))
        assert len(left) == n0 and len(right) == len(ids) - n0
        assert set(right) <= set(left) and len(right) > 0.5 * len(left)
        shift = np.array([np.subtract(left[t], right[t]) for t in right])
        assert np.mean(np.linalg.norm(shift - (BASELINE, 0), axis=1) < 3.0) > 0.9
        if index:  # camera 1 tracks move like camera 0's
            v1 = np.stack([values['velocity_x'][n0:], values['velocity_y'][n0:]], axis=1)
            moving = np.abs(v1).sum(axis=1) > 0
            dt = DT_NS * 1e-9
            assert moving.sum() > 30  # verified, budgeted tracks seen on both sides
            np.testing.assert_allclose(
                np.median(v1[moving], axis=0), -np.array(STEP) / dt, atol=0.5 / dt
            )


def test_velocity_units_reset_and_time_jumps():
    cam = camera()
    builder = VinsFeatureBuilder()
    ids = np.array([5, 7, 9], np.uint64)
    start = np.array([[100.0, 100.0], [150.0, 120.0], [200.0, 80.0]])
    builder.compute(header(0), ids, start, cam)
    moved = builder.compute(header(2), ids[:2], start[:2] + (10.0, -5.0), cam)
    np.testing.assert_allclose(moved.velocity, [[100.0, -50.0]] * 2)  # 0.1 s apart
    np.testing.assert_array_equal(moved.track_ids, ids[:2])
    # a track absent from the previous frame starts again at 0
    back = builder.compute(header(3), ids, start, cam)
    assert not back.velocity[2].any() and back.velocity[0].any()
    # the same stamp again: no velocity rather than a division by zero
    assert not builder.compute(header(3), ids, start, cam).velocity.any()
    # back in time: state reset, nothing carried over
    assert not builder.compute(header(1), ids, start + 3.0, cam).velocity.any()
    builder.reset()
    assert not builder.compute(header(2), ids, start + 6.0, cam).velocity.any()
    # normalized units: d(normalized)/dt, what VINS-Fusion's own tracker publishes
    norm = VinsFeatureBuilder('normalized')
    first = norm.compute(0, ids, start, cam)
    second = norm.compute(DT_NS, ids, start + 2.0, cam)
    np.testing.assert_allclose(second.velocity, (second.normalized - first.normalized) / 0.05)
    with pytest.raises(ValueError):
        VinsFeatureBuilder('metres')


def test_message_round_trip_and_wrapped_ids():
    cam = camera()
    ids = np.array([1, FEATURE_ID_MODULUS + 3, 2**40 + 8], np.uint64)
    points = np.array([[100.0, 100.0], [150.0, 120.0], [200.0, 80.0]])
    partners = np.array([[90.0, 100.0], [np.nan, np.nan], [187.0, 80.0]])
    cloud = VinsFeatureBuilder().build(header(0), ids, points, cam, partners, camera(1))
    restored = deserialize_message(serialize_message(cloud), PointCloud)
    values, xyz = columns(restored)
    assert values['feature_id'].tolist() == [1, 3, 8, 1, 8]  # float32-exact, same ids
    assert values['camera_id'].tolist() == [0, 0, 0, 1, 1]
    assert values['u'].tolist() == [100, 150, 200, 90, 187]
    np.testing.assert_allclose(xyz[:3, :2], cam.normalize(points), atol=1e-6)
    assert restored.header.stamp == header(0).stamp


def test_empty_frames_and_bad_input():
    builder = VinsFeatureBuilder()
    cloud = builder.build(header(0), [], np.zeros((0, 2)), camera())
    assert len(cloud.points) == 0 and [c.name for c in cloud.channels] == list(CHANNEL_NAMES)
    with pytest.raises(ValueError, match='points_cam0 has 1 points for 2'):
        builder.compute(0, [1, 2], [[1.0, 2.0]], camera())
    with pytest.raises(ValueError, match='camera_id'):
        builder.compute(0, [1], [[1.0, 2.0]], camera(), [[3.0, 4.0]], camera())
    with pytest.raises(ValueError, match='without camera1'):
        builder.compute(0, [1], [[1.0, 2.0]], camera(), [[3.0, 4.0]])


def test_stereo_partner_points_joins_on_left_keypoints():
    class Stereo:
        indices0 = np.array([4, 1])
        points1 = np.array([[40.0, 41.0], [10.0, 11.0]])

    partners = stereo_partner_points([1, 2, 4, 9], Stereo)
    np.testing.assert_array_equal(partners[[0, 2]], [[10, 11], [40, 41]])
    assert np.isnan(partners[[1, 3]]).all()


def test_vins_output_skips_what_vins_cannot_use_and_restarts_with_the_tracks():
    """One logic for node and bag: no tracks or no camera -> nothing; new id sequence -> reset."""
    from types import SimpleNamespace

    from glue_ros.core.types import MatchResult
    from glue_ros.frontend.vins import VinsOutput

    def output(x):
        points = np.array([[10.0 + x, 20.0], [30.0 + x, 40.0]], np.float32)
        result = MatchResult(
            points,
            points,
            np.ones(2, np.float32),
            np.arange(2, dtype=np.int32),
            np.arange(2, dtype=np.int32),
            2,
            2,
            1,
            1,
        )
        return SimpleNamespace(
            result=result, track_ids=np.array([5, 0], np.uint64), temporal=None, temporal_ids=None
        )

    cameras = {0: camera(0)}
    vins = VinsOutput('pixels')
    assert vins.features(output(0), header(0), 0, cameras.get, stereo=True) is None
    assert vins.features(output(0), header(0), 0, {}.get, stereo=False) is None
    first = vins.features(output(0), header(0), 0, cameras.get, stereo=False)
    assert first.track_ids.tolist() == [5]  # id 0 starts no track
    moved = vins.features(output(4), header(1), 0, cameras.get, stereo=False)
    assert moved.velocity[0, 0] == pytest.approx(4 / (DT_NS * 1e-9))
    restarted = vins.features(output(8), header(2), 1, cameras.get, stereo=False)
    assert restarted.velocity[0, 0] == 0.0  # a new sequence of ids
