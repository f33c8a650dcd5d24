"""Track ids of the sequential mode: persistence, lost tracks, keyframes, the budget."""

import numpy as np
import pytest
import torch

from glue_ros.core.types import Features
from glue_ros.frontend.tracks import TrackManager


def features(n, points=None):
    points = np.zeros((n, 2)) if points is None else np.asarray(points, float)
    desc = torch.eye(n, 8) if n <= 8 else torch.randn(n, 8)
    return Features(torch.as_tensor(points, dtype=torch.float32), torch.ones(n), desc, (64, 48))


def step(tracks, n, matches, points=None, scores=None):
    """Match a frame of n keypoints with (current, reference point) index pairs."""
    f = features(n, points)
    reference = tracks.reference()
    if reference is None:
        tracks.start(f, None)
        return None, None
    m = np.array(matches, dtype=np.int64).reshape(-1, 2)
    positions = f.keypoints.numpy()[m[:, 0]]
    scores = np.ones(len(m)) if scores is None else np.asarray(scores, float)
    ids = tracks.assign(reference, f, None, m[:, 0], m[:, 1], positions, scores)
    return ids, reference


def test_point_keeps_its_id_over_frames():
    tracks = TrackManager(max_age=0, min_distance=0)
    step(tracks, 5, [])
    first, _ = step(tracks, 5, [(0, 3), (1, 4)])
    assert list(first) == [1, 2]
    # keypoint 2 of this frame is the same point as keypoint 0 of the previous one
    second, _ = step(tracks, 5, [(2, 0), (3, 1), (4, 2)])
    assert list(second) == [1, 2, 3]
    third, _ = step(tracks, 5, [(0, 2), (1, 4)])
    assert list(third) == [1, 3]


def test_a_track_survives_frames_where_it_was_not_matched():
    tracks = TrackManager(max_age=2, min_distance=0)
    step(tracks, 3, [])
    ids, _ = step(tracks, 3, [(0, 0), (1, 1), (2, 2)])
    assert list(ids) == [1, 2, 3]
    # track 3 (keypoint 2) is missed in this frame ...
    ids, reference = step(tracks, 3, [(0, 0), (1, 1)])
    assert list(ids) == [1, 2] and len(reference.ids) == 3
    # ... and is still in the reference, after the previous frame's points, for the next one
    reference = tracks.reference()
    assert list(reference.ids) == [1, 2, 0, 3] and reference.sources[-1] < reference.frame
    ids, _ = step(tracks, 3, [(0, 0), (2, 3)])
    assert list(ids) == [1, 3]  # found again: the same id
    # unmatched for more than max_age frames: gone
    step(tracks, 3, [(0, 0)])
    step(tracks, 3, [(0, 0)])
    step(tracks, 3, [(0, 0)])
    assert 3 not in tracks.reference().ids.tolist()


def test_keyframe_is_kept_until_matches_run_low():
    tracks = TrackManager(keyframe=True, keyframe_min_matches=2, min_distance=0)
    step(tracks, 4, [])
    assert list(step(tracks, 4, [(0, 0), (1, 1)])[0]) == [1, 2]
    # same keyframe: its point 1 keeps id 2 even though frames in between changed
    assert list(step(tracks, 4, [(3, 1), (2, 2)])[0]) == [2, 3]
    ids, _ = step(tracks, 4, [(0, 1)])  # one match: this frame becomes the keyframe
    assert list(ids) == [2]
    assert list(step(tracks, 4, [(1, 0)])[0]) == [2]


def test_budget_keeps_new_tracks_apart_and_capped():
    tracks = TrackManager(max_age=0, min_distance=5.0, max_tracks=3)
    step(tracks, 5, [])
    points = [(10, 10), (12, 10), (30, 10), (40, 10), (50, 10)]
    # the more confident of two points 2 px apart starts a track, the other does not
    ids, _ = step(tracks, 5, [(0, 0), (1, 1), (2, 2)], points, scores=[0.5, 0.9, 0.8])
    assert list(ids) == [0, 1, 2]
    # three tracks at most: one of the two new candidates gets an id, the best one
    ids, _ = step(tracks, 5, [(1, 1), (2, 2), (3, 3), (4, 4)], points, scores=[0.9, 0.9, 0.3, 0.6])
    assert list(ids) == [1, 2, 0, 3]


def test_reset_restarts_ids_and_counts_sequences():
    tracks = TrackManager()
    before = tracks.sequences
    step(tracks, 3, [])
    step(tracks, 3, [(0, 0), (1, 1), (2, 2)], [(0, 0), (20, 0), (40, 0)])
    tracks.reset()
    assert tracks.reference() is None and tracks.sequences == before + 1
    step(tracks, 3, [])
    assert list(step(tracks, 3, [(0, 1)])[0]) == [1]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        TrackManager(max_age=-1)
    with pytest.raises(ValueError):
        TrackManager(max_tracks=0)


def test_retired_ids_are_never_given_again():
    tracks = TrackManager(max_age=2, min_distance=0)
    step(tracks, 5, [])
    first, _ = step(tracks, 5, [(0, 0), (1, 1), (2, 2)])
    tracks.retire([first[1]])
    # The retired point matched again: no id; the others keep theirs.
    again, _ = step(tracks, 5, [(0, 0), (1, 1), (2, 2)])
    assert again[0] == first[0] and again[2] == first[2]
    assert again[1] not in set(first.tolist())


def test_tracks_followed_elsewhere_take_budget_and_room():
    tracks = TrackManager(max_age=0, max_tracks=3, min_distance=10)
    step(tracks, 4, [])
    f = features(4, [[0, 0], [50, 50], [100, 100], [5, 5]])
    reference = tracks.reference()
    m = np.array([[0, 0], [1, 1], [2, 2], [3, 3]])
    elsewhere = (np.array([[101.0, 100.0]]), np.array([77], np.uint64))
    ids = tracks.assign(
        reference,
        f,
        None,
        m[:, 0],
        m[:, 1],
        f.keypoints.numpy()[m[:, 0]],
        np.ones(4),
        elsewhere=elsewhere,
    )
    # One of three taken by the flow's track 77; the point beside it (100, 100) and the one
    # beside the first new track (5, 5) start nothing.
    assert list(ids > 0) == [True, True, False, False]
