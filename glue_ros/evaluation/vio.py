"""The VIO evaluation of ``glue-ros-bench --vio``: our front-end against the KLT it replaces.

Pipelines (:mod:`.vio_pipelines`), each run frame by frame over the same sequences
(:mod:`.sequences`), timed on the same threads:

* ``klt``: VINS-Fusion's tracker (:mod:`.klt`), the classical VIO front-end;
* ``learned``: the front-end extracting and matching every frame, as the node runs it;
* ``hybrid``: the same front-end with ``tracking='flow'`` (optical flow between learned
  frames), where the installed front-end has that setting.

What an estimator gets is measured: frames per second, track consistency (ids that stay on one
physical point), track lengths, tracked points per frame and their spread over the image,
tracks that live through each hard stretch (and are still on their point), and the relative
pose an estimator would get from the tracks shared by a frame and the frame POSE_GAP before it.

Observations are counted alike for all: a learned track's first match also observes it in the
reference frame (as a KLT corner is observed in the frame it was detected in), and only ids
observed in 2+ frames are tracks.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable

import cv2
import numpy as np
import torch

from glue_ros.evaluation import metrics
from glue_ros.evaluation import sequences as made
from glue_ros.evaluation.sequence_truth import Stretch, VioSequence

# The pipelines, kept importable from here.
from glue_ros.evaluation.vio_pipelines import (
    PIPELINES,
    FrontendPipeline,
    KLTPipeline,
    Pipeline,
    available_pipelines,
    build_pipelines,
    hybrid_available,
    warm_up,
)
from glue_ros.frontend.frontend import FrontendConfig
from glue_ros.matcher import MatcherConfig

logger = logging.getLogger(__name__)

POSE_GAP = 5  # frames between the two views of a relative pose
AFTER_STRETCH = 3  # a track survives a stretch when seen within this many frames after
LENGTH_BINS = 64  # track-length histogram: 1..LENGTH_BINS-1 observations, then more


def run(pipeline: Pipeline, sequence: VioSequence) -> dict:
    """Run a pipeline over a sequence: observations per frame, time, learned frames."""
    pipeline.start(sequence)
    frames, published = {}, {}
    times, learned, cpu = [], [], 0.0
    for k, (image, stamp) in enumerate(zip(sequence.frames, sequence.stamps)):
        start = time.process_time()
        observations, was_learned, took = pipeline.step(k, image, float(stamp))
        cpu += time.process_time() - start
        times.append(took)
        learned.append(was_learned)
        for n, (frame, points, ids) in enumerate(observations):
            row = (np.asarray(points, np.float64).reshape(-1, 2), np.asarray(ids, np.uint64))
            frames.setdefault(int(frame), []).append(row)
            if n == 0:
                published[int(frame)] = row  # what the frame itself published
    return {
        'frames': frames,
        'published': published,
        'seconds': float(np.sum(times)),
        'times': times,
        'cpu_seconds': cpu,
        'learned': learned,
    }


def observation_rows(frames: dict, count: int, only: dict | None = None) -> list:
    """(frame, points, ids) of every frame, kept to ids observed in 2+ frames (tracks).

    `only`: frame -> (points, ids) to keep to instead of all the frame's observations (what
    the frame published itself, without the reference observations found later).
    """
    merged = {}
    for k in range(count):
        parts = frames.get(k, [])
        points = np.concatenate([p for p, _ in parts]) if parts else np.zeros((0, 2))
        ids = np.concatenate([i for _, i in parts]) if parts else np.zeros(0, np.uint64)
        merged[k] = (points, ids)
    all_ids = np.concatenate([ids for _, ids in merged.values()])
    values, counts = np.unique(all_ids, return_counts=True)
    tracks = values[counts >= 2]
    rows = []
    for k in range(count):
        points, ids = (
            merged[k] if only is None else only.get(k, (np.zeros((0, 2)), np.zeros(0, np.uint64)))
        )
        keep = np.isin(ids, tracks)
        rows.append((k, points[keep], ids[keep]))
    return rows


def survival(
    rows: list, sequence: VioSequence, stretch: Stretch, after: int = AFTER_STRETCH
) -> dict:
    """Tracks alive before a hard stretch that are seen again, on their point, just after it.

    Before: the frame before the stretch. After: within `after` frames of its end. An id seen
    again is judged on its first observation after the stretch: mapped by the truth into the
    frame before, it must lie within CONSISTENT_PX of where it was (else it is ``wrong``: the
    id went to another point); where the truth is unknown there (holes, depth edges) it counts
    as alive and ``unverified``.
    """
    before = stretch.first - 1
    _, points_before, ids_before = rows[before]
    position = {int(i): p for i, p in zip(ids_before, points_before)}
    alive = wrong = unverified = 0
    for k in range(stretch.last + 1, min(stretch.last + 1 + after, len(rows))):
        _, points, ids = rows[k]
        candidates = [(int(i), p) for i, p in zip(ids, points) if int(i) in position]
        if not candidates:
            continue
        mapped, valid = metrics.map_points(
            sequence, k, np.array([p for _, p in candidates]), before
        )
        for (i, _), q, ok in zip(candidates, mapped, valid):
            if not ok:
                unverified += 1
            elif np.linalg.norm(q - position[i]) > metrics.CONSISTENT_PX:
                wrong += 1
                continue
            alive += 1
        for i, _ in candidates:
            del position[i]
    return {
        'kind': stretch.kind,
        'before': len(ids_before),
        'alive_after': alive,
        'wrong_after': wrong,
        'unverified_after': unverified,
    }


def pose_errors(rows: list, sequence: VioSequence, gap: int = POSE_GAP) -> dict:
    """Relative pose errors (degrees) from the tracks shared by frames k - gap and k.

    Frames without a pose (fewer than 5 shared tracks, no model) count as failures with
    infinite errors; medians include them.
    """
    rotation, translation = [], []
    for k in range(gap, len(rows)):
        _, p0, i0 = rows[k - gap]
        _, p1, i1 = rows[k]
        common, a, b = np.intersect1d(i0, i1, return_indices=True)
        R, t = sequence.relative_pose(k - gap, k)
        r_error, t_error = metrics.pose_errors(p1[b], p0[a], sequence.K, R, t)
        rotation.append(r_error)
        translation.append(t_error)
    rotation, translation = np.array(rotation), np.array(translation)
    failed = ~np.isfinite(rotation)
    return {
        'rotation_median': finite_or_none(np.median(rotation)) if len(rotation) else None,
        'translation_median': (
            finite_or_none(np.median(translation)) if len(translation) else None
        ),
        'failures': float(failed.mean()) if len(failed) else 0.0,
        'pairs': len(rotation),
        'rotation': [finite_or_none(e) for e in rotation],
        'translation': [finite_or_none(e) for e in translation],
    }


def finite_or_none(value: float) -> float | None:
    """A float for JSON: None where infinite (no estimate)."""
    return float(value) if np.isfinite(value) else None


def measure(result: dict, sequence: VioSequence) -> dict:
    """Every metric of one pipeline's run over one sequence."""
    count = len(sequence.frames)
    rows = observation_rows(result['frames'], count)
    out = metrics.track_metrics(rows, sequence, sequence.size)
    out['fps'] = count / result['seconds'] if result['seconds'] > 0 else float('inf')
    out['ms_per_frame'] = 1e3 * result['seconds'] / count
    # CPU time of the process (all its threads): less sensitive to a shared machine's load
    out['cpu_ms_per_frame'] = 1e3 * result['cpu_seconds'] / count
    times = np.array(result['times'])
    for key, kind in (('ms_learned_frame', True), ('ms_flow_frame', False)):
        these = times[[flag is kind for flag in result['learned']]]
        out[key] = float(1e3 * np.median(these)) if len(these) else None
    # per frame: the tracked points the frame published (a learned track's reference
    # observation belongs to its length, not to that frame's count)
    published = observation_rows(result['frames'], count, result['published'])
    out['tracked_per_frame'] = [int(len(ids)) for _, _, ids in published]
    out['matches_per_frame'] = float(np.mean(out['tracked_per_frame']))
    out['coverage'] = float(
        np.mean([metrics.grid_coverage(points, sequence.size) for _, points, _ in published])
    )
    lengths = {}
    for _, _, ids in rows:
        for i in ids:
            lengths[int(i)] = lengths.get(int(i), 0) + 1
    out['length_histogram'] = np.bincount(
        np.minimum(list(lengths.values()) or [0], LENGTH_BINS - 1), minlength=LENGTH_BINS
    ).tolist()
    out['stretches'] = [survival(rows, sequence, s) for s in sequence.stretches]
    if sequence.K is not None:
        out['pose'] = pose_errors(rows, sequence)
    learned = [flag for flag in result['learned'] if flag is not None]
    out['learned_share'] = float(np.mean(learned)) if learned else None
    return out


def evaluate(
    names: Iterable[str] | None = None,
    sequences: list[VioSequence] | None = None,
    matcher_config: MatcherConfig | None = None,
    frontend_config: FrontendConfig | None = None,
    threads: int = 2,
    camera_frames: int = 60,
    hard_frames: int = 30,
    size: tuple[int, int] = (640, 480),
) -> dict:
    """Every pipeline over every sequence; the sequences are made once and shared.

    matcher_config and frontend_config set the learned and hybrid pipelines (a VIO preset);
    None: the node's defaults.
    """
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    if sequences is None:
        start = time.time()
        sequences = made.vio_sequences(camera_frames, hard_frames, size)
        logger.info(f'sequences made in {time.time() - start:.0f} s')
    pipelines = build_pipelines(names, matcher_config, frontend_config)
    report = {'threads': threads, 'sequences': {}, 'pipelines': {}}
    for s in sequences:
        report['sequences'][s.name] = {
            'frames': len(s.frames),
            'size': list(s.size),
            'scene': s.scene,
            'regime': s.regime,
            'motion_px_mean': float(np.mean(s.motion_px[1:])),
            'motion_px': [float(m) for m in s.motion_px],
            'stretches': [dataclasses.asdict(x) for x in s.stretches],
        }
    for pipeline in pipelines:
        warm_up(pipeline, sequences[0])
        report['pipelines'][pipeline.name] = {}
        for s in sequences:
            result = run(pipeline, s)
            report['pipelines'][pipeline.name][s.name] = measure(result, s)
            logger.info(
                '%s on %s: %.1f FPS', pipeline.name, s.name, len(s.frames) / result['seconds']
            )
    report['targets'] = targets(report)
    return report


# Targets of a real-time VIO front-end (640x480, 2 threads): frame rates on camera-rate
# sequences; there, track consistency, mean length against KLT's and tracked points; on hard
# ones, tracks alive after each stretch against KLT's and the relative pose error against KLT's.
FPS_TARGETS = {'hybrid': 30.0, 'learned': 15.0}
CONSISTENCY_TARGET = 0.99
TRACKED_TARGET = 150
SURVIVAL_FACTOR = 2.0


def targets(report: dict) -> list:
    """Each target checked where the report has what it needs.

    Rows: {'pipeline', 'sequence', 'target', 'value', 'goal', 'ok'}; learned and hybrid
    only, the KLT baseline being what they are held against.
    """
    rows = []
    pipelines = report['pipelines']
    baseline = pipelines.get('klt', {})

    def add(name: str, sequence: str, target: str, value: object, goal: object, ok: bool) -> None:
        rows.append(
            {
                'pipeline': name,
                'sequence': sequence,
                'target': target,
                'value': value,
                'goal': goal,
                'ok': bool(ok),
            }
        )

    def worst(value: float | None) -> float:
        return np.inf if value is None else value

    for name, by_sequence in pipelines.items():
        if name == 'klt':
            continue
        for sequence, r in by_sequence.items():
            klt = baseline.get(sequence)
            if report['sequences'][sequence]['regime'] == 'camera':
                if name in FPS_TARGETS:
                    add(
                        name,
                        sequence,
                        'frames per second',
                        r['fps'],
                        FPS_TARGETS[name],
                        r['fps'] >= FPS_TARGETS[name],
                    )
                add(
                    name,
                    sequence,
                    'track consistency',
                    r['consistency'],
                    CONSISTENCY_TARGET,
                    r['consistency'] >= CONSISTENCY_TARGET,
                )
                add(
                    name,
                    sequence,
                    'tracked points per frame',
                    r['matches_per_frame'],
                    TRACKED_TARGET,
                    r['matches_per_frame'] >= TRACKED_TARGET,
                )
                if klt:
                    add(
                        name,
                        sequence,
                        "mean track length (KLT's)",
                        r['mean_length'],
                        klt['mean_length'],
                        r['mean_length'] >= klt['mean_length'],
                    )
                continue
            if not klt:
                continue
            for ours, theirs in zip(r['stretches'], klt['stretches']):
                goal = SURVIVAL_FACTOR * theirs['alive_after']
                add(
                    name,
                    sequence,
                    f"tracks alive after {ours['kind']} (2x KLT's)",
                    ours['alive_after'],
                    goal,
                    ours['alive_after'] >= max(goal, 1),
                )
            if r.get('pose') and klt.get('pose'):
                for key in ('rotation_median', 'translation_median'):
                    value, goal = r['pose'][key], klt['pose'][key]
                    add(
                        name,
                        sequence,
                        f"pose {key.replace('_', ' ')} (KLT's)",
                        value,
                        goal,
                        worst(value) <= worst(goal),
                    )
    return rows


__all__ = [
    'PIPELINES',
    'KLTPipeline',
    'FrontendPipeline',
    'build_pipelines',
    'run',
    'measure',
    'evaluate',
    'survival',
    'pose_errors',
    'observation_rows',
    'hybrid_available',
    'available_pipelines',
    'targets',
]
