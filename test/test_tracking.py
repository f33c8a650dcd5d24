"""Persistent track ids of the sequential mode."""
import numpy as np
import torch

from glue_ros.core.types import Features
from glue_ros.ros.tracking import TrackBook


def features(n):
    return Features(torch.zeros(n, 2), torch.zeros(n), torch.zeros(n, 8), (64, 48))


def step(book, n, matches):
    """Match a frame of n keypoints to the reference with (current, reference) index pairs."""
    if book.reference is None:
        book.advance(features(n), None, np.zeros(n, np.uint64), 0)
        return None
    m = np.array(matches, dtype=np.int64).reshape(-1, 2)
    ids, current = book.assign(m[:, 0], m[:, 1], n)
    book.advance(features(n), None, current, len(m))
    return ids


def test_point_keeps_its_id_over_frames():
    book = TrackBook()
    step(book, 5, [])
    first = step(book, 5, [(0, 3), (1, 4)])
    assert list(first) == [1, 2]
    # keypoint 2 of this frame is the same point as keypoint 0 of the previous one
    second = step(book, 5, [(2, 0), (3, 1), (4, 2)])
    assert list(second) == [1, 2, 3]
    third = step(book, 5, [(0, 2), (1, 4)])
    assert list(third) == [1, 3]


def test_keyframe_is_kept_until_matches_run_low():
    book = TrackBook(keyframe=True, min_matches=2)
    step(book, 4, [])
    assert list(step(book, 4, [(0, 0), (1, 1)])) == [1, 2]
    # same keyframe: its point 1 keeps id 2 even though frames in between changed
    assert list(step(book, 4, [(3, 1), (2, 2)])) == [2, 3]
    ids = step(book, 4, [(0, 1)])          # one match: this frame becomes the keyframe
    assert list(ids) == [2]
    assert list(step(book, 4, [(1, 0)])) == [2]


def test_reset_restarts_ids():
    book = TrackBook()
    step(book, 3, [])
    step(book, 3, [(0, 0), (1, 1), (2, 2)])
    book.reset()
    assert book.reference is None
    step(book, 3, [])
    assert list(step(book, 3, [(0, 1)])) == [1]
